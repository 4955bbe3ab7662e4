"""Built-in HRDA and MIC configs: ``hrda_<setup>`` and ``mic_<setup>`` on the self-training (``dacs``) recipe.

Papers: Hoyer, Dai, Van Gool, "HRDA: Context-Aware High-Resolution Domain-Adaptive Semantic Segmentation",
ECCV 2022; Hoyer, Dai, Wang, Van Gool, "MIC: Masked Image Consistency for Context-Enhanced Domain Adaptation",
CVPR 2023 (MIC on HRDA). DAFormer's training (AdamW, warm-up, 40k iterations, EMA 0.999, rare-class sampling,
ImageNet feature distance) plus HRDA's multi-resolution parts; ``mic_*`` adds the masked consistency term.
See docs/recipes/hrda.md and docs/recipes/mic.md.
"""

from __future__ import annotations

from ..config.schema import ExperimentConfig, ModelConfig
from .loading import register_config
from .presets import MIT_B5_INIT, _self_training
from .setups import SETUPS

#: HRDA's training resolutions: 2× DAFormer's (GTA5 2560×1440, SYNTHIA 2560×1520, Cityscapes 2048×1024).
HR_SIZES = {"gta5_cityscapes": "2560x1440", "synthia_cityscapes": "2560x1520"}
#: MIC's term: 64×64 blocks, mask ratio 0.7, λ 1.
MIC_OPTIONS = {"ratio": 0.7, "block": 64}
#: MIC's blocks on the synthetic pair: 8 × 4 per 256×128 image (MIC: 8 × 8 per 512 crop on DAFormer, 16 × 16 per
#: 1024 crop on HRDA); the runs that chose it: docs/benchmarks.md, "Tuning history of the synthetic presets".
MIC_TINY_BLOCK = 32


def hrda_config(setup: str, mic: bool = False) -> ExperimentConfig:
    """``hrda_<setup>`` (or ``mic_<setup>`` with ``mic=True``): DAFormer's preset with HRDA's (and MIC's) parts.

    Example:
        >>> cfg = hrda_config("gta5_cityscapes", mic=True)
        >>> cfg.model.name, cfg.recipe.crop, list(cfg.recipe.terms), cfg.eval.mode
        ('hrda_mitb5', '1024x1024', ['fd', 'mix', 'mic'], 'slide')
    """
    cfg = _self_training(setup, daformer=True)
    method = "mic" if mic else "hrda"
    cfg.name = f"{method}_{setup}"
    rc = cfg.recipe
    rc.detail_weight = 0.1
    if mic:  # MIC's term, sharing the self-training term's teacher and pseudo-labels
        rc.terms["mic"] = {"kind": "mic", "weight": 1.0, **MIC_OPTIONS}
    if setup == "synthetic":
        _tiny(cfg)
        cfg.description = f"{method.upper()} (tiny HRDA{' + MIC' if mic else ''}) on the built-in synthetic pair"
        return cfg
    cfg.model = ModelConfig(name="hrda_mitb5", num_classes=19, pretrained=MIT_B5_INIT)
    cfg.data.source.size = HR_SIZES[setup]
    cfg.data.target.size = "2048x1024"
    rc.crop = "1024x1024"
    rc.rcs_min_crop_ratio = 2.0
    rc.terms["mix"]["pseudo_margins"] = [30, 240, 30, 30]
    # sliding 1024x1024 windows with stride 512 over the full-resolution 2048x1024 image
    cfg.eval.mode, cfg.eval.size, cfg.eval.crop, cfg.eval.stride = "slide", "2048x1024", "1024x1024", "512x512"
    cfg.description = (f"{'MIC on ' if mic else ''}HRDA (MiT-B5, multi-resolution 1024 crops, scale attention) "
                       f"on {SETUPS[setup]().data.source.name.upper()} -> Cityscapes")
    return cfg


def _tiny(cfg: ExperimentConfig) -> None:
    """CPU size on the built-in pair: the scenes rendered at 2× (256×128, val too), whole images, 128×128 detail crops.

    The context view is then the whole scene at 128×64, DAFormer's synthetic input, and the detail crop spans the
    image height (tuned with seed 0; see docs/recipes/hrda.md).
    """
    cfg.model = ModelConfig(name="hrda_tiny", num_classes=19, pretrained=None, options={"detail_size": 128})
    for ds in (cfg.data.source, cfg.data.target, cfg.data.val):
        ds.size = "256x128"
    cfg.recipe.crop = None  # whole 256x128 images (128x128 crops scored lower: docs/benchmarks.md, "Tuning history")
    cfg.trainer.max_iters = 800  # as daformer_synthetic
    if "mic" in cfg.recipe.terms:
        # MIC's λ 1 and ratio 0.7; blocks scaled to the image (docs/recipes/mic.md; runs: docs/benchmarks.md)
        cfg.recipe.terms["mic"]["block"] = MIC_TINY_BLOCK
    # whole 256x128 images; the model slides its 128x128 detail windows (stride 64) itself
    cfg.eval.mode, cfg.eval.size = "resize", "256x128"


def advent_mic_config(setup: str) -> ExperimentConfig:
    """``advent_mic_<setup>``: AdvEnt on DeepLab-v2 plus MIC as a recipe term with its own EMA teacher (α 0.999).

    Example:
        >>> advent_mic_config("synthetic").recipe.terms["mic"]["kind"]
        'mic'
    """
    from .loading import get_builtin

    cfg = get_builtin(f"advent_{setup}")
    cfg.name = f"advent_mic_{setup}"
    block = 8 if setup == "synthetic" else 64
    cfg.recipe.terms["mic"] = {"kind": "mic", "weight": 1.0, "ratio": 0.7, "block": block}
    cfg.description = f"AdvEnt + MIC (masked image consistency term) on {cfg.description}"
    return cfg


for _setup in SETUPS:
    register_config(f"advent_mic_{_setup}")((lambda s: lambda: advent_mic_config(s))(_setup))
    for _mic in (False, True):
        register_config(f"{'mic' if _mic else 'hrda'}_{_setup}")((lambda s, m: lambda: hrda_config(s, m))(_setup, _mic))
