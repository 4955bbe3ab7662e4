"""Built-in configs of the adverse-condition settings: ``<recipe>_cityscapes_acdc``, ``<recipe>_cityscapes_darkzurich``
and their CPU stand-ins ``<recipe>_acdc_synthetic`` / ``<recipe>_darkzurich_synthetic`` for the recipes
``source_only``, ``daformer``, ``hrda`` and ``mic``.

Each is COMPOSED, not copied: the recipe's GTA5 → Cityscapes preset (for a stand-in: its ``*_synthetic`` preset)
with the data sets and the evaluation size of the setting's setup (`uda.config.setups.SETTINGS_SETUPS`), then
the dotted overrides of `SETTING_OVERRIDES`, applied with the ordinary override machinery
(`apply_overrides` on the plain dict, then `from_dict`). The values are those of the original code:

- DAFormer (Hoyer et al., CVPR 2022; its ``experiments.py`` experiment 8, "Further Datasets"): the GTA5 preset's
  training with Cityscapes at 1024x512 and the target at 960x540, 512x512 crops, evaluation of the whole 960x540
  image. DAFormer's code keeps its pseudo-label margins (top 15, bottom 120) on ACDC and Dark Zurich too.
- HRDA (Hoyer et al., ECCV 2022) and MIC (Hoyer et al., CVPR 2023; MIC's ``experiments.py`` experiment 80):
  Cityscapes at 2048x1024, the target at its native 1920x1080, 1024x1024 crops, sliding 1024x1024 windows with
  stride 512 over the 1920x1080 validation image, and no pseudo-label margins ("plcrop is only necessary for
  Cityscapes as target domains; ACDC and DarkZurich have no rectification artifacts").
- Dark Zurich's target is its night train split only (``rgb_anon/train/night`` in all three codes).

See docs/settings/acdc.md and docs/settings/darkzurich.md.

Example:
    >>> from uda.config import get_builtin
    >>> cfg = get_builtin("hrda_cityscapes_acdc")
    >>> cfg.data.target.size, cfg.recipe.terms["mix"]["pseudo_margins"], cfg.eval.mode, cfg.eval.size
    ('1920x1080', [0, 0, 0, 0], 'slide', '1920x1080')
"""

from __future__ import annotations

from collections.abc import Callable

from .convert import apply_overrides
from .loading import get_builtin, register_config
from .schema import ExperimentConfig
from .setups import SETTINGS_SETUPS

#: The recipes with presets on these settings (each composed from ``<recipe>_gta5_cityscapes`` / ``_synthetic``).
SETTINGS_RECIPES = ("source_only", "daformer", "hrda", "mic")

# HRDA/MIC's high-resolution data: Cityscapes at 2048x1024, the target at its native 1920x1080, sliding 1024x1024
# windows (stride 512, from the GTA5 preset) over the whole 1920x1080 validation image; no pseudo-label margins.
_HR = ["data.source.size=2048x1024", "data.target.size=1920x1080", "eval.mode=slide", "eval.size=1920x1080",
       "recipe.terms.mix.pseudo_margins=[0,0,0,0]"]
# MIC's `mask_mode='separate'` on these targets: the masked image is the target image without colour augmentation
_MIC = [*_HR, "recipe.terms.mic.augmentation=false"]

#: Per setting and recipe: the dotted ``KEY=VALUE`` changes on top of the composed preset (the recipe-specific
#: part of the original configs; the data sets and evaluation size come from the setting's setup).
SETTING_OVERRIDES: dict[str, dict[str, list[str]]] = {
    "cityscapes_acdc": {"source_only": [], "daformer": [], "hrda": list(_HR), "mic": list(_MIC)},
    "cityscapes_darkzurich": {"source_only": [], "daformer": [], "hrda": list(_HR), "mic": list(_MIC)},
    # the stand-ins keep the *_synthetic presets' sizes and schedules (tuned to the tiny models)
    "acdc_synthetic": {r: [] for r in SETTINGS_RECIPES},
    "darkzurich_synthetic": {r: [] for r in SETTINGS_RECIPES},
}

_TITLES = {"cityscapes_acdc": "Cityscapes -> ACDC", "cityscapes_darkzurich": "Cityscapes -> Dark Zurich (night)",
           "acdc_synthetic": "synthetic Cityscapes -> ACDC trees",
           "darkzurich_synthetic": "synthetic Cityscapes -> Dark Zurich trees"}


def settings_config(recipe: str, setting: str) -> ExperimentConfig:
    """``<recipe>_<setting>``: the recipe's preset with the setting's data, evaluation size and override table.

    Args:
        recipe: one of `SETTINGS_RECIPES`.
        setting: ``cityscapes_acdc``, ``cityscapes_darkzurich``, ``acdc_synthetic`` or ``darkzurich_synthetic``.

    Returns:
        The validated config.

    Example:
        >>> cfg = settings_config("daformer", "cityscapes_darkzurich")
        >>> cfg.data.target.options, cfg.recipe.crop, cfg.trainer.max_iters
        ({'times': ['night']}, '512x512', 40000)
    """
    synthetic = setting.endswith("_synthetic")
    data = get_builtin(f"{recipe}_synthetic" if synthetic else f"{recipe}_gta5_cityscapes").to_dict()
    setup = SETTINGS_SETUPS[setting]().to_dict()
    for part in ("source", "target", "val"):
        ds = setup["data"][part]
        if synthetic:  # the tiny models' sizes stay
            ds["size"] = data["data"][part]["size"]
        data["data"][part] = ds
    if not synthetic:
        data["eval"]["mode"], data["eval"]["size"] = setup["eval"]["mode"], setup["eval"]["size"]
    data["name"] = f"{recipe}_{setting}"
    data["description"] = f"{recipe} on {_TITLES[setting]}"
    apply_overrides(data, SETTING_OVERRIDES[setting][recipe])
    return ExperimentConfig.from_dict(data)


def _make(recipe: str, setting: str) -> Callable[[], ExperimentConfig]:
    def build() -> ExperimentConfig:
        return settings_config(recipe, setting)

    build.__doc__ = f"{recipe} on {_TITLES[setting]}."
    return build


for _setting in SETTINGS_SETUPS:
    for _recipe in SETTINGS_RECIPES:
        register_config(f"{_recipe}_{_setting}")(_make(_recipe, _setting))
