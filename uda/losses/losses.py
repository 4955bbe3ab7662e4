"""Loss modules (kind ``loss``): thin ``nn.Module`` wrappers over `uda.losses._functional`.

Papers: AdaptSegNet (Tsai et al., CVPR 2018), ADVENT (Vu et al., CVPR 2019), CycleGAN (Zhu et al., ICCV 2017),
MLFA's "content and style alignment" read as per-channel feature statistics matching.

Example:
    >>> import torch, uda
    >>> ce = uda.create("loss", "seg_ce")
    >>> ce(torch.randn(2, 4, 8, 8), torch.randint(0, 4, (2, 32, 32))).shape
    torch.Size([])
"""

from __future__ import annotations

import torch
from torch import nn

from .._registry import register
from . import _functional as Fn


@register("loss", "seg_ce")
class SegCELoss(nn.Module):
    """Segmentation cross-entropy with ignore label 255, averaged over valid pixels.

    Args:
        ignore_index: label value to ignore.
        resize: ``"logits"`` (upsample logits bilinearly, ``align_corners=True``, to the label size: the
            originals) or ``"labels"`` (nearest-downsample the labels to the logits' size).

    Shape:
        logits (B, C, h, w), labels (B, H, W) int64 → scalar.
    """

    def __init__(self, *, ignore_index: int = Fn.IGNORE_INDEX, resize: str = "logits") -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.resize = resize

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return Fn.seg_ce(logits, labels, ignore_index=self.ignore_index, resize=self.resize)


@register("loss", "entropy")
class EntropyMap(nn.Module):
    """Per-pixel normalized entropy ``-Σ p·log2 p / log2 C`` in [0, 1] (ADVENT).

    Shape:
        logits (B, C, H, W) → (B, H, W).
    """

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return Fn.entropy_map(logits)


@register("loss", "minent")
class MinEntLoss(nn.Module):
    """Entropy minimisation (ADVENT MinEnt): mean normalized entropy of the target predictions.

    Shape:
        logits (B, C, H, W) → scalar in [0, 1].
    """

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return Fn.minent(logits)


class GANLoss(nn.Module):
    """Adversarial loss against a domain label (source 0, target 1); see [`gan_loss`][uda.losses.gan_loss].

    Args:
        kind: ``"bce"``, ``"lsgan"`` or ``"hinge"``.

    Shape:
        logits (any shape), domain label float → scalar.
    """

    def __init__(self, kind: str = "bce") -> None:
        super().__init__()
        Fn._check_gan(kind)
        self.kind = kind

    def forward(self, logits: torch.Tensor, domain_label: float, *, for_discriminator: bool = True) -> torch.Tensor:
        return Fn.gan_loss(logits, domain_label, self.kind, for_discriminator=for_discriminator)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"


@register("loss", "bce")
class BCEGANLoss(GANLoss):
    """Adversarial BCE-with-logits loss (AdaptSegNet, ADVENT)."""

    def __init__(self) -> None:
        super().__init__("bce")


@register("loss", "lsgan")
class LSGANLoss(GANLoss):
    """Least-squares adversarial loss, MSE against the domain label (LSGAN, CycleGAN)."""

    def __init__(self) -> None:
        super().__init__("lsgan")


@register("loss", "hinge")
class HingeGANLoss(GANLoss):
    """Hinge adversarial loss (discriminator: ``relu(1 ∓ logits)``; generator: ``∓logits``)."""

    def __init__(self) -> None:
        super().__init__("hinge")


@register("loss", "cycle_l1")
class CycleL1Loss(nn.Module):
    """Cycle-consistency L1 loss ``|F(G(x)) − x|`` (CycleGAN).

    Shape:
        reconstructed, original (B, 3, H, W) → scalar.
    """

    def forward(self, reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
        return Fn.cycle_l1(reconstructed, original)


@register("loss", "identity_l1")
class IdentityL1Loss(nn.Module):
    """Identity L1 loss ``|G(y) − y|`` for ``y`` already in G's output domain (CycleGAN).

    Shape:
        mapped, original (B, 3, H, W) → scalar.
    """

    def forward(self, mapped: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
        return Fn.identity_l1(mapped, original)


@register("loss", "style")
class StyleLoss(nn.Module):
    """Feature style loss: per-channel mean/std matching between two domains' feature maps.

    Our reading of MLFA's "content and style alignment" (the paper gives no detail).

    Shape:
        source (B, C, H, W), target (B', C, H', W') → scalar.
    """

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return Fn.style(source, target)
