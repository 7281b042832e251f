"""SBD (Hariharan et al. 2011) reader: ``benchmark_RELEASE/dataset`` with ``.mat`` labels.

``cls/<id>.mat`` holds ``GTcls`` (Segmentation 0..20, Boundaries, CategoriesPresent);
``inst/<id>.mat`` holds ``GTinst`` (Segmentation 0..N, Boundaries, Categories N x 1).
SBD has no void label. Splits: ``train.txt``, ``val.txt`` (and ``train_noval.txt``,
the SBD train set minus VOC 2012 val, when present).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import SegDataset, resolve_root
from .classes import VOC_CLASSES
from .errors import LabelRangeError
from .formats import check_label_range, check_same_size, load_mat_struct, read_rgb, read_split
from .sample import Sample, boxes_from_instances, relabel_consecutive


class SBDDataset(SegDataset):
    name = "sbd"
    num_classes = 21
    class_names = VOC_CLASSES

    def __init__(self, root: str | Path, split: str = "train", transform=None):
        super().__init__(root, split, transform)
        self.root = resolve_root("sbd", root, ["", "dataset", "benchmark_RELEASE/dataset"], "cls")
        self.ids = read_split(self.root / f"{split}.txt", "SBD splits are train and val (train_noval if downloaded).")

    def image_file(self, i: int) -> Path:
        return self.root / "img" / f"{self.ids[i]}.jpg"

    def load(self, i: int) -> Sample:
        iid = self.ids[i]
        ip, cp, np_ = (self.root / "img" / f"{iid}.jpg", self.root / "cls" / f"{iid}.mat", self.root / "inst" / f"{iid}.mat")
        image = read_rgb(ip)
        gtcls = load_mat_struct(cp, "GTcls")
        sem = np.asarray(gtcls["Segmentation"])
        check_same_size(ip, image.shape, cp, sem.shape)
        check_label_range(cp, sem, 21, void=None)
        sem = sem.astype(np.uint8)
        gtinst = load_mat_struct(np_, "GTinst")
        inst = np.asarray(gtinst["Segmentation"]).astype(np.int32)
        check_same_size(ip, image.shape, np_, inst.shape)
        cats = np.asarray(gtinst["Categories"]).astype(np.int64).ravel()
        n = int(inst.max(initial=0))
        if n > len(cats) or (cats < 1).any() or (cats > 20).any():
            raise LabelRangeError(f"{np_}: GTinst has instance ids up to {n} but Categories {cats.tolist()} "
                                  f"(expected one class in 1..20 per id); the file is damaged: re-extract benchmark.tgz")
        inst, cats = relabel_consecutive(inst, cats[:max(n, 0)] if n else cats[:0])
        return Sample(image=image, semantic=sem, instances=inst, instance_classes=cats,
                      boxes=boxes_from_instances(inst, len(cats)), image_id=iid, num_classes=21, class_names=VOC_CLASSES)
