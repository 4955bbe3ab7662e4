"""Value checks declared next to the config fields: `field(default=..., metadata=at_least(1))`.

`Checked` (the base of every config dataclass) runs them at construction; a failed check raises
`FieldError` naming the field, and `uda.config.convert.from_dict` adds the section (`data.batch_size: ...`).

Example:
    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class Demo(Checked):
    ...     steps: int = field(default=1, metadata=at_least(1))
    >>> Demo(steps=0)
    Traceback (most recent call last):
    ...
    uda.config.checks.FieldError: steps: must be at least 1, got 0
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .._errors import ConfigError

# ---- checks declared next to the fields: `field(default=..., metadata=check(...))` ---------------------------
# A check raises `FieldError("<field>: ...")`; `from_dict` prefixes the section, so the one-line error names the
# dotted key (e.g. `data.batch_size: must be at least 1, got 0`).


class FieldError(ConfigError):
    """A config value outside its allowed range, named by its field (`from_dict` adds the section's prefix)."""

    unprefixed = True


def at_least(lo: float, *, meaning: str = "") -> dict[str, Any]:
    """Field metadata: the value (if not `None`) must be `>= lo`; `meaning` explains a special value."""
    def check(name: str, v: Any) -> None:
        if v is not None and not v >= lo:
            raise FieldError(f"{name}: must be at least {lo}{meaning}, got {v}")
    return {"check": check}


def positive() -> dict[str, Any]:
    """Field metadata: the value (if not `None`) must be a finite number `> 0`."""
    def check(name: str, v: Any) -> None:
        if v is not None and not (math.isfinite(v) and v > 0):
            raise FieldError(f"{name}: must be a positive number, got {v}")
    return {"check": check}


def probability() -> dict[str, Any]:
    """Field metadata: the value (or each value of a tuple/list) must lie in [0, 1]."""
    def check(name: str, v: Any) -> None:
        for x in v if isinstance(v, list | tuple) else [v]:
            if x is not None and not 0.0 <= x <= 1.0:
                raise FieldError(f"{name}: must lie in [0, 1], got {v}")
    return {"check": check}


def size_wxh(*, optional: bool = True) -> dict[str, Any]:
    """Field metadata: a `WxH` size string such as `1280x720` (or `None` if `optional`)."""
    def check(name: str, v: Any) -> None:
        if v is None and optional:
            return
        from .._utils import parse_size

        try:
            parse_size(v, name)
        except ConfigError:
            raise FieldError(f"{name}: '{v}' is not {_SIZE_HINT}") from None
    return {"check": check, "hint": _SIZE_HINT}


_SIZE_HINT = "a size WxH (width x height in pixels) such as 1280x720"


class Checked:
    """Base of the config dataclasses: `validate()` runs every field's declared check at construction.

    Example:
        >>> from uda.config import DataConfig
        >>> DataConfig(batch_size=0)
        Traceback (most recent call last):
        ...
        uda.config.checks.FieldError: batch_size: must be at least 1, got 0
    """

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Run the checks declared in the fields' metadata (subclasses add checks across fields)."""
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            check = f.metadata.get("check")
            if check is not None:
                check(f.name, getattr(self, f.name))


#: Translators without weights: nothing to train, so `translator_iters=0` is their normal setting.
PARAMETER_FREE_TRANSLATORS = ("identity", "fda")


def check_recipe(cfg: Any) -> None:
    """Checks every recipe config gets: loss weights (fields named `*weight`) `>= 0`, `translator_iters >= 0`,
    and no silently untrained translator.

    A recipe that translates source images with a trainable translator (CycleGAN) and skips stage 1
    (`translator_iters=0`) must name trained weights (`translator_checkpoint`) or a translated cache
    (`translated_root`).
    """
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if f.name.endswith("weight") and isinstance(v, int | float) and not v >= 0:
            raise FieldError(f"{f.name}: a loss weight must be at least 0, got {v}")
    iters = getattr(cfg, "translator_iters", None)
    if iters is None:
        return
    if iters < 0:
        raise FieldError(f"translator_iters: must be at least 0 (0: no translator stage), got {iters}")
    translator = getattr(cfg, "translator", None)
    if (iters == 0 and getattr(cfg, "translation", True) and translator
            and translator not in PARAMETER_FREE_TRANSLATORS
            and not getattr(cfg, "translator_checkpoint", None) and not getattr(cfg, "translated_root", None)):
        raise FieldError(
            f"translator_iters: 0 skips training the {translator} translator, but neither "
            "recipe.translator_checkpoint nor recipe.translated_root is set, so the source images would pass "
            "through an untrained network; set recipe.translator_iters > 0, a translator_checkpoint or a "
            "translated_root")
