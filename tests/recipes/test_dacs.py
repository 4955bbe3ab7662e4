"""The `dacs` recipe: its losses against a hand-written DACS step, the EMA hook, carried modules, exact resume."""

from __future__ import annotations

import copy
import signal

import pytest
import torch
import torch.nn.functional as F

import uda
from uda._io import load_checkpoint
from uda.config import load_config
from uda.engine import Trainer, TrainingInterrupted, train
from uda.recipes.dacs import dacs_config as DACSConfig
from uda.selftraining import class_masks

TINY = ["data.source.size=64x32", "data.target.size=64x32", "data.val.size=64x32", "eval.size=64x32",
        "data.source.options.num=8", "data.target.options.num=8", "data.val.options.num=2", "data.batch_size=2",
        "trainer.log_every=1", "trainer.tensorboard=false", "trainer.device=cpu", "trainer.eval_every=0"]


def _recipe(**cfg):
    torch.manual_seed(0)
    model = uda.create("model", "deeplabv2_tiny", num_classes=4, width=4, multi_level=False)
    return uda.create("recipe", "dacs", cfg=DACSConfig(**cfg), model=model, num_classes=4)


def _batch():
    g = torch.Generator().manual_seed(1)
    src = {"image": torch.rand(2, 3, 32, 32, generator=g), "label": torch.randint(0, 4, (2, 32, 32), generator=g)}
    src["label"][0, :4] = 255
    return src, {"image": torch.rand(2, 3, 32, 32, generator=g)}


@pytest.mark.parametrize(("choice", "buffers"), [("image", "batch"), ("batch", "batch"), ("image", "ema")])
def test_losses_equal_a_hand_written_dacs_step(choice, buffers):
    recipe = _recipe(mix_classes=choice, strong_augmentation=False, pseudo_threshold=0.3, pseudo_margins=[2, 3, 0, 0],
                     teacher_buffers=buffers)
    recipe.eval()
    recipe.model.train()
    src, tgt = _batch()
    teacher = copy.deepcopy(recipe.model)  # by hand: the teacher is the student at step 0
    if buffers == "batch":  # DAFormer's code: the teacher in training mode with dropout switched off
        teacher.train()
        for m in teacher.modules():
            if isinstance(m, torch.nn.modules.dropout._DropoutNd):
                m.eval()
    else:
        teacher.eval()
    torch.manual_seed(5)
    losses, _ = recipe.generator_losses(src, tgt)
    assert sorted(losses) == ["mix", "seg"]

    # by hand: the DACS formulas
    student = recipe.model
    torch.manual_seed(5)
    logits = F.interpolate(student(src["image"]).logits, size=(32, 32), mode="bilinear", align_corners=False)
    seg = F.cross_entropy(logits, src["label"], ignore_index=255, reduction="sum") / src["label"].numel()
    with torch.no_grad():
        p = torch.softmax(F.interpolate(teacher(tgt["image"]).logits, size=(32, 32), mode="bilinear",
                                        align_corners=False), 1)
    conf, pseudo = p.max(1)
    q = (conf >= 0.3).float().mean()
    w_t = torch.full_like(conf, float(q))
    w_t[:, :2] = 0
    w_t[:, -3:] = 0
    mask = class_masks(src["label"], choice=choice).bool()  # the same RNG draws as the recipe's
    x_m = torch.where(mask[:, None], src["image"], tgt["image"])
    y_m = torch.where(mask, src["label"], pseudo)
    w_m = torch.where(mask, torch.ones_like(w_t), w_t)
    lm = F.interpolate(student(x_m).logits, size=(32, 32), mode="bilinear", align_corners=False)
    mix = (F.cross_entropy(lm, y_m, ignore_index=255, reduction="none") * w_m).mean()
    assert 0 < float(q) < 1
    torch.testing.assert_close(losses["seg"], seg, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses["mix"], mix, rtol=1e-5, atol=1e-6)


def test_after_step_is_the_ema_update_and_teacher_is_carried():
    recipe = _recipe(alpha=0.9)
    t0 = [p.clone() for p in recipe.mix.teacher.parameters()]
    for p in recipe.model.parameters():
        p.data.add_(1.0)
    s1 = [p.clone() for p in recipe.model.parameters()]
    recipe.after_step(1)  # α_1 = min(1 − 1/2, 0.9) = 0.5
    for t, a, b in zip(recipe.mix.teacher.parameters(), t0, s1):
        torch.testing.assert_close(t, 0.5 * a + 0.5 * b)
    t1 = [p.clone() for p in recipe.mix.teacher.parameters()]
    recipe.after_step(50)  # α = 0.9 from here
    for t, a, b in zip(recipe.mix.teacher.parameters(), t1, s1):
        torch.testing.assert_close(t, 0.9 * a + 0.1 * b)
    # carried: frozen, not optimized, in the state dict, eval whatever the loop does
    assert not any(p.requires_grad for p in recipe.mix.teacher.parameters())
    cfg = uda.config.OptimizerConfig()
    optimized = {id(p) for g in recipe.generator_param_groups(cfg) for p in g["params"]}
    assert optimized == {id(p) for p in recipe.model.parameters()}
    assert any(k.startswith("mix.teacher.") for k in recipe.state_dict())
    recipe.train()
    for m in recipe.trained_modules():  # what the loop does: the term in train mode, its teacher stays eval
        m.train()
    assert recipe.trained_modules() == [recipe.model, recipe.mix]
    assert recipe.mix.training and not recipe.mix.teacher.training


def test_feature_distance_encoder_is_frozen_imagenet_copy_and_masked():
    recipe = _recipe(fd_weight=0.5, fd_classes=[1], strong_augmentation=False)
    assert recipe.fd.level == "layer4" and not any(p.requires_grad for p in recipe.fd.distance.frozen.parameters())
    src, tgt = _batch()
    src["label"][:] = 0
    losses, _ = recipe.generator_losses(src, tgt)
    assert float(losses["fd"]) == 0.0  # identical networks
    with torch.no_grad():
        for p in recipe.model.parameters():
            p.add_(0.01)
    assert float(recipe.generator_losses(src, tgt)[0]["fd"]) == 0.0  # no pixel of class 1
    src["label"][:] = 1
    out = recipe.model(src["image"]).features["layer4"]
    ref = recipe.fd.distance.frozen(src["image"]).features["layer4"]
    expect = 0.5 * torch.norm(out - ref, dim=1).mean()
    torch.testing.assert_close(recipe.generator_losses(src, tgt)[0]["fd"], expect, rtol=1e-5, atol=1e-7)


def _tiny(name, *over):
    return load_config(name, [*TINY, *over])


def test_trainer_calls_after_step_once_per_applied_step(tmp_path):
    calls = []
    cfg = _tiny("dacs_synthetic", "model.options.width=4", "trainer.max_iters=3")
    tr = Trainer(cfg, tmp_path)
    tr.build()
    tr.recipe.after_step = lambda step: calls.append(step)
    tr.fit()
    assert calls == [1, 2, 3]
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")["recipe"]
    assert any(k.startswith("mix.teacher.module.") for k in state)


@pytest.mark.parametrize("name", ["dacs_synthetic", "daformer_synthetic"])
def test_resume_is_exact_with_teacher_and_mixing(tmp_path, name):
    over = ["trainer.max_iters=4", "trainer.checkpoint_every=100"]
    if name == "dacs_synthetic":
        over.append("model.options.width=4")
    straight, parted = tmp_path / "a", tmp_path / "b"
    train(_tiny(name, *over), straight)

    def stop_at_2(tr):
        if tr.global_iter == 2:
            tr._handle_signal(signal.SIGTERM, None)

    with pytest.raises(TrainingInterrupted):
        train(_tiny(name, *over), parted, callbacks={"on_step_end": [stop_at_2]})
    train(_tiny(name, *over), parted, resume=True)
    a = load_checkpoint(straight / "checkpoints" / "last.pt")
    b = load_checkpoint(parted / "checkpoints" / "last.pt")
    for key in ("recipe", "optimizers", "schedulers", "rng", "data"):
        _assert_same(a[key], b[key], key)
    teacher = [k for k, v in a["recipe"].items() if k.startswith("mix.teacher.module.") and isinstance(v, torch.Tensor)
               and v.is_floating_point()]
    assert teacher and not all(torch.equal(a["recipe"][k], a["recipe"][k.replace("mix.teacher.module.", "model.")])
                               for k in teacher)  # the teacher is saved and is not the student


def _assert_same(a, b, where):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_wrap_datasets_installs_crops_flip_and_rare_class_sampling(tmp_path, monkeypatch):
    monkeypatch.setenv("UDA_CACHE_DIR", str(tmp_path / "cache"))
    cfg = _tiny("daformer_synthetic", "recipe.crop=32x32", "recipe.rcs=true", "recipe.rcs_min_pixels=10",
                "recipe.fd_weight=0.005", "recipe.fd_classes=null", "recipe.pseudo_margins=[2,4,0,0]", "trainer.max_iters=2")
    tr = Trainer(cfg, tmp_path / "run")
    tr.build()
    from uda.selftraining import RandomCropFlip, RareClassSampling

    assert isinstance(tr.source_ds, RareClassSampling) and isinstance(tr.target_ds, RandomCropFlip)
    src, tgt = next(tr.source_iter), next(tr.target_iter)
    assert src["image"].shape[-2:] == (32, 32) and src["label"].shape[-2:] == (32, 32)
    assert tgt["image"].shape[-2:] == (32, 32)
    tr.fit()
    assert sorted(tr.last_losses) == ["fd", "mix", "seg"] and tr.last_losses["fd"] > 0  # every DAFormer part ran
    assert any((tmp_path / "cache" / "rcs").glob("*.json"))  # class statistics computed on first use, cached
