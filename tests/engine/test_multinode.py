"""Two "nodes" on this machine: two torchrun agents (one gloo process each) meeting through the c10d rendezvous
on loopback train the same weights as one agent with two processes. Every subprocess is bounded by a timeout
(its whole process group is killed)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from uda._io import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
SIZE = "32x16"
SETS = [f"data.source.size={SIZE}", f"data.target.size={SIZE}", f"data.val.size={SIZE}", f"eval.size={SIZE}",
        "data.source.options.num=8", "data.target.options.num=8", "data.val.options.num=2", "data.batch_size=1",
        "model.options.width=4", "trainer.log_every=1", "trainer.tensorboard=false", "trainer.eval_every=0",
        "trainer.max_iters=4", "trainer.checkpoint_every=2", "trainer.dist_timeout_s=30"]
LIMIT_S = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cmd(out: Path, launcher: list[str]) -> list[str]:
    args = [sys.executable, "-m", "torch.distributed.run", *launcher, "-m", "uda", "train", "source_only_synthetic",
            "--out", str(out), "--device", "cpu"]
    return args + [a for s in SETS for a in ("--set", s)]


def _run_all(cmds: list[list[str]], logs: list[Path], **env: str) -> list[int]:
    """Start every command in its own session, wait (bounded), kill the whole group of any that overstays."""
    environ = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", **env)
    procs = []
    for cmd, log in zip(cmds, logs):
        f = open(log, "wb")  # noqa: SIM115 - closed below, after the process ends
        procs.append((subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
                                       env=environ), f))
    rcs = []
    for p, f in procs:
        try:
            rcs.append(p.wait(timeout=LIMIT_S))
        except subprocess.TimeoutExpired:
            for q, _ in procs:
                if q.poll() is None:
                    os.killpg(q.pid, signal.SIGKILL)
            p.wait()
            rcs.append(-1)
        finally:
            f.close()
    return rcs


def _two_nodes(out: Path, tmp: Path, max_restarts: int = 0, **env: str) -> tuple[list[int], str]:
    port = _free_port()
    launcher = ["--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint",
                f"127.0.0.1:{port}", "--rdzv-id", f"uda_{port}", "--max-restarts", str(max_restarts)]
    logs = [tmp / f"{out.name}_node{i}.log" for i in range(2)]
    rcs = _run_all([_cmd(out, launcher), _cmd(out, launcher)], logs, **env)
    return rcs, "\n".join(log.read_text(errors="replace") for log in logs)


def _params(run: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    # parameters only: BatchNorm running statistics are per rank, and which agent gets rank 0 is up to the rendezvous
    return {k: v for k, v in state["model"].items()
            if isinstance(v, torch.Tensor) and "running" not in k and "num_batches" not in k}


@pytest.mark.slow
def test_two_agents_train_the_same_weights_as_one_agent_with_two_processes(tmp_path):
    one = tmp_path / "one_agent"
    rc = _run_all([_cmd(one, ["--standalone", "--nproc-per-node", "2"])], [tmp_path / "one.log"])
    assert rc == [0], (tmp_path / "one.log").read_text()[-3000:]
    two = tmp_path / "two_nodes"
    rcs, log = _two_nodes(two, tmp_path)
    assert rcs == [0, 0], log[-4000:]
    a, b = _params(one), _params(two)
    assert a.keys() == b.keys() and len(a) > 10
    for k in a:
        assert torch.equal(a[k], b[k]), k
