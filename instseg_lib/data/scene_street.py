"""Cityscapes-like street scenes (2:1, labelIds label space).

A perspective street: sky, buildings and vegetation above, road and sidewalks converging
to a vanishing point, poles/signs/lights, an ego-vehicle hood, and the 8 instance classes
placed on the ground plane at distances drawn uniformly in metres. Uniform distance means
most objects are far and small (Cityscapes' "many small far objects"); class counts follow
the Cityscapes fine train set's heavy imbalance (about 9.5 cars and 6 persons per image,
but a train in one image out of twenty). Parked cars form overlapping rows and distant
crowds are annotated as *groups* (labelId only, no instance id), as Cityscapes does.
"""

from __future__ import annotations

import numpy as np

from .classes import CS_ID
from .looks import appearance_of
from .render import Placement, finish
from .scene import Canvas, Scene
from .shapes import bicycle, bus, car, motorbike, person, train
from .stuff import ellipses_mask, paint_region, poly_mask

Rng = np.random.Generator

#: Mean instances per image (Cityscapes fine train: instances / 2975 images, rounded).
CS_MEAN_COUNTS = {"car": 9.5, "person": 6.1, "bicycle": 1.2, "rider": 0.6, "motorcycle": 0.25,
                  "truck": 0.16, "bus": 0.13, "train": 0.06}
#: Real-world object heights in metres.
CS_HEIGHT_M = {"car": 1.5, "person": 1.75, "bicycle": 1.05, "rider": 1.75, "motorcycle": 1.2,
               "truck": 3.2, "bus": 3.2, "train": 3.8}


def _truck(rng: Rng):
    from .render import Shape, rect
    a = rng.uniform(1.0, 2.6)
    cab = a * rng.uniform(0.25, 0.4)
    p = [("poly", rect(-a / 2, -0.5, a / 2 - cab, 0.35), 0),
         ("poly", rect(a / 2 - cab, -0.2, a / 2, 0.35), 1),
         ("poly", rect(a / 2 - cab * 0.8, -0.15, a / 2 - 0.05, 0.05), 2)]
    for x in (-a / 2 + 0.25, a / 2 - cab / 2):
        p.append(("ell", x, 0.38, 0.12, 0.12, 1))
    return Shape(a, p)


SHAPES = {
    "car": lambda r, side: car(r, "side" if side else "rear"),
    "person": lambda r, side: person(r, sitting=False),
    "rider": lambda r, side: person(r, sitting=True),
    "bicycle": lambda r, side: bicycle(r),
    "motorcycle": lambda r, side: motorbike(r),
    "truck": lambda r, side: _truck(r),
    "bus": lambda r, side: bus(r, "side" if side else "front"),
    "train": lambda r, side: train(r),
}


def street_scene(rng: Rng, H: int, W: int) -> Scene:
    cv = Canvas(rng, H, W)
    yh = H * rng.uniform(0.38, 0.5)           # horizon
    xv = W * rng.uniform(0.42, 0.58)          # vanishing point
    road_l, road_r = W * rng.uniform(0.05, 0.25), W * rng.uniform(0.75, 0.95)
    side_w = W * rng.uniform(0.15, 0.35)
    px_per_m_bottom = (road_r - road_l) / rng.uniform(9, 13)

    def at(y: float, x_bottom: float) -> float:  # x of a ground line through x_bottom
        t = (y - yh) / (H - yh)
        return xv + (x_bottom - xv) * t

    # sky, then buildings on both sides
    paint_region(rng, cv, np.ones((H, W), bool), CS_ID["sky"], look="sky")
    outer_l, outer_r = road_l - side_w, road_r + side_w

    def ground_y(x: float) -> float:  # row where the building line meets the ground at column x
        if x < xv:
            t = (xv - x) / max(xv - outer_l, 1e-3)
        else:
            t = (x - xv) / max(outer_r - xv, 1e-3)
        return min(H + 1.0, yh + (H - yh) * t)

    for side in (-1, 1):
        x_edge = 0.0 if side < 0 else float(W)
        xs = np.sort(rng.uniform(0, 1, int(rng.integers(2, 6))))
        bounds = [0.0] + xs.tolist() + [1.0]
        for a, b in zip(bounds[:-1], bounds[1:]):
            x0 = x_edge + (xv - x_edge) * a * 0.97
            x1 = x_edge + (xv - x_edge) * b * 0.97
            height = rng.uniform(0.5, 1.4) * yh
            top0 = yh - height * (1 - a * 0.97)
            top1 = yh - height * (1 - b * 0.97)
            # The sidewalks are painted later and cover any overshoot of this quad.
            pts = [(x0, top0), (x1, top1), (x1, ground_y(x1)), (x0, ground_y(x0))]
            name = "building" if rng.random() < 0.85 else "brick"
            label = CS_ID["building"] if name == "building" else CS_ID["wall"]
            paint_region(rng, cv, poly_mask(H, W, [pts]), label, look=name, scale=H / 6)
    # vegetation: tree crowns above the sidewalks, hedges
    for _ in range(int(rng.poisson(2.5))):
        yb = yh + (H - yh) * rng.uniform(0.0, 0.5)
        s = (yb - yh) / (H - yh) + 0.15
        xc = at(yb, rng.choice([road_l - side_w, road_r + side_w]) + rng.normal(0, side_w * 0.5))
        ells = [(xc + rng.normal(0, 20 * s * H / 100), yb - H * s * rng.uniform(0.4, 0.8), H * s * rng.uniform(0.15, 0.35),
                 H * s * rng.uniform(0.12, 0.3)) for _ in range(int(rng.integers(2, 6)))]
        m = ellipses_mask(H, W, ells) | poly_mask(H, W, [[(xc - 0.02 * H * s, yb - H * s * 0.4), (xc + 0.02 * H * s, yb - H * s * 0.4),
                                                       (xc + 0.02 * H * s, yb), (xc - 0.02 * H * s, yb)]])
        paint_region(rng, cv, m, CS_ID["vegetation"], look="vegetation", scale=H / 8)
    # ground: sidewalks, optional terrain strip, road
    for side, xb in ((-1, road_l), (1, road_r)):
        outer = xb + side * side_w
        paint_region(rng, cv, poly_mask(H, W, [[(xv, yh), (xb, H), (outer, H), (at(yh + 1, outer), yh + 1)]]),
                     CS_ID["sidewalk"], look="sidewalk")
        if rng.random() < 0.35:
            o2 = outer + side * side_w * rng.uniform(0.3, 0.8)
            paint_region(rng, cv, poly_mask(H, W, [[(xv, yh), (outer, H), (o2, H)]]), CS_ID["terrain"], look="terrain")
    paint_region(rng, cv, poly_mask(H, W, [[(xv - 1, yh), (xv + 1, yh), (road_r, H), (road_l, H)]]), CS_ID["road"], look="road")
    # lane markings: part of the road label, only visible in the image
    lane = poly_mask(H, W, [[(xv - 0.3, yh), (xv + 0.3, yh), (xv + W * 0.006, H), (xv - W * 0.006, H)]])
    dash = (np.arange(H)[:, None] // max(2, H // 24)) % 2 == 0
    cv.img[lane & dash] = np.float32(0.85)
    if rng.random() < 0.4:  # fence or wall along one sidewalk
        side = rng.choice([-1, 1])
        xb = (road_l if side < 0 else road_r) + side * side_w
        top = [(at(yh + 1, xb), yh - 2), (xb, H * rng.uniform(0.6, 0.85)), (xb, H), (at(yh + 1, xb), yh + 1)]
        name = "fence" if rng.random() < 0.7 else "brick"
        paint_region(rng, cv, poly_mask(H, W, [top]), CS_ID["fence"] if name == "fence" else CS_ID["wall"], look=name)
    # static clutter (bins, bollards) and the odd "ground"/"dynamic" patch
    for _ in range(int(rng.poisson(1.5))):
        yb = yh + (H - yh) * rng.uniform(0.05, 0.8)
        s = (yb - yh) / (H - yh)
        xc = at(yb, rng.choice([road_l - side_w * 0.5, road_r + side_w * 0.5]))
        w, h = H * s * rng.uniform(0.03, 0.12), H * s * rng.uniform(0.04, 0.15)
        paint_region(rng, cv, poly_mask(H, W, [[(xc - w, yb - h), (xc + w, yb - h), (xc + w, yb), (xc - w, yb)]]),
                     CS_ID["static"] if rng.random() < 0.8 else CS_ID["dynamic"], look="static")
    _poles_and_signs(rng, cv, yh, xv, road_l, road_r, side_w, at)
    _traffic(rng, cv, yh, xv, road_l, road_r, side_w, px_per_m_bottom, at)
    # ego vehicle hood and rectification border: void in the evaluation (trainId 255)
    hood = H * rng.uniform(0.04, 0.1)
    ys = H - hood * (1 - ((np.arange(W) - W / 2) / (W / 2)) ** 2 * 0.6)
    ego = np.arange(H)[:, None] >= ys[None, :]
    paint_region(rng, cv, ego, CS_ID["ego vehicle"], look="ego vehicle")
    if rng.random() < 0.5:
        bw = max(1, H // 100)
        m = np.zeros((H, W), bool)
        m[:, :bw] = True
        m[H - 3 * bw:, : W // 6] = True
        paint_region(rng, cv, m & ~ego, CS_ID["rectification border"], look="rectification border")
    return cv.finish(finish(rng, cv.img))


def _poles_and_signs(rng, cv, yh, xv, road_l, road_r, side_w, at) -> None:
    H, W = cv.H, cv.W
    for _ in range(int(rng.poisson(4))):
        d = rng.uniform(5, 60)
        yb = yh + (H - yh) * 5 / d
        side = rng.choice([-1, 1])
        xb = (road_l if side < 0 else road_r) + side * side_w * rng.uniform(0.1, 0.5)
        x = at(yb, xb)
        s = (yb - yh) / (H - yh)
        hp = H * 0.9 * s + 2
        wp = max(1.0, H * 0.012 * s)
        paint_region(rng, cv, poly_mask(H, W, [[(x - wp, yb - hp), (x + wp, yb - hp), (x + wp, yb), (x - wp, yb)]]),
                     CS_ID["pole"], look="pole")
        r = rng.random()
        top = yb - hp
        sz = max(1.5, H * 0.05 * s)
        if r < 0.45:
            paint_region(rng, cv, ellipses_mask(H, W, [(x, top + sz, sz, sz)]), CS_ID["traffic sign"], look="traffic sign")
        elif r < 0.7:
            paint_region(rng, cv, poly_mask(H, W, [[(x - sz * 0.5, top), (x + sz * 0.5, top), (x + sz * 0.5, top + sz * 2.5),
                                                  (x - sz * 0.5, top + sz * 2.5)]]), CS_ID["traffic light"], look="traffic light")


def _traffic(rng, cv, yh, xv, road_l, road_r, side_w, ppm_bottom, at) -> None:
    """Place the 8 instance classes on the ground plane, far to near (painter's order)."""
    H = cv.H
    objs = []
    for name, mean in CS_MEAN_COUNTS.items():
        n = int(rng.negative_binomial(1.5, 1.5 / (1.5 + mean)))
        if name == "car":  # about half of the cars stand in parked rows along the kerbs
            n_rows = int(rng.poisson(1.0))
            for _ in range(n_rows):
                lat = rng.choice([-1, 1]) * rng.uniform(3.8, 5.0)
                d = rng.uniform(4, 30)
                for _ in range(int(rng.integers(2, 7))):
                    objs.append((d, "car", lat + rng.normal(0, 0.15), True))
                    d += rng.uniform(3.5, 6.0)
                n = max(0, n - 3)
        for _ in range(n):
            d = rng.uniform(5, 80) if name != "train" else rng.uniform(15, 60)
            on_road = name in ("car", "truck", "bus", "train", "motorcycle") or (name in ("bicycle", "rider") and rng.random() < 0.5)
            if on_road:
                lat = rng.uniform(-4.0, 4.0)
                side = name in ("bicycle", "motorcycle", "rider", "train") or rng.random() < 0.15
            else:
                lat = rng.choice([-1, 1]) * rng.uniform(5.2, 8.0)   # sidewalk
                side = True
            if name == "person" and rng.random() < 0.3:  # people walk in small groups
                for _ in range(int(rng.integers(1, 4))):
                    objs.append((d + rng.normal(0, 0.6), name, lat + rng.normal(0, 0.5), side))
            objs.append((d, name, lat, side))
    # riders sit on a bicycle or motorcycle at the same spot
    objs.sort(key=lambda o: -o[0])
    for d, name, lat, side in objs:
        yb = yh + (H - yh) * 5.0 / d
        ppm = ppm_bottom * 5.0 / d
        x = xv + lat * ppm + rng.normal(0, 0.3) * ppm
        h = CS_HEIGHT_M[name] * ppm
        if h < 1.5:
            continue
        shape = SHAPES[name](rng, side)
        if name == "car" and side:
            shape.aspect *= rng.uniform(0.6, 1.0)
        app = appearance_of(rng, name)
        group = d > 45 and name in ("car", "person", "bicycle") and rng.random() < 0.35
        pl = Placement(x, yb - h / 2, h, rng.normal(0, 0.02), bool(rng.random() < 0.5))
        if name == "rider":
            vehicle = "bicycle" if rng.random() < 0.75 else "motorcycle"
            vh = CS_HEIGHT_M[vehicle] * ppm
            cv.draw(SHAPES[vehicle](rng, True), Placement(x, yb - vh / 2, vh, 0.0, pl.flip), appearance_of(rng, vehicle),
                    CS_ID[vehicle])
            pl = Placement(x, yb - vh * 0.55 - h * 0.35, h * 0.8, 0.0, pl.flip)
        cv.draw(shape, pl, app, CS_ID[name], group=group)
