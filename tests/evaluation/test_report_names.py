"""Reports name the evaluated data and method: no "Cityscapes val", "uda (ours)" or published rows on other data."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import uda
from uda.cli import main
from uda.config import EvalConfig
from uda.evaluation import evaluate, format_table, write_report
from uda.labels import CITYSCAPES_CLASSES

from .conftest import TinySeg


def _result(**extra):
    per_class = {c: 50.0 for c in CITYSCAPES_CLASSES}
    return {"miou": 50.0, "per_class": per_class, "num_images": 3, "protocol": "19", "miou19": 50.0, **extra}


def test_evaluate_records_the_dataset():
    val = uda.create("dataset", "synthetic", split="val", size="32x16", num=2, domain="target")
    result = evaluate(TinySeg(num_classes=19, stride=4).eval(), val, EvalConfig(size="32x16"), progress=False)
    assert result["dataset"] == "synthetic (target) val"


def test_synthetic_report_has_no_cityscapes_ours_or_published_rows(tmp_path):
    result = _result(dataset="synthetic (target) val", method="mlfa")
    paths = write_report(result, tmp_path, setup="gta5")  # a paper setup asked for, but not Cityscapes data
    md, text, csv_text = (paths[k].read_text() for k in ("markdown", "text", "csv"))
    for body in (md, text, csv_text):
        assert "Cityscapes" not in body and "ours" not in body and "MLFA" not in body and "DLOW" not in body
        assert "mlfa" in body
    assert "synthetic (target) val, 3 images" in md


def test_cityscapes_report_keeps_the_published_rows():
    text = format_table(_result(dataset="Cityscapes val", method="advent"), setup="gta5")
    assert "MLFA" in text and "advent" in text and "ours" not in text
    assert "this model" in format_table(_result())  # no method known: a neutral label
    assert "MLFA" in format_table(_result(), setup="gta5")  # results from before: taken as Cityscapes


def test_predict_counts_images_not_files(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (32, 16), (10 * i, 20, 30)).save(tmp_path / f"img{i}.png")
    from uda.models import save_weights

    model = uda.create("model", "deeplabv2_tiny", num_classes=19)
    save_weights(model, tmp_path / "w.pt")  # bare weights (no config): --model names the network
    r = CliRunner().invoke(main, ["predict", str(tmp_path / "w.pt"), str(tmp_path / "img0.png"),
                                  str(tmp_path / "img1.png"), str(tmp_path / "img2.png"), "--model", "deeplabv2_tiny",
                                  "--out", str(tmp_path / "out"), "--save", "trainid,color,overlay", "--device", "cpu"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "for 3 images (9 files" in r.output


def test_training_run_names_its_method(tmp_path):
    r = CliRunner().invoke(main, ["train", "source_only_synthetic", "--out", str(tmp_path / "run"), "--device", "cpu",
                                  "--set", "trainer.max_iters=1", "--set", "data.source.options.num=2",
                                  "--set", "data.target.options.num=2", "--set", "data.val.options.num=1",
                                  "--set", "trainer.tensorboard=false", "--set", "data.batch_size=1"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    final = json.loads((tmp_path / "run" / "final.json").read_text())
    assert final["method"] == "source_only" and final["dataset"] == "synthetic (target) val"
    md = (tmp_path / "run" / "table.md").read_text()
    assert "| source_only |" in md and "Cityscapes" not in md and "ours" not in md


@pytest.mark.parametrize("setup", ["gta5", "synthia"])
def test_published_rows_need_cityscapes(setup):
    assert "MLFA" not in format_table(_result(dataset="GTA5 val"), setup=setup)
