"""VOC-like scenes: the generator behind the ``voc``, ``sbd``, ``boxes`` and ``coco`` presets.

One scene = a cluttered, unlabelled backdrop + a calibrated set of object groups + class-less
distractors, painted back to front. What it guarantees (the issue's realism list):

- *touching and occluding instances of one class*: groups laid out in overlapping rows
  or clusters, painted in depth order (lower in the image = nearer);
- *an instance split in two by an occluder*: with probability ``p_split`` a pole,
  branch or a person is painted across the middle of a large instance;
- *scale range*: log-normal instance areas (sigma 1.35) from a few pixels to most of
  the image, per class medians calibrated on VOC 2012 (:mod:`.calibration`);
- *class imbalance*: classes drawn with VOC's per-class image frequencies (person 30%
  of images, sheep 4%), background about 70% of pixels;
- *thin and fragmented classes*: bicycle, pottedplant, chair templates (:mod:`.shapes`);
- *per-instance appearance* (twin v2, :mod:`.looks`): each class has a characteristic
  palette, texture family and parts; every instance draws its own colours inside them, and
  some pairs overlap on purpose (cow/horse/sheep, cat/dog, bus/train). 40% of
  multi-instance groups share one look (a flock of white sheep), so instances must be told
  apart by shape;
- *clutter and distractors*: a backdrop of stuff (sky, wall, grass, road, water...), and
  class-less shapes, mostly in stuff looks, a quarter object-like, some in front.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import calibration as cal
from .classes import VOC_CLASSES
from .looks import BACKDROP_BOTTOM, BACKDROP_TOP, appearance_of, stuff_colors
from .render import Appearance, Placement, Shape, rasterise, texture, value_noise
from .scene import Canvas, Scene, _Obj
from .shapes import VOC_SHAPES, distractor, person

Rng = np.random.Generator


@dataclass(frozen=True)
class VocStyle:
    """Knobs that distinguish the VOC-like presets (VOC/SBD/boxes vs the COCO twin)."""

    classes_per_image: dict[int, float]
    instance_scale: float = 1.0     # multiplies MEAN_INSTANCES - 1
    size_scale: float = 1.0         # multiplies SIZE_MEDIAN
    n_distractors: float = 4.0
    p_split: float = 0.35
    n_extra_objects: float = 0.0    # COCO: objects of non-VOC categories (instances, background class)
    p_crowd: float = 0.0            # COCO: a dense crowd annotated as one iscrowd region
    difficult_frac: float = 3e-4    # VOC: tiny instances may be "difficult" (void)
    p_difficult: float = 0.5


VOC_STYLE = VocStyle(classes_per_image=cal.CLASSES_PER_IMAGE)
#: COCO has more, smaller objects per image (about 7 instances, 41% "small") and crowds.
COCO_STYLE = VocStyle(
    classes_per_image={1: 0.35, 2: 0.3, 3: 0.2, 4: 0.1, 5: 0.05}, instance_scale=2.0, size_scale=0.45,
    n_distractors=3.0, p_split=0.35, n_extra_objects=2.0, p_crowd=0.15, difficult_frac=0.0, p_difficult=0.0,
)


# ----------------------------------------------------------------------------- backdrop
def backdrop(rng: Rng, H: int, W: int) -> tuple[np.ndarray, float]:
    """An unlabelled background: stuff above a horizon (sky, wall, buildings...) and below it
    (grass, road, water, floor...), each with its stuff look (:mod:`.looks`).

    Returns the float image and the horizon row (objects stand below it).
    """
    horizon = rng.uniform(0.25, 0.7) * H
    c1, c2, style = stuff_colors(rng, str(rng.choice(BACKDROP_TOP)))
    top = texture(rng, H, W, style, c1, c2, H)
    c1, c2, style = stuff_colors(rng, str(rng.choice(BACKDROP_BOTTOM)))
    bot = texture(rng, H, W, style, c1, c2, H / 2)
    # A wavy, not straight, horizon, blended over a few pixels.
    wave = value_noise(rng, 1, W, W / 3)[0] * 0.08 * H
    yy = np.arange(H, dtype=np.float32)[:, None]
    blend = np.clip((yy - horizon - wave[None, :]) / max(1.0, H * 0.02), 0, 1)[..., None]
    img = top * (1 - blend) + bot * blend
    return img.astype(np.float32), float(horizon)


#: Clutter drawn with an object-like, class-independent look (twin v1's appearance); the
#: rest wears stuff looks, as backdrop structures (trees, rocks, posts, fences) do in photos.
P_OBJECT_LIKE_DISTRACTOR = 0.25
CLUTTER_LOOKS = ("tree", "rock", "building", "fence", "pole", "brick", "vegetation", "ground", "window")


def clutter_appearance(rng: Rng) -> Appearance:
    """The look of one class-less shape: mostly stuff, sometimes object-like."""
    if rng.random() < P_OBJECT_LIKE_DISTRACTOR:
        return Appearance.sample(rng)
    return appearance_of(rng, str(rng.choice(CLUTTER_LOOKS)), off_palette=0.0)


def add_clutter(rng: Rng, cv: Canvas, n_mean: float, big: bool, front: bool = False) -> None:
    """Class-less shapes: large background structures, or small distractors."""
    n = int(rng.poisson(n_mean))
    for _ in range(n):
        shp = distractor(rng)
        if big:
            h = cv.H * rng.uniform(0.25, 1.1)
        else:
            h = math.sqrt(cv.H * cv.W * math.exp(rng.normal(math.log(0.01), 1.4)))
        pl = Placement(rng.uniform(0, cv.W), rng.uniform(0, cv.H), max(h, 2.0), rng.uniform(-0.6, 0.6), rng.random() < 0.5)
        cv.draw(shp, pl, clutter_appearance(rng), 0, instance=False)


# ----------------------------------------------------------------------------- object sampling
def sample_classes(rng: Rng, style: VocStyle) -> list[int]:
    ks = sorted(style.classes_per_image)
    p = np.array([style.classes_per_image[k] for k in ks], float)
    k = int(rng.choice(ks, p=p / p.sum()))
    weights = np.array([cal.CLASS_WEIGHT[c] for c in range(1, 21)], float)
    chosen: list[int] = []
    for _ in range(k):
        w = weights.copy()
        for c in chosen:
            w[c - 1] = 0
            for other in cal.COOCCUR.get(VOC_CLASSES[c], ()):
                w[VOC_CLASSES.index(other) - 1] *= 4.0
        c = int(rng.choice(np.arange(1, 21), p=w / w.sum()))
        chosen.append(c)
    return chosen


def n_instances(rng: Rng, cls: int, style: VocStyle) -> int:
    m = (cal.MEAN_INSTANCES[VOC_CLASSES[cls]] - 1) * style.instance_scale
    if m <= 0:
        return 1
    # Negative binomial (dispersion 0.8): mostly 1-2, sometimes a herd or crowd of 10+.
    r = 0.8
    return 1 + int(rng.negative_binomial(r, r / (r + m)))


def probe_area(shape: Shape) -> float:
    """Drawn pixels per squared height (the shape's fill), measured at height 64."""
    r = rasterise(shape, Placement(64, 64, 64), 128, 128)
    return 1.0 if r is None else float((r[0] > 0).sum()) / 64.0 ** 2


@dataclass
class _Item:
    cls: int
    shape: Shape
    pl: Placement
    depth: float
    tag: int = 0
    label: int | None = None
    app: Appearance | None = None


def layout_groups(rng: Rng, H: int, W: int, horizon: float, classes: list[int], style: VocStyle) -> list[_Item]:
    items: list[_Item] = []
    for gi, cls in enumerate(classes):
        name = VOC_CLASSES[cls]
        n = n_instances(rng, cls, style)
        # Bigger groups are made of smaller members (a flock is far away).
        med = cal.SIZE_MEDIAN[name] * style.size_scale / math.sqrt(n)
        area = math.exp(rng.normal(math.log(med), cal.SIZE_SIGMA[name]))
        if gi == 0:  # the photo's subject is never a speck (VOC's 5% quantile: 1 component)
            area = max(area, cal.MIN_SUBJECT_AREA * style.size_scale)
        area = min(area, 2.5)  # above 1: a close-up, truncated by the frame
        arrangement = cal.ARRANGEMENT.get(name, "cluster")
        floating = name in cal.FLOATING
        # A flock of white sheep, a row of identical chairs: members of a group often look
        # alike, so instances must be separated by shape and position, not colour.
        shared = appearance_of(rng, name) if n > 1 and rng.random() < 0.4 else None
        first = len(items)
        ax = rng.uniform(0.1, 0.9) * W
        ay = rng.uniform(0.05, 0.6) * H if floating else rng.uniform(horizon, H * 1.05)
        cursor = 0.0
        for i in range(n):
            shape = VOC_SHAPES[cls](rng)
            a_i = area * math.exp(rng.normal(0, 0.3))
            h = math.sqrt(a_i * H * W / max(probe_area(shape), 1e-3))
            h = float(np.clip(h, 2.0, 2.5 * H))
            w = h * shape.aspect
            if h > 0.6 * H and n == 1:  # a close-up is framed: roughly centred, cut by the borders
                items.append(_Item(cls, shape, Placement(rng.uniform(0.3, 0.7) * W, H / 2 + rng.normal(0, 0.12) * h, h,
                                                         rng.normal(0, 0.07), bool(rng.random() < 0.5)), H + rng.normal(0, 0.03 * H)))
                continue
            if arrangement == "row":
                # Neighbours overlap by up to a third of a width: touching and occluding.
                x = ax + cursor
                cursor += w * rng.uniform(0.65, 1.15) * (1 if rng.random() < 0.85 else -1)
                y = ay + rng.normal(0, 0.06 * h)
            else:
                spread = 0.6 * math.sqrt(n) * w
                x = ax + rng.normal(0, spread)
                y = ay + rng.normal(0, spread * 0.35)
            cy = (y - h / 2) if not floating else y
            angle = rng.normal(0, 0.25 if floating else 0.07)
            items.append(_Item(cls, shape, Placement(x, cy, h, angle, bool(rng.random() < 0.5)), y + rng.normal(0, 0.03 * H)))
        group = items[first:]
        if arrangement == "row" and len(group) > 1:  # centre the row on its anchor
            shift = ax - float(np.mean([it.pl.cx for it in group]))
            for it in group:
                it.pl.cx += shift
        for it in group:
            it.app = shared
    return items


def add_interactions(rng: Rng, items: list[_Item]) -> None:
    """Riders on horses/bikes, things on tables: class pairs that overlap in VOC."""
    persons = [it for it in items if it.cls == 15]
    for it in items:
        if it.cls in (2, 13, 14) and persons and rng.random() < 0.6:
            rider = persons.pop()
            rider.shape = person(rng, sitting=True)
            h = it.pl.height * rng.uniform(1.0, 1.4)
            rider.pl = Placement(it.pl.cx + rng.normal(0, 0.05) * h, it.pl.cy - it.pl.height * 0.45, h, rng.normal(0, 0.05), it.pl.flip)
            rider.depth = it.depth + 1e-3
        if it.cls == 11:
            for other in items:
                if other.cls in (5, 16) and rng.random() < 0.7:
                    h = other.pl.height
                    top = it.pl.cy - it.pl.height * 0.35
                    other.pl = Placement(it.pl.cx + rng.uniform(-0.4, 0.4) * it.pl.height * it.shape.aspect,
                                         top - h / 2, h, 0.0, other.pl.flip)
                    other.depth = it.depth + 1e-3


def split_occluder(rng: Rng, cv: Canvas, iid: int, it: _Item, style: VocStyle) -> None:
    """Paint a pole, branch or a person across the middle of instance ``iid``.

    Splits one instance into two visible parts (the "same id, two components" case
    that grouping methods must handle).
    """
    w = it.pl.height * it.shape.aspect
    x = it.pl.cx + rng.uniform(-0.15, 0.15) * w
    if rng.random() < 0.35:
        shp = person(rng)
        h = it.pl.height * rng.uniform(1.1, 1.6)
        cv.draw(shp, Placement(x, it.pl.cy + it.pl.height / 2 - h / 2 + 0.05 * h, h, 0.0, bool(rng.random() < 0.5)),
                appearance_of(rng, "person"), 15)
        return
    from .render import rect
    pw = rng.uniform(0.08, 0.22) * w / max(it.pl.height * 1.6, 1e-3)
    shp = Shape(pw, [("poly", rect(-pw / 2, -0.5, pw / 2, 0.5), 0)])
    cv.draw(shp, Placement(x, it.pl.cy, it.pl.height * 1.6, rng.normal(0, 0.15), False),
            appearance_of(rng, str(rng.choice(("pole", "tree"))), off_palette=0.0), 0, instance=False)


def voc_scene(rng: Rng, H: int, W: int, style: VocStyle = VOC_STYLE) -> Scene:
    """Render one VOC-like scene of size ``H x W``."""
    bg, horizon = backdrop(rng, H, W)
    cv = Canvas(rng, H, W, bg)
    add_clutter(rng, cv, 2.5, big=True)
    add_clutter(rng, cv, style.n_distractors * 0.6, big=False)
    classes = sample_classes(rng, style)
    items = layout_groups(rng, H, W, horizon, classes, style)
    add_interactions(rng, items)
    if style.n_extra_objects:
        from .classes import COCO_VOC_IDS, COCO_CATEGORIES
        others = [cid for cid, _, _ in COCO_CATEGORIES if cid not in COCO_VOC_IDS]
        for _ in range(int(rng.poisson(style.n_extra_objects))):
            shp = distractor(rng)
            h = math.sqrt(H * W * math.exp(rng.normal(math.log(0.01), 1.2)) / max(probe_area(shp), 1e-3))
            pl = Placement(rng.uniform(0, W), rng.uniform(horizon * 0.8, H), float(np.clip(h, 2, 1.5 * H)), rng.normal(0, 0.2), False)
            items.append(_Item(0, shp, pl, pl.cy + pl.height / 2, tag=int(rng.choice(others)), label=0))
    items.sort(key=lambda it: it.depth)
    split_target = None
    if rng.random() < style.p_split:
        big = [k for k, it in enumerate(items) if it.label is None and it.pl.height > 0.2 * H]
        if big:
            split_target = big[int(rng.integers(len(big)))]
    crowd_done = False
    for k, it in enumerate(items):
        name = VOC_CLASSES[it.cls] if it.label is None else ""
        # Non-VOC COCO objects (label 0) wear the class-independent look.
        app = it.app or (appearance_of(rng, name) if name else Appearance.sample(rng))
        label = it.cls if it.label is None else it.label
        iid = cv.draw(it.shape, it.pl, app, label, tag=it.tag)
        if k == split_target and iid:
            split_occluder(rng, cv, iid, it, style)
        # COCO: sometimes a dense far-away crowd of people, annotated as one iscrowd region.
        if style.p_crowd and not crowd_done and it.cls == 15 and rng.random() < style.p_crowd:
            crowd_done = True
            _crowd(rng, cv, it)
        if rng.random() < 0.08:  # a distractor that happens to stand in front
            add_clutter(rng, cv, 1.0, big=False)
    from .render import finish
    return cv.finish(finish(rng, cv.img), style.difficult_frac, style.p_difficult)


def _crowd(rng: Rng, cv: Canvas, it: _Item) -> None:
    members = Canvas(rng, cv.H, cv.W, cv.img)
    h = max(3.0, it.pl.height * rng.uniform(0.25, 0.45))
    y = it.pl.cy + it.pl.height * rng.uniform(-0.6, -0.2)
    for j in range(int(rng.integers(6, 14))):
        members.draw(person(rng), Placement(it.pl.cx + (j - 5) * h * 0.3 + rng.normal(0, h * 0.1), y, h),
                     appearance_of(rng, "person"), 15)
    m = members.inst > 0
    cv.sem[m] = 15
    cv.inst[m] = 0
    cv.objs.append(_Obj(15, 1, False, int(m.sum()), crowd=True))
    cv.inst[m] = len(cv.objs)
