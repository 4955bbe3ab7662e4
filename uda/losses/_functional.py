"""Functional core of the loss modules (segmentation CE, entropy, adversarial, cycle, style).

Papers: AdaptSegNet (Tsai et al., CVPR 2018) for the segmentation and adversarial losses, ADVENT (Vu et al.,
CVPR 2019) for the weighted self-information / entropy maps, CycleGAN (Zhu et al., ICCV 2017) for the
least-squares GAN, cycle and identity losses. Domain labels follow the originals: source 0, target 1.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._errors import UdaError
from ..labels import IGNORE_INDEX

SOURCE_LABEL = 0.0
TARGET_LABEL = 1.0
GAN_LOSSES = ("bce", "lsgan", "hinge")


def seg_ce(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    ignore_index: int = IGNORE_INDEX,
    resize: str = "logits",
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy averaged over valid pixels, at the label's or the logits' resolution.

    Args:
        logits: (B, C, h, w) class scores.
        labels: (B, H, W) int64 trainIds, ``ignore_index`` = ignore.
        ignore_index: label value that contributes nothing.
        resize: ``"logits"`` (the originals: logits bilinearly upsampled, ``align_corners=True``, to the
            label size) or ``"labels"`` (labels nearest-downsampled to the logits' size; cheaper).
        weight: optional per-class weights (C,).

    Returns:
        Scalar mean over valid pixels; exactly 0 (with a gradient path, no NaN) when no pixel is valid.

    Example:
        >>> round(seg_ce(torch.zeros(1, 3, 4, 4), torch.zeros(1, 8, 8, dtype=torch.long)).item(), 4)
        1.0986
    """
    if labels.dim() != 3:
        raise UdaError(f"seg_ce: labels must be (B, H, W), got shape {tuple(labels.shape)}")
    if logits.shape[-2:] != labels.shape[-2:]:
        if resize == "logits":
            logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=True)
        elif resize == "labels":
            labels = F.interpolate(labels[:, None].float(), size=logits.shape[-2:], mode="nearest")[:, 0].long()
        else:
            raise UdaError(f"seg_ce: resize must be 'logits' or 'labels', got {resize!r}")
    loss = F.cross_entropy(logits, labels, weight=weight, ignore_index=ignore_index, reduction="none")
    valid = (labels != ignore_index).to(loss.dtype)
    if weight is not None:
        denom = (weight[labels.clamp(max=logits.shape[1] - 1)] * valid).sum()
    else:
        denom = valid.sum()
    # Sum / clamp(count) is 0 (not NaN) when every pixel is ignored, and needs no host sync.
    return (loss * valid).sum() / denom.clamp(min=1e-12 if weight is not None else 1.0)


def self_information(prob: torch.Tensor, eps: float = 1e-30) -> torch.Tensor:
    """ADVENT's weighted self-information map ``-p·log2(p) / log2(C)``, per channel.

    This is the discriminator input of AdvEnt (not the summed entropy): each channel keeps its own term.

    Args:
        prob: (B, C, H, W) class probabilities (softmax output).
        eps: added inside the log so that ``p = 0`` gives 0.

    Returns:
        (B, C, H, W) map; its channel sum is the normalized entropy in [0, 1].
    """
    c = prob.shape[1]
    return -prob * torch.log2(prob + eps) / math.log2(c)


def entropy_map(logits: torch.Tensor) -> torch.Tensor:
    """Per-pixel normalized entropy ``-Σ_c p·log2 p / log2 C`` in [0, 1].

    Args:
        logits: (B, C, H, W) class scores.

    Returns:
        (B, H, W) entropy, 0 for a one-hot prediction, 1 for a uniform one.
    """
    return self_information(logits.softmax(dim=1)).sum(dim=1)


def minent(logits: torch.Tensor) -> torch.Tensor:
    """MinEnt loss (ADVENT): the mean normalized entropy over all pixels of the batch.

    Args:
        logits: (B, C, H, W) target-domain class scores.

    Returns:
        Scalar in [0, 1].
    """
    return entropy_map(logits).mean()


def _check_gan(kind: str) -> None:
    if kind not in GAN_LOSSES:
        raise UdaError(f"unknown GAN loss {kind!r}; use one of {', '.join(GAN_LOSSES)}")


def gan_loss(
    logits: torch.Tensor, domain_label: float, kind: str = "bce", *, for_discriminator: bool = True
) -> torch.Tensor:
    """Adversarial loss of discriminator logits against a domain label (source 0, target 1).

    - ``bce``: ``BCEWithLogits(logits, label)`` (AdaptSegNet/ADVENT);
    - ``lsgan``: ``MSE(logits, label)`` (least squares, CycleGAN);
    - ``hinge``: for the discriminator ``relu(1 - s·logits)`` with ``s = +1`` for label 1 and ``-1`` for
      label 0; for the generator (``for_discriminator=False``) ``-s·logits``, i.e. the usual hinge
      generator loss pushing the logits toward the side of ``domain_label``.

    Args:
        logits: discriminator output, any shape.
        domain_label: 0.0 (source / fake) or 1.0 (target / real).
        kind: ``"bce"``, ``"lsgan"`` or ``"hinge"``.
        for_discriminator: only matters for ``hinge``.

    Returns:
        Scalar mean over all elements.

    Example:
        >>> gan_loss(torch.zeros(2, 1, 3, 3), 0.0, "lsgan").item()
        0.0
    """
    _check_gan(kind)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(domain_label)))
    if kind == "lsgan":
        return F.mse_loss(logits, torch.full_like(logits, float(domain_label)))
    sign = 1.0 if domain_label >= 0.5 else -1.0
    if for_discriminator:
        return F.relu(1.0 - sign * logits).mean()
    return (-sign * logits).mean()


def cycle_l1(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Cycle-consistency loss ``mean |F(G(x)) - x|`` (CycleGAN)."""
    return F.l1_loss(reconstructed, original)


def identity_l1(mapped: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Identity loss ``mean |G(y) - y|`` for an image ``y`` already in G's output domain (CycleGAN)."""
    return F.l1_loss(mapped, original)


def channel_stats(features: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and standard deviation of a (B, C, H, W) map, averaged over the batch.

    Returns:
        ``(mean, std)``, each of shape (C,).
    """
    flat = features.flatten(2)  # (B, C, H*W)
    mean = flat.mean(dim=2)
    std = (flat.var(dim=2, unbiased=False) + eps).sqrt()
    return mean.mean(dim=0), std.mean(dim=0)


def style(source: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Style distance: squared error between the domains' per-channel feature mean and std.

    ``mean_c (μ_s − μ_t)² + mean_c (σ_s − σ_t)²`` with statistics from `channel_stats`. The two maps
    may differ in batch size and spatial size; both sides receive gradients.

    Args:
        source: (B, C, H, W) source features.
        target: (B', C, H', W') target features.

    Returns:
        Scalar, 0 when the statistics match.
    """
    if source.shape[1] != target.shape[1]:
        raise UdaError(f"style loss: channel counts differ ({source.shape[1]} vs {target.shape[1]})")
    ms, ss = channel_stats(source, eps)
    mt, st = channel_stats(target, eps)
    return F.mse_loss(ms, mt) + F.mse_loss(ss, st)
