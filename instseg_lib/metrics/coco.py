"""COCO mask AP through ``pycocotools`` (Lin et al. 2014): the bridge to the wider ecosystem.

This is not a re-implementation: ground truth and results go to ``COCOeval(iouType=
"segm")`` unchanged, so ``AP`` (IoU 0.50:0.05:0.95, 101-point interpolation, crowd
regions ignored, at most 100 detections per image), ``AP50`` and ``AP75`` are COCO's own.
The chatter ``pycocotools`` prints is captured so the CLI's stdout stays one JSON object.

:class:`COCOEvaluator` builds the COCO structures from numpy masks image by image; it
holds compressed RLEs (a few hundred bytes per mask), not mask tensors.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Mapping
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from .ap import check_scores
from .errors import MetricsInputError
from .masks import areas, image_rles

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl",
              "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def _quiet():
    return contextlib.redirect_stdout(io.StringIO())


def load_coco(gt: str | Mapping | COCO) -> COCO:
    """A ``COCO`` object from a path, a dataset dict or an existing object (quietly)."""
    if isinstance(gt, COCO):
        return gt
    with _quiet():
        if isinstance(gt, Mapping):
            coco = COCO()
            coco.dataset = copy.deepcopy(dict(gt))
            coco.createIndex()
            return coco
        return COCO(str(gt))


def _json_rle(rle: dict) -> dict:
    counts = rle["counts"]
    return {"size": [int(s) for s in rle["size"]],
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def coco_segm_eval(gt: str | Mapping | COCO, results: list[dict], *,
                   per_class: bool = False) -> dict[str, Any]:
    """Run ``COCOeval`` (segm) and return ``{"AP", "AP50", "AP75", ...}`` (fractions).

    ``results`` is a COCO results list (``image_id``, ``category_id``, RLE
    ``segmentation``, ``score``). An empty list gives zeros (``pycocotools`` cannot load
    it). ``per_class`` adds ``{"per_class": {category name: AP}}``.
    """
    coco_gt = load_coco(gt)
    if len(results) == 0:
        out: dict[str, Any] = {k: 0.0 for k in STAT_NAMES}
        if per_class:
            out["per_class"] = {c["name"]: 0.0 for c in coco_gt.cats.values()}
        return out
    with _quiet():
        coco_dt = coco_gt.loadRes(copy.deepcopy(list(results)))
        ev = COCOeval(coco_gt, coco_dt, iouType="segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    out = {k: float(v) for k, v in zip(STAT_NAMES, ev.stats)}
    if per_class:
        prec = ev.eval["precision"]  # (T, R, K, A, M); area "all", maxDets 100
        table = {}
        for k, cat_id in enumerate(ev.params.catIds):
            p = prec[:, :, k, 0, -1]
            p = p[p > -1]
            table[coco_gt.cats[int(cat_id)]["name"]] = float(p.mean()) if p.size else float("nan")
        out["per_class"] = table
    return out


class COCOEvaluator:
    """Collects numpy/RLE masks image by image, then runs :func:`coco_segm_eval`."""

    def __init__(self, categories: Mapping[int, str] | None = None) -> None:
        self.categories = dict(categories) if categories else None
        self._images: list[dict] = []
        self._anns: list[dict] = []
        self._results: list[dict] = []
        self._ids: set[Any] = set()

    def add(self, image_id: int, gt_masks: Any, gt_classes: Any, pred_masks: Any,
            pred_classes: Any, pred_scores: Any, *, gt_iscrowd: Any = None,
            image_size: tuple[int, int] | None = None) -> None:
        """Add one image (integer id, as COCO wants)."""
        if image_id in self._ids:
            raise MetricsInputError(f"image {image_id!r} was added twice")
        gt, pred, size = image_rles(gt_masks, pred_masks, image_id=image_id,
                                    image_size=image_size)
        if size is None:
            raise MetricsInputError(f"image {image_id!r}: no masks; pass image_size")
        h, w = size
        gc = np.asarray(gt_classes, dtype=np.int64).reshape(-1)
        pc = np.asarray(pred_classes, dtype=np.int64).reshape(-1)
        scores = check_scores(pred_scores, pc.size, image_id)
        crowd = np.zeros(gc.size, bool) if gt_iscrowd is None else np.asarray(gt_iscrowd, bool)
        self._ids.add(image_id)
        self._images.append({"id": int(image_id), "height": int(h), "width": int(w)})
        from pycocotools import mask as mask_utils

        for rle, c, a, cr in zip(gt, gc, areas(gt), crowd):
            self._anns.append({
                "id": len(self._anns) + 1, "image_id": int(image_id), "category_id": int(c),
                "segmentation": _json_rle(rle), "area": float(a), "iscrowd": int(cr),
                "bbox": [float(v) for v in mask_utils.toBbox(rle)],
            })
        for rle, c, s in zip(pred, pc, scores):
            self._results.append({"image_id": int(image_id), "category_id": int(c),
                                  "segmentation": _json_rle(rle), "score": float(s)})

    def dataset(self) -> dict:
        """The COCO ground-truth dict built so far."""
        cats = self.categories or {int(c): str(c) for c in
                                   sorted({a["category_id"] for a in self._anns}
                                          | {r["category_id"] for r in self._results})}
        return {"images": list(self._images), "annotations": list(self._anns),
                "categories": [{"id": k, "name": v} for k, v in cats.items()]}

    def results(self) -> list[dict]:
        return list(self._results)

    def compute(self, *, per_class: bool = False) -> dict[str, Any]:
        return coco_segm_eval(self.dataset(), self.results(), per_class=per_class)
