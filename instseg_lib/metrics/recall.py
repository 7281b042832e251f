"""Class-agnostic proposal recall against the number of proposals (Fathi et al. 2017, Table 3).

Fathi et al. §4.1 evaluate their method "as a class agnostic region proposal generator":
recall at a fixed IoU (50 %) against the number of proposals k, and the average recall AR
(Hosang et al., "What makes for effective detection proposals?", PAMI 2016), the area
under recall-versus-IoU for a fixed k, which we take as the mean recall over IoU
0.5:0.05:0.95 (COCO's discretisation). We follow Hosang's convention:

- an image's proposals are ranked by descending score and the top k kept;
- a ground-truth segment is recalled when *some* kept proposal has IoU >= the threshold
  with it (no one-to-one matching, classes ignored);
- recall pools all ground truths of the set.

Per ground truth we store only, for each k, its best IoU among the top-k proposals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .ap import check_scores
from .errors import MetricsInputError
from .masks import image_rles, iou_matrix

#: The numbers of proposals of Fathi et al. Table 3.
FATHI_KS: tuple[int, ...] = (10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 200, 500, 1000)
#: IoU grid of Hosang's AR.
AR_IOUS: tuple[float, ...] = tuple(round(0.5 + 0.05 * k, 2) for k in range(10))


@dataclass(frozen=True)
class RecallResult:
    """Recall at ``iou_threshold`` and AR (IoU 0.5:0.05:0.95) for each k."""

    ks: np.ndarray
    iou_threshold: float
    recall: np.ndarray
    average_recall: np.ndarray
    n_gt: int

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(
            {f"recall@IoU{self.iou_threshold:g}": self.recall, "AR": self.average_recall},
            index=pd.Index(self.ks, name="proposals"),
        )


class RecallEvaluator:
    """Streaming class-agnostic recall@k.

    >>> ev = RecallEvaluator(ks=FATHI_KS)
    >>> ev.add(image_id, gt_masks, proposal_masks, proposal_scores)
    >>> ev.compute().to_frame()
    """

    def __init__(self, ks: Iterable[int] = FATHI_KS, iou_threshold: float = 0.5) -> None:
        self.ks = np.asarray(sorted(set(int(k) for k in ks)), dtype=np.int64)
        if self.ks.size == 0 or self.ks[0] < 1:
            raise ValueError("numbers of proposals k must be positive")
        self.iou_threshold = float(iou_threshold)
        self._best: list[np.ndarray] = []  # (n_gt, K) best IoU within the top k
        self._ids: set[Any] = set()

    def add(self, image_id: Any, gt_masks: Any, pred_masks: Any, pred_scores: Any) -> None:
        """Add one image: its ground-truth masks and its scored proposals (any class)."""
        gt, pred, _ = image_rles(gt_masks, pred_masks, image_id=image_id)
        self.add_iou(image_id, iou_matrix(pred, gt), pred_scores)

    def add_iou(self, image_id: Any, iou: np.ndarray, pred_scores: Any) -> None:
        """Add one image from its ``(M proposals, N gts)`` IoU matrix."""
        if image_id in self._ids:
            raise MetricsInputError(f"image {image_id!r} was added twice")
        iou = np.asarray(iou, dtype=np.float64)
        if iou.ndim != 2:
            raise MetricsInputError(f"image {image_id!r}: IoU must be a 2-d matrix")
        m, n = iou.shape
        scores = check_scores(pred_scores, m, image_id)
        self._ids.add(image_id)
        if n == 0:
            return
        best = np.zeros((n, self.ks.size))
        if m:
            order = np.argsort(-scores, kind="stable")
            cummax = np.maximum.accumulate(iou[order], axis=0)  # (m, n)
            rows = np.minimum(self.ks, m) - 1
            best = cummax[rows].T
        self._best.append(best)

    def recall_curve(self, ious: Iterable[float]) -> np.ndarray:
        """Recall ``(K, len(ious))``: for each k, the fraction of ground truths whose best IoU
        among the top-k proposals is ``>= iou`` (the recall-versus-IoU plot of §4.1)."""
        ts = np.asarray(list(ious), dtype=np.float64)
        if not self._best:
            return np.full((self.ks.size, ts.size), np.nan)
        best = np.concatenate(self._best, axis=0)
        return (best[:, :, None] >= ts[None, None, :]).mean(axis=0)

    def compute(self) -> RecallResult:
        if not self._best:
            nan = np.full(self.ks.size, np.nan)
            return RecallResult(self.ks.copy(), self.iou_threshold, nan, nan.copy(), 0)
        best = np.concatenate(self._best, axis=0)
        recall = (best >= self.iou_threshold).mean(axis=0)
        ar = np.mean([(best >= t).mean(axis=0) for t in AR_IOUS], axis=0)
        return RecallResult(self.ks.copy(), self.iou_threshold, recall, ar, best.shape[0])
