"""DAFormer: a Mix Transformer (MiT) encoder with the DAFormer context-aware fusion head.

Hoyer, Dai, Van Gool, "DAFormer: Improving Network Architectures and Training Strategies for Domain-Adaptive
Semantic Segmentation", CVPR 2022. The encoder is the MiT of Xie et al., "SegFormer: Simple and Efficient Design
for Semantic Segmentation with Transformers", NeurIPS 2021, taken from segmentation-models-pytorch
(``segmentation_models_pytorch.encoders.mix_transformer``).

Licence: the MiT code in segmentation-models-pytorch (and the SegFormer/DAFormer ImageNet and released weights)
carries the NVIDIA Source Code License, which allows non-commercial use only. The head (`uda.models.daformer_head`)
is our own code.

Models: ``daformer_mitb0`` … ``daformer_mitb5`` (``daformer_mitb5`` is the network of the paper) and
``daformer_tiny`` (a 4-stage MiT with 8–64 channels and a 32-channel head, for tests and CPU demos).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .._errors import CheckpointError, UdaError
from .._registry import register
from ..types import LevelInfo, SegOutput
from ._common import BNMode, UdaSegmentationModel
from .daformer_head import DAFormerHead

__all__ = [
    "MIT_CONFIGS",
    "NO_WEIGHT_DECAY_KEYS",
    "DAFormer",
    "DAFormerHead",
    "build_mit",
    "daformer_mitb0",
    "daformer_mitb1",
    "daformer_mitb2",
    "daformer_mitb3",
    "daformer_mitb4",
    "daformer_mitb5",
    "daformer_tiny",
]

DAFORMER_HINT = (
    "DAFormer/HRDA/MIC checkpoints are released by the authors (github.com/lhoyer/DAFormer, lhoyer/HRDA, "
    "lhoyer/MIC, README 'Checkpoints'); SegFormer's MiT ImageNet weights (mit_b0.pth … mit_b5.pth) are linked "
    "from github.com/NVlabs/SegFormer; download them on a machine with network access and pass the local path"
)

#: Parameter-name substrings without weight decay in DAFormer's optimizer (mmcv ``paramwise_cfg``): every MiT
#: LayerNorm has ``norm`` in its name; ``pos_block`` is kept for encoders that have positional blocks.
NO_WEIGHT_DECAY_KEYS = ("norm", "pos_block")

#: MiT variants (SegFormer's ``mit_b0`` … ``mit_b5``) and ``tiny`` (ours): embed dims, heads, depths, sr ratios.
MIT_CONFIGS: dict[str, dict[str, Any]] = {
    "mit_b0": {"embed_dims": (32, 64, 160, 256), "num_heads": (1, 2, 5, 8), "depths": (2, 2, 2, 2)},
    "mit_b1": {"embed_dims": (64, 128, 320, 512), "num_heads": (1, 2, 5, 8), "depths": (2, 2, 2, 2)},
    "mit_b2": {"embed_dims": (64, 128, 320, 512), "num_heads": (1, 2, 5, 8), "depths": (3, 4, 6, 3)},
    "mit_b3": {"embed_dims": (64, 128, 320, 512), "num_heads": (1, 2, 5, 8), "depths": (3, 4, 18, 3)},
    "mit_b4": {"embed_dims": (64, 128, 320, 512), "num_heads": (1, 2, 5, 8), "depths": (3, 8, 27, 3)},
    "mit_b5": {"embed_dims": (64, 128, 320, 512), "num_heads": (1, 2, 5, 8), "depths": (3, 6, 40, 3)},
    "tiny": {"embed_dims": (8, 16, 32, 64), "num_heads": (1, 1, 2, 4), "depths": (1, 1, 1, 1)},
}
MIT_STRIDES = (4, 8, 16, 32)


def _fix_mit_eps(encoder: nn.Module) -> None:
    """Set the LayerNorm eps of SegFormer's MiT: 1e-5 in the patch embeddings and the attention's
    spatial-reduction norm, 1e-6 in the blocks (``norm1``/``norm2``) and the stage norms (``norm1`` … ``norm4``).
    (smp 0.6 builds the same values; this pins them against a change upstream.)"""
    for name, m in encoder.named_modules():
        if isinstance(m, nn.LayerNorm):
            m.eps = 1e-5 if (name.startswith("patch_embed") or name.endswith("attn.norm")) else 1e-6


def build_mit(variant: str = "mit_b5", *, drop_path_rate: float = 0.1) -> nn.Module:
    """A MiT encoder (smp's implementation, random init) with SegFormer's settings.

    Args:
        variant: ``mit_b0`` … ``mit_b5`` or ``tiny``.
        drop_path_rate: stochastic depth at the last block (SegFormer/DAFormer: 0.1).

    Returns:
        smp's ``MixVisionTransformerEncoder``; ``forward_features(x)`` returns the four stage outputs.
    """
    from functools import partial

    from segmentation_models_pytorch.encoders.mix_transformer import LayerNorm, MixVisionTransformerEncoder

    if variant not in MIT_CONFIGS:
        raise UdaError(f"unknown MiT variant '{variant}'; use one of {', '.join(MIT_CONFIGS)}")
    cfg = MIT_CONFIGS[variant]
    enc = MixVisionTransformerEncoder(
        out_channels=[3, 0, *cfg["embed_dims"]],
        depth=5,
        embed_dims=list(cfg["embed_dims"]),
        num_heads=list(cfg["num_heads"]),
        mlp_ratios=[4, 4, 4, 4],
        qkv_bias=True,
        norm_layer=partial(LayerNorm, eps=1e-6),
        depths=list(cfg["depths"]),
        sr_ratios=[8, 4, 2, 1],
        drop_rate=0.0,
        drop_path_rate=drop_path_rate,
    )
    _fix_mit_eps(enc)
    return enc


def param_groups_no_decay(
    model: nn.Module, groups: list[dict], weight_decay: float | None, keys: Sequence[str] = NO_WEIGHT_DECAY_KEYS
) -> list[dict]:
    """Split parameter groups into decayed and non-decayed halves (``weight_decay`` 0 where a name contains one
    of ``keys``); ``weight_decay=None`` returns ``groups`` unchanged."""
    if weight_decay is None:
        return groups
    no_decay = {id(p) for n, p in model.named_parameters() if any(k in n for k in keys)}
    out = []
    for g in groups:
        dec = [p for p in g["params"] if id(p) not in no_decay]
        nod = [p for p in g["params"] if id(p) in no_decay]
        out.append({**g, "params": dec, "weight_decay": weight_decay})
        if nod:
            out.append({**g, "params": nod, "weight_decay": 0.0, "name": g.get("name", "") + "_no_decay"})
    return out


def split_checkpoint(sd: dict[str, torch.Tensor], key: str) -> dict[str, torch.Tensor]:
    """Keep the ``key.``-prefixed part of a released DAFormer/HRDA/MIC state dict (``model``, ``ema_model``)."""
    prefixes = {k.split(".", 1)[0] for k in sd}
    if not prefixes & {"model", "ema_model", "imnet_model"}:
        return sd
    if key not in prefixes:
        raise CheckpointError(
            f"the checkpoint has no '{key}.' weights (it holds {', '.join(sorted(prefixes))}); "
            "use pretrained_key='model' (student) or 'ema_model' (teacher)"
        )
    return {k[len(key) + 1 :]: v for k, v in sd.items() if k.startswith(key + ".")}


class DAFormer(UdaSegmentationModel):
    """MiT encoder + [DAFormerHead][uda.models.daformer.DAFormerHead] (Hoyer et al., CVPR 2022).

    Feature levels ``stage1`` … ``stage4`` (strides 4, 8, 16, 32) and ``logits`` (stride 4); ``aux`` is ``None``.
    Input normalization: ImageNet mean/std on 0–255 RGB (``"imagenet"``). The MiT code comes from
    segmentation-models-pytorch under the NVIDIA Source Code License (non-commercial use only).

    Args:
        num_classes: output classes.
        variant: MiT variant (``mit_b0`` … ``mit_b5``, ``tiny``).
        embed_dim: head embedding/fusion channels (256 in the paper).
        dropout: head dropout (0.1).
        drop_path_rate: encoder stochastic depth (0.1).
        bn_mode: head BatchNorm mode (``"train"``: DAFormer trains it).
        normalization: input normalization.
        activation_checkpointing: recompute each encoder block in the backward pass (less memory, about one
            more encoder forward of time); the attribute can be switched at any time.

    Shape:
        - input: (B, 3, H, W) RGB in [0, 1], H and W at least 32
        - logits: (B, num_classes, ⌈H/4⌉, ⌈W/4⌉)

    Example:
        >>> import torch, uda
        >>> m = uda.create("model", "daformer_tiny", num_classes=5)
        >>> out = m(torch.rand(1, 3, 64, 64))
        >>> out.logits.shape, sorted(out.features)
        (torch.Size([1, 5, 16, 16]), ['logits', 'stage1', 'stage2', 'stage3', 'stage4'])
    """

    min_input_size = 32
    backbone_prefixes = ("encoder.",)
    head_prefixes = ("head.",)
    no_weight_decay_keys = NO_WEIGHT_DECAY_KEYS

    def __init__(
        self,
        num_classes: int = 19,
        *,
        variant: str = "mit_b5",
        embed_dim: int = 256,
        dropout: float = 0.1,
        drop_path_rate: float = 0.1,
        bn_mode: BNMode = "train",
        normalization: str = "imagenet",
        activation_checkpointing: bool = False,
    ) -> None:
        super().__init__(num_classes, normalization, bn_mode)
        self.variant = variant
        self.encoder = build_mit(variant, drop_path_rate=drop_path_rate)
        dims = MIT_CONFIGS[variant]["embed_dims"]
        self.head = DAFormerHead(in_channels=dims, num_classes=num_classes, embed_dim=embed_dim, dropout=dropout)
        self.feature_info = {f"stage{i + 1}": LevelInfo(c, s) for i, (c, s) in enumerate(zip(dims, MIT_STRIDES))}
        self.feature_info["logits"] = LevelInfo(num_classes, 4)
        self.checkpoint_key = "model"
        self.activation_checkpointing = activation_checkpointing
        self.apply_bn_mode()
        self.train()

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four MiT stage outputs of a normalized input (each transformer block recomputed in the backward
        pass when ``activation_checkpointing`` is on and gradients are enabled)."""
        self.check_input_size(x)
        if not (self.activation_checkpointing and torch.is_grad_enabled()):
            return list(self.encoder.forward_features(x))
        from torch.utils.checkpoint import checkpoint

        enc, outs = self.encoder, []
        for i in range(1, 5):
            x = getattr(enc, f"patch_embed{i}")(x)
            for block in getattr(enc, f"block{i}"):
                x = checkpoint(block, x, use_reentrant=False)
            x = getattr(enc, f"norm{i}")(x).contiguous()
            outs.append(x)
        return outs

    def features_normalized(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The four MiT stages of a normalized input (no head)."""
        return {f"stage{i + 1}": f for i, f in enumerate(self.encode(x))}

    def forward_normalized(self, x: torch.Tensor) -> SegOutput:
        out = self.features_normalized(x)
        logits = self.head(list(out.values()))
        out["logits"] = logits
        return SegOutput(logits=logits, aux=None, features=out)

    def head_parameters(self) -> list[nn.Parameter]:
        """The DAFormer head (10× the encoder's learning rate in the paper)."""
        return list(self.head.parameters())

    def param_groups(self, lr: float, head_lr_mult: float = 10.0, *, weight_decay: float | None = None) -> list[dict]:
        """Encoder at ``lr``, head at ``lr * head_lr_mult``; with ``weight_decay`` each group is split and the
        parameters whose names contain ``norm`` or ``pos_block`` get ``weight_decay=0`` (DAFormer's optimizer)."""
        return param_groups_no_decay(self, super().param_groups(lr, head_lr_mult), weight_decay)

    def translate_foreign_state_dict(self, sd: dict[str, torch.Tensor]) -> tuple[dict, str, str | None] | None:
        """Map released DAFormer checkpoints (``model.``/``ema_model.``/``imnet_model.`` prefixes, the part named
        by ``checkpoint_key``) and the bare mmseg layout (``backbone.*``, ``decode_head.*``) onto ours.

        Returns ``None`` for other layouts (a SegFormer ``mit_b*.pth`` then loads as a bare encoder)."""
        released = any(k.startswith(("model.", "ema_model.")) for k in sd)
        sd = split_checkpoint(sd, self.checkpoint_key)
        if not any(k.startswith("decode_head.") for k in sd):
            return None
        out = {}
        for k, v in sd.items():
            if k.startswith("backbone."):
                out["encoder." + k[len("backbone.") :]] = v
            elif k.startswith("decode_head."):
                out["head." + k[len("decode_head.") :]] = v
            else:
                out[k] = v  # reported as unexpected
        return out, "daformer_release" if released else "mmseg", "imagenet"


def load_pretrained(model: nn.Module, pretrained: str, key: str, keep_normalization: bool) -> None:
    """Load a local file into a DAFormer/HRDA model; a missing file names where to get the weights."""
    from pathlib import Path

    from ._weights import load_weights

    if not Path(pretrained).is_file():
        raise CheckpointError(f"{pretrained}: no such weights file; check the path. {DAFORMER_HINT}")
    model.checkpoint_key = key
    load_weights(model, pretrained, keep_normalization=keep_normalization)


def _build(variant: str, num_classes: int, pretrained: str | None, pretrained_key: str, **kw: Any) -> DAFormer:
    normalization = kw.pop("normalization", None)
    model = DAFormer(num_classes, variant=variant, normalization=normalization or "imagenet", **kw)
    if pretrained:
        load_pretrained(model, pretrained, pretrained_key, normalization is not None)
    return model


_FACTORY_DOC = """DAFormer with a MiT-{b} encoder (Hoyer et al., CVPR 2022), random init or local weights.

    The MiT code and weights carry the NVIDIA Source Code License (non-commercial use only).

    Args:
        num_classes: output classes.
        pretrained: a local file: a released DAFormer/HRDA/MIC checkpoint, the bare mmseg layout, SegFormer's
            ``mit_{b}.pth`` ImageNet init (encoder only) or our own checkpoint; ``None`` = random init.
        pretrained_key: which network of a released checkpoint: ``"model"`` (student, default) or
            ``"ema_model"`` (EMA teacher).
        embed_dim: head embedding channels.
        dropout: head dropout.
        drop_path_rate: encoder stochastic depth.
        bn_mode: head BatchNorm mode.
        normalization: input normalization (default ``"imagenet"``).
        activation_checkpointing: recompute encoder blocks in the backward pass to save memory.

    Returns:
        A [DAFormer][uda.models.daformer.DAFormer].
    """


def _factory(name: str, variant: str, doc: str, *, embed_dim_default: int = 256, drop_path_default: float = 0.1):
    def factory(
        num_classes: int = 19,
        *,
        pretrained: str | None = None,
        pretrained_key: str = "model",
        embed_dim: int = embed_dim_default,
        dropout: float = 0.1,
        drop_path_rate: float = drop_path_default,
        bn_mode: BNMode = "train",
        normalization: str | None = None,
        activation_checkpointing: bool = False,
    ) -> DAFormer:
        return _build(variant, num_classes, pretrained, pretrained_key, embed_dim=embed_dim, dropout=dropout,
                      drop_path_rate=drop_path_rate, bn_mode=bn_mode, normalization=normalization,
                      activation_checkpointing=activation_checkpointing)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = doc
    return register("model", name)(factory)


daformer_mitb0, daformer_mitb1, daformer_mitb2, daformer_mitb3, daformer_mitb4, daformer_mitb5 = (
    _factory(f"daformer_mit{b}", f"mit_{b}", _FACTORY_DOC.format(b=b)) for b in ("b0", "b1", "b2", "b3", "b4", "b5"))

daformer_tiny = _factory("daformer_tiny", "tiny", """Tiny DAFormer (same code; MiT with channels 8/16/32/64, one block per stage, 32-channel head) for tests
    and CPU demos; inputs at least 32×32.

    Args:
        num_classes: output classes.
        pretrained: a local weights file, or ``None``.
        pretrained_key: ``"model"`` or ``"ema_model"`` for released-style checkpoints.
        embed_dim: head embedding channels.
        dropout: head dropout.
        drop_path_rate: encoder stochastic depth (0 for deterministic tests).
        bn_mode: head BatchNorm mode.
        normalization: input normalization (default ``"imagenet"``).
        activation_checkpointing: recompute encoder blocks in the backward pass to save memory.

    Returns:
        A [DAFormer][uda.models.daformer.DAFormer].

    Example:
        >>> import torch, uda
        >>> uda.create("model", "daformer_tiny", num_classes=3)(torch.rand(1, 3, 32, 32)).logits.shape
        torch.Size([1, 3, 8, 8])
    """, embed_dim_default=32, drop_path_default=0.0)
