"""Published per-class IoU (%) on Cityscapes val, DeepLab-v2 ResNet-101, kept as data
(Table I of the MLFA paper (Zhang, Zhao & Zhang, Tongji University) for GTA5→Cityscapes, Table II for SYNTHIA→Cityscapes),
plus the mIoU that DACS (Tranheden et al., WACV 2021) and DAFormer (Hoyer et al., CVPR 2022; MiT-B5, not
DeepLab-v2) report; and the published mIoU of Cityscapes→ACDC and Cityscapes→Dark Zurich, which are TEST-SERVER
numbers (the ACDC and Dark Zurich test labels are not public): `PUBLISHED_SPLIT` says which split each setup's
rows were measured on.

Example:
    >>> PUBLISHED["gta5"]["MLFA"]["miou"]
    45.9
    >>> len(PUBLISHED["synthia"]["MLFA"]["per_class"])
    16
    >>> PUBLISHED["acdc"]["HRDA (test)"]["miou"], PUBLISHED_SPLIT["acdc"]
    (68.0, 'ACDC test (evaluation server)')
"""

from __future__ import annotations

from ..labels import CITYSCAPES_CLASSES, SYNTHIA_16

__all__ = ["PUBLISHED", "PUBLISHED_SPLIT", "SETUP_CLASSES", "SETUP_DATASET", "SETUP_PROTOCOL"]


def _row(values: list[float], classes: tuple[int, ...], miou: float) -> dict:
    return {"per_class": {CITYSCAPES_CLASSES[c]: v for c, v in zip(classes, values)}, "miou": miou}


def _miou_row(classes: tuple[int, ...], miou: float) -> dict:
    """A published mIoU without per-class values (shown as "–" in the tables)."""
    return {"per_class": {CITYSCAPES_CLASSES[c]: None for c in classes}, "miou": miou}


_ALL = tuple(range(19))

SETUP_CLASSES: dict[str, tuple[int, ...]] = {"gta5": _ALL, "synthia": SYNTHIA_16, "acdc": _ALL, "darkzurich": _ALL}
"""The trainIds shown in each setup's table (Table I: 19 classes, Table II: 16; ACDC, Dark Zurich: 19)."""

SETUP_PROTOCOL: dict[str, str] = {"gta5": "19", "synthia": "16", "acdc": "19", "darkzurich": "19"}

SETUP_DATASET: dict[str, str] = {"gta5": "cityscapes", "synthia": "cityscapes", "acdc": "acdc",
                                 "darkzurich": "darkzurich"}
"""The evaluation data set a result must come from for the setup's published rows to be shown beside it."""

PUBLISHED_SPLIT: dict[str, str] = {"gta5": "Cityscapes val", "synthia": "Cityscapes val",
                                   "acdc": "ACDC test (evaluation server)",
                                   "darkzurich": "Dark Zurich test (evaluation server)"}
"""Where each setup's published rows were measured."""

# fmt: off
PUBLISHED: dict[str, dict[str, dict]] = {
    "gta5": {
        "MLFA": _row([91.8, 47.1, 85.6, 29.5, 29.3, 35.4, 36.8, 33.2, 81.5, 35.1, 82.1, 62.1, 30.6, 79.0, 22.6,
                      33.4, 4.3, 33.9, 20.1], _ALL, 45.9),
        # Tranheden et al., DACS, WACV 2021; Hoyer et al., DAFormer, CVPR 2022 (mean of three seeds).
        "DACS": _miou_row(_ALL, 52.1),
        "DAFormer": _miou_row(_ALL, 68.3),
        # Hoyer et al., HRDA, ECCV 2022; MIC (on HRDA), CVPR 2023.
        "HRDA": _miou_row(_ALL, 73.8),
        "MIC": _miou_row(_ALL, 75.9),
        # Englert et al., VFM-UDA, CVPR Workshops 2024; VFM-UDA++ (Englert & Dubbelman, ICCV Workshops 2025), ViT-L.
        "VFM-UDA": _miou_row(_ALL, 78.4),
        "VFM-UDA++": _miou_row(_ALL, 79.8),
        "AdvEnt": _row([89.4, 33.1, 81.0, 26.6, 26.8, 27.2, 33.5, 24.7, 83.9, 36.7, 78.8, 58.7, 30.5, 84.8, 38.5,
                        44.5, 1.7, 31.6, 32.4], _ALL, 45.5),
        "CLAN": _row([87.0, 27.1, 79.6, 27.3, 23.3, 28.3, 35.5, 24.2, 83.6, 27.4, 74.2, 58.6, 28.0, 76.2, 33.1,
                      36.7, 6.7, 31.9, 31.4], _ALL, 43.2),
        "DLOW": _row([87.1, 33.5, 80.5, 24.5, 13.2, 29.8, 29.5, 26.6, 82.6, 26.7, 81.8, 55.9, 25.3, 78.0, 33.5,
                      38.7, 0.0, 22.9, 34.5], _ALL, 42.3),
    },
    "synthia": {
        "MLFA": _row([86.6, 43.3, 81.5, 4.3, 1.1, 30.2, 10.2, 8.7, 85.3, 82.2, 48.8, 16.9, 73.7, 30.4, 11.3, 29.5],
                     SYNTHIA_16, 40.2),
        "DACS": _miou_row(SYNTHIA_16, 48.3),
        "DAFormer": _miou_row(SYNTHIA_16, 60.9),
        "HRDA": _miou_row(SYNTHIA_16, 65.8),
        "MIC": _miou_row(SYNTHIA_16, 67.3),
        # VFM-UDA++ with a ViT-B encoder (the release's model table; no ViT-L SYNTHIA row is published).
        "VFM-UDA++ (ViT-B)": _miou_row(SYNTHIA_16, 69.7),
    },
    # Cityscapes -> ACDC, ACDC test server ("(test)" in the row names). DAFormer and HRDA: the HRDA README's comparison table (HRDA's ACDC and
    # Dark Zurich rows were obtained after its ECCV paper); MIC (on HRDA): Hoyer et al., CVPR 2023, Table 2;
    # CoDA: Gong et al., ECCV 2024 (its README); Rein (DINOv2-L + Mask2Former, Wei et al., CVPR 2024): domain
    # generalization, trained on Cityscapes only, never seeing ACDC.
    "acdc": {
        "DAFormer (test)": _miou_row(_ALL, 55.4),
        "HRDA (test)": _miou_row(_ALL, 68.0),
        "MIC (test)": _miou_row(_ALL, 70.4),
        "CoDA (test)": _miou_row(_ALL, 72.6),
        "Rein, DINOv2-L, DG (test)": _miou_row(_ALL, 77.6),
    },
    # Cityscapes -> Dark Zurich, Dark Zurich test server (CodaLab); same sources.
    "darkzurich": {
        "DAFormer (test)": _miou_row(_ALL, 53.8),
        "HRDA (test)": _miou_row(_ALL, 55.9),
        "MIC (test)": _miou_row(_ALL, 60.2),
        "CoDA (test)": _miou_row(_ALL, 61.2),
    },
}
# fmt: on
