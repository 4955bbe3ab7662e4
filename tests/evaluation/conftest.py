"""Fixtures for the evaluation tests: a tiny segmentation model and a tiny Cityscapes tree built with PIL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from uda.labels import CITYSCAPES_ID_TO_TRAINID, labelid_to_trainid_lut
from uda.models._base import SegmentationModel
from uda.types import SegOutput

W, H = 48, 24
STEMS = ["frankfurt/frankfurt_000000_000294", "frankfurt/frankfurt_000001_000019", "lindau/lindau_000000_000019"]


class TinySeg(SegmentationModel):
    """A 1×1 conv over an average-pooled input: pointwise (translation-equivariant) when ``stride=1``."""

    def __init__(self, num_classes: int = 19, stride: int = 1, seed: int = 0) -> None:
        super().__init__(num_classes, normalization="none")
        torch.manual_seed(seed)
        self.stride = stride
        self.head = nn.Conv2d(3, num_classes, 1)

    def forward_normalized(self, x: torch.Tensor) -> SegOutput:
        if self.stride > 1:
            x = F.avg_pool2d(x, self.stride, ceil_mode=True)
        return SegOutput(self.head(x * 4 - 2))


class TinyCityscapes(torch.utils.data.Dataset):
    """Reads the tree of :func:`cityscapes_tree` (a stand-in with the dataset item contract)."""

    num_classes = 19

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.items = sorted(self.root.glob("leftImg8bit/val/*/*_leftImg8bit.png"))
        self.lut = labelid_to_trainid_lut()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        img = self.items[i]
        stem = img.name[: -len("_leftImg8bit.png")]
        gt = self.root / "gtFine" / "val" / img.parent.name / f"{stem}_gtFine_labelIds.png"
        image = torch.from_numpy(np.array(Image.open(img).convert("RGB"))).permute(2, 0, 1).float() / 255
        label = torch.from_numpy(self.lut[np.array(Image.open(gt))].astype(np.int64))
        return {"image": image, "label": label, "name": f"{img.parent.name}/{stem}", "index": i}


def write_tree(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    ids = np.array([0, 1, *CITYSCAPES_ID_TO_TRAINID])  # some ignored label ids (0, 1) among the 19 classes
    for name in STEMS:
        city, stem = name.split("/")
        img_dir = root / "leftImg8bit" / "val" / city
        gt_dir = root / "gtFine" / "val" / city
        img_dir.mkdir(parents=True, exist_ok=True)
        gt_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(img_dir / f"{stem}_leftImg8bit.png")
        Image.fromarray(rng.choice(ids, (H, W)).astype(np.uint8)).save(gt_dir / f"{stem}_gtFine_labelIds.png")
    return root


@pytest.fixture
def cityscapes_tree(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "cityscapes")


@pytest.fixture
def tiny_dataset(cityscapes_tree: Path) -> TinyCityscapes:
    return TinyCityscapes(cityscapes_tree)
