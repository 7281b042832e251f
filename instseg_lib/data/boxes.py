"""Box-only VOC detection reader (VOC 2007 layout): BoxSup's box supervision (Dai et al. §4).

``Annotations/<id>.xml`` boxes (1-based inclusive in the file, returned 0-based
inclusive-exclusive), ``JPEGImages/<id>.jpg``, ``ImageSets/Main/<split>.txt``.
Samples have ``has_masks=False``: the semantic map is all void and the instance map empty;
``boxes`` and ``instance_classes`` carry the objects, ``meta['difficult']`` their flags.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import SegDataset, resolve_root
from .classes import VOC_CLASSES
from .errors import CorruptFileError, SizeMismatchError
from .formats import read_rgb, read_split, read_voc_xml
from .sample import Sample


class BoxesDataset(SegDataset):
    name = "boxes"
    num_classes = 21
    class_names = VOC_CLASSES

    def __init__(self, root: str | Path, split: str = "train", transform=None, keep_difficult: bool = True):
        super().__init__(root, split, transform)
        self.root = resolve_root("boxes", root, ["", "VOC2007", "VOCdevkit/VOC2007", "VOC2012", "VOCdevkit/VOC2012"],
                                 "Annotations")
        self.keep_difficult = keep_difficult
        self.ids = read_split(self.root / "ImageSets" / "Main" / f"{split}.txt",
                              "VOC detection splits are train, val, trainval (and test for VOC2007).")

    def load(self, i: int) -> Sample:
        iid = self.ids[i]
        ip, ap = self.root / "JPEGImages" / f"{iid}.jpg", self.root / "Annotations" / f"{iid}.xml"
        image = read_rgb(ip)
        ann = read_voc_xml(ap)
        h, w = image.shape[:2]
        if (ann["height"], ann["width"]) != (h, w):
            raise SizeMismatchError(f"{ap}: annotation says {ann['width']}x{ann['height']} but {ip} is {w}x{h}; "
                                    f"re-extract the dataset")
        objs = [o for o in ann["objects"] if self.keep_difficult or not o["difficult"]]
        try:
            classes = np.array([VOC_CLASSES.index(o["name"]) for o in objs], np.int64)
        except ValueError as err:
            raise CorruptFileError(f"{ap}: unknown class name ({err}); expected one of the 20 VOC classes") from err
        boxes = np.array([o["box"] for o in objs], np.float32).reshape(-1, 4)
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        return Sample(image=image, semantic=np.full((h, w), 255, np.uint8), instances=np.zeros((h, w), np.int32),
                      instance_classes=classes, boxes=boxes, image_id=iid, num_classes=21, class_names=VOC_CLASSES,
                      has_masks=False, meta={"difficult": np.array([o["difficult"] for o in objs], bool)})
