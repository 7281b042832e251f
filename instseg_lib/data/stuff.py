"""Helpers to paint large labelled "stuff" regions (sky, road, wall...) onto a canvas."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .render import random_color, related_color, texture
from .scene import Canvas

Rng = np.random.Generator


def poly_mask(H: int, W: int, polys: list[list[tuple[float, float]]]) -> np.ndarray:
    im = Image.new("L", (W, H), 0)
    d = ImageDraw.Draw(im)
    for pts in polys:
        if len(pts) >= 3:
            d.polygon([(float(x), float(y)) for x, y in pts], fill=1)
    return np.asarray(im).astype(bool)


def ellipses_mask(H: int, W: int, ells: list[tuple[float, float, float, float]]) -> np.ndarray:
    im = Image.new("L", (W, H), 0)
    d = ImageDraw.Draw(im)
    for cx, cy, rx, ry in ells:
        d.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=1)
    return np.asarray(im).astype(bool)


def stuff_texture(rng: Rng, H: int, W: int, styles: tuple[str, ...] = ("mottled", "gradient", "flat", "fur", "stripes"),
                  desaturate: float = 0.0, scale: float | None = None, look: str | None = None) -> np.ndarray:
    """A stuff texture: from the named :mod:`.looks` entry (twin v2), else from the broad
    class-independent colour distribution with one of ``styles``."""
    if look is not None:
        from .looks import stuff_colors

        c1, c2, style = stuff_colors(rng, look)
        return texture(rng, H, W, style, c1, c2, scale or H / 2)
    c1 = random_color(rng)
    if desaturate:
        g = c1.mean()
        c1 = c1 * (1 - desaturate) + g * desaturate
    c2 = related_color(rng, c1)
    return texture(rng, H, W, str(rng.choice(styles)), c1, c2, scale or H / 2)


def paint_region(rng: Rng, cv: Canvas, mask: np.ndarray, label: int, **kw) -> None:
    """Texture ``mask`` (drawn only over its bounding box, for speed) and label it ``label``.

    ``look=NAME`` paints it with that stuff look (:mod:`.looks`); other keywords go to
    :func:`stuff_texture`.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return
    cols = np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    kw.setdefault("scale", cv.H / 2)
    tex = stuff_texture(rng, int(y1 - y0), int(x1 - x0), **kw)
    m = mask[y0:y1, x0:x1]
    cv.img[y0:y1, x0:x1][m] = tex[m]
    cv.sem[y0:y1, x0:x1][m] = label
    cv.inst[y0:y1, x0:x1][m] = 0
