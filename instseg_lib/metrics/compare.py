"""Run every protocol of the suite on one set of predictions (the "How we measure" chapter).

:func:`protocol_report` scores one list of :class:`~instseg_lib.metrics.toy.ToyImage`
(or anything with the same fields) with every metric, so the chapter can show how much
the protocol variant alone moves AP^r.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .ap import VOL_THRESHOLDS, SDSEvaluator
from .cityscapes import CityscapesEvaluator
from .coco import COCOEvaluator
from .masks import encode, iou_matrix
from .matching import MatchingIoUEvaluator
from .recall import RecallEvaluator
from .semantic import SemanticEvaluator, TrimapEvaluator

#: (label, protocol, use_07_metric) of the AP^r variants compared in the chapter.
AP_VARIANTS: tuple[tuple[str, str, bool], ...] = (
    ("SDS: > t, fallback, VOC area", "sds", False),
    ("SDS rule, 11-point AP", "sds", True),
    ("FCIS/MNC: >= t, arg-max, VOC area", "fcis", False),
    ("FCIS/MNC rule, 11-point AP", "fcis", True),
)


@dataclass(frozen=True)
class ProtocolReport:
    """Every protocol's numbers (in percent) on one prediction set."""

    ap_variants: pd.DataFrame  # rows: AP_VARIANTS labels; columns AP^r@0.5, @0.7, vol
    ap_by_threshold: pd.DataFrame  # rows: variants; columns t = 0.1 ... 0.9
    other: pd.Series  # COCO, Cityscapes-style, Matching IoU, recall, semantic
    trimap: pd.DataFrame  # boundary / interior mIoU per band width
    recall: pd.DataFrame  # recall@k and AR
    n_pairs_at_threshold: int  # same-class (prediction, gt) pairs with IoU exactly some t


def protocol_report(images: Sequence, n_classes: int, *, ks: Sequence[int] = (1, 2, 5, 10),
                    trimap_widths: Sequence[int] = (1, 2, 3, 5, 8)) -> ProtocolReport:
    """Score ``images`` (with gt/pred masks, classes, scores and semantic maps) every way."""
    classes = range(1, n_classes + 1)
    sds = {(p, v7): SDSEvaluator(p, use_07_metric=v7, classes=classes)
           for _, p, v7 in AP_VARIANTS}
    match = MatchingIoUEvaluator()
    rec = RecallEvaluator(ks=ks)
    city = CityscapesEvaluator({c: f"class {c}" for c in classes}, min_region_size=0)
    coco = COCOEvaluator({c: f"class {c}" for c in classes})
    sem = SemanticEvaluator(n_classes + 1)
    tri = TrimapEvaluator(n_classes + 1, widths=trimap_widths)
    at_t = 0
    for im in images:
        gt, pred = encode(im.gt_masks), encode(im.pred_masks)
        iou = iou_matrix(pred, gt)
        same = im.pred_classes[:, None] == im.gt_classes[None, :]
        at_t += int(np.isin(iou[same & (iou > 0)], VOL_THRESHOLDS).sum())
        for ev in sds.values():
            ev.add_iou(im.image_id, iou, im.gt_classes, im.pred_classes, im.pred_scores)
        match.add_iou(im.image_id, iou, im.gt_classes, im.pred_classes)
        rec.add_iou(im.image_id, iou, im.pred_scores)
        size = im.gt_masks.shape[1:]
        city.add(im.image_id, gt, im.gt_classes, pred, im.pred_classes, im.pred_scores,
                 image_size=size)
        coco.add(im.image_id, gt, im.gt_classes, pred, im.pred_classes, im.pred_scores,
                 image_size=size)
        sem.add(im.semantic_gt, im.semantic_pred, image_id=im.image_id)
        tri.add(im.semantic_gt, im.semantic_pred, image_id=im.image_id)
    rows, by_t = {}, {}
    for label, p, v7 in AP_VARIANTS:
        table = sds[(p, v7)].compute(VOL_THRESHOLDS)
        rows[label] = {"AP^r@0.5": table.map_at(0.5), "AP^r@0.7": table.map_at(0.7),
                       "AP^r_vol": table.ap_vol}
        by_t[label] = dict(zip([f"{t:g}" for t in VOL_THRESHOLDS], table.mean_ap()))
    ap_variants = 100 * pd.DataFrame.from_dict(rows, orient="index")
    ap_by_threshold = 100 * pd.DataFrame.from_dict(by_t, orient="index")
    c = coco.compute()
    cs = city.compute()
    s = sem.compute()
    r = rec.compute()
    other = 100 * pd.Series({
        "COCO AP (0.5:0.95, 101-pt)": c["AP"], "COCO AP50": c["AP50"], "COCO AP75": c["AP75"],
        "Cityscapes-style AP": cs.AP, "Cityscapes-style AP50": cs.AP50,
        "Matching IoU": match.compute().mean,
        f"class-agnostic recall@{int(r.ks[-1])} (IoU 0.5)": r.recall[-1],
        "pixel accuracy": s.pixel_acc, "mean accuracy": s.mean_acc, "mean IoU": s.mean_iou,
    })
    return ProtocolReport(ap_variants, ap_by_threshold, other, 100 * tri.compute().to_frame(),
                          r.to_frame() * 100, at_t)
