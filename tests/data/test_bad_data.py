"""Bad input: every case raises a DataError naming the file (stop) or is skipped with a warning and counted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import uda
from uda import DataError
from uda.data import InfiniteLoader, check_dataset

from .conftest import all_ids, save_palettized, save_png16, save_rgb, truncate


def test_missing_root_and_empty_split(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        uda.create("dataset", "gta5", root=tmp_path / "nope")
    (tmp_path / "cs" / "leftImg8bit" / "val").mkdir(parents=True)
    (tmp_path / "cs" / "gtFine" / "val").mkdir(parents=True)
    with pytest.raises(DataError, match="split 'val' is empty"):
        uda.create("dataset", "cityscapes", root=tmp_path / "cs", split="val")
    with pytest.raises(DataError, match="split 'train' folder"):
        uda.create("dataset", "cityscapes", root=tmp_path / "cs", split="train")


def test_corrupt_image_names_the_file(gta5_root: Path) -> None:
    bad = gta5_root / "images" / "00002.png"
    truncate(bad)
    ds = uda.create("dataset", "gta5", root=gta5_root)
    with pytest.raises(DataError, match=r"00002\.png: corrupt or truncated image"):
        ds[1]


def test_corrupt_label_names_the_file(synthia_root: Path) -> None:
    bad = synthia_root / "GT" / "LABELS" / "0000000.png"
    truncate(bad, 100)
    with pytest.raises(DataError, match=str(bad)):
        uda.create("dataset", "synthia", root=synthia_root)[0]


@pytest.mark.parametrize("value", [34, 100, 254])
def test_unknown_gta5_label_ids(gta5_root: Path, value: int) -> None:
    save_palettized(gta5_root / "labels" / "00003.png", all_ids([7, value]))
    with pytest.raises(DataError, match=rf"00003\.png: label values {value} are not Cityscapes label ids"):
        uda.create("dataset", "gta5", root=gta5_root)[2]


@pytest.mark.parametrize("value", [23, 300, 65535])
def test_unknown_synthia_ids(synthia_root: Path, value: int) -> None:
    save_png16(synthia_root / "GT" / "LABELS" / "0000001.png", all_ids([3, value]))
    with pytest.raises(DataError, match=rf"0000001\.png: label values {value} are not SYNTHIA class ids"):
        uda.create("dataset", "synthia", root=synthia_root)[1]


def test_rgb_label_is_refused(gta5_root: Path) -> None:
    save_rgb(gta5_root / "labels" / "00001.png")
    with pytest.raises(DataError, match=r"00001\.png: label has 3 channels"):
        uda.create("dataset", "gta5", root=gta5_root)[0]


def test_missing_pair_stop_lists_it_skip_leaves_it_out(gta5_root: Path) -> None:
    (gta5_root / "labels" / "00002.png").unlink()
    with pytest.raises(DataError, match=r"00002\.png: no label file .*on_bad_sample=skip"):
        uda.create("dataset", "gta5", root=gta5_root)
    with pytest.warns(UserWarning, match="leaving out 1 sample"):
        ds = uda.create("dataset", "gta5", root=gta5_root, on_bad_sample="skip")
    assert [s.name for s in ds.samples] == ["00001", "00003"]


def test_size_mismatch_resizes_each_separately(gta5_root: Path) -> None:
    save_palettized(gta5_root / "labels" / "00001.png", all_ids([7, 26], h=8, w=16))
    item = uda.create("dataset", "gta5", root=gta5_root)[0]
    assert item["image"].shape[1:] == item["label"].shape == (16, 32)
    item = uda.create("dataset", "gta5", root=gta5_root, size=(12, 6))[0]
    assert item["image"].shape[1:] == item["label"].shape == (6, 12)
    assert set(item["label"].unique().tolist()) <= {0, 13}


def test_skip_mode_warns_counts_and_replaces(gta5_root: Path) -> None:
    truncate(gta5_root / "images" / "00002.png")
    ds = uda.create("dataset", "gta5", root=gta5_root, on_bad_sample="skip")
    with pytest.warns(UserWarning, match=r"00002\.png"):
        item = ds[1]
    assert item["name"] == "00003" and item["index"] == 1 and ds.num_skipped == 1
    loader = InfiniteLoader(ds, batch_size=3, seed=0)
    with pytest.warns(UserWarning):
        batch = next(loader)
    assert loader.num_skipped == 1 and loader.skipped_files[0].endswith("00002.png")
    assert "skipped" not in batch and batch["label"].shape == (3, 16, 32)


def test_check_dataset_lists_every_problem_by_file(gta5_root: Path) -> None:
    save_rgb(gta5_root / "images" / "00004.png")  # no label
    truncate(gta5_root / "images" / "00001.png")
    save_palettized(gta5_root / "labels" / "00002.png", all_ids([7, 40], h=8, w=16))  # unknown id + size mismatch
    report = check_dataset("gta5", gta5_root, "train")
    assert set(report) == {"dataset", "split", "num_samples", "class_pixels", "ignored_pixels", "problems"}
    probs = report["problems"]
    assert any(p.startswith(str(gta5_root / "images" / "00004.png")) and "no label" in p for p in probs)
    assert any("00001.png: corrupt" in p for p in probs)
    assert any("00002.png: size 16x8 differs" in p for p in probs)
    assert any("00002.png: label values 40" in p for p in probs)
    assert report["num_samples"] == 3 and len(probs) == 4
    # only 00003 (and 00001's label) were counted; its ids cover every class
    assert report["class_pixels"]["road"] > 0 and report["ignored_pixels"] > 0


def test_check_dataset_clean_tree_counts_pixels(synthia_root: Path) -> None:
    report = check_dataset("synthia", synthia_root, "train")
    assert report["problems"] == []
    total = sum(report["class_pixels"].values()) + report["ignored_pixels"]
    assert total == 3 * 16 * 32
    ids = torch.from_numpy(all_ids(list(range(23))))
    assert report["class_pixels"]["road"] == 3 * int((ids == 3).sum())
    assert report["class_pixels"]["terrain"] == 3 * int((ids == 16).sum())


def test_check_dataset_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        check_dataset("synthia", tmp_path / "missing", "train")


def test_unknown_label_map_id_in_folder(tmp_path: Path) -> None:
    root = tmp_path / "f"
    save_rgb(root / "images" / "a.png")
    save_palettized(root / "labels" / "a.png", all_ids([1, 5]))
    (root / "map.yaml").write_text("1: 0\n")
    with pytest.raises(DataError, match=r"a\.png: label values 5 are not ids listed in"):
        uda.create("dataset", "folder", root=root, label_map=root / "map.yaml")[0]
    (root / "bad.yaml").write_text("1: 40\n")
    with pytest.raises(DataError, match="out of range"):
        uda.create("dataset", "folder", root=root, label_map=root / "bad.yaml")


def test_untouched_values_are_not_silently_wrong() -> None:
    from uda.data.gta5 import CITYSCAPES_IDS

    raw = torch.from_numpy(np.array([[0, 6, 7, 33, 255]], dtype=np.uint8))
    assert CITYSCAPES_IDS.apply(raw, "x").tolist() == [[255, 255, 0, 18, 255]]
