"""Masks as COCO run-length encodings, and vectorised IoU between sets of masks.

Every instance metric of the suite needs the overlap of all predictions of an image with
all its ground-truth segments. We compute it with ``pycocotools.mask`` (C code on RLEs,
the same routine ``COCOeval`` uses), never with a Python loop over pixels. Masks are
accepted as ``(N, H, W)`` boolean arrays, lists of ``(H, W)`` arrays, or COCO RLE dicts
(compressed ``counts`` as ``str``/``bytes``, or uncompressed ``counts`` lists), and
polygons where a COCO file holds them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from .errors import MaskSizeError, PredictionFormatError

RLE = dict[str, Any]


def encode(masks: np.ndarray) -> list[RLE]:
    """Encode an ``(N, H, W)`` (or single ``(H, W)``) binary array as compressed RLEs."""
    arr = np.asarray(masks)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise MaskSizeError(f"masks must be (N, H, W) or (H, W), got shape {arr.shape}")
    if arr.shape[0] == 0:
        return []
    # pycocotools wants (H, W, N) in Fortran order: RLE runs go down columns.
    fortran = np.asfortranarray(arr.transpose(1, 2, 0).astype(np.uint8, copy=False))
    return list(mask_utils.encode(fortran))


def decode(rles: Sequence[RLE]) -> np.ndarray:
    """Decode RLEs to an ``(N, H, W)`` boolean array (for small cases and plots only)."""
    if len(rles) == 0:
        raise ValueError("decode() needs at least one RLE to know the image size")
    with warnings.catch_warnings():  # pycocotools' own numpy-2 copy= deprecation notice
        warnings.simplefilter("ignore", DeprecationWarning)
        arr = mask_utils.decode(list(rles))
    return np.ascontiguousarray(arr.transpose(2, 0, 1)).astype(bool)


def segmentation_to_rle(segmentation: Any, height: int, width: int, *, where: str = "") -> RLE:
    """One COCO ``segmentation`` field (RLE dict, uncompressed RLE or polygons) to an RLE.

    ``where`` names the record in error messages (e.g. ``"image 42, result #3"``).
    """
    if isinstance(segmentation, dict):
        if "counts" not in segmentation or "size" not in segmentation:
            raise PredictionFormatError(f"{where}: RLE segmentation needs 'size' and 'counts'")
        try:
            size = [int(s) for s in segmentation["size"]]
        except (TypeError, ValueError):
            size = []
        if len(size) != 2:
            raise PredictionFormatError(f"{where}: RLE 'size' must be [height, width], got {segmentation['size']!r}")
        if size != [height, width]:
            raise MaskSizeError(
                f"{where}: mask size {size[0]}x{size[1]} differs from image size "
                f"{height}x{width}"
            )
        from ..data.formats import check_coco_rle

        try:  # pycocotools' C code writes past its buffer on runs that do not add up
            check_coco_rle(segmentation, height, width)
        except (ValueError, TypeError) as exc:
            raise PredictionFormatError(f"{where}: malformed RLE segmentation ({exc})") from None
        counts = segmentation["counts"]
        if isinstance(counts, list):  # uncompressed RLE (COCO crowd annotations)
            return mask_utils.frPyObjects(segmentation, height, width)
        if isinstance(counts, str):
            counts = counts.encode("ascii")
        return {"size": size, "counts": counts}
    if isinstance(segmentation, list):  # polygons
        if len(segmentation) == 0:
            return encode(np.zeros((height, width), dtype=bool))[0]
        # Guard what pycocotools cannot take (its rasteriser allocates per pixel of outline, so a
        # coordinate of 1e30 exhausts memory). A first ring of 4 numbers stays what pycocotools,
        # and so COCOeval, makes of it (a box), for agreement with the reference evaluator.
        for ring in segmentation:
            if not isinstance(ring, list) or len(ring) % 2 or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
                    and abs(v) <= 4 * (height + width) for v in ring):
                raise PredictionFormatError(
                    f"{where}: a polygon must be a list of points (x, y) of finite numbers "
                    f"near the {width}x{height} image")
        try:
            parts = mask_utils.frPyObjects(segmentation, height, width)
        except Exception as exc:  # pycocotools raises bare Exceptions on bad polygons
            raise PredictionFormatError(f"{where}: unreadable polygon segmentation ({exc})")
        return mask_utils.merge(parts)
    raise PredictionFormatError(
        f"{where}: segmentation must be an RLE dict or a list of polygons, "
        f"got {type(segmentation).__name__}"
    )


def to_rles(
    masks: Any,
    height: int | None = None,
    width: int | None = None,
    *,
    image_id: Any = None,
    what: str = "prediction",
) -> list[RLE]:
    """Normalise masks given in any accepted form to a list of RLEs, checking their size.

    ``height``/``width`` (the image size) are checked when given; a mismatch raises
    :class:`MaskSizeError` naming ``image_id`` and ``what`` (``"prediction"`` or
    ``"ground truth"``).
    """
    where = f"image {image_id!r}, {what}"
    if isinstance(masks, np.ndarray):
        arr = masks
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise MaskSizeError(f"{where}: masks must be (N, H, W), got shape {masks.shape}")
        if height is not None and arr.shape[1:] != (height, width):
            raise MaskSizeError(
                f"{where}: mask size {arr.shape[1]}x{arr.shape[2]} differs from image size "
                f"{height}x{width}"
            )
        return encode(arr)
    out: list[RLE] = []
    for k, m in enumerate(masks):
        if isinstance(m, np.ndarray):
            if m.ndim != 2 or (height is not None and m.shape != (height, width)):
                raise MaskSizeError(
                    f"{where} #{k}: mask shape {m.shape} differs from image size "
                    f"{height}x{width}"
                )
            out.extend(encode(m))
        elif isinstance(m, dict):
            h, w = (height, width) if height is not None else tuple(m.get("size", (0, 0)))
            out.append(segmentation_to_rle(m, int(h), int(w), where=f"{where} #{k}"))
        else:
            raise PredictionFormatError(
                f"{where} #{k}: expected a binary array or an RLE dict, got {type(m).__name__}"
            )
    if height is None and out:
        sizes = {tuple(r["size"]) for r in out}
        if len(sizes) > 1:
            raise MaskSizeError(f"{where}: masks of different sizes {sorted(sizes)}")
    return out


def rle_size(rles: Sequence[RLE]) -> tuple[int, int] | None:
    """``(H, W)`` of a list of RLEs, or ``None`` for an empty list."""
    return (int(rles[0]["size"][0]), int(rles[0]["size"][1])) if len(rles) else None


def image_rles(gt_masks: Any, pred_masks: Any, *, image_id: Any = None,
               image_size: tuple[int, int] | None = None
               ) -> tuple[list[RLE], list[RLE], tuple[int, int] | None]:
    """Ground-truth and predicted masks of one image as RLEs, both checked against the
    image size (``image_size``, else the ground truth's, else the predictions')."""
    size = image_size
    if size is None and isinstance(gt_masks, np.ndarray) and gt_masks.ndim == 3:
        size = gt_masks.shape[1:]
    h, w = size if size is not None else (None, None)
    gt = to_rles(gt_masks, h, w, image_id=image_id, what="ground truth")
    if size is None:
        size = rle_size(gt)
        h, w = size if size is not None else (None, None)
    pred = to_rles(pred_masks, h, w, image_id=image_id, what="prediction")
    if size is None:
        size = rle_size(pred)
    return gt, pred, (None if size is None else (int(size[0]), int(size[1])))


def areas(rles: Sequence[RLE]) -> np.ndarray:
    """Pixel count of each RLE (int64)."""
    if len(rles) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(mask_utils.area(list(rles)), dtype=np.int64)


def iou_matrix(pred: Sequence[RLE], gt: Sequence[RLE]) -> np.ndarray:
    """IoU of every prediction with every ground truth, shape ``(len(pred), len(gt))``.

    Computed in C by ``pycocotools.mask.iou`` as ``double(I) / double(U)``, so an IoU that
    is exactly a threshold (e.g. 50 / 100) is exactly that float. Empty masks give 0.
    """
    m, n = len(pred), len(gt)
    if m == 0 or n == 0:
        return np.zeros((m, n), dtype=np.float64)
    return np.asarray(mask_utils.iou(list(pred), list(gt), [0] * n), dtype=np.float64).reshape(m, n)


def intersection_matrix(pred: Sequence[RLE], gt: Sequence[RLE]) -> np.ndarray:
    """Exact pixel intersections, shape ``(len(pred), len(gt))``, int64.

    ``pycocotools`` treats a crowd ground truth's "IoU" as ``I / area(pred)``; multiplying
    back by the integer area and rounding recovers ``I`` exactly (double precision holds
    integers far beyond any image size).
    """
    m, n = len(pred), len(gt)
    if m == 0 or n == 0:
        return np.zeros((m, n), dtype=np.int64)
    ratio = np.asarray(mask_utils.iou(list(pred), list(gt), [1] * n), dtype=np.float64)
    return np.rint(ratio.reshape(m, n) * areas(pred)[:, None]).astype(np.int64)


def iou_from_counts(inter: np.ndarray, area_pred: np.ndarray, area_gt: np.ndarray) -> np.ndarray:
    """IoU from an intersection matrix and the two area vectors (0 where the union is 0)."""
    union = area_pred[:, None] + area_gt[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        out = inter / union
    return np.where(union > 0, out, 0.0)


def box_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` IoU of inclusive-exclusive boxes ``x0, y0, x1, y1``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]).clip(0) * (a[:, 3] - a[:, 1]).clip(0)
    area_b = (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)
