"""Write a :class:`~.scene.Scene` in the on-disk format of each dataset.

Each writer returns ``{relative path: bytes}`` (the caller writes them into a private
temporary folder, so a crash never leaves a half-written dataset behind) plus any
per-image record the dataset-level files need (split lists, COCO annotations).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage, sparse

from .classes import (CONTEXT_CLASSES, VOC_CLASSES, VOC_PALETTE, VOC_TO_COCO_ID,
                      VOC_TO_CONTEXT, cityscapes_color_lut, cityscapes_id_to_train_id)
from .formats import encode_jpeg, encode_mat, encode_png, voc_xml
from .scene import Scene

Files = dict[str, bytes]


def boundary(labels: np.ndarray) -> np.ndarray:
    """Pixels whose right or lower neighbour has another label (a one-pixel contour)."""
    e = np.zeros(labels.shape, bool)
    e[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    e[:-1, :] |= labels[:-1, :] != labels[1:, :]
    return e


def void_band_width(h: int, w: int) -> int:
    """VOC's void band is about 5 px wide on 500 x 375 images; scale it, at least 1 px."""
    return max(1, int(round(min(h, w) * 5 / 375)))


def voc_void(scene: Scene) -> np.ndarray:
    """The VOC 255 mask: a band around every object outline, plus "difficult" objects.

    The band straddles object/background and object/object boundaries (VOC draws it at
    every instance outline, so it also separates touching instances of one class).
    """
    key = scene.instances.astype(np.int64) * 256 + scene.semantic
    edge = boundary(key)
    k = void_band_width(*key.shape) // 2
    band = ndimage.binary_dilation(edge, np.ones((3, 3), bool), iterations=k) if k else edge
    return band | scene.void


def write_voc(scene: Scene, image_id: str) -> Files:
    """VOC2012: JPEGImages, SegmentationClass/Object palette PNGs (shared 255 band), Annotations."""
    void = voc_void(scene)
    sem = scene.semantic.copy()
    sem[void] = 255
    obj = scene.instances.copy()
    obj[obj > 254] = 255  # SegmentationObject is 8-bit: ids above 254 cannot be stored
    obj = obj.astype(np.uint8)
    obj[void] = 255
    h, w = sem.shape
    boxes = scene.boxes
    objects = [dict(name=VOC_CLASSES[int(c)], box=boxes[i], truncated=scene.truncated[i],
                    occluded=scene.occluded[i], difficult=scene.difficult[i],
                    pose=("Unspecified" if scene.instance_classes[i] in (5, 11, 16, 20) else "Frontal"))
               for i, c in enumerate(scene.instance_classes) if i < 254]
    return {
        f"JPEGImages/{image_id}.jpg": encode_jpeg(scene.image),
        f"SegmentationClass/{image_id}.png": encode_png(sem, VOC_PALETTE),
        f"SegmentationObject/{image_id}.png": encode_png(obj, VOC_PALETTE),
        f"Annotations/{image_id}.xml": voc_xml(image_id, "VOC2012", w, h, objects, segmented=True),
    }


def _sparse_boundaries(masks: list[np.ndarray]) -> np.ndarray:
    cells = np.empty((len(masks), 1), dtype=object)
    for i, m in enumerate(masks):
        b = m & ~ndimage.binary_erosion(m, border_value=1) if m.any() else m
        cells[i, 0] = sparse.csc_matrix(b.astype(np.float64)) if b.any() else sparse.csc_matrix(b.shape, dtype=np.float64)
    return cells


def sbd_coarsen(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """SBD masks were drawn as polygons on AMT: close small gaps and holes per instance."""
    inst = scene.instances.copy()
    sem = scene.semantic.copy()
    k = min(inst.shape) // 160
    if k == 0:
        return sem, inst
    for i, c in enumerate(scene.instance_classes, start=1):
        m = inst == i
        closed = ndimage.binary_closing(m, iterations=k) & (inst == 0) & ~m
        inst[closed] = i
        sem[closed] = c
    return sem, inst


def write_sbd(scene: Scene, image_id: str) -> Files:
    """SBD: ``img/*.jpg``, ``cls/*.mat`` (GTcls) and ``inst/*.mat`` (GTinst), no void label."""
    sem, inst = sbd_coarsen(scene)
    n = len(scene.instance_classes)
    present = np.unique(sem[sem > 0]).astype(np.uint8)
    gtcls = {
        "Boundaries": _sparse_boundaries([sem == c for c in range(1, 21)]),
        "Segmentation": sem.astype(np.uint8),
        "CategoriesPresent": present.reshape(-1, 1),
    }
    gtinst = {
        "Segmentation": inst.astype(np.uint8 if n < 256 else np.uint16),
        "Boundaries": _sparse_boundaries([inst == i for i in range(1, n + 1)]),
        "Categories": scene.instance_classes.astype(np.uint8).reshape(-1, 1),
    }
    return {
        f"img/{image_id}.jpg": encode_jpeg(scene.image),
        f"cls/{image_id}.mat": encode_mat({"GTcls": gtcls}),
        f"inst/{image_id}.mat": encode_mat({"GTinst": gtinst}),
    }


def cityscapes_instance_ids(scene: Scene) -> np.ndarray:
    """Cityscapes ``instanceIds``: labelId*1000 + k for instances (k from 0 per class),
    the plain labelId elsewhere, including crowds annotated as a "group"."""
    ids = scene.semantic.astype(np.int32).copy()
    counters: dict[int, int] = {}
    for i, (c, grp) in enumerate(zip(scene.instance_classes, scene.group), start=1):
        m = scene.instances == i
        if grp:
            continue
        k = counters.get(int(c), 0)
        counters[int(c)] = k + 1
        ids[m] = int(c) * 1000 + k
    return ids


def write_cityscapes(scene: Scene, split: str, city: str, stem: str) -> Files:
    ids = cityscapes_instance_ids(scene)
    lab = scene.semantic.astype(np.uint8)
    base = f"gtFine/{split}/{city}/{stem}_gtFine_"
    return {
        f"leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png": encode_png(scene.image),
        base + "labelIds.png": encode_png(lab),
        base + "instanceIds.png": encode_png(ids.astype(np.uint16)),
        base + "labelTrainIds.png": encode_png(cityscapes_id_to_train_id()[lab]),
        base + "color.png": encode_png(cityscapes_color_lut()[lab]),
    }


def write_context(scene: Scene, image_id: str) -> Files:
    """PASCAL-Context, 59 classes + background, in the converted PNG layout (labels 0..59)."""
    return {
        f"JPEGImages/{image_id}.jpg": encode_jpeg(scene.image),
        f"SegmentationClassContext/{image_id}.png": encode_png(scene.semantic.astype(np.uint8)),
    }


def write_boxes(scene: Scene, image_id: str) -> Files:
    """VOC2007-style detection annotation: JPEG + XML boxes of the visible extent, no masks."""
    h, w = scene.semantic.shape
    boxes = scene.boxes
    objects = [dict(name=VOC_CLASSES[int(c)], box=boxes[i], truncated=scene.truncated[i],
                    difficult=scene.difficult[i], occluded=scene.occluded[i])
               for i, c in enumerate(scene.instance_classes)]
    return {
        f"JPEGImages/{image_id}.jpg": encode_jpeg(scene.image),
        f"Annotations/{image_id}.xml": voc_xml(image_id, "VOC2007", w, h, objects, segmented=False),
    }


def _drop_collinear(c: np.ndarray) -> np.ndarray:
    """Keep only the vertices where a traced contour changes direction (lossless)."""
    if len(c) < 4:
        return c
    d = np.diff(c, axis=0)
    turn = np.any(np.abs(d[1:] - d[:-1]) > 1e-9, axis=1)
    return np.concatenate([c[:1], c[1:-1][turn], c[-1:]])


def coco_polygons(mask: np.ndarray) -> list[list[float]]:
    """COCO polygons (one per connected part) tracing a binary mask's outer contours."""
    from skimage import measure

    polys = []
    lab, n = ndimage.label(mask, np.ones((3, 3), bool))
    for k, sl in enumerate(ndimage.find_objects(lab), start=1):
        # trace each part inside its own bounding box (padded by one pixel), then shift back
        y0, x0 = sl[0].start, sl[1].start
        part = np.pad(lab[sl] == k, 1)
        contours = measure.find_contours(part.astype(np.float32), 0.5)
        if not contours:
            continue
        c = max(contours, key=len)
        c = _drop_collinear(c) - 1 + np.array([y0, x0])  # undo padding and crop
        if len(c) < 3:
            ys, xs = sl[0], sl[1]
            c = np.array([[ys.start, xs.start], [ys.start, xs.stop], [ys.stop, xs.stop], [ys.stop, xs.start]], float) - 0.5
        # find_contours gives (row, col) of pixel centres; COCO uses (x, y) with pixel edges.
        xy = np.stack([c[:, 1] + 0.5, c[:, 0] + 0.5], 1)
        polys.append([round(float(v), 2) for v in xy.ravel()])
    return polys


def coco_rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    with warnings.catch_warnings():  # pycocotools' own numpy-2 copy= deprecation, not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def coco_records(scene: Scene, image_id: int, *, polygons: bool) -> list[dict]:
    """COCO annotation dicts of a scene (ids filled in later); crowds are RLE, others polygons."""
    anns = []
    for i, c in enumerate(scene.instance_classes, start=1):
        m = scene.instances == i
        if not m.any():
            continue
        cat = int(scene.tags[i - 1]) if c == 0 else VOC_TO_COCO_ID[VOC_CLASSES[int(c)]]
        crowd = bool(scene.crowd[i - 1])
        ys, xs = np.nonzero(m)
        x0, y0 = float(xs.min()), float(ys.min())
        seg = coco_rle(m) if (crowd or not polygons) else coco_polygons(m)
        if not crowd and polygons and not seg:
            continue
        anns.append({"segmentation": seg, "area": float(m.sum()), "iscrowd": int(crowd), "image_id": image_id,
                     "bbox": [x0, y0, float(xs.max() + 1) - x0, float(ys.max() + 1) - y0], "category_id": cat})
    return anns


def write_coco_image(scene: Scene, file_name: str) -> Files:
    return {file_name: encode_jpeg(scene.image)}


def context_label_of_voc(c: int) -> int:
    return CONTEXT_CLASSES.index(VOC_TO_CONTEXT[VOC_CLASSES[c]])

