"""The recipe seams: loss terms as data, the after-step hook, carried modules, and a DACS-style update
(teacher forward → pseudo-labels → mixed batch → student loss → EMA) written against them as a sketch."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from uda._errors import ConfigError
from uda._io import load_checkpoint
from uda._registry import register
from uda.data import InfiniteLoader
from uda.engine import Trainer, train
from uda.losses import seg_ce
from uda.recipes import Recipe, SegStep, TermsConfig

BIG = [f"{k}=128x64" for k in ("data.source.size", "data.target.size", "data.val.size", "eval.size")]
FEATURE_TERM = "recipe.terms=[{name: feature, kind: multilevel, levels: [layer3], weight: 0.0002, fru: false, " \
               "discriminator: feature_tiny}]"


def _first_batches(tr):
    kw = dict(batch_size=tr.cfg.data.batch_size, device="cpu")
    return (next(InfiniteLoader(tr.source_ds, seed=tr.cfg.trainer.seed, **kw)),
            next(InfiniteLoader(tr.target_ds, seed=tr.cfg.trainer.seed + 7919, **kw)))


def test_entropy_plus_multilevel_alignment_is_a_config(tmp_path, tiny):
    tr = Trainer(tiny("advent_synthetic", "trainer.max_iters=2", *BIG, FEATURE_TERM), tmp_path)
    tr.build()
    stage = tr.stages[-1]
    assert list(tr.recipe.terms) == ["feature", "aligner"]
    d_ids = {id(p) for g in tr.optimizers["seg"]["discriminator"].param_groups for p in g["params"]}
    want = {id(p) for name in ("feature", "aligner") for p in tr.recipe.terms[name].parameters()}
    assert d_ids == want  # both terms' discriminators are trained by the D optimizer
    assert len(tr.recipe.frozen_in_generator_phase()) == 3  # logits, aux and the feature discriminator
    tr.set_modes(stage)
    ref = copy.deepcopy(tr.recipe)
    _, tgt = _first_batches(tr)
    out_t = ref.model(tgt["image"])
    lam_f = 2e-4 * F.binary_cross_entropy_with_logits(
        d := ref.feature.discriminators["multilevel"](out_t.features["layer3"]), torch.zeros_like(d))
    tr.train_step(stage)
    got = dict(zip(tr.last_step.names, tr.last_step.values))
    assert {"seg", "seg_aux", "aligner_adv_logits", "aligner_adv_aux", "feature_adv_multilevel",
            "D/feature_d_multilevel", "D/aligner_d_logits", "D/aligner_d_aux"} == set(got)
    assert torch.allclose(got["feature_adv_multilevel"], lam_f.detach(), rtol=1e-5)


def test_term_spec_errors_name_the_fix(tiny):
    model_cfg = tiny("source_only_synthetic")
    import uda

    model = uda.create("model", model_cfg.model.name, num_classes=19, **model_cfg.model.options)
    with pytest.raises(ConfigError, match="give a 'name' and a 'kind'"):
        Recipe(TermsConfig(terms=[{"kind": "minent"}]), model, num_classes=19)
    with pytest.raises(ConfigError, match="'model' is taken"):
        Recipe(TermsConfig(terms=[{"name": "model", "kind": "minent"}]), model, num_classes=19)


# --------------------------------------------------------------------------------- the DACS sketch
@dataclass
class SketchConfig(TermsConfig):
    name: str = "dacs_sketch"
    alpha: float = 0.99
    threshold: float = 0.5


@register("recipe", "dacs_sketch")
class DACSSketch(Recipe):
    """Student/EMA-teacher self-training with ClassMix (Tranheden et al., "DACS", WACV 2021) — a sketch."""

    Config = SketchConfig

    def __init__(self, cfg: SketchConfig, model, **kw) -> None:
        super().__init__(cfg, model, **kw)
        self.carry("teacher", copy.deepcopy(model))
        self.teacher_modes: list[bool] = []

    def generator_losses(self, src, tgt):
        out_s = self.model(src["image"])
        losses = self.seg_losses(out_s, src["label"])
        self.teacher_modes.append(self.teacher.training)
        with torch.no_grad():
            logits = self.teacher(tgt["image"]).logits
            prob = F.interpolate(logits, size=tgt["image"].shape[-2:], mode="bilinear", align_corners=True).softmax(1)
            conf, pseudo = prob.max(1)
        lbl = src["label"]
        classes = lbl[lbl != 255].unique()
        picked = classes[::2]  # DACS draws half of the classes at random (from torch's RNG); fixed in the sketch
        mask = torch.isin(lbl, picked)
        image = torch.where(mask[:, None], src["image"], tgt["image"])
        label = torch.where(mask, lbl, pseudo)
        weight = torch.where(mask, torch.ones_like(conf), (conf > self.cfg.threshold).float()).mean()
        losses["mix"] = weight * seg_ce(self.model(image).logits, label)
        return losses, SegStep(out_s, None, tuple(src["image"].shape[-2:]), tuple(tgt["image"].shape[-2:]))

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        a = min(1 - 1 / (step + 1), self.cfg.alpha)
        for t, s in zip(self.teacher.parameters(), self.model.parameters()):
            t.mul_(a).add_(s.detach(), alpha=1 - a)


def test_dacs_sketch_fits_the_seams(tmp_path, tiny):
    cfg = tiny("source_only_synthetic", "recipe.name=dacs_sketch", "trainer.max_iters=3")
    tr = Trainer(cfg, tmp_path)
    tr.build()
    teacher0 = [p.detach().clone() for p in tr.recipe.teacher.parameters()]
    students, steps = [], []
    orig = tr.recipe.after_step

    def spy(step):
        students.append([p.detach().clone() for p in tr.recipe.model.parameters()])
        steps.append(step)
        orig(step)

    tr.recipe.after_step = spy
    tr.fit()
    assert steps == [1, 2, 3]
    assert tr.recipe.teacher_modes == [False, False, False]  # carried: eval mode throughout
    opt_ids = {id(p) for e in tr.optimizers.values() for k, o in e.items() if not k.endswith("_sched")
               for g in o.param_groups for p in g["params"]}
    assert not opt_ids & {id(p) for p in tr.recipe.teacher.parameters()}  # never optimized
    expected = teacher0
    for step, student in zip(steps, students):  # EMA written out independently of the recipe
        a = min(1 - 1 / (step + 1), 0.99)
        expected = [a * t + (1 - a) * s for t, s in zip(expected, student)]
    for e, t in zip(expected, tr.recipe.teacher.parameters()):
        assert torch.allclose(e, t, atol=1e-6)
    assert not torch.equal(expected[0], teacher0[0])
    names = {k for k in load_checkpoint(tmp_path / "checkpoints" / "last.pt")["recipe"] if k.startswith("teacher.")}
    assert names == {f"teacher.{k}" for k in tr.recipe.teacher.state_dict()}  # checkpointed with the recipe


def test_dacs_sketch_resume_is_exact(tmp_path, tiny):
    over = ("recipe.name=dacs_sketch", "trainer.checkpoint_every=100", "optim.generator.total_iters=50")
    train(tiny("source_only_synthetic", "trainer.max_iters=4", *over), tmp_path / "a")
    train(tiny("source_only_synthetic", "trainer.max_iters=2", *over), tmp_path / "b")
    train(tiny("source_only_synthetic", "trainer.max_iters=4", *over), tmp_path / "b", resume=True)
    a, b = (load_checkpoint(tmp_path / r / "checkpoints" / "last.pt")["recipe"] for r in "ab")
    assert a.keys() == b.keys() and any(k.startswith("teacher.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a if isinstance(a[k], torch.Tensor))


def test_after_step_skips_a_skipped_step(tmp_path, tiny):
    calls = []

    def patch(tr):
        if tr.global_iter == 1:
            tr.recipe.after_step = calls.append
        if tr.global_iter == 2:
            orig = tr.recipe.seg_losses
            tr.recipe.seg_losses = lambda out, label: {k: v * float("nan") for k, v in orig(out, label).items()}

    train(tiny("source_only_synthetic", "trainer.max_iters=4", "trainer.nonfinite=skip"), tmp_path,
          callbacks={"on_step_end": [patch]})
    assert calls == [2]  # step 1 ran before the spy; steps 3 and 4 were skipped
