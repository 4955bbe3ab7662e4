"""Agreement with the official cityscapesScripts evaluator (evalPixelLevelSemanticLabeling) on the same
random predictions, saved as label-id PNGs (test oracle; cityscapesscripts runs offline)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from uda.evaluation import evaluate_predictions
from uda.labels import CITYSCAPES_CLASSES, trainid_to_labelid_lut

from .conftest import STEMS, TinyCityscapes


def test_per_class_iou_matches_cityscapesscripts(cityscapes_tree, tmp_path):
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

    dataset = TinyCityscapes(cityscapes_tree)
    rng = np.random.default_rng(3)
    lut = trainid_to_labelid_lut()
    preds, gts = [], []
    for name in STEMS:
        city, stem = name.split("/")
        trainid = rng.integers(0, 18, (24, 48)).astype(np.uint8)  # class 18 never predicted
        (tmp_path / "pred" / city).mkdir(parents=True, exist_ok=True)
        Image.fromarray(trainid).save(tmp_path / "pred" / city / f"{stem}_leftImg8bit.png")
        Image.fromarray(lut[trainid]).save(tmp_path / f"{stem}_labelIds_pred.png")
        preds.append(str(tmp_path / f"{stem}_labelIds_pred.png"))
        gts.append(str(cityscapes_tree / "gtFine" / "val" / city / f"{stem}_gtFine_labelIds.png"))
    ours = evaluate_predictions(tmp_path / "pred", dataset, protocol="19", progress=False)

    args = official.args
    args.evalInstLevelScore, args.JSONOutput, args.quiet = False, False, True
    theirs = official.evaluateImgLists(preds, gts, args)
    for name in CITYSCAPES_CLASSES:
        ref = theirs["classScores"][name]
        if np.isnan(ref):
            assert ours["per_class"][name] is None, name
        else:
            assert ours["per_class"][name] == pytest.approx(round(100 * ref, 2), abs=1e-9), name
    assert ours["miou"] == pytest.approx(round(100 * theirs["averageScoreClasses"], 2), abs=1e-9)
    assert ours["num_images"] == 3
