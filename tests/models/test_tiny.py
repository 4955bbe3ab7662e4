"""Every registered tiny model: shapes match feature_info, backward, channels_last, train-mode BN."""

from __future__ import annotations

import pytest
import torch

import uda

TINY = uda.list_components("model", "*_tiny")


def test_tiny_variants_registered():
    assert {"deeplabv2_tiny", "timm_tiny", "smp_tiny"} <= set(TINY)


@pytest.fixture(scope="module", params=TINY)
def model(request):
    torch.manual_seed(0)
    return uda.create("model", request.param, num_classes=5)


def test_forward_matches_feature_info(model):
    x = torch.rand(2, 3, 64, 128)
    out = model(x)
    assert isinstance(out, uda.SegOutput)
    assert set(out.features) == set(model.feature_info)
    for name, f in out.features.items():
        info = model.feature_info[name]
        assert f.shape[:2] == (2, info.channels), name
        assert abs(f.shape[-1] - 128 / info.stride) <= 1 and abs(f.shape[-2] - 64 / info.stride) <= 1, name
    assert out.logits.shape[1] == 5 and out.features["logits"] is out.logits
    assert (out.aux is None) == ("aux" not in model.feature_info)
    assert model.output_stride == model.feature_info["logits"].stride


def test_backward_reaches_all_trainable_params(model):
    model.zero_grad()
    out = model(torch.rand(2, 3, 64, 64))
    loss = out.logits.square().mean() + (out.aux.square().mean() if out.aux is not None else 0)
    loss.backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for p in trainable)
    assert all(torch.isfinite(p.grad).all() for p in trainable)


def test_channels_last(model):
    model.eval()
    x = torch.rand(1, 3, 64, 64)
    ref = model(x).logits
    model.to(memory_format=torch.channels_last)
    out = model(x.contiguous(memory_format=torch.channels_last)).logits
    model.to(memory_format=torch.contiguous_format).train()
    assert torch.allclose(out, ref, atol=1e-4, rtol=1e-4)


def test_tiny_defaults_use_trainable_bn(model):
    assert model.bn_mode == "train"
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(b.weight.requires_grad for b in bns)


def test_param_groups_cover_trainable(model):
    groups = model.param_groups(1e-3)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == sum(p.requires_grad for p in model.parameters())
    assert groups[-1]["lr_mult"] == 10.0
