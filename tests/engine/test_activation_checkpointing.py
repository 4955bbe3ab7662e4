"""Activation checkpointing of the DeepLab-v2 encoder stages: the same outputs and gradients as without it."""

from __future__ import annotations

import torch

from uda._registry import create


def test_checkpointed_deeplabv2_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = create("model", "deeplabv2_tiny", num_classes=5, width=4, bn_mode="frozen")
    torch.manual_seed(0)
    ckpt = create("model", "deeplabv2_tiny", num_classes=5, width=4, bn_mode="frozen", activation_checkpointing=True)
    assert ckpt.activation_checkpointing and not plain.activation_checkpointing
    x = torch.rand(2, 3, 32, 64)
    grads = []
    for m in (plain, ckpt):
        out = m(x)
        (out.logits.square().mean() + out.aux.abs().mean()).backward()
        grads.append({k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 10
    for k in grads[0]:
        torch.testing.assert_close(grads[1][k], grads[0][k], rtol=1e-5, atol=1e-7, msg=k)
    # the checkpointed stages really store fewer activations for the backward pass
    saved = []
    for m in (plain, ckpt):
        n = [0]

        def pack(t, n=n):
            n[0] += t.numel()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            m(x)
        saved.append(n[0])
    assert saved[1] < 0.5 * saved[0]
