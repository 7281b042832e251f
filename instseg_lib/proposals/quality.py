"""Proposal quality: average best overlap and recall against the number of proposals.

BoxSup Table 3 explains its ranking of SS < GOP < MCG by "segmentation quality evaluated
by other metrics in [2]" (MCG, Arbeláez et al. 2014), i.e. the best achievable overlap
with the ground-truth objects. We measure the same things on the twin:

- **best overlap** of a ground-truth object with the first ``k`` proposals: the highest
  IoU of any of them with the object;
- **ABO** (average best overlap, Uijlings et al. 2013 §5.1): its mean over all objects;
  **MABO**: the mean over classes of the per-class ABO;
- **recall@t**: the fraction of objects whose best overlap is at least ``t`` (0.5, 0.7).

Segments are compared with ground-truth instance *masks* (IoU of pixel sets, void pixels
of the ground truth left out of both sets, as the VOC evaluation does); the box variant
(:func:`box_best_overlap`) compares tight boxes with ground-truth boxes, which is all
OpenCV's Selective Search returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..metrics.masks import box_iou_matrix  # re-exported: BoxSup's objective and quality use it
from .candidates import Candidates

#: Numbers of proposals the curves are read at (prefixes of the ranked list).
DEFAULT_KS = (1, 10, 30, 100, 300, 1000)
THRESHOLDS = (0.5, 0.7)


def mask_iou_matrix(gt_instances: np.ndarray, candidates: Candidates, n_objects: int | None = None,
                    void: np.ndarray | None = None) -> np.ndarray:
    """``(G, N)`` IoU of ground-truth instances ``1..G`` with every candidate segment.

    Computed on superpixels: the intersection of object ``g`` with segment ``n`` is the sum
    over the segment's cells of the cell's pixels inside ``g``. Pixels where ``void`` is True
    count for neither set.
    """
    inst = np.asarray(gt_instances).astype(np.int64)
    if inst.shape != candidates.shape:
        raise ValueError(f"instance map {inst.shape} and candidates {candidates.shape} differ in size")
    g = int(inst.max(initial=0)) if n_objects is None else int(n_objects)
    sp = candidates.superpixels.ravel().astype(np.int64)
    r = candidates.n_superpixels
    keep = np.ones(sp.size, dtype=bool) if void is None else ~np.asarray(void, dtype=bool).ravel()
    inst_f, sp_f = inst.ravel()[keep], sp[keep]
    # (G+1, R) pixel counts of object g in cell r (row 0: no object)
    counts = np.bincount(inst_f * r + sp_f, minlength=(g + 1) * r)[: (g + 1) * r].reshape(g + 1, r)
    valid_area = counts.sum(axis=0)  # non-void pixels per cell
    members = candidates.members.astype(np.float64)
    inter = np.asarray((members @ counts[1:].T.astype(np.float64))).T  # (G, N)
    seg_area = np.asarray(members @ valid_area.astype(np.float64)).ravel()  # (N,)
    gt_area = counts[1:].sum(axis=1).astype(np.float64)  # (G,)
    union = gt_area[:, None] + seg_area[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def best_overlap_at(iou: np.ndarray, ks: Sequence[int]) -> np.ndarray:
    """``(G, len(ks))`` best IoU of every object among the first ``k`` proposals.

    A ``k`` beyond the number of proposals uses all of them (the curve flattens).
    """
    iou = np.asarray(iou, dtype=np.float64)
    g, n = iou.shape
    if n == 0:
        return np.zeros((g, len(ks)))
    running = np.maximum.accumulate(iou, axis=1)
    cols = np.minimum(np.asarray(ks, dtype=np.int64), n) - 1
    return running[:, cols]


def mask_best_overlap(gt_instances: np.ndarray, candidates: Candidates, ks: Sequence[int] = DEFAULT_KS,
                      void: np.ndarray | None = None, n_objects: int | None = None) -> np.ndarray:
    return best_overlap_at(mask_iou_matrix(gt_instances, candidates, n_objects, void), ks)


def box_best_overlap(gt_boxes: np.ndarray, boxes: np.ndarray, ks: Sequence[int] = DEFAULT_KS) -> np.ndarray:
    return best_overlap_at(box_iou_matrix(gt_boxes, boxes), ks)


@dataclass(frozen=True)
class QualityResult:
    """ABO, MABO and recall per number of proposals ``ks`` over ``n_objects`` objects."""

    ks: np.ndarray
    abo: np.ndarray
    mabo: np.ndarray
    recall: dict[float, np.ndarray]
    n_objects: int
    mean_proposals: float

    def to_frame(self):
        import pandas as pd

        cols = {"ABO": self.abo, "MABO": self.mabo}
        cols.update({f"recall@{t:g}": r for t, r in self.recall.items()})
        return pd.DataFrame(cols, index=pd.Index(self.ks, name="proposals"))


class QualityEvaluator:
    """Streams images: ``add(best_overlaps, classes, n_proposals)`` then ``compute()``.

    >>> ev = QualityEvaluator(ks=(10, 100))
    >>> ev.add(mask_best_overlap(sample.instances, cands, ev.ks), sample.instance_classes, len(cands))
    >>> ev.compute().to_frame()
    """

    def __init__(self, ks: Sequence[int] = DEFAULT_KS, thresholds: Sequence[float] = THRESHOLDS) -> None:
        self.ks = tuple(int(k) for k in ks)
        if not self.ks or min(self.ks) < 1:
            raise ValueError("numbers of proposals must be positive")
        self.thresholds = tuple(float(t) for t in thresholds)
        self._best: list[np.ndarray] = []
        self._classes: list[np.ndarray] = []
        self._n_props: list[int] = []

    def add(self, best: np.ndarray, classes: np.ndarray | None = None, n_proposals: int | None = None) -> None:
        best = np.asarray(best, dtype=np.float64).reshape(-1, len(self.ks))
        classes = np.zeros(len(best), np.int64) if classes is None else np.asarray(classes).reshape(-1)
        if len(classes) != len(best):
            raise ValueError(f"{len(best)} objects but {len(classes)} classes")
        self._best.append(best)
        self._classes.append(classes)
        if n_proposals is not None:
            self._n_props.append(int(n_proposals))

    def compute(self) -> QualityResult:
        best = np.concatenate(self._best) if self._best else np.zeros((0, len(self.ks)))
        cls = np.concatenate(self._classes) if self._classes else np.zeros(0, np.int64)
        nan = np.full(len(self.ks), np.nan)
        if len(best) == 0:
            return QualityResult(np.asarray(self.ks), nan, nan, {t: nan for t in self.thresholds}, 0,
                                 float(np.mean(self._n_props)) if self._n_props else float("nan"))
        abo = best.mean(axis=0)
        mabo = np.mean([best[cls == c].mean(axis=0) for c in np.unique(cls)], axis=0)
        recall = {t: (best >= t).mean(axis=0) for t in self.thresholds}
        return QualityResult(np.asarray(self.ks), abo, mabo, recall, len(best),
                             float(np.mean(self._n_props)) if self._n_props else float("nan"))
