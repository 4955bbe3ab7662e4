"""An independent functional forward of the original DAFormer and HRDA networks (SegFormer's MiT + the mmseg
DAFormer head; HRDA's multi-resolution fusion), computed with ``torch.nn.functional`` straight from a state dict
in the original mmseg key layout — no ``uda`` or smp module is used here.

``mmseg_spec`` enumerates the original keys and shapes for a MiT configuration; ``random_state_dict`` fills
them deterministically (weights small enough that a 40-block MiT-B5 stays well conditioned).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)

MIT = {
    "tiny": dict(dims=(8, 16, 32, 64), heads=(1, 1, 2, 4), depths=(1, 1, 1, 1)),
    "mit_b0": dict(dims=(32, 64, 160, 256), heads=(1, 2, 5, 8), depths=(2, 2, 2, 2)),
    "mit_b5": dict(dims=(64, 128, 320, 512), heads=(1, 2, 5, 8), depths=(3, 6, 40, 3)),
}
SR = (8, 4, 2, 1)


def _bn_spec(prefix: str, c: int) -> dict:
    return {f"{prefix}.{n}": (c,) for n in ("weight", "bias", "running_mean", "running_var")} | {
        f"{prefix}.num_batches_tracked": ()
    }


def mit_spec(cfg: dict, prefix: str = "backbone.") -> dict[str, tuple]:
    spec: dict[str, tuple] = {}
    cin = 3
    for s, (c, d) in enumerate(zip(cfg["dims"], cfg["depths"]), start=1):
        k = 7 if s == 1 else 3
        p = f"{prefix}patch_embed{s}"
        spec |= {f"{p}.proj.weight": (c, cin, k, k), f"{p}.proj.bias": (c,), f"{p}.norm.weight": (c,)}
        spec[f"{p}.norm.bias"] = (c,)
        for j in range(d):
            b = f"{prefix}block{s}.{j}"
            for n in ("norm1", "norm2"):
                spec |= {f"{b}.{n}.weight": (c,), f"{b}.{n}.bias": (c,)}
            spec |= {f"{b}.attn.q.weight": (c, c), f"{b}.attn.q.bias": (c,)}
            spec |= {f"{b}.attn.kv.weight": (2 * c, c), f"{b}.attn.kv.bias": (2 * c,)}
            spec |= {f"{b}.attn.proj.weight": (c, c), f"{b}.attn.proj.bias": (c,)}
            r = SR[s - 1]
            if r > 1:
                spec |= {f"{b}.attn.sr.weight": (c, c, r, r), f"{b}.attn.sr.bias": (c,)}
                spec |= {f"{b}.attn.norm.weight": (c,), f"{b}.attn.norm.bias": (c,)}
            spec |= {f"{b}.mlp.fc1.weight": (4 * c, c), f"{b}.mlp.fc1.bias": (4 * c,)}
            spec |= {f"{b}.mlp.dwconv.dwconv.weight": (4 * c, 1, 3, 3), f"{b}.mlp.dwconv.dwconv.bias": (4 * c,)}
            spec |= {f"{b}.mlp.fc2.weight": (c, 4 * c), f"{b}.mlp.fc2.bias": (c,)}
        spec |= {f"{prefix}norm{s}.weight": (c,), f"{prefix}norm{s}.bias": (c,)}
        cin = c
    return spec


def head_spec(dims, num_classes: int, embed: int, prefix: str, fusion: str = "aspp") -> dict[str, tuple]:
    spec: dict[str, tuple] = {}
    for i, c in enumerate(dims):
        spec |= {f"{prefix}embed_layers.{i}.proj.weight": (embed, c), f"{prefix}embed_layers.{i}.proj.bias": (embed,)}
    cat = embed * len(dims)
    f = f"{prefix}fuse_layer"
    if fusion == "aspp":
        spec[f"{f}.aspp_modules.0.conv.weight"] = (embed, cat, 1, 1)
        spec |= _bn_spec(f"{f}.aspp_modules.0.bn", embed)
        for i in (1, 2, 3):
            m = f"{f}.aspp_modules.{i}"
            spec[f"{m}.depthwise_conv.conv.weight"] = (cat, 1, 3, 3)
            spec |= _bn_spec(f"{m}.depthwise_conv.bn", cat)
            spec[f"{m}.pointwise_conv.conv.weight"] = (embed, cat, 1, 1)
            spec |= _bn_spec(f"{m}.pointwise_conv.bn", embed)
        spec[f"{f}.bottleneck.conv.weight"] = (embed, 4 * embed, 3, 3)
        spec |= _bn_spec(f"{f}.bottleneck.bn", embed)
    else:
        spec[f"{f}.conv.weight"] = (embed, cat, 1, 1)
        spec |= _bn_spec(f"{f}.bn", embed)
    spec |= {f"{prefix}conv_seg.weight": (num_classes, embed, 1, 1), f"{prefix}conv_seg.bias": (num_classes,)}
    return spec


def mmseg_spec(variant: str, num_classes: int, embed: int, hrda: bool = False) -> dict[str, tuple]:
    cfg = MIT[variant]
    spec = mit_spec(cfg)
    if hrda:
        spec |= head_spec(cfg["dims"], num_classes, embed, "decode_head.head.")
        spec |= head_spec(cfg["dims"], num_classes, embed, "decode_head.scale_attention.", fusion="conv")
    else:
        spec |= head_spec(cfg["dims"], num_classes, embed, "decode_head.")
    return spec


def random_state_dict(spec: dict[str, tuple], seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in spec.items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            sd[k] = torch.rand(shape, generator=g) + 0.5
        elif k.endswith("running_mean") or k.endswith("bias"):
            sd[k] = 0.1 * torch.randn(shape, generator=g)
        elif len(shape) == 1:  # LayerNorm / BN scale
            sd[k] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        else:
            fan_in = math.prod(shape[1:])
            sd[k] = torch.randn(shape, generator=g) / math.sqrt(fan_in)
    return sd


def _ln(x, sd, p, eps):
    return F.layer_norm(x, x.shape[-1:], sd[p + ".weight"], sd[p + ".bias"], eps)


def _lin(x, sd, p):
    return F.linear(x, sd[p + ".weight"], sd[p + ".bias"])


def mit_forward(sd: dict, x: torch.Tensor, variant: str, prefix: str = "backbone.") -> list[torch.Tensor]:
    """SegFormer's MiT on a normalized image; returns the four (B, C, h, w) stage outputs."""
    cfg = MIT[variant]
    outs = []
    for s, (c, d, nh) in enumerate(zip(cfg["dims"], cfg["depths"], cfg["heads"]), start=1):
        pe = f"{prefix}patch_embed{s}"
        x = F.conv2d(
            x, sd[pe + ".proj.weight"], sd[pe + ".proj.bias"], stride=4 if s == 1 else 2, padding=3 if s == 1 else 1
        )
        b, _, h, w = x.shape
        t = _ln(x.flatten(2).transpose(1, 2), sd, pe + ".norm", 1e-5)  # (B, N, C)
        r = SR[s - 1]
        for j in range(d):
            bp = f"{prefix}block{s}.{j}"
            y = _ln(t, sd, bp + ".norm1", 1e-6)
            q = _lin(y, sd, bp + ".attn.q").view(b, -1, nh, c // nh).transpose(1, 2)
            src = y
            if r > 1:
                img = y.transpose(1, 2).reshape(b, c, h, w)
                src = F.conv2d(img, sd[bp + ".attn.sr.weight"], sd[bp + ".attn.sr.bias"], stride=r)
                src = _ln(src.flatten(2).transpose(1, 2), sd, bp + ".attn.norm", 1e-5)
            kv = _lin(src, sd, bp + ".attn.kv")
            k, v = kv[..., :c], kv[..., c:]
            k = k.reshape(b, -1, nh, c // nh).transpose(1, 2)
            v = v.reshape(b, -1, nh, c // nh).transpose(1, 2)
            att = torch.softmax(torch.einsum("bhnd,bhmd->bhnm", q, k) / math.sqrt(c // nh), dim=-1)
            o = torch.einsum("bhnm,bhmd->bhnd", att, v).transpose(1, 2).reshape(b, -1, c)
            t = t + _lin(o, sd, bp + ".attn.proj")
            y = _lin(_ln(t, sd, bp + ".norm2", 1e-6), sd, bp + ".mlp.fc1")
            img = y.transpose(1, 2).reshape(b, 4 * c, h, w)
            img = F.conv2d(
                img, sd[bp + ".mlp.dwconv.dwconv.weight"], sd[bp + ".mlp.dwconv.dwconv.bias"], padding=1, groups=4 * c
            )
            t = t + _lin(F.gelu(img.flatten(2).transpose(1, 2)), sd, bp + ".mlp.fc2")
        t = _ln(t, sd, f"{prefix}norm{s}", 1e-6)
        x = t.transpose(1, 2).reshape(b, c, h, w)
        outs.append(x)
    return outs


def _cbr(x, sd, p, groups=1, dilation=1):
    w = sd[p + ".conv.weight"]
    pad = dilation * (w.shape[-1] // 2)
    x = F.conv2d(x, w, None, padding=pad, dilation=dilation, groups=groups)
    x = F.batch_norm(
        x,
        sd[p + ".bn.running_mean"],
        sd[p + ".bn.running_var"],
        sd[p + ".bn.weight"],
        sd[p + ".bn.bias"],
        training=False,
        eps=1e-5,
    )
    return F.relu(x)


def head_forward(sd: dict, feats: list[torch.Tensor], prefix: str = "decode_head.", fusion: str = "aspp"):
    """The mmseg DAFormerHead in eval mode (dropout off)."""
    size = feats[0].shape[-2:]
    emb = []
    for i, f in enumerate(feats):
        b, _, h, w = f.shape
        e = _lin(f.flatten(2).transpose(1, 2), sd, f"{prefix}embed_layers.{i}.proj")
        e = e.transpose(1, 2).reshape(b, -1, h, w)
        emb.append(F.interpolate(e, size=size, mode="bilinear", align_corners=False))
    x = torch.cat(emb, 1)
    fl = prefix + "fuse_layer"
    if fusion == "aspp":
        branches = [_cbr(x, sd, fl + ".aspp_modules.0")]
        for i, d in zip((1, 2, 3), (6, 12, 18)):
            m = f"{fl}.aspp_modules.{i}"
            y = _cbr(x, sd, m + ".depthwise_conv", groups=x.shape[1], dilation=d)
            branches.append(_cbr(y, sd, m + ".pointwise_conv"))
        x = _cbr(torch.cat(branches, 1), sd, fl + ".bottleneck")
    else:
        x = _cbr(x, sd, fl)
    return F.conv2d(x, sd[prefix + "conv_seg.weight"], sd[prefix + "conv_seg.bias"])


def normalize(x01: torch.Tensor) -> torch.Tensor:
    return (x01 * 255.0 - MEAN) / STD


def daformer_forward(sd: dict, x01: torch.Tensor, variant: str) -> torch.Tensor:
    return head_forward(sd, mit_forward(sd, normalize(x01), variant))


def hrda_forward(sd: dict, x01: torch.Tensor, variant: str, box=None, hr_crop: int = 512, os: int = 4):
    """HRDA's fused prediction (eval-mode layers): LR branch on the image at scale 0.5, HR branch on the crop
    ``box`` = (y1, y2, x1, x2) of the full-resolution image, or on sliding windows ``hr_crop`` / stride
    ``hr_crop // 2`` over the whole image when ``box`` is None; scale attention from the LR features."""
    img = normalize(x01)
    lr_img = F.interpolate(img, scale_factor=0.5, mode="bilinear", align_corners=False)
    lr_feats = mit_forward(sd, lr_img, variant)
    lr = head_forward(sd, lr_feats, "decode_head.head.")
    att = torch.sigmoid(head_forward(sd, lr_feats, "decode_head.scale_attention.", fusion="conv"))
    H, W = img.shape[-2:]
    if box is not None:
        y1, y2, x1, x2 = box
        hr = head_forward(sd, mit_forward(sd, img[:, :, y1:y2, x1:x2], variant), "decode_head.head.")
        mask = torch.zeros_like(att[:, :1])
        s = os * 2  # the LR logits' stride in full-resolution pixels
        mask[:, :, y1 // s : y2 // s, x1 // s : x2 // s] = 1
        att = att * mask
        hr_full = torch.zeros(lr.shape[0], lr.shape[1], H // os, W // os)
        hr_full[:, :, y1 // os : y2 // os, x1 // os : x2 // os] = hr
    else:  # mmseg slide grid with overlapping windows
        st = hr_crop // 2
        hg = max(H - hr_crop + st - 1, 0) // st + 1
        wg = max(W - hr_crop + st - 1, 0) // st + 1
        acc = torch.zeros(lr.shape[0], lr.shape[1], H // os, W // os)
        cnt = torch.zeros(1, 1, H // os, W // os)
        for hi in range(hg):
            for wi in range(wg):
                y2, x2 = min(hi * st + hr_crop, H), min(wi * st + hr_crop, W)
                y1, x1 = max(y2 - hr_crop, 0), max(x2 - hr_crop, 0)
                hr = head_forward(sd, mit_forward(sd, img[:, :, y1:y2, x1:x2], variant), "decode_head.head.")
                acc[:, :, y1 // os : y2 // os, x1 // os : x2 // os] += hr
                cnt[:, :, y1 // os : y2 // os, x1 // os : x2 // os] += 1
        hr_full = acc / cnt
    lr = (1 - att) * lr
    up_lr = F.interpolate(lr, scale_factor=2, mode="bilinear", align_corners=False)
    att = F.interpolate(att, scale_factor=2, mode="bilinear", align_corners=False)
    return att * hr_full + up_lr
