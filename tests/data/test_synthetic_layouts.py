"""`uda data synth` for the condition layouts: the real trees and encodings, deterministic, a visible shift."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from uda import DataError
from uda.data import write_synthetic
from uda.data._weather import CONDITIONS, render_condition
from uda.data.synthetic import render_scene
from uda.labels import MAPILLARY_ID_TO_TRAINID, labelid_to_trainid_lut

SIZE = (48, 27)


def files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_acdc_tree(tmp_path: Path) -> None:
    r = write_synthetic(tmp_path, "target", "acdc", num=2, size=SIZE, conditions=("fog", "night"))
    assert r["num_files"] == 2 * 3 * 2  # conditions × splits × num
    got = files(tmp_path)
    imgs = [f for f in got if f.endswith("_rgb_anon.png")]
    refs = [f for f in got if f.endswith("_rgb_ref_anon.png")]
    assert len(imgs) == 12 and len(refs) == 12
    assert "rgb_anon/fog/train/GOPR0400/GOPR0400_frame_000000_rgb_anon.png" in imgs
    assert "rgb_anon/fog/train_ref/GOPR0400/GOPR0400_frame_000000_rgb_ref_anon.png" in refs
    gts = [f for f in got if f.startswith("gt/")]
    assert len(gts) == 2 * 2 * 2 * 2  # conditions × (train, val) × num × (labelIds, labelTrainIds)
    assert not any("/test/" in f for f in gts)
    tid = np.asarray(Image.open(tmp_path / "gt/night/val/GOPR0450/GOPR0450_frame_000000_gt_labelTrainIds.png"))
    lid = np.asarray(Image.open(tmp_path / "gt/night/val/GOPR0450/GOPR0450_frame_000000_gt_labelIds.png"))
    np.testing.assert_array_equal(labelid_to_trainid_lut()[lid], tid)
    assert tid.shape == (27, 48) and tid.max() < 19


def test_acdc_ref_is_the_clear_scene_and_no_ref(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "a", "target", "acdc", num=1, size=SIZE, conditions=("snow",), splits=("val",))
    adverse = np.asarray(Image.open(next((tmp_path / "a/rgb_anon/snow/val").rglob("*.png"))))
    ref = np.asarray(Image.open(next((tmp_path / "a/rgb_anon/snow/val_ref").rglob("*.png"))))
    assert not np.array_equal(adverse, ref)
    write_synthetic(tmp_path / "b", "target", "acdc", num=1, size=SIZE, conditions=("snow",), splits=("val",),
                    ref=False)  # fmt: skip
    assert not any("_ref" in f for f in files(tmp_path / "b"))


def test_darkzurich_tree(tmp_path: Path) -> None:
    write_synthetic(tmp_path, "target", "darkzurich", num=2, size=SIZE, times=("twilight", "night"))
    got = files(tmp_path)
    imgs = [f for f in got if f.startswith("rgb_anon/")]
    assert sorted({"/".join(f.split("/")[1:3]) for f in imgs}) == ["test/night", "train/night", "train/twilight",
                                                                     "val/night"]  # fmt: skip
    assert len(imgs) == 2 * 4
    gts = [f for f in got if f.startswith("gt/")]
    assert len(gts) == 4 and all(f.startswith("gt/val/night/") for f in gts)  # train/test: no labels


def test_bdd100k_tree_and_encoding(tmp_path: Path) -> None:
    write_synthetic(tmp_path, "target", "bdd100k", num=3, size=SIZE)
    got = files(tmp_path)
    jpgs = [f for f in got if f.endswith(".jpg")]
    assert len(jpgs) == 6 and all(f.startswith("seg/images/") for f in jpgs)
    for f in jpgs:
        stem, split = Path(f).stem, f.split("/")[2]
        label = tmp_path / "seg" / "labels" / split / f"{stem}_train_id.png"
        assert label.is_file() and Image.open(label).mode == "L"
        assert Image.open(tmp_path / f).format == "JPEG"


def test_mapillary_tree_and_encoding(tmp_path: Path) -> None:
    write_synthetic(tmp_path, "target", "mapillary", num=3, size=SIZE, splits=("train", "val", "test"))
    got = files(tmp_path)
    assert len([f for f in got if f.startswith("training/images/")]) == 3
    assert len([f for f in got if f.startswith("validation/v1.2/labels/")]) == 3
    assert [f.split("/")[1] for f in got if f.startswith("testing/")] == ["images"] * 3
    label = next((tmp_path / "training/v1.2/labels").glob("*.png"))
    img = Image.open(label)
    assert img.mode == "P" and img.getpalette()[13 * 3 : 14 * 3] == [128, 64, 128]  # road's Vistas colour
    ids = np.asarray(img)
    assert set(np.unique(ids)) >= {13, 64}  # road and the ego-vehicle strip
    assert {24, 41} & set(np.unique(ids))  # lane marking / manhole also become road
    assert set(np.unique(ids)) <= set(MAPILLARY_ID_TO_TRAINID) | {64, 65}


@pytest.mark.parametrize("layout", ["acdc", "darkzurich", "bdd100k", "mapillary"])
def test_deterministic_for_a_seed(tmp_path: Path, layout: str) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        write_synthetic(tmp_path / name, "target", layout, num=1, size=SIZE, seed=seed, splits=("val",))
    fa, fb, fc = (files(tmp_path / n) for n in "abc")
    assert fa == fb and all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in fa)
    a_img = next(f for f in fa if "/images/" in f or "rgb_anon" in f)
    c_img = next(f for f in fc if "/images/" in f or "rgb_anon" in f)
    assert (tmp_path / "a" / a_img).read_bytes() != (tmp_path / "c" / c_img).read_bytes()


def test_conditions_shift_the_image_not_the_label() -> None:
    clear, lab = render_condition(7, "clear", (96, 54), seed=0)
    np.testing.assert_array_equal(clear, render_scene(7, "target", (96, 54), seed=0)[0])
    stats = {}
    for c in CONDITIONS:
        img, lab_c = render_condition(7, c, (96, 54), seed=0)
        np.testing.assert_array_equal(lab_c, lab)
        stats[c] = (img.astype(float).mean(), img.astype(float).std())
    assert stats["night"][0] < 0.5 * stats["clear"][0]  # dark
    assert stats["twilight"][0] < stats["clear"][0] and stats["night"][0] < stats["twilight"][0]
    assert stats["fog"][1] < 0.7 * stats["clear"][1]  # contrast loss
    assert stats["snow"][0] > stats["clear"][0]  # brighter
    assert stats["day"] == stats["clear"]


def test_bad_choices_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="acdc layout: condition haze: choose from fog, night, rain, snow"):
        write_synthetic(tmp_path, "target", "acdc", num=1, conditions=("haze",))
    with pytest.raises(DataError, match="darkzurich layout: split dev"):
        write_synthetic(tmp_path, "target", "darkzurich", num=1, splits=("dev",))
    with pytest.raises(DataError, match="domain must be"):
        write_synthetic(tmp_path, "camera", "bdd100k", num=1)
