"""Translators: FDA's spectrum swap, CycleGAN's losses and image pool, parameter counts; every registered one."""

import copy
import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import uda
from uda.alignment import frozen
from uda.engine import lr_factor
from uda.recipes import TranslationConfig
from uda.translators import ImagePool, ResnetGenerator, low_freq_mutate


def n_params(m):
    return sum(p.numel() for p in m.parameters())


# ---- FDA -------------------------------------------------------------------------------------------------


def test_fda_beta_zero_is_exact_identity():
    x, t = torch.rand(2, 3, 32, 48), torch.rand(2, 3, 32, 48)
    assert torch.equal(uda.create("translator", "fda", beta=0.0)(x, t), x)
    assert torch.equal(uda.create("translator", "fda", beta=0.01)(x, t), x)  # floor(0.01·32) = 0


def test_fda_swaps_low_frequency_amplitude_and_keeps_source_phase():
    torch.manual_seed(0)
    src, tgt = torch.rand(2, 3, 32, 40), torch.rand(2, 3, 32, 40)
    beta, h, w = 0.1, 32, 40
    out = uda.create("translator", "fda", beta=beta, clamp=False)(src, tgt)
    b = int(beta * min(h, w))  # 3
    shift = lambda x: torch.fft.fftshift(torch.fft.fft2(x.double()), dim=(-2, -1))  # noqa: E731
    fo, fs, ft = shift(out), shift(src), shift(tgt)
    band = torch.zeros(h, w, dtype=torch.bool)
    band[h // 2 - b : h // 2 + b + 1, w // 2 - b : w // 2 + b + 1] = True
    assert torch.allclose(fo.abs()[..., band], ft.abs()[..., band], atol=1e-3)
    assert torch.allclose(fo.abs()[..., ~band], fs.abs()[..., ~band], atol=1e-3)
    phase_diff = torch.angle(fo * fs.conj())  # phase(out) − phase(src), wrapped
    keep = fs.abs() > 1e-3
    assert phase_diff[keep].abs().max() < 1e-3
    assert not torch.allclose(out, src, atol=1e-3)


def test_fda_resizes_and_broadcasts_target():
    src, tgt = torch.rand(3, 3, 32, 32), torch.rand(1, 3, 64, 48)
    out = uda.create("translator", "fda", beta=0.05)(src, tgt)
    assert out.shape == src.shape and out.min() >= 0 and out.max() <= 1
    small = F.interpolate(tgt, size=(32, 32), mode="bilinear", align_corners=False)
    assert torch.allclose(out[1], low_freq_mutate(src[1:2], small, 0.05).clamp(0, 1)[0], atol=1e-6)
    with pytest.raises(uda.UdaError, match="target"):
        uda.create("translator", "fda", beta=0.05)(src)
    with pytest.raises(uda.UdaError):
        uda.create("translator", "fda", beta=0.9)


# ---- CycleGAN --------------------------------------------------------------------------------------------


def test_resnet9_generator_parameter_count():
    g = ResnetGenerator()
    assert n_params(g) == 11_378_179
    norms = [m for m in g.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert norms and not any(m.affine for m in norms)
    assert any(isinstance(m, nn.ReflectionPad2d) for m in g.modules())


def test_full_cyclegan_is_two_resnet9_and_two_patchgans():
    cg = uda.create("translator", "cyclegan")
    assert n_params(cg.g_st) == n_params(cg.g_ts) == 11_378_179
    assert n_params(cg.d_t) == n_params(cg.d_s) == 2_764_737
    assert cg.pool_s.size == cg.pool_t.size == 50
    o = TranslationConfig(translator_iters=100).translator_optim  # the stage-1 optimizer of the recipes that train a CycleGAN
    assert (o.name, o.lr, tuple(o.betas), o.schedule) == ("adam", 2e-4, (0.5, 0.999), "linear_decay")


def test_generator_any_size_and_range():
    g = ResnetGenerator(ngf=4, n_blocks=1)
    y = g(torch.rand(1, 3, 30, 33) * 2 - 1)
    assert y.shape == (1, 3, 30, 33) and y.abs().max() <= 1


def test_cycle_and_identity_losses_zero_for_identity_generators():
    cg = uda.create("translator", "cyclegan_tiny")
    cg.g_st, cg.g_ts = nn.Identity(), nn.Identity()
    x, t = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    losses, _ = cg.generator_losses(x, t)
    for k in ("cycle_s", "cycle_t", "idt_s", "idt_t"):
        assert losses[k].item() == 0.0
    assert torch.allclose(cg(x), x, atol=1e-6)


def test_cyclegan_losses_equal_plain_pytorch():
    torch.manual_seed(0)
    cg = uda.create("translator", "cyclegan_tiny", pool_size=0)
    ref = copy.deepcopy(cg)
    s, t = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    with frozen(cg.discriminator_modules()):
        losses, state = cg.generator_losses(s, t)
        sum(losses.values()).backward()
    assert all(p.grad is None for p in cg.discriminator_parameters())
    d = cg.discriminator_losses(state)
    sum(d.values()).backward()

    # CycleGAN's equations on [−1, 1] images, LSGAN, λ_cycle 10, identity 0.5·10, D × 0.5
    rs, rt = s * 2 - 1, t * 2 - 1
    ga, gb, da, db = ref.g_st, ref.g_ts, ref.d_t, ref.d_s
    fake_t, fake_s = ga(rs), gb(rt)
    mse = lambda x, v: ((x - v) ** 2).mean()  # noqa: E731
    for p in [*da.parameters(), *db.parameters()]:
        p.requires_grad_(False)
    want = {
        "gan_st": mse(da(fake_t), 1),
        "gan_ts": mse(db(fake_s), 1),
        "cycle_s": 10 * (gb(fake_t) - rs).abs().mean(),
        "cycle_t": 10 * (ga(fake_s) - rt).abs().mean(),
        "idt_t": 5 * (ga(rt) - rt).abs().mean(),
        "idt_s": 5 * (gb(rs) - rs).abs().mean(),
    }
    sum(want.values()).backward()
    for p in [*da.parameters(), *db.parameters()]:
        p.requires_grad_(True)
    d_t = 0.5 * (mse(da(rt), 1) + mse(da(fake_t.detach()), 0))
    d_s = 0.5 * (mse(db(rs), 1) + mse(db(fake_s.detach()), 0))
    (d_t + d_s).backward()
    for k, v in want.items():
        assert torch.allclose(losses[k], v, atol=1e-6), k
    assert torch.allclose(d["d_t"], d_t) and torch.allclose(d["d_s"], d_s)
    for a, b in zip(cg.parameters(), ref.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-6, rtol=1e-4)


def _v(k: torch.Tensor) -> torch.Tensor:
    """Images whose values are 8-bit levels ``k`` of the tanh range (what the pool stores exactly)."""
    return k / 127.5 - 1


def _k(y: torch.Tensor) -> float:
    return float(((y.flatten()[0] + 1) * 127.5).round())


def test_image_pool_fills_then_swaps_deterministically():
    pool = ImagePool(3, seed=7)
    first = _v(torch.arange(3.0)).view(3, 1, 1, 1)
    assert torch.equal(pool(first), first)  # filling: returned as is, stored
    stored = {0.0, 1.0, 2.0}
    outs = []
    for i in range(40):
        x = _v(torch.full((1, 1, 1, 1), 100.0 + i))
        y = pool(x)
        v = _k(y)
        assert v == 100.0 + i or v in stored  # the incoming image or a stored one
        if v != 100.0 + i:  # a stored image came back: the incoming one took its place
            assert torch.equal(y, _v(torch.full((1, 1, 1, 1), v)))  # bit-exact from the 8-bit store
            stored.discard(v)
            stored.add(100.0 + i)
        assert {float(t.flatten()[0]) for t in pool.images} == stored and pool.images[0].dtype == torch.uint8
        outs.append(v)
    swapped = sum(v != 100.0 + i for i, v in enumerate(outs))
    assert 8 <= swapped <= 32  # p = 0.5
    again = ImagePool(3, seed=7)
    again(first)
    assert [_k(again(_v(torch.full((1, 1, 1, 1), 100.0 + i)))) for i in range(40)] == outs


def test_image_pool_is_stored_in_8_bits_and_released():
    pool = ImagePool(50)
    pool(torch.rand(50, 3, 32, 64) * 2 - 1)
    state = pool.state_dict()["_extra_state"]["images"]
    assert len(state) == 50 and all(t.dtype == torch.uint8 for t in state)
    assert sum(t.numel() * t.element_size() for t in state) == 50 * 3 * 32 * 64  # 1 byte per value, not 4
    pool.release_training_state()
    assert pool.images == [] and pool.state_dict()["_extra_state"]["images"] == []


def test_image_pool_state_dict_resumes_exactly():
    a = ImagePool(4, seed=1)
    for i in range(6):
        a(torch.full((2, 1, 2, 2), float(i)))
    b = ImagePool(4, seed=99)
    b.load_state_dict(a.state_dict())
    for i in range(10):
        x = torch.full((2, 1, 2, 2), 50.0 + i)
        assert torch.equal(a(x), b(x))
    assert torch.equal(ImagePool(0)(x), x)


def test_cyclegan_optim_schedule():
    o = dataclasses.replace(TranslationConfig(translator_iters=100).translator_optim, decay_start=50)  # constant, then linear to 0
    assert lr_factor(o, 0, 100) == 1.0 and lr_factor(o, 49, 100) == 1.0
    assert lr_factor(o, 75, 100) == pytest.approx(0.5) and lr_factor(o, 100, 100) == 0.0


def test_tiny_cyclegan_learns_a_colour_mapping():
    """Reddish source, bluish target: a few Adam steps make the translation bluish."""
    torch.manual_seed(0)

    def batch(tint, n=2):
        base = torch.rand(n, 1, 32, 32) * 0.5 + 0.25
        return (base * torch.tensor(tint).view(1, 3, 1, 1) * 1.4).clamp(0, 1)

    red, blue = [0.9, 0.2, 0.2], [0.2, 0.3, 0.9]
    cg = uda.create("translator", "cyclegan_tiny")
    og = torch.optim.Adam(cg.generator_parameters(), lr=1e-3, betas=(0.5, 0.999))
    od = torch.optim.Adam(cg.discriminator_parameters(), lr=1e-3, betas=(0.5, 0.999))
    for _ in range(20):
        og.zero_grad()
        od.zero_grad()
        with frozen(cg.discriminator_modules()):
            losses, state = cg.generator_losses(batch(red), batch(blue))
            sum(losses.values()).backward()
        sum(cg.discriminator_losses(state).values()).backward()
        og.step()
        od.step()
    with torch.no_grad():
        r, g, b = cg.eval()(batch(red, 4)).mean((0, 2, 3)).tolist()
    assert b > r + 0.2, (r, g, b)


# ---- every registered translator -------------------------------------------------------------------------

SMALL = {"cyclegan": {"ngf": 4, "n_blocks": 1, "ndf": 4}}


@pytest.mark.parametrize("name", uda.list_components("translator"))
def test_every_registered_translator(name):
    tr = uda.create("translator", name, **SMALL.get(name, {})).eval()
    x, t = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        y = tr(x, t)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.min() >= 0 and y.max() <= 1
    if hasattr(tr, "generator_losses"):
        losses, state = tr.generator_losses(x, t)
        assert all(torch.isfinite(v) for v in losses.values())
        assert all(torch.isfinite(v) for v in tr.discriminator_losses(state).values())
        g, d = {id(p) for p in tr.generator_parameters()}, {id(p) for p in tr.discriminator_parameters()}
        assert not g & d and g | d == {id(p) for p in tr.parameters()}
        assert {id(p) for m in tr.discriminator_modules() for p in m.parameters()} == d
