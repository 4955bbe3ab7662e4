"""Discriminators: the papers' parameter counts, shapes, spectral norm; every registered one exercised."""

import pytest
import torch

import uda
from uda.discriminators import FCDiscriminator, PatchGANDiscriminator


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_fc_discriminator_has_adaptsegnet_parameter_count():
    assert n_params(FCDiscriminator(19)) == 2_781_121
    assert n_params(uda.create("discriminator", "fc", in_channels=19, spectral_norm=True)) == 2_781_121


def test_patchgan_has_cyclegan_parameter_count():
    d = PatchGANDiscriminator(3)
    assert n_params(d) == 2_764_737
    norms = [m for m in d.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert len(norms) == 3 and not any(m.affine for m in norms)


def test_shapes():
    assert FCDiscriminator(19)(torch.rand(1, 19, 64, 128)).shape == (1, 1, 2, 4)
    assert PatchGANDiscriminator(3)(torch.rand(1, 3, 64, 64)).shape == (1, 1, 6, 6)
    feat = uda.create("discriminator", "feature_tiny", in_channels=24)
    assert feat(torch.rand(2, 24, 65, 129)).shape == (2, 1, 8, 16)


def test_spectral_norm_bounds_the_weight():
    d = uda.create("discriminator", "fc_tiny", in_channels=4, spectral_norm=True)
    conv = d.net[0]
    assert hasattr(conv, "parametrizations")
    for _ in range(20):  # power iteration converges in train mode
        d(torch.rand(1, 4, 32, 32))
    sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2)
    assert sigma.item() == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("name", uda.list_components("discriminator"))
@pytest.mark.parametrize("sn", [False, True])
def test_every_registered_discriminator(name, sn):
    d = uda.create("discriminator", name, in_channels=5, spectral_norm=sn)
    x = torch.rand(2, 5, 64, 64, requires_grad=True)
    y = d(x)
    assert y.dim() == 4 and y.shape[:2] == (2, 1)
    y.mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in d.parameters())
