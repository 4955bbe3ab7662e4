"""Label spaces as data in one place: the 19 Cityscapes classes, their palette, the label-id maps of
Cityscapes/GTA5 and SYNTHIA, and the SYNTHIA evaluation subsets (Cordts et al., CVPR 2016;
Ros et al., "The SYNTHIA Dataset", CVPR 2016; the 16/13-class subsets of AdaptSegNet/ADVENT).

Example:
    >>> from uda.labels import CITYSCAPES_CLASSES, labelid_to_trainid_lut
    >>> CITYSCAPES_CLASSES[13]
    'car'
    >>> int(labelid_to_trainid_lut()[26])
    13
"""

from __future__ import annotations

import numpy as np

IGNORE_INDEX = 255
"""The label value that every loss and metric ignores."""

NUM_CLASSES = 19

CITYSCAPES_CLASSES: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
    "bicycle",
)  # fmt: skip

CITYSCAPES_PALETTE: tuple[tuple[int, int, int], ...] = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
    (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
)  # fmt: skip

# Cityscapes labelId -> trainId; the same table maps GTA5 labels (they are Cityscapes label ids).
CITYSCAPES_ID_TO_TRAINID: dict[int, int] = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
    26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip
TRAINID_TO_CITYSCAPES_ID: dict[int, int] = {v: k for k, v in CITYSCAPES_ID_TO_TRAINID.items()}

# Cityscapes label ids that exist (-1 .. 33); everything else in a label image is unknown.
CITYSCAPES_VALID_LABEL_IDS: frozenset[int] = frozenset(range(0, 34))

# SYNTHIA (RAND-CITYSCAPES) class id (first channel of the 16-bit label) -> Cityscapes trainId.
SYNTHIA_ID_TO_TRAINID: dict[int, int] = {
    3: 0, 4: 1, 2: 2, 21: 3, 5: 4, 7: 5, 15: 6, 9: 7, 6: 8, 16: 9, 1: 10, 10: 11, 17: 12, 8: 13,
    18: 14, 19: 15, 20: 16, 12: 17, 11: 18,
}  # fmt: skip
TRAINID_TO_SYNTHIA_ID: dict[int, int] = {v: k for k, v in SYNTHIA_ID_TO_TRAINID.items()}
# SYNTHIA ids 0 (void) .. 22 exist; 13 (lanemarking), 14 (?) and 22 map to ignore.
SYNTHIA_VALID_IDS: frozenset[int] = frozenset(range(0, 23))

# Evaluation subsets of trainIds for SYNTHIA-trained models.
SYNTHIA_16: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18)
SYNTHIA_13: tuple[int, ...] = (0, 1, 2, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18)

PROTOCOLS: dict[str, tuple[int, ...]] = {
    "19": tuple(range(NUM_CLASSES)),
    "16": SYNTHIA_16,
    "13": SYNTHIA_13,
}


def build_lut(mapping: dict[int, int], size: int = 256, default: int = IGNORE_INDEX) -> np.ndarray:
    """A lookup table ``lut[id] = trainId`` (uint8 for size ≤ 256, else int64), unknown ids → ``default``."""
    dtype = np.uint8 if size <= 256 else np.int64
    lut = np.full(size, default, dtype=dtype)
    for k, v in mapping.items():
        lut[k] = v
    return lut


def labelid_to_trainid_lut() -> np.ndarray:
    """256-entry LUT mapping Cityscapes/GTA5 label ids to trainIds (others → 255)."""
    return build_lut(CITYSCAPES_ID_TO_TRAINID)


def trainid_to_labelid_lut() -> np.ndarray:
    """256-entry LUT mapping trainIds back to Cityscapes label ids (255 → 0, 'unlabeled')."""
    return build_lut(TRAINID_TO_CITYSCAPES_ID, default=0)


def palette_array() -> np.ndarray:
    """(256, 3) uint8 palette: the 19 class colours, black for everything else (255 = ignore)."""
    pal = np.zeros((256, 3), dtype=np.uint8)
    pal[:NUM_CLASSES] = np.array(CITYSCAPES_PALETTE, dtype=np.uint8)
    return pal


def colorize(trainids: np.ndarray) -> np.ndarray:
    """(H, W) trainIds → (H, W, 3) uint8 RGB with the official palette."""
    return palette_array()[trainids.astype(np.uint8)]
