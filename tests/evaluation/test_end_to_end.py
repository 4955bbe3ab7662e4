"""evaluate / predict / evaluate_predictions / write_report end to end on a tiny Cityscapes tree."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

import uda
from uda import DataError, UdaError
from uda.config import EvalConfig
from uda.evaluation import (
    SELECTED_ON_TARGET_LABELS,
    LabelFreeScores,
    evaluate,
    evaluate_predictions,
    format_table,
    predict,
    write_report,
)
from uda.labels import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, TRAINID_TO_CITYSCAPES_ID

from .conftest import STEMS, TinyCityscapes, TinySeg

CFG = EvalConfig(size="24x12")  # input resized to half, logits upsampled to the label size (48x24)


def test_evaluate_matches_its_own_saved_predictions(tiny_dataset, tmp_path):
    model = TinySeg(stride=2).train()
    result = evaluate(model, tiny_dataset, CFG, device="cpu", progress=False, report_dir=tmp_path / "report")
    assert model.training  # mode restored
    assert result["num_images"] == 3 and result["protocol"] == "19"
    assert {"miou", "per_class", "miou16", "miou13", "miou19", "label_free"} <= set(result)
    assert list(result["per_class"]) == list(CITYSCAPES_CLASSES)
    assert 0 <= result["label_free"]["entropy"] <= 1 and 0 <= result["label_free"]["im_score"] <= 1
    assert result["selection"].startswith("final checkpoint")
    assert (tmp_path / "report" / "confusion_matrix.png").stat().st_size > 0
    json.dumps(result)  # JSON-serializable, NaN-free

    paths = predict(model, [tiny_dataset.root / "leftImg8bit" / "val"], tmp_path / "pred",
                    save=("trainid", "color", "overlay", "labelid"), cfg=CFG, progress=False)  # fmt: skip
    assert len(paths) == 4 * 3 and all(p.is_file() for p in paths)
    again = evaluate_predictions(tmp_path / "pred", tiny_dataset, protocol="19", progress=False)
    assert again["per_class"] == result["per_class"] and again["miou"] == result["miou"]

    # colour / labelId / overlay files agree with the trainIds
    tid = np.array(Image.open(tmp_path / "pred" / "trainid" / "frankfurt" / "frankfurt_000000_000294_leftImg8bit.png"))
    color = np.array(Image.open(tmp_path / "pred" / "color" / "frankfurt" / "frankfurt_000000_000294_leftImg8bit.png"))
    lid = np.array(Image.open(tmp_path / "pred" / "labelid" / "frankfurt" / "frankfurt_000000_000294_leftImg8bit.png"))
    assert tid.shape == (24, 48) and tid.max() < 19
    c = int(tid[0, 0])
    assert tuple(color[0, 0]) == CITYSCAPES_PALETTE[c] and lid[0, 0] == TRAINID_TO_CITYSCAPES_ID[c]


def test_protocol_16_for_synthia_and_selection_label(tiny_dataset):
    r = evaluate(TinySeg(stride=2), tiny_dataset, CFG, device="cpu", progress=False, source="synthia",
                 selection=SELECTED_ON_TARGET_LABELS)  # fmt: skip
    assert r["protocol"] == "16" and r["miou"] == r["miou16"]
    assert "selected on target labels" in r["selection"]


def test_registered_cityscapes_dataset_end_to_end(cityscapes_tree):
    ds = uda.create("dataset", "cityscapes", root=str(cityscapes_tree), split="val", size=None)
    r = evaluate(TinySeg(stride=2), ds, CFG, device="cpu", progress=False)
    ref = evaluate(TinySeg(stride=2), TinyCityscapes(cityscapes_tree), CFG, device="cpu", progress=False)
    assert r["per_class"] == ref["per_class"] and r["num_images"] == 3


def test_class_count_mismatch_and_unlabelled_data(tiny_dataset):
    with pytest.raises(UdaError, match="predicts 7 classes"):
        evaluate(TinySeg(num_classes=7), tiny_dataset, CFG, device="cpu", progress=False)
    unlabelled = [{"image": torch.rand(3, 8, 8), "name": "x"}]
    with pytest.raises(DataError, match="no labels"):
        evaluate(TinySeg(), unlabelled, EvalConfig(size=None), device="cpu", progress=False)


def _write_preds(root, tiny_dataset, value=0, size=(48, 24)):
    for name in STEMS:
        city, stem = name.split("/")
        (root / city).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full(size[::-1], value, np.uint8)).save(root / city / f"{stem}.png")


def test_prediction_folder_flat_names_and_bad_inputs(tiny_dataset, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in STEMS:
        Image.fromarray(np.zeros((24, 48), np.uint8)).save(flat / f"{name.split('/')[1]}_trainIds.png")
    assert evaluate_predictions(flat, tiny_dataset, progress=False)["num_images"] == 3

    _write_preds(tmp_path / "size", tiny_dataset, size=(24, 12))
    with pytest.raises(DataError, match=r"frankfurt_000000_000294\.png is 24x12 but its label is 48x24"):
        evaluate_predictions(tmp_path / "size", tiny_dataset, progress=False)
    _write_preds(tmp_path / "range", tiny_dataset, value=26)
    with pytest.raises(DataError, match="outside the trainIds"):
        evaluate_predictions(tmp_path / "range", tiny_dataset, progress=False)
    _write_preds(tmp_path / "missing", tiny_dataset)
    (tmp_path / "missing" / "lindau" / "lindau_000000_000019.png").unlink()
    with pytest.raises(DataError, match="no prediction for lindau/lindau_000000_000019"):
        evaluate_predictions(tmp_path / "missing", tiny_dataset, progress=False)
    _write_preds(tmp_path / "rgb", tiny_dataset)
    Image.new("RGB", (48, 24)).save(tmp_path / "rgb" / "frankfurt" / "frankfurt_000000_000294.png")
    with pytest.raises(DataError, match="channels"):
        evaluate_predictions(tmp_path / "rgb", tiny_dataset, progress=False)
    _write_preds(tmp_path / "dup", tiny_dataset)
    Image.new("L", (48, 24)).save(tmp_path / "dup" / "frankfurt_000000_000294_leftImg8bit.png")
    with pytest.raises(DataError, match="two predictions"):
        evaluate_predictions(tmp_path / "dup", tiny_dataset, progress=False)
    with pytest.raises(DataError, match="does not exist"):
        evaluate_predictions(tmp_path / "nope", tiny_dataset, progress=False)


def test_predict_bad_inputs(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"broken\.png"):
        predict(TinySeg(), [tmp_path / "broken.png"], tmp_path / "out", progress=False)
    with pytest.raises(DataError, match="does not exist"):
        predict(TinySeg(), [tmp_path / "missing.png"], tmp_path / "out", progress=False)
    with pytest.raises(UdaError, match="unknown --save"):
        predict(TinySeg(), [tmp_path], tmp_path / "out", save="trainid,heatmap", progress=False)


def test_label_free_scores_extremes():
    confident = torch.full((1, 4, 2, 2), -30.0)
    confident[0, 0, 0], confident[0, 1, 1] = 30.0, 30.0  # one-hot, two classes used equally
    s = LabelFreeScores(4)
    s.update(confident)
    out = s.compute()
    assert out["entropy"] == pytest.approx(0.0, abs=1e-6)
    assert out["im_score"] == pytest.approx(np.log(2) / np.log(4), abs=1e-6)  # H(mean) = log 2


def _result():
    rng = np.random.default_rng(0)
    per_class = {c: round(float(v), 2) for c, v in zip(CITYSCAPES_CLASSES, rng.uniform(0, 90, 19))}
    per_class["train"] = None
    return {"miou": 41.0, "per_class": per_class, "num_images": 500, "protocol": "19",
            "miou19": 41.0, "miou16": 43.1, "miou13": 47.2, "label_free": {"entropy": 0.2, "im_score": 0.5}}  # fmt: skip


@pytest.mark.parametrize(("setup", "ncols", "nrows"), [("gta5", 19, 11), ("synthia", 16, 7), (None, 19, 1)])
def test_report_tables_and_pictures(tmp_path, setup, ncols, nrows):
    confusion = np.random.default_rng(1).integers(0, 100, (19, 19))
    paths = write_report(_result(), tmp_path, setup=setup, confusion=confusion)
    for key in ("json", "markdown", "csv", "text", "iou_bar", "confusion", "confusion_csv"):
        assert paths[key].stat().st_size > 0, key
    for key in ("iou_bar", "confusion"):
        with Image.open(paths[key]) as img:
            img.load()
            assert img.size[0] > 100 and img.size[1] > 100
    rows = list(csv.reader(paths["csv"].open()))
    assert len(rows) == 1 + nrows and len(rows[0]) == 2 + ncols
    md = paths["markdown"].read_text()
    if setup == "gta5":
        assert "| MLFA | 91.8" in md and "45.9" in md and "CLAN" in md and "DLOW" in md and "**41.0**" in md
    if setup == "synthia":
        assert "40.2" in md and "terr" not in md and "**43.1**" in md  # ours shown with mIoU16
    assert json.loads(paths["json"].read_text())["miou"] == 41.0


def test_format_table_is_fixed_width_with_abbreviations():
    text = format_table(_result(), setup="gta5")
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["method", "road", "sidew", "build"]
    assert len({len(line) for line in lines[:2] + lines[2:7]}) == 1  # header, rule and 5 rows align
    assert "miou16=43.1" in text and "miou13=47.2" in text
    assert "–" in lines[-2]  # our 'train' is null
    with pytest.raises(UdaError, match="setup"):
        format_table(_result(), setup="mars")
