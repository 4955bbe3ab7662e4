"""The published Cityscapes -> ACDC / Dark Zurich rows: test-server numbers, shown only beside an evaluation on the
same dataset, with their split named."""

from __future__ import annotations

import pytest

from uda.evaluation import format_table, write_report
from uda.evaluation.published import PUBLISHED, PUBLISHED_SPLIT
from uda.labels import CITYSCAPES_CLASSES


def _result(dataset: str) -> dict:
    return {"miou": 30.0, "per_class": dict.fromkeys(CITYSCAPES_CLASSES, 30.0), "protocol": "19",
            "dataset": dataset, "num_images": 4, "method": "hrda"}


def test_rows_and_values():
    assert {k: v["miou"] for k, v in PUBLISHED["acdc"].items()} == {
        "DAFormer (test)": 55.4, "HRDA (test)": 68.0, "MIC (test)": 70.4, "CoDA (test)": 72.6,
        "Rein, DINOv2-L, DG (test)": 77.6}
    assert {k: v["miou"] for k, v in PUBLISHED["darkzurich"].items()} == {
        "DAFormer (test)": 53.8, "HRDA (test)": 55.9, "MIC (test)": 60.2, "CoDA (test)": 61.2}
    for setup in ("acdc", "darkzurich"):
        assert "test" in PUBLISHED_SPLIT[setup] and "server" in PUBLISHED_SPLIT[setup]
        assert all(len(r["per_class"]) == 19 and set(r["per_class"].values()) == {None}
                   for r in PUBLISHED[setup].values())


@pytest.mark.parametrize(("setup", "dataset"), [("acdc", "acdc val"), ("darkzurich", "darkzurich val"),
                                                ("darkzurich", "Dark Zurich val")])
def test_shown_beside_the_same_dataset_with_the_split(tmp_path, setup, dataset):
    text = format_table(_result(dataset), setup=setup)
    assert "HRDA (test)" in text.splitlines()[3] and text.splitlines()[-1].startswith("hrda ")
    md = write_report(_result(dataset), tmp_path, setup=setup)["markdown"].read_text()
    assert f"measured on {PUBLISHED_SPLIT[setup]}, not on the split scored here" in md
    assert "MLFA" not in md


@pytest.mark.parametrize("setup", ["acdc", "darkzurich"])
def test_not_shown_beside_other_data(setup):
    text = format_table(_result("Cityscapes val"), setup=setup)
    assert "(test)" not in text and len(text.splitlines()) == 3
