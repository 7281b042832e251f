"""Rendering core of the synthetic twin: colours, textures and shape rasterisation.

Shapes are lists of primitives in an object frame whose unit is the object's height
(``y`` in ``[-0.5, 0.5]``, ``x`` in ``[-aspect/2, aspect/2]``); :func:`rasterise` turns
them into a *part map* (0 = outside, ``k + 1`` = part ``k``) at a given pixel size,
position, rotation and mirror. :meth:`Appearance.sample` draws a per-instance look from
one class-independent colour and texture distribution (the twin-v1 appearance, still used
for object-like distractors and off-palette instances); class looks live in :mod:`.looks`.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

Prim = tuple  # ("poly", pts, part) | ("ell", cx, cy, rx, ry, part[, angle]) | ("line", pts, width, part)
#               ("ring", cx, cy, r, thickness, part) | ("erase", pts)

TEXTURES = ("flat", "mottled", "stripes", "spots", "gradient", "fur", "patches")


# ----------------------------------------------------------------------------- colour
def random_color(rng: np.random.Generator) -> np.ndarray:
    """A colour from one broad distribution shared by every class and by the background."""
    h = rng.random()
    s = rng.beta(1.3, 1.6)
    v = 0.12 + 0.83 * rng.beta(1.6, 1.3)
    return np.array(colorsys.hsv_to_rgb(h, s, v), dtype=np.float32)


def related_color(rng: np.random.Generator, c: np.ndarray) -> np.ndarray:
    """A second colour of the same instance: darker/lighter shade or an unrelated colour."""
    r = rng.random()
    if r < 0.45:
        return np.clip(c * rng.uniform(0.35, 0.75), 0, 1).astype(np.float32)
    if r < 0.7:
        return np.clip(c + (1 - c) * rng.uniform(0.25, 0.6), 0, 1).astype(np.float32)
    return random_color(rng)


# ----------------------------------------------------------------------------- noise / textures
def value_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth noise in ``[0, 1]`` with features about ``cell`` pixels across."""
    gh = max(2, int(math.ceil(h / max(cell, 1.0))) + 1)
    gw = max(2, int(math.ceil(w / max(cell, 1.0))) + 1)
    g = rng.random((gh, gw), dtype=np.float32)
    return np.asarray(Image.fromarray(g).resize((max(w, 1), max(h, 1)), Image.BILINEAR))


def texture(rng: np.random.Generator, h: int, w: int, style: str, c1: np.ndarray, c2: np.ndarray,
            scale: float) -> np.ndarray:
    """An ``(h, w, 3)`` float32 texture; ``scale`` is the object's size in pixels."""
    if style == "flat":
        t = np.broadcast_to(c1, (h, w, 3)).copy()
    elif style == "mottled":
        n = value_noise(rng, h, w, max(2.0, scale / rng.uniform(2, 6)))[..., None]
        t = c1 * (1 - n * 0.7) + c2 * (n * 0.7)
    elif style == "stripes":
        yy, xx = np.ogrid[0:h, 0:w]
        phi = rng.uniform(0, math.pi)
        period = max(2.5, scale / rng.uniform(3, 10))
        s = np.sin((xx * math.cos(phi) + yy * math.sin(phi)).astype(np.float32) * (2 * math.pi / period) + rng.uniform(0, 6.3))
        m = np.clip(s * 2 + 0.5, 0, 1)[..., None]
        t = c1 * (1 - m) + c2 * m
    elif style == "spots":
        n = value_noise(rng, h, w, max(1.5, scale / rng.uniform(5, 12)))
        m = (n > rng.uniform(0.6, 0.75)).astype(np.float32)[..., None]
        t = c1 * (1 - m) + c2 * m
    elif style == "gradient":
        yy, xx = np.ogrid[0:h, 0:w]
        phi = rng.uniform(0, 2 * math.pi)
        r = (xx * math.cos(phi) + yy * math.sin(phi)).astype(np.float32)
        r = (r - r.min()) / max(float(r.max() - r.min()), 1e-6)
        t = c1 * (1 - r[..., None]) + c2 * r[..., None]
    elif style == "fur":
        n = value_noise(rng, h, w, 1.3) - 0.5
        t = c1 * (1 + 0.45 * n[..., None])
    elif style == "patches":
        n = value_noise(rng, h, w, max(2.0, scale / rng.uniform(2.5, 5)))
        m = (n > 0.55).astype(np.float32)[..., None]
        t = c1 * (1 - m) + c2 * m
    else:  # pragma: no cover - guarded by TEXTURES
        raise ValueError(style)
    # (Sensor grain is added once per image by :func:`finish`.)
    return t.astype(np.float32, copy=False)


@dataclass
class Appearance:
    """Per-instance look: a texture style and colours for up to three parts."""

    style: str
    colors: list[np.ndarray]
    styles: list[str]
    light_dir: float
    light_amp: float

    @staticmethod
    def sample(rng: np.random.Generator, preferred: tuple[str, ...] = (), p_pref: float = 0.35,
               n_parts: int = 4) -> "Appearance":
        if preferred and rng.random() < p_pref:
            style = str(rng.choice(preferred))
        else:
            style = str(rng.choice(TEXTURES))
        c = random_color(rng)
        colors = [c]
        styles = [style]
        for _ in range(1, n_parts):
            colors.append(related_color(rng, c))
            styles.append(style if rng.random() < 0.4 else str(rng.choice(("flat", "mottled", "fur"))))
        return Appearance(style, colors, styles, rng.uniform(0, 2 * math.pi), rng.uniform(0.0, 0.35))


def paint(rng: np.random.Generator, img: np.ndarray, part_map: np.ndarray, y0: int, x0: int,
          app: Appearance, scale: float) -> None:
    """Composite a rasterised object onto ``img`` (float32, in place)."""
    h, w = part_map.shape
    region = img[y0:y0 + h, x0:x0 + w]
    cd, sd = math.cos(app.light_dir), math.sin(app.light_dir)
    for k in np.flatnonzero(np.bincount(part_map.ravel(), minlength=1)):
        if k == 0:
            continue
        m = part_map == k
        rows = np.flatnonzero(m.any(axis=1))
        cols = np.flatnonzero(m.any(axis=0))
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        idx = min(int(k) - 1, len(app.colors) - 1)
        c1_, c2_ = app.colors[idx], app.colors[(idx + 1) % len(app.colors)]
        tex = texture(rng, r1 - r0, c1 - c0, app.styles[idx], c1_, c2_, scale)
        # One lighting ramp per instance: shading varies inside an object, as in photographs.
        yy, xx = np.ogrid[r0:r1, c0:c1]
        light = 1.0 + app.light_amp * ((xx * cd + yy * sd) / max(h, w, 1) - 0.5 * (cd + sd))
        sub = m[r0:r1, c0:c1]
        region[r0:r1, c0:c1][sub] = (tex * light[..., None].astype(np.float32))[sub]


# ----------------------------------------------------------------------------- rasterisation
@dataclass
class Placement:
    """Where a shape goes: centre (pixels), height (pixels), rotation (radians), mirror."""

    cx: float
    cy: float
    height: float
    angle: float = 0.0
    flip: bool = False


@dataclass
class Shape:
    aspect: float
    prims: list[Prim] = field(default_factory=list)


def _ellipse_pts(cx: float, cy: float, rx: float, ry: float, angle: float = 0.0, n: int = 20) -> list[tuple[float, float]]:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    ca, sa = math.cos(angle), math.sin(angle)
    return list(zip((cx + x * ca - y * sa).tolist(), (cy + x * sa + y * ca).tolist()))


def rasterise(shape: Shape, pl: Placement, H: int, W: int) -> tuple[np.ndarray, int, int] | None:
    """Draw ``shape`` at ``pl``; return ``(part_map, y0, x0)`` clipped to the image, or ``None``."""
    s = pl.height
    flip = -1.0 if pl.flip else 1.0
    ca, sa = math.cos(pl.angle), math.sin(pl.angle)
    half = 0.5 * s * math.hypot(max(shape.aspect, 1e-3), 1.0) + 2
    x0 = max(0, int(math.floor(pl.cx - half)))
    y0 = max(0, int(math.floor(pl.cy - half)))
    x1 = min(W, int(math.ceil(pl.cx + half)) + 1)
    y1 = min(H, int(math.ceil(pl.cy + half)) + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    ox, oy = pl.cx - x0, pl.cy - y0

    def tr(pts):
        out = []
        for u, v in pts:
            u *= flip * s
            v *= s
            out.append((ox + u * ca - v * sa - 0.5, oy + u * sa + v * ca - 0.5))
        return out

    canvas = Image.new("L", (x1 - x0, y1 - y0), 0)
    draw = ImageDraw.Draw(canvas)
    for p in shape.prims:
        kind = p[0]
        if kind == "poly":
            draw.polygon(tr(p[1]), fill=p[2] + 1)
        elif kind == "ell":
            ang = p[6] if len(p) > 6 else 0.0
            draw.polygon(tr(_ellipse_pts(p[1], p[2], p[3], p[4], ang)), fill=p[5] + 1)
        elif kind == "ring":
            cx, cy, r, th, part = p[1:6]
            draw.polygon(tr(_ellipse_pts(cx, cy, r, r, 0.0, 28)), fill=part + 1)
            if r - th > 0:
                draw.polygon(tr(_ellipse_pts(cx, cy, r - th, r - th, 0.0, 28)), fill=0)
        elif kind == "line":
            pts, width, part = p[1], p[2], p[3]
            wpx = max(1, int(round(width * s)))
            tp = tr(pts)
            draw.line(tp, fill=part + 1, width=wpx, joint="curve")
            if wpx >= 3:  # round caps, as limbs and poles have
                r = wpx / 2.0
                for x, y in (tp[0], tp[-1]):
                    draw.ellipse((x - r, y - r, x + r, y + r), fill=part + 1)
        elif kind == "erase":
            draw.polygon(tr(p[1]), fill=0)
        else:  # pragma: no cover
            raise ValueError(kind)
    part_map = np.asarray(canvas)
    if not part_map.any():
        return None
    return part_map, y0, x0


def rect(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def jitter(rng: np.random.Generator, v: float, rel: float = 0.15) -> float:
    return float(v * (1 + rng.uniform(-rel, rel)))


def blur3(img: np.ndarray, strength: float) -> np.ndarray:
    """A cheap separable [a, 1-2a, a] blur: soft object edges like a real lens, no scipy call."""
    a = float(np.clip(strength, 0, 0.33))
    if a <= 0:
        return img
    out = img * (1 - 2 * a)
    out[1:] += a * img[:-1]
    out[:-1] += a * img[1:]
    out[0] += a * img[0]
    out[-1] += a * img[-1]
    tmp = out
    out = tmp * (1 - 2 * a)
    out[:, 1:] += a * tmp[:, :-1]
    out[:, :-1] += a * tmp[:, 1:]
    out[:, 0] += a * tmp[:, 0]
    out[:, -1] += a * tmp[:, -1]
    return out


def finish(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Camera effects: lens blur, global exposure/white balance, vignetting, sensor noise."""
    H, W = img.shape[:2]
    img = blur3(img, rng.uniform(0.08, 0.22))
    img = img * np.float32(rng.uniform(0.75, 1.2)) * rng.uniform(0.9, 1.1, size=3).astype(np.float32)
    yy, xx = np.ogrid[0:H, 0:W]
    r2 = ((yy / H - 0.5) ** 2 + (xx / W - 0.5) ** 2).astype(np.float32)
    img = img * (1 - np.float32(rng.uniform(0, 0.5)) * r2)[..., None]
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(0.005, 0.03))
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
