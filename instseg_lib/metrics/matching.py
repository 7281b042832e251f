"""Matching IoU (Arnab & Torr 2017, §4.2; matching as in their §3.4; after Yang et al. 2012).

Per image, predicted and ground-truth segments are matched one-to-one by a maximum-weight
bipartite matching (``scipy.optimize.linear_sum_assignment``) whose edge weights are the
IoU of a predicted and a ground-truth segment of the *same* class (zero otherwise).
"Leftover segments are matched to dummy nodes with zero overlap" (§3.4): every unmatched
ground truth and every unmatched prediction counts as one segment with IoU 0. The image
score is the mean IoU over all segments, i.e.

    sum(IoU of matched pairs) / (#matched pairs + #unmatched gts + #unmatched predictions)

and the dataset score is the mean over images (``pooled`` also reports the ratio of the
sums over the whole set). Unlike AP^r it needs no scores and penalises overlapping or
superfluous segments: it measures the coherent segmentation map the paper argues for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from .errors import MetricsInputError
from .masks import image_rles, iou_matrix


def match_segments(iou: np.ndarray, gt_classes: Any, pred_classes: Any
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximum-IoU one-to-one matching of same-class segments of one image.

    Returns ``(pred_index, gt_index, iou)`` of the matched pairs; pairs of zero weight
    (different class or no overlap) are dropped, as they are matches to dummy nodes.
    """
    gc = np.asarray(gt_classes).reshape(-1)
    pc = np.asarray(pred_classes).reshape(-1)
    iou = np.asarray(iou, dtype=np.float64).reshape(pc.size, gc.size)
    if iou.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    weight = np.where(pc[:, None] == gc[None, :], iou, 0.0)
    rows, cols = linear_sum_assignment(weight, maximize=True)
    keep = weight[rows, cols] > 0
    return rows[keep], cols[keep], weight[rows, cols][keep]


def matching_iou_counts(iou: np.ndarray, gt_classes: Any, pred_classes: Any
                        ) -> tuple[float, int]:
    """``(sum of matched IoUs, number of segments)`` of one image."""
    n_gt = np.asarray(gt_classes).size
    n_pred = np.asarray(pred_classes).size
    _, _, w = match_segments(iou, gt_classes, pred_classes)
    return float(w.sum()), int(n_gt + n_pred - w.size)


def matching_iou(gt_masks: Any, gt_classes: Any, pred_masks: Any, pred_classes: Any) -> float:
    """Matching IoU of one image (NaN when it has neither ground truth nor predictions)."""
    gt, pred, _ = image_rles(gt_masks, pred_masks)
    total, n = matching_iou_counts(iou_matrix(pred, gt), gt_classes, pred_classes)
    return total / n if n else float("nan")


@dataclass(frozen=True)
class MatchingIoUResult:
    """Mean over images, pooled ratio over the set, and each image's value."""

    mean: float
    pooled: float
    per_image: Mapping[Any, float]


class MatchingIoUEvaluator:
    """Streams images; stores two numbers per image."""

    def __init__(self) -> None:
        self._sums: dict[Any, tuple[float, int]] = {}

    def add(self, image_id: Any, gt_masks: Any, gt_classes: Any, pred_masks: Any,
            pred_classes: Any) -> None:
        """Add one image: masks as ``(N, H, W)`` arrays or RLE lists, and their classes."""
        gt, pred, _ = image_rles(gt_masks, pred_masks, image_id=image_id)
        self.add_iou(image_id, iou_matrix(pred, gt), gt_classes, pred_classes)

    def add_iou(self, image_id: Any, iou: np.ndarray, gt_classes: Any, pred_classes: Any
                ) -> None:
        """Add one image from its ``(M predictions, N gts)`` IoU matrix."""
        if image_id in self._sums:
            raise MetricsInputError(f"image {image_id!r} was added twice")
        n_gt, n_pred = np.asarray(gt_classes).size, np.asarray(pred_classes).size
        if np.size(iou) != n_gt * n_pred:
            raise MetricsInputError(
                f"image {image_id!r}: IoU matrix does not match {n_pred} predictions x "
                f"{n_gt} ground truths"
            )
        self._sums[image_id] = matching_iou_counts(iou, gt_classes, pred_classes)

    def compute(self) -> MatchingIoUResult:
        per = {k: (s / n if n else float("nan")) for k, (s, n) in self._sums.items()}
        vals = np.array([v for v in per.values() if np.isfinite(v)])
        tot_s = sum(s for s, _ in self._sums.values())
        tot_n = sum(n for _, n in self._sums.values())
        return MatchingIoUResult(
            float(vals.mean()) if vals.size else float("nan"),
            tot_s / tot_n if tot_n else float("nan"),
            per,
        )
