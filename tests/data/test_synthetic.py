"""The synthetic domain pair: deterministic, two different styles, comparable label statistics, round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import uda
from uda.data import check_dataset, render_scene, write_synthetic
from uda.data.synthetic import VAL_OFFSET


def test_deterministic_per_seed_and_index() -> None:
    a = render_scene(5, "target", (64, 32), seed=1)
    b = render_scene(5, "target", (64, 32), seed=1)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    c = render_scene(5, "target", (64, 32), seed=2)
    assert not np.array_equal(a[1], c[1])
    assert a[1].max() < 19


def _stats(domain: str, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    hist = np.zeros(19)
    colours = np.zeros((19, 3))
    counts = np.zeros(19)
    for i in range(n):
        img, lab = render_scene(i, domain, (64, 32), seed=0)
        for c in np.unique(lab):
            m = lab == c
            colours[c] += img[m].sum(0)
            counts[c] += m.sum()
        hist += np.bincount(lab.ravel(), minlength=19)
    return hist / hist.sum(), colours / np.maximum(counts, 1)[:, None]


def test_domains_differ_in_style_but_not_in_labels() -> None:
    hs, cs = _stats("source")
    ht, ct = _stats("target")
    assert np.abs(hs - ht).sum() < 0.15  # total variation of the class histograms
    for cls in (0, 2, 10):  # road, building, sky always occur
        assert hs[cls] > 0.05 and ht[cls] > 0.05
    big = hs > 0.02
    assert np.abs(cs[big] - ct[big]).mean() > 20  # mean class colour moves by > 20 grey levels
    src, _ = render_scene(0, "source", (64, 32))
    tgt, _ = render_scene(0, "target", (64, 32))
    assert not np.array_equal(src, tgt)


def test_dataset_splits_are_disjoint() -> None:
    train = uda.create("dataset", "synthetic", split="train", num=3, size="32x16")
    val = uda.create("dataset", "synthetic", split="val", num=3, size="32x16")
    assert val.scene_index(0) == VAL_OFFSET
    assert not torch.equal(train[0]["label"], val[0]["label"])
    assert train[0]["image"].shape == (3, 16, 32) and train[0]["label"].dtype == torch.int64


@pytest.mark.parametrize("layout", ["gta5", "synthia", "cityscapes"])
def test_write_then_read_with_the_real_loaders(tmp_path: Path, layout: str) -> None:
    out = tmp_path / layout
    write_synthetic(out, "target", layout, num=3, size=(48, 24), seed=4)
    splits = {"train": 0, "val": VAL_OFFSET} if layout == "cityscapes" else {"train": 0}
    for split, offset in splits.items():
        ds = uda.create("dataset", layout, root=out, split=split)
        assert len(ds) == 3
        for i in range(3):
            img, lab = render_scene(offset + i, "target", (48, 24), seed=4)
            item = ds[i]
            np.testing.assert_array_equal(item["label"].numpy(), lab)
            np.testing.assert_allclose(item["image"].permute(1, 2, 0).numpy() * 255, img, atol=0.5)
        assert check_dataset(layout, out, split)["problems"] == []


def test_written_encodings_are_the_real_ones(tmp_path: Path) -> None:
    from PIL import Image
    from torchvision.io import ImageReadMode, decode_png, read_file

    write_synthetic(tmp_path / "g", "source", "gta5", num=1, size=(32, 16))
    assert Image.open(tmp_path / "g" / "labels" / "00001.png").mode == "P"
    write_synthetic(tmp_path / "s", "source", "synthia", num=1, size=(32, 16))
    raw = decode_png(read_file(str(tmp_path / "s" / "GT" / "LABELS" / "0000000.png")), mode=ImageReadMode.UNCHANGED)
    assert raw.dtype == torch.uint16 and raw.shape[0] == 3
    write_synthetic(tmp_path / "c", "source", "cityscapes", num=4, size=(32, 16), splits=("val",))
    cities = sorted(p.name for p in (tmp_path / "c" / "leftImg8bit" / "val").iterdir())
    assert cities == ["frankfurt", "lindau", "munster"]
    assert len(list((tmp_path / "c" / "gtFine" / "val").rglob("*_gtFine_labelTrainIds.png"))) == 4
