"""`uda translate` on runs made by `uda train`: FDA (rebuilt from the run's config), CycleGAN and MLFA (the trained
generator's weights from the checkpoint)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import uda
from uda.config import load_config
from uda.translators import translator_state_dict

from .conftest import CYCLEGAN_SIZE, FDA_BETA, SIZE, invoke


def _png(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).copy()).permute(2, 0, 1).float() / 255


def _sources(trees: dict[str, Path], size: str | None = SIZE) -> list[torch.Tensor]:
    ds = uda.create("dataset", "gta5", root=trees["gta5"], size=size, labels=False)
    return [ds[i]["image"] for i in range(len(ds))]


def _translated(out: Path) -> list[torch.Tensor]:
    files = sorted(out.rglob("*.png"))
    return [_png(f) for f in files]


def test_fda_run_in_the_documented_form(fda_run: Path, trees: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "fda"
    r = invoke("translate", fda_run, "--dataset", "gta5", "--root", trees["gta5"], "--out", out, "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert f"translated 4 images of gta5/train at {SIZE} into {out}" in r.stdout
    got, sources = _translated(out), _sources(trees)
    assert len(got) == 4
    cfg = load_config(fda_run / "config.yaml")
    assert cfg.recipe.translator_options["beta"] == FDA_BETA
    targets = uda.data.build_dataset(cfg.data.target, labels=False)
    fda = uda.create("translator", "fda", beta=FDA_BETA)
    preset = uda.create("translator", "fda", beta=0.09)  # the preset's beta: what a config-blind rebuild would use
    g = torch.Generator().manual_seed(0)  # --seed 0: the target image each source image meets
    for src, img in zip(sources, got):
        j = int(torch.randint(len(targets), (1,), generator=g))
        tgt = targets[j]["image"][None]
        assert float((img - src).abs().max()) > 0.05  # translated, not copied
        assert float((fda(src[None], tgt)[0] - img).abs().max()) <= 0.5 / 255 + 1e-6  # PNG rounding only
        assert float((preset(src[None], tgt)[0] - img).abs().max()) > 2 / 255


def test_fda_run_defaults_to_its_source(fda_run: Path, trees: dict[str, Path], tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert invoke("translate", fda_run, "--out", a).exit_code == 0
    assert invoke("translate", fda_run, "--dataset", "gta5", "--root", trees["gta5"], "--out", b).exit_code == 0
    assert [p.name for p in sorted(a.rglob("*.png"))] == [p.name for p in sorted(b.rglob("*.png"))]
    for x, y in zip(_translated(a), _translated(b)):
        assert torch.equal(x, y)
    r = invoke("translate", fda_run, "--out", a)  # a rerun finds everything there
    assert r.exit_code == 0 and "(4 already there)" in r.stdout


@pytest.mark.parametrize(("fixture", "size"), [("cyclegan_run", CYCLEGAN_SIZE), ("mlfa_run", "128x64")])
def test_cyclegan_run_uses_its_trained_weights(fixture: str, size: str, request, trees: dict[str, Path],
                                               tmp_path: Path) -> None:
    run = request.getfixturevalue(fixture)
    out = tmp_path / "cg"
    r = invoke("translate", run, "--out", out, "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert f"at {size}" in r.stdout
    state = translator_state_dict(torch.load(run / "checkpoints" / "last.pt", weights_only=True))
    by_hand = uda.create("translator", "cyclegan_tiny")
    untrained = {k: v.clone() for k, v in by_hand.state_dict().items() if isinstance(v, torch.Tensor)}
    by_hand.load_state_dict(state)
    assert any(not torch.equal(v, by_hand.state_dict()[k]) for k, v in untrained.items())  # trained weights
    by_hand.eval()
    got, sources = _translated(out), _sources(trees, size)
    w, h = map(int, size.split("x"))
    assert len(got) == 4 and {tuple(x.shape) for x in got} == {(3, h, w)}  # the run's training size
    with torch.no_grad():
        for src, img in zip(sources, got):
            assert float((by_hand(src[None]).clamp(0, 1)[0] - img).abs().max()) <= 0.5 / 255 + 1e-5


def test_size_options(cyclegan_run: Path, tmp_path: Path) -> None:
    r = invoke("translate", cyclegan_run, "--out", tmp_path / "n", "--native-size", "--device", "cpu")
    assert r.exit_code == 0 and "at native size" in r.stdout
    assert {Image.open(p).size for p in (tmp_path / "n").rglob("*.png")} == {(64, 32)}
    r = invoke("translate", cyclegan_run, "--out", tmp_path / "s", "--size", "64x64", "--device", "cpu")
    assert r.exit_code == 0
    assert {Image.open(p).size for p in (tmp_path / "s").rglob("*.png")} == {(64, 64)}
    r = invoke("translate", cyclegan_run, "--out", tmp_path / "x", "--size", "64x64", "--native-size")
    assert r.exit_code == 2 and "not both" in r.output


def test_a_run_without_translator_is_refused(run_dir: Path, tmp_path: Path) -> None:
    r = invoke("translate", run_dir, "--out", tmp_path / "o")
    assert r.exit_code == 2
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "recipe 'source_only' of this run has no translator" in err
    assert not (tmp_path / "o").exists()


def test_a_translator_file_needs_its_dataset(trees: dict[str, Path], tmp_path: Path, monkeypatch) -> None:
    """`save_translator` files hold no run config: --dataset/--root are needed; the translator goes to --device."""
    import uda.translators as translators
    from uda.translators import save_translator

    save_translator(uda.create("translator", "cyclegan_tiny"), tmp_path / "t.pt")
    r = invoke("translate", tmp_path / "t.pt", "--out", tmp_path / "c")
    assert r.exit_code == 2 and "--dataset" in r.output
    moved: list[torch.device] = []
    real = translators.load_translator

    def spy(path, **kw):
        t = real(path, **kw)
        to = t.to
        t.to = lambda dev, *a, **k: (moved.append(torch.device(dev)), to(dev, *a, **k))[1]
        return t

    monkeypatch.setattr(translators, "load_translator", spy)
    r = invoke("translate", tmp_path / "t.pt", "--dataset", "gta5", "--root", trees["gta5"], "--out", tmp_path / "o",
               "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert moved == [torch.device("cpu")]


@pytest.mark.parametrize("run", ["fda_run", "cyclegan_run"])
def test_translated_images_read_back_as_the_source(run: str, request, trees: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "cache"
    assert invoke("translate", request.getfixturevalue(run), "--out", out, "--native-size").exit_code == 0
    cached = uda.create("dataset", "gta5", root=trees["gta5"], images_root=out)
    plain = uda.create("dataset", "gta5", root=trees["gta5"])
    assert len(cached) == 4
    for i in range(4):
        assert torch.equal(cached[i]["label"], plain[i]["label"])
        assert not torch.equal(cached[i]["image"], plain[i]["image"])
