"""Divergence through the CLI (a learning rate that blows the weights up) and damaged checkpoints met by commands.

Complements tests/engine (which injects a NaN through a callback and corrupts checkpoints for the library call):
here the fault comes from the config or the disk and the outcome is checked where users see it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch

from uda._io import load_checkpoint
from uda.engine import train

from .conftest import invoke, one_line_error, sets, tensors, tiny_config


@pytest.mark.parametrize("lr", ["1e12", "1e30"])
def test_divergence_stops_naming_iteration_loss_and_last_good_checkpoint(tmp_path, lr):
    out = tmp_path / "run"
    r = invoke("train", "source_only_synthetic", "--out", out, "--device", "cpu",
               *sets("trainer.max_iters=8", "trainer.checkpoint_every=1", f"optim.generator.lr={lr}"))
    assert r.exit_code == 1, r.stderr[-1500:]
    line = one_line_error(r)
    m = re.search(r"non-finite loss '(\w+)' = (nan|inf|-inf) at iteration (\d+).*last good checkpoint: (\S+?);", line)
    m = m or re.search(r"refusing to save non-finite weights at iteration (\d+); last good checkpoint: (\S+)", line)
    assert m, line
    good = m.groups()[-1]
    saved = sorted((out / "checkpoints").glob("iter_*.pt"))
    assert good == (str(saved[-1]) if saved else "none")
    # no saved checkpoint holds a non-finite number: weights, buffers, optimizer moments, everything
    for f in (out / "checkpoints").glob("*.pt"):
        for t in tensors(load_checkpoint(f)):
            assert not t.is_floating_point() or bool(torch.isfinite(t).all()), f
    assert not (out / "final.json").exists()


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("finished") / "run"
    try:
        train(tiny_config("source_only_synthetic", "trainer.max_iters=4", "trainer.checkpoint_every=2"), out)
    finally:
        torch.set_num_threads(n)
    return out


def _damage(run: Path) -> tuple[Path, Path]:
    ck = run / "checkpoints"
    last, newest = ck / "last.pt", ck / "iter_0000004.pt"
    raw = last.read_bytes()
    last.write_bytes(raw[: len(raw) // 2])  # truncated mid-file
    data = bytearray(newest.read_bytes())
    for i in range(100, 110):
        data[i] ^= 0x5A  # flipped bytes
    newest.write_bytes(bytes(data))
    return last, newest


def test_commands_name_a_truncated_or_flipped_checkpoint(finished, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    last, newest = _damage(run)
    (tmp_path / "empty").mkdir()
    for target, path in ((run, last), (last, last), (newest, newest)):
        r = invoke("evaluate", target, "--dataset", "cityscapes", "--root", tmp_path / "empty", "--device", "cpu")
        assert r.exit_code == 2
        line = one_line_error(r)
        assert str(path) in line and ("checksum mismatch" in line or "truncated or corrupt" in line), line
    # the sidecar is what catches flipped bytes: without it, the flip is still caught (or loads as other numbers
    # of the same shapes, which is why the sidecar exists)
    assert "checksum mismatch" in one_line_error(invoke("predict", newest, tmp_path / "empty", "--out", tmp_path / "p"))


def test_resume_with_every_checkpoint_damaged_stops_naming_them(finished, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    _damage(run)
    old = run / "checkpoints" / "iter_0000002.pt"
    old.write_bytes(old.read_bytes()[:1000])
    with pytest.warns(UserWarning):
        r = invoke("train", "source_only_synthetic", "--out", run, "--device", "cpu", "--resume",
                   *sets("trainer.max_iters=4", "trainer.checkpoint_every=2"))
    assert r.exit_code == 2
    line = one_line_error(r)
    for name in ("iter_0000004.pt", "iter_0000002.pt", "last.pt"):
        assert name in line
    assert "no valid checkpoint" in line
