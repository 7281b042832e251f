"""Cityscapes fine-annotation reader (``leftImg8bit`` / ``gtFine`` layout).

Semantics: ``*_gtFine_labelIds.png`` mapped to the 19 train ids (255 = ignored).
Instances: ``*_gtFine_instanceIds.png``, 16-bit: ``labelId * 1000 + k`` for an instance,
the bare labelId elsewhere (stuff, and crowds annotated as a *group*, which therefore
have a class but no instance). Instance classes are returned as train ids (11..18).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import SegDataset, resolve_root
from .classes import CITYSCAPES_CLASSES, cityscapes_id_to_train_id
from .errors import LabelRangeError, MissingSplitError
from .formats import check_same_size, read_label_png, read_png16, read_rgb
from .sample import Sample, boxes_from_instances

_LUT = cityscapes_id_to_train_id()


class CityscapesDataset(SegDataset):
    name = "cityscapes"
    num_classes = 19
    class_names = CITYSCAPES_CLASSES

    def __init__(self, root: str | Path, split: str = "train", transform=None):
        super().__init__(root, split, transform)
        self.root = resolve_root("cityscapes", root, ["", "cityscapes"], "leftImg8bit")
        d = self.root / "leftImg8bit" / split
        if not d.is_dir():
            have = sorted(p.name for p in (self.root / "leftImg8bit").iterdir() if p.is_dir())
            raise MissingSplitError(f"split folder {d} is missing (found: {', '.join(have) or 'none'}); "
                                    f"Cityscapes splits are train, val and test")
        self.files = sorted(d.glob("*/*_leftImg8bit.png"))
        self.ids = [p.name[: -len("_leftImg8bit.png")] for p in self.files]

    def image_file(self, i: int) -> Path:
        return self.files[i]

    def _gt(self, i: int, kind: str) -> Path:
        city = self.files[i].parent.name
        return self.root / "gtFine" / self.split / city / f"{self.ids[i]}_gtFine_{kind}.png"

    def load(self, i: int) -> Sample:
        ip = self.files[i]
        image = read_rgb(ip)
        lp, np_ = self._gt(i, "labelIds"), self._gt(i, "instanceIds")
        lab = read_label_png(lp)
        check_same_size(ip, image.shape, lp, lab.shape)
        if lab.max(initial=0) > 33:
            raise LabelRangeError(f"{lp}: labelIds above 33 ({int(lab.max())}); not a Cityscapes labelIds PNG "
                                  f"(did you pass the labelTrainIds or color file?)")
        sem = _LUT[lab]
        ids = read_png16(np_)
        check_same_size(ip, image.shape, np_, ids.shape)
        inst = np.zeros(ids.shape, np.int32)
        uniq = np.unique(ids[ids >= 1000])
        classes = []
        for k, v in enumerate(uniq[_LUT[np.minimum(uniq // 1000, 255)] != 255], start=1):
            inst[ids == v] = k
            classes.append(int(_LUT[v // 1000]))
        classes = np.array(classes, np.int64)
        return Sample(image=image, semantic=sem, instances=inst, instance_classes=classes,
                      boxes=boxes_from_instances(inst, len(classes)), image_id=self.ids[i], num_classes=19,
                      class_names=CITYSCAPES_CLASSES)
