"""ConfusionMatrix against hand-computed matrices: ignore handling, absent classes, the 16/13 subsets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from uda import UdaError
from uda.evaluation import ConfusionMatrix, miou_of, resolve_protocol
from uda.labels import CITYSCAPES_CLASSES, SYNTHIA_13, SYNTHIA_16


def test_hand_computed_matrix_with_ignore_and_absent_class():
    pred = torch.tensor([[0, 0, 1, 1], [2, 2, 0, 1]])
    target = torch.tensor([[0, 255, 1, 0], [2, 255, 255, 1]])
    cm = ConfusionMatrix(4)
    cm.update(pred, target)
    # rows GT, cols pred; the three 255 pixels are not counted at all
    expected = np.array([[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(cm.matrix, expected)
    assert cm.ignored_pixels == 3
    iou = cm.iou()
    np.testing.assert_allclose(iou[:3], [1 / 2, 2 / 3, 1.0])
    assert math.isnan(iou[3])  # class 3 absent from GT and prediction
    assert cm.miou() == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)  # NaN-aware: over the 3 present classes
    assert cm.pixel_accuracy() == pytest.approx(4 / 5)


def test_predicted_but_absent_in_gt_is_zero_not_nan():
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([2, 2, 0]), torch.tensor([0, 0, 0]))
    iou = cm.iou()
    assert iou[2] == 0.0 and iou[0] == pytest.approx(1 / 3) and math.isnan(iou[1])


def test_batched_equals_per_image_and_dtypes_agree():
    g = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 19, (3, 8, 8), generator=g)
    target = torch.randint(0, 21, (3, 8, 8), generator=g)
    target[target >= 19] = 255
    batched, single, small = ConfusionMatrix(19), ConfusionMatrix(19), ConfusionMatrix(19)
    batched.update(pred, target)
    for i in range(3):
        single.update(pred[i], target[i])
        small.update(pred[i].to(torch.uint8), target[i].to(torch.uint8))
    np.testing.assert_array_equal(batched.matrix, single.matrix)
    np.testing.assert_array_equal(batched.matrix, small.matrix)
    valid = target != 255
    ref = np.bincount((19 * target[valid] + pred[valid]).numpy(), minlength=361).reshape(19, 19)
    np.testing.assert_array_equal(batched.matrix, ref)
    assert batched.num_images == 3 and single.num_images == 3


@pytest.mark.parametrize(
    ("pred", "target", "what"),
    [
        ([0, 19], [0, 1], "predicted"),  # prediction outside [0, C)
        ([0, 1], [0, 19], "label"),  # label outside [0, C) and not 255
        ([0, 1], [0, 300], "outside"),  # would wrap to 44 in uint8
        ([0, -1], [0, 1], "outside"),  # negative
    ],
)
def test_out_of_range_values_raise_never_counted(pred, target, what):
    cm = ConfusionMatrix(19)
    cm.update(torch.tensor(pred), torch.tensor(target))
    with pytest.raises(UdaError, match=what):
        cm.summary("19")


def test_float_inputs_and_shape_mismatch_raise():
    cm = ConfusionMatrix(19)
    with pytest.raises(UdaError, match="integer"):
        cm.update(torch.zeros(2, 2), torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(UdaError, match="upsample"):
        cm.update(torch.zeros(2, 2, dtype=torch.long), torch.zeros(4, 4, dtype=torch.long))


def test_16_and_13_class_protocols_are_subsets_of_the_19_vector():
    # per-class IoU built from a hand matrix: class c predicted correctly on tp_c pixels and as class 9
    # (terrain, not in SYNTHIA) on fn_c pixels -> IoU_c = tp/(tp+fn) for c != 9
    m = np.zeros((19, 19), dtype=np.int64)
    rng = np.random.default_rng(0)
    for c in range(19):
        m[c, c] = rng.integers(1, 50)
        if c != 9:
            m[c, 9] = rng.integers(0, 50)
    m[16] = 0  # train absent from GT and prediction -> NaN
    cm = ConfusionMatrix.from_matrix(m, num_images=5)
    iou = cm.iou()
    assert math.isnan(iou[16])
    expect = {
        "19": np.nanmean(iou),
        "16": np.nanmean(iou[list(SYNTHIA_16)]),
        "13": np.nanmean(iou[list(SYNTHIA_13)]),
    }
    for protocol in ("19", "16", "13"):
        s = cm.summary(protocol)
        assert s["protocol"] == protocol
        assert s["miou"] == pytest.approx(round(100 * expect[protocol], 2))
        assert s["miou16"] == pytest.approx(round(100 * expect["16"], 2))
        assert s["miou13"] == pytest.approx(round(100 * expect["13"], 2))
        assert s["miou19"] == pytest.approx(round(100 * expect["19"], 2))
        assert s["num_images"] == 5
        assert list(s["per_class"]) == list(CITYSCAPES_CLASSES)
        assert s["per_class"]["train"] is None
    assert len(SYNTHIA_16) == 16 and len(SYNTHIA_13) == 13
    assert miou_of(np.array([np.nan, np.nan])) != miou_of(np.array([np.nan, np.nan]))  # all-NaN -> NaN


def test_protocols_need_19_classes_and_auto_resolution():
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([0, 1]), torch.tensor([0, 1]))
    assert "miou16" not in cm.summary("19")
    assert list(cm.summary("19")["per_class"]) == ["class_0", "class_1", "class_2"]
    with pytest.raises(UdaError, match="19 Cityscapes"):
        cm.summary("16")
    assert resolve_protocol("auto", "synthia") == "16"
    assert resolve_protocol(None, "gta5") == "19"
    with pytest.raises(UdaError, match="protocol"):
        resolve_protocol("17")
