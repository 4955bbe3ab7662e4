"""VFM-UDA / VFM-UDA++ on the `dacs` recipe: the presets' values, the two-domain feature distance, the masked term."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import uda
from uda.config import load_config
from uda.recipes.dacs import dacs_config as DACSConfig

TINY = ["data.source.size=64x32", "data.target.size=64x32", "data.val.size=64x32", "eval.size=64x32",
        "data.source.options.num=4", "data.target.options.num=4", "data.val.options.num=2", "data.batch_size=2",
        "trainer.log_every=1", "trainer.tensorboard=false", "trainer.device=cpu", "trainer.max_iters=2"]


def _recipe(**cfg):
    torch.manual_seed(0)
    model = uda.create("model", "vfm_tiny", num_classes=4)
    recipe = uda.create("recipe", "dacs", cfg=DACSConfig(strong_augmentation=False, **cfg), model=model,
                        num_classes=4, feature_info=model.feature_info)
    recipe.eval()  # deterministic student (no head dropout); the frozen modules stay in eval anyway
    return recipe


def _batch():
    g = torch.Generator().manual_seed(1)
    src = {"image": torch.rand(2, 3, 28, 28, generator=g), "label": torch.randint(0, 4, (2, 28, 28), generator=g)}
    return src, {"image": torch.rand(2, 3, 28, 28, generator=g)}


def _ce_sum_over_all(logits, label, weight=None):
    logits = F.interpolate(logits, size=label.shape[-2:], mode="bilinear", align_corners=False)
    ce = F.cross_entropy(logits, label, ignore_index=255, reduction="none")
    return (ce if weight is None else ce * weight).sum() / label.numel()


@pytest.mark.parametrize("setup", ["gta5_cityscapes", "synthia_cityscapes"])
def test_paper_presets_carry_vfm_uda_plusplus_values(setup):
    cfg = load_config(f"vfm_uda_{setup}")
    rc, opt = cfg.recipe, cfg.optim.generator
    assert cfg.model.name == "vfm" and cfg.model.options["backbone"] == "vit_large_patch14_reg4_dinov2"
    assert cfg.model.options["activation_checkpointing"] is True
    assert (opt.name, opt.lr, opt.encoder_lr_mult, opt.layer_decay, opt.warmup_iters, opt.weight_decay) == (
        "adamw", 1e-5, 0.1, 0.9, 1500, 0.01)
    assert rc.terms == {
        "fd": {"kind": "feature_distance", "weight": 0.1, "classes": None, "target": True, "level": "stage3"},
        "mix": {"kind": "self_training", "alpha": 0.999, "mix_classes": "batch", "pseudo_margins": [0, 0, 0, 0]},
        "mic": {"kind": "mic", "weight": 1.0, "ratio": 0.7, "block": 14, "fill": "zero"}}
    assert (rc.crop, rc.rcs, cfg.trainer.max_iters, cfg.data.batch_size) == ("1024x1024", True, 40000, 2)
    assert cfg.eval.protocol == ("16" if setup.startswith("synthia") else "19")


def test_feature_distance_on_both_domains_against_the_initial_network():
    recipe = _recipe(fd_weight=0.1, fd_classes=None, fd_target=True, fd_level="stage3")
    initial = copy.deepcopy(recipe.model).eval()
    with torch.no_grad():  # move the student away from its initial weights: both distances become non-zero
        for p in recipe.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    src, tgt = _batch()
    losses, _ = recipe.generator_losses(src, tgt)
    assert sorted(losses) == ["fd", "fd_target", "mix", "seg"]
    for key, image in (("fd", src["image"]), ("fd_target", tgt["image"])):
        f_student = recipe.model(image).features["stage3"]
        with torch.no_grad():
            f_init = initial(image).features["stage3"]
        expected = 0.1 * (f_student - f_init).pow(2).sum(1).sqrt().mean()  # every pixel: no class mask
        assert losses[key].item() == pytest.approx(expected.item(), rel=1e-5)
        assert losses[key].item() > 0
    losses["fd_target"].backward()  # the target term trains the student
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in recipe.model.encoder.parameters())


def test_masked_target_term_is_the_students_prediction_of_pseudo_labels_on_a_masked_image():
    # ratio 1: every block is zeroed, so the masked image is known; threshold 0: the pseudo-label weight is 1
    recipe = _recipe(mic_weight=2.0, mic_options={"ratio": 1.0, "block": 14, "fill": "zero"}, pseudo_threshold=0.0)
    src, tgt = _batch()
    losses, _ = recipe.generator_losses(src, tgt)
    assert sorted(losses) == ["mic", "mix", "seg"]
    with torch.no_grad():
        t_logits = F.interpolate(recipe.mix.teacher(tgt["image"]).logits, size=(28, 28), mode="bilinear",
                                 align_corners=False)
    pseudo = t_logits.argmax(1)
    expected = 2.0 * _ce_sum_over_all(recipe.model(torch.zeros_like(tgt["image"])).logits, pseudo)
    assert losses["mic"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_masked_term_scales_with_the_per_batch_confidence_weight():
    recipe = _recipe(mic_weight=1.0, mic_options={"ratio": 1.0, "block": 14, "fill": "zero"},
                     pseudo_threshold=1.1)  # nothing is confident: weight 0
    losses, _ = recipe.generator_losses(*_batch())
    assert losses["mic"].item() == 0.0


def test_the_new_terms_are_off_by_default():
    recipe = _recipe(fd_weight=0.1, fd_level="stage3")
    losses, _ = recipe.generator_losses(*_batch())
    assert sorted(losses) == ["fd", "mix", "seg"]
    assert list(recipe.terms) == ["fd", "mix"]


@pytest.mark.slow
def test_synthetic_preset_trains_two_steps(tmp_path):
    from uda.engine import train

    cfg = load_config("vfm_uda_synthetic", TINY)
    assert cfg.model.name == "vfm_tiny" and list(cfg.recipe.terms) == ["mix", "mic"]
    train(cfg, tmp_path / "run")
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert '"mic"' in lines[0] and '"fd' not in lines[0]


def _kept_bytes(model, x):
    """Bytes of distinct non-parameter tensors autograd keeps for backward during one forward."""
    seen = {}

    def pack(t):
        if not (t.is_leaf and t.requires_grad):
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x).logits
    return sum(seen.values()), out


def test_vfm_tiny_checkpointing_keeps_fewer_activations_and_computes_the_same():
    torch.manual_seed(0)
    plain = uda.create("model", "vfm_tiny", num_classes=4).train()
    ckpt = uda.create("model", "vfm_tiny", num_classes=4, grad_checkpointing=True).train()
    ckpt.load_state_dict(plain.state_dict())
    plain.head.eval(), ckpt.head.eval()  # no dropout: the same function
    x = torch.rand(1, 3, 56, 56)
    kept_plain, out_plain = _kept_bytes(plain, x)
    kept_ckpt, out_ckpt = _kept_bytes(ckpt, x)
    torch.testing.assert_close(out_ckpt, out_plain)
    assert kept_ckpt < kept_plain
    out_plain.sum().backward(), out_ckpt.sum().backward()
    for (n, p), q in zip(plain.encoder.named_parameters(), ckpt.encoder.parameters()):
        torch.testing.assert_close(q.grad, p.grad, msg=n)
