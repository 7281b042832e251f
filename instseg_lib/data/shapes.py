"""Procedural silhouettes of the VOC classes, street objects and class-less distractors.

Every template is random in its proportions and pose, so that no two instances have the
same outline. Parts (0 body, 1 secondary: wheels/legs/hair, 2 accent: windows/screen/pot)
receive different colours. Thin and fragmented classes are built from thin strokes and
loose pieces, as they are in VOC annotations: bicycle = two thin rings + thin frame and
spokes; pottedplant = pot + stems + scattered leaves; chair = seat/back + thin legs.
Units: the object height is 1; x runs over ``[-aspect/2, aspect/2]``.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .render import Shape, jitter, rect

Rng = np.random.Generator


def _limb(x0, y0, ang, length):
    return (x0 + math.sin(ang) * length, y0 + math.cos(ang) * length)


# ----------------------------------------------------------------------------- people and animals
def person(rng: Rng, sitting: bool | None = None) -> Shape:
    sitting = rng.random() < 0.25 if sitting is None else sitting
    a = jitter(rng, 0.58 if sitting else 0.40, 0.2)
    p: list = []
    hr = jitter(rng, 0.075, 0.15)
    hy = -0.5 + hr + 0.005
    sh_y, hip_y = hy + hr + 0.05, (0.02 if sitting else -0.02)
    sw, hw = jitter(rng, 0.12), jitter(rng, 0.09)
    p.append(("poly", [(-sw, sh_y), (sw, sh_y), (hw, hip_y), (-hw, hip_y)], 0))
    p.append(("line", [(0, hy), (0, sh_y + 0.02)], 0.05, 2))
    limb_w = jitter(rng, 0.075)
    for side in (-1, 1):
        ang1 = side * rng.uniform(0.05, 0.9)
        elbow = _limb(side * sw * 0.9, sh_y + 0.01, ang1, 0.17)
        hand = _limb(*elbow, ang1 + side * rng.uniform(-0.6, 0.9), 0.15)
        p.append(("line", [(side * sw * 0.9, sh_y + 0.01), elbow, hand], limb_w, 0))
    leg_w = jitter(rng, 0.095)
    for side in (-1, 1):
        if sitting:
            knee = (side * hw * 0.7 + 0.2, hip_y + 0.05)
            foot = (knee[0] + rng.uniform(-0.05, 0.05), 0.48)
        else:
            ang = side * rng.uniform(0.0, 0.3)
            knee = _limb(side * hw * 0.6, hip_y, ang, 0.24)
            foot = _limb(*knee, ang * rng.uniform(0, 1.5), 0.24)
            foot = (foot[0], min(foot[1], 0.49))
        p.append(("line", [(side * hw * 0.6, hip_y), knee, foot], leg_w, 1))
    p.append(("ell", 0, hy, hr * 0.85, hr, 2))
    if rng.random() < 0.7:  # hair / hat
        p.append(("ell", 0, hy - hr * 0.45, hr * 0.9, hr * 0.6, 1))
    return Shape(a, p)


def quadruped(rng: Rng, kind: str) -> Shape:
    """cow / horse / dog / cat / sheep: one body plan, class-specific proportions."""
    prm = {
        "cow":   dict(a=1.55, body=(0.62, 0.26), leg=0.36, legw=0.075, neck=0.12, head=(0.12, 0.10), tail=0.25),
        "horse": dict(a=1.35, body=(0.55, 0.2), leg=0.45, legw=0.055, neck=0.32, head=(0.14, 0.06), tail=0.3),
        "dog":   dict(a=1.45, body=(0.5, 0.2), leg=0.3, legw=0.07, neck=0.15, head=(0.12, 0.1), tail=0.22),
        "cat":   dict(a=1.3, body=(0.5, 0.2), leg=0.22, legw=0.065, neck=0.08, head=(0.13, 0.12), tail=0.4),
        "sheep": dict(a=1.45, body=(0.6, 0.3), leg=0.26, legw=0.045, neck=0.05, head=(0.1, 0.08), tail=0.05),
    }[kind]
    a = jitter(rng, prm["a"], 0.15)
    p: list = []
    bw, bh = jitter(rng, prm["body"][0]) * a / 1.45, jitter(rng, prm["body"][1])
    leg = jitter(rng, prm["leg"])
    by = 0.5 - leg - bh * 0.35
    bx = -0.05 * a
    legw = prm["legw"]
    # legs first so that the body covers their tops
    for lx in (bx - bw * 0.4, bx - bw * 0.28, bx + bw * 0.3, bx + bw * 0.42):
        sw = rng.uniform(-0.12, 0.12)
        p.append(("line", [(lx, by), (lx + sw * leg * 0.5, by + leg * 0.55), (lx + sw * leg, 0.49)], legw, 1))
    if kind == "sheep":  # woolly body: a union of circles gives a bumpy outline
        for _ in range(int(rng.integers(9, 15))):
            t = rng.uniform(0, 2 * math.pi)
            r = rng.uniform(0.35, 0.6) * bh
            p.append(("ell", bx + math.cos(t) * bw * 0.38, by + math.sin(t) * bh * 0.3, r, r * rng.uniform(0.8, 1.1), 0))
        p.append(("ell", bx, by, bw * 0.45, bh * 0.45, 0))
    elif kind == "cow":
        p.append(("poly", [(bx - bw * 0.5, by - bh * 0.45), (bx + bw * 0.5, by - bh * 0.5),
                           (bx + bw * 0.52, by + bh * 0.45), (bx - bw * 0.5, by + bh * 0.5)], 0))
        p.append(("ell", bx - bw * 0.1, by + bh * 0.5, bw * 0.08, bh * 0.12, 2))
    else:
        p.append(("ell", bx, by, bw * 0.5, bh * 0.5, 0))
    # neck and head at the front (+x)
    nx, ny = bx + bw * 0.45, by - bh * 0.2
    hx = nx + prm["neck"] * 0.6
    hy = ny - prm["neck"] * rng.uniform(0.5, 1.1)
    hy = max(hy, -0.5 + prm["head"][1])
    p.append(("line", [(nx, ny), (hx, hy)], max(0.06, bh * 0.45), 0))
    hrx, hry = prm["head"]
    part_head = 1 if kind == "sheep" else 0
    p.append(("ell", hx + hrx * 0.4, hy, hrx, hry, part_head, rng.uniform(-0.4, 0.5)))
    if kind in ("cat",):
        for dx in (-0.05, 0.06):
            p.append(("poly", [(hx + dx, hy - hry * 0.6), (hx + dx + 0.05, hy - hry * 0.6), (hx + dx + 0.02, hy - hry - 0.09)], 0))
    if kind == "dog" and rng.random() < 0.7:
        p.append(("ell", hx - 0.02, hy + 0.03, 0.035, 0.08, 1, 0.3))
    if kind == "cow":
        p.append(("line", [(hx, hy - hry), (hx - 0.05, hy - hry - 0.06)], 0.025, 1))
        p.append(("line", [(hx + 0.08, hy - hry), (hx + 0.12, hy - hry - 0.06)], 0.025, 1))
    if kind == "horse":
        p.append(("line", [(nx - 0.02, ny - 0.02), (hx - 0.03, hy - 0.03)], 0.04, 1))
    # tail at the back
    tx, ty = bx - bw * 0.5, by - bh * 0.25
    if kind == "cat":
        p.append(("line", [(tx, ty), (tx - 0.12, ty - 0.05), (tx - 0.18, ty - 0.25)], 0.05, 0))
    elif kind != "sheep":
        p.append(("line", [(tx, ty), (tx - 0.06, ty + prm["tail"] * 0.6), (tx - 0.04, ty + prm["tail"])], 0.04,
                  1 if kind == "horse" else 0))
    return Shape(a, p)


def sitting_cat(rng: Rng) -> Shape:
    """Cats and dogs are often photographed close up, sitting or lying: a compact blob."""
    a = jitter(rng, 0.85, 0.25)
    hr = jitter(rng, 0.17)
    p = [("ell", 0, 0.15, a * 0.42, 0.34, 0),
         ("ell", rng.uniform(-0.08, 0.08), -0.5 + hr + 0.05, hr * 1.1, hr, 0),
         ("poly", [(-0.15, -0.42), (-0.05, -0.38), (-0.14, -0.5)], 0),
         ("poly", [(0.15, -0.42), (0.05, -0.38), (0.14, -0.5)], 0),
         ("line", [(a * 0.3, 0.4), (a * 0.48, 0.3), (a * 0.45, 0.05)], 0.06, 1 if rng.random() < 0.5 else 0)]
    return Shape(a, p)


def bird(rng: Rng) -> Shape:
    flying = rng.random() < 0.35
    a = jitter(rng, 1.6 if flying else 1.2, 0.2)
    p: list = []
    p.append(("ell", 0, 0.05, a * 0.3, 0.2, 0, rng.uniform(-0.3, 0.3)))
    p.append(("ell", a * 0.3, -0.15, 0.13, 0.12, 0))
    p.append(("poly", [(a * 0.3 + 0.11, -0.17), (a * 0.3 + 0.25, -0.12), (a * 0.3 + 0.11, -0.09)], 1))
    p.append(("poly", [(-a * 0.25, 0.0), (-a * 0.5, -0.05), (-a * 0.5, 0.18), (-a * 0.25, 0.12)], 0))
    if flying:
        p.append(("poly", [(-0.1, 0.0), (0.1, 0.0), (rng.uniform(-0.3, 0.2), -0.5)], 1))
        p.append(("poly", [(-0.05, 0.05), (0.12, 0.05), (rng.uniform(-0.2, 0.3), 0.45)], 1))
    else:
        p.append(("ell", -0.02, 0.05, a * 0.2, 0.12, 1, 0.2))
        for dx in (-0.04, 0.05):
            p.append(("line", [(dx, 0.2), (dx + 0.02, 0.49)], 0.02, 1))
    return Shape(a, p)


# ----------------------------------------------------------------------------- vehicles
def wheel(p: list, cx: float, cy: float, r: float, thick: float, spokes: int, rng: Rng) -> None:
    p.append(("ring", cx, cy, r, thick, 1))
    for k in range(spokes):
        t = k * math.pi / max(spokes, 1) + rng.uniform(0, 1)
        p.append(("line", [(cx + r * math.cos(t), cy + r * math.sin(t)), (cx - r * math.cos(t), cy - r * math.sin(t))], 0.012, 1))


def bicycle(rng: Rng) -> Shape:
    a = jitter(rng, 1.65, 0.12)
    r = jitter(rng, 0.3, 0.1)
    cy = 0.5 - r
    xr, xf = -a / 2 + r, a / 2 - r
    p: list = []
    spokes = int(rng.integers(0, 4))
    wheel(p, xr, cy, r, jitter(rng, 0.045, 0.3), spokes, rng)
    wheel(p, xf, cy, r, jitter(rng, 0.045, 0.3), spokes, rng)
    bb = (xr + (xf - xr) * 0.42, cy)
    seat = (xr + (xf - xr) * 0.3, cy - 0.55)
    head = (xf - 0.08, cy - 0.6)
    fw = jitter(rng, 0.035, 0.3)
    p.append(("line", [(xr, cy), bb, seat, (xr, cy)], fw, 0))
    p.append(("line", [bb, head, seat], fw, 0))
    p.append(("line", [head, (xf, cy)], fw, 0))
    p.append(("line", [head, (head[0] + 0.02, -0.5 + 0.04), (head[0] + 0.12, -0.5 + 0.03)], fw, 1))
    p.append(("poly", [(seat[0] - 0.1, seat[1] - 0.04), (seat[0] + 0.08, seat[1] - 0.04), (seat[0] + 0.05, seat[1])], 1))
    return Shape(a, p)


def motorbike(rng: Rng) -> Shape:
    a = jitter(rng, 1.55, 0.12)
    r = jitter(rng, 0.27, 0.1)
    cy = 0.5 - r
    xr, xf = -a / 2 + r, a / 2 - r
    p: list = []
    for x in (xr, xf):
        p.append(("ring", x, cy, r, r * rng.uniform(0.35, 0.6), 1))
        p.append(("ell", x, cy, r * 0.25, r * 0.25, 2))
    p.append(("poly", [(xr + 0.05, cy - 0.12), (xr + 0.2, cy - 0.42), (xf - 0.15, cy - 0.45),
                       (xf - 0.05, cy - 0.15), (xr + 0.5 * (xf - xr), cy + 0.05)], 0))
    p.append(("line", [(xf, cy), (xf - 0.1, -0.5 + 0.06)], 0.06, 1))
    p.append(("line", [(xf - 0.18, -0.5 + 0.03), (xf - 0.02, -0.5 + 0.04)], 0.05, 1))
    p.append(("ell", xr + 0.15, cy - 0.45, 0.16, 0.05, 1))
    return Shape(a, p)


def car(rng: Rng, view: str | None = None) -> Shape:
    view = view or ("side" if rng.random() < 0.6 else "rear")
    p: list = []
    if view == "side":
        a = jitter(rng, 2.3, 0.12)
        r = jitter(rng, 0.17)
        body_top = -0.05
        p.append(("poly", [(-a / 2, body_top), (a / 2 - 0.1, body_top + rng.uniform(-0.05, 0.05)),
                           (a / 2, 0.15), (a / 2, 0.4), (-a / 2, 0.4), (-a / 2, 0.1)], 0))
        c0, c1 = -a * rng.uniform(0.25, 0.32), a * rng.uniform(0.15, 0.28)
        p.append(("poly", [(c0 - 0.15, body_top + 0.01), (c0 + 0.05, -0.5), (c1 - 0.1, -0.5), (c1 + 0.15, body_top + 0.01)], 0))
        p.append(("poly", [(c0 - 0.04, body_top - 0.02), (c0 + 0.09, -0.43), (0.0, -0.43), (0.0, body_top - 0.02)], 2))
        p.append(("poly", [(0.05, body_top - 0.02), (0.05, -0.43), (c1 - 0.12, -0.43), (c1 + 0.06, body_top - 0.02)], 2))
        for x in (-a / 2 + 0.42, a / 2 - 0.42):
            p.append(("ell", x, 0.5 - r, r, r, 1))
    else:
        a = jitter(rng, 1.3, 0.12)
        p.append(("poly", [(-a / 2, -0.05), (a / 2, -0.05), (a / 2, 0.38), (-a / 2, 0.38)], 0))
        p.append(("poly", [(-a * 0.4, -0.05), (-a * 0.3, -0.5), (a * 0.3, -0.5), (a * 0.4, -0.05)], 0))
        p.append(("poly", [(-a * 0.33, -0.08), (-a * 0.26, -0.43), (a * 0.26, -0.43), (a * 0.33, -0.08)], 2))
        for x in (-a * 0.36, a * 0.36):
            p.append(("poly", rect(x - 0.1, 0.3, x + 0.1, 0.5), 1))
        p.append(("poly", rect(-0.12, 0.12, 0.12, 0.22), 2))
    return Shape(a, p)


def bus(rng: Rng, view: str | None = None) -> Shape:
    view = view or ("side" if rng.random() < 0.6 else "front")
    p: list = []
    if view == "side":
        a = jitter(rng, 2.6, 0.15)
        p.append(("poly", [(-a / 2, -0.5), (a / 2 - 0.05, -0.5), (a / 2, -0.42), (a / 2, 0.38), (-a / 2, 0.38)], 0))
        n = int(rng.integers(4, 8))
        ww = (a - 0.2) / n
        for k in range(n):
            x = -a / 2 + 0.1 + k * ww
            p.append(("poly", rect(x + 0.02, -0.4, x + ww - 0.02, -0.08), 2))
        r = 0.13
        for x in (-a / 2 + 0.4, a / 2 - 0.45):
            p.append(("ell", x, 0.5 - r, r, r, 1))
    else:
        a = jitter(rng, 0.95, 0.1)
        p.append(("poly", rect(-a / 2, -0.5, a / 2, 0.45), 0))
        p.append(("poly", rect(-a * 0.44, -0.42, a * 0.44, -0.02), 2))
        for x in (-a * 0.38, a * 0.38):
            p.append(("poly", rect(x - 0.07, 0.42, x + 0.07, 0.5), 1))
    return Shape(a, p)


def train(rng: Rng) -> Shape:
    a = jitter(rng, 3.2, 0.25)
    p: list = []
    # perspective: the front face is taller than the far end
    far = rng.uniform(0.45, 0.8)
    front = a / 2 - rng.uniform(0.25, 0.5)
    p.append(("poly", [(-a / 2, -0.5 * far), (front, -0.5), (front, 0.42), (-a / 2, 0.42 * far)], 0))
    p.append(("poly", [(front, -0.48), (a / 2, -0.4), (a / 2, 0.45), (front, 0.42)], 1))
    p.append(("poly", rect(front + 0.05, -0.35, a / 2 - 0.05, -0.05), 2))
    n = int(rng.integers(5, 10))
    for k in range(n):
        t0, t1 = k / n, (k + 0.6) / n
        x0 = -a / 2 + t0 * (front + a / 2)
        x1 = -a / 2 + t1 * (front + a / 2)
        s0 = far + (1 - far) * t0
        s1 = far + (1 - far) * t1
        p.append(("poly", [(x0, -0.38 * s0), (x1, -0.38 * s1), (x1, -0.12 * s1), (x0, -0.12 * s0)], 2))
    if rng.random() < 0.5:  # a coupling gap between two cars splits the silhouette
        gx = -a / 2 + rng.uniform(0.3, 0.5) * (front + a / 2)
        p.append(("erase", rect(gx - 0.02, -0.6, gx + 0.02, 0.6)))
        p.append(("line", [(gx - 0.03, 0.25), (gx + 0.03, 0.25)], 0.03, 1))
    return Shape(a, p)


def aeroplane(rng: Rng) -> Shape:
    a = jitter(rng, 1.9, 0.2)
    p: list = []
    fy = rng.uniform(-0.05, 0.1)
    p.append(("ell", 0, fy, a * 0.48, 0.09, 0))
    p.append(("poly", [(a * 0.4, fy), (a * 0.5, fy - 0.02), (a * 0.5, fy + 0.03)], 0))
    # tail fin
    p.append(("poly", [(-a * 0.46, fy - 0.05), (-a * 0.3, fy - 0.05), (-a * 0.45, -0.5)], 0))
    # wings: swept, one towards the viewer (lower), one away (upper, shorter)
    wx = rng.uniform(-0.1, 0.1)
    p.append(("poly", [(wx + 0.15, fy + 0.04), (wx - 0.1, fy + 0.04), (wx - 0.35, 0.5), (wx - 0.2, 0.5)], 0))
    p.append(("poly", [(wx + 0.1, fy - 0.04), (wx - 0.05, fy - 0.04), (wx - 0.2, fy - 0.28), (wx - 0.1, fy - 0.28)], 0))
    if rng.random() < 0.7:
        p.append(("ell", wx - 0.12, fy + 0.18, 0.07, 0.035, 1))
    p.append(("line", [(-a * 0.2, fy - 0.03), (a * 0.35, fy - 0.03)], 0.02, 2))
    return Shape(a, p)


def boat(rng: Rng) -> Shape:
    sail = rng.random() < 0.45
    a = jitter(rng, 1.1 if sail else 1.8, 0.2)
    p: list = []
    hull_top = 0.15 if sail else -0.05
    p.append(("poly", [(-a / 2, hull_top), (a / 2, hull_top - 0.05), (a * 0.35, 0.5), (-a * 0.4, 0.5)], 0))
    if sail:
        mx = rng.uniform(-0.1, 0.1)
        p.append(("line", [(mx, hull_top), (mx, -0.5)], 0.02, 1))
        p.append(("poly", [(mx + 0.02, -0.48), (mx + 0.02, hull_top - 0.03), (mx + a * 0.42, hull_top - 0.03)], 2))
        if rng.random() < 0.6:
            p.append(("poly", [(mx - 0.02, -0.35), (mx - 0.02, hull_top - 0.03), (mx - a * 0.3, hull_top - 0.03)], 2))
    else:
        p.append(("poly", rect(-a * 0.2, -0.45, a * 0.15, hull_top), 2))
        p.append(("line", [(0.0, -0.45), (0.0, -0.5)], 0.02, 1))
    return Shape(a, p)


# ----------------------------------------------------------------------------- indoor things
def bottle(rng: Rng) -> Shape:
    a = jitter(rng, 0.3, 0.25)
    p = [("poly", [(-a / 2, 0.5), (-a / 2, -0.12), (-a * 0.15, -0.3), (-a * 0.15, -0.45),
                   (a * 0.15, -0.45), (a * 0.15, -0.3), (a / 2, -0.12), (a / 2, 0.5)], 0),
         ("poly", rect(-a * 0.17, -0.5, a * 0.17, -0.43), 1)]
    if rng.random() < 0.7:
        p.append(("poly", rect(-a / 2, 0.0, a / 2, rng.uniform(0.15, 0.35)), 2))
    return Shape(a, p)


def chair(rng: Rng) -> Shape:
    a = jitter(rng, 0.6, 0.2)
    p: list = []
    seat_y = rng.uniform(0.0, 0.1)
    lw = jitter(rng, 0.05, 0.3)
    for x in (-a * 0.42, -a * 0.2, a * 0.22, a * 0.44):
        p.append(("line", [(x, seat_y), (x + rng.uniform(-0.02, 0.02), 0.49)], lw, 1))
    p.append(("poly", [(-a / 2, seat_y), (a * 0.3, seat_y - 0.06), (a / 2, seat_y), (-a * 0.3, seat_y + 0.07)], 0))
    bx = -a / 2 + 0.02
    p.append(("poly", rect(bx, -0.5, bx + rng.uniform(0.05, 0.08), seat_y + 0.02), 0))
    p.append(("poly", rect(bx + a * 0.5, -0.45, bx + a * 0.5 + 0.06, seat_y - 0.02), 0))
    if rng.random() < 0.6:  # slatted back: open gaps show the background
        for y in np.linspace(-0.45, seat_y - 0.1, int(rng.integers(2, 4))):
            p.append(("line", [(bx, y), (bx + a * 0.53, y + 0.02)], 0.03, 0))
    else:
        p.append(("poly", [(bx, -0.5), (bx + a * 0.55, -0.46), (bx + a * 0.55, -0.1), (bx, -0.12)], 0))
    return Shape(a, p)


def sofa(rng: Rng) -> Shape:
    a = jitter(rng, 2.0, 0.2)
    p: list = [("poly", rect(-a / 2 + 0.1, -0.5, a / 2 - 0.1, 0.1), 0),
               ("poly", rect(-a / 2, -0.05, a / 2, 0.42), 0),
               ("ell", -a / 2 + 0.12, -0.05, 0.14, 0.2, 1), ("ell", a / 2 - 0.12, -0.05, 0.14, 0.2, 1)]
    n = int(rng.integers(2, 4))
    for k in range(n):
        x0 = -a / 2 + 0.25 + k * (a - 0.5) / n
        p.append(("poly", rect(x0 + 0.02, -0.02, x0 + (a - 0.5) / n - 0.02, 0.12), 2))
    for x in (-a / 2 + 0.1, a / 2 - 0.1):
        p.append(("line", [(x, 0.42), (x, 0.5)], 0.04, 1))
    return Shape(a, p)


def diningtable(rng: Rng) -> Shape:
    a = jitter(rng, 1.6, 0.25)
    p: list = []
    top = rng.uniform(-0.5, -0.25)
    th = rng.uniform(0.12, 0.3)
    lw = jitter(rng, 0.07, 0.3)
    for x in (-a * 0.42, a * 0.42) if rng.random() < 0.5 else (-a * 0.42, a * 0.42, -a * 0.3, a * 0.3):
        p.append(("line", [(x, top + th * 0.5), (x, 0.49)], lw, 1))
    if rng.random() < 0.5:
        p.append(("ell", 0, top + th / 2, a / 2, th / 2, 0))
    else:
        p.append(("poly", [(-a / 2, top + th), (-a * 0.35, top), (a * 0.35, top), (a / 2, top + th)], 0))
    p.append(("poly", rect(-a / 2, top + th, a / 2, top + th + 0.04), 2))
    return Shape(a, p)


def pottedplant(rng: Rng) -> Shape:
    a = jitter(rng, 0.85, 0.3)
    p: list = []
    pot_top = rng.uniform(0.1, 0.3)
    pw = a * rng.uniform(0.25, 0.4)
    p.append(("poly", [(-pw, pot_top), (pw, pot_top), (pw * 0.75, 0.5), (-pw * 0.75, 0.5)], 2))
    n_stems = int(rng.integers(3, 8))
    sw = jitter(rng, 0.018, 0.3)
    tips = []
    for _ in range(n_stems):
        tip = (rng.uniform(-a * 0.45, a * 0.45), rng.uniform(-0.5, pot_top - 0.15))
        mid = ((tip[0]) * 0.5 + rng.uniform(-0.05, 0.05), (tip[1] + pot_top) * 0.5)
        p.append(("line", [(rng.uniform(-pw * 0.5, pw * 0.5), pot_top), mid, tip], sw, 0))
        tips.append(tip)
    # Leaves: many small blades, some detached from their stem at this resolution.
    for _ in range(int(rng.integers(8, 26))):
        bx, by = tips[int(rng.integers(len(tips)))]
        lx = bx + rng.normal(0, 0.12)
        ly = by + abs(rng.normal(0, 0.12))
        L = rng.uniform(0.04, 0.11)
        p.append(("ell", lx, min(ly, pot_top - 0.02), L, L * rng.uniform(0.25, 0.45),
                  0 if rng.random() < 0.7 else 1, rng.uniform(0, math.pi)))
    return Shape(a, p)


def tvmonitor(rng: Rng) -> Shape:
    a = jitter(rng, 1.3, 0.2)
    stand = rng.random() < 0.6
    bottom = 0.3 if stand else 0.5
    b = rng.uniform(0.04, 0.1)
    p: list = [("poly", rect(-a / 2, -0.5, a / 2, bottom), 1),
               ("poly", rect(-a / 2 + b, -0.5 + b, a / 2 - b, bottom - b * 1.3), 2)]
    if stand:
        p.append(("line", [(0, bottom), (0, 0.45)], 0.06, 1))
        p.append(("poly", rect(-a * 0.2, 0.44, a * 0.2, 0.5), 1))
    return Shape(a, p)


# ----------------------------------------------------------------------------- distractors
def distractor(rng: Rng) -> Shape:
    """A class-less shape built from the same primitives as the objects.

    Rings, frames, poles, branches, blobs and boxes: each alone resembles a part of some
    class (a wheel, a screen, a leg), so a model cannot shortcut "any ring is a bicycle".
    """
    kind = rng.choice(["blob", "poly", "ring", "frame", "pole", "branch", "box", "star", "bars"],
                      p=[0.18, 0.16, 0.08, 0.08, 0.12, 0.1, 0.12, 0.06, 0.1])
    p: list = []
    if kind == "blob":
        a = rng.uniform(0.5, 2.0)
        for _ in range(int(rng.integers(1, 5))):
            p.append(("ell", rng.uniform(-a / 4, a / 4), rng.uniform(-0.2, 0.2), a * rng.uniform(0.15, 0.3),
                      rng.uniform(0.2, 0.3), int(rng.integers(0, 3)), rng.uniform(0, 3)))
    elif kind == "poly":
        a = rng.uniform(0.5, 2.0)
        n = int(rng.integers(4, 9))
        t = np.sort(rng.uniform(0, 2 * math.pi, n))
        rr = rng.uniform(0.5, 1.0, n)
        p.append(("poly", list(zip((np.cos(t) * rr * a / 2).tolist(), (np.sin(t) * rr * 0.5).tolist())), 0))
    elif kind == "ring":
        a = 1.0
        p.append(("ring", 0, 0, 0.48, rng.uniform(0.05, 0.2), 0))
    elif kind == "frame":
        a = rng.uniform(0.6, 1.6)
        b = rng.uniform(0.05, 0.12)
        p.append(("poly", rect(-a / 2, -0.5, a / 2, 0.5), 0))
        p.append(("poly", rect(-a / 2 + b, -0.5 + b, a / 2 - b, 0.5 - b), 2 if rng.random() < 0.6 else 0))
        if rng.random() < 0.5:
            p.append(("erase", rect(-a / 2 + b, -0.5 + b, a / 2 - b, 0.5 - b)))
    elif kind == "pole":
        a = rng.uniform(0.03, 0.12)
        p.append(("poly", rect(-a / 2, -0.5, a / 2, 0.5), 0))
    elif kind == "branch":
        a = rng.uniform(0.6, 1.5)
        pts = [(rng.uniform(-a / 2, a / 2), rng.uniform(-0.5, 0.5)) for _ in range(int(rng.integers(2, 5)))]
        p.append(("line", pts, rng.uniform(0.015, 0.06), 0))
    elif kind == "box":
        a = rng.uniform(0.4, 2.5)
        p.append(("poly", rect(-a / 2, -0.5, a / 2, 0.5), 0))
        if rng.random() < 0.5:
            p.append(("poly", rect(-a / 2, -0.5, a / 2, rng.uniform(-0.4, 0.2)), 1))
    elif kind == "star":
        a = 1.0
        n = int(rng.integers(5, 9))
        t = np.linspace(0, 2 * math.pi, 2 * n, endpoint=False)
        r = np.where(np.arange(2 * n) % 2 == 0, 0.5, rng.uniform(0.15, 0.35))
        p.append(("poly", list(zip((np.cos(t) * r).tolist(), (np.sin(t) * r).tolist())), 0))
    else:  # bars: a fence or railing section
        a = rng.uniform(1.0, 3.0)
        n = int(rng.integers(3, 8))
        for x in np.linspace(-a / 2 + 0.03, a / 2 - 0.03, n):
            p.append(("poly", rect(x - 0.025, -0.5, x + 0.025, 0.5), 0))
        p.append(("poly", rect(-a / 2, -0.4, a / 2, -0.33), 0))
    return Shape(float(a), p)


#: The 20 VOC classes by label id.
VOC_SHAPES: dict[int, Callable[[Rng], Shape]] = {
    1: aeroplane, 2: bicycle, 3: bird, 4: boat, 5: bottle, 6: bus, 7: car,
    8: lambda r: sitting_cat(r) if r.random() < 0.55 else quadruped(r, "cat"),
    9: chair, 10: lambda r: quadruped(r, "cow"), 11: diningtable,
    12: lambda r: sitting_cat(r) if r.random() < 0.35 else quadruped(r, "dog"),
    13: lambda r: quadruped(r, "horse"), 14: motorbike, 15: person, 16: pottedplant,
    17: lambda r: quadruped(r, "sheep"), 18: sofa, 19: train, 20: tvmonitor,
}
