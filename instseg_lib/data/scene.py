"""A scene under construction (:class:`Canvas`) and the finished :class:`Scene`.

Objects are painted back to front (painter's algorithm): a later object overwrites the
image, the class map and the instance map under it, so occlusion in the labels is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .render import Appearance, Placement, Shape, paint, rasterise
from .sample import boxes_from_instances


@dataclass
class Scene:
    """What the generator knows about one image, before any file format is applied.

    ``semantic`` and ``instance_classes`` use the preset's native label space (VOC ids
    0..20, Context ids 0..59, Cityscapes labelIds). ``void`` marks pixels the annotators
    left unlabelled (VOC "difficult" objects); the VOC boundary band is added by the writer.
    """

    image: np.ndarray
    semantic: np.ndarray
    instances: np.ndarray
    instance_classes: np.ndarray
    void: np.ndarray
    truncated: np.ndarray
    occluded: np.ndarray
    difficult: np.ndarray
    group: np.ndarray
    tags: np.ndarray
    crowd: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def boxes(self) -> np.ndarray:
        return boxes_from_instances(self.instances, len(self.instance_classes))


@dataclass
class _Obj:
    label: int
    tag: int
    truncated: bool
    amodal: int
    group: bool = False
    crowd: bool = False


class Canvas:
    """Mutable image + label maps that shapes are painted into, back to front."""

    def __init__(self, rng: np.random.Generator, H: int, W: int, background: np.ndarray | None = None):
        self.rng = rng
        self.H, self.W = H, W
        self.img = np.zeros((H, W, 3), np.float32) if background is None else background
        self.sem = np.zeros((H, W), np.uint8)
        self.inst = np.zeros((H, W), np.int32)
        self.objs: list[_Obj] = []

    def draw(self, shape: Shape, pl: Placement, app: Appearance, label: int, *, instance: bool = True,
             tag: int = 0, group: bool = False, crowd: bool = False) -> int:
        """Paint one shape; returns its instance id (0 for stuff/distractors or when off-image)."""
        r = rasterise(shape, pl, self.H, self.W)
        if r is None:
            return 0
        part_map, y0, x0 = r
        h, w = part_map.shape
        paint(self.rng, self.img, part_map, y0, x0, app, pl.height)
        m = part_map > 0
        self.sem[y0:y0 + h, x0:x0 + w][m] = label
        sub = self.inst[y0:y0 + h, x0:x0 + w]
        if not instance:
            sub[m] = 0
            return 0
        half_w = 0.5 * pl.height * shape.aspect
        truncated = (pl.cx - half_w < 0 or pl.cx + half_w > self.W or pl.cy - pl.height / 2 < 0
                     or pl.cy + pl.height / 2 > self.H)
        self.objs.append(_Obj(label, tag, truncated, int(m.sum()), group, crowd))
        iid = len(self.objs)
        sub[m] = iid
        return iid

    def fill(self, mask: np.ndarray, tex: np.ndarray, label: int) -> None:
        """Paint a full-image region (stuff) with a ready texture; clears instances under it."""
        self.img[mask] = tex[mask]
        self.sem[mask] = label
        self.inst[mask] = 0

    def finish(self, image: np.ndarray, difficult_frac: float = 0.0, p_difficult: float = 0.0) -> Scene:
        """Drop fully hidden instances, renumber, flag occluded/difficult ones."""
        n = len(self.objs)
        vis = np.bincount(self.inst.ravel(), minlength=n + 1)[1:]
        keep = vis > 0
        lut = np.zeros(n + 1, np.int32)
        lut[1:][keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
        inst = lut[self.inst]
        objs = [o for o, k in zip(self.objs, keep) if k]
        vis = vis[keep]
        void = np.zeros((self.H, self.W), bool)
        difficult = np.zeros(len(objs), bool)
        thr = difficult_frac * self.H * self.W
        for i, o in enumerate(objs):
            # VOC leaves tiny or barely visible objects "difficult" and paints them void.
            if vis[i] < thr and self.rng.random() < p_difficult:
                difficult[i] = True
                void |= inst == i + 1
        arr = lambda f, dt: np.array([f(o) for o in objs], dtype=dt)  # noqa: E731
        return Scene(
            image=image, semantic=self.sem, instances=inst,
            instance_classes=arr(lambda o: o.label, np.int64),
            void=void,
            truncated=arr(lambda o: o.truncated, bool),
            occluded=np.array([v < 0.85 * o.amodal for o, v in zip(objs, vis)], dtype=bool),
            difficult=difficult,
            group=arr(lambda o: o.group, bool),
            tags=arr(lambda o: o.tag, np.int64),
            crowd=arr(lambda o: o.crowd, bool),
        )
