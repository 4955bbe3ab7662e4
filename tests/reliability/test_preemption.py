"""Preemption: a real ``kill -9`` and a real SIGINT on ``python -m uda train``, then ``--resume`` to the end.

The interrupted-and-resumed run must equal an uninterrupted one bit for bit (CPU, one thread): model, recipe
(discriminators), optimizer and scheduler states, and the logged losses. ``metrics.jsonl`` has every iteration
exactly once: on resume the loop drops the lines logged after the checkpoint it restarts from (those iterations
are replayed and logged again), and a line torn by the kill is dropped with them.
"""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest
import torch

from uda._io import load_checkpoint
from uda.engine import load_latest_checkpoint, train

from .conftest import invoke, loss_iters, losses, popen_uda, same, sets, tiny_config

ITERS, EVERY = 12, 2
OVER = (f"trainer.max_iters={ITERS}", f"trainer.checkpoint_every={EVERY}", "trainer.keep_last=10")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run (in-process, one thread)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("reference") / "run"
    try:
        train(tiny_config("source_only_synthetic", *OVER), out)
    finally:
        torch.set_num_threads(n)
    return out


def _args(out: Path) -> list[str]:
    return ["train", "source_only_synthetic", "--out", out, "--device", "cpu", *sets(*OVER)]


def _start_and_wait(out: Path, log: Path, at_least: int) -> object:
    """Start the CLI run and return once it has logged iteration ``at_least`` (a checkpoint exists by then)."""
    proc = popen_uda(_args(out), log)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before the fault could be injected:\n{log.read_text()[-2000:]}")
        if loss_iters(out) and max(loss_iters(out)) >= at_least:
            return proc
        time.sleep(0.01)
    proc.kill()
    pytest.fail("the run did not start in time")


def _assert_equal_runs(a: Path, b: Path) -> None:
    sa, sb = load_checkpoint(a / "checkpoints" / "last.pt"), load_checkpoint(b / "checkpoints" / "last.pt")
    for key in ("recipe", "model", "optimizers", "schedulers", "data"):
        assert same(sa[key], sb[key]), key
    assert sb["global_iter"] == ITERS
    # every iteration logged exactly once, with the uninterrupted run's losses
    assert loss_iters(b) == list(range(1, ITERS + 1))
    assert losses(a) == losses(b)


@pytest.mark.slow
def test_kill_9_loses_at_most_the_iterations_since_the_last_checkpoint(tmp_path, reference):
    out = tmp_path / "run"
    proc = _start_and_wait(out, tmp_path / "log.txt", at_least=3)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    ck = out / "checkpoints"
    # atomic writes: every checkpoint on disk (under its final name) is complete and passes its checksum
    for f in ck.glob("*.pt"):
        load_checkpoint(f)
    state, _ = load_latest_checkpoint(ck)
    saved, reached = state["global_iter"], max(loss_iters(out))
    assert saved >= EVERY and 0 <= reached - saved <= EVERY, (saved, reached)
    # the last saved iteration equals the uninterrupted run's state at that iteration
    ref = load_checkpoint(reference / "checkpoints" / f"iter_{saved:07d}.pt")
    assert same(ref["recipe"], state["recipe"])
    r = invoke(*_args(out), "--resume")
    assert r.exit_code == 0, r.stderr[-2000:]
    assert f"resumed from {ck}" in r.stderr and f"iteration {saved})" in r.stderr
    _assert_equal_runs(reference, out)


@pytest.mark.slow
def test_sigint_finishes_the_step_saves_and_exits_losing_nothing(tmp_path, reference):
    out, log = tmp_path / "run", tmp_path / "log.txt"
    proc = _start_and_wait(out, log, at_least=3)
    proc.send_signal(signal.SIGINT)
    start = time.monotonic()
    assert proc.wait(timeout=60) == 2  # a user-facing stop: exit 2, one line
    assert time.monotonic() - start < 30
    last = [x for x in log.read_text().splitlines() if x.startswith("error: ")]
    assert len(last) == 1 and "interrupted by SIGINT at iteration" in last[0] and "--resume" in last[0]
    state = load_checkpoint(out / "checkpoints" / "last.pt")
    assert state["global_iter"] == max(loss_iters(out))  # nothing lost: the step in flight was saved
    assert not (out / "final.json").exists()
    r = invoke(*_args(out), "--resume")
    assert r.exit_code == 0, r.stderr[-2000:]
    _assert_equal_runs(reference, out)


def test_resume_from_a_copied_run_after_a_fallback_is_still_exact(tmp_path, reference):
    """The newest checkpoint flipped and last.pt truncated: resume falls back one checkpoint, warns naming the
    file, replays the lost iterations and still ends equal to the uninterrupted run."""
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    ck = out / "checkpoints"
    data = bytearray((ck / f"iter_{ITERS:07d}.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (ck / f"iter_{ITERS:07d}.pt").write_bytes(bytes(data))
    raw = (ck / "last.pt").read_bytes()
    (ck / "last.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.warns(UserWarning, match=rf"iter_{ITERS:07d}\.pt.*checksum mismatch"):
        r = invoke(*_args(out), "--resume")
    assert r.exit_code == 0, r.stderr[-2000:]
    assert f"iter_{ITERS - EVERY:07d}.pt" in r.stderr
    _assert_equal_runs(reference, out)
