import math

import pytest
import torch

import uda
from uda._errors import ConfigError
from uda.selftraining import PseudoLabeler, pixel_weighted_ce


def _logits() -> torch.Tensor:
    # 2 classes, 1 image 4x4: confidence p = sigmoid(l0 - l1); 5 of 16 pixels confident (>= 0.968)
    x = torch.zeros(1, 2, 4, 4)
    x[0, 0].view(-1)[:5] = 4.0  # sigmoid(4) = 0.982
    x[0, 1].view(-1)[5:8] = 3.0  # sigmoid(3) = 0.953 < 0.968
    return x


def test_labels_and_single_confidence_weight():
    labels, w = PseudoLabeler()(_logits())
    assert labels.view(-1)[:5].tolist() == [0] * 5 and labels.view(-1)[5:8].tolist() == [1] * 3
    assert torch.equal(w, torch.full((1, 4, 4), 5 / 16))
    assert w.dtype == torch.float32


def test_threshold_is_inclusive():
    p = 0.968
    x = torch.zeros(1, 2, 1, 2)
    x[0, 0, 0, 0] = math.log(p / (1 - p)) + 1e-4
    _, w = PseudoLabeler(threshold=p)(x)
    assert torch.allclose(w, torch.full_like(w, 0.5))


def test_margins_zero_rows_cols_but_fraction_over_all_pixels():
    x = torch.full((2, 2, 6, 5), 0.0)
    x[:, 0] = 5.0  # every pixel confident
    _, w = uda.create("pseudo_label", "confidence", margins=(1, 2, 1, 1))(x)
    expect = torch.zeros(2, 6, 5)
    expect[:, 1:4, 1:4] = 1.0
    assert torch.equal(w, expect)
    _, w2 = PseudoLabeler(margins=(1, 2))(x)
    assert w2[:, 1:4].eq(1).all() and w2[:, :1].eq(0).all() and w2[:, 4:].eq(0).all()
    with pytest.raises(ConfigError, match="margins"):
        PseudoLabeler(margins=(1, 2, 3))


def test_resize_to_image_size():
    labels, w = PseudoLabeler(size=(8, 8))(_logits())
    assert labels.shape == w.shape == (1, 8, 8)


def test_pixel_weighted_ce_mean_over_all_pixels():
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 0, 0, 0] = 1.0
    labels = torch.tensor([[[0, 1], [255, 1]]])
    weights = torch.tensor([[[0.5, 2.0], [7.0, 0.0]]])
    ce0 = -math.log(math.e / (math.e + 1))
    expected = (0.5 * ce0 + 2.0 * math.log(2) + 0 + 0) / 4
    assert pixel_weighted_ce(logits, labels, weights).item() == pytest.approx(expected, rel=1e-6)
    assert uda.create("loss", "pixel_weighted_ce")(logits, labels).item() == pytest.approx(
        (ce0 + 2 * math.log(2)) / 4, rel=1e-6
    )


def test_ce_upsamples_logits_bilinear():
    logits = torch.randn(1, 3, 2, 2)
    labels = torch.randint(0, 3, (1, 4, 4))
    up = torch.nn.functional.interpolate(logits, size=(4, 4), mode="bilinear", align_corners=False)
    ref = torch.nn.functional.cross_entropy(up, labels)
    torch.testing.assert_close(pixel_weighted_ce(logits, labels), ref)
    up_t = torch.nn.functional.interpolate(logits, size=(4, 4), mode="bilinear", align_corners=True)
    ce_t = uda.create("loss", "pixel_weighted_ce", align_corners=True)
    torch.testing.assert_close(ce_t(logits, labels), torch.nn.functional.cross_entropy(up_t, labels))
    assert not torch.allclose(ce_t(logits, labels), ref)
