"""Untrusted files: pickle payloads in checkpoints are refused by every command that reads one (and never run),
``.safetensors`` weights load through ``model.pretrained``, YAML tags are refused, and path values in configs are
never executed or shell-expanded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import uda
from uda.data import write_synthetic
from uda.engine import Trainer

from .conftest import invoke, one_line_error, sets, tiny_config


class _Evil:
    """Unpickling this writes ``dst`` (a copy of ``src``): a stand-in for any code a pickle can run."""

    def __init__(self, src: Path, dst: Path) -> None:
        self.src, self.dst = str(src), str(dst)

    def __reduce__(self):
        return (shutil.copyfile, (self.src, self.dst))


@pytest.fixture
def evil(tmp_path: Path) -> tuple[Path, Path]:
    """``(checkpoint, victim)``: a run-checkpoint-shaped file whose unpickling would create ``victim``."""
    src, victim = tmp_path / "payload.txt", tmp_path / "victim.txt"
    src.write_text("pwned")
    path = tmp_path / "evil.pt"
    w = uda.create("model", "deeplabv2_tiny", num_classes=19, width=4).state_dict()
    torch.save({"model": w, "translator": {}, "config": {"name": "x"}, "hook": _Evil(src, victim)}, path)
    torch.load(path, weights_only=False)  # the payload is real: an unsafe load writes the file
    assert victim.read_text() == "pwned"
    victim.unlink()
    return path, victim


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("trees")
    write_synthetic(root / "cs", domain="target", layout="cityscapes", num=2, size=(32, 16), seed=1)
    write_synthetic(root / "gta5", domain="source", layout="gta5", num=2, size=(32, 16), seed=0)
    return {"cityscapes": root / "cs", "gta5": root / "gta5"}


def _commands(ck: Path, trees: dict[str, Path], out: Path) -> dict[str, list]:
    train = ["train", "source_only_synthetic", "--out", out / "run", "--device", "cpu"]
    return {
        "evaluate": ["evaluate", ck, "--dataset", "cityscapes", "--root", trees["cityscapes"], "--device", "cpu"],
        "predict": ["predict", ck, trees["cityscapes"], "--out", out / "pred", "--device", "cpu"],
        "translate": ["translate", ck, "--dataset", "gta5", "--root", trees["gta5"], "--out", out / "tr",
                      "--device", "cpu"],
        "model.pretrained": [*train, *sets("trainer.max_iters=1", f"model.pretrained={ck}")],
        "translator_checkpoint": ["train", "mlfa_synthetic", "--out", out / "mlfa", "--device", "cpu",
                                  *sets("trainer.max_iters=1", f"recipe.translator_checkpoint={ck}")],
    }


@pytest.mark.parametrize("command", ["evaluate", "predict", "translate", "model.pretrained", "translator_checkpoint"])
def test_pickle_payload_is_refused_and_never_runs(command, evil, trees, tmp_path):
    ck, victim = evil
    r = invoke(*_commands(ck, trees, tmp_path)[command])
    assert r.exit_code == 2, r.stderr[-1500:]
    line = one_line_error(r)
    assert str(ck) in line and "refused to load" in line
    assert not victim.exists()
    assert not (tmp_path / "run" / "final.json").exists()


def test_safetensors_weights_load_through_model_pretrained(tmp_path):
    torch.manual_seed(123)
    donor = uda.create("model", "deeplabv2_tiny", num_classes=19, width=4)
    weights = {k: v.contiguous() for k, v in donor.state_dict().items()
               if isinstance(v, torch.Tensor) and v.is_floating_point()}
    save_file(weights, str(tmp_path / "w.safetensors"))
    tr = Trainer(tiny_config("source_only_synthetic", "trainer.max_iters=1",
                             f"model.pretrained={tmp_path / 'w.safetensors'}"), tmp_path / "run")
    tr.build()
    got = tr.model.state_dict()
    assert all(torch.equal(got[k], v) for k, v in weights.items())
    fresh = uda.create("model", "deeplabv2_tiny", num_classes=19, width=4).state_dict()
    assert not all(torch.equal(fresh[k], v) for k, v in weights.items())  # the file, not the seed, set them


def test_yaml_python_tags_are_refused_by_the_commands(tmp_path):
    victim = tmp_path / "victim"
    path = tmp_path / "evil.yaml"
    path.write_text(f"_base_: source_only_synthetic\ntrainer: !!python/object/apply:os.mkdir ['{victim}']\n")
    for args in (["config", "show", path], ["train", path, "--out", tmp_path / "run", "--device", "cpu"]):
        r = invoke(*args)
        assert r.exit_code == 2
        assert str(path) in one_line_error(r) and "invalid YAML" in r.stderr
    assert not victim.exists()


@pytest.mark.parametrize("key", ["model.pretrained", "data.source.root"])
@pytest.mark.parametrize("value", ["$(touch {x})", "`touch {x}`", "~/uda_no_such_file.pt", "$HOME/uda_no_such_file.pt",
                                   "${{HOME}}/uda_no_such_file.pt"])
def test_config_paths_are_neither_executed_nor_expanded(key, value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "X"
    literal = value.format(x=marker)
    extra = ["data.source.name=gta5", "data.source.options={}"] if key == "data.source.root" else []
    r = invoke("train", "source_only_synthetic", "--out", tmp_path / "run", "--device", "cpu",
               *sets("trainer.max_iters=1", *extra, f"{key}={literal}"))
    assert r.exit_code == 2, r.stderr[-1500:]
    line = one_line_error(r)
    assert literal in line  # the literal path is reported missing: not expanded
    assert str(Path.home()) + "/uda_no_such_file" not in line
    assert not marker.exists() and not list(tmp_path.glob("*X*"))
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
