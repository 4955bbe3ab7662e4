"""The VFM model (DINOv2 ViT + simple feature pyramid + DAFormer head): encoder equivalence with timm, padding
and cropping, weight layouts (timm files, the official DINOv2 checkpoint), layer-wise lr decay."""

from __future__ import annotations

import math

import pytest
import timm
import torch
import torch.nn.functional as F

import uda
from uda.config import OptimizerConfig
from uda.engine._optim import build_optimizer, build_scheduler
from uda.models import load_weights, model_param_groups, save_weights
from uda.models.vfm import TINY_ENCODER, default_block_indices

REG = "vit_small_patch14_reg4_dinov2"
NOREG = "vit_small_patch14_dinov2"


def _timm_reference(backbone=REG, **over):
    """timm's own model with the tiny encoder's architecture (the independent reference)."""
    kw = dict(TINY_ENCODER, **over)
    return timm.create_model(backbone, pretrained=False, num_classes=0, dynamic_img_size=True, **kw).eval()


def _random_state_dict(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g) for k, v in model.state_dict().items()}


def _tiny(backbone=REG, **kw):
    torch.manual_seed(0)
    return uda.create("model", "vfm_tiny", num_classes=3, backbone=backbone, **kw).eval()


# -- architecture --------------------------------------------------------------------------------------------
def test_default_block_indices():
    assert default_block_indices(24) == (5, 11, 17, 23)
    assert default_block_indices(12) == (2, 5, 8, 11)
    assert default_block_indices(40) == (9, 19, 29, 39)
    assert _tiny().block_indices == (0, 1, 2, 3)


def test_encoder_equals_timm_features_under_the_same_weights(tmp_path):
    ref = _timm_reference()
    sd = _random_state_dict(ref)
    ref.load_state_dict(sd)
    torch.save(sd, tmp_path / "enc.pth")
    m = _tiny(pretrained=str(tmp_path / "enc.pth"))
    x = torch.rand(2, 3, 42, 56)
    xn = m.normalizer(x)
    with torch.no_grad():
        ours = m.encode(xn)
        theirs = ref.forward_intermediates(xn, indices=[0, 1, 2, 3], norm=True, intermediates_only=True)
        # a second, separate path: the final block's normed tokens from forward_features, prefix tokens dropped
        tokens = ref.forward_features(xn)[:, ref.num_prefix_tokens :]
    assert len(ours) == 4
    for a, b in zip(ours, theirs):
        assert a.shape == (2, 32, 3, 4)
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    grid = tokens.transpose(1, 2).reshape(2, 32, 3, 4)
    torch.testing.assert_close(ours[3], grid, rtol=1e-6, atol=1e-6)


def test_pyramid_shapes_padding_and_cropping():
    m = _tiny()
    x = torch.rand(1, 3, 30, 44)  # padded to 42×56: a 3×4 patch grid
    with torch.no_grad():
        out = m(x)
    expect = {"stage1": (8, 11), "stage2": (4, 6), "stage3": (2, 3), "stage4": (1, 2), "logits": (8, 11)}
    for name, hw in expect.items():
        assert tuple(out.features[name].shape[-2:]) == hw, name
    assert out.logits.shape == (1, 3, 8, 11) and out.aux is None
    assert out.features["stage1"].shape[1] == 32
    assert [m.feature_info[k].stride for k in ("stage1", "stage2", "stage3", "stage4", "logits")] == [4, 8, 16, 32, 4]
    assert m.output_stride == 4
    # padding is the mean colour (zero after normalization): the same as padding the [0, 1] image by hand
    mean = torch.tensor(m.normalization.mean).view(1, 3, 1, 1)
    padded = mean.expand(1, 3, 42, 56).clone()
    padded[..., :30, :44] = x
    with torch.no_grad():
        full = m(padded)
    assert full.logits.shape == (1, 3, 11, 14)
    torch.testing.assert_close(out.features["stage1"], full.features["stage1"][..., :8, :11], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.features["stage3"], full.features["stage3"][..., :2, :3], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("h", [1, 13, 14, 15, 27, 28, 41, 55, 69, 97, 98, 99, 111])
def test_every_level_is_exactly_ceil_input_over_stride(h):
    m = _tiny()
    with torch.no_grad():
        out = m(torch.rand(1, 3, h, 2 * h + 3))
    for name, s in zip(("stage1", "stage2", "stage3", "stage4"), (4, 8, 16, 32)):
        assert tuple(out.features[name].shape[-2:]) == (math.ceil(h / s), math.ceil((2 * h + 3) / s)), name


def test_levels_are_the_neck_resampled_from_the_14px_grid_to_exact_strides():
    m = _tiny()
    x = torch.rand(1, 3, 56, 56)  # a 4×4 patch grid: stage3 cells of 14 px → 16 px, 4 → ceil(56 / 16) = 4
    with torch.no_grad():
        grid = m.neck(m.encode(m.normalizer(x)))[2]
        out = m(x).features["stage3"]
    # independent resampling: cell j of stride 16 is centred on pixel 16j + 8, i.e. at (16j + 8) / 14 - 0.5 cells
    pos = (torch.arange(4) * 16 + 8) / 14 - 0.5
    i0 = pos.floor().long().clamp(0, 3)
    i1 = (i0 + 1).clamp(max=3)
    a = (pos - i0).clamp(0, 1)
    rows = grid[..., i0, :] * (1 - a)[:, None] + grid[..., i1, :] * a[:, None]
    ref = rows[..., i0] * (1 - a) + rows[..., i1] * a
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_neck_is_the_simple_feature_pyramid():
    m = _tiny()
    feats = [torch.rand(1, 32, 3, 4) for _ in range(4)]
    with torch.no_grad():
        out = m.neck(feats)
        up2 = F.conv_transpose2d(feats[1], m.neck.up2.weight, m.neck.up2.bias, stride=2)
    assert [tuple(o.shape[-2:]) for o in out] == [(12, 16), (6, 8), (3, 4), (2, 2)]
    torch.testing.assert_close(out[1], up2)
    assert torch.equal(out[2], feats[2])
    assert torch.equal(out[3], F.max_pool2d(feats[3], 2, ceil_mode=True))


def test_backward_reaches_every_trainable_parameter_and_checkpointing_matches():
    m = _tiny().train()
    m.head.eval()  # dropout off: both runs compute the same function
    x = torch.rand(1, 3, 28, 28)
    m(x).logits.sum().backward()
    no_grad = [n for n, p in m.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []
    ck = uda.create("model", "vfm", backbone=REG, num_classes=3, embed_dim=16, backbone_kwargs=TINY_ENCODER,
                    grad_checkpointing=True)
    ck.load_state_dict(m.state_dict())
    ck.train()
    ck.head.eval()
    torch.testing.assert_close(ck(x).logits, m(x).logits)


def test_vfm_tiny_takes_the_shared_checkpointing_option():
    # every model family turns checkpointing on with model.options.activation_checkpointing (vfm_tiny too)
    for key in ("activation_checkpointing", "grad_checkpointing"):
        m = uda.create("model", "vfm_tiny", num_classes=3, **{key: True})
        assert m.activation_checkpointing
    assert not uda.create("model", "vfm_tiny", num_classes=3).activation_checkpointing


def test_bad_options_are_named():
    with pytest.raises(uda.UdaError, match="unknown timm backbone 'vit_nope'"):
        uda.create("model", "vfm", backbone="vit_nope", num_classes=3)
    with pytest.raises(uda.UdaError, match=r"block_indices must be four increasing block numbers in 0\.\.3"):
        _tiny(block_indices=(0, 1, 2, 4))


# -- weights -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["safetensors", "pth"])
def test_timm_file_every_tensor_lands(tmp_path, fmt):
    sd = _random_state_dict(_timm_reference())
    path = tmp_path / f"enc.{fmt}"
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file(sd, str(path))
    else:
        torch.save(sd, path)
    m = _tiny()
    report = load_weights(m, path)
    assert report.layout == "timm_vit" and report.loaded == len(sd) and report.skipped == []
    own = m.encoder.state_dict()
    assert set(own) == set(sd)
    for k, v in sd.items():
        assert torch.equal(own[k], v), k
    assert m.normalization == uda.models.Normalization.named("imagenet")


def _official(sd_timm, registers, grid=None, seed=1):
    """The facebookresearch/dinov2 layout of a timm state dict: class-token position included in pos_embed,
    register_tokens, mask_token; optionally a pos_embed on another grid (as at 518 px)."""
    g = torch.Generator().manual_seed(seed)
    out = {k: v.clone() for k, v in sd_timm.items() if k not in ("cls_token", "reg_token", "pos_embed")}
    d = sd_timm["cls_token"].shape[-1]
    n = grid * grid if grid else None
    if registers:
        patch_pos = sd_timm["pos_embed"] if n is None else torch.randn(1, n, d, generator=g)
        out["pos_embed"] = torch.cat([torch.randn(1, 1, d, generator=g), patch_pos], 1)
        out["register_tokens"] = sd_timm["reg_token"].clone()
    else:
        out["pos_embed"] = sd_timm["pos_embed"] if n is None else torch.randn(1, 1 + n, d, generator=g)
    out["cls_token"] = sd_timm["cls_token"].clone()
    out["mask_token"] = torch.randn(1, d, generator=g)
    return out


def test_official_dinov2_layout_with_registers_every_tensor_lands(tmp_path):
    sd_timm = _random_state_dict(_timm_reference(REG))
    off = _official(sd_timm, registers=True)
    torch.save(off, tmp_path / "dinov2_vits14_reg4_pretrain.pth")
    m = _tiny(REG)
    report = load_weights(m, tmp_path / "dinov2_vits14_reg4_pretrain.pth")
    assert report.layout == "dinov2" and [k for k in report.missing if k.startswith("encoder.")] == []
    own = m.encoder.state_dict()
    # registers: no position embedding for class/register tokens in timm, the class token absorbs its own
    torch.testing.assert_close(own["cls_token"], off["cls_token"] + off["pos_embed"][:, 0], rtol=0, atol=0)
    assert torch.equal(own["reg_token"], off["register_tokens"])
    assert torch.equal(own["pos_embed"], off["pos_embed"][:, 1:])
    for k, v in off.items():
        if k not in ("cls_token", "pos_embed", "register_tokens", "mask_token"):
            assert torch.equal(own[k], v), k
    assert not hasattr(m.encoder, "mask_token")


def test_official_dinov2_layout_without_registers_and_resampled_pos_embed(tmp_path):
    from timm.layers import resample_abs_pos_embed

    sd_timm = _random_state_dict(_timm_reference(NOREG))
    off = _official(sd_timm, registers=False, grid=7)  # a 7×7 position grid, the model has 5×5
    torch.save(off, tmp_path / "dinov2_vits14_pretrain.pth")
    m = _tiny(NOREG)
    assert load_weights(m, tmp_path / "dinov2_vits14_pretrain.pth").layout == "dinov2"
    own = m.encoder.state_dict()
    assert torch.equal(own["cls_token"], off["cls_token"])
    expect = resample_abs_pos_embed(off["pos_embed"], new_size=(5, 5), old_size=(7, 7), num_prefix_tokens=1)
    assert own["pos_embed"].shape == (1, 26, 32)
    torch.testing.assert_close(own["pos_embed"], expect)
    for k, v in off.items():
        if k not in ("cls_token", "pos_embed", "mask_token"):
            assert torch.equal(own[k], v), k


def test_tensors_that_do_not_land_are_named(tmp_path):
    sd_timm = _random_state_dict(_timm_reference(REG))
    off = _official(sd_timm, registers=True)
    off["blocks.0.adapter.weight"] = torch.zeros(3)
    del off["blocks.3.norm1.weight"]
    torch.save(off, tmp_path / "w.pth")
    with pytest.raises(uda.CheckpointError, match=r"missing encoder\.blocks\.3\.norm1\.weight.*unexpected "
                       r"encoder\.blocks\.0\.adapter\.weight"):
        load_weights(_tiny(REG), tmp_path / "w.pth")
    # a file of another width: the shapes are listed
    torch.save(_random_state_dict(_timm_reference(REG, embed_dim=64)), tmp_path / "wide.pth")
    with pytest.raises(uda.CheckpointError, match=r"shape mismatch encoder\.cls_token \(1, 1, 64\)≠\(1, 1, 32\)"):
        load_weights(_tiny(REG), tmp_path / "wide.pth")


def test_missing_file_says_where_to_get_dinov2_weights(tmp_path):
    with pytest.raises(uda.CheckpointError, match=r"nope\.pth: no such weights file.*facebookresearch/dinov2"):
        uda.create("model", "vfm_tiny", num_classes=3, pretrained=str(tmp_path / "nope.pth"))


def test_own_checkpoint_roundtrip(tmp_path):
    src = _tiny()
    save_weights(src, tmp_path / "w.pt")
    dst = uda.create("model", "vfm_tiny", num_classes=3, pretrained=str(tmp_path / "w.pt"))
    for k, v in src.state_dict().items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(dst.state_dict()[k], v), k


# -- layer-wise lr decay and the encoder multiplier ----------------------------------------------------------
def _lr_of(opt):
    return {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}


def test_layer_decay_and_encoder_multiplier_exact_lrs():
    m = _tiny()
    cfg = OptimizerConfig(name="adamw", lr=1e-3, head_lr_mult=10.0, layer_decay=0.9, encoder_lr_mult=0.1)
    opt = build_optimizer(model_param_groups(m, cfg), cfg)
    lr = _lr_of(opt)
    params = dict(m.named_parameters())
    assert len(lr) == len(params) and sum(len(g["params"]) for g in opt.param_groups) == len(params)
    enc = 1e-3 * 0.1
    depth = 4
    checks = {
        "encoder.blocks.0.attn.qkv.weight": enc * 0.9 ** (depth - 1),  # first block
        "encoder.blocks.0.ls1.gamma": enc * 0.9 ** (depth - 1),
        "encoder.blocks.1.norm1.bias": enc * 0.9 ** (depth - 2),
        "encoder.blocks.3.mlp.fc2.weight": enc,  # last block
        "encoder.patch_embed.proj.weight": enc * 0.9**depth,  # embeddings
        "encoder.pos_embed": enc * 0.9**depth,
        "encoder.cls_token": enc * 0.9**depth,
        "encoder.reg_token": enc * 0.9**depth,
        "encoder.norm.weight": enc,  # final norm: with the last block
        "neck.up2.weight": 1e-2,  # neck and head: head_lr_mult
        "head." + next(n for n, _ in m.head.named_parameters()): 1e-2,
    }
    for name, want in checks.items():
        assert math.isclose(lr[id(params[name])], want, rel_tol=1e-12), name
    # the schedule scales every group from its own base lr
    sched = build_scheduler(opt, OptimizerConfig(lr=1e-3, total_iters=10, power=1.0), 10)
    opt.step()
    sched.step()
    assert math.isclose(_lr_of(opt)[id(params["encoder.blocks.0.attn.qkv.weight"])], enc * 0.9**4, rel_tol=1e-12)


def test_defaults_leave_param_groups_unchanged_and_multiplier_alone_scales_the_backbone():
    m = uda.create("model", "timm_tiny", num_classes=3)
    plain = model_param_groups(m, OptimizerConfig(lr=1.0))
    ref = m.param_groups(1.0, 10.0)
    assert [(g["name"], g["lr"], len(g["params"])) for g in plain] == [(g["name"], g["lr"], len(g["params"])) for g in ref]
    scaled = model_param_groups(m, OptimizerConfig(lr=1.0, encoder_lr_mult=0.25))
    assert [(g["name"], g["lr"]) for g in scaled] == [("backbone", 0.25), ("heads", 10.0)]


def test_layer_decay_errors():
    with pytest.raises(uda.ConfigError, match="layer_decay needs a model with a ViT encoder"):
        model_param_groups(uda.create("model", "timm_tiny", num_classes=3), OptimizerConfig(layer_decay=0.9))
    with pytest.raises(uda.ConfigError, match=r"layer_decay must be in \(0, 1\]"):
        model_param_groups(_tiny(), OptimizerConfig(layer_decay=1.5))
    with pytest.raises(uda.ConfigError, match="encoder_lr_mult: must be at least 0"):
        model_param_groups(_tiny(), OptimizerConfig(encoder_lr_mult=-1.0))


def test_recipe_generator_groups_apply_the_options():
    from uda.config import RecipeConfig
    from uda.recipes import Recipe

    m = _tiny()
    recipe = Recipe(RecipeConfig(), m, num_classes=3)
    cfg = OptimizerConfig(lr=1.0, head_lr_mult=1.0, layer_decay=0.5, encoder_lr_mult=0.5)
    lr = _lr_of(build_optimizer(recipe.generator_param_groups(cfg), cfg))
    params = dict(m.named_parameters())
    assert lr[id(params["encoder.blocks.0.attn.proj.weight"])] == 0.5 * 0.5**3
    assert lr[id(params["encoder.blocks.3.attn.proj.weight"])] == 0.5
    assert lr[id(params["neck.up2.bias"])] == 1.0



def test_blocks_after_the_last_tapped_one_are_not_run():
    kw = dict(TINY_ENCODER, depth=5)
    m = uda.create("model", "vfm", backbone=REG, num_classes=3, embed_dim=16, backbone_kwargs=kw,
                   block_indices=(0, 1, 2, 3))
    ref = _timm_reference(depth=5)
    ref.load_state_dict(m.encoder.state_dict())
    xn = torch.randn(1, 3, 28, 42)
    feats = m.encode(xn)
    with torch.no_grad():
        theirs = ref.forward_intermediates(xn, indices=[0, 1, 2, 3], norm=True, intermediates_only=True)
    for a, b in zip(feats, theirs):
        torch.testing.assert_close(a.detach(), b, rtol=0, atol=0)
    sum(f.sum() for f in feats).backward()
    assert all(p.grad is None for p in m.encoder.blocks[4].parameters())
    assert all(p.grad is not None for p in m.encoder.blocks[3].parameters())


def test_bf16_autocast_forward_backward():
    m = _tiny().train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(torch.rand(1, 3, 30, 44))
    assert out.logits.shape == (1, 3, 8, 11) and torch.isfinite(out.logits.float()).all()
    out.logits.float().square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)
    assert m.encoder.blocks[0].attn.qkv.weight.grad is not None
