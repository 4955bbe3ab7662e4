"""The model benchmark's --smoke mode runs and writes its JSON/Markdown results."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path


def test_bench_models_smoke(tmp_path):
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_models.py"
    spec = importlib.util.spec_from_file_location("bench_models", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--smoke", "--iters", "1", "--sizes", "64x32", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "models_smoke.json").read_text())
    assert result["model"] == "deeplabv2_tiny" and [r["mode"] for r in result["results"]] == [
        "forward",
        "forward+backward",
    ]
    assert all(r["mean_s"] > 0 for r in result["results"])
    assert "| 64x32 | forward |" in (tmp_path / "models_smoke.md").read_text()
