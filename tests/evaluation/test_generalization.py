"""`uda evaluate RUN --target DATASET:ROOT ...`: one domain-generalization table (JSON + Markdown) whose mIoU per
dataset is exactly what a plain `uda evaluate RUN --dataset X --root Y` reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from uda.cli import main
from uda.evaluation.generalization import JSON_NAME, MARKDOWN_NAME

SIZE = "64x32"
# target dataset -> (synth layout, val images the tree holds)
TARGETS = {"acdc": ("acdc", 4), "bdd100k": ("bdd100k", 2), "mapillary": ("mapillary", 2)}


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dg")
    out = {"gta5": root / "GTA5", "cityscapes": root / "cityscapes"}
    assert invoke("data", "synth", "--out", out["gta5"], "--domain", "source", "--layout", "gta5", "--num", "4",
                  "--size", SIZE).exit_code == 0
    assert invoke("data", "synth", "--out", out["cityscapes"], "--domain", "target", "--layout", "cityscapes",
                  "--num", "2", "--size", SIZE, "--seed", "1").exit_code == 0
    for name, (layout, _) in TARGETS.items():
        out[name] = root / name
        extra = ["--num", "1", "--splits", "val", "--no-ref"] if layout == "acdc" else ["--num", "2", "--splits", "val"]
        r = invoke("data", "synth", "--out", out[name], "--layout", layout, "--size", "64x36", "--seed", "2", *extra)
        assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def run(trees, tmp_path_factory) -> Path:
    """A tiny source-only run trained with the real `uda train` (GTA5 -> Cityscapes trees)."""
    out = tmp_path_factory.mktemp("runs") / "run"
    r = invoke("train", "source_only_synthetic", "--source", f"gta5:{trees['gta5']}",
               "--target", f"cityscapes:{trees['cityscapes']}", "--out", out, "--device", "cpu", "--seed", "3",
               "--set", "trainer.max_iters=2", "--set", "trainer.checkpoint_every=2",
               "--set", "trainer.tensorboard=false", "--set", f"data.source.size={SIZE}",
               "--set", f"data.target.size={SIZE}", "--set", f"eval.size={SIZE}", "--set", "data.batch_size=2")
    assert r.exit_code == 0, r.output
    return out


def _targets(trees) -> list[str]:
    return [a for name in TARGETS for a in ("--target", f"{name}:{trees[name]}")]


def test_table_has_one_row_per_target_and_matches_plain_evaluate(run, trees, tmp_path):
    r = invoke("evaluate", run, *_targets(trees), "--json", "--out", tmp_path, "--device", "cpu")
    assert r.exit_code == 0, r.output
    table = json.loads(r.stdout)
    assert table == json.loads((tmp_path / JSON_NAME).read_text())
    rows = table["targets"]
    assert [row["dataset"] for row in rows] == list(TARGETS)
    assert [row["num_images"] for row in rows] == [n for _, n in TARGETS.values()]
    assert all(row["split"] == "val" for row in rows)
    assert len(table["classes"]) == 19 and all(set(row["per_class"]) == set(table["classes"]) for row in rows)
    assert table["mean_miou"] == pytest.approx(sum(row["miou"] for row in rows) / len(rows))
    for row in rows:  # each row is exactly the plain `uda evaluate RUN --dataset X --root Y --json`
        plain = invoke("evaluate", run, "--dataset", row["dataset"], "--root", trees[row["dataset"]], "--json",
                       "--device", "cpu")
        assert plain.exit_code == 0, plain.output
        single = json.loads(plain.stdout)
        assert row["miou"] == single["miou"] and row["per_class"] == single["per_class"]
        assert row["num_images"] == single["num_images"]
    md = (tmp_path / MARKDOWN_NAME).read_text().splitlines()
    body = [line for line in md if line.startswith("| ") and not line.startswith("| dataset")]
    assert [line.split(" | ")[0][2:] for line in body] == list(TARGETS)
    assert md[-1].startswith("Mean mIoU over the 3 datasets") and f"**{table['mean_miou']:.1f}**" in md[-1]


def test_table_goes_into_the_run_directory_by_default(run, trees):
    r = invoke("evaluate", run, "--target", f"acdc:{trees['acdc']}", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert (run / JSON_NAME).is_file() and (run / MARKDOWN_NAME).is_file()
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["dataset", "split", "images", "mIoU"] and lines[1].split()[:3] == ["acdc", "val", "4"]
    assert not list(run.glob(".*.tmp"))  # written via temporary files, none left


def test_bad_targets_are_one_line_errors(run, trees):
    r = invoke("evaluate", run, "--target", "acdc")
    assert r.exit_code == 2 and "is not DATASET:ROOT" in r.output
    r = invoke("evaluate", run, "--target", f"nosuchdataset:{trees['acdc']}")
    assert r.exit_code == 2 and "nosuchdataset" in r.output
    r = invoke("evaluate", run, "--target", f"acdc:{trees['acdc']}", "--target", f"acdc:{trees['acdc']}")
    assert r.exit_code == 2 and "given twice" in r.output
    r = invoke("evaluate", run, "--target", f"acdc:{trees['acdc']}", "--dataset", "acdc", "--root", trees["acdc"])
    assert r.exit_code == 2 and "--target replaces --dataset" in r.output
    r = invoke("evaluate", run, "--out", trees["acdc"])
    assert r.exit_code == 2 and "without --target" in r.output
