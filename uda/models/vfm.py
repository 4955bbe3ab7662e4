"""DINOv2 vision-transformer encoders with a feature-pyramid neck and the DAFormer head (VFM-UDA).

The model of VFM-UDA (Englert et al., "Exploring the Benefits of Vision Foundation Models for Unsupervised
Domain Adaptation", CVPR Workshops 2024): a DINOv2 ViT (Oquab et al., "DINOv2: Learning Robust Visual Features
without Supervision", TMLR 2024; with registers: Darcet et al., "Vision Transformers Need Registers", ICLR
2024) as the encoder under DAFormer-style self-training (Hoyer et al., "DAFormer", CVPR 2022).

- Encoder: any timm DINOv2 ViT (``vit_{small,base,large,giant}_patch14[_reg4]_dinov2``), built without
  weights and with ``dynamic_img_size`` (the position embedding is interpolated to each input's patch grid).
- Four blocks are tapped (default: the last block of each quarter of the depth); each output goes through
  the encoder's final LayerNorm and is reshaped to the (B, D, H/14, W/14) patch grid.
- Neck (the "simple feature pyramid" of BEiT, Bao et al., ICLR 2022, and ViTDet, Li et al., ECCV 2022): the
  first tapped block is upsampled 4x by two 2x2 transposed convolutions (LayerNorm + GELU between), the second
  2x by one, the third is kept, the fourth is max-pooled 2x. On the stride-14 patch grid these levels have
  cells of 3.5, 7, 14 and 28 input pixels; each is resampled bilinearly by 14/16 (pixel centres aligned) to
  cells of exactly 4, 8, 16 and 32 pixels, so the pyramid has the strides ``feature_info`` declares.
- Head: `uda.models.daformer.DAFormerHead` on the four levels; logits at the first level.

Inputs of any size are zero-padded (after normalization, so with the mean colour) on the right and bottom to
multiples of 14; every level is cropped back to the cells that cover the input (``ceil(H / s)`` rows at stride
``s``). See docs/models.md ("DINOv2 / VFM").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .._errors import CheckpointError, UdaError
from .._registry import register
from ..types import LevelInfo, SegOutput
from ._common import UdaSegmentationModel
from .timm_models import _load as _timm_load

__all__ = ["DINOV2_BACKBONES", "DINOV2_WEIGHTS_HINT", "SimpleFeaturePyramid", "VFMSegmenter", "vfm", "vfm_tiny"]

DINOV2_BACKBONES = tuple(
    f"vit_{size}_patch14{reg}_dinov2" for size in ("small", "base", "large", "giant") for reg in ("", "_reg4")
)
DINOV2_WEIGHTS_HINT = (
    "DINOv2 weights are the official releases of https://github.com/facebookresearch/dinov2 (e.g. "
    "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_reg4_pretrain.pth) or the timm files "
    "on the Hugging Face hub (e.g. timm/vit_large_patch14_reg4_dinov2.lvd142m, model.safetensors); download "
    "one on a machine with network access and pass its local path as pretrained=PATH"
)
LEVELS = ("stage1", "stage2", "stage3", "stage4")
STRIDES = (4, 8, 16, 32)


def default_block_indices(depth: int) -> tuple[int, int, int, int]:
    """The last block of each quarter of a ``depth``-block ViT (24 → 5, 11, 17, 23; 12 → 2, 5, 8, 11).

    Example:
        >>> default_block_indices(24)
        (5, 11, 17, 23)
    """
    if depth < 4:
        raise UdaError(f"a ViT encoder needs at least 4 blocks for four feature levels, got depth {depth}")
    return tuple((i + 1) * depth // 4 - 1 for i in range(4))  # type: ignore[return-value]


class SimpleFeaturePyramid(nn.Module):
    """Four patch-grid maps → a 4x / 2x / 1x / 0.5x pyramid (BEiT / ViTDet simple feature pyramid).

    Args:
        dim: channels of the ViT tokens (kept at every level).

    Shape:
        - inputs: four (B, dim, h, w) maps on the patch grid
        - outputs: (B, dim, 4h, 4w), (B, dim, 2h, 2w), (B, dim, h, w), (B, dim, ceil(h/2), ceil(w/2))

    Example:
        >>> import torch
        >>> neck = SimpleFeaturePyramid(8)
        >>> [o.shape[-1] for o in neck([torch.rand(1, 8, 3, 3)] * 4)]
        [12, 6, 3, 2]
    """

    def __init__(self, dim: int) -> None:
        from timm.layers import LayerNorm2d

        super().__init__()
        self.up4 = nn.Sequential(
            nn.ConvTranspose2d(dim, dim, 2, stride=2), LayerNorm2d(dim), nn.GELU(), nn.ConvTranspose2d(dim, dim, 2, stride=2)
        )
        self.up2 = nn.ConvTranspose2d(dim, dim, 2, stride=2)
        self.keep = nn.Identity()
        self.down2 = nn.MaxPool2d(2, stride=2, ceil_mode=True)

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        a, b, c, d = feats
        return [self.up4(a), self.up2(b), self.keep(c), self.down2(d)]


class VFMSegmenter(UdaSegmentationModel):
    """A timm DINOv2 ViT encoder, the simple-feature-pyramid neck and the DAFormer head.

    Feature levels ``stage1`` … ``stage4`` (the neck outputs resampled from the stride-14 patch grid to strides
    4/8/16/32: ``ceil(H / s)`` × ``ceil(W / s)``) and ``logits`` (stride 4, at ``stage1``); ``aux`` is ``None``.
    Parameter groups: the encoder at the base lr, the neck and the head at ``head_lr_mult`` × (both are
    trained from scratch); ``layer_decay`` / ``encoder_lr_mult`` of the optimizer config act on
    `layer_decay_encoder()`.

    Args:
        num_classes: output classes.
        backbone: a timm ViT name (the DINOv2 ones are in ``DINOV2_BACKBONES``; other timm ViTs work too).
        block_indices: the four encoder blocks tapped (0-based; default: last block of each quarter).
        embed_dim: the DAFormer head's embedding channels.
        dropout: the head's dropout before the classifier.
        activation_checkpointing: recompute the encoder blocks in the backward pass (timm's
            ``set_grad_checkpointing``): less memory, one more encoder forward per step, the same gradients.
        grad_checkpointing: the former name of ``activation_checkpointing`` (an alias; either turns it on).
        normalization: input normalization (DINOv2 weights: ``"imagenet"``).
        backbone_kwargs: extra ``timm.create_model`` arguments (e.g. ``drop_path_rate``, or a small
            ``embed_dim``/``depth``/``num_heads`` for a tiny encoder).

    Example:
        >>> import torch, uda
        >>> m = uda.create("model", "vfm_tiny", num_classes=3)
        >>> out = m(torch.rand(1, 3, 30, 44))
        >>> out.logits.shape, out.features["stage3"].shape[-2:]
        (torch.Size([1, 3, 8, 11]), torch.Size([2, 3]))
    """

    backbone_prefixes = ("encoder.",)
    head_prefixes = ("head.",)
    patch_size = 14

    def __init__(
        self,
        num_classes: int = 19,
        *,
        backbone: str = "vit_large_patch14_reg4_dinov2",
        block_indices: Sequence[int] | None = None,
        embed_dim: int = 256,
        dropout: float = 0.1,
        grad_checkpointing: bool = False,
        normalization: str = "imagenet",
        backbone_kwargs: dict | None = None,
        activation_checkpointing: bool = False,
    ) -> None:
        import timm

        from .daformer import DAFormerHead

        super().__init__(num_classes, normalization, "train")
        kw = {"dynamic_img_size": True, **dict(backbone_kwargs or {})}
        try:
            self.encoder = timm.create_model(backbone, pretrained=False, num_classes=0, **kw)
        except RuntimeError as e:
            if "Unknown model" in str(e):
                raise UdaError(
                    f"unknown timm backbone '{backbone}'; use a DINOv2 ViT such as {', '.join(DINOV2_BACKBONES[:6])}"
                ) from None
            raise
        if not hasattr(self.encoder, "forward_intermediates") or not hasattr(self.encoder, "blocks"):
            raise UdaError(f"backbone '{backbone}' is not a timm vision transformer (no blocks/forward_intermediates)")
        self.patch_size = int(self.encoder.patch_embed.patch_size[0])
        depth = len(self.encoder.blocks)
        idx = tuple(int(i) for i in block_indices) if block_indices is not None else default_block_indices(depth)
        if len(idx) != 4 or any(not 0 <= i < depth for i in idx) or list(idx) != sorted(set(idx)):
            raise UdaError(
                f"block_indices must be four increasing block numbers in 0..{depth - 1} for '{backbone}', got {idx}"
            )
        self.block_indices = idx
        self.backbone_name = backbone
        self.activation_checkpointing = bool(activation_checkpointing or grad_checkpointing)
        if self.activation_checkpointing:
            self.encoder.set_grad_checkpointing(True)
        dim = int(self.encoder.embed_dim)
        self.neck = SimpleFeaturePyramid(dim)
        self.head = DAFormerHead(in_channels=[dim] * 4, num_classes=num_classes, embed_dim=embed_dim, dropout=dropout)
        self.feature_info = {lv: LevelInfo(dim, s) for lv, s in zip(LEVELS, STRIDES)}
        self.feature_info["logits"] = LevelInfo(num_classes, 4)
        self.min_input_size = 1
        self.train()

    # -- forward -------------------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four tapped blocks (after the final norm) on the patch grid; ``x`` normalized, multiple of 14.

        Blocks after the last tapped one are not run (``stop_early``).

        Shape:
            - x: (B, 3, 14h, 14w)
            - outputs: four (B, D, h, w)
        """
        return self.encoder.forward_intermediates(
            x, indices=list(self.block_indices), norm=True, stop_early=True, output_fmt="NCHW", intermediates_only=True
        )

    def features_normalized(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The four pyramid levels of a normalized input (no head)."""
        h, w = int(x.shape[-2]), int(x.shape[-1])
        p = self.patch_size
        ph, pw = -(-h // p) * p - h, -(-w // p) * p - w
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        return dict(zip(LEVELS, [self._to_stride(t, h, w, s) for t, s in zip(self.neck(self.encode(x)), STRIDES)]))

    def forward_normalized(self, x: torch.Tensor) -> SegOutput:
        feats = self.features_normalized(x)
        logits = self.head(list(feats.values()))
        feats["logits"] = logits
        return SegOutput(logits=logits, aux=None, features=feats)

    def _to_stride(self, t: torch.Tensor, h: int, w: int, stride: int) -> torch.Tensor:
        """A neck level on the patch grid (cells of ``patch_size · stride / 16`` px) → cells of ``stride`` px.

        Bilinear resampling by ``patch_size / 16`` with the pixel-centre mapping of ``align_corners=False``
        (cell ``j`` of the result is centred on input pixel ``(j + 0.5) · stride``), one replicated cell at the
        right/bottom border so the result covers the input, then cropped to ``ceil(h / stride)`` ×
        ``ceil(w / stride)``.
        """
        if self.patch_size != 16:
            t = F.pad(t, (0, 1, 0, 1), mode="replicate")
            t = F.interpolate(
                t, scale_factor=self.patch_size / 16, mode="bilinear", align_corners=False, recompute_scale_factor=False
            )
        return t[..., : -(-h // stride), : -(-w // stride)]

    # -- optimizer ---------------------------------------------------------------------------------------------
    def head_parameters(self) -> list[nn.Parameter]:
        """The neck and the DAFormer head (trained from scratch: ``head_lr_mult`` ×)."""
        return list(self.neck.parameters()) + list(self.head.parameters())

    def layer_decay_encoder(self) -> tuple[nn.Module, str]:
        """The ViT whose blocks layer-wise lr decay walks (timm's ``group_matcher``) and its key prefix."""
        return self.encoder, "encoder."

    # -- weights -----------------------------------------------------------------------------------------------
    def translate_foreign_state_dict(self, sd: dict[str, torch.Tensor]) -> tuple[dict, str, str] | None:
        """A bare encoder file → our keys: timm ViT state dicts and the official DINOv2 layout.

        The official layout (``mask_token``, ``register_tokens``, a ``pos_embed`` that includes the class
        token's) is converted by timm's own ``checkpoint_filter_fn``, which also resamples a ``pos_embed``
        of another grid (e.g. 518 px → the model's) and drops ``mask_token`` (used only by DINOv2's
        masked-image pre-training). Classifier heads of timm files (``head.*``) are skipped; anything else
        must land in the encoder (``load_weights`` raises naming the keys that do not).
        """
        if "patch_embed.proj.weight" not in sd or not any(k.startswith("blocks.") for k in sd):
            return None
        from timm.models.vision_transformer import checkpoint_filter_fn

        layout = "dinov2" if "mask_token" in sd or "register_tokens" in sd else "timm_vit"
        own = self.state_dict()
        converted = checkpoint_filter_fn(dict(sd), self.encoder)
        out = {
            "encoder." + k: v
            for k, v in converted.items()
            if "encoder." + k in own or not k.startswith(("head.", "head_dist.", "fc_norm."))
        }
        return out, layout, "imagenet"


def _load(model: VFMSegmenter, pretrained: str | None, keep_normalization: bool) -> VFMSegmenter:
    """`timm_models._load` with the DINOv2 download hint when the file is missing."""
    if pretrained and not Path(pretrained).is_file():
        raise CheckpointError(f"{pretrained}: no such weights file; check the path. {DINOV2_WEIGHTS_HINT}")
    return _timm_load(model, pretrained, keep_normalization)


@register("model", "vfm")
def vfm(
    num_classes: int = 19,
    *,
    backbone: str = "vit_large_patch14_reg4_dinov2",
    pretrained: str | None = None,
    block_indices: Sequence[int] | None = None,
    embed_dim: int = 256,
    dropout: float = 0.1,
    grad_checkpointing: bool = False,
    normalization: str | None = None,
    backbone_kwargs: dict | None = None,
    activation_checkpointing: bool = False,
) -> VFMSegmenter:
    """A DINOv2 ViT encoder + simple feature pyramid + DAFormer head (VFM-UDA, Englert et al., CVPRW 2024).

    Args:
        num_classes: output classes.
        backbone: timm DINOv2 ViT name (default ViT-L/14 with 4 registers).
        pretrained: a local encoder file (timm state dict as safetensors/.pth, or an official DINOv2
            checkpoint), or a full ``uda`` checkpoint; ``None`` for random init.
        block_indices: the four tapped blocks (default: last block of each quarter).
        embed_dim: DAFormer head channels.
        dropout: head dropout.
        grad_checkpointing: alias of ``activation_checkpointing`` (its former name).
        normalization: input normalization (default ``"imagenet"``, the DINOv2 statistics).
        backbone_kwargs: extra ``timm.create_model`` arguments.
        activation_checkpointing: recompute the encoder blocks in the backward pass (less memory, same gradients).

    Returns:
        A [VFMSegmenter][uda.models.vfm.VFMSegmenter].

    Example:
        >>> import uda
        >>> m = uda.create("model", "vfm", backbone="vit_small_patch14_reg4_dinov2", num_classes=19,
        ...                backbone_kwargs={"depth": 4})
        >>> m.block_indices
        (0, 1, 2, 3)
    """
    model = VFMSegmenter(
        num_classes,
        backbone=backbone,
        block_indices=block_indices,
        embed_dim=embed_dim,
        dropout=dropout,
        activation_checkpointing=activation_checkpointing or grad_checkpointing,
        normalization=normalization or "imagenet",
        backbone_kwargs=backbone_kwargs,
    )
    return _load(model, pretrained, normalization is not None)


TINY_ENCODER = {"embed_dim": 32, "depth": 4, "num_heads": 2, "img_size": 70}


@register("model", "vfm_tiny")
def vfm_tiny(
    num_classes: int = 19,
    *,
    pretrained: str | None = None,
    backbone: str = "vit_small_patch14_reg4_dinov2",
    embed_dim: int = 16,
    block_indices: Sequence[int] | None = None,
    grad_checkpointing: bool = False,
    activation_checkpointing: bool = False,
) -> VFMSegmenter:
    """Tiny VFM model for tests and CPU demos: the DINOv2-with-registers architecture at width 32, depth 4,
    2 heads (position embedding for a 5×5 grid, interpolated to any input), random init, head width 16.

    Args:
        num_classes: output classes.
        pretrained: a local weights file, or ``None``.
        backbone: the timm architecture whose layout the tiny encoder keeps.
        embed_dim: DAFormer head channels.
        block_indices: the four tapped blocks (default 0, 1, 2, 3).
        grad_checkpointing: alias of ``activation_checkpointing`` (as for `vfm`).
        activation_checkpointing: recompute the encoder blocks in the backward pass (as for `vfm`).

    Returns:
        A [VFMSegmenter][uda.models.vfm.VFMSegmenter].
    """
    model = VFMSegmenter(
        num_classes, backbone=backbone, block_indices=block_indices, embed_dim=embed_dim, backbone_kwargs=TINY_ENCODER,
        activation_checkpointing=activation_checkpointing or grad_checkpointing,
    )
    return _load(model, pretrained, False)
