"""Shared fixtures: tiny synthetic trees in real layouts and one tiny trained run."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from uda.cli import main

SIZE = "64x32"


def invoke(*args: str):
    """Run ``uda ARGS`` in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="session")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    out = {"gta5": root / "GTA5", "cityscapes": root / "cityscapes"}
    r = invoke("data", "synth", "--out", out["gta5"], "--domain", "source", "--layout", "gta5", "--num", "4",
               "--size", SIZE)
    assert r.exit_code == 0, r.output
    r = invoke("data", "synth", "--out", out["cityscapes"], "--domain", "target", "--layout", "cityscapes",
               "--num", "2", "--size", SIZE, "--seed", "1")
    assert r.exit_code == 0, r.output
    return out


TINY = [
    "--set", "trainer.max_iters=2", "--set", "trainer.checkpoint_every=2", "--set", "trainer.tensorboard=false",
    "--set", f"data.source.size={SIZE}", "--set", f"data.target.size={SIZE}", "--set", f"eval.size={SIZE}",
    "--set", "data.batch_size=2", "--device", "cpu",
]


@pytest.fixture(scope="session")
def run_dir(trees: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``uda train`` of a tiny source-only model on the synthetic GTA5 → Cityscapes trees."""
    out = tmp_path_factory.mktemp("runs") / "run"
    r = invoke("train", "source_only_synthetic", "--source", f"gta5:{trees['gta5']}",
               "--target", f"cityscapes:{trees['cityscapes']}", "--out", out, "--seed", "3", *TINY)
    assert r.exit_code == 0, r.output
    return out


def _train(name: str, trees: dict[str, Path], out: Path, *extra: str) -> Path:
    r = invoke("train", name, "--source", f"gta5:{trees['gta5']}", "--target", f"cityscapes:{trees['cityscapes']}",
               "--out", out, *TINY, *extra)
    assert r.exit_code == 0, r.output
    return out


CYCLEGAN_SIZE = "96x48"
FDA_BETA = 0.2  # not the preset's 0.09: `uda translate` must take beta from the run's config


@pytest.fixture(scope="session")
def fda_run(trees: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``uda train fda_synthetic`` (2 iterations) on the synthetic GTA5 → Cityscapes trees, beta 0.2."""
    return _train("fda_synthetic", trees, tmp_path_factory.mktemp("runs") / "fda",
                  "--set", f"recipe.translator_options.beta={FDA_BETA}")


@pytest.fixture(scope="session")
def cyclegan_run(trees: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``uda train cyclegan_synthetic`` with a 2-iteration translator stage, trained at 96x48 (the trees are 64x32:
    the training size and the images' own size differ; smaller than 64x32 is too small for its discriminators)."""
    return _train("cyclegan_synthetic", trees, tmp_path_factory.mktemp("runs") / "cyclegan",
                  "--set", "recipe.translator_iters=2", "--set", f"data.source.size={CYCLEGAN_SIZE}",
                  "--set", f"data.target.size={CYCLEGAN_SIZE}")


@pytest.fixture(scope="session")
def wide_run(trees: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny source-only run whose model has a non-default option (``model.options.width=8``)."""
    return _train("source_only_synthetic", trees, tmp_path_factory.mktemp("runs") / "wide",
                  "--set", "model.options.width=8")


@pytest.fixture(scope="session")
def mlfa_run(trees: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``uda train mlfa_synthetic`` with a 2-iteration CycleGAN stage, at 128x64 (its multi-level discriminators
    need it)."""
    return _train("mlfa_synthetic", trees, tmp_path_factory.mktemp("runs") / "mlfa",
                  "--set", "recipe.translator_iters=2", "--set", "data.source.size=128x64",
                  "--set", "data.target.size=128x64")
