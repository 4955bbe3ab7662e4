"""A run is never overwritten; `--resume` continues the run as it was configured (its saved config.yaml)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from uda._errors import UdaError
from uda.config import load_config
from uda.engine import train

from .conftest import TINY, invoke


def _one_line_error(r) -> str:
    assert r.exit_code == 2, r.output
    lines = [x for x in r.stderr.strip().splitlines() if x.strip()]
    assert len(lines) == 1, r.stderr
    return lines[0]


def _max_iter(run: Path) -> int:
    return max(json.loads(x).get("global_iter", 0) for x in (run / "metrics.jsonl").read_text().splitlines())


def _args(trees: dict[str, Path], run: Path) -> list[str]:
    return ["source_only_synthetic", "--source", f"gta5:{trees['gta5']}", "--target",
            f"cityscapes:{trees['cityscapes']}", "--out", str(run), "--seed", "3", *TINY]


def test_training_into_a_run_is_refused(run_dir: Path, trees: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    err = _one_line_error(invoke("train", *_args(trees, run)))
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # untouched
    # the re-run recipe of the docs, `uda train RUN/config.yaml`, into its own directory: refused too
    err = _one_line_error(invoke("train", run / "config.yaml", "--out", run, "--device", "cpu"))
    assert "already holds a run" in err


def test_overwrite_moves_the_old_run_aside(run_dir: Path, trees: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "metrics.jsonl").write_text('{"global_iter": 99, "marker": true}\n')
    r = invoke("train", *_args(trees, run), "--overwrite")
    assert r.exit_code == 0, r.output
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("run.replaced-")]
    assert len(aside) == 1 and "marker" in (aside[0] / "metrics.jsonl").read_text()
    assert (aside[0] / "checkpoints" / "last.pt").is_file()
    assert "marker" not in (run / "metrics.jsonl").read_text() and _max_iter(run) == 2
    assert "contradict" in _one_line_error(invoke("train", *_args(trees, run), "--overwrite", "--resume"))


def test_python_train_refuses_unless_told(tmp_path: Path, tiny) -> None:
    cfg = tiny("source_only_synthetic", "trainer.max_iters=1")
    train(cfg, tmp_path / "r")
    with pytest.raises(UdaError, match="already holds a run"):
        train(cfg, tmp_path / "r")
    train(cfg, tmp_path / "r", overwrite=True)
    assert len(list(tmp_path.glob("r.replaced-*"))) == 1


def test_resume_keeps_the_run_config(run_dir: Path, trees: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    saved = (run / "config.yaml").read_text()
    assert load_config(run / "config.yaml").trainer.max_iters == 2
    # NAME is optional with --resume; the run was started with --set trainer.max_iters=2: still 2
    r = invoke("train", "--resume", "--out", run, "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert "(source_only, 2 iterations)" in r.stderr and "resume:" not in r.stderr
    assert _max_iter(run) == 2 and (run / "config.yaml").read_text() == saved
    # NAME given (the preset says 400 iterations): the run's own config still wins
    r = invoke("train", "source_only_synthetic", "--resume", "--out", run, "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert "(source_only, 2 iterations)" in r.stderr and _max_iter(run) == 2
    # overrides apply on top, each change printed
    r = invoke("train", "--resume", "--out", run, "--device", "cpu", "--set", "trainer.max_iters=3")
    assert r.exit_code == 0, r.output
    assert "resume: trainer.max_iters: 2 -> 3" in r.stderr and _max_iter(run) == 3
    assert load_config(run / "config.yaml").trainer.max_iters == 3


def test_train_needs_a_name_unless_resuming() -> None:
    r = invoke("train")
    assert r.exit_code == 2 and "--resume --out RUN_DIR" in r.output
