import pytest
import torch
from torch.utils.data import Dataset

import uda
from uda._errors import ConfigError
from uda.selftraining.crop import RandomCropFlip


class _Items(Dataset):
    """Image = pixel coordinates, label = hand-made classes."""

    def __init__(self, labels: list[torch.Tensor]) -> None:
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        lab = self.labels[i]
        h, w = lab.shape
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        img = torch.stack([ys.float(), xs.float(), torch.full((h, w), float(i))])
        return {"image": img, "label": lab.clone(), "index": i}


def test_crop_is_a_window_and_flip_consistent():
    lab = torch.arange(8 * 10).view(8, 10) % 19
    ds = RandomCropFlip(_Items([lab]), size=(4, 3), flip=0.5, seed=1)
    flips = 0
    for pos in range(40):
        it = ds[pos]
        img, lb = it["image"], it["label"]
        assert img.shape == (3, 3, 4) and lb.shape == (3, 4)
        flipped = img[1, 0, 0] > img[1, 0, -1]
        flips += int(flipped)
        if flipped:
            img, lb = img.flip(-1), lb.flip(-1)
        y, x = int(img[0, 0, 0]), int(img[1, 0, 0])
        assert torch.equal(lb, lab[y : y + 3, x : x + 4])  # label cropped/flipped with the image
    assert 10 < flips < 30


def test_deterministic_and_epoch_permutation():
    labels = [torch.full((6, 6), i) for i in range(5)]
    ds = RandomCropFlip(_Items(labels), size=4, seed=3)
    first = [int(ds[p]["index"]) for p in range(10)]
    assert sorted(first[:5]) == list(range(5)) and sorted(first[5:]) == list(range(5))
    again = RandomCropFlip(_Items(labels), size=4, seed=3)
    for p in (7, 0, 3):
        a, b = ds[p], again[p]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    other = RandomCropFlip(_Items(labels), size=4, seed=4)
    assert [int(other[p]["index"]) for p in range(10)] != first


def test_cat_max_ratio_rule():
    # a 20x20 label: class 0 except a 6x6 block of class 1 at the bottom-right; 8x8 crops pass the rule only
    # with more than 16 pixels of class 1: 10 of the 13x13 offsets (q = 0.059); 11 draws → 1 - (1 - q)^11 = 0.49.
    lab = torch.zeros(20, 20, dtype=torch.long)
    lab[14:, 14:] = 1

    def passing(ds: RandomCropFlip) -> int:
        return sum(int((ds[p]["label"] == 1).sum() > 16) for p in range(200))

    n_plain = passing(RandomCropFlip(_Items([lab]), size=8, flip=0.0, seed=0))
    n_ruled = passing(RandomCropFlip(_Items([lab]), size=8, flip=0.0, seed=0, cat_max_ratio=0.75))
    assert 2 <= n_plain <= 25 and 70 <= n_ruled <= 125
    n_three = passing(RandomCropFlip(_Items([lab]), size=8, flip=0.0, seed=0, cat_max_ratio=0.75, max_tries=2))
    assert 15 <= n_three <= 50  # 1 - (1 - q)^3 = 0.17


def test_ignore_excluded_and_single_class_fails():
    ds = RandomCropFlip(_Items([torch.zeros(4, 4, dtype=torch.long)]), size=4, cat_max_ratio=0.75)
    lab = torch.tensor([[0, 0, 255, 255], [1, 1, 255, 255]])
    assert ds._ok(lab)  # 2 of 4 labelled pixels: 0.5 < 0.75
    assert not ds._ok(torch.tensor([[0, 0, 0, 255], [0, 0, 1, 255]]))  # 5/6 ≥ 0.75
    assert not ds._ok(torch.tensor([[3, 3], [255, 255]]))  # one class only


def test_pad_small_images_and_no_label_items():
    ds = RandomCropFlip(_Items([torch.zeros(3, 5, dtype=torch.long)]), size=(6, 4), flip=0.0)
    it = ds[0]
    assert it["image"].shape == (3, 4, 6) and it["label"][3].eq(255).all() and it["label"][:, 5].eq(255).all()
    tgt = uda.create("dataset", "synthetic", num=2, size="32x16", labels=False)
    it = uda.create("sampler", "crop_flip", dataset=tgt, size=8)[3]
    assert it["image"].shape == (3, 8, 8) and "label" not in it


def test_bad_options():
    with pytest.raises(ConfigError, match="cat_max_ratio"):
        RandomCropFlip(_Items([]), cat_max_ratio=0.0)
    with pytest.raises(ConfigError, match="size"):
        RandomCropFlip(_Items([]), size=0)
