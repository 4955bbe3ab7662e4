"""MIC's masked image consistency: the term, the DACS/DAFormer option and the AdvEnt + MIC term, each against a
computation written here in plain PyTorch."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import uda
from uda._errors import ConfigError
from uda.recipes.advent import AdvEntConfig
from uda.recipes.dacs import dacs_config as DACSConfig
from uda.selftraining import StrongAugmentation
from uda.selftraining.mic import IMAGENET_MEAN, MaskedImageConsistency

C = 4


def _model(multi_level: bool = False):
    torch.manual_seed(3)
    return uda.create("model", "deeplabv2_tiny", num_classes=C, width=4, multi_level=multi_level)


def _keep(b: int, h: int, w: int, block: int, ratio: float) -> torch.Tensor:
    """The block keep-mask by hand: one U(0, 1) draw per block, kept above ``ratio``, blown up to pixels."""
    u = torch.rand(b, (h // block) * (w // block))
    keep = (u > ratio).float().view(b, 1, h // block, w // block)
    return keep.repeat_interleave(block, 2).repeat_interleave(block, 3)


def _weighted_ce(logits, label, weight):
    up = F.interpolate(logits, size=label.shape[-2:], mode="bilinear", align_corners=False)
    return (F.cross_entropy(up, label, reduction="none", ignore_index=255) * weight).mean()


def _masked(image, keep):
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    return image * keep + (1 - keep) * mean


def test_term_equals_plain_pytorch_loss_and_gradient():
    torch.set_num_threads(1)
    model = _model()
    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 32, 32, generator=g)
    pseudo = torch.randint(0, C, (2, 32, 32), generator=g)
    pseudo[0, :4] = 255  # ignored pixels count 0
    weight = torch.rand(2, 32, 32, generator=g)
    term = MaskedImageConsistency(weight=1.0, ratio=0.7, block=8)
    torch.manual_seed(11)
    loss = term(model, image, pseudo, weight)["mic"]
    grads = torch.autograd.grad(loss, list(model.parameters()))

    ref_model = copy.deepcopy(model)
    torch.manual_seed(11)
    keep = _keep(2, 32, 32, 8, 0.7)
    assert 0 < keep.mean() < 1
    ref = _weighted_ce(ref_model(_masked(image, keep)).logits, pseudo, weight)
    ref_grads = torch.autograd.grad(ref, list(ref_model.parameters()))
    torch.testing.assert_close(loss, ref)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b)
    # λ scales the term; zero fill gives black blocks
    torch.manual_seed(11)
    assert torch.allclose(MaskedImageConsistency(weight=0.5, block=8)(model, image, pseudo, weight)["mic"], 0.5 * ref)
    torch.manual_seed(11)
    black = MaskedImageConsistency(block=8, fill="zero").masked_images(image)
    torch.testing.assert_close(black, image * keep)


def test_term_augments_colour_before_masking():
    aug = StrongAugmentation(jitter_p=1.0, blur_p=1.0)
    term = MaskedImageConsistency(block=8, augmentation=aug)
    image = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(5)
    got = term.masked_images(image)
    torch.manual_seed(5)
    augmented = aug(image)
    keep = _keep(2, 32, 32, 8, 0.7)
    torch.testing.assert_close(got, _masked(augmented, keep))
    assert not torch.allclose(augmented, image)


def test_bad_fill_is_one_clear_error():
    with pytest.raises(ConfigError, match="fill"):
        MaskedImageConsistency(fill="grey")


def test_dacs_mic_option_adds_the_term_on_the_teachers_pseudo_labels():
    torch.set_num_threads(1)
    model = _model()
    cfg = DACSConfig(mic_weight=1.0, mic_options={"block": 8}, strong_augmentation=False)
    recipe = uda.create("recipe", "dacs", cfg=cfg, model=model, num_classes=C)
    g = torch.Generator().manual_seed(2)
    src = {"image": torch.rand(2, 3, 32, 32, generator=g), "label": torch.randint(0, C, (2, 32, 32), generator=g)}
    tgt = {"image": torch.rand(2, 3, 32, 32, generator=g)}
    torch.manual_seed(7)
    losses, _ = recipe.generator_losses(src, tgt)
    assert sorted(losses) == ["mic", "mix", "seg"]

    # by hand: the teacher is the student at step 0; ClassMix draws first, then the block mask
    student = copy.deepcopy(model)
    torch.manual_seed(7)
    with torch.no_grad():
        logits = F.interpolate(student(tgt["image"]).logits, size=(32, 32), mode="bilinear", align_corners=False)
        prob, pseudo = torch.softmax(logits, 1).max(1)
        weight = (prob >= 0.968).float().mean().expand_as(prob)
        recipe.mix.mixing(src["image"], src["label"], tgt["image"], pseudo, weight)
    keep = _keep(2, 32, 32, 8, 0.7)
    ref = _weighted_ce(student(_masked(tgt["image"], keep)).logits, pseudo, weight)
    torch.testing.assert_close(losses["mic"], ref)


def test_advent_plus_mic_term_carries_and_moves_its_own_teacher():
    torch.set_num_threads(1)
    model = _model(multi_level=True)
    cfg = AdvEntConfig(discriminator="fc_tiny",
                       terms=[{"name": "mic", "kind": "mic", "block": 8, "augmentation": False}])
    recipe = uda.create("recipe", "advent", cfg=cfg, model=model, num_classes=C)
    plain = uda.create("recipe", "advent", cfg=AdvEntConfig(discriminator="fc_tiny"), model=_model(True),
                       num_classes=C)
    # the teacher is carried by the term (saved with the recipe), not trained by either optimizer
    assert any(k.startswith("mic.teacher.module.") for k in recipe.state_dict())
    assert len(recipe.discriminator_parameters()) == len(plain.discriminator_parameters())
    assert all(not p.requires_grad for p in recipe.mic.teacher.parameters())

    g = torch.Generator().manual_seed(4)
    src = {"image": torch.rand(1, 3, 32, 32, generator=g), "label": torch.randint(0, C, (1, 32, 32), generator=g)}
    tgt = {"image": torch.rand(1, 3, 32, 32, generator=g)}
    teacher = copy.deepcopy(model)
    torch.manual_seed(9)
    losses, _ = recipe.generator_losses(src, tgt)
    torch.manual_seed(9)
    with torch.no_grad():
        logits = F.interpolate(teacher(tgt["image"]).logits, size=(32, 32), mode="bilinear", align_corners=False)
        prob, pseudo = torch.softmax(logits, 1).max(1)
        weight = (prob >= 0.968).float().mean().expand_as(prob)
    keep = _keep(1, 32, 32, 8, 0.7)
    ref = _weighted_ce(teacher(_masked(tgt["image"], keep)).logits, pseudo, weight)
    torch.testing.assert_close(losses["mic"], ref)

    # after optimizer step 1 the teacher is α_1 = 0.5 of the way (α_t = min(1 − 1/(t + 1), 0.999))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    recipe.after_step(1)
    for t, s, old in zip(recipe.mic.teacher.module.parameters(), model.parameters(), teacher.parameters()):
        torch.testing.assert_close(t, 0.5 * old + 0.5 * s)


def test_unbound_mic_term_says_how_to_use_it():
    term = uda.create("term", "mic")
    step = uda.SegStep(uda.types.SegOutput(torch.zeros(1, C, 4, 4), None, {}), target_image=torch.rand(1, 3, 8, 8))
    with pytest.raises(ConfigError, match="recipe"):
        term.generator_loss(step)


def test_shared_teacher_is_refused_without_a_self_training_term():
    cfg = AdvEntConfig(discriminator="fc_tiny", terms={"mic": {"kind": "mic", "teacher": "shared"}})
    with pytest.raises(ConfigError, match="teacher=shared needs a self-training term"):
        uda.create("recipe", "advent", cfg=cfg, model=_model(True), num_classes=C)


def test_advent_mic_presets_add_the_term_with_mics_values():
    from uda.config import get_builtin

    for setup, block in (("gta5_cityscapes", 64), ("synthia_cityscapes", 64), ("synthetic", 8)):
        cfg = get_builtin(f"advent_mic_{setup}")
        base = get_builtin(f"advent_{setup}")
        assert cfg.recipe.name == "advent" and cfg.model == base.model and cfg.optim == base.optim
        assert cfg.recipe.terms == {"mic": {"kind": "mic", "weight": 1.0, "ratio": 0.7, "block": block}}
