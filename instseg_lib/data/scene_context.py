"""PASCAL-Context-like scenes: 59 classes + background, stuff covering most pixels.

PASCAL-Context labels every pixel of the VOC 2010 images; its 59 frequent classes include
the 20 VOC objects plus stuff (sky, wall, floor, grass, road...) and small things (cup,
book, plate, mouse...). A scene here is an indoor or outdoor stuff layout, small things
on surfaces, then VOC-style objects (:mod:`.scene_voc`) relabelled into Context ids, and
some class-less clutter labelled 0 ("background" = the 400 rarer Context classes).
"""

from __future__ import annotations

import numpy as np

from .classes import CONTEXT_CLASSES
from .classes import VOC_CLASSES
from .looks import appearance_of
from .render import finish
from .scene import Canvas, Scene
from .scene_voc import VocStyle, layout_groups, add_interactions, sample_classes, add_clutter
from .stuff import ellipses_mask, paint_region, poly_mask
from .writers import context_label_of_voc

Rng = np.random.Generator
C = {n: i for i, n in enumerate(CONTEXT_CLASSES)}

CONTEXT_STYLE = VocStyle(classes_per_image={1: 0.6, 2: 0.3, 3: 0.1}, size_scale=0.8, n_distractors=2.0)


def _rect(x0, y0, x1, y1):
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _outdoor(rng: Rng, cv: Canvas) -> float:
    H, W = cv.H, cv.W
    yh = H * rng.uniform(0.3, 0.6)
    paint_region(rng, cv, np.ones((H, W), bool), C["sky"], look="sky")
    if rng.random() < 0.4:  # mountain ridge on the horizon
        xs = np.linspace(-1, W + 1, int(rng.integers(4, 9)))
        ys = yh - rng.uniform(0.05, 0.3, len(xs)) * H
        paint_region(rng, cv, poly_mask(H, W, [list(zip(xs, ys)) + [(W + 1, yh + 1), (-1, yh + 1)]]), C["mountain"], look="mountain")
    if rng.random() < 0.5:  # buildings standing on the horizon
        x = rng.uniform(-0.2, 0.5) * W
        while x < W * rng.uniform(0.5, 1.2):
            w = W * rng.uniform(0.08, 0.3)
            top = yh - H * rng.uniform(0.1, 0.5)
            paint_region(rng, cv, poly_mask(H, W, [_rect(x, top, x + w, yh + 1)]), C["building"], look="building")
            for _ in range(int(rng.integers(0, 4))):
                wx, wy = rng.uniform(x, x + w), rng.uniform(top, yh)
                s = H * rng.uniform(0.015, 0.05)
                paint_region(rng, cv, poly_mask(H, W, [_rect(wx, wy, wx + s, wy + s * 1.3)]), C["window"], look="window")
            x += w * rng.uniform(0.9, 1.3)
    # ground: one or two regions below the horizon
    grounds = ["grass", "ground", "road", "water", "snow", "sidewalk", "platform", "track", "rock"]
    g1 = str(rng.choice(grounds, p=[0.3, 0.2, 0.12, 0.12, 0.05, 0.08, 0.04, 0.04, 0.05]))
    paint_region(rng, cv, poly_mask(H, W, [_rect(-1, yh, W + 1, H + 1)]), C[g1], look=g1)
    if rng.random() < 0.6:
        g2 = str(rng.choice(grounds))
        x0 = rng.uniform(-0.3, 0.7) * W
        paint_region(rng, cv, poly_mask(H, W, [[(x0, yh), (x0 + W * rng.uniform(0.1, 0.5), yh), (x0 + W * rng.uniform(0.3, 1.0), H + 1),
                                               (x0 - W * rng.uniform(0.0, 0.5), H + 1)]]), C[g2], look=g2)
    for _ in range(int(rng.poisson(1.8))):  # trees: crowns + trunk
        x, yb = rng.uniform(0, W), yh + rng.uniform(-0.02, 0.3) * H
        s = rng.uniform(0.15, 0.6) * H
        ells = [(x + rng.normal(0, 0.2 * s), yb - s * rng.uniform(0.5, 0.9), s * rng.uniform(0.2, 0.4), s * rng.uniform(0.15, 0.35))
                for _ in range(int(rng.integers(2, 6)))]
        m = ellipses_mask(H, W, ells) | poly_mask(H, W, [_rect(x - 0.03 * s, yb - 0.5 * s, x + 0.03 * s, yb)])
        paint_region(rng, cv, m, C["tree"], look="tree", scale=s / 3)
    if rng.random() < 0.25:
        y = yh + rng.uniform(0.05, 0.3) * H
        bars = [_rect(x, y - 0.12 * H, x + 0.012 * W, y) for x in np.linspace(0, W, int(rng.integers(6, 20)))]
        paint_region(rng, cv, poly_mask(H, W, bars + [_rect(0, y - 0.1 * H, W, y - 0.085 * H)]), C["fence"], look="fence")
    for name, p in (("rock", 0.25), ("flower", 0.2), ("sign", 0.2), ("bench", 0.1), ("truck", 0.05)):
        if rng.random() < p:
            x, y = rng.uniform(0, W), yh + rng.uniform(0.05, 0.5) * H
            s = H * rng.uniform(0.03, 0.15)
            if name == "sign":
                m = poly_mask(H, W, [_rect(x - 0.008 * H, y - 2.5 * s, x + 0.008 * H, y), _rect(x - s, y - 3 * s, x + s, y - 2 * s)])
            elif name == "flower":
                m = ellipses_mask(H, W, [(x + rng.normal(0, s), y + rng.normal(0, s / 3), s / 4, s / 4) for _ in range(6)])
            else:
                m = ellipses_mask(H, W, [(x, y - s / 2, s * rng.uniform(0.8, 2.0), s / 2)])
            paint_region(rng, cv, m, C[name], look=name)
    return yh


def _indoor(rng: Rng, cv: Canvas) -> float:
    H, W = cv.H, cv.W
    yf = H * rng.uniform(0.5, 0.8)      # where the wall meets the floor
    paint_region(rng, cv, np.ones((H, W), bool), C["wall"], look="wall")
    if rng.random() < 0.45:
        paint_region(rng, cv, poly_mask(H, W, [_rect(-1, -1, W + 1, H * rng.uniform(0.05, 0.2))]), C["ceiling"], look="ceiling")
        if rng.random() < 0.6:
            x = rng.uniform(0.2, 0.8) * W
            paint_region(rng, cv, ellipses_mask(H, W, [(x, H * 0.12, W * 0.04, H * 0.03)]), C["light"], look="light")
    paint_region(rng, cv, poly_mask(H, W, [_rect(-1, yf, W + 1, H + 1)]), C["floor"], look="floor")
    for name, p in (("window", 0.6), ("door", 0.35), ("curtain", 0.3), ("cabinet", 0.35), ("shelves", 0.3), ("sign", 0.25), ("wood", 0.15)):
        if rng.random() >= p:
            continue
        w = W * rng.uniform(0.08, 0.3)
        x = rng.uniform(-0.05, 0.95) * W
        if name in ("door", "cabinet", "shelves", "wood"):
            top = yf - H * rng.uniform(0.2, 0.6)
            rect = _rect(x, top, x + w, yf + H * 0.02)
        else:
            top = H * rng.uniform(0.1, 0.35)
            rect = _rect(x, top, x + w, top + H * rng.uniform(0.12, 0.35))
        paint_region(rng, cv, poly_mask(H, W, [rect]), C[name], look=name)
        if name == "shelves":  # books on the shelves
            for k in range(int(rng.integers(3, 12))):
                bx = x + w * rng.uniform(0, 0.9)
                by = top + (yf - top) * rng.uniform(0.1, 0.8)
                paint_region(rng, cv, poly_mask(H, W, [_rect(bx, by, bx + w * 0.06, by + H * 0.05)]), C["book"], look="book")
    if rng.random() < 0.3:  # a bed with bedclothes
        x, w = rng.uniform(0, 0.5) * W, W * rng.uniform(0.3, 0.6)
        paint_region(rng, cv, poly_mask(H, W, [_rect(x, yf - H * 0.15, x + w, yf + H * 0.12)]), C["bed"], look="bed")
        paint_region(rng, cv, poly_mask(H, W, [_rect(x + 0.1 * w, yf - H * 0.14, x + w, yf + H * 0.02)]), C["bedclothes"], look="bedclothes")
    if rng.random() < 0.4:  # a table with things on it
        x, w = rng.uniform(0, 0.6) * W, W * rng.uniform(0.2, 0.5)
        ty = yf - H * rng.uniform(0.0, 0.15)
        paint_region(rng, cv, poly_mask(H, W, [_rect(x, ty, x + w, ty + H * 0.04), _rect(x + 0.05 * w, ty, x + 0.1 * w, ty + H * 0.2),
                                               _rect(x + 0.9 * w, ty, x + 0.95 * w, ty + H * 0.2)]), C["table"], look="table")
        for name in rng.choice(["plate", "cup", "food", "computer", "keyboard", "mouse", "bag", "cloth"], size=int(rng.integers(1, 5))):
            s = H * rng.uniform(0.02, 0.07)
            cx = x + w * rng.uniform(0.1, 0.9)
            if name in ("plate", "food"):
                m = ellipses_mask(H, W, [(cx, ty - s * 0.3, s * 1.5, s * 0.5)])
            elif name == "computer":
                m = poly_mask(H, W, [_rect(cx - 2 * s, ty - 3 * s, cx + 2 * s, ty)])
            else:
                m = poly_mask(H, W, [_rect(cx - s, ty - s, cx + s * (2 if name == "keyboard" else 1), ty)])
            paint_region(rng, cv, m, C[str(name)], look=str(name))
    return yf


def context_scene(rng: Rng, H: int, W: int) -> Scene:
    cv = Canvas(rng, H, W)
    yh = _outdoor(rng, cv) if rng.random() < 0.55 else _indoor(rng, cv)
    # the "background" class: everything outside the 59 classes
    add_clutter(rng, cv, 2.0, big=False)
    if rng.random() < 0.5:
        add_clutter(rng, cv, 1.0, big=True)
    items = layout_groups(rng, H, W, yh, sample_classes(rng, CONTEXT_STYLE), CONTEXT_STYLE)
    add_interactions(rng, items)
    items.sort(key=lambda it: it.depth)
    for it in items:
        cv.draw(it.shape, it.pl, appearance_of(rng, VOC_CLASSES[it.cls]), context_label_of_voc(it.cls))
    return cv.finish(finish(rng, cv.img))

