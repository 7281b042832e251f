"""COCO 2017 instances reader restricted to the 20 VOC classes, and a COCO JSON exporter.

BoxSup (Dai et al. §4) and Wu et al. (Table 6, "COCO") use COCO only through the 20
categories that VOC shares; every other category becomes background. Layout:
``annotations/instances_<split>2017.json`` and ``<split>2017/*.jpg``. Polygons and RLE are
decoded with ``pycocotools``; crowd regions (``iscrowd=1``) become void (255) in the
semantic map and are not instances. Overlapping masks are painted largest first, so a
smaller object in front keeps its pixels.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from .base import SegDataset, resolve_root
from .classes import COCO_VOC_IDS, VOC_CLASSES
from .errors import CorruptFileError, MissingSplitError
from .formats import read_rgb
from .sample import Sample, boxes_from_instances, relabel_consecutive

_VOC_INDEX = {cid: VOC_CLASSES.index(n) for cid, n in COCO_VOC_IDS.items()}


def decode_segmentation(seg, h: int, w: int) -> np.ndarray:
    from pycocotools import mask as mask_utils

    if isinstance(seg, list):
        if not seg:
            return np.zeros((h, w), bool)
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
    elif isinstance(seg.get("counts"), list):
        rle = mask_utils.frPyObjects(seg, h, w)
    else:
        rle = seg
    with warnings.catch_warnings():  # pycocotools' own numpy-2 copy= deprecation, not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle).astype(bool)


class COCODataset(SegDataset):
    name = "coco"
    num_classes = 21
    class_names = VOC_CLASSES

    def __init__(self, root: str | Path, split: str = "train", transform=None, year: int = 2017,
                 only_voc_images: bool = True):
        super().__init__(root, split, transform)
        self.root = resolve_root("coco", root, ["", "coco"], "annotations")
        ap = self.root / "annotations" / f"instances_{split}{year}.json"
        if not ap.is_file():
            have = sorted(p.name for p in (self.root / "annotations").glob("instances_*.json"))
            raise MissingSplitError(f"annotation file {ap} is missing (found: {', '.join(have) or 'none'}); "
                                    f"COCO splits are train and val (instances_train{year}.json, instances_val{year}.json)")
        try:
            doc = json.loads(ap.read_text())
            images = {im["id"]: im for im in doc["images"]}
            anns: dict[int, list] = {}
            for a in doc["annotations"]:
                if a["category_id"] in _VOC_INDEX:
                    anns.setdefault(a["image_id"], []).append(a)
        except (ValueError, KeyError, TypeError) as err:
            raise CorruptFileError(f"{ap}: not a COCO instances file ({err}); re-extract annotations_trainval{year}.zip") from err
        self.image_dir = self.root / f"{split}{year}"
        keep = sorted(images) if not only_voc_images else sorted(i for i in images if any(not a.get("iscrowd") for a in anns.get(i, [])))
        self.images = [images[i] for i in keep]
        self.anns = anns
        self.ids = [str(im["id"]) for im in self.images]

    def image_file(self, i: int) -> Path:
        return self.image_dir / self.images[i]["file_name"]

    def load(self, i: int) -> Sample:
        im = self.images[i]
        ip = self.image_dir / im["file_name"]
        image = read_rgb(ip)
        h, w = image.shape[:2]
        if (h, w) != (im["height"], im["width"]):
            from .errors import SizeMismatchError
            raise SizeMismatchError(f"{ip}: image is {w}x{h} but the annotation file says {im['width']}x{im['height']}")
        sem = np.zeros((h, w), np.uint8)
        inst = np.zeros((h, w), np.int32)
        classes = []
        anns = sorted(self.anns.get(im["id"], []), key=lambda a: -float(a.get("area", 0)))
        crowd = np.zeros((h, w), bool)
        for a in anns:
            try:
                m = decode_segmentation(a["segmentation"], h, w)
            except Exception as err:
                raise CorruptFileError(f"annotation {a.get('id')} of image {im['id']}: undecodable segmentation ({err})") from err
            if a.get("iscrowd"):
                crowd |= m
                continue
            classes.append(_VOC_INDEX[a["category_id"]])
            sem[m] = classes[-1]
            inst[m] = len(classes)
        sem[crowd & (inst == 0)] = 255
        inst, cls = relabel_consecutive(inst, np.array(classes, np.int64))
        return Sample(image=image, semantic=sem, instances=inst, instance_classes=cls,
                      boxes=boxes_from_instances(inst, len(cls)), image_id=self.ids[i], num_classes=21, class_names=VOC_CLASSES)


def export_coco_json(dataset, category_names: tuple[str, ...] | None = None) -> bytes:
    """COCO instances JSON (RLE masks, or boxes only for box-only sets) of any reader's samples.

    Category ids are the dataset's class ids (1..K); ``category_names`` defaults to the
    dataset's class names.
    """
    from .writers import coco_rle

    names = category_names or dataset.class_names
    images, anns = [], []
    for k in range(len(dataset)):
        s = dataset.load(k)
        h, w = s.size
        try:
            fname = dataset.image_file(k).relative_to(dataset.root).as_posix()
        except ValueError:
            fname = dataset.image_file(k).name
        images.append({"id": k + 1, "file_name": fname, "height": h, "width": w})
        for j, c in enumerate(s.instance_classes):
            x0, y0, x1, y1 = (float(v) for v in s.boxes[j])
            a = {"id": len(anns) + 1, "image_id": k + 1, "category_id": int(c), "iscrowd": 0,
                 "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "segmentation": []}
            if s.has_masks:
                m = s.instances == j + 1
                a["segmentation"] = coco_rle(m)
                a["area"] = float(m.sum())
            anns.append(a)
    cats = [{"id": i, "name": n, "supercategory": "object"} for i, n in enumerate(names) if i > 0]
    doc = {"info": {"description": f"{dataset.name} exported by instseg_lib"}, "images": images,
           "annotations": anns, "categories": cats}
    return json.dumps(doc, separators=(",", ":")).encode()
