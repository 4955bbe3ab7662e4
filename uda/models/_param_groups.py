"""Parameter groups of a segmentation model for its optimizer: the heads at ``head_lr_mult``, encoder learning-rate
options for ViT encoders, the original AdaptSegNet/ADVENT duplicated parameter list, and no-decay splits.

They sit with the model contract (``SegmentationModel.param_groups``): a recipe asks the model for its groups
through these helpers, and the engine only builds the optimizer over them. The ``cfg`` they take is an
``uda.config.OptimizerConfig`` (read by attribute; the models do not import the config).

Layer-wise learning-rate decay as in BEiT (Bao et al., "BEiT: BERT Pre-Training of Image Transformers",
ICLR 2022), used for DINOv2 fine-tuning in VFM-UDA (Englert et al., CVPR Workshops 2024). The layer of each
encoder parameter comes from timm's ``param_groups_layer_decay`` (which walks the model's
``group_matcher``): for a ViT of ``L`` blocks the embeddings (patch embedding, position embedding, class and
register tokens) are layer 0 and block ``i`` (0-based) is layer ``i + 1``; parameters the matcher leaves out
(the final norm) join the last layer. Layer ``n`` trains at ``layer_decay ** (L - n)``: the last block and
the final norm at 1, block ``i`` at ``layer_decay ** (L - 1 - i)`` (block 0: ``layer_decay ** (L - 1)``) and the
embeddings at ``layer_decay ** L``, all times ``lr * encoder_lr_mult``. The heads keep
``lr * head_lr_mult``. See docs/training.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from torch import nn

from .._errors import ConfigError

if TYPE_CHECKING:
    from ..config import OptimizerConfig

__all__ = ["duplicated_backbone_params", "model_param_groups", "split_no_decay"]


def model_param_groups(model: nn.Module, cfg: OptimizerConfig) -> list[dict]:
    """The model's parameter groups with ``cfg.encoder_lr_mult`` and ``cfg.layer_decay`` applied.

    Without either option this is ``model.param_groups(cfg.lr, cfg.head_lr_mult)`` unchanged. With
    ``encoder_lr_mult`` the ``backbone`` group runs at ``lr * encoder_lr_mult``. With ``layer_decay`` the
    model must expose ``layer_decay_encoder() -> (module, key_prefix)`` (a timm ViT); its parameters leave
    the ``backbone`` group and form one group per layer (``encoder_layer{n}``) at
    ``lr * encoder_lr_mult * layer_decay ** (num_layers - 1 - n)``. Every group carries ``lr_mult``
    (its lr over ``cfg.lr``); weight decay is left to the optimizer (``cfg.weight_decay`` for all groups).

    Args:
        model: a ``uda`` segmentation model.
        cfg: the generator's optimizer config.

    Returns:
        Parameter groups for ``build_optimizer``.

    Raises:
        ConfigError: a ``layer_decay`` outside (0, 1], a negative ``encoder_lr_mult``, or ``layer_decay`` on a
            model without a ViT encoder.

    Example:
        >>> import uda
        >>> from uda.config import OptimizerConfig
        >>> m = uda.create("model", "vfm_tiny", num_classes=3)
        >>> groups = model_param_groups(m, OptimizerConfig(lr=1.0, head_lr_mult=10.0, layer_decay=0.5))
        >>> [g["lr"] for g in groups if g["name"] in ("encoder_layer0", "encoder_layer1", "encoder_layer4", "heads")]
        [10.0, 0.0625, 0.125, 1.0]
    """
    groups = model.param_groups(cfg.lr, cfg.head_lr_mult)  # type: ignore[operator]
    mult, decay = float(cfg.encoder_lr_mult), cfg.layer_decay
    if not mult >= 0.0:
        raise ConfigError(f"optim: encoder_lr_mult must be >= 0, got {cfg.encoder_lr_mult}")
    if decay is None:
        if mult != 1.0:
            for g in groups:
                if g.get("name") == "backbone":
                    g["lr"] *= mult
                    g["lr_mult"] = g.get("lr_mult", 1.0) * mult
        return groups
    if not 0.0 < float(decay) <= 1.0:
        raise ConfigError(f"optim: layer_decay must be in (0, 1] (e.g. 0.9), got {decay}")
    if not hasattr(model, "layer_decay_encoder"):
        raise ConfigError(
            f"optim: layer_decay needs a model with a ViT encoder (e.g. vfm); {type(model).__name__} has none; "
            "remove layer_decay"
        )
    from timm.optim import param_groups_layer_decay

    encoder, _prefix = model.layer_decay_encoder()
    timm_groups = param_groups_layer_decay(
        encoder, weight_decay=0.0, weight_decay_exclude_1d=False, layer_decay=float(decay)
    )
    enc_ids = {id(p) for g in timm_groups for p in g["params"]}
    out = []
    for g in groups:
        kept = [p for p in g["params"] if id(p) not in enc_ids]
        if kept or g.get("name") != "backbone":
            out.append(dict(g, params=kept))
    for g in sorted(timm_groups, key=lambda g: g["lr_scale"]):
        scale = mult * float(g["lr_scale"])
        name = f"encoder_layer{_layer_of(g, timm_groups)}" if decay < 1.0 else "encoder"
        out.append({"params": g["params"], "lr": cfg.lr * scale, "lr_mult": scale, "name": name})
    return out


def _layer_of(group: dict, groups: list[dict]) -> int:
    """Layer number of a timm group: rank of its lr scale (timm scales strictly increase with the layer)."""
    scales = sorted({float(g["lr_scale"]) for g in groups})
    return scales.index(float(group["lr_scale"]))

def duplicated_backbone_params(model: nn.Module) -> list[nn.Parameter]:
    """The original AdaptSegNet/ADVENT scripts' 1× parameter list, tensors repeated as they repeat it.

    The model builds the list (``DeepLabV2.faithful_backbone_parameters``, see docs/models.md): 314 entries for
    the 104 tensors of ResNet-101. The heads' 10× group is unchanged (each tensor once).

    Args:
        model: a segmentation model with ``faithful_backbone_parameters`` (DeepLab-v2).

    Returns:
        The 1× list with repeats.

    Raises:
        ConfigError: the model has no such rule (only DeepLab-v2 is trained this way by the originals).
    """
    rule = getattr(model, "faithful_backbone_parameters", None)
    if rule is None:
        raise ConfigError(f"optim.generator.faithful_duplicate_params: {type(model).__name__} has no original "
                          "duplicated-parameter rule (only DeepLab-v2 has); set it to false")
    return rule()

def split_no_decay(groups: list[dict], named: Iterable[tuple[str, nn.Parameter]], keys: Iterable[str]) -> list[dict]:
    """Split every group in two: parameters whose name contains one of ``keys`` get ``weight_decay=0``.

    mmcv's ``paramwise_cfg.custom_keys`` rule with ``decay_mult=0`` (DAFormer: ``norm`` and ``pos_block``).

    Example:
        >>> import torch
        >>> m = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.LayerNorm(2))
        >>> g = split_no_decay([{"params": list(m.parameters()), "lr": 1.0}], [("0.weight", m[0].weight),
        ...     ("0.bias", m[0].bias), ("norm.weight", m[1].weight), ("norm.bias", m[1].bias)], ["norm"])
        >>> [(len(x["params"]), x.get("weight_decay")) for x in g]
        [(2, None), (2, 0.0)]
    """
    keys = list(keys)
    names = {id(p): n for n, p in named}
    out = []
    for g in groups:
        off = [p for p in g["params"] if any(k in names.get(id(p), "") for k in keys)]
        off_ids = {id(p) for p in off}
        out.append(dict(g, params=[p for p in g["params"] if id(p) not in off_ids]))
        if off:
            out.append(dict(g, params=off, weight_decay=0.0, name=f"{g.get('name', 'group')}_no_decay"))
    return out
