"""Built-in experiment configs (kind ``config``): ``<recipe>_<setup>`` = a setup base + a few recipe lines.

``uda list config`` lists them; ``uda config show NAME`` prints one resolved.

``<recipe>_<paper setup>_faithful`` (AdaptSegNet, ADVENT, MinEnt on GTA5/SYNTHIA → Cityscapes) reproduce the
released code of AdaptSegNet (Tsai et al., CVPR 2018) and ADVENT (Vu et al., CVPR 2019) where it departs from
our defaults: BatchNorm running statistics updated in training (affine frozen), the 1× parameter group with
tensors repeated as the originals list them, and, for AdaptSegNet, the classifier that sums only its first two
branches (its released checkpoints were trained so). See docs/training.md and docs/recipes/.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .convert import from_dict
from .loading import register_config
from .schema import ExperimentConfig, ModelConfig, OptimizerConfig, RecipeConfig
from .setups import SETUPS


def recipe_config(name: str, **fields: Any) -> RecipeConfig:
    """The recipe section ``{name: NAME, **fields}``, as the recipe's own config class (resolved by name when a
    preset is built, so this package imports no recipe).

    Example:
        >>> recipe_config("advent", discriminator="fc_tiny").discriminator
        'fc_tiny'
    """
    return from_dict(RecipeConfig, {"name": name, **fields}, prefix="recipe")

# Stage 1 (CycleGAN) on the paper setups, following the CycleGAN/CyCADA practice for GTA5 -> Cityscapes:
# random 452x452 crops of the (1280x720 / 1280x760) source and (1024x512) target images; weights N(0, 0.02)
# (in the translator); constant lr for the first half, then linear decay to 0 (recipe.translator_decay_start
# = 0.5, resolved from translator_iters when the run starts). Length: 100k iterations at batch 1 (~4 GTA5
# epochs), shorter than CyCADA's 10 + 10 epochs at batch 4 (~125k iterations at batch 4, 500k images) to keep
# stage 1 near a GPU-day; recipe.translator_iters=500000 sees as many images. Or reuse a trained translator
# (recipe.translator_checkpoint) or a translated cache (recipe.translated_root).
_PAPER_TRANSLATOR = {"translator": "cyclegan", "translator_iters": 100000, "translator_crop": "452x452"}
_TINY_TRANSLATOR = {"translator": "cyclegan_tiny", "translator_iters": 300, "translator_crop": "64x64"}


def _translation(setup: str) -> dict:
    return dict(_TINY_TRANSLATOR if setup == "synthetic" else _PAPER_TRANSLATOR)


def _mlfa(setup: str, **kw) -> RecipeConfig:
    cfg = recipe_config("mlfa", **_translation(setup), **kw)
    if setup == "synthetic":
        cfg.discriminator = "feature_tiny"
        cfg.fru_options = {"groups": 8}
    return cfg


def _adversarial(name: str, setup: str) -> RecipeConfig:
    return recipe_config(name, discriminator="fc_tiny") if setup == "synthetic" else recipe_config(name)


RECIPES: dict[str, Callable[[str], RecipeConfig]] = {
    "source_only": lambda s: recipe_config("source_only"),
    "adaptsegnet": lambda s: _adversarial("adaptsegnet", s),
    "advent": lambda s: _adversarial("advent", s),
    "minent": lambda s: recipe_config("minent"),
    "cyclegan": lambda s: recipe_config("cyclegan", **_translation(s)),
    # β = 0.01 swaps no frequency at all on 128x64 images (half-size floor(0.01·64) = 0): the synthetic preset
    # uses the paper's largest β, 0.09 (a 5-pixel band).
    "fda": lambda s: recipe_config("fda", **({"translator_options": {"beta": 0.09}} if s == "synthetic" else {})),
    "mlfa": lambda s: _mlfa(s),
    # MLFA ablations: is feature-level alignment worth it next to translation?
    "mlfa_no_translation": lambda s: _mlfa(s, translation=False),
    "mlfa_no_feature_alignment": lambda s: _mlfa(s, feature_alignment="none"),
    "mlfa_output_level": lambda s: _mlfa(s, feature_alignment="output",
                                         discriminator="fc_tiny" if s == "synthetic" else "fc"),
}


def _make(recipe: str, setup: str) -> Callable[[], ExperimentConfig]:
    def build() -> ExperimentConfig:
        cfg = SETUPS[setup]()
        cfg.name = f"{recipe}_{setup}"
        cfg.recipe = RECIPES[recipe](setup)
        cfg.description = f"{recipe} on {cfg.description}"
        return cfg

    build.__doc__ = f"{recipe} on the {setup} setup."
    return build


for _recipe in RECIPES:
    for _setup in SETUPS:
        register_config(f"{_recipe}_{_setup}")(_make(_recipe, _setup))

#: Recipes whose released code (AdaptSegNet's and ADVENT's DeepLab-v2 scripts) the faithful presets follow.
FAITHFUL_RECIPES = ("adaptsegnet", "advent", "minent")
PAPER_SETUPS = ("gta5_cityscapes", "synthia_cityscapes")


def make_faithful(cfg: ExperimentConfig) -> ExperimentConfig:
    """Turn a paper preset into its exact-reproduction variant (in place; returns it).

    Moving BN statistics (``model.options.bn_mode=moving``), the originals' duplicated 1× parameter list
    (``optim.generator.faithful_duplicate_params``), and for AdaptSegNet the two-branch classifier of its release
    (``model.options.classifier_branches=2``).

    Example:
        >>> from uda.config import get_builtin
        >>> get_builtin("adaptsegnet_gta5_cityscapes_faithful").model.options
        {'bn_mode': 'moving', 'classifier_branches': 2}
    """
    cfg.model.options = dict(cfg.model.options, bn_mode="moving")
    if cfg.recipe.name == "adaptsegnet":
        cfg.model.options["classifier_branches"] = 2
    cfg.optim.generator.faithful_duplicate_params = True
    cfg.name = f"{cfg.name}_faithful"
    cfg.description = f"{cfg.description}; faithful to the released code"
    return cfg


def _make_faithful(recipe: str, setup: str) -> Callable[[], ExperimentConfig]:
    def build() -> ExperimentConfig:
        return make_faithful(_make(recipe, setup)())

    build.__doc__ = f"{recipe} on the {setup} setup, faithful to the released code."
    return build


for _recipe in FAITHFUL_RECIPES:
    for _setup in PAPER_SETUPS:
        register_config(f"{_recipe}_{_setup}_faithful")(_make_faithful(_recipe, _setup))

# --- self-training: DACS (Tranheden et al., WACV 2021) and DAFormer (Hoyer et al., CVPR 2022) ---------------------
#: Where the DAFormer configs expect SegFormer's ImageNet init of the MiT-B5 encoder.
MIT_B5_INIT = "weights/mit_b5.pth"


def _self_training(setup: str, daformer: bool) -> ExperimentConfig:
    """DACS's own setup (DeepLab-v2 R101, SGD) or DAFormer's (MiT-B5, AdamW + warm-up, RCS, FD) on ``setup``."""
    cfg = SETUPS[setup]()
    method = "daformer" if daformer else "dacs"
    cfg.name = f"{method}_{setup}"
    synthetic = setup == "synthetic"
    cfg.data.batch_size = 2 if not synthetic else cfg.data.batch_size
    if daformer:
        cfg.recipe = recipe_config("dacs", terms={
            "fd": {"kind": "feature_distance", "weight": 0.005},
            "mix": {"kind": "self_training", "alpha": 0.999, "mix_classes": "batch", "pseudo_margins": [15, 120, 0, 0]},
        }, rcs=True, crop="512x512", cat_max_ratio=0.75, flip=True)
        cfg.model = ModelConfig(name="daformer_mitb5", num_classes=19, pretrained=MIT_B5_INIT)
        cfg.optim.generator = OptimizerConfig(
            name="adamw", lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01, head_lr_mult=10.0, schedule="poly",
            power=1.0, total_iters=None, warmup_iters=1500, warmup_ratio=1e-6, no_decay_keys=["norm", "pos_block"])
        cfg.trainer.max_iters = 40000
        cfg.trainer.checkpoint_every = 4000
        cfg.trainer.eval_every = 4000
        cfg.eval.mode, cfg.eval.size = "resize", "1024x512"  # whole image at 1024x512
        cfg.eval.resize_interpolation, cfg.eval.align_corners = "bilinear", False  # as mmseg's test pipeline
        cfg.description = f"DAFormer (MiT-B5, rare-class sampling, ImageNet feature distance) on {cfg.description}"
    else:
        cfg.recipe = recipe_config("dacs", terms={"mix": {"kind": "self_training", "alpha": 0.99, "mix_classes": "image"}},
                                   crop="512x512", cat_max_ratio=1.0, flip=False)
        cfg.model.options = {"multi_level": False}
        cfg.optim.generator = OptimizerConfig(name="sgd", lr=2.5e-4, momentum=0.9, weight_decay=5e-4,
                                              head_lr_mult=10.0, schedule="poly", power=0.9, total_iters=None)
        cfg.trainer.max_iters = 250000
        cfg.description = f"DACS (DeepLab-v2 ResNet-101, ClassMix, EMA teacher) on {cfg.description}"
    if synthetic:
        _tiny_self_training(cfg, daformer)
    return cfg


def _tiny_self_training(cfg: ExperimentConfig, daformer: bool) -> None:
    """CPU-sized versions on the built-in 128x64 pair (tuned with fixed seeds; see docs/recipes/daformer.md)."""
    rc = cfg.recipe
    rc.crop = None  # the pair is 128x64: whole images
    rc.terms["mix"]["pseudo_margins"] = [0, 0, 0, 0]
    rc.rcs_min_pixels = 30
    if daformer:
        cfg.model = ModelConfig(name="daformer_tiny", num_classes=19, pretrained=None)
        cfg.optim.generator = OptimizerConfig(
            name="adamw", lr=2e-3, betas=(0.9, 0.999), weight_decay=0.01, head_lr_mult=10.0, schedule="poly",
            power=1.0, total_iters=None, warmup_iters=50, warmup_ratio=1e-6, no_decay_keys=["norm", "pos_block"])
        cfg.trainer.max_iters = 800  # how it was chosen: docs/benchmarks.md, "Tuning history of the synthetic presets"
        rc.terms["mix"]["alpha"] = 0.99
        del rc.terms["fd"]  # no ImageNet init to stay close to on random weights
        rc.rcs = False
    else:
        cfg.model = ModelConfig(name="deeplabv2_tiny", num_classes=19, pretrained=None, options={"multi_level": False})
        cfg.optim.generator = OptimizerConfig(name="sgd", lr=2.5e-3, momentum=0.9, weight_decay=5e-4,
                                              head_lr_mult=10.0, total_iters=None)
        cfg.trainer.max_iters = 400
    cfg.trainer.checkpoint_every = 200
    cfg.trainer.eval_every = 0
    cfg.eval.mode, cfg.eval.size = "resize", "128x64"


for _setup in SETUPS:
    for _daformer in (False, True):
        _n = f"{'daformer' if _daformer else 'dacs'}_{_setup}"
        register_config(_n)((lambda s, d: lambda: _self_training(s, d))(_setup, _daformer))


# --- foundation-model self-training: VFM-UDA (Englert et al., CVPRW 2024) / VFM-UDA++ (Englert & Dubbelman, 2025) ----
#: Where the VFM-UDA configs expect the official DINOv2 ViT-L/14-with-registers release (or timm's file of it).
DINOV2_L_REG4_INIT = "weights/dinov2_vitl14_reg4_pretrain.pth"


def _vfm_uda(setup: str) -> ExperimentConfig:
    """VFM-UDA++'s values on ``setup``: DINOv2 ViT-L/14 + registers under DAFormer-style self-training.

    ``data.batch_size`` is per process: 2 per GPU x 4 GPUs under torchrun = the papers' total batch 8; on one GPU
    add ``trainer.grad_accum=4`` (docs/recipes/vfm_uda.md).
    """
    cfg = SETUPS[setup]()
    cfg.name = f"vfm_uda_{setup}"
    cfg.recipe = recipe_config("dacs", terms={
        # the distance to the frozen initial encoder on source and target, every pixel
        "fd": {"kind": "feature_distance", "weight": 0.1, "classes": None, "target": True, "level": "stage3"},
        "mix": {"kind": "self_training", "alpha": 0.999, "mix_classes": "batch", "pseudo_margins": [0, 0, 0, 0]},
        "mic": {"kind": "mic", "weight": 1.0, "ratio": 0.7, "block": 14, "fill": "zero"},  # token masking
    }, rcs=True, crop="1024x1024", cat_max_ratio=0.75, flip=True)
    cfg.model = ModelConfig(name="vfm", num_classes=19, pretrained=DINOV2_L_REG4_INIT,
                            options={"backbone": "vit_large_patch14_reg4_dinov2", "activation_checkpointing": True})
    cfg.optim.generator = OptimizerConfig(
        name="adamw", lr=1e-5, betas=(0.9, 0.999), weight_decay=0.01, head_lr_mult=1.0, encoder_lr_mult=0.1,
        layer_decay=0.9, schedule="poly", power=1.0, total_iters=None, warmup_iters=1500, warmup_ratio=1e-6)
    cfg.data.batch_size = 2  # per process; x 4 processes = 8
    cfg.trainer.max_iters = 40000
    cfg.trainer.checkpoint_every = 4000
    cfg.trainer.eval_every = 4000
    if setup != "synthetic":
        # 1024 crops from the high-resolution images (HRDA's sizes: GTA5 2560x1440, SYNTHIA 2560x1520, CS 2048x1024)
        cfg.data.source.size = {"gta5_cityscapes": "2560x1440", "synthia_cityscapes": "2560x1520"}[setup]
        cfg.data.target.size = "2048x1024"
        cfg.eval.mode, cfg.eval.size, cfg.eval.crop, cfg.eval.stride = "slide", "2048x1024", "1024x1024", "512x512"
        cfg.description = f"VFM-UDA++ (DINOv2 ViT-L/14 + registers, masking, DINOv2 feature distance) on {setup}"
    else:
        _tiny_vfm_uda(cfg)
    return cfg


def _tiny_vfm_uda(cfg: ExperimentConfig) -> None:
    """A CPU-sized version on the built-in 128x64 pair: ``vfm_tiny`` (random init), whole images, short schedule."""
    rc = cfg.recipe
    rc.crop, rc.rcs, rc.terms["mix"]["alpha"] = None, False, 0.99
    rc.rcs_min_pixels = 30
    # no frozen foundation model to stay close to on random weights (runs: docs/benchmarks.md, "Tuning history")
    del rc.terms["fd"]
    cfg.model = ModelConfig(name="vfm_tiny", num_classes=19, pretrained=None)
    cfg.optim.generator = OptimizerConfig(
        name="adamw", lr=2e-3, betas=(0.9, 0.999), weight_decay=0.01, head_lr_mult=1.0, encoder_lr_mult=0.5,
        layer_decay=0.9, schedule="poly", power=1.0, total_iters=None, warmup_iters=50, warmup_ratio=1e-6)
    cfg.data.batch_size = 4
    cfg.trainer.max_iters = 600
    cfg.trainer.checkpoint_every = 200
    cfg.trainer.eval_every = 0
    cfg.eval.mode, cfg.eval.size = "resize", "128x64"
    cfg.description = "VFM-UDA (tiny random-init ViT, masked target term) on the built-in synthetic pair"


for _setup in SETUPS:
    register_config(f"vfm_uda_{_setup}")((lambda s: lambda: _vfm_uda(s))(_setup))
