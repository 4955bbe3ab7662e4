"""Self-describing checkpoints (`uda.load`, `uda evaluate/predict FILE`) and `uda export`, on runs of `uda train`."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch

import uda
from uda.config import load_config
from uda.models import load_weights, save_weights

from .conftest import invoke


def _one_line_error(r) -> str:
    assert r.exit_code == 2, (r.exit_code, r.output)
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# ----------------------------------------------------------------------------------------- the checkpoint's card


def test_checkpoint_describes_its_model(wide_run: Path) -> None:
    ckpt = torch.load(wide_run / "checkpoints" / "last.pt", weights_only=True)
    card = ckpt["model_card"]
    assert card["model"] == "deeplabv2_tiny" and card["options"] == {"width": 8} and card["num_classes"] == 19
    assert tuple(card["class_names"]) == uda.labels.CITYSCAPES_CLASSES
    assert card["input_size"] == "64x32"
    net = uda.create("model", "deeplabv2_tiny", num_classes=19, width=8)
    n = net.normalization
    assert card["normalization"] == {"mean": list(n.mean), "std": list(n.std), "scale": n.scale, "bgr": n.bgr}


def test_load_returns_the_trained_model_ready(wide_run: Path) -> None:
    net = uda.load(wide_run)
    assert not net.training and net.num_classes == 19 and net.class_names == uda.labels.CITYSCAPES_CLASSES
    cfg = load_config(wide_run / "config.yaml")
    by_hand = uda.create("model", cfg.model.name, num_classes=19, **cfg.model.options)
    load_weights(by_hand, wide_run / "checkpoints" / "last.pt")
    x = torch.rand(1, 3, 32, 64)
    with torch.no_grad():
        assert torch.equal(net(x).logits, by_hand.eval()(x).logits)
    same = uda.load(wide_run / "checkpoints" / "iter_0000002.pt")
    with torch.no_grad():
        assert torch.equal(same(x).logits, net(x).logits)


def test_shareable_weights_rebuild_the_model(wide_run: Path, tmp_path: Path) -> None:
    """`uda export --format weights`: the state dict and the card only, far from the run, and enough."""
    shared = tmp_path / "elsewhere" / "wide.pt"
    r = invoke("export", wide_run, "--format", "weights", "--out", shared)
    assert r.exit_code == 0 and "max |export - pytorch| = 0 " in r.stdout, r.output
    ckpt = torch.load(shared, weights_only=True)
    assert set(ckpt) == {"format", "model", "model_card"} and ckpt["format"] == "uda.weights/1"
    assert ckpt["model_card"]["options"] == {"width": 8}
    assert sorted(p.name for p in shared.parent.iterdir()) == ["wide.pt", "wide.pt.sha256"]
    net, x = uda.load(shared), torch.rand(1, 3, 32, 64)
    assert net.class_names == uda.labels.CITYSCAPES_CLASSES
    with torch.no_grad():
        assert torch.equal(net(x).logits, uda.load(wide_run)(x).logits)
    final = json.loads((wide_run / "final.json").read_text())
    cfg = load_config(wide_run / "config.yaml")
    r = invoke("evaluate", shared, "--dataset", "cityscapes", "--root", cfg.data.val.root, "--set",
               f"eval.size={cfg.eval.size}", "--json")  # no run config: the data is named, the model is not
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["miou"] == pytest.approx(final["miou"], abs=1e-6)


def test_load_reads_checkpoints_written_before_the_card(wide_run: Path, tmp_path: Path) -> None:
    from uda._io import save_checkpoint

    ckpt = torch.load(wide_run / "checkpoints" / "last.pt", weights_only=True)
    del ckpt["model_card"]  # what checkpoints of earlier versions hold: the resolved config only
    save_checkpoint(ckpt, tmp_path / "old.pt")
    net, new = uda.load(tmp_path / "old.pt"), uda.load(wide_run)
    assert net.card["options"] == {"width": 8} and net.class_names == new.class_names
    x = torch.rand(1, 3, 32, 64)
    with torch.no_grad():
        assert torch.equal(net(x).logits, new(x).logits)


def test_bare_weights_need_a_model_name(wide_run: Path, tmp_path: Path) -> None:
    save_weights(uda.load(wide_run), tmp_path / "w.pt")  # bare weights: which network is not written down
    with pytest.raises(uda.CheckpointError, match="pass model=NAME"):
        uda.load(tmp_path / "w.pt")
    with pytest.raises(uda.CheckpointError, match="do not fit"):
        uda.load(tmp_path / "w.pt", model="deeplabv2_tiny")  # width 16, not 8
    net = uda.load(tmp_path / "w.pt", model="deeplabv2_tiny", options={"width": 8})
    assert net.class_names == uda.labels.CITYSCAPES_CLASSES


# ----------------------------------------------------------------------------------------- evaluate / predict FILE


def test_evaluate_and_predict_a_checkpoint_file_need_no_model_options(wide_run: Path, tmp_path: Path) -> None:
    final = json.loads((wide_run / "final.json").read_text())
    r = invoke("evaluate", wide_run / "checkpoints" / "last.pt", "--json", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["miou"] == pytest.approx(final["miou"], abs=1e-6)
    images = Path(load_config(wide_run / "config.yaml").data.val.root) / "leftImg8bit" / "val"
    r = invoke("predict", wide_run / "checkpoints" / "last.pt", images, "--out", tmp_path / "p", "--save", "trainid")
    assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "p" / "trainid").rglob("*.png"))) == 2


def test_model_option_is_for_bare_weights(wide_run: Path, tmp_path: Path) -> None:
    err = _one_line_error(invoke("evaluate", wide_run, "--model", "deeplabv2"))
    assert "describes its model (deeplabv2_tiny); drop --model" in err
    err = _one_line_error(invoke("predict", wide_run, ".", "--out", tmp_path / "p", "--num-classes", "7"))
    assert "(19 classes); drop --num-classes" in err
    assert invoke("evaluate", wide_run, "--model", "deeplabv2_tiny", "--json").exit_code == 0  # the same: no-op


def test_bare_weights_get_their_model_options(wide_run: Path, tmp_path: Path) -> None:
    """Before, `--model` built the model with its default options whatever --set model.options said."""
    save_weights(uda.load(wide_run), tmp_path / "w.pt")
    cfg = load_config(wide_run / "config.yaml")
    where = ["--dataset", "cityscapes", "--root", cfg.data.val.root, "--set", f"eval.size={cfg.eval.size}"]
    r = invoke("evaluate", tmp_path / "w.pt", "--model", "deeplabv2_tiny", *where, "--set", "model.options.width=8",
               "--json", "--device", "cpu")
    assert r.exit_code == 0, r.output
    final = json.loads((wide_run / "final.json").read_text())
    assert json.loads(r.stdout)["miou"] == pytest.approx(final["miou"], abs=1e-6)
    assert "do not fit" in _one_line_error(invoke("evaluate", tmp_path / "w.pt", "--model", "deeplabv2_tiny", *where))


# ----------------------------------------------------------------------------------------- export

_SUFFIX = {"onnx": "onnx", "torchscript": "pt", "exported-program": "pt2", "weights": "pt"}


def _run_export(fmt: str, path: Path, x: torch.Tensor) -> torch.Tensor:
    if fmt == "torchscript":
        return torch.jit.load(str(path))(x)
    if fmt == "exported-program":
        return torch.export.load(str(path)).module()(x)
    if fmt == "weights":
        return uda.load(path)(x).logits
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


@pytest.mark.parametrize("fmt", ["torchscript", "exported-program", "onnx", "weights"])
def test_export_every_format_matches_pytorch(fmt: str, run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / f"model.{_SUFFIX[fmt]}"
    r = invoke("export", run_dir, "--format", fmt, "--out", out)
    assert r.exit_code == 0, r.output
    m = re.search(r"input 1x3x32x64, logits 1x19x(\d+)x(\d+)\); max \|export - pytorch\| = (\S+) "
                  r"\(tolerance 0\.0001\): ok", r.stdout)
    assert m, r.stdout
    assert float(m.group(3)) <= 1e-4
    left = sorted(p.name for p in tmp_path.iterdir())  # no temporary file
    assert left == ([out.name, f"{out.name}.sha256"] if fmt == "weights" else [out.name])
    x = torch.rand(1, 3, 32, 64, generator=torch.Generator().manual_seed(7))  # not the command's check input
    with torch.no_grad():
        expected = uda.load(run_dir)(x).logits
        got = _run_export(fmt, out, x)
    assert got.shape == expected.shape == (1, 19, int(m.group(1)), int(m.group(2)))
    assert float((got - expected).abs().max()) <= 1e-4


def test_export_size_and_a_failed_check(run_dir: Path, tmp_path: Path, monkeypatch) -> None:
    import uda.export as export_mod

    r = invoke("export", run_dir, "--format", "torchscript", "--out", tmp_path / "m.pt", "--size", "48x40")
    assert r.exit_code == 0 and "input 1x3x40x48" in r.stdout
    real = export_mod._run
    monkeypatch.setattr(export_mod, "_run", lambda fmt, path, x: real(fmt, path, x) + 1e-2)  # a broken exporter
    r = invoke("export", run_dir, "--format", "torchscript", "--out", tmp_path / "bad.pt")
    assert r.exit_code == 1 and "max |export - pytorch| = 0.01 (tolerance 0.0001): FAILED" in r.stdout
    assert (tmp_path / "bad.pt").is_file()  # kept for inspection


def test_export_without_onnx_names_the_extra(run_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    err = _one_line_error(invoke("export", run_dir, "--format", "onnx", "--out", tmp_path / "m.onnx"))
    assert "needs the 'onnx' package" in err and "pip install 'uda[export]'" in err
    assert list(tmp_path.iterdir()) == []


def test_export_of_bare_weights(run_dir: Path, tmp_path: Path) -> None:
    save_weights(uda.load(run_dir), tmp_path / "w.pt")
    assert "--model NAME" in _one_line_error(invoke("export", tmp_path / "w.pt", "--format", "torchscript",
                                                     "--out", tmp_path / "m.pt"))
    err = _one_line_error(invoke("export", tmp_path / "w.pt", "--format", "torchscript", "--out", tmp_path / "m.pt",
                                 "--model", "deeplabv2_tiny"))
    assert "give --size WxH" in err
    r = invoke("export", tmp_path / "w.pt", "--format", "torchscript", "--out", tmp_path / "m.pt", "--model",
               "deeplabv2_tiny", "--size", "64x32")
    assert r.exit_code == 0 and ": ok" in r.stdout


def test_weights_need_a_described_model(tmp_path: Path) -> None:
    from uda.export import export

    with pytest.raises(uda.UdaError, match=r"needs a model loaded with uda\.load"):
        export(uda.create("model", "deeplabv2_tiny", num_classes=19), tmp_path / "w.pt", format="weights",
               size=(64, 32))
    assert list(tmp_path.iterdir()) == []
