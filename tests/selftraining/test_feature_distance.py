import math

import pytest
import torch
from torch import nn

import uda
from uda._errors import ConfigError
from uda.selftraining.feature_distance import ImageNetFeatureDistance, downscale_label_ratio


def test_downscale_ratio_rule_exact():
    lab = torch.tensor([[[6, 6, 1, 1], [6, 0, 1, 2], [7, 7, 3, 3], [255, 0, 3, 3]]])
    # blocks: 3/4 class 6 → 6; 3/4 class 1 → 1; 2/4 class 7 → ignore at 0.75; 4/4 class 3 → 3
    assert downscale_label_ratio(lab, 2).tolist() == [[[6, 1], [255, 3]]]
    assert downscale_label_ratio(lab, 2, min_ratio=0.5).tolist() == [[[6, 1], [7, 3]]]
    assert downscale_label_ratio(lab, 4, min_ratio=0.25).tolist() == [[[3]]]  # 4/16 of class 3 beats 3/16 of 6
    ign = torch.tensor([[[255, 255], [255, 5]]])
    assert downscale_label_ratio(ign, 2, min_ratio=0.5).tolist() == [[[255]]]  # ignore wins as a class


class _Fixed(nn.Module):
    """A "network" returning a fixed feature map through a SegOutput."""

    def __init__(self, feat: torch.Tensor) -> None:
        super().__init__()
        self.feat = nn.Parameter(feat.clone())

    def forward(self, x: torch.Tensor) -> uda.SegOutput:
        return uda.SegOutput(logits=x, features={"stage1": x, "stage4": self.feat.expand(x.shape[0], -1, -1, -1)})


def test_exact_value_masked_mean_of_l2_norms():
    ref = torch.zeros(1, 2, 2, 2)
    fd = uda.create("loss", "imnet_feature_distance", encoder=_Fixed(ref), weight=0.5)
    student = torch.zeros(1, 2, 2, 2)
    student[0, :, 0, 0] = torch.tensor([3.0, 4.0])  # norm 5, thing pixel
    student[0, :, 0, 1] = torch.tensor([1.0, 0.0])  # norm 1, thing pixel
    student[0, :, 1, 0] = torch.tensor([100.0, 0.0])  # stuff pixel: masked out
    label = torch.zeros(1, 8, 8, dtype=torch.long)
    label[:, :4, :4] = 13  # car
    label[:, :3, 4:] = 18  # block (0, 1): 12/16 bicycle, 4/16 road → bicycle (0.75)
    label[:, 3, 4:] = 0
    loss = fd(student, torch.zeros(1, 3, 8, 8), label)
    assert loss.item() == pytest.approx(0.5 * (5 + 1) / 2)
    fd_all = ImageNetFeatureDistance(_Fixed(ref), weight=1.0, classes=None)
    assert fd_all(student, torch.zeros(1, 3, 8, 8), label).item() == pytest.approx((5 + 1 + 100 + 0) / 4)


def test_gradient_only_on_student_and_empty_mask_is_zero():
    enc = nn.Conv2d(3, 4, 4, stride=4)
    fd = ImageNetFeatureDistance(enc)
    assert not any(p.requires_grad for p in fd.parameters()) and not fd.train().training
    image = torch.rand(2, 3, 16, 16)
    student = enc(image) + 1.0
    label = torch.full((2, 16, 16), 11)
    loss = fd(student, image, label)
    assert loss.item() == pytest.approx(0.005 * math.sqrt(4.0), rel=1e-5)  # every diff is 1 in 4 channels
    loss.backward()
    assert enc.weight.grad is not None and fd.frozen.weight.grad is None
    empty = fd(enc(image), image, torch.zeros(2, 16, 16, dtype=torch.long))  # road only: nothing to compare
    assert empty.item() == 0.0 and empty.requires_grad


def test_frozen_copy_independent_of_later_training():
    enc = nn.Conv2d(3, 2, 2, stride=2)
    fd = ImageNetFeatureDistance(enc, classes=None)
    with torch.no_grad():
        enc.weight.add_(1.0)
    image = torch.rand(1, 3, 4, 4)
    assert fd(enc(image), image).item() > 0


def test_bad_shapes():
    fd = ImageNetFeatureDistance(nn.Conv2d(3, 2, 4, stride=4))
    with pytest.raises(ConfigError, match="differ"):
        fd(torch.zeros(1, 3, 4, 4), torch.rand(1, 3, 16, 16), torch.zeros(1, 16, 16, dtype=torch.long))
    with pytest.raises(ConfigError, match="integer factor"):
        fd(torch.zeros(1, 2, 4, 4), torch.rand(1, 3, 16, 16), torch.zeros(1, 16, 24, dtype=torch.long))
