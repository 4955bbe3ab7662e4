"""Label spaces as data in one place: the 19 Cityscapes classes, their palette, the label-id maps of
Cityscapes/GTA5 and SYNTHIA, and the SYNTHIA evaluation subsets (Cordts et al., CVPR 2016;
Ros et al., "The SYNTHIA Dataset", CVPR 2016; the 16/13-class subsets of AdaptSegNet/ADVENT), and the
66 Mapillary Vistas v1.2 classes with their mapping to the 19 Cityscapes classes.

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

# Mapillary Vistas v1.2 (Neuhold et al., ICCV 2017): the 66 class ids stored in its 8-bit label PNGs (index = id),
# and the official colours of its palettized labels.
MAPILLARY_CLASSES: tuple[str, ...] = (
    "animal--bird", "animal--ground-animal", "construction--barrier--curb", "construction--barrier--fence",
    "construction--barrier--guard-rail", "construction--barrier--other-barrier", "construction--barrier--wall",
    "construction--flat--bike-lane", "construction--flat--crosswalk-plain", "construction--flat--curb-cut",
    "construction--flat--parking", "construction--flat--pedestrian-area", "construction--flat--rail-track",
    "construction--flat--road", "construction--flat--service-lane", "construction--flat--sidewalk",
    "construction--structure--bridge", "construction--structure--building", "construction--structure--tunnel",
    "human--person", "human--rider--bicyclist", "human--rider--motorcyclist", "human--rider--other-rider",
    "marking--crosswalk-zebra", "marking--general", "nature--mountain", "nature--sand", "nature--sky",
    "nature--snow", "nature--terrain", "nature--vegetation", "nature--water", "object--banner", "object--bench",
    "object--bike-rack", "object--billboard", "object--catch-basin", "object--cctv-camera", "object--fire-hydrant",
    "object--junction-box", "object--mailbox", "object--manhole", "object--phone-booth", "object--pothole",
    "object--street-light", "object--support--pole", "object--support--traffic-sign-frame",
    "object--support--utility-pole", "object--traffic-light", "object--traffic-sign--back",
    "object--traffic-sign--front", "object--trash-can", "object--vehicle--bicycle", "object--vehicle--boat",
    "object--vehicle--bus", "object--vehicle--car", "object--vehicle--caravan", "object--vehicle--motorcycle",
    "object--vehicle--on-rails", "object--vehicle--other-vehicle", "object--vehicle--trailer",
    "object--vehicle--truck", "object--vehicle--wheeled-slow", "void--car-mount", "void--ego-vehicle",
    "void--unlabeled",
)  # fmt: skip

MAPILLARY_PALETTE: tuple[tuple[int, int, int], ...] = (
    (165, 42, 42), (0, 192, 0), (196, 196, 196), (190, 153, 153), (180, 165, 180), (90, 120, 150), (102, 102, 156),
    (128, 64, 255), (140, 140, 200), (170, 170, 170), (250, 170, 160), (96, 96, 96), (230, 150, 140),
    (128, 64, 128), (110, 110, 110), (244, 35, 232), (150, 100, 100), (70, 70, 70), (150, 120, 90), (220, 20, 60),
    (255, 0, 0), (255, 0, 100), (255, 0, 200), (200, 128, 128), (255, 255, 255), (64, 170, 64), (230, 160, 50),
    (70, 130, 180), (190, 255, 255), (152, 251, 152), (107, 142, 35), (0, 170, 30), (255, 255, 128), (250, 0, 30),
    (100, 140, 180), (220, 220, 220), (220, 128, 128), (222, 40, 40), (100, 170, 30), (40, 40, 40), (33, 33, 33),
    (100, 128, 160), (142, 0, 0), (70, 100, 150), (210, 170, 100), (153, 153, 153), (128, 128, 128), (0, 0, 80),
    (250, 170, 30), (192, 192, 192), (220, 220, 0), (140, 140, 20), (119, 11, 32), (150, 0, 255), (0, 60, 100),
    (0, 0, 142), (0, 0, 90), (0, 0, 230), (0, 80, 100), (128, 64, 64), (0, 0, 110), (0, 0, 70), (0, 0, 192),
    (32, 32, 32), (120, 10, 10), (0, 0, 0),
)  # fmt: skip

# Mapillary Vistas v1.2 id -> Cityscapes trainId, the mapping of the domain-generalization literature (the same table
# in the RobustNet/ISW loaders, Choi et al. CVPR 2021, and in the MIC/Rein conversion scripts): several Vistas classes
# merge into one Cityscapes class (road = road + lane marking (general) + manhole, sidewalk = sidewalk + curb,
# pole = pole + utility pole, rider = bicyclist + motorcyclist + other rider, train = on rails); the other 41 ids
# (including crosswalk-zebra, bike lane, service lane, traffic-sign back, street light) map to 255.
MAPILLARY_ID_TO_TRAINID: dict[int, int] = {
    13: 0, 24: 0, 41: 0, 2: 1, 15: 1, 17: 2, 6: 3, 3: 4, 45: 5, 47: 5, 48: 6, 50: 7, 30: 8, 29: 9, 27: 10,
    19: 11, 20: 12, 21: 12, 22: 12, 55: 13, 61: 14, 54: 15, 58: 16, 57: 17, 52: 18,
}  # fmt: skip
MAPILLARY_VALID_IDS: frozenset[int] = frozenset(range(len(MAPILLARY_CLASSES)))

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
