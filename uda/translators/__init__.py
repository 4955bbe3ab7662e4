"""Image translators (kind ``translator``): ``identity``, ``fda`` (FDA), ``cyclegan`` / ``cyclegan_tiny``
(CycleGAN), plus the translated-dataset cache ([`translate_dataset`][uda.translators.cache.translate_dataset]) and translator checkpoints."""

from ._base import IdentityTranslator, Translator
from .cache import (
    load_translator,
    save_sample_grid,
    save_translator,
    translate_dataset,
    translator_checkpoint,
    translator_state_dict,
    write_png,
)
from .cyclegan import CycleGAN, ImagePool, ResnetGenerator, cyclegan_tiny
from .fda import FDATranslator, low_freq_mutate

__all__ = [
    "CycleGAN",
    "FDATranslator",
    "IdentityTranslator",
    "ImagePool",
    "ResnetGenerator",
    "Translator",
    "cyclegan_tiny",
    "load_translator",
    "low_freq_mutate",
    "save_sample_grid",
    "save_translator",
    "translate_dataset",
    "translator_checkpoint",
    "translator_state_dict",
    "write_png",
]
