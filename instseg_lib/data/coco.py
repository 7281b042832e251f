"""COCO instances reader restricted to the 20 VOC classes, and a COCO JSON exporter.

BoxSup (Dai et al. §4) and Wu et al. (Table 6, "COCO") use COCO only through the 20
categories that VOC shares; every other category becomes background. Layout:
``annotations/instances_<split>2017.json`` and ``<split>2017/*.jpg``.

Categories are mapped by *name* through the file's own ``categories`` table, never by id:
COCO 2017's names (``airplane``, ``couch``, ``dining table`` ...) and the VOC names that
:func:`export_coco_json` writes (ids 1..20 in VOC order) both work. The other 60 COCO 2017
categories are background; a name that is neither is dropped too, and counted in
``dropped_categories`` with a :class:`~.errors.UnknownCategoryWarning`.

Polygons and RLE are decoded with ``pycocotools`` after checking them (pycocotools' C code
writes past its buffer on an RLE whose runs do not add up to the image). Crowd regions
(``iscrowd=1``) are not instances: they are ``Sample.crowd`` (all their pixels) and void
(255) in the semantic map where no instance covers them. Overlapping masks are painted
largest first, so a smaller object in front keeps its pixels.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np

from .base import SegDataset, resolve_root
from .classes import COCO_CATEGORIES, COCO_VOC_IDS, VOC_CLASSES
from .errors import CorruptFileError, MissingFileError, MissingSplitError, SizeMismatchError, UnknownCategoryWarning
from .formats import _read_bytes, check_coco_rle, read_rgb
from .sample import Sample, boxes_from_instances, relabel_consecutive


def _norm(name) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


#: Normalised category name -> VOC class id: the VOC names and COCO 2017's names for them.
VOC_CLASS_BY_NAME: dict[str, int] = {_norm(n): i for i, n in enumerate(VOC_CLASSES) if i > 0}
VOC_CLASS_BY_NAME.update({_norm(n): VOC_CLASSES.index(COCO_VOC_IDS[cid]) for cid, n, _ in COCO_CATEGORIES
                          if cid in COCO_VOC_IDS})
#: COCO 2017 categories that are not VOC classes: background here, by design.
BACKGROUND_NAMES: frozenset[str] = frozenset(_norm(n) for cid, n, _ in COCO_CATEGORIES if cid not in COCO_VOC_IDS)


def decode_segmentation(seg, h: int, w: int) -> np.ndarray:
    """A COCO ``segmentation`` (polygons, RLE, uncompressed RLE) as an ``(h, w)`` bool mask.

    Raises ``ValueError`` on a malformed one. Polygon rings with fewer than 3 points have no
    area and are skipped (pycocotools would read a 2-point ring as a *box*).
    """
    from pycocotools import mask as mask_utils

    if isinstance(seg, list):
        rings = []
        for ring in seg:
            if not isinstance(ring, list) or len(ring) % 2 or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in ring):
                raise ValueError("a polygon must be a list of an even number of finite numbers")
            if any(abs(v) > 4 * (h + w) for v in ring):
                raise ValueError(f"polygon coordinates far outside the {w}x{h} image")
            if len(ring) >= 6:
                rings.append([float(v) for v in ring])
        if not rings:
            return np.zeros((h, w), bool)
        rle = mask_utils.merge(mask_utils.frPyObjects(rings, h, w))
    elif isinstance(seg, dict):
        check_coco_rle(seg, h, w)
        rle = mask_utils.frPyObjects(seg, h, w) if isinstance(seg["counts"], list) else dict(seg)
        if isinstance(rle.get("counts"), str):
            rle["counts"] = rle["counts"].encode("ascii")
    else:
        raise ValueError(f"segmentation must be polygons or an RLE dict, got {type(seg).__name__}")
    with warnings.catch_warnings():  # pycocotools' own numpy-2 copy= deprecation, not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle).astype(bool)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


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
        self.annotation_file = ap
        fix = f"re-extract annotations_trainval{year}.zip (or re-export the file)"
        try:
            doc = json.loads(_read_bytes(ap, "COCO instances JSON"))
        except (ValueError, UnicodeDecodeError) as err:
            raise CorruptFileError(f"{ap}: not valid JSON ({err}); the file is damaged or truncated: {fix}") from err
        images, anns, self.category_map, self.dropped_categories = _parse_instances(ap, doc, fix)
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
        try:
            image = read_rgb(ip)
        except MissingFileError as err:
            raise MissingFileError(f"{ip}: the image that {self.annotation_file} lists as {im['id']} is missing; "
                                   f"re-extract {self.image_dir.name}.zip, or check the annotation file is of "
                                   f"this split") from err
        h, w = image.shape[:2]
        if (h, w) != (im["height"], im["width"]):
            raise SizeMismatchError(f"{ip}: image is {w}x{h} but {self.annotation_file} says {im['width']}x{im['height']}; "
                                    f"the image and the annotation file are not of the same release: re-extract both")
        sem = np.zeros((h, w), np.uint8)
        inst = np.zeros((h, w), np.int32)
        classes = []
        crowd = np.zeros((h, w), bool)
        decoded = []
        for a in self.anns.get(im["id"], []):
            try:
                m = decode_segmentation(a["segmentation"], h, w)
            except Exception as err:
                raise CorruptFileError(f"{self.annotation_file}: annotation {a.get('id')} of image {im['id']} has an "
                                       f"undecodable segmentation ({err}); the file is damaged: re-extract it") from err
            # largest first (the file's area, else the mask's), so a smaller object in front keeps its pixels
            decoded.append((-float(a["area"] if "area" in a else m.sum()), len(decoded), a, m))
        for _, _, a, m in sorted(decoded, key=lambda t: t[:2]):
            if a.get("iscrowd"):
                crowd |= m
                continue
            classes.append(self.category_map[a["category_id"]])
            sem[m] = classes[-1]
            inst[m] = len(classes)
        sem[crowd & (inst == 0)] = 255
        inst, cls = relabel_consecutive(inst, np.array(classes, np.int64))
        return Sample(image=image, semantic=sem, instances=inst, instance_classes=cls,
                      boxes=boxes_from_instances(inst, len(cls)), image_id=self.ids[i], num_classes=21,
                      class_names=VOC_CLASSES, crowd=crowd)


def _parse_instances(path: Path, doc, fix: str) -> tuple[dict, dict, dict[int, int], dict[str, int]]:
    """Check a COCO instances document; return images by id, VOC-class annotations by image id,
    file category id -> VOC class, and the annotation count of each dropped unknown name."""
    def bad(what: str) -> CorruptFileError:
        return CorruptFileError(f"{path}: not a COCO instances file: {what}; {fix}")

    if not isinstance(doc, dict):
        raise bad(f"the top level is a JSON {type(doc).__name__}, not an object (a results list?)")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            extra = " (the reader maps categories by name through it)" if key == "categories" else ""
            raise bad(f"no '{key}' list{extra}")
    category_map: dict[int, int] = {}
    unknown: dict[int, str] = {}
    for c in doc["categories"]:
        if not isinstance(c, dict) or not _is_int(c.get("id")) or not isinstance(c.get("name"), str):
            raise bad(f"category {c!r} needs an integer 'id' and a string 'name'")
        if c["id"] in category_map or c["id"] in unknown:
            raise bad(f"category id {c['id']} appears twice in 'categories'")
        n = _norm(c["name"])
        if n in VOC_CLASS_BY_NAME:
            category_map[c["id"]] = VOC_CLASS_BY_NAME[n]
        elif n not in BACKGROUND_NAMES:
            unknown[c["id"]] = c["name"]
    known_ids = set(category_map) | set(unknown) | {c["id"] for c in doc["categories"]}
    images = {}
    for im in doc["images"]:
        if not (isinstance(im, dict) and _is_int(im.get("id")) and isinstance(im.get("file_name"), str)
                and _is_int(im.get("height")) and _is_int(im.get("width")) and im["height"] > 0 and im["width"] > 0):
            raise bad(f"image record {str(im)[:120]} needs an integer 'id', a 'file_name' and positive 'height'/'width'")
        if im["id"] in images:
            raise bad(f"image id {im['id']} appears twice")
        images[im["id"]] = im
    anns: dict[int, list] = {}
    dropped: dict[str, int] = {}
    for a in doc["annotations"]:
        if not isinstance(a, dict) or not _is_int(a.get("category_id")) or a.get("image_id") not in images \
                or "segmentation" not in a or a.get("iscrowd", 0) not in (0, 1) \
                or not _is_number(a.get("area", 0)):
            raise bad(f"annotation {str(a)[:120]} needs an 'image_id' of a listed image, an integer 'category_id', "
                      f"a 'segmentation', 'iscrowd' 0 or 1 and a numeric 'area'")
        cid = a["category_id"]
        if cid not in known_ids:
            raise bad(f"annotation {a.get('id')} has category_id {cid}, which is not in the 'categories' table")
        if cid in category_map:
            anns.setdefault(a["image_id"], []).append(a)
        elif cid in unknown:
            dropped[unknown[cid]] = dropped.get(unknown[cid], 0) + 1
    if dropped:
        listing = ", ".join(f"{n!r} ({k})" for n, k in sorted(dropped.items()))
        warnings.warn(f"{path}: dropped {sum(dropped.values())} annotations of categories that are neither VOC "
                      f"nor COCO 2017 names: {listing}. Rename them to VOC names in 'categories' to keep them.",
                      UnknownCategoryWarning, stacklevel=3)
    return images, anns, category_map, dropped


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
