"""Shared pieces of the fault-injection tests: tiny configs, the CLI in-process and as a real subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import torch
from click.testing import CliRunner

from uda.cli import main
from uda.config import load_config

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SIZE = "32x16"
# A 4-wide DeepLab-v2 on 32x16 synthetic images: milliseconds per iteration on one CPU thread.
TINY = [
    f"data.source.size={SIZE}", f"data.target.size={SIZE}", f"data.val.size={SIZE}", f"eval.size={SIZE}",
    "data.source.options.num=8", "data.target.options.num=8", "data.val.options.num=2", "data.batch_size=2",
    "model.options.width=4", "trainer.log_every=1", "trainer.tensorboard=false", "trainer.device=cpu",
    "trainer.eval_every=0",
]


def tiny_config(name: str = "source_only_synthetic", *overrides: str):
    """A built-in config shrunk to test size, plus ``overrides``."""
    return load_config(name, [*TINY, *overrides])


def sets(*overrides: str) -> list[str]:
    """``--set`` arguments for :data:`TINY` plus ``overrides``."""
    return [a for o in (*TINY, *overrides) for a in ("--set", o)]


def invoke(*args: object):
    """``uda ARGS`` in-process (stdout and stderr apart); exit codes as the real command gives them."""
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result) -> str:
    """The single ``error: ...`` line of a failed command (asserts there is exactly one line and no traceback)."""
    lines = [x for x in result.stderr.splitlines()
             if x.strip() and "%|" not in x and not x.startswith(("training ", "uda: resumed"))
             and not re.match(r"uda: \w+ \d+/\d+ ", x)]  # progress bars, plain progress lines
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a real ``python -m uda`` child: one thread (bit-exact with the in-process runs)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1", **extra)
    env.pop("UDA_DEBUG", None)
    return env


def popen_uda(args: list[str], log: Path, **env: str) -> subprocess.Popen:
    """Start ``python -m uda ARGS`` with stdout+stderr into ``log``."""
    with open(log, "wb") as f:
        return subprocess.Popen([sys.executable, "-m", "uda", *map(str, args)], stdout=f, stderr=subprocess.STDOUT,
                                env=subprocess_env(**env), cwd=ROOT)


def logged(run: Path) -> list[dict]:
    """The complete JSON lines of a run's metrics.jsonl (a torn last line is left out)."""
    path = run / "metrics.jsonl"
    out = []
    if path.is_file():
        for line in path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
    return out


def loss_iters(run: Path) -> list[int]:
    return [r["global_iter"] for r in logged(run) if "loss" in r]


def losses(run: Path) -> list[dict]:
    return [r["loss"] for r in logged(run) if "loss" in r]


def same(a, b) -> bool:
    """Bit-for-bit equality of nested tensors / containers / scalars."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def tensors(obj):
    """Every tensor inside a nested checkpoint."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from tensors(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from tensors(v)

