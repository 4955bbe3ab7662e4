"""Shared helpers of the benchmark scripts: machine description, timing, memory, FLOPs, result writers.

Every benchmark writes ``<out>/<name>.json`` (raw figures + ``machine``, ``command``, ``date``) and
``<out>/<name>.md`` (a Markdown table) through :func:`write_results`. Timings are wall-clock
(``time.perf_counter``) after warm-up; ratios are measured side by side in one process with interleaved
repeats (:func:`interleaved`), because the machine may be shared and its load changes by the minute.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    """1/5/15-minute load averages (``None`` where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info(device: str | torch.device = "cpu") -> dict[str, Any]:
    """Platform, CPU model, core count, torch version, intra-op threads, load average and GPU name (if CUDA)."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_average": load_average(),
    }
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda"] = torch.version.cuda
    return info


def command_line(script: str | None = None, argv: Sequence[str] | None = None) -> str:
    """The command that produced the results (``python benchmarks/x.py --flag``): ``sys.argv``, or ``script``
    with ``argv`` when a script's ``main(argv)`` is called from Python."""
    args = [script or sys.argv[0], *(sys.argv[1:] if argv is None else argv)]
    with contextlib.suppress(ValueError):
        args[0] = str(Path(args[0]).resolve().relative_to(Path.cwd()))
    return " ".join(["python", *args])


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def header(device: str | torch.device = "cpu", script: str | None = None,
           argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The fields every result file starts with: command, UTC date, machine."""
    return {"command": command_line(script, argv), "date": utc_now(), "machine": machine_info(device)}


def md_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A Markdown table of ``rows`` (floats printed with 4 significant digits; ``None`` as an em dash)."""
    if not rows:
        return "(no rows)\n"
    cols = list(columns or rows[0].keys())

    def fmt(v: Any) -> str:
        if v is None:
            return "—"
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    numeric = [all(isinstance(r.get(c), int | float) or r.get(c) is None for r in rows) for c in cols]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def machine_line(result: dict[str, Any]) -> str:
    m = result["machine"]
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ""
    return (f"`{result['command']}` on {result['date']} — {m['cpu']} ({m['cores']} cores, {m['threads']} torch threads"
            f"{gpu}), torch {m['torch']}, {m['platform']}; load average {m.get('load_average')}.")


def out_dir(args: Any) -> Path:
    """``--out``, else ``benchmarks/results`` for a full run and a fresh temporary folder for ``--smoke`` (CI runs
    the smoke modes from a clean clone and must not overwrite the committed results)."""
    if args.out:
        return Path(args.out)
    if getattr(args, "smoke", False):
        import tempfile

        return Path(tempfile.mkdtemp(prefix="uda_bench_smoke_"))
    return DEFAULT_OUT


def write_results(out_dir: str | os.PathLike, name: str, result: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.json`` and ``<out_dir>/<name>.md``; returns both paths.

    Both texts are rendered and written to temporary files first, then renamed into place: an error (or a kill)
    while writing leaves the previous pair whole, never a half-written file or a new JSON beside an old table.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jp, mp = out / f"{name}.json", out / f"{name}.md"
    texts = {jp: json.dumps(result, indent=2, default=str) + "\n", mp: markdown.rstrip() + "\n"}
    tmps: list[Path] = []
    try:
        for path, text in texts.items():
            tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
            tmps.append(tmp)
            tmp.write_text(text)
        for tmp, path in zip(tmps, texts):
            os.replace(tmp, path)
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
    return jp, mp


def summarize(times: Sequence[float]) -> dict[str, float]:
    """median / min / mean / max of a list of seconds."""
    return {"median_s": statistics.median(times), "min_s": min(times), "mean_s": statistics.fmean(times),
            "max_s": max(times), "n": len(times)}


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int, sync: Callable[[], None] = lambda: None
                ) -> dict[str, list[float]]:
    """Time each callable ``repeats`` times, alternating A, B, A, B, ... (order reversed every round), so a
    change of machine load hits all of them alike. Returns name → list of seconds."""
    names = list(fns)
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for n in (names if r % 2 == 0 else names[::-1]):
            sync()
            t = time.perf_counter()
            fns[n]()
            sync()
            out[n].append(time.perf_counter() - t)
    return out


def rss_mib() -> float:
    """Current resident set size of this process (MiB), from /proc/self/statm."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return float("nan")


def maxrss_mib() -> float:
    """The process's peak RSS so far (``resource.getrusage``; KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakRSS:
    """Context manager sampling RSS every ``interval`` seconds in a thread: ``peak_mib`` (highest sample) and
    ``growth_mib`` (peak minus RSS on entry). ``ru_maxrss`` is process-wide and monotonic, so it cannot tell
    two configurations measured in one process apart; the sampler can (it may miss spikes shorter than the
    interval)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.start_mib = self.peak_mib = 0.0
        self._stop = threading.Event()

    def __enter__(self) -> PeakRSS:
        self.start_mib = self.peak_mib = rss_mib()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mib = max(self.peak_mib, rss_mib())
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mib = max(self.peak_mib, rss_mib())

    @property
    def growth_mib(self) -> float:
        return self.peak_mib - self.start_mib


def count_flops(fn: Callable[[], Any]) -> int:
    """Total FLOPs of one call of ``fn`` (``torch.utils.flop_counter.FlopCounterMode``: matmuls, convolutions
    and their backward; elementwise ops are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    mode = FlopCounterMode(display=False)
    with mode:
        fn()
    return int(mode.get_total_flops())


def matmul_flops_per_s(device: str | torch.device = "cpu", n: int = 2048, repeats: int = 5,
                       dtype: torch.dtype = torch.float32) -> float:
    """The machine's measured matmul rate: best of ``repeats`` ``torch.mm`` of two n×n matrices (2n³ FLOPs)."""
    dev = torch.device(device)
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    torch.mm(a, b)
    sync()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        sync()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best
