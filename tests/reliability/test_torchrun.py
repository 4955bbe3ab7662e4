"""A real ``torchrun --nproc-per-node 2 --max-restarts 1 -m uda train``: rank 1 fails once at iteration 3, torchrun
restarts the group, the run resumes from the checkpoint of iteration 2 and finishes equal to an uninterrupted
two-process run. The fault comes from ``inject/sitecustomize.py`` (on ``PYTHONPATH`` of the children only).

Status (measured on the shared 2-core machine, load ~10): the uninterrupted torchrun run passes (~60 s); with the
fault, rank 1 fails at iteration 3, rank 0 stops with gloo's 'Connection closed by peer' (no hang) and torchrun
restarts both ranks, but the restarted group's ``init_process_group`` fails in gloo ``connectFullMesh``
('timed out connecting: Connection refused') within ~15 s, twice in two attempts. Suspected cause: the restarted
ranks read their peers' addresses from the previous attempt in the shared store. Hence the strict xfail; see
docs/reliability.md."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from uda._io import load_checkpoint

from .conftest import HERE, ROOT, loss_iters, losses, same, sets, subprocess_env

ITERS = 4
OVER = (f"trainer.max_iters={ITERS}", "trainer.checkpoint_every=2", "trainer.dist_timeout_s=300", "data.batch_size=1")


def _torchrun(out: Path, log: Path, **env: str) -> tuple[int, float]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "--max-restarts",
           "1", "-m", "uda", "train", "source_only_synthetic", "--out", str(out), "--device", "cpu", *sets(*OVER)]
    start = time.monotonic()
    with open(log, "wb") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, timeout=540,
                            env=subprocess_env(PYTHONPATH=str(HERE / "inject"), **env)).returncode
    return rc, time.monotonic() - start


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="restarted gloo group cannot connect (see module docstring)")
def test_elastic_restart_after_a_rank_failure_resumes_and_matches(tmp_path):
    straight, faulty, marker = tmp_path / "straight", tmp_path / "faulty", tmp_path / "marker"
    rc, t_straight = _torchrun(straight, tmp_path / "straight.log")
    assert rc == 0, (tmp_path / "straight.log").read_text()[-3000:]
    rc, t_faulty = _torchrun(faulty, tmp_path / "faulty.log", UDA_FAULT_ITER="3", UDA_FAULT_RANK="1",
                             UDA_FAULT_MARKER=str(marker))
    log = (tmp_path / "faulty.log").read_text()
    assert rc == 0, log[-3000:]
    assert marker.is_file() and "injected fault on rank 1 at iteration 3" in log  # the fault did happen
    assert "resumed from" in log and "iteration 2)" in log
    a, b = load_checkpoint(straight / "checkpoints" / "last.pt"), load_checkpoint(faulty / "checkpoints" / "last.pt")
    for key in ("recipe", "optimizers", "schedulers", "data"):
        assert same(a[key], b[key]), key
    assert loss_iters(faulty) == list(range(1, ITERS + 1)) and losses(faulty) == losses(straight)
    print(f"torchrun 2 ranks, {ITERS} iterations: uninterrupted {t_straight:.1f} s, with one failure + restart "
          f"{t_faulty:.1f} s")
