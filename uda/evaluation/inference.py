"""Inference modes for evaluation and prediction (AdaptSegNet, Tsai et al., CVPR 2018; ADVENT, Vu et al.,
CVPR 2019; DAFormer, Hoyer et al., CVPR 2022).

- ``"resize"``: the protocol of AdaptSegNet/ADVENT and of the MLFA paper: the input is resized to
  ``cfg.size`` (1024×512 for Cityscapes) with antialiased bicubic interpolation, as the originals' test
  loaders do (PIL ``Image.BICUBIC``; ours agrees with PIL within 1.1/255), the main-head logits are upsampled bilinearly with
  ``align_corners=True`` to the label size (2048×1024).
- ``"slide"``: sliding windows of ``cfg.crop`` with ``cfg.stride`` over the input (resized to ``cfg.size``
  first when it is set; ``size: null`` = full resolution, the DAFormer/HRDA protocol with 1024×1024 crops and
  512 stride). Window logits are upsampled to the window size, summed and divided by the per-pixel window
  count; one window (for the whole batch) is in memory at a time.
- ``"multiscale"``: the input at each of ``cfg.scales`` × (``cfg.size`` or the input size), optionally also
  horizontally flipped; the *softmax probabilities* at the output size are averaged and their log is
  returned (log-probabilities are valid logits: same argmax, and softmax recovers the averaged probabilities).

Example:
    >>> import torch
    >>> from uda.config import EvalConfig
    >>> model = lambda x: torch.zeros(x.shape[0], 19, x.shape[2] // 8, x.shape[3] // 8)
    >>> infer(model, torch.rand(1, 3, 64, 128), EvalConfig(size="64x32"), out_size=(64, 128)).shape
    torch.Size([1, 19, 64, 128])
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .._errors import UdaError
from .._utils import autocast_context
from ..config import EvalConfig, parse_size
from ..models import sliding_windows
from ..types import SegOutput

__all__ = ["infer", "sliding_windows"]


def _logits(model: Callable, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    return out.logits if isinstance(out, SegOutput) else out


def _resize_input(images: torch.Tensor, size_hw: tuple[int, int], mode: str = "bicubic") -> torch.Tensor:
    if tuple(images.shape[-2:]) == tuple(size_hw):
        return images
    # Antialiased bicubic, clamped to the image range: the originals' test loaders resize with PIL's BICUBIC
    # (which also clamps); this matches it within ~1/255 (PIL rounds to uint8, we stay in float). The
    # mmseg-based lineage (DAFormer, HRDA, MIC) resizes bilinearly (`eval.resize_interpolation`).
    out = F.interpolate(images, size=size_hw, mode=mode, align_corners=False, antialias=True)
    return out.clamp_(0.0, 1.0)


def _upsample(logits: torch.Tensor, size_hw: tuple[int, int], align_corners: bool = True) -> torch.Tensor:
    if tuple(logits.shape[-2:]) == tuple(size_hw):
        return logits
    return F.interpolate(logits, size=size_hw, mode="bilinear", align_corners=align_corners)




def _slide(model: Callable, x: torch.Tensor, cfg: EvalConfig) -> torch.Tensor:
    cw, ch = parse_size(cfg.crop, "eval.crop")
    sw, sh = parse_size(cfg.stride, "eval.stride")
    b, _, h, w = x.shape
    acc: torch.Tensor | None = None
    count = torch.zeros(1, 1, h, w, device=x.device, dtype=torch.float32)
    for y0, y1, x0, x1 in sliding_windows(h, w, (ch, cw), (sh, sw)):
        win = _upsample(_logits(model, x[:, :, y0:y1, x0:x1]).float(), (y1 - y0, x1 - x0), cfg.align_corners)
        if acc is None:
            acc = torch.zeros(b, win.shape[1], h, w, device=x.device, dtype=torch.float32)
        acc[:, :, y0:y1, x0:x1] += win
        count[:, :, y0:y1, x0:x1] += 1
    return acc / count


def infer(
    model: Callable,
    images: torch.Tensor,
    cfg: EvalConfig | None = None,
    out_size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Logits of ``model`` for ``images`` at ``out_size`` with the inference mode of ``cfg``.

    The caller chooses train/eval mode; this function runs under ``torch.inference_mode`` and, when
    ``cfg.amp``, under autocast for the images' device type.

    Args:
        model: a [`SegmentationModel`][uda.models.SegmentationModel] (or any callable returning ``SegOutput`` or logits).
        images: RGB in [0, 1].
        cfg: the evaluation config (mode, size ``WxH``, crop, stride, scales, flip, amp); default
            [`EvalConfig`][uda.config.EvalConfig] (the papers' protocol).
        out_size: ``(H, W)`` of the returned logits, like ``F.interpolate``: the label size (e.g. ``(1024, 2048)``
            for Cityscapes); ``None`` = the input size.

    Returns:
        float32 logits (log-probabilities in ``"multiscale"`` mode).

    Shape:
        - images: (B, 3, H, W)
        - output: (B, C, H_out, W_out)

    Example:
        >>> model = lambda x: torch.zeros(x.shape[0], 19, x.shape[2] // 8, x.shape[3] // 8)
        >>> infer(model, torch.rand(2, 3, 32, 64), EvalConfig(mode="slide", size=None, crop="32x32",
        ...       stride="16x16")).shape
        torch.Size([2, 19, 32, 64])
    """
    cfg = cfg or EvalConfig()
    if images.dim() != 4 or images.shape[1] != 3:
        raise UdaError(f"infer expects images of shape (B, 3, H, W), got {tuple(images.shape)}")
    in_hw = tuple(images.shape[-2:])
    out_hw = tuple(out_size) if out_size is not None else in_hw
    size = parse_size(cfg.size, "eval.size")
    base_hw = (size[1], size[0]) if size is not None else in_hw
    ac, interp = cfg.align_corners, cfg.resize_interpolation
    with torch.inference_mode(), autocast_context(cfg.amp, images.device):
        if cfg.mode == "resize":
            logits = _upsample(_logits(model, _resize_input(images, base_hw, interp)).float(), out_hw, ac)
        elif cfg.mode == "slide":
            logits = _upsample(_slide(model, _resize_input(images, base_hw, interp), cfg), out_hw, ac)
        elif cfg.mode == "multiscale":
            if not cfg.scales:
                raise UdaError("eval.scales is empty; give at least one scale, e.g. [1.0]")
            probs: torch.Tensor | None = None
            n = 0
            for s in cfg.scales:
                hw = (max(1, round(base_hw[0] * s)), max(1, round(base_hw[1] * s)))
                x = _resize_input(images, hw, interp)
                for flip in (False, True) if cfg.flip else (False,):
                    lg = _logits(model, x.flip(-1) if flip else x).float()
                    lg = _upsample(lg.flip(-1) if flip else lg, out_hw, ac)
                    p = lg.softmax(1)
                    probs = p if probs is None else probs.add_(p)
                    n += 1
            logits = (probs / n).clamp_min_(1e-12).log_()
        else:
            raise UdaError(f"unknown eval.mode '{cfg.mode}'; use resize, slide or multiscale")
    return logits.float()
