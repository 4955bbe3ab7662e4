import pytest
import torch

import uda
from uda._errors import ConfigError
from uda.selftraining import class_masks


def _labels() -> torch.Tensor:
    a = torch.tensor([[0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 255, 255]])  # classes 0-4 and 255: 6
    b = torch.tensor([[5, 5, 5, 5], [6, 6, 6, 6], [5, 5, 6, 6]])  # classes 5, 6
    return torch.stack([a, b])


def test_image_choice_class_counts():
    labels = _labels()
    torch.manual_seed(0)
    for _ in range(20):
        m = class_masks(labels, choice="image")
        chosen0 = torch.unique(labels[0][m[0].bool()])
        chosen1 = torch.unique(labels[1][m[1].bool()])
        assert chosen0.numel() == 3 and chosen1.numel() == 1  # ceil(6/2), ceil(2/2)
        assert set(chosen1.tolist()) <= {5, 6}
        # mask / label consistency: a class is either fully pasted or not at all
        for i, ch in ((0, chosen0), (1, chosen1)):
            assert torch.equal(m[i].bool(), torch.isin(labels[i], ch))


def test_batch_choice_draws_from_whole_batch():
    labels = _labels()  # batch classes: 0..6 and 255 → 8, choose 4 per image
    torch.manual_seed(1)
    seen_empty = False
    for _ in range(50):
        m = class_masks(labels, choice="batch")
        chosen1 = torch.unique(labels[1][m[1].bool()])
        assert chosen1.numel() <= 2
        seen_empty |= chosen1.numel() == 0  # image 1 may get none of its classes
        chosen0 = torch.unique(labels[0][m[0].bool()])
        assert chosen0.numel() <= 4
    assert seen_empty


def test_exclude_ignore_and_odd_counts():
    labels = torch.tensor([[[0, 1, 2], [255, 255, 255]]])
    torch.manual_seed(0)
    for _ in range(10):
        m = class_masks(labels, ignore_as_class=False)
        assert m[0, 1].eq(0).all()  # 255 never pasted
        assert int(m.sum()) == 2  # ceil(3/2) = 2 classes of one pixel each


def test_mix_image_label_weight():
    torch.manual_seed(3)
    src_img, tgt_img = torch.ones(2, 3, 3, 4), torch.zeros(2, 3, 3, 4)
    tgt_lab = torch.full((2, 3, 4), 9)
    tgt_w = torch.full((2, 3, 4), 0.25)
    img, lab, w, m = uda.create("mixing", "classmix", choice="image")(src_img, _labels(), tgt_img, tgt_lab, tgt_w)
    src = m.bool()
    assert torch.equal(img, src[:, None].expand_as(img).float())
    assert torch.equal(lab[src], _labels()[src]) and lab[~src].eq(9).all() and lab.dtype == torch.int64
    assert w[src].eq(1).all() and w[~src].eq(0.25).all()


def test_global_rng_determinism_and_bad_choice():
    torch.manual_seed(5)
    a = class_masks(_labels())
    torch.manual_seed(5)
    assert torch.equal(a, class_masks(_labels()))
    with pytest.raises(ConfigError, match="choice"):
        uda.create("mixing", "classmix", choice="pixel")
