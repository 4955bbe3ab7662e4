"""Each file dataset reads its real layout and label encoding; labels are checked against the label tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import uda
from uda.labels import CITYSCAPES_ID_TO_TRAINID, SYNTHIA_ID_TO_TRAINID

from .conftest import all_ids, save_palettized, save_rgb


def expected(values: list[int], table: dict[int, int]) -> np.ndarray:
    return np.vectorize(lambda v: table.get(int(v), 255))(all_ids(values))


def test_gta5_palettized_labels_follow_the_cityscapes_table(gta5_root: Path) -> None:
    ds = uda.create("dataset", "gta5", root=gta5_root)
    assert len(ds) == 3
    item = ds[0]
    assert item["name"] == "00001" and item["index"] == 0
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 16, 32)
    assert float(item["image"].min()) >= 0.0 and float(item["image"].max()) <= 1.0
    assert item["label"].dtype == torch.int64
    np.testing.assert_array_equal(item["label"].numpy(), expected([*range(34), 255], CITYSCAPES_ID_TO_TRAINID))


def test_synthia_16bit_first_channel_follows_the_synthia_table(synthia_root: Path) -> None:
    ds = uda.create("dataset", "synthia", root=synthia_root)
    item = ds[1]
    assert item["name"] == "0000001"
    np.testing.assert_array_equal(item["label"].numpy(), expected(list(range(23)), SYNTHIA_ID_TO_TRAINID))


def test_cityscapes_names_splits_and_label_types(cityscapes_root: Path) -> None:
    train = uda.create("dataset", "cityscapes", root=cityscapes_root, split="train")
    assert [s.name for s in train.samples] == ["aachen/aachen_000000_000019", "bochum/bochum_000000_000019"]
    ref = expected([*range(34), 255], CITYSCAPES_ID_TO_TRAINID)
    np.testing.assert_array_equal(train[0]["label"].numpy(), ref)
    tids = uda.create("dataset", "cityscapes", root=cityscapes_root, split="val", label_type="labelTrainIds")
    np.testing.assert_array_equal(tids[0]["label"].numpy(), ref)
    test = uda.create("dataset", "cityscapes", root=cityscapes_root, split="test")
    assert "label" not in test[0] and test[0]["name"] == "berlin/berlin_000000_000019"


def test_resize_image_smooth_label_nearest(gta5_root: Path) -> None:
    ds = uda.create("dataset", "gta5", root=gta5_root, size="8x4")
    item = ds[0]
    assert item["image"].shape == (3, 4, 8) and item["label"].shape == (4, 8)
    allowed = set(CITYSCAPES_ID_TO_TRAINID.values()) | {255}
    assert set(item["label"].unique().tolist()) <= allowed


def test_labels_false_and_images_root(gta5_root: Path, tmp_path: Path) -> None:
    ds = uda.create("dataset", "gta5", root=gta5_root, labels=False)
    assert "label" not in ds[0]
    cache = tmp_path / "translated"
    save_rgb(cache / "images" / "00001.png", seed=99)  # same relative path
    save_rgb(cache / "00002.png", seed=98)  # flat <name>.png
    tr = uda.create("dataset", "gta5", root=gta5_root, images_root=cache, on_bad_sample="stop")
    assert tr.samples[0].image == cache / "images" / "00001.png"
    assert tr.samples[1].image == cache / "00002.png"
    assert not torch.equal(tr[0]["image"], ds[0]["image"])
    assert torch.equal(tr[0]["label"], uda.create("dataset", "gta5", root=gta5_root)[0]["label"])


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_folder_with_label_map(tmp_path: Path, fmt: str) -> None:
    root = tmp_path / "mine"
    save_rgb(root / "img" / "a" / "x_rgb.png")
    save_palettized(root / "ann" / "a" / "x_lbl.png", all_ids([0, 1, 2]))
    mapping = {0: 255, 1: 0, 2: 13}
    path = root / f"map.{fmt}"
    path.write_text(json.dumps(mapping) if fmt == "json" else "\n".join(f"{k}: {v}" for k, v in mapping.items()))
    ds = uda.create("dataset", "folder", root=root, images="img", labels_dir="ann", image_suffix="_rgb.png",
                    label_suffix="_lbl.png", label_map=path)  # fmt: skip
    item = ds[0]
    assert item["name"] == "a/x"
    np.testing.assert_array_equal(item["label"].numpy(), expected([0, 1, 2], mapping))


def test_folder_without_map_reads_trainids(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    save_rgb(root / "images" / "train" / "p.png")
    save_palettized(root / "labels" / "train" / "p.png", all_ids([0, 18, 255]))
    ds = uda.create("dataset", "folder", root=root, images="images/{split}", labels_dir="labels/{split}")
    assert set(ds[0]["label"].unique().tolist()) == {0, 18, 255}
