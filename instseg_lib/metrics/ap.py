"""Region average precision AP^r (SDS protocol), its MNC/FCIS variant, and AP^r_vol.

SDS protocol — Hariharan et al., "Simultaneous detection and segmentation", ECCV 2014,
MATLAB ``generalized_det_eval`` / ``overlaps_to_labels``; used by Wu et al. 2016 (Table 6),
Arnab & Torr 2017 §4.2, Liang et al. (PFN) §5 and Fathi et al. 2017 §4.1:

1. per class, an image's predictions are visited by descending score;
2. each goes to the *still-uncovered* ground truth of its image and class with the highest
   IoU (the "fallback": if the best ground truth is already taken, the next best is tried),
   and is a true positive if that IoU is **strictly greater** than t;
3. a covered ground truth is never matched again, so a duplicate is a false positive;
4. AP is the VOC area under the monotone precision envelope (``get_ap``/``VOCap``), not
   the 11-point VOC2007 version;
5. there is no void or "difficult" handling.

``protocol="fcis"`` gives the variant of MNC's ``voc_eval_sds``, FCIS and ChainerCV's
``eval_instance_segmentation_voc``: each prediction is assigned to its arg-max ground
truth among *all* ground truths of its class (no fallback), and is a true positive when
that IoU is **at least** t and the ground truth is still free. ``use_07_metric=True``
gives the VOC2007 11-point AP.

AP^r_vol (Hariharan et al. 2014; Arnab & Torr 2017 §4.2) is the mean of AP^r over
t = 0.1, 0.2, ..., 0.9.

Ties in score keep the order in which images and predictions were added (stable sort).
One quirk of the MATLAB code is not copied: it skips (``continue``) an image without any
ground-truth instance before counting its detections, so they end up ranked last with
score 0; here they are ordinary false positives. VOC and SBD val images all contain
instances, so published numbers are unaffected.

The evaluator keeps, per image, only the IoU matrix between its predictions and ground
truths plus classes and scores: images are streamed and no mask is held.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import (
    EmptyPredictionsWarning,
    MetricsInputError,
    MissingScoreError,
    UnknownCategoryError,
)
from .masks import image_rles, iou_matrix

#: t = 0.1 ... 0.9 as exact decimal literals (SDS's MATLAB used 0.1 * k, e.g.
#: 0.7000000000000001; with a strict ">" the two only differ for an IoU in between).
VOL_THRESHOLDS: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(1, 10))

PROTOCOLS = ("sds", "fcis")


# --------------------------------------------------------------------------- AP curves


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the monotone precision envelope (VOC2010+ ``VOCap``, SDS ``get_ap``)."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    return float(np.sum((mrec[1:] - mrec[:-1]) * mpre[1:]))


def voc07_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC2007 11-point interpolated AP (as ChainerCV ``calc_detection_voc_ap``)."""
    ap = 0.0
    for t in np.arange(0.0, 1.1, 0.1):  # the float grid of the reference code
        sel = recall >= t
        ap += (float(np.max(np.nan_to_num(precision[sel]))) if sel.any() else 0.0) / 11
    return ap


def precision_recall(scores: np.ndarray, is_tp: np.ndarray, n_gt: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall down the score-ranked list (stable sort: ties keep add order)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    tp = np.cumsum(np.asarray(is_tp, dtype=np.int64)[order])
    fp = np.arange(1, tp.size + 1) - tp
    return tp / np.maximum(tp + fp, 1), tp / n_gt


# --------------------------------------------------------------------------- assignment


def assign_sds(iou: np.ndarray, scores: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """True-positive flags ``(T, M)`` of one image and class under the SDS protocol.

    ``iou`` is ``(M predictions, N ground truths)`` of one class. Greedy by descending
    score; each prediction takes the uncovered ground truth of highest IoU, TP if > t.
    """
    iou = np.asarray(iou, dtype=np.float64)
    m, n = iou.shape
    tp = np.zeros((len(thresholds), m), dtype=bool)
    if m == 0 or n == 0:
        return tp
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    best = iou.max(axis=1)
    for ti, t in enumerate(thresholds):
        # a prediction whose best IoU over *all* gts is <= t can never match: skip it
        cand = order[best[order] > t]
        covered = np.zeros(n, dtype=bool)
        n_cov = 0
        for i in cand:
            row = iou[i] if n_cov == 0 else np.where(covered, -1.0, iou[i])
            j = int(row.argmax())  # first index among ties, like MATLAB's max
            if row[j] > t:
                tp[ti, i] = True
                covered[j] = True
                n_cov += 1
                if n_cov == n:  # SDS: "if(all(covered)) break"
                    break
    return tp


def assign_fcis(iou: np.ndarray, scores: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """True-positive flags ``(T, M)`` under the MNC/FCIS/ChainerCV variant.

    Each prediction is assigned to its arg-max ground truth (no fallback); by descending
    score, the first prediction assigned to a ground truth with IoU >= t is a TP.
    """
    iou = np.asarray(iou, dtype=np.float64)
    m, n = iou.shape
    tp = np.zeros((len(thresholds), m), dtype=bool)
    if m == 0 or n == 0:
        return tp
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    assigned = iou.argmax(axis=1)
    best = iou.max(axis=1)
    for ti, t in enumerate(thresholds):
        cand = order[best[order] >= t]
        if cand.size:
            _, first = np.unique(assigned[cand], return_index=True)
            tp[ti, cand[first]] = True
    return tp


# --------------------------------------------------------------------------- result table


def _fmt_t(t: float) -> str:
    return f"{t:g}"


@dataclass(frozen=True)
class APTable:
    """Per-class AP^r at each IoU threshold.

    ``ap[c, k]`` is the AP of ``classes[c]`` at ``thresholds[k]`` (NaN for a class with no
    ground truth, which is left out of the means).
    """

    protocol: str
    ap_method: str
    thresholds: np.ndarray
    classes: np.ndarray
    ap: np.ndarray
    n_gt: np.ndarray
    n_pred: np.ndarray

    def mean_ap(self) -> np.ndarray:
        """mAP^r at each threshold: mean over classes with ground truth."""
        has = self.n_gt > 0
        if not has.any():
            return np.full(len(self.thresholds), np.nan)
        return self.ap[has].mean(axis=0)

    def _index(self, t: float) -> int:
        hit = np.flatnonzero(np.isclose(self.thresholds, t, rtol=0, atol=1e-9))
        if hit.size == 0:
            raise KeyError(f"threshold {t} not computed; have {list(self.thresholds)}")
        return int(hit[0])

    def map_at(self, t: float) -> float:
        """mAP^r at threshold ``t`` (must be one of ``thresholds``)."""
        return float(self.mean_ap()[self._index(t)])

    @property
    def ap_vol(self) -> float:
        """AP^r_vol: mean of mAP^r over t = 0.1 ... 0.9 (all nine must have been computed)."""
        return float(np.mean([self.map_at(t) for t in VOL_THRESHOLDS]))

    def per_class_vol(self) -> np.ndarray:
        """AP^r_vol of each class."""
        return self.ap[:, [self._index(t) for t in VOL_THRESHOLDS]].mean(axis=1)

    def summary(self) -> dict[str, float]:
        """``{"mAP_r@t": ...}`` for every threshold, plus ``mAP_r_vol`` when available."""
        out = {f"mAP_r@{_fmt_t(t)}": float(v) for t, v in zip(self.thresholds, self.mean_ap())}
        if all(np.isclose(self.thresholds, t).any() for t in VOL_THRESHOLDS):
            out["mAP_r_vol"] = self.ap_vol
        return out

    def to_frame(self, class_names: Mapping[int, str] | None = None):
        """Per-class DataFrame: one column ``AP@t`` per threshold (+ ``AP_vol``), in [0, 1]."""
        import pandas as pd

        names = [class_names.get(int(c), str(c)) if class_names else int(c) for c in self.classes]
        df = pd.DataFrame(self.ap, index=pd.Index(names, name="class"),
                          columns=[f"AP@{_fmt_t(t)}" for t in self.thresholds])
        if "mAP_r_vol" in self.summary():
            df["AP_vol"] = self.per_class_vol()
        df["n_gt"] = self.n_gt
        df["n_pred"] = self.n_pred
        return df


# --------------------------------------------------------------------------- evaluator


def _as_1d(values: Any, dtype, name: str, image_id: Any) -> np.ndarray:
    try:
        return np.asarray(values if values is not None else [], dtype=dtype).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise MetricsInputError(f"image {image_id!r}: {name} is not a vector of ids ({exc})")


def check_scores(scores: Any, n: int, image_id: Any) -> np.ndarray:
    """Scores as a float64 vector of length ``n``; missing or non-finite raise an error."""
    if scores is None:
        if n == 0:
            return np.zeros(0)
        raise MissingScoreError(f"image {image_id!r}: predictions have no scores")
    try:
        arr = np.asarray(scores, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise MissingScoreError(f"image {image_id!r}: scores are not numbers ({exc})")
    if arr.size != n:
        raise MissingScoreError(f"image {image_id!r}: {n} predictions but {arr.size} scores")
    if not np.isfinite(arr).all():
        k = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise MissingScoreError(f"image {image_id!r}: prediction #{k} has score {arr[k]}")
    return arr


class SDSEvaluator:
    """Streaming AP^r evaluator (SDS protocol by default).

    >>> ev = SDSEvaluator()                       # or SDSEvaluator("fcis", use_07_metric=True)
    >>> for img in images:
    ...     ev.add(img.id, gt_masks, gt_classes, pred_masks, pred_classes, pred_scores)
    >>> table = ev.compute(VOL_THRESHOLDS)        # per-class AP at every threshold
    >>> table.map_at(0.5), table.ap_vol

    ``classes``: the categories to score (e.g. ``range(1, 21)`` for VOC); a class outside
    it raises :class:`UnknownCategoryError`. By default every class seen is scored.
    """

    def __init__(self, protocol: str = "sds", *, use_07_metric: bool = False,
                 classes: Iterable[int] | None = None) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown AP^r protocol {protocol!r}: use one of {PROTOCOLS}")
        self.protocol = protocol
        self.use_07_metric = bool(use_07_metric)
        self.classes = None if classes is None else np.asarray(sorted(set(int(c) for c in classes)))
        self._images: dict[Any, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    # -- input
    def _check_classes(self, classes: np.ndarray, image_id: Any, what: str) -> None:
        if self.classes is not None and classes.size:
            bad = ~np.isin(classes, self.classes)
            if bad.any():
                raise UnknownCategoryError(
                    f"image {image_id!r}: {what} category {int(classes[bad][0])} is not one of "
                    f"the evaluated categories {self.classes.tolist()}"
                )

    def add(self, image_id: Any, gt_masks: Any, gt_classes: Any, pred_masks: Any,
            pred_classes: Any, pred_scores: Any, *, image_size: tuple[int, int] | None = None
            ) -> None:
        """Add one image: masks as ``(N, H, W)`` arrays or RLE lists, classes, scores.

        ``image_size`` = ``(H, W)`` is checked against every mask when given (otherwise
        the ground truth's size is used for the predictions).
        """
        gt, pred, _ = image_rles(gt_masks, pred_masks, image_id=image_id,
                                 image_size=image_size)
        self.add_iou(image_id, iou_matrix(pred, gt), gt_classes, pred_classes, pred_scores)

    def add_iou(self, image_id: Any, iou: np.ndarray, gt_classes: Any, pred_classes: Any,
                pred_scores: Any) -> None:
        """Add one image from its precomputed ``(M predictions, N gts)`` IoU matrix."""
        if image_id in self._images:
            raise MetricsInputError(f"image {image_id!r} was added twice")
        gc = _as_1d(gt_classes, np.int64, "gt_classes", image_id)
        pc = _as_1d(pred_classes, np.int64, "pred_classes", image_id)
        iou = np.asarray(iou, dtype=np.float64)
        if iou.shape != (pc.size, gc.size) and not (iou.size == 0 == pc.size * gc.size):
            raise MetricsInputError(
                f"image {image_id!r}: IoU matrix does not match {pc.size} predictions x "
                f"{gc.size} ground truths (check that masks and classes have equal lengths)"
            )
        iou = iou.reshape(pc.size, gc.size)
        scores = check_scores(pred_scores, pc.size, image_id)
        self._check_classes(gc, image_id, "ground-truth")
        self._check_classes(pc, image_id, "predicted")
        self._images[image_id] = (gc, pc, scores, iou)

    # -- bookkeeping
    def __len__(self) -> int:
        return len(self._images)

    @property
    def nbytes(self) -> int:
        """Bytes held by the stored per-image arrays (memory stays O(predictions x gts))."""
        return sum(a.nbytes for entry in self._images.values() for a in entry)

    # -- output
    def compute(self, thresholds: Iterable[float] = VOL_THRESHOLDS) -> APTable:
        """Per-class AP^r at each threshold (default: the nine AP^r_vol thresholds)."""
        ts = np.asarray(sorted(float(t) for t in thresholds), dtype=np.float64)
        if ts.size == 0 or (ts < 0).any() or (ts > 1).any():
            raise ValueError(f"IoU thresholds must lie in [0, 1], got {ts.tolist()}")
        assign = assign_sds if self.protocol == "sds" else assign_fcis
        if self.classes is not None:
            classes = self.classes
        else:
            seen = [np.concatenate((gc, pc)) for gc, pc, _, _ in self._images.values()]
            classes = np.unique(np.concatenate(seen)) if seen else np.zeros(0, np.int64)
        index = {int(c): k for k, c in enumerate(classes)}
        n_gt = np.zeros(len(classes), dtype=np.int64)
        scores_per: list[list[np.ndarray]] = [[] for _ in classes]
        tp_per: list[list[np.ndarray]] = [[] for _ in classes]
        n_pred_total = 0
        for gc, pc, sc, iou in self._images.values():
            n_pred_total += pc.size
            for c in np.unique(np.concatenate((gc, pc))):
                k = index[int(c)]
                gm = gc == c
                pm = pc == c
                n_gt[k] += int(gm.sum())
                if pm.any():
                    s = sc[pm]
                    scores_per[k].append(s)
                    tp_per[k].append(assign(iou[pm][:, gm], s, ts))
        if n_pred_total == 0 and self._images:
            warnings.warn("no predictions at all: every AP^r is 0", EmptyPredictionsWarning,
                          stacklevel=2)
        ap = np.full((len(classes), ts.size), np.nan)
        n_pred = np.zeros(len(classes), dtype=np.int64)
        curve = voc07_ap if self.use_07_metric else voc_ap
        for k in range(len(classes)):
            if n_gt[k] == 0:
                n_pred[k] = sum(s.size for s in scores_per[k])
                continue
            if not scores_per[k]:
                ap[k] = 0.0
                continue
            s = np.concatenate(scores_per[k])
            tp = np.concatenate(tp_per[k], axis=1)
            n_pred[k] = s.size
            order = np.argsort(-s, kind="stable")  # one sort serves every threshold
            ctp = np.cumsum(tp[:, order], axis=1)
            prec = ctp / np.arange(1, s.size + 1)
            rec = ctp / n_gt[k]
            for ti in range(ts.size):
                ap[k, ti] = curve(rec[ti], prec[ti])
        return APTable(self.protocol, "voc07_11pt" if self.use_07_metric else "voc_area",
                       ts, np.asarray(classes), ap, n_gt, n_pred)
