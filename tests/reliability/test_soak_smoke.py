"""``benchmarks/bench_soak.py --smoke``: the soak benchmark runs and writes sane figures (the full 2,000-iteration
run lives in benchmarks/results/soak.{json,md})."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_soak


def test_slope_is_least_squares():
    assert bench_soak.slope_per_1k([(100, 10.0), (200, 11.0), (300, 12.0)]) == pytest.approx(10.0)
    assert bench_soak.slope_per_1k([(100, 5.0)]) is None


@pytest.mark.slow
def test_smoke_run_writes_rss_figures(tmp_path):
    res = bench_soak.main(["--smoke", "--iters", "20", "--out", str(tmp_path)])
    data = json.loads((tmp_path / "soak_smoke.json").read_text())
    assert data["iterations"] == 20 and data == json.loads(json.dumps(res, default=str))
    assert [s["iter"] for s in data["samples"]] == [0, 10, 20]
    for key in ("rss_first_mib", "rss_last_mib", "rss_max_mib", "slope_mib_per_1k"):
        assert math.isfinite(data[key]) and (key.startswith("slope") or data[key] > 0)
    assert {"command", "date", "machine"} <= set(data)
    assert (tmp_path / "soak_smoke.md").read_text().startswith("# Soak")
