"""The `Term` seam: terms added in code or as data, refusals, earlier configs and checkpoints, config traps."""

from __future__ import annotations

import warnings

import pytest
import torch

import uda
from uda._errors import ConfigError
from uda.config import RecipeConfig, from_dict, get_builtin, load_config
from uda.recipes.dacs import DACS, DACSConfig, dacs_config
from uda.term import SegStep, Term

C = 4


def _model():
    torch.manual_seed(0)
    return uda.create("model", "deeplabv2_tiny", num_classes=C, width=4, multi_level=False)


def _batch():
    g = torch.Generator().manual_seed(1)
    return ({"image": torch.rand(2, 3, 32, 32, generator=g), "label": torch.randint(0, C, (2, 32, 32), generator=g)},
            {"image": torch.rand(2, 3, 32, 32, generator=g)})


class DACSWithEntropyD(DACS):
    """A DACS variant that adds an AdvEnt discriminator in code (formerly ignored, and its D phase crashed)."""

    def __init__(self, cfg, model, **kw):
        super().__init__(cfg, model, **kw)
        self.add_term("adv", self.build_term("entropy", levels={"logits": 1e-3}, discriminator="fc_tiny"))


def test_a_term_added_in_code_to_dacs_trains_in_both_phases():
    recipe = DACSWithEntropyD(DACSConfig(), _model(), num_classes=C)
    losses, step = recipe.generator_losses(*_batch())
    assert sorted(losses) == ["adv_logits", "mix", "seg"]
    d = recipe.discriminator_losses(step)
    assert sorted(d) == ["adv_d_logits"] and d["adv_d_logits"].requires_grad
    assert {id(p) for p in recipe.discriminator_parameters()} == {id(p) for p in recipe.adv.parameters()}
    assert recipe.adv.discriminators["logits"] in recipe.frozen_in_generator_phase()
    for m in recipe.trained_modules():
        m.train()
    assert recipe.adv.training and recipe.mix.training and not recipe.mix.teacher.training


def test_the_target_output_is_computed_only_when_a_term_reads_it():
    recipe = uda.create("recipe", "dacs", cfg=DACSConfig(), model=_model(), num_classes=C)
    calls = []
    recipe.model.register_forward_hook(lambda *_: calls.append(1))
    _, step = recipe.generator_losses(*_batch())
    assert not step.has_target and len(calls) == 2  # source + mixed; the teacher is another network
    assert recipe.discriminator_losses(step) == {} and not step.has_target
    _ = step.target
    assert step.has_target and len(calls) == 3


def test_refusals_name_the_fix():
    model = _model()
    with pytest.raises(ConfigError, match=r"unknown term kind .nope.*self_training"):
        uda.create("recipe", "dacs", cfg=DACSConfig(terms={"x": {"kind": "nope"}}), model=model, num_classes=C)
    recipe = uda.create("recipe", "dacs", cfg=DACSConfig(), model=model, num_classes=C)
    with pytest.raises(ConfigError, match=r"not a loss term; subclass uda\.Term"):
        recipe.add_term("plain", torch.nn.Linear(2, 2))
    with pytest.raises(ConfigError, match="'mix' is taken"):
        recipe.add_term("mix", Term())
    with pytest.raises(ConfigError, match="give its 'kind'"):
        DACSConfig(terms={"x": {"weight": 1.0}})


def test_flat_keys_of_earlier_configs_become_terms():
    cfg = from_dict(RecipeConfig, {"name": "dacs", "alpha": 0.999, "fd_weight": 0.005, "fd_classes": None,
                                   "mic_weight": 1.0, "mic_options": {"block": 8}, "pseudo_margins": [1, 2, 0, 0]})
    assert list(cfg.terms) == ["fd", "mix", "mic"]  # the distance before the teacher, MIC after the mixed loss
    assert cfg.terms["fd"] == {"kind": "feature_distance", "weight": 0.005, "classes": None}
    assert cfg.terms["mix"] == {"kind": "self_training", "alpha": 0.999, "pseudo_margins": [1, 2, 0, 0]}
    assert cfg.terms["mic"] == {"kind": "mic", "weight": 1.0, "block": 8}
    off = load_config("daformer_gta5_cityscapes", ["recipe.fd_weight=0", "recipe.fd_classes=[1]"]).recipe
    assert list(off.terms) == ["mix"]  # λ 0 removes the term; its other options are moot, as before
    assert dacs_config(mic_weight=0.0).terms == {"mix": {"kind": "self_training"}}


def test_dotted_overrides_reach_into_terms_and_null_removes_one():
    cfg = load_config("mic_synthetic", ["recipe.terms.mix.alpha=0.9", "recipe.terms.mic=null",
                                        "recipe.terms.ent={kind: minent, levels: {logits: 0.001}}"])
    assert list(cfg.recipe.terms) == ["mix", "ent"] and cfg.recipe.terms["mix"]["alpha"] == 0.9


def test_checkpoints_of_earlier_versions_load(tmp_path):
    """The key layout of 0.1.0 (``teacher.``, ``feature_distance.``, the MIC aligner's ``mic_teacher.``) loads."""
    cfg = dacs_config(fd_weight=0.5, mic_weight=1.0, mic_options={"block": 8})
    recipe = uda.create("recipe", "dacs", cfg=cfg, model=_model(), num_classes=C)
    with torch.no_grad():
        for p in recipe.mix.teacher.parameters():
            p.add_(1.0)
    new = recipe.state_dict()
    old = {k.replace("mix.teacher.", "teacher.", 1).replace("fd.distance.", "feature_distance.", 1): v
           for k, v in new.items()}
    assert any(k.startswith("teacher.") for k in old) and any(k.startswith("feature_distance.") for k in old)
    fresh = uda.create("recipe", "dacs", cfg=cfg, model=_model(), num_classes=C)
    fresh.load_state_dict(old)
    for k, v in fresh.state_dict().items():
        assert not isinstance(v, torch.Tensor) or torch.equal(v, new[k]), k
    advent = from_dict(RecipeConfig, {"name": "advent", "discriminator": "fc_tiny",
                                      "terms": [{"name": "mic", "kind": "mic", "block": 8}]})  # 0.1.0's list form
    a = uda.create("recipe", "advent", cfg=advent, model=_model(), num_classes=C)
    state = {k.replace("mic.teacher.", "mic_teacher.", 1): v for k, v in a.state_dict().items()}
    uda.create("recipe", "advent", cfg=advent, model=_model(), num_classes=C).load_state_dict(state)


def test_switching_the_recipe_keeps_the_options_both_have():
    with pytest.warns(UserWarning, match=r"has no option\(s\) fru_options, translator"):
        cfg = load_config("mlfa_synthetic", ["recipe.name=advent"])
    assert cfg.recipe.name == "advent" and cfg.recipe.discriminator == "feature_tiny"  # the preset's choice
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fda = load_config("fda_synthetic", ["recipe.name=mlfa"]).recipe
    # what fda_synthetic chose (β 0.09) is kept; what it left at FDA's defaults (translator: fda) is MLFA's own
    assert fda.translator_options == {"beta": 0.09} and fda.translator == "cyclegan"
    # cfg.replace follows the same rules: a list of named terms adds to the preset's terms
    cfg = get_builtin("daformer_synthetic").replace(**{"recipe.terms": [{"name": "ent", "kind": "minent"}]})
    assert list(cfg.recipe.terms) == ["mix", "ent"]
    mix = get_builtin("daformer_synthetic").recipe.terms["mix"]
    assert cfg.replace(**{"trainer.max_iters": 5}).recipe.terms["mix"] == mix


def test_a_six_line_user_term_trains_with_any_recipe():
    class Entropy(Term):
        needs_target_output = True

        def generator_loss(self, step: SegStep):
            p = step.target.logits.softmax(1)
            return {"ent": -(p * p.clamp_min(1e-8).log()).sum(1).mean()}

    recipe = uda.create("recipe", "dacs", cfg=DACSConfig(), model=_model(), num_classes=C)
    recipe.add_term("ent", Entropy())
    losses, step = recipe.generator_losses(*_batch())
    assert sorted(losses) == ["ent", "mix", "seg"] and step.has_target
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in recipe.model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", ["deeplabv2_tiny", "daformer_tiny", "hrda_tiny", "vfm_tiny"])
def test_the_feature_distance_runs_no_head_of_its_frozen_network(name):
    torch.manual_seed(0)
    kw = {"width": 4, "multi_level": True} if name == "deeplabv2_tiny" else {}
    model = uda.create("model", name, num_classes=19, **kw).eval()
    recipe = uda.create("recipe", "dacs", cfg=dacs_config(fd_weight=1.0, fd_classes=None), model=model,
                        num_classes=19)
    frozen = recipe.fd.distance.frozen
    base = frozen.base if hasattr(frozen, "base") else frozen
    heads = [m for n, m in base.named_children() if n in ("head", "aux_head") and m is not None]
    calls = []
    for h in heads:
        h.register_forward_hook(lambda *_: calls.append(1))
    x = torch.rand(1, 3, 64, 64)
    feats = frozen.forward_features(x)
    assert heads and not calls and "logits" not in feats
    full = frozen(x).features  # the same tensors as the full forward's (which runs the heads)
    assert calls and all(torch.equal(feats[k], full[k]) for k in feats)
    calls.clear()
    src = {"image": x, "label": torch.full((1, 64, 64), 13)}
    recipe.generator_losses(src, {"image": torch.rand(1, 3, 64, 64)})
    assert not calls
