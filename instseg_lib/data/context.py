"""PASCAL-Context reader, 59 classes + background (60 labels), semantic only.

Layout (``VOCdevkit/VOC2010``): ``JPEGImages/<id>.jpg``, ``SegmentationClassContext/<id>.png``
(grey PNG, 0 = background, 1..59 = :data:`~.classes.CONTEXT_CLASSES`) and
``ImageSets/SegmentationContext/{train,val}.txt``. ``data_scripts/context.py`` converts the
official ``trainval.tar.gz`` (459-class ``.mat`` label maps) into this layout. Context has
no instance annotation: samples have ``has_instances=False`` and N = 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import SegDataset, resolve_root
from .classes import CONTEXT_CLASSES
from .formats import check_label_range, check_same_size, read_label_png, read_rgb, read_split
from .sample import Sample


class ContextDataset(SegDataset):
    name = "context"
    num_classes = 60
    class_names = CONTEXT_CLASSES

    def __init__(self, root: str | Path, split: str = "train", transform=None):
        super().__init__(root, split, transform)
        self.root = resolve_root("context", root, ["", "VOC2010", "VOCdevkit/VOC2010"], "SegmentationClassContext")
        self.ids = read_split(self.root / "ImageSets" / "SegmentationContext" / f"{split}.txt",
                              "PASCAL-Context splits are train and val; data_scripts/context.py writes them.")

    def load(self, i: int) -> Sample:
        iid = self.ids[i]
        ip, lp = self.root / "JPEGImages" / f"{iid}.jpg", self.root / "SegmentationClassContext" / f"{iid}.png"
        image = read_rgb(ip)
        sem = read_label_png(lp)
        check_same_size(ip, image.shape, lp, sem.shape)
        check_label_range(lp, sem, 60)
        return Sample(image=image, semantic=sem, instances=np.zeros(sem.shape, np.int32),
                      instance_classes=np.zeros(0, np.int64), boxes=np.zeros((0, 4), np.float32), image_id=iid,
                      num_classes=60, class_names=CONTEXT_CLASSES, has_instances=False)
