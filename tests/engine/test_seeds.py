"""``uda train NAME --seeds 0 1``: one full run directory per seed, one summary with mean ± std, refusal of an
existing run, and --resume of the seeds that did not finish."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from uda.cli import main

TINY = [
    "--set", "trainer.max_iters=2", "--set", "trainer.checkpoint_every=1", "--set", "trainer.tensorboard=false",
    "--set", "data.source.size=64x32", "--set", "data.target.size=64x32", "--set", "data.val.size=64x32",
    "--set", "eval.size=64x32", "--set", "data.source.options.num=4", "--set", "data.target.options.num=4",
    "--set", "data.val.options.num=2", "--set", "data.batch_size=2", "--set", "model.options.width=4",
    "--device", "cpu",
]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("seeds") / "so2"
    r = invoke("train", "source_only_synthetic", "--seeds", "0", "1", "--out", out, *TINY)
    assert r.exit_code == 0, r.output + r.stderr
    return out, r


def _final(run: Path) -> dict:
    return json.loads((run / "final.json").read_text())


def test_each_seed_is_a_full_run_with_its_seed(two_seeds) -> None:
    out, _ = two_seeds
    assert sorted(p.name for p in out.iterdir()) == ["seed0", "seed1", "seeds.json", "seeds.md"]
    for s in (0, 1):
        run = out / f"seed{s}"
        for f in ("config.yaml", "metrics.jsonl", "final.json", "checkpoints/last.pt", "table.md"):
            assert (run / f).is_file(), f"{run / f} missing"
        assert yaml.safe_load((run / "config.yaml").read_text())["trainer"]["seed"] == s


def test_summary_is_the_mean_and_std_of_the_seeds_final_json(two_seeds) -> None:
    out, r = two_seeds
    a, b = _final(out / "seed0"), _final(out / "seed1")
    summary = json.loads((out / "seeds.json").read_text())
    assert summary["seeds"] == [0, 1] and summary["num_seeds"] == 2 and summary["std"] == "population"
    for key in ("miou", "miou16", "miou13"):
        stat = summary["metrics"][key]
        assert stat["values"] == [a[key], b[key]]
        assert math.isclose(stat["mean"], (a[key] + b[key]) / 2, abs_tol=1e-4)
        assert math.isclose(stat["std"], abs(a[key] - b[key]) / 2, abs_tol=1e-4)  # population std of two values
    assert list(summary["per_class"]) == list(a["per_class"])
    for c, stat in summary["per_class"].items():
        x, y = a["per_class"][c], b["per_class"][c]
        if x is None or y is None:
            assert stat["mean"] is None and stat["std"] is None
        else:
            assert math.isclose(stat["mean"], (x + y) / 2, abs_tol=1e-4)
            assert math.isclose(stat["std"], abs(x - y) / 2, abs_tol=1e-4)
    m = summary["metrics"]["miou"]
    md = (out / "seeds.md").read_text()
    assert f"| miou | **{m['mean']:.2f} ± {m['std']:.2f}** | {a['miou']:.2f} | {b['miou']:.2f} |" in md
    assert f"{m['mean']:.2f} ± {m['std']:.2f}" in r.output  # the terminal table


def test_an_existing_multi_seed_run_is_refused(two_seeds) -> None:
    out, _ = two_seeds
    before = (out / "seeds.json").read_bytes()
    r = invoke("train", "source_only_synthetic", "--seeds", "0", "1", "--out", out, *TINY)
    assert r.exit_code == 2
    assert r.stderr.strip().splitlines() == [
        f"error: {out} already holds a run (seeds.json or seed*/); continue it with --resume, choose another "
        "--out, or pass --overwrite to move the old run aside"]
    assert (out / "seeds.json").read_bytes() == before


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0", "0"], "--seeds 0 0: give distinct seeds >= 0"),
    (["--seeds", "0", "--seed", "1"], "--seed and --seeds contradict each other"),
])
def test_bad_seed_lists(tmp_path: Path, args: list[str], message: str) -> None:
    r = invoke("train", "source_only_synthetic", *args, "--out", tmp_path / "x", *TINY)
    assert r.exit_code == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_resume_keeps_finished_seeds_and_continues_the_others(tmp_path: Path) -> None:
    out = tmp_path / "so"
    assert invoke("train", "source_only_synthetic", "--seeds", "0", "1", "--out", out, *TINY).exit_code == 0
    done = (out / "seed0" / "final.json").read_bytes()
    (out / "seed1" / "final.json").unlink()  # seed 1 stopped after its last checkpoint (iteration 2) ...
    r = invoke("train", "--resume", "--seeds", "0,1", "2", "--out", out, *TINY, "--set", "trainer.max_iters=3")
    assert r.exit_code == 0, r.output + r.stderr
    assert f"seed 0: already finished: {out / 'seed0'}" in r.stderr
    assert f"seed 1: resuming {out / 'seed1'}" in r.stderr
    assert f"seed 2: training {out / 'seed2'}" in r.stderr  # not started: the saved experiment, its own seed
    assert (out / "seed0" / "final.json").read_bytes() == done
    iters = [json.loads(x)["global_iter"] for x in (out / "seed1" / "metrics.jsonl").read_text().splitlines()]
    assert max(iters) == 3  # ... and continued from it to the new length
    assert yaml.safe_load((out / "seed2" / "config.yaml").read_text())["trainer"]["seed"] == 2
    summary = json.loads((out / "seeds.json").read_text())
    assert summary["seeds"] == [0, 1, 2]
    assert summary["metrics"]["miou"]["values"] == [_final(out / f"seed{s}")["miou"] for s in (0, 1, 2)]
