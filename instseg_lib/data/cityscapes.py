"""Cityscapes fine-annotation reader (``leftImg8bit`` / ``gtFine`` layout).

Semantics: ``*_gtFine_labelIds.png`` mapped to the 19 train ids (255 = ignored).
Instances: ``*_gtFine_instanceIds.png``, 16-bit: ``labelId * 1000 + k`` for an instance,
the bare labelId elsewhere (stuff, and crowds annotated as a *group*, which therefore
have a class but no instance). Instance classes are returned as train ids (11..18).

The two maps must agree: ``instanceId // 1000`` (or the bare id below 1000) is the labelId of
the pixel, else the reader raises :class:`~.errors.LabelRangeError` naming both files. An
8-bit ``instanceIds`` file (re-saved by an image tool: it cannot hold ids >= 1000) is refused.
Group regions of instance classes are returned as ``Sample.crowd``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import SegDataset, resolve_root
from .classes import CITYSCAPES_CLASSES, CITYSCAPES_LABELS, cityscapes_id_to_train_id
from .errors import LabelRangeError, MissingSplitError
from .formats import check_same_size, read_label_png, read_png16, read_rgb
from .sample import Sample, boxes_from_instances

_LUT = cityscapes_id_to_train_id()
#: labelIds of the 8 evaluated instance classes (has_instances and a train id).
_THING = np.zeros(256, bool)
for _lab in CITYSCAPES_LABELS:
    _THING[_lab.id] = _lab.has_instances and _lab.train_id != 255
_REEXTRACT = "re-extract gtFine_trainvaltest.zip (both files come from it)"


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
        ids = read_png16(np_, "Cityscapes instanceIds PNG",
                         f"instanceIds files are 16-bit (labelId * 1000 + k): {_REEXTRACT}.")
        check_same_size(ip, image.shape, np_, ids.shape)
        # every pixel's class, as the instance map says it, must be the labelIds class
        bad = np.where(ids >= 1000, ids // 1000, ids) != lab
        if bad.any():
            y, x = (int(v[0]) for v in np.nonzero(bad))
            v = int(ids[y, x])
            raise LabelRangeError(
                f"{np_}: instance ids disagree with {lp} at {int(bad.sum())} pixels, e.g. (y, x) = ({y}, {x}): "
                f"instanceId {v} says class {v // 1000 if v >= 1000 else v}, labelIds says {int(lab[y, x])}; "
                f"the two files are not of the same frame or one is damaged: {_REEXTRACT}")
        inst = np.zeros(ids.shape, np.int32)
        uniq = np.unique(ids[ids >= 1000])
        classes = []
        for k, v in enumerate(uniq[_THING[uniq // 1000]], start=1):
            inst[ids == v] = k
            classes.append(int(_LUT[v // 1000]))
        classes = np.array(classes, np.int64)
        crowd = (ids < 1000) & _THING[lab]
        return Sample(image=image, semantic=sem, instances=inst, instance_classes=classes,
                      boxes=boxes_from_instances(inst, len(classes)), image_id=self.ids[i], num_classes=19,
                      class_names=CITYSCAPES_CLASSES, crowd=crowd)
