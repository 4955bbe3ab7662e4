"""Inference modes: shapes, slide == resize when one window covers the image, slide == full for a pointwise net."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from uda import UdaError
from uda.config import EvalConfig
from uda.evaluation import infer, sliding_windows

from .conftest import TinySeg


@pytest.mark.parametrize("mode", ["resize", "slide", "multiscale"])
def test_shapes_and_dtype(mode):
    model = TinySeg(num_classes=5, stride=4).eval()
    cfg = EvalConfig(mode=mode, size="32x16", crop="16x16", stride="8x8", scales=[0.5, 1.0], flip=True)
    out = infer(model, torch.rand(2, 3, 24, 40), cfg, out_size=(24, 40))
    assert out.shape == (2, 5, 24, 40) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_resize_mode_is_the_papers_protocol():
    model = TinySeg(num_classes=3, stride=4).eval()
    x = torch.rand(1, 3, 32, 64)
    out = infer(model, x, EvalConfig(size="32x16"), out_size=(32, 64))
    small = F.interpolate(x, size=(16, 32), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    ref = F.interpolate(model(small).logits, size=(32, 64), mode="bilinear", align_corners=True)
    torch.testing.assert_close(out, ref)


def test_resize_mode_resizes_images_like_the_originals_pil_bicubic():
    """The originals' test loaders resize with PIL's BICUBIC; the model must see (nearly) the same image."""
    import numpy as np
    from PIL import Image

    seen = []

    def model(x):
        seen.append(x)
        return torch.zeros(x.shape[0], 2, x.shape[2], x.shape[3])

    g = torch.Generator().manual_seed(0)
    img = (torch.rand(1, 3, 8, 12, generator=g) * 255).round()
    img = F.interpolate(img, size=(96, 150), mode="bilinear").round().clamp(0, 255)  # a smooth uint8 picture
    for w, h in ((75, 48), (128, 64), (200, 130)):
        seen.clear()
        infer(model, img / 255, EvalConfig(size=f"{w}x{h}"), out_size=(96, 150))
        pil = Image.fromarray(img[0].permute(1, 2, 0).byte().numpy()).resize((w, h), Image.BICUBIC)
        ref = torch.from_numpy(np.asarray(pil).astype("float32") / 255).permute(2, 0, 1)
        assert float((seen[0][0] - ref).abs().max()) * 255 < 1.5  # bilinear would be 3.6-5.9 off


def test_slide_with_full_crop_equals_resize():
    model = TinySeg(num_classes=4, stride=4).eval()
    x = torch.rand(2, 3, 32, 64)
    resize = infer(model, x, EvalConfig(mode="resize", size="48x24"), out_size=(24, 48))
    slide = infer(model, x, EvalConfig(mode="slide", size="48x24", crop="48x24", stride="8x8"), out_size=(24, 48))
    torch.testing.assert_close(slide, resize)


def test_overlapping_windows_average_to_the_full_image_for_a_pointwise_model():
    model = TinySeg(num_classes=4, stride=1).eval()
    x = torch.rand(1, 3, 20, 36)
    full = infer(model, x, EvalConfig(size=None))
    slide = infer(model, x, EvalConfig(mode="slide", size=None, crop="16x12", stride="10x5"))
    torch.testing.assert_close(slide, full)


def test_windows_cover_the_image_flush_with_the_border():
    boxes = sliding_windows(20, 36, (12, 16), (5, 10))
    covered = torch.zeros(20, 36)
    for y0, y1, x0, x1 in boxes:
        assert y1 - y0 == 12 and x1 - x0 == 16
        covered[y0:y1, x0:x1] = 1
    assert covered.all() and max(b[1] for b in boxes) == 20 and max(b[3] for b in boxes) == 36
    assert sliding_windows(8, 8, (16, 16), (4, 4)) == [(0, 8, 0, 8)]  # crop larger than the image: clipped


def test_multiscale_single_scale_is_log_softmax_and_flip_is_consistent():
    model = TinySeg(num_classes=3, stride=1).eval()
    x = torch.rand(1, 3, 16, 16)
    ms = infer(model, x, EvalConfig(mode="multiscale", size=None, scales=[1.0]))
    torch.testing.assert_close(ms, model(x).logits.log_softmax(1), atol=1e-5, rtol=1e-5)
    # a pointwise model is flip-equivariant: adding the flipped pass changes nothing
    msf = infer(model, x, EvalConfig(mode="multiscale", size=None, scales=[1.0], flip=True))
    torch.testing.assert_close(msf, ms, atol=1e-5, rtol=1e-5)


def test_amp_on_cpu_runs_and_bad_config_raises():
    model = TinySeg(num_classes=3, stride=2).eval()
    out = infer(model, torch.rand(1, 3, 16, 16), EvalConfig(size="16x8", amp=True), out_size=(16, 16))
    assert out.dtype == torch.float32
    with pytest.raises(UdaError, match="scales"):
        infer(model, torch.rand(1, 3, 8, 8), EvalConfig(mode="multiscale", scales=[]))
    with pytest.raises(UdaError, match="B, 3, H, W"):
        infer(model, torch.rand(3, 8, 8))


def test_mmseg_protocol_resizes_bilinear_and_upsamples_without_align_corners():
    """`eval.resize_interpolation=bilinear`, `eval.align_corners=false` (DAFormer/HRDA/MIC presets) follow mmseg's
    test pipeline; the defaults follow AdaptSegNet/ADVENT (bicubic images, align_corners=True logits)."""
    torch.manual_seed(0)
    images = torch.rand(1, 3, 32, 64)
    seen = []

    def model(x):
        seen.append(x)
        return x[:, :2, ::4, ::4].contiguous()  # stride-4 "logits" of the resized input

    mm = EvalConfig(size="32x16", resize_interpolation="bilinear", align_corners=False)
    out = infer(model, images, mm, out_size=(32, 64))
    x = F.interpolate(images, size=(16, 32), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    torch.testing.assert_close(seen[-1], x)
    want = F.interpolate(x[:, :2, ::4, ::4], size=(32, 64), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, want)
    default = infer(model, images, EvalConfig(size="32x16"), out_size=(32, 64))
    assert not torch.allclose(default, out)  # the ADVENT protocol differs
