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

**Two readings of "the corresponding IoU as defined in [13]"** (``mode=``):

- ``"segment"`` (default, above): the mean of the matched segments' IoUs, each segment
  (matched, or left over with IoU 0) counting once whatever its size;
- ``"voc"``: the IoU *as VOC [13] defines it*, ``TP / (TP + FP + FN)`` over pixels, after
  matching. The prediction is relabelled with its matched ground-truth instances (left-over
  segments keep labels of their own) and VOC's per-class IoU is taken with instance labels
  in place of class labels and counts summed over a class's instances: for class ``c``

      TP_c = sum_{matched pairs of c} |p & g|
      TP_c + FP_c + FN_c = sum_{matched pairs} |p | g| + sum_{left-over p} |p| + sum_{left-over g} |g|

  accumulated over the whole set as VOC accumulates its confusion matrix; the score is
  the mean over classes (``per_class`` holds each), ``pooled`` the ratio of all sums, and
  an image's value the ratio of its own sums. Pixels count by area, so a large instance
  weighs more than a small one (unlike ``"segment"``). Background is not a class here
  (as in ``"segment"``). Overlapping predicted masks count their shared pixels once per
  mask (the metric is meant for segmentation maps, where masks are disjoint).

The matching (§3.4, by IoU) is the same in both. Void: ``add(..., void=)`` removes the
void pixels from the predicted masks before counting (VOC ignores them); ground-truth
masks are taken not to cover void (VOC labels void apart from instances).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.optimize import linear_sum_assignment

from .errors import MetricsInputError
from .masks import areas, encode, image_rles, intersection_matrix, iou_from_counts, iou_matrix

MatchingMode = Literal["segment", "voc"]
MATCHING_MODES: tuple[str, ...] = ("segment", "voc")


def _check_mode(mode: str) -> None:
    if mode not in MATCHING_MODES:
        raise MetricsInputError(f"Matching IoU mode must be one of {MATCHING_MODES}, got {mode!r}")


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


def matching_iou_voc_counts(inter: np.ndarray, pred_area: np.ndarray, gt_area: np.ndarray,
                            gt_classes: Any, pred_classes: Any) -> dict[int, tuple[int, int]]:
    """VOC-pixel reading of one image: ``{class: (TP, TP + FP + FN)}`` after matching.

    ``inter`` (M predictions, N gts) pixel intersections, ``pred_area`` (M,), ``gt_area``
    (N,) pixel counts. Matched by IoU as in :func:`match_segments`; see the module
    docstring for the counts.
    """
    gc = np.asarray(gt_classes).reshape(-1).astype(np.int64)
    pc = np.asarray(pred_classes).reshape(-1).astype(np.int64)
    inter = np.asarray(inter, dtype=np.int64).reshape(pc.size, gc.size)
    pa = np.asarray(pred_area, dtype=np.int64).reshape(-1)
    ga = np.asarray(gt_area, dtype=np.int64).reshape(-1)
    rows, cols, _ = match_segments(iou_from_counts(inter, pa, ga), gc, pc)
    out: dict[int, list[int]] = {}
    for c, a in zip(pc.tolist(), pa.tolist()):  # every predicted pixel is TP or FP
        out.setdefault(c, [0, 0])[1] += a
    for c, a in zip(gc.tolist(), ga.tolist()):  # every ground-truth pixel is TP or FN
        out.setdefault(c, [0, 0])[1] += a
    for r, k in zip(rows.tolist(), cols.tolist()):  # a TP pixel was counted twice above
        tp = int(inter[r, k])
        out[int(gc[k])][0] += tp
        out[int(gc[k])][1] -= tp
    return {c: (tp, u) for c, (tp, u) in out.items()}


def _pixel_counts(gt: list, pred: list, size: Any, void: Any, image_id: Any
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    inter = intersection_matrix(pred, gt)
    pa, ga = areas(pred), areas(gt)
    if void is not None and len(pred):
        v = np.asarray(void, dtype=bool)
        if size is not None and tuple(v.shape) != tuple(size):
            raise MetricsInputError(f"image {image_id!r}: void mask {v.shape} differs from the "
                                    f"masks' size {tuple(size)}")
        pa = pa - intersection_matrix(pred, encode(v))[:, 0]
    return inter, pa, ga


def matching_iou(gt_masks: Any, gt_classes: Any, pred_masks: Any, pred_classes: Any,
                 mode: MatchingMode = "segment", void: Any = None) -> float:
    """Matching IoU of one image (NaN when it has neither ground truth nor predictions).

    ``mode="segment"``: mean segment IoU; ``"voc"``: pixel ``TP / (TP + FP + FN)`` of the
    image over all its classes (module docstring). ``void`` (H, W) bool: pixels not counted.
    """
    _check_mode(mode)
    gt, pred, size = image_rles(gt_masks, pred_masks)
    if mode == "segment" and void is None:
        total, n = matching_iou_counts(iou_matrix(pred, gt), gt_classes, pred_classes)
        return total / n if n else float("nan")
    inter, pa, ga = _pixel_counts(gt, pred, size, void, None)
    if mode == "segment":
        total, n = matching_iou_counts(iou_from_counts(inter, pa, ga), gt_classes, pred_classes)
        return total / n if n else float("nan")
    counts = matching_iou_voc_counts(inter, pa, ga, gt_classes, pred_classes)
    tp, u = sum(t for t, _ in counts.values()), sum(x for _, x in counts.values())
    return tp / u if u else float("nan")


@dataclass(frozen=True)
class MatchingIoUResult:
    """The headline ``mean``, the ``pooled`` ratio over the set, and each image's value.

    ``mode="segment"``: ``mean`` over images of the per-image mean segment IoU, ``pooled``
    = sum of matched IoUs / number of segments. ``mode="voc"``: ``mean`` over classes of
    VOC's per-class IoU (``per_class``), ``pooled`` = all TP / all (TP + FP + FN).
    """

    mean: float
    pooled: float
    per_image: Mapping[Any, float]
    per_class: Mapping[int, float] | None = None
    mode: str = "segment"


class MatchingIoUEvaluator:
    """Streams images; stores two numbers per image (``"segment"``) or per class and image (``"voc"``)."""

    def __init__(self, mode: MatchingMode = "segment") -> None:
        _check_mode(mode)
        self.mode = mode
        self._sums: dict[Any, tuple[float, int]] = {}
        self._voc: dict[Any, dict[int, tuple[int, int]]] = {}

    def _new(self, image_id: Any) -> None:
        if image_id in self._sums or image_id in self._voc:
            raise MetricsInputError(f"image {image_id!r} was added twice")

    def add(self, image_id: Any, gt_masks: Any, gt_classes: Any, pred_masks: Any,
            pred_classes: Any, void: Any = None) -> None:
        """Add one image: masks as ``(N, H, W)`` arrays or RLE lists, and their classes.

        ``void`` (H, W) bool, optional: pixels removed from the predictions before counting.
        """
        gt, pred, size = image_rles(gt_masks, pred_masks, image_id=image_id)
        if self.mode == "segment" and void is None:
            self.add_iou(image_id, iou_matrix(pred, gt), gt_classes, pred_classes)
            return
        inter, pa, ga = _pixel_counts(gt, pred, size, void, image_id)
        self.add_counts(image_id, inter, pa, ga, gt_classes, pred_classes)

    def _check_sizes(self, image_id: Any, n: int, gt_classes: Any, pred_classes: Any) -> tuple[int, int]:
        n_gt, n_pred = np.asarray(gt_classes).size, np.asarray(pred_classes).size
        if n != n_gt * n_pred:
            raise MetricsInputError(
                f"image {image_id!r}: IoU matrix does not match {n_pred} predictions x "
                f"{n_gt} ground truths"
            )
        return n_gt, n_pred

    def add_iou(self, image_id: Any, iou: np.ndarray, gt_classes: Any, pred_classes: Any
                ) -> None:
        """Add one image from its ``(M predictions, N gts)`` IoU matrix (``"segment"`` only)."""
        if self.mode != "segment":
            raise MetricsInputError("mode='voc' counts pixels: use add() or add_counts(), not add_iou()")
        self._new(image_id)
        self._check_sizes(image_id, np.size(iou), gt_classes, pred_classes)
        self._sums[image_id] = matching_iou_counts(iou, gt_classes, pred_classes)

    def add_counts(self, image_id: Any, inter: np.ndarray, pred_area: Any, gt_area: Any,
                   gt_classes: Any, pred_classes: Any) -> None:
        """Add one image from pixel counts: ``(M, N)`` intersections and the two area vectors."""
        self._new(image_id)
        n_gt, n_pred = self._check_sizes(image_id, np.size(inter), gt_classes, pred_classes)
        pa, ga = np.asarray(pred_area).reshape(-1), np.asarray(gt_area).reshape(-1)
        if pa.size != n_pred or ga.size != n_gt:
            raise MetricsInputError(f"image {image_id!r}: {pa.size} prediction / {ga.size} ground-truth areas "
                                    f"for {n_pred} predictions and {n_gt} ground truths")
        if self.mode == "segment":
            inter = np.asarray(inter).reshape(n_pred, n_gt)
            self._sums[image_id] = matching_iou_counts(iou_from_counts(inter, pa, ga), gt_classes, pred_classes)
        else:
            self._voc[image_id] = matching_iou_voc_counts(inter, pa, ga, gt_classes, pred_classes)

    def compute(self) -> MatchingIoUResult:
        if self.mode == "voc":
            return self._compute_voc()
        per = {k: (s / n if n else float("nan")) for k, (s, n) in self._sums.items()}
        vals = np.array([v for v in per.values() if np.isfinite(v)])
        tot_s = sum(s for s, _ in self._sums.values())
        tot_n = sum(n for _, n in self._sums.values())
        return MatchingIoUResult(
            float(vals.mean()) if vals.size else float("nan"),
            tot_s / tot_n if tot_n else float("nan"),
            per,
        )

    def _compute_voc(self) -> MatchingIoUResult:
        per_image, tp_c, u_c = {}, {}, {}
        for iid, counts in self._voc.items():
            tp = sum(t for t, _ in counts.values())
            u = sum(x for _, x in counts.values())
            per_image[iid] = tp / u if u else float("nan")
            for c, (t, x) in counts.items():
                tp_c[c] = tp_c.get(c, 0) + t
                u_c[c] = u_c.get(c, 0) + x
        per_class = {c: tp_c[c] / u_c[c] for c in sorted(u_c) if u_c[c] > 0}
        tot_u = sum(u_c.values())
        return MatchingIoUResult(
            float(np.mean(list(per_class.values()))) if per_class else float("nan"),
            sum(tp_c.values()) / tot_u if tot_u else float("nan"),
            per_image, per_class, "voc",
        )
