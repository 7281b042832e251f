"""PASCAL VOC 2012 segmentation reader (``VOCdevkit/VOC2012`` layout).

Class map: ``SegmentationClass/<id>.png`` (palette PNG, 0..20, 255 = void band).
Instances: ``SegmentationObject/<id>.png`` (palette PNG, 1..N, 255 = the same void band);
the class of an instance is the majority class under it in the class map.

Without a ``SegmentationObject`` folder every sample has ``has_instances=False``. With the
folder, an image whose object PNG is missing is reported: ``missing_instances="warn"``
(default) warns with :class:`~.errors.MissingAnnotationWarning` and returns the sample
without instances, ``"error"`` raises :class:`~.errors.MissingAnnotationError`.
"""

from __future__ import annotations

from pathlib import Path

import warnings

import numpy as np

from .base import SegDataset, resolve_root
from .classes import VOC_CLASSES, VOC_PALETTE
from .errors import MissingAnnotationError, MissingAnnotationWarning
from .formats import check_label_range, check_same_size, read_label_png, read_rgb, read_split
from .sample import Sample, boxes_from_instances, majority_classes, relabel_consecutive


class VOCDataset(SegDataset):
    name = "voc"
    num_classes = 21
    class_names = VOC_CLASSES

    def __init__(self, root: str | Path, split: str = "train", transform=None, missing_instances: str = "warn"):
        super().__init__(root, split, transform)
        if missing_instances not in ("warn", "error"):
            raise ValueError(f"missing_instances must be 'warn' or 'error', got {missing_instances!r}")
        self.missing_instances = missing_instances
        self.root = resolve_root("voc", root, ["", "VOC2012", "VOCdevkit/VOC2012"], "JPEGImages")
        self.ids = read_split(self.root / "ImageSets" / "Segmentation" / f"{split}.txt",
                              "VOC segmentation splits are train, val and trainval.")
        self._dir = str(self.root)
        self._has_objects = (self.root / "SegmentationObject").is_dir()

    def load(self, i: int) -> Sample:
        iid = self.ids[i]
        # plain strings: pathlib costs more than the decoding of a small image
        ip = f"{self._dir}/JPEGImages/{iid}.jpg"
        cp = f"{self._dir}/SegmentationClass/{iid}.png"
        op = f"{self._dir}/SegmentationObject/{iid}.png"
        image = read_rgb(ip)
        sem = read_label_png(cp, VOC_PALETTE)
        check_same_size(ip, image.shape, cp, sem.shape)
        check_label_range(cp, sem, 21)
        if self._has_objects:
            try:
                obj = read_label_png(op, VOC_PALETTE)
            except FileNotFoundError:
                obj = None
                msg = (f"{op} is missing although {self._dir}/SegmentationObject exists: image {iid} has no "
                       f"instance annotation. Re-extract the dataset (VOCtrainval_11-May-2012.tar) or remove "
                       f"{iid} from the split file")
                if self.missing_instances == "error":
                    raise MissingAnnotationError(msg) from None
                warnings.warn(f"{msg}; reading it without instances (has_instances=False)",
                              MissingAnnotationWarning, stacklevel=3)
        else:
            obj = None
        if obj is not None:
            check_same_size(ip, image.shape, op, obj.shape)
            inst = obj.astype(np.int32)
            inst[obj == 255] = 0
            n = int(inst.max(initial=0))
            classes = majority_classes(inst, sem, n)
            if n:  # an instance whose pixels are all void has no class: drop it
                inst[(classes == 0)[np.maximum(inst - 1, 0)] & (inst > 0)] = 0
            inst, classes = relabel_consecutive(inst, classes)
            has_inst = True
        else:
            inst, classes, has_inst = np.zeros(sem.shape, np.int32), np.zeros(0, np.int64), False
        return Sample(image=image, semantic=sem, instances=inst, instance_classes=classes,
                      boxes=boxes_from_instances(inst, len(classes)), image_id=iid, num_classes=21,
                      class_names=VOC_CLASSES, has_instances=has_inst)
