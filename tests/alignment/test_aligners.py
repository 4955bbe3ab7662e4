"""Aligners: one update compared with the papers' equations written in plain PyTorch; frozen D; GRL."""

import copy
import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from alignment_helpers import NUM_CLASSES, TinySeg

import uda
from uda.alignment import frozen

SIZE = (32, 32)


def bce(x, label):
    return F.binary_cross_entropy_with_logits(x, torch.full_like(x, label))


def grads(module):
    return [None if p.grad is None else p.grad.clone() for p in module.parameters()]


def assert_grads_equal(a, b):
    assert len(a) == len(b)
    assert any(ga is not None for ga in a)
    for ga, gb in zip(a, b):
        assert (ga is None) == (gb is None)
        if ga is not None:
            assert torch.allclose(ga, gb, atol=1e-7, rtol=1e-5), (ga - gb).abs().max()


def ours_update(net, aligner, xs, xt):
    """The training loop's order: freeze D → generator terms backward → unfreeze → D loss backward."""
    out_s, out_t = net(xs), net(xt)
    with frozen(aligner.frozen_in_generator_phase()):
        g = aligner.generator_loss(out_s, out_t, source_size=SIZE, target_size=SIZE)
        sum(g.values()).backward()
    d_grads_after_g = grads(aligner)
    d = aligner.discriminator_loss(out_s, out_t, source_size=SIZE, target_size=SIZE)
    if d:
        sum(d.values()).backward()
    return g, d, d_grads_after_g


def up_softmax(x):
    return F.interpolate(x, size=SIZE, mode="bilinear", align_corners=True).softmax(1)


def prob_2_entropy(p):
    return -p * torch.log2(p + 1e-30) / math.log2(p.shape[1])


@pytest.mark.parametrize("name", ["output", "entropy"])
def test_output_and_entropy_aligners_equal_plain_pytorch(net, images, name):
    xs, xt = images
    levels = {"logits": 1e-3, "aux": 2e-4}
    aligner = uda.create(
        "aligner", name, feature_info=net.feature_info, num_classes=NUM_CLASSES, levels=levels, discriminator="fc_tiny"
    )
    ref_net, d_main, d_aux = (
        copy.deepcopy(net),
        copy.deepcopy(aligner.discriminators["logits"]),
        copy.deepcopy(aligner.discriminators["aux"]),
    )
    g, d, d_after_g = ours_update(net, aligner, xs, xt)
    assert all(gr is None for gr in d_after_g), "discriminators received gradients in the generator phase"

    # Plain AdaptSegNet / AdvEnt iteration (the original scripts' order).
    transform = up_softmax if name == "output" else (lambda x: prob_2_entropy(up_softmax(x)))
    ps, pt = ref_net(xs), ref_net(xt)
    for p in [*d_main.parameters(), *d_aux.parameters()]:
        p.requires_grad_(False)
    adv_main = 1e-3 * bce(d_main(transform(pt.logits)), 0.0)
    adv_aux = 2e-4 * bce(d_aux(transform(pt.aux)), 0.0)
    (adv_main + adv_aux).backward()
    for p in [*d_main.parameters(), *d_aux.parameters()]:
        p.requires_grad_(True)
    ld_main = bce(d_main(transform(ps.logits).detach()), 0.0) / 2 + bce(d_main(transform(pt.logits).detach()), 1.0) / 2
    ld_aux = bce(d_aux(transform(ps.aux).detach()), 0.0) / 2 + bce(d_aux(transform(pt.aux).detach()), 1.0) / 2
    (ld_main + ld_aux).backward()

    assert torch.allclose(g["adv_logits"], adv_main) and torch.allclose(g["adv_aux"], adv_aux)
    assert torch.allclose(d["d_logits"], ld_main) and torch.allclose(d["d_aux"], ld_aux)
    assert_grads_equal(grads(net), grads(ref_net))
    assert_grads_equal(grads(aligner.discriminators["logits"]), grads(d_main))
    assert_grads_equal(grads(aligner.discriminators["aux"]), grads(d_aux))


def test_minent_equals_plain_pytorch(net, images):
    xs, xt = images
    aligner = uda.create("aligner", "minent", feature_info=net.feature_info, num_classes=NUM_CLASSES)
    ref = copy.deepcopy(net)
    g, d, _ = ours_update(net, aligner, xs, xt)
    assert d == {} and aligner.frozen_in_generator_phase() == [] and len(list(aligner.parameters())) == 0

    def ent(x):
        p = up_softmax(x)
        return -(p * torch.log2(p + 1e-30)).sum() / (p.shape[0] * p.shape[2] * p.shape[3] * math.log2(p.shape[1]))

    pt = ref(xt)
    want = 1e-3 * ent(pt.logits) + 2e-4 * ent(pt.aux)
    want.backward()
    assert torch.allclose(g["ent_logits"] + g["ent_aux"], want)
    assert_grads_equal(grads(net), grads(ref))


@pytest.mark.parametrize("style_weight", [0.0, 0.5])
def test_multilevel_equals_plain_pytorch(net, images, style_weight):
    xs, xt = images
    aligner = uda.create(
        "aligner",
        "multilevel",
        feature_info=net.feature_info,
        levels=["layer2", "layer3", "layer4"],
        discriminator="feature_tiny",
        fru_kwargs={"groups": 4},
        style_weight=style_weight,
    )
    assert aligner.in_channels == 4 + 8 + 12
    ref, d_ref = copy.deepcopy(net), copy.deepcopy(aligner.discriminators["multilevel"])
    assert "fru" in dict(d_ref.named_children())  # the FRU is on the discriminator side
    g, d, d_after_g = ours_update(net, aligner, xs, xt)
    assert all(gr is None for gr in d_after_g)

    def fuse(o):  # layer3/layer4 (stride 4) resized to the finest level (layer2, stride 2)
        size = o.features["layer2"].shape[-2:]
        up = [
            F.interpolate(o.features[k], size=size, mode="bilinear", align_corners=False) for k in ("layer3", "layer4")
        ]
        return torch.cat([o.features["layer2"], *up], 1)

    ps, pt = ref(xs), ref(xt)
    fs, ft = fuse(ps), fuse(pt)
    for p in d_ref.parameters():
        p.requires_grad_(False)
    adv = 1e-3 * bce(d_ref(ft), 0.0)
    total = adv
    if style_weight:
        stats = [(f.mean((2, 3)).mean(0), (f.var((2, 3), unbiased=False) + 1e-5).sqrt().mean(0)) for f in (fs, ft)]
        sty = style_weight * (((stats[0][0] - stats[1][0]) ** 2).mean() + ((stats[0][1] - stats[1][1]) ** 2).mean())
        total = adv + sty
        assert torch.allclose(g["style_multilevel"], sty)
    total.backward()
    for p in d_ref.parameters():
        p.requires_grad_(True)
    ld = bce(d_ref(fs.detach()), 0.0) / 2 + bce(d_ref(ft.detach()), 1.0) / 2
    ld.backward()
    assert torch.allclose(g["adv_multilevel"], adv) and torch.allclose(d["d_multilevel"], ld)
    assert_grads_equal(grads(net), grads(ref))
    assert_grads_equal(grads(aligner.discriminators["multilevel"]), grads(d_ref))


@pytest.mark.parametrize("name", ["output", "multilevel"])
def test_grl_mode_gives_reversed_lambda_scaled_gradients(net, images, name):
    xs, xt = images
    lam = 0.25
    kw = (
        {"levels": {"logits": lam}, "discriminator": "fc_tiny"}
        if name == "output"
        else {"levels": ["layer3", "layer4"], "weight": lam, "discriminator": "feature_tiny", "fru": False}
    )
    aligner = uda.create("aligner", name, feature_info=net.feature_info, num_classes=NUM_CLASSES, mode="grl", **kw)
    ref, aligner_ref = copy.deepcopy(net), copy.deepcopy(aligner)
    assert aligner.frozen_in_generator_phase() == []
    out_s, out_t = net(xs), net(xt)
    assert aligner.discriminator_loss(out_s, out_t) == {}
    g = aligner.generator_loss(out_s, out_t, source_size=SIZE, target_size=SIZE)
    sum(g.values()).backward()

    # The same discriminator loss without reversal: D gets the same gradient, G gets −λ times it.
    aligner_ref.mode = "alternate"
    rs, rt = ref(xs), ref(xt)
    level = "logits" if name == "output" else "multilevel"
    dmod = aligner_ref.discriminators[level]
    if name == "output":
        xs_in, xt_in = up_softmax(rs.logits), up_softmax(rt.logits)
    else:
        xs_in, xt_in = aligner_ref.fuse(rs), aligner_ref.fuse(rt)
    ld = bce(dmod(xs_in), 0.0) / 2 + bce(dmod(xt_in), 1.0) / 2
    ld.backward()
    assert torch.allclose(sum(g.values()), ld)
    assert_grads_equal(grads(aligner.discriminators[level]), grads(dmod))
    assert_grads_equal(grads(net), [None if gr is None else -lam * gr for gr in grads(ref)])


def test_discriminator_weights_unchanged_in_generator_phase(net, images):
    xs, xt = images
    aligner = uda.create("aligner", "output", num_classes=NUM_CLASSES, discriminator="fc_tiny")
    before = [p.clone() for p in aligner.parameters()]
    g_before = [p.clone() for p in net.parameters()]
    opt_d = torch.optim.Adam(aligner.parameters(), lr=0.1)
    opt_g = torch.optim.SGD(net.parameters(), lr=0.1)
    with frozen(aligner.frozen_in_generator_phase()):
        sum(aligner.generator_loss(net(xs), net(xt)).values()).backward()
    opt_d.step()
    opt_g.step()
    assert all(torch.equal(a, b) for a, b in zip(before, aligner.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(g_before, net.parameters()))
    assert all(p.requires_grad for p in aligner.parameters())  # unfrozen afterwards


@pytest.mark.parametrize("kind", ["lsgan", "hinge"])
def test_other_gan_losses(net, images, kind):
    xs, xt = images
    aligner = uda.create(
        "aligner", "output", num_classes=NUM_CLASSES, levels={"logits": 1.0}, discriminator="fc_tiny", gan_loss=kind
    )
    out_s, out_t = net(xs), net(xt)
    d = aligner.discriminators["logits"]
    logits_t = d(up_softmax(out_t.logits))
    logits_s = d(up_softmax(out_s.logits))
    g = aligner.generator_loss(out_s, out_t, target_size=SIZE)["adv_logits"]
    dl = aligner.discriminator_loss(out_s, out_t, source_size=SIZE, target_size=SIZE)["d_logits"]
    if kind == "lsgan":
        assert torch.allclose(g, (logits_t**2).mean())
        assert torch.allclose(dl, 0.5 * (logits_s**2).mean() + 0.5 * ((logits_t - 1) ** 2).mean())
    else:
        assert torch.allclose(g, logits_t.mean())
        assert torch.allclose(dl, 0.5 * F.relu(1 + logits_s).mean() + 0.5 * F.relu(1 - logits_t).mean())


def test_upsampling_defaults_to_stride_and_can_be_disabled(net, images):
    out = net(images[0])
    al = uda.create("aligner", "output", feature_info=net.feature_info, num_classes=NUM_CLASSES, levels={"logits": 1.0})
    assert al.d_input(out, "logits", None).shape[-2:] == (32, 32)  # 8×8 logits × stride 4
    assert al.d_input(out, "logits", (20, 24)).shape[-2:] == (20, 24)
    al = uda.create("aligner", "output", num_classes=NUM_CLASSES, levels={"logits": 1.0}, upsample=False)
    assert al.d_input(out, "logits", None).shape[-2:] == (8, 8)


def test_user_errors_name_the_fix(net, images):
    with pytest.raises(uda.UdaError, match="feature_info"):
        uda.create("aligner", "multilevel", feature_info=net.feature_info, levels=["layer9"])
    with pytest.raises(uda.UdaError, match="mode"):
        uda.create("aligner", "output", num_classes=4, mode="sideways")
    al = uda.create("aligner", "output", num_classes=4, levels={"aux": 1.0}, discriminator="fc_tiny")
    out = net(images[0])
    out.aux = None
    with pytest.raises(uda.UdaError, match="multi_level"):
        al.generator_loss(out, out)


def test_discriminator_factory_accepted(net):
    made = []

    def factory(in_channels):
        made.append(in_channels)
        return torch.nn.Conv2d(in_channels, 1, 1)

    al = uda.create("aligner", "output", num_classes=NUM_CLASSES, discriminator=factory)
    assert made == [NUM_CLASSES, NUM_CLASSES] and set(al.discriminators) == {"logits", "aux"}


# The adversarial aligners (both update modes); MIC's consistency aligner is tested in tests/recipes/test_mic.py.
ADVERSARIAL = [n for n in uda.list_components("aligner") if "mode" in inspect.signature(uda.registry("aligner").get(n)).parameters]


@pytest.mark.parametrize("name", ADVERSARIAL)
@pytest.mark.parametrize("mode", ["alternate", "grl"])
def test_every_registered_aligner(name, mode, images):
    torch.manual_seed(0)
    net = TinySeg()
    aligner = uda.create("aligner", name, feature_info=net.feature_info, num_classes=NUM_CLASSES, mode=mode)
    xs, xt = images
    d_params = list(aligner.parameters())
    out_s, out_t = net(xs), net(xt)
    with frozen(aligner.frozen_in_generator_phase()):
        g = aligner.generator_loss(out_s, out_t)
        assert g and all(v.dim() == 0 and torch.isfinite(v) for v in g.values())
        sum(g.values()).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    d = aligner.discriminator_loss(out_s, out_t)
    if d:
        assert all(v.dim() == 0 and torch.isfinite(v) for v in d.values())
        sum(d.values()).backward()
    # aligner.parameters() is exactly the discriminator side, and every D parameter is trained somewhere
    assert {id(p) for p in d_params} == {id(p) for m in aligner.discriminators.values() for p in m.parameters()}
    assert all(p.grad is not None for p in d_params)


def test_fru_on_the_generator_side_trains_with_the_segmentation_network(net, images):
    xs, xt = images
    kw = dict(feature_info=net.feature_info, levels=["layer3", "layer4"], discriminator="feature_tiny",
              fru_kwargs={"groups": 4})
    aligner = uda.create("aligner", "multilevel", fru_side="generator", **kw)
    fru, clf = aligner.fru, aligner.discriminators["multilevel"]
    assert "fru" not in dict(clf.named_children())
    assert {id(p) for p in aligner.generator_parameters()} == {id(p) for p in fru.parameters()}
    assert aligner.frozen_in_generator_phase() == [clf]
    ref_net, ref_fru, ref_clf = copy.deepcopy(net), copy.deepcopy(fru), copy.deepcopy(clf)
    out_s, out_t = net(xs), net(xt)
    memo = {}
    with frozen(aligner.frozen_in_generator_phase()):
        g = aligner.generator_loss(out_s, out_t, memo=memo)
        sum(g.values()).backward()
    fru_after_g = grads(fru)
    d = aligner.discriminator_loss(out_s, out_t, memo=memo)
    sum(d.values()).backward()
    # written out: FRU(F_m) → classifier; the generator term trains the FRU, the D phase sees FRU(F_m) detached
    ps, pt = ref_net(xs), ref_net(xt)
    fm = lambda o: torch.cat([o.features["layer3"], o.features["layer4"]], 1)  # noqa: E731
    for p in ref_clf.parameters():
        p.requires_grad_(False)
    adv = 1e-3 * bce(ref_clf(ref_fru(fm(pt))), 0.0)
    adv.backward()
    assert torch.allclose(g["adv_multilevel"], adv)
    assert_grads_equal(fru_after_g, grads(ref_fru))
    assert_grads_equal(grads(fru), grads(ref_fru))  # the D phase added nothing to the FRU
    for p in ref_clf.parameters():
        p.requires_grad_(True)
    ld = bce(ref_clf(ref_fru(fm(ps)).detach()), 0.0) / 2 + bce(ref_clf(ref_fru(fm(pt)).detach()), 1.0) / 2
    ld.backward()
    assert torch.allclose(d["d_multilevel"], ld)
    assert_grads_equal(grads(clf), grads(ref_clf))
    assert_grads_equal(grads(net), grads(ref_net))
    with pytest.raises(uda.UdaError, match="fru_side"):
        uda.create("aligner", "multilevel", fru_side="both", **kw)


@pytest.mark.parametrize("side", ["discriminator", "generator"])
def test_fru_side_puts_its_parameters_in_the_right_optimizer(tmp_path, tiny, side):
    from uda.engine import Trainer

    tr = Trainer(tiny("mlfa_synthetic", "recipe.translation=false", f"recipe.fru_side={side}"), tmp_path)
    tr.build()
    al = tr.recipe.aligner
    fru = al.fru if side == "generator" else al.discriminators["multilevel"].fru
    opt = tr.optimizers["seg"]
    ids = {k: {id(p) for g in opt[k].param_groups for p in g["params"]} for k in ("generator", "discriminator")}
    fru_ids = {id(p) for p in fru.parameters()}
    trained_by, other = ("generator", "discriminator") if side == "generator" else ("discriminator", "generator")
    assert fru_ids <= ids[trained_by] and not fru_ids & ids[other]
    before = [p.detach().clone() for p in fru.parameters()]
    tr.set_modes(tr.stages[-1])
    tr.train_step(tr.stages[-1])
    assert any(not torch.equal(a, b) for a, b in zip(before, fru.parameters()))
