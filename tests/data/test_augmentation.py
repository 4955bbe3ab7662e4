"""kornia augmentation: image and label move together; labels stay exact integers, 255 stays 255."""

from __future__ import annotations

import torch

import uda


def test_standard_keeps_labels_exact_and_aligned() -> None:
    torch.manual_seed(0)
    aug = uda.create("augmentation", "standard", jitter_p=0.0, blur_p=0.0)
    label = torch.randint(0, 19, (2, 32, 64))
    label[:, :4] = 255
    # the image encodes the label, so a shared geometric transform keeps them consistent
    image = (label.float() / 255.0)[:, None].expand(-1, 3, -1, -1).contiguous()
    for _ in range(3):
        out, lab = aug(image, label)
        assert out.shape == image.shape and lab.shape == label.shape and lab.dtype == torch.int64
        assert set(lab.unique().tolist()) <= set(label.unique().tolist())
        # where the label is unambiguous (pixel equals its neighbours) the resampled image agrees with it
        inner = (lab[:, 1:-1, 1:-1] == lab[:, :-2, 1:-1]) & (lab[:, 1:-1, 1:-1] == lab[:, 2:, 1:-1])
        inner &= (lab[:, 1:-1, 1:-1] == lab[:, 1:-1, :-2]) & (lab[:, 1:-1, 1:-1] == lab[:, 1:-1, 2:])
        img_ids = (out[:, 0, 1:-1, 1:-1] * 255).round().long()
        assert (img_ids[inner] == lab[:, 1:-1, 1:-1][inner]).float().mean() > 0.95


def test_standard_changes_images_and_keeps_range() -> None:
    torch.manual_seed(1)
    aug = uda.create("augmentation", "standard", jitter_p=1.0)
    img = torch.rand(2, 3, 16, 32)
    out, lab = aug(img, None)
    assert lab is None and not torch.equal(out, img) and float(out.min()) >= 0 and float(out.max()) <= 1


def test_none_is_identity() -> None:
    img, lab = torch.rand(1, 3, 8, 8), torch.zeros(1, 8, 8, dtype=torch.long)
    out, out_lab = uda.create("augmentation", "none")(img, lab)
    assert out is img and out_lab is lab
