"""HRDA in the self-training recipe: fused + 0.1 · detail losses, the feature distance on the context view, the
HRDA/MIC presets — each against a computation written here in plain PyTorch or the papers' values."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

import uda
from uda.config import get_builtin
from uda.recipes.dacs import dacs_config as DACSConfig
from uda.selftraining.hrda import ContextEncoder, multires_ce

C = 5


def _hrda():
    torch.manual_seed(1)
    return uda.create("model", "hrda_tiny", num_classes=C)


def _ce(logits, label, weight=None):
    up = F.interpolate(logits, size=label.shape[-2:], mode="bilinear", align_corners=False)
    ce = F.cross_entropy(up, label, reduction="none", ignore_index=255)
    return (ce if weight is None else ce * weight).mean()


def test_multires_ce_is_fused_plus_weighted_detail_on_the_crop():
    m = _hrda()
    g = torch.Generator().manual_seed(0)
    x, label = torch.rand(2, 3, 64, 64, generator=g), torch.randint(0, C, (2, 64, 64), generator=g)
    weight = torch.rand(2, 64, 64, generator=g)
    out = m(x, detail_box=(8, 40, 16, 48))
    parts = multires_ce(out, label, weight, detail_weight=0.1)
    torch.testing.assert_close(parts[""], _ce(out.logits, label, weight))
    torch.testing.assert_close(parts["detail"], 0.1 * _ce(out.detail_logits, label[:, 8:40, 16:48],
                                                            weight[:, 8:40, 16:48]))
    assert sorted(multires_ce(out, label, detail_weight=0.0)) == [""]  # off
    plain = uda.create("model", "daformer_tiny", num_classes=C)
    assert sorted(multires_ce(plain(x), label)) == [""]  # any other model: the plain loss


def test_recipe_source_loss_equals_fused_and_detail_losses_by_hand():
    torch.set_num_threads(1)
    model = _hrda()
    recipe = uda.create("recipe", "dacs", cfg=DACSConfig(strong_augmentation=False), model=model, num_classes=C)
    ref = copy.deepcopy(model)
    g = torch.Generator().manual_seed(2)
    src = {"image": torch.rand(2, 3, 64, 64, generator=g), "label": torch.randint(0, C, (2, 64, 64), generator=g)}
    tgt = {"image": torch.rand(2, 3, 64, 64, generator=g)}
    torch.manual_seed(3)
    losses, _ = recipe.generator_losses(src, tgt)
    assert sorted(losses) == ["mix", "mix_detail", "seg", "seg_detail"]
    torch.manual_seed(3)  # the same dropout draws and random detail box for the source forward
    out = ref(src["image"])
    y0, y1, x0, x1 = out.detail_box
    torch.testing.assert_close(losses["seg"], _ce(out.logits, src["label"]))
    torch.testing.assert_close(losses["seg_detail"], 0.1 * _ce(out.detail_logits, src["label"][:, y0:y1, x0:x1]))


def test_feature_distance_compares_the_context_view_features():
    torch.set_num_threads(1)
    model = _hrda().eval()  # no dropout: the student equals its frozen ImageNet copy at step 0
    cfg = DACSConfig(fd_weight=1.0, fd_classes=None)
    recipe = uda.create("recipe", "dacs", cfg=cfg, model=model, num_classes=C)
    assert isinstance(recipe.fd.distance.frozen, ContextEncoder)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    feats = model(x).features[recipe.fd.level]
    assert recipe.fd.distance(feats, x).item() == 0.0
    # by hand: the base network on the input downscaled by 0.5
    lr = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
    torch.testing.assert_close(feats, model.base(lr).features[recipe.fd.level], rtol=1e-4, atol=1e-4)
    moved = feats + 1.0
    expect = torch.linalg.vector_norm(moved - feats, dim=1).mean()
    torch.testing.assert_close(recipe.fd.distance(moved, x), expect)


def test_paper_presets_carry_the_papers_values():
    for name, source_size in (("hrda_gta5_cityscapes", "2560x1440"), ("hrda_synthia_cityscapes", "2560x1520"),
                              ("mic_gta5_cityscapes", "2560x1440"), ("mic_synthia_cityscapes", "2560x1520")):
        cfg = get_builtin(name)
        rc = cfg.recipe
        assert cfg.model.name == "hrda_mitb5"
        assert (cfg.data.source.size, cfg.data.target.size, rc.crop) == (source_size, "2048x1024", "1024x1024")
        mix = rc.terms["mix"]
        assert (mix["alpha"], rc.detail_weight, rc.rcs, rc.rcs_min_crop_ratio) == (0.999, 0.1, True, 2.0)
        assert mix["pseudo_margins"] == [30, 240, 30, 30] and rc.terms["fd"] == {"kind": "feature_distance",
                                                                                 "weight": 0.005}
        assert (cfg.eval.mode, cfg.eval.crop, cfg.eval.stride) == ("slide", "1024x1024", "512x512")
        assert cfg.trainer.max_iters == 40000 and cfg.data.batch_size == 2
        g = cfg.optim.generator
        assert (g.name, g.lr, g.weight_decay, g.head_lr_mult, g.warmup_iters) == ("adamw", 6e-5, 0.01, 10.0, 1500)
        if name.startswith("mic"):  # after the self-training term, whose teacher it shares
            assert list(rc.terms) == ["fd", "mix", "mic"]
            assert rc.terms["mic"] == {"kind": "mic", "weight": 1.0, "ratio": 0.7, "block": 64}
        else:
            assert list(rc.terms) == ["fd", "mix"]


def test_synthetic_presets_context_view_is_daformer_synthetics_input():
    # hrda_synthetic trains on whole 2x-rendered images: the context view is the whole scene at the size
    # daformer_synthetic trains on, and the detail crop spans the image height (docs/recipes/hrda.md)
    daformer = get_builtin("daformer_synthetic")
    for name in ("hrda_synthetic", "mic_synthetic"):
        cfg = get_builtin(name)
        assert cfg.recipe.crop is None and cfg.data.source.size == cfg.data.val.size == "256x128"
        model = uda.create("model", cfg.model.name, num_classes=19, **cfg.model.options).train()
        base = uda.create("model", daformer.model.name, num_classes=19).train()
        with torch.no_grad():
            out = model(torch.rand(1, 3, 128, 256))
            ref = base(torch.rand(1, 3, 64, 128))
        assert out.context_logits.shape == ref.logits.shape
        y0, y1, x0, x1 = out.detail_box
        assert (y0, y1) == (0, 128) and x1 - x0 == 128
        assert (cfg.eval.mode, cfg.eval.size) == ("resize", "256x128")
    mic = get_builtin("mic_synthetic").recipe
    assert mic.terms["mic"] == {"kind": "mic", "weight": 1.0, "ratio": 0.7, "block": 32}
