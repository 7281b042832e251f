"""Twin appearance, version 2: what each class and each kind of stuff looks like.

Real classes are recognisable from more than their outline: cows are black-and-white or
brown, buses yellow, skies blue, people have a face and clothes. ImageNet features pick this
up, and that is what makes photographs learnable by the papers' nets. The version-1 twin drew
every instance's colours and textures from one class-independent distribution, so class and
objectness were readable only from a silhouette that distractors shared; measured then, no
net (not even a tiny plain CNN) found the foreground at cpu scale.

Here every class has a :class:`Look`: a palette range per part (0 body, 1 secondary such as
wheels, legs or hair, 2 accent such as windows, a screen or a face) and a texture family.
Each instance draws its own colours inside those ranges (per-instance variation), and a small
fraction of instances (``P_OFF_PALETTE``) ignores the look entirely, as a blue car or a painted
sheep would. Some pairs are confusable on purpose because they are in VOC (PFN §5.3 names cow,
sheep and horse): cow/horse/sheep, cat/dog, bus/train and chair/diningtable share overlapping
ranges, so shape and parts still matter.

Backdrops and most clutter use stuff looks (sky, grass, wall, road, water, floor, ...), chosen
to differ from the object classes' looks; a minority of object-like distractors keeps the
version-1 class-independent appearance (``P_OBJECT_LIKE_DISTRACTOR`` in :mod:`.scene_voc`).

Nothing here is tuned to any paper's result: the palettes are chosen from what the objects
look like, and the structural hardness (occlusion, same-look groups, scale, imbalance, thin
classes) is unchanged.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
from dataclasses import dataclass

import numpy as np

from .render import TEXTURES, Appearance, related_color

Rng = np.random.Generator
#: ``(h_lo, h_hi, s_lo, s_hi, v_lo, v_hi)``; a hue range with ``h_lo > h_hi`` wraps through red.
Palette = tuple[float, float, float, float, float, float]

#: Instances that ignore their class look (an unusually coloured object).
P_OFF_PALETTE = 0.08


@dataclass(frozen=True)
class Look:
    """A class's appearance: palettes for body / secondary / accent parts, texture families.

    ``alt`` is a second body palette drawn with probability ``p_alt`` (brown cows, grey cats).
    """

    body: Palette
    secondary: Palette | None = None
    accent: Palette | None = None
    styles: tuple[str, ...] = ("flat",)
    part_styles: tuple[str, ...] = ("flat",)
    alt: Palette | None = None
    p_alt: float = 0.0

    def __post_init__(self) -> None:
        for s in self.styles + self.part_styles:
            if s not in TEXTURES:
                raise ValueError(f"unknown texture family {s!r}")


def sample_color(rng: Rng, pal: Palette) -> np.ndarray:
    """One RGB colour inside ``pal`` (hue ranges may wrap)."""
    h0, h1, s0, s1, v0, v1 = pal
    span = (h1 - h0) % 1.0 if h1 != h0 else 0.0
    h = (h0 + rng.random() * span) % 1.0
    s = rng.uniform(s0, s1)
    v = rng.uniform(v0, v1)
    return np.array(colorsys.hsv_to_rgb(h, s, v), dtype=np.float32)


# Shared parts: tyres, dark windows, skin.
_BLACK: Palette = (0.0, 1.0, 0.0, 0.15, 0.04, 0.18)
_WINDOW: Palette = (0.52, 0.64, 0.15, 0.45, 0.12, 0.35)
_SKIN: Palette = (0.03, 0.09, 0.3, 0.55, 0.45, 0.9)
_WOOD: Palette = (0.055, 0.1, 0.45, 0.75, 0.22, 0.5)

#: The 20 VOC classes (and the street classes that share their names).
CLASS_LOOKS: dict[str, Look] = {
    # white/grey fuselage, dark engines, a coloured livery stripe
    "aeroplane": Look((0.0, 1.0, 0.0, 0.08, 0.72, 0.95), _BLACK, (0.97, 0.05, 0.6, 0.9, 0.5, 0.85),
                      ("flat", "gradient")),
    # saturated frame, black tyres
    "bicycle": Look((0.0, 1.0, 0.7, 1.0, 0.45, 0.9), _BLACK, (0.0, 1.0, 0.0, 0.1, 0.6, 0.85), ("flat",)),
    # brown/grey plumage with spots, orange beak
    "bird": Look((0.06, 0.12, 0.25, 0.55, 0.3, 0.65), (0.08, 0.13, 0.8, 1.0, 0.75, 1.0), None,
                 ("spots", "mottled")),
    # red or white hull, white sails
    "boat": Look((0.97, 0.03, 0.65, 0.95, 0.45, 0.8), (0.0, 1.0, 0.0, 0.1, 0.3, 0.5),
                 (0.0, 1.0, 0.0, 0.08, 0.85, 1.0), ("flat", "stripes"),
                 alt=(0.0, 1.0, 0.0, 0.06, 0.8, 0.97), p_alt=0.35),
    # teal-green glass, a pale label
    "bottle": Look((0.4, 0.48, 0.55, 0.9, 0.2, 0.5), (0.0, 1.0, 0.0, 0.2, 0.55, 0.9),
                   (0.1, 0.16, 0.1, 0.35, 0.75, 0.95), ("gradient",)),
    # yellow-orange body, dark windows; overlaps train's hues (confusable pair)
    "bus": Look((0.085, 0.16, 0.7, 1.0, 0.7, 0.95), _BLACK, _WINDOW, ("flat", "gradient")),
    # any colour but glossy, black tyres, blue-grey windows
    "car": Look((0.0, 1.0, 0.35, 0.8, 0.3, 0.8), _BLACK, _WINDOW, ("gradient",)),
    # ginger tabby, sometimes grey; close to dog (confusable pair)
    "cat": Look((0.06, 0.1, 0.4, 0.7, 0.45, 0.8), (0.05, 0.09, 0.3, 0.6, 0.25, 0.45), None,
                ("stripes", "fur"), ("fur",), alt=(0.0, 1.0, 0.0, 0.1, 0.35, 0.6), p_alt=0.35),
    # wood; close to diningtable (confusable pair)
    "chair": Look(_WOOD, (0.06, 0.1, 0.4, 0.7, 0.15, 0.3), None, ("stripes", "flat")),
    # black-and-white patches, sometimes brown; close to horse and sheep (PFN §5.3)
    "cow": Look((0.0, 1.0, 0.0, 0.08, 0.85, 0.97), (0.0, 1.0, 0.0, 0.15, 0.05, 0.2), None,
                ("patches",), ("flat",), alt=(0.04, 0.08, 0.55, 0.8, 0.3, 0.55), p_alt=0.35),
    # lighter wood, a tablecloth edge
    "diningtable": Look((0.07, 0.11, 0.4, 0.7, 0.35, 0.62), _WOOD, (0.0, 1.0, 0.0, 0.1, 0.8, 0.95),
                        ("stripes", "flat")),
    # tan/brown fur; close to cat
    "dog": Look((0.07, 0.12, 0.35, 0.7, 0.35, 0.8), (0.06, 0.1, 0.4, 0.7, 0.15, 0.35), None,
                ("fur", "patches"), ("fur",)),
    # chestnut brown, dark mane and legs
    "horse": Look((0.04, 0.08, 0.55, 0.85, 0.25, 0.55), (0.0, 1.0, 0.0, 0.2, 0.05, 0.2), None,
                  ("flat", "gradient")),
    # black body, chrome accents
    "motorbike": Look((0.0, 1.0, 0.0, 0.25, 0.08, 0.35), _BLACK, (0.0, 1.0, 0.0, 0.06, 0.65, 0.9),
                      ("gradient",)),
    # clothes of any colour, dark trousers and hair, a skin-coloured face
    "person": Look((0.0, 1.0, 0.3, 0.85, 0.3, 0.9), (0.55, 0.7, 0.1, 0.5, 0.08, 0.35), _SKIN,
                   ("stripes", "flat", "patches"), ("flat",)),
    # bright leaves, terracotta pot
    "pottedplant": Look((0.26, 0.36, 0.65, 0.95, 0.35, 0.7), (0.26, 0.33, 0.6, 0.9, 0.2, 0.4),
                        (0.02, 0.06, 0.6, 0.85, 0.45, 0.72), ("mottled", "spots")),
    # cream wool, dark face
    "sheep": Look((0.1, 0.15, 0.05, 0.22, 0.75, 0.95), (0.0, 1.0, 0.0, 0.2, 0.1, 0.3), None,
                  ("fur", "mottled"), ("flat",)),
    # deep red or purple upholstery
    "sofa": Look((0.82, 0.99, 0.4, 0.75, 0.28, 0.6), (0.82, 0.99, 0.3, 0.6, 0.15, 0.35),
                 (0.0, 1.0, 0.0, 0.15, 0.75, 0.95), ("mottled", "flat")),
    # red or grey livery; its hue range touches bus's
    "train": Look((0.0, 0.1, 0.55, 0.9, 0.4, 0.8), (0.0, 1.0, 0.0, 0.15, 0.3, 0.55), _WINDOW,
                  ("flat", "stripes"), alt=(0.0, 1.0, 0.0, 0.1, 0.45, 0.7), p_alt=0.3),
    # black case, glowing blue-white screen
    "tvmonitor": Look((0.0, 1.0, 0.0, 0.15, 0.04, 0.2), (0.0, 1.0, 0.0, 0.15, 0.1, 0.25),
                      (0.5, 0.62, 0.2, 0.55, 0.65, 0.98), ("flat", "gradient")),
    # street classes whose names are not VOC's
    "truck": Look((0.0, 1.0, 0.0, 0.3, 0.55, 0.9), _BLACK, _WINDOW, ("flat",)),
}
CLASS_LOOKS["motorcycle"] = CLASS_LOOKS["motorbike"]
CLASS_LOOKS["rider"] = CLASS_LOOKS["person"]
CLASS_LOOKS["table"] = CLASS_LOOKS["diningtable"]

#: Stuff: backdrops, Context's stuff classes and Cityscapes' flat/construction/nature classes.
STUFF_LOOKS: dict[str, Look] = {
    "sky": Look((0.55, 0.62, 0.3, 0.6, 0.75, 1.0), styles=("gradient", "flat")),
    "grass": Look((0.2, 0.29, 0.45, 0.7, 0.28, 0.52), styles=("fur", "mottled")),
    "wall": Look((0.08, 0.14, 0.05, 0.25, 0.6, 0.85), styles=("flat", "mottled")),
    "brick": Look((0.0, 0.05, 0.45, 0.65, 0.35, 0.55), (0.0, 1.0, 0.0, 0.1, 0.6, 0.8), styles=("stripes",)),
    "road": Look((0.0, 1.0, 0.0, 0.08, 0.28, 0.48), styles=("mottled", "flat")),
    "water": Look((0.5, 0.58, 0.5, 0.85, 0.25, 0.55), styles=("stripes", "gradient")),
    "floor": Look((0.0, 1.0, 0.05, 0.25, 0.45, 0.7), styles=("patches", "flat")),
    "ground": Look((0.07, 0.12, 0.25, 0.5, 0.3, 0.5), styles=("mottled",)),
    "snow": Look((0.55, 0.65, 0.0, 0.08, 0.88, 1.0), styles=("flat", "mottled")),
    "sidewalk": Look((0.0, 1.0, 0.0, 0.1, 0.5, 0.7), styles=("patches", "flat")),
    "building": Look((0.05, 0.14, 0.05, 0.3, 0.45, 0.75), styles=("stripes", "patches", "flat")),
    "vegetation": Look((0.22, 0.33, 0.45, 0.8, 0.2, 0.45), styles=("fur", "mottled", "spots")),
    "tree": Look((0.22, 0.33, 0.45, 0.8, 0.2, 0.45), styles=("fur", "spots")),
    "terrain": Look((0.12, 0.2, 0.35, 0.6, 0.35, 0.55), styles=("fur", "mottled")),
    "mountain": Look((0.58, 0.7, 0.1, 0.3, 0.35, 0.6), styles=("mottled", "gradient")),
    "rock": Look((0.0, 1.0, 0.0, 0.12, 0.35, 0.6), styles=("mottled",)),
    "ceiling": Look((0.0, 1.0, 0.0, 0.05, 0.8, 0.95), styles=("flat",)),
    "pole": Look((0.0, 1.0, 0.0, 0.1, 0.25, 0.5), styles=("flat",)),
    "fence": Look((0.05, 0.1, 0.2, 0.45, 0.35, 0.6), styles=("stripes", "flat")),
    "window": Look((0.52, 0.62, 0.15, 0.4, 0.25, 0.55), styles=("flat", "gradient")),
    "ego vehicle": Look((0.0, 1.0, 0.0, 0.1, 0.1, 0.3), styles=("gradient",)),
    "rectification border": Look((0.0, 1.0, 0.0, 0.0, 0.0, 0.05), styles=("flat",)),
}
STUFF_LOOKS["traffic sign"] = Look((0.97, 0.03, 0.7, 1.0, 0.55, 0.9), (0.0, 1.0, 0.0, 0.05, 0.85, 1.0))
STUFF_LOOKS["traffic light"] = Look((0.0, 1.0, 0.0, 0.1, 0.05, 0.2), styles=("flat",))

#: The stuff a VOC-style backdrop is made of: above the horizon, below it.
BACKDROP_TOP = ("sky", "wall", "brick", "building", "mountain", "vegetation")
BACKDROP_BOTTOM = ("grass", "road", "water", "floor", "ground", "snow", "sidewalk")


def derived_look(name: str) -> Look:
    """A stable look for a class without an entry (e.g. Context's cup or bedclothes).

    Its hue range comes from a hash of the name, so every such class has a look of its own
    that stays the same across images, presets and processes.
    """
    h = int.from_bytes(hashlib.sha1(name.encode()).digest()[:4], "little")
    hue = (h % 1000) / 1000.0
    family = TEXTURES[(h >> 10) % len(TEXTURES)]
    sat = 0.25 + 0.5 * (((h >> 14) % 100) / 100.0)
    val = 0.35 + 0.4 * (((h >> 21) % 100) / 100.0)
    return Look((hue, (hue + 0.07) % 1.0, sat, min(1.0, sat + 0.25), val, min(1.0, val + 0.2)),
                styles=(family,))


def look_of(name: str) -> Look:
    """The look of a class or stuff name (:func:`derived_look` for the rest)."""
    return CLASS_LOOKS.get(name) or STUFF_LOOKS.get(name) or derived_look(name)


def appearance_of(rng: Rng, name: str, *, off_palette: float = P_OFF_PALETTE) -> Appearance:
    """One instance's :class:`Appearance` drawn from its class look, with per-instance jitter.

    With probability ``off_palette`` the instance ignores the look (the version-1 draw).
    """
    if off_palette and rng.random() < off_palette:
        return Appearance.sample(rng)
    look = look_of(name)
    body_pal = look.alt if look.alt is not None and rng.random() < look.p_alt else look.body
    body = sample_color(rng, body_pal)
    second = sample_color(rng, look.secondary) if look.secondary else related_color(rng, body)
    accent = sample_color(rng, look.accent) if look.accent else related_color(rng, body)
    style = str(rng.choice(look.styles))
    # Parts 0..2 take body/secondary/accent; a 4th colour is the body's texture partner.
    partner = related_color(rng, body)
    colors = [body, second, accent, partner]
    styles = [style, str(rng.choice(look.part_styles)), str(rng.choice(look.part_styles)), style]
    return Appearance(style, colors, styles, rng.uniform(0, 2 * math.pi), rng.uniform(0.0, 0.3))


def stuff_colors(rng: Rng, name: str) -> tuple[np.ndarray, np.ndarray, str]:
    """``(c1, c2, style)`` for a stuff region: two colours of the look and a texture family."""
    look = look_of(name)
    c1 = sample_color(rng, look.body)
    c2 = sample_color(rng, look.secondary) if look.secondary else related_color(rng, c1)
    return c1, c2, str(rng.choice(look.styles))


__all__ = ["Look", "CLASS_LOOKS", "STUFF_LOOKS", "BACKDROP_TOP", "BACKDROP_BOTTOM", "look_of", "appearance_of",
           "stuff_colors", "sample_color", "derived_look"]
