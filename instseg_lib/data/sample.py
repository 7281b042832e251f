"""The one sample type that every reader yields, and helpers on instance maps."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage


@dataclass
class Sample:
    """One annotated image, identical for every dataset and for the synthetic twin.

    - ``image``: ``(H, W, 3)`` uint8 RGB.
    - ``semantic``: ``(H, W)`` uint8 class ids, ``255`` = void (not evaluated, no loss).
    - ``instances``: ``(H, W)`` int32, ``0`` = no instance, ``1..N`` instance ids.
    - ``instance_classes``: ``(N,)`` int64, class of instance ``i`` at index ``i - 1``.
    - ``boxes``: ``(N, 4)`` float32 ``x0, y0, x1, y1`` in pixels, inclusive-exclusive
      (a one-pixel object at column 5 has ``x0 = 5, x1 = 6``).
    - ``has_masks``: ``False`` for box-only annotation (BoxSup's VOC07/COCO boxes): then
      ``semantic`` is all void, ``instances`` all 0, and only ``boxes`` and
      ``instance_classes`` carry the N objects.
    - ``has_instances``: ``False`` for semantic-only sets (PASCAL-Context): N = 0.
    - ``crowd``: ``(H, W)`` bool, the pixels of regions annotated as a crowd rather than as
      instances (COCO ``iscrowd=1``, Cityscapes group regions of instance classes), also
      where an instance lies on top of them; ``None`` when the dataset has none. Crowd
      regions are never instances (``instances`` is 0 there unless a real instance covers
      the pixel); targets use this map to ignore them instead of calling them background.
    """

    image: np.ndarray
    semantic: np.ndarray
    instances: np.ndarray
    instance_classes: np.ndarray
    boxes: np.ndarray
    image_id: str
    num_classes: int
    class_names: tuple[str, ...]
    has_masks: bool = True
    has_instances: bool = True
    meta: dict = field(default_factory=dict)
    crowd: np.ndarray | None = None

    @property
    def num_instances(self) -> int:
        return int(len(self.instance_classes))

    @property
    def size(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])

    def replace(self, **changes) -> "Sample":
        return replace(self, **changes)

    def validate(self) -> "Sample":
        """Check shapes, dtypes and ranges; raise ``ValueError`` naming the field."""
        h, w = self.size
        checks = [
            (self.image.dtype == np.uint8 and self.image.shape == (h, w, 3), "image (H,W,3) uint8"),
            (self.semantic.dtype == np.uint8 and self.semantic.shape == (h, w), "semantic (H,W) uint8"),
            (self.instances.dtype == np.int32 and self.instances.shape == (h, w), "instances (H,W) int32"),
            (self.instance_classes.dtype == np.int64 and self.instance_classes.ndim == 1, "instance_classes (N,) int64"),
            (self.boxes.dtype == np.float32 and self.boxes.shape == (self.num_instances, 4), "boxes (N,4) float32"),
        ]
        if self.crowd is not None:
            checks.append((self.crowd.dtype == np.bool_ and self.crowd.shape == (h, w), "crowd (H,W) bool"))
        for ok, what in checks:
            if not ok:
                raise ValueError(f"sample {self.image_id}: field is not {what}")
        sem = self.semantic
        if ((sem >= self.num_classes) & (sem != 255)).any():
            raise ValueError(f"sample {self.image_id}: semantic ids >= num_classes={self.num_classes}")
        if self.has_masks and self.instances.size and self.instances.max() > self.num_instances:
            raise ValueError(f"sample {self.image_id}: instance id above N={self.num_instances}")
        return self


def boxes_from_instances(instances: np.ndarray, n: int | None = None) -> np.ndarray:
    """Tight inclusive-exclusive boxes ``(N, 4)`` float32 of instance ids ``1..N``.

    An id absent from the map gets the empty box ``(0, 0, 0, 0)``.
    """
    n = int(instances.max(initial=0)) if n is None else n
    boxes = np.zeros((n, 4), dtype=np.float32)
    for i, sl in enumerate(ndimage.find_objects(instances, max_label=n)):
        if sl is not None:
            boxes[i] = (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop)
    return boxes


def majority_classes(instances: np.ndarray, semantic: np.ndarray, n: int) -> np.ndarray:
    """Class of each instance id ``1..n``: the most frequent non-void semantic id under it.

    VOC stores instance ids and classes in two maps (SegmentationObject / SegmentationClass);
    this joins them. An instance whose pixels are all void gets class 0.
    """
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    inst = instances.ravel().astype(np.int64)
    sem = semantic.ravel().astype(np.int64)
    keep = (inst > 0) & (sem != 255)
    hist = np.bincount(inst[keep] * 256 + sem[keep], minlength=(n + 1) * 256)[: (n + 1) * 256]
    hist = hist.reshape(n + 1, 256)[1:]
    return hist.argmax(axis=1).astype(np.int64)


def relabel_consecutive(instances: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop ids absent from the map and renumber the rest ``1..N'`` (order kept)."""
    n = len(classes)
    present = np.bincount(instances.ravel(), minlength=n + 1)[: n + 1] > 0
    present[0] = False
    if present[1:].all():
        return instances, classes
    lut = np.zeros(n + 1, dtype=np.int32)
    lut[present] = np.arange(1, int(present.sum()) + 1, dtype=np.int32)
    return lut[instances], classes[present[1:]]
