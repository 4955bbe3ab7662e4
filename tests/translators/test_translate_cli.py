"""`uda translate`: the translator on --device, FDA runs (target images of the run), the training size by default."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import uda
from uda._io import save_checkpoint
from uda.cli import main
from uda.config import load_config
from uda.translators import low_freq_mutate, save_translator


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def gta(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "GTA5"
    r = _invoke("data", "synth", "--out", root, "--domain", "source", "--layout", "gta5", "--num", "3", "--size", "64x32")
    assert r.exit_code == 0, r.output
    return root


def _fake_run(tmp_path: Path, name: str, sets: list[str], translator: dict) -> Path:
    """A run directory as `uda train` leaves it: the resolved config and a checkpoint with the translator."""
    cfg = load_config(name, sets)
    run = tmp_path / "run"
    save_checkpoint({"config": cfg.to_dict(), "translator": translator}, run / "checkpoints" / "last.pt")
    return run


def _png(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).copy()).permute(2, 0, 1).float() / 255


def test_fda_run_translates_with_the_runs_target_images(tmp_path, gta):
    sets = ["data.target.options.num=3", "data.target.size=64x32", "recipe.translator_options.beta=0.2", f"data.source.root={gta}"]
    run = _fake_run(tmp_path, "fda_synthetic",
                    [*sets, "data.source.name=gta5", "data.source.size=64x32", "data.source.options={}"], {})
    out = tmp_path / "out"
    r = _invoke("translate", run, "--out", out, "--device", "cpu")
    assert r.exit_code == 0, r.output
    files = sorted(out.rglob("*.png"))
    assert len(files) == 3 and "at 64x32" in r.output
    cfg = load_config("fda_synthetic", sets)
    targets = uda.data.build_dataset(cfg.data.target, labels=False)
    src = uda.create("dataset", "gta5", root=gta, size="64x32", labels=False)
    sources = [src[i]["image"] for i in range(len(src))]
    for f in files:
        got = _png(f)
        assert min(float((got - x).abs().max()) for x in sources) > 0.05  # translated, not copied
        best = min(float((low_freq_mutate(x[None], targets[j]["image"][None], 0.2).clamp(0, 1)[0] - got).abs().max())
                   for x in sources for j in range(len(targets)))
        assert best <= 1.01 / 255  # FDA of a source image with one of the run's target images (PNG rounding only)


def test_training_size_by_default_native_size_as_option(tmp_path, gta):
    save_translator(uda.create("translator", "cyclegan_tiny"), tmp_path / "t.pt")
    state = torch.load(tmp_path / "t.pt", weights_only=True)["translator"]["state_dict"]
    sets = [f"data.source.root={gta}", "data.source.name=gta5", "data.source.size=32x16", "data.source.options={}"]
    run = _fake_run(tmp_path, "cyclegan_synthetic", sets, state)
    r = _invoke("translate", run, "--out", tmp_path / "a", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert {Image.open(p).size for p in (tmp_path / "a").rglob("*.png")} == {(32, 16)}
    r = _invoke("translate", run, "--out", tmp_path / "b", "--native-size", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert {Image.open(p).size for p in (tmp_path / "b").rglob("*.png")} == {(64, 32)}
    r = _invoke("translate", tmp_path / "t.pt", "--out", tmp_path / "c")  # a bare file names its dataset
    assert r.exit_code == 2 and "--dataset" in r.output


def test_translator_is_moved_to_the_device(tmp_path, gta, monkeypatch):
    import uda.translators as translators

    moved: list[torch.device] = []
    real = translators.load_translator

    def spy(path, **kw):
        t = real(path, **kw)
        to = t.to
        t.to = lambda dev, *a, **k: (moved.append(torch.device(dev)), to(dev, *a, **k))[1]
        return t

    monkeypatch.setattr(translators, "load_translator", spy)
    save_translator(uda.create("translator", "cyclegan_tiny"), tmp_path / "t.pt")
    r = _invoke("translate", tmp_path / "t.pt", "--dataset", "gta5", "--root", gta, "--out", tmp_path / "o",
                "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert moved == [torch.device("cpu")]
