"""Two "nodes" on this machine: two torchrun agents (one gloo process each) meeting through the c10d rendezvous
on loopback train the same weights as one agent with two processes, and after one node's worker fails and torchrun
restarts the group, the run resumes from its last checkpoint and ends with the same weights as an uninterrupted
two-node run. Every subprocess is bounded by a timeout (its whole process group is killed)."""

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
INJECT = ROOT / "tests" / "reliability" / "inject"  # sitecustomize fault injection (UDA_FAULT_*)
SIZE = "32x16"
SETS = [f"data.source.size={SIZE}", f"data.target.size={SIZE}", f"data.val.size={SIZE}", f"eval.size={SIZE}",
        "data.source.options.num=8", "data.target.options.num=8", "data.val.options.num=2", "data.batch_size=1",
        "model.options.width=4", "trainer.log_every=1", "trainer.tensorboard=false", "trainer.eval_every=0",
        "trainer.max_iters=4", "trainer.checkpoint_every=2", "trainer.dist_timeout_s=30"]
LIMIT_S = 120


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


def _losses(run: Path) -> list[tuple[int, dict]]:
    import json

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [(r["global_iter"], r["loss"]) for r in rows if "loss" in r]


@pytest.mark.slow
def test_elastic_restart_of_one_node_resumes_from_the_last_checkpoint(tmp_path):
    """Node 1's worker raises at iteration 3 (after the checkpoint of iteration 2). Its agent restarts it; the
    other node's worker loses its peer, and that agent restarts its worker for the new rendezvous round without
    counting a restart (its ``TORCHELASTIC_RESTART_COUNT`` stays 0). Before the fix the restarted group never
    trained: that worker refused the existing run directory (exit 2), and a rank that died before joining left
    the store's per-rank join counters apart, so the next group connected to dead peers ("Connection refused")
    until ``--max-restarts`` was spent. Now every group takes a fresh number from rank 0 in the agent's store and
    the ranks agree that the run restarted (``uda.engine.distributed.init_distributed``)."""
    faulty, straight, marker = tmp_path / "faulty", tmp_path / "straight", tmp_path / "marker"
    rcs, log = _two_nodes(faulty, tmp_path, max_restarts=1, PYTHONPATH=os.pathsep.join([str(INJECT), str(ROOT)]),
                          UDA_FAULT_ITER="3", UDA_FAULT_RANK="1", UDA_FAULT_MARKER=str(marker))
    assert rcs == [0, 0], log[-4000:]
    assert marker.is_file() and "injected fault on rank 1 at iteration 3" in log  # the fault did happen
    assert "resumed from" in log and "iteration 2)" in log
    rcs, log = _two_nodes(straight, tmp_path)
    assert rcs == [0, 0], log[-4000:]
    a, b = _params(straight), _params(faulty)
    assert a.keys() == b.keys() and len(a) > 10
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # iterations 3 and 4 were trained once more after the restart, with the uninterrupted run's losses
    done = _losses(faulty)
    assert [i for i, _ in done] == [1, 2, 3, 4] and done == _losses(straight)
