"""examples/evaluate_daformer_checkpoint.py: a released-layout DAFormer checkpoint through `uda evaluate`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

import uda
from uda.config import EvalConfig
from uda.evaluation import evaluate

ROOT = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("evaluate_daformer_checkpoint",
                                                  ROOT / "examples" / "evaluate_daformer_checkpoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_released_layout_checkpoint_evaluates_the_student(tmp_path, capsys):
    module = _load()
    result = module.main(["--num", "2", "--out", str(tmp_path)])
    assert "layout daformer_release; the student: True" in capsys.readouterr().out
    ckpt = torch.load(tmp_path / "daformer_release_layout.pth", weights_only=True)
    keys = set(ckpt["state_dict"])
    assert {k.split(".")[0] for k in keys} == {"model", "ema_model", "imnet_model"}
    assert "model.backbone.patch_embed1.proj.weight" in keys and "model.decode_head.conv_seg.weight" in keys
    # the CLI's figure is the student's, scored independently here
    torch.manual_seed(0)
    student = uda.create("model", "daformer_tiny", num_classes=19).eval()
    ds = uda.create("dataset", "cityscapes", root=str(tmp_path / "cityscapes"), split="val")
    expect = evaluate(student, ds, EvalConfig(size="128x64"), device="cpu", progress=False)
    assert result["num_images"] == 2 and result["miou"] == expect["miou"]
    # the demo checkpoint is a pure function of the seed
    again = module.make_demo(tmp_path / "again")[0]
    other = torch.load(again, weights_only=True)["state_dict"]
    assert all(torch.equal(v, other[k]) for k, v in ckpt["state_dict"].items())
