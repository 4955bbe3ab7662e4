"""Weather and light conditions painted over the built-in synthetic scenes (the ACDC / Dark Zurich stand-ins).

``uda data synth --layout acdc|darkzurich`` writes scenes of `uda.data.synthetic` under these conditions.
"""

from __future__ import annotations

import numpy as np

from .._errors import DataError
from .synthetic import _DOMAIN_CODE, BUILDING, ROAD, SIDEWALK, SKY, TERRAIN, VEG, _low_freq, _smooth, render_scene

CONDITIONS = ("clear", "day", "twilight", "night", "fog", "rain", "snow")
"""Weather and light conditions :func:`render_condition` can paint over a scene (``clear`` and ``day``: none)."""

_CONDITION_CODE = {c: i for i, c in enumerate(CONDITIONS)}


def _blend(img: np.ndarray, mask: np.ndarray, value: float | np.ndarray, alpha: float) -> np.ndarray:
    """Blend ``value`` into ``img`` where ``mask`` (H, W) in [0, 1] is set, with opacity ``alpha``."""
    a = (np.clip(mask, 0, 1) * alpha)[..., None]
    return img * (1 - a) + np.asarray(value, dtype=np.float32) * a


def _streaks(rng: np.random.Generator, h: int, w: int, n: int, length: int, slant: float) -> np.ndarray:
    """(H, W) mask of ``n`` straight streaks ``length`` rows long, ``slant`` columns per row (rain)."""
    mask = np.zeros((h, w), dtype=np.float32)
    y0 = rng.integers(-length, h, n)
    x0 = rng.uniform(-length * abs(slant), w, n)
    for k in range(length):
        ys, xs = y0 + k, np.round(x0 + k * slant).astype(np.int64)
        ok = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        mask[ys[ok], xs[ok]] = 1.0
    return mask


def apply_condition(image: np.ndarray, label: np.ndarray, condition: str, rng: np.random.Generator) -> np.ndarray:
    """Paint a weather or light condition over a rendered scene.

    The shifts are simple image-formation stand-ins, not physical simulations:

    * ``fog``: the atmospheric scattering model ``I·t + A·(1 − t)``, ``t = exp(−β·d)``, with depth ``d`` growing
      towards the top of the image (sky at infinity), β in [2, 3], airlight A in [0.70, 0.85], a slight blur.
    * ``night``: gamma 1.6 and gain 0.22 with a blue tint, 2–5 warm Gaussian light sources (street lamps,
      headlights) and strong sensor noise (σ = 0.05).
    * ``twilight``: gamma 1.2, gain 0.55, a purple-orange cast, noise σ = 0.02.
    * ``rain``: gain 0.75, desaturation, slanted bright streaks, a slight blur.
    * ``snow``: brighter and desaturated, patchy white cover on the ground classes, white flakes.
    * ``clear``/``day``: unchanged.

    Args:
        image: uint8 (H, W, 3) RGB.
        label: uint8 (H, W) trainIds of the scene (the depth and ground cues).
        condition: one of `CONDITIONS`.
        rng: the random stream of this image.

    Returns:
        uint8 (H, W, 3) RGB; the label is unchanged.

    Example:
        >>> img, lab = render_scene(0, "target", (64, 32))
        >>> fog = apply_condition(img, lab, "fog", np.random.default_rng(0))
        >>> bool(fog.std() < img.std())  # contrast loss
        True
    """
    if condition not in _CONDITION_CODE:
        raise DataError(f"synthetic: condition {condition!r} is not one of {', '.join(CONDITIONS)}")
    if condition in ("clear", "day"):
        return image
    img = image.astype(np.float32) / 255.0
    h, w = label.shape
    if condition == "fog":
        depth = np.broadcast_to(1.0 - np.arange(h, dtype=np.float32)[:, None] / max(h - 1, 1), (h, w)).copy()
        depth[label == SKY] = 1.0
        t = np.exp(-rng.uniform(2.0, 3.0) * depth)[..., None]
        img = _smooth(img * t + rng.uniform(0.70, 0.85) * (1 - t), 1)
    elif condition == "night":
        img = img**1.6 * 0.22 * np.array([0.80, 0.90, 1.15], dtype=np.float32)
        ys, xs = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]
        for _ in range(int(rng.integers(2, 6))):
            cy, cx, r = rng.uniform(0.2, 0.75) * h, rng.uniform(0, 1) * w, max(1.0, rng.uniform(0.02, 0.06) * w)
            glow = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * r * r))
            img = img + glow[..., None] * np.array([1.0, 0.85, 0.55], dtype=np.float32) * rng.uniform(0.6, 1.0)
        img = img + rng.normal(0.0, 0.05, img.shape).astype(np.float32)
    elif condition == "twilight":
        img = img**1.2 * 0.55 + np.array([0.08, 0.03, 0.10], dtype=np.float32)
        img = img + rng.normal(0.0, 0.02, img.shape).astype(np.float32)
    elif condition == "rain":
        grey = img.mean(-1, keepdims=True)
        img = (0.6 * img + 0.4 * grey) * 0.75 * np.array([0.95, 0.98, 1.05], dtype=np.float32)
        streaks = _streaks(rng, h, w, max(1, h * w // 40), max(2, round(h * rng.uniform(0.05, 0.12))), 0.25)
        img = _smooth(_blend(img, streaks, 0.85, 0.45), 1)
    else:  # snow
        grey = img.mean(-1, keepdims=True)
        img = (0.5 * img + 0.5 * grey) * 0.8 + 0.18
        ground = np.isin(label, (ROAD, SIDEWALK, TERRAIN, VEG, BUILDING)).astype(np.float32)
        cover = (_low_freq(rng, h, w, max(4, w // 16), 1)[..., 0] > 0).astype(np.float32)
        img = _blend(img, ground * cover, 0.95, 0.6)
        flakes = (rng.random((h, w)) < 0.02).astype(np.float32)
        img = _blend(img, flakes, 1.0, 0.9)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def render_condition(
    index: int, condition: str, size: tuple[int, int] = (128, 64), seed: int = 0, domain: str = "target"
) -> tuple[np.ndarray, np.ndarray]:
    """Render scene ``index`` of ``domain`` under a weather or light condition.

    The same ``(index, domain, size, seed)`` gives the same layout and label as :func:`render_scene`; the
    condition only changes the image, and its random stream depends on ``(seed, condition, index)``.

    Args:
        index: scene index.
        condition: one of `CONDITIONS`.
        size: ``(W, H)``.
        seed: the dataset seed.
        domain: the base style, ``"source"`` or ``"target"``.

    Returns:
        ``(image, label)`` as :func:`render_scene`.

    Example:
        >>> night, lab = render_condition(0, "night", (64, 32))
        >>> clear, lab2 = render_condition(0, "clear", (64, 32))
        >>> bool((lab == lab2).all()), bool(night.mean() < clear.mean())
        (True, True)
    """
    if condition not in _CONDITION_CODE:
        raise DataError(f"synthetic: condition {condition!r} is not one of {', '.join(CONDITIONS)}")
    img, lab = render_scene(index, domain, size, seed)
    rng = np.random.default_rng([seed, _DOMAIN_CODE[domain], index, 2, _CONDITION_CODE[condition]])
    return apply_condition(img, lab, condition, rng), lab


__all__ = ["CONDITIONS", "apply_condition", "render_condition"]
