"""An independent functional DeepLab-v2 forward on a state dict in the ORIGINAL AdaptSegNet/ADVENT key layout.

Written from the published architecture (AdaptSegNet and ADVENT's DeepLab-v2) with torch.nn.functional only (no uda model classes), to prove equivalence.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

CAFFE_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)


def _bn_params(sd: dict, prefix: str, c: int, g: torch.Generator) -> None:
    sd[f"{prefix}.weight"] = torch.rand(c, generator=g) + 0.5
    sd[f"{prefix}.bias"] = torch.randn(c, generator=g) * 0.1
    sd[f"{prefix}.running_mean"] = torch.randn(c, generator=g) * 0.1
    sd[f"{prefix}.running_var"] = torch.rand(c, generator=g) + 0.5
    sd[f"{prefix}.num_batches_tracked"] = torch.tensor(7)


def _conv(sd: dict, key: str, shape: tuple, g: torch.Generator) -> None:
    fan_in = shape[1] * shape[2] * shape[3]
    sd[key] = torch.randn(*shape, generator=g) * math.sqrt(2.0 / fan_in)


def original_state_dict(layers, width: int, num_classes: int, *, heads=("layer5", "layer6"), seed: int = 0) -> dict:
    """Random weights under the original keys: conv1, bn1, layerN.M.{conv,bn}K, downsample.0/1, layer5/6.conv2d_list."""
    g = torch.Generator().manual_seed(seed)
    sd: dict = {}
    _conv(sd, "conv1.weight", (width, 3, 7, 7), g)
    _bn_params(sd, "bn1", width, g)
    inplanes = width
    for i, n in enumerate(layers):
        planes = width * 2**i
        for b in range(n):
            p = f"layer{i + 1}.{b}"
            _conv(sd, f"{p}.conv1.weight", (planes, inplanes, 1, 1), g)
            _bn_params(sd, f"{p}.bn1", planes, g)
            _conv(sd, f"{p}.conv2.weight", (planes, planes, 3, 3), g)
            _bn_params(sd, f"{p}.bn2", planes, g)
            _conv(sd, f"{p}.conv3.weight", (planes * 4, planes, 1, 1), g)
            _bn_params(sd, f"{p}.bn3", planes * 4, g)
            if b == 0:
                _conv(sd, f"{p}.downsample.0.weight", (planes * 4, inplanes, 1, 1), g)
                _bn_params(sd, f"{p}.downsample.1", planes * 4, g)
            inplanes = planes * 4
    for head, cin in (("layer5", width * 16), ("layer6", width * 32)):
        if head in heads:
            for j in range(4):
                sd[f"{head}.conv2d_list.{j}.weight"] = torch.randn(num_classes, cin, 3, 3, generator=g) * 0.01
                sd[f"{head}.conv2d_list.{j}.bias"] = torch.randn(num_classes, generator=g) * 0.1
    return sd


def reference_forward(sd: dict, x_rgb01: torch.Tensor, layers, *, caffe: bool = True) -> dict:
    """Eval-mode forward of the original network. Returns layer1..4, aux (layer5) and main (layer6) outputs."""

    def bn(t, p):
        return F.batch_norm(
            t, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"], False, 0.0, 1e-5
        )

    if caffe:  # RGB [0,1] -> BGR 0-255 minus the Caffe mean
        x = x_rgb01[:, [2, 1, 0]] * 255.0 - torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    else:
        x = (x_rgb01 - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(
            1, 3, 1, 1
        )
    x = F.relu(bn(F.conv2d(x, sd["conv1.weight"], stride=2, padding=3), "bn1"))
    x = F.max_pool2d(x, 3, 2, 1, ceil_mode=True)
    out = {}
    for i, (n, stride, dil) in enumerate(zip(layers, (1, 2, 1, 1), (1, 1, 2, 4))):
        for b in range(n):
            p = f"layer{i + 1}.{b}"
            s = stride if b == 0 else 1
            y = F.relu(bn(F.conv2d(x, sd[f"{p}.conv1.weight"], stride=s), f"{p}.bn1"))
            y = F.relu(bn(F.conv2d(y, sd[f"{p}.conv2.weight"], padding=dil, dilation=dil), f"{p}.bn2"))
            y = bn(F.conv2d(y, sd[f"{p}.conv3.weight"]), f"{p}.bn3")
            short = bn(F.conv2d(x, sd[f"{p}.downsample.0.weight"], stride=s), f"{p}.downsample.1") if b == 0 else x
            x = F.relu(y + short)
        out[f"layer{i + 1}"] = x
    for head, level in (("layer5", "layer3"), ("layer6", "layer4")):
        if f"{head}.conv2d_list.0.weight" in sd:
            out[head] = sum(
                F.conv2d(
                    out[level],
                    sd[f"{head}.conv2d_list.{j}.weight"],
                    sd[f"{head}.conv2d_list.{j}.bias"],
                    padding=d,
                    dilation=d,
                )
                for j, d in enumerate((6, 12, 18, 24))
            )
    return out
