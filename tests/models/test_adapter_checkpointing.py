"""Activation checkpointing of the smp and timm backbone adapters: the same outputs and gradients as without it,
fewer activations saved for the backward pass, and a clear error where the encoder has no such switch."""

from __future__ import annotations

import pytest
import torch

import uda
from uda._errors import ConfigError


def _saved_numel(model: torch.nn.Module, x: torch.Tensor) -> int:
    n = [0]

    def pack(t: torch.Tensor) -> torch.Tensor:
        n[0] += t.numel()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return n[0]


@pytest.mark.parametrize("name", ["smp_tiny", "timm_tiny"])
@pytest.mark.parametrize("bn_mode", ["frozen", "train"])
def test_checkpointed_adapter_gives_the_same_gradients(name, bn_mode):
    torch.manual_seed(0)
    plain = uda.create("model", name, num_classes=4, bn_mode=bn_mode)
    ckpt = uda.create("model", name, num_classes=4, bn_mode=bn_mode, activation_checkpointing=True)
    ckpt.load_state_dict(plain.state_dict())
    assert ckpt.activation_checkpointing and not plain.activation_checkpointing
    x = torch.rand(2, 3, 32, 64)
    grads, logits = [], []
    for m in (plain, ckpt):
        out = m(x)
        loss = out.logits.square().mean() + (out.aux.abs().mean() if out.aux is not None else 0.0)
        loss.backward()
        logits.append(out.logits.detach())
        grads.append({k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None})
    torch.testing.assert_close(logits[1], logits[0])
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 20
    for k in grads[0]:
        torch.testing.assert_close(grads[1][k], grads[0][k], rtol=1e-5, atol=1e-7, msg=k)
    # the encoder's checkpointed stages keep only their inputs for the backward pass
    enc = {"smp_tiny": lambda m: m.net.encoder, "timm_tiny": lambda m: m.backbone}[name]
    saved = [_saved_numel(enc(m), x) for m in (plain, ckpt)]
    assert saved[1] < 0.8 * saved[0]
    # no recomputation without gradients: evaluation is unaffected (frozen BN: in "train" mode the recomputed
    # forward updates the running statistics once more, as with any activation checkpointing of BatchNorm)
    if bn_mode == "frozen":
        with torch.no_grad():
            torch.testing.assert_close(ckpt.eval()(x).logits, plain.eval()(x).logits)


def test_smp_encoder_without_checkpointing_is_named():
    with pytest.raises(ConfigError, match="smp encoder 'resnet18' does not support activation_checkpointing; "
                                          "use the timm encoder 'tu-resnet18'"):
        uda.create("model", "smp", num_classes=3, arch="unet", encoder_name="resnet18", encoder_depth=3,
                   arch_kwargs={"decoder_channels": (16, 16, 16)}, activation_checkpointing=True)


@pytest.mark.parametrize("name, kw", [("deeplabv2_tiny", {"width": 4}), ("daformer_tiny", {}), ("smp_tiny", {}),
                                      ("timm_tiny", {}),
                                      ("vfm", {"backbone": "vit_small_patch14_reg4_dinov2", "embed_dim": 16,
                                               "backbone_kwargs": {"embed_dim": 32, "depth": 4, "num_heads": 2}})])
def test_one_option_name_across_the_models(name, kw):
    m = uda.create("model", name, num_classes=3, activation_checkpointing=True, **kw)
    assert m.activation_checkpointing is True or getattr(m, "base", m).activation_checkpointing is True


def test_vfm_keeps_grad_checkpointing_as_an_alias():
    kw = {"backbone": "vit_small_patch14_reg4_dinov2", "embed_dim": 16,
          "backbone_kwargs": {"embed_dim": 32, "depth": 4, "num_heads": 2}}
    for opts in ({"grad_checkpointing": True}, {"activation_checkpointing": True}):
        m = uda.create("model", "vfm", num_classes=3, **kw, **opts)
        assert m.activation_checkpointing and m.encoder.grad_checkpointing
    assert not uda.create("model", "vfm", num_classes=3, **kw).encoder.grad_checkpointing
