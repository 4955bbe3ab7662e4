import kornia.filters as KF
import pytest
import torch

import uda
from uda._errors import ConfigError
from uda.selftraining.augment import StrongAugmentation, blur_kernel_size


def test_kernel_size_rule():
    # floor(ceil(0.1 n) - 0.5 + ceil(0.1 n) % 2), the original's formula, evaluated by hand
    assert [blur_kernel_size(n) for n in (512, 513, 720, 1024, 50, 51, 10)] == [51, 51, 71, 103, 5, 5, 1]


def test_deterministic_under_manual_seed():
    aug = uda.create("augmentation", "dacs_strong")
    x = torch.rand(2, 3, 32, 48)
    torch.manual_seed(3)
    a = aug(x)
    torch.manual_seed(3)
    assert torch.equal(a, aug(x))


def test_off_switches_are_identity_and_range():
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(StrongAugmentation(jitter_p=0.0, blur_p=0.0)(x), x)
    assert torch.equal(StrongAugmentation(jitter=0.0, blur=False)(x), x)
    y = StrongAugmentation(jitter_p=1.0, blur_p=1.0)(x)
    assert not torch.equal(y, x) and y.min() >= 0 and y.max() <= 1


def test_blur_only_matches_kornia_with_drawn_sigma():
    x = torch.rand(2, 3, 40, 30)
    torch.manual_seed(7)
    y = StrongAugmentation(jitter_p=0.0, blur_p=1.0)(x)
    torch.manual_seed(7)
    torch.rand(2)  # the two batch decisions
    sig = torch.rand(2) * 1.0 + 0.15
    ref = torch.cat([KF.gaussian_blur2d(x[i : i + 1], (3, 3), torch.tensor([[s, s]])) for i, s in enumerate(sig)])
    torch.testing.assert_close(y, ref)


def test_batch_level_decision_rate():
    aug = StrongAugmentation(blur=False)  # jitter with probability 0.8
    x = torch.rand(1, 3, 4, 4)
    torch.manual_seed(0)
    changed = sum(not torch.equal(aug(x), x) for _ in range(200))
    assert 135 < changed < 185  # 160 expected


def test_bad_probability():
    with pytest.raises(ConfigError, match="jitter_p"):
        StrongAugmentation(jitter_p=2.0)
