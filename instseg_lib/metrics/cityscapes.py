"""Cityscapes instance-level AP, with the semantics of cityscapesScripts'
``evaluation/evalInstanceLevelSemanticLabeling.py`` (Cordts et al. 2016; the metric of
Arnab & Torr 2017 Table 5, which notes it "is similar to our AP^r_vol").

Re-implemented on IoU/intersection matrices so it streams images and needs no files:

- overlaps 0.5:0.05:0.95 (``np.arange(0.5, 1., 0.05)``, the reference's own float grid);
  ``AP`` averages every (class, overlap) cell, ``AP50`` the 0.5 column (NaNs skipped);
- a ground truth counts only if it is an instance (id >= 1000 in ``instanceIds``; ids
  below 1000 are "group" regions such as ``cargroup``) and has at least 100 pixels;
- a prediction matches a counted ground truth of its class if IoU > overlap (strict);
  of several predictions matching one ground truth the best-scored is the true positive
  and the others are false positives;
- an unmatched prediction is *not* a false positive if it matches (IoU > overlap) any
  same-class region at all (group or too small), or if the fraction of its pixels on void,
  same-class group or same-class too-small ground truth is above the overlap (pixels of a
  region that is both a group and small count twice, as in the reference);
- AP is the step-wise area under the precision-recall curve with the reference's
  artificial end point (precision 1 at recall 0), computed over unique score thresholds;
- a class with ground truth but no prediction has AP 0; one without ground truth, NaN.

One deliberate difference: where the reference crashes (``IndexError``) because a class has
ground truth and predictions but every prediction was ignored and nothing matched, we
return AP 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .ap import check_scores
from .errors import MaskSizeError, MetricsInputError, UnknownCategoryError
from .masks import areas, encode, image_rles, intersection_matrix

#: Cityscapes label ids of the eight evaluated instance classes (``hasInstances`` and
#: not ``ignoreInEval`` in ``cityscapesscripts.helpers.labels``).
INSTANCE_CLASSES: dict[int, str] = {
    24: "person", 25: "rider", 26: "car", 27: "truck", 28: "bus", 31: "train",
    32: "motorcycle", 33: "bicycle",
}
#: Label ids with ``ignoreInEval``: their pixels in ``instanceIds`` are void.
VOID_IDS: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30, -1)
#: Every Cityscapes label id (predictions of a non-evaluated label are skipped silently).
ALL_LABEL_IDS: tuple[int, ...] = tuple(range(-1, 34))
OVERLAPS: np.ndarray = np.arange(0.5, 1.0, 0.05)
MIN_REGION_SIZE = 100


@dataclass
class _ClassImage:
    gt_count: np.ndarray  # (n,) pixel counts
    gt_group: np.ndarray  # (n,) bool, id < 1000
    pred_count: np.ndarray  # (m,)
    pred_void: np.ndarray  # (m,) pixels on void
    pred_score: np.ndarray  # (m,)
    inter: np.ndarray  # (m, n)


@dataclass(frozen=True)
class CityscapesResult:
    """``ap[c, o]``: AP of ``classes[c]`` at ``overlaps[o]``."""

    classes: np.ndarray
    names: tuple[str, ...]
    overlaps: np.ndarray
    ap: np.ndarray

    @property
    def AP(self) -> float:  # noqa: N802 - the benchmark's name
        return float(np.nanmean(self.ap)) if np.isfinite(self.ap).any() else float("nan")

    @property
    def AP50(self) -> float:  # noqa: N802
        col = self.ap[:, np.isclose(self.overlaps, 0.5)]
        return float(np.nanmean(col)) if np.isfinite(col).any() else float("nan")

    def summary(self) -> dict[str, float]:
        return {"AP": self.AP, "AP50": self.AP50}

    def to_frame(self):
        import pandas as pd

        with np.errstate(invalid="ignore"):
            o50 = np.isclose(self.overlaps, 0.5)
            return pd.DataFrame(
                {"AP": self.ap.mean(axis=1), "AP50": self.ap[:, o50].mean(axis=1)},
                index=pd.Index(self.names, name="class"),
            )


def _step_ap(y_true: np.ndarray, y_score: np.ndarray, hard_fns: int) -> float:
    """The reference's precision-recall integration, operation for operation."""
    if y_score.size == 0:
        return 0.0
    order = np.argsort(y_score)
    ys = y_score[order]
    cs = np.cumsum(y_true[order])
    _, uidx = np.unique(ys, return_index=True)
    n_ex = ys.size
    n_true = cs[-1]
    cs = np.append(cs, 0)  # index -1 reads this zero (the first threshold)
    cum = cs[uidx - 1]
    tp = n_true - cum
    fp = n_ex - uidx - tp
    fn = cum + hard_fns
    precision = np.append(tp / (tp + fp), 1.0)
    recall = np.append(tp / (tp + fn), 0.0)
    r = np.append(np.append(recall[0], recall), 0.0)
    step = np.convolve(r, [-0.5, 0, 0.5], "valid")
    return float(np.dot(precision, step))


class CityscapesEvaluator:
    """Streaming Cityscapes instance AP.

    >>> ev = CityscapesEvaluator()
    >>> ev.add_id_map(frame, instance_ids, pred_masks, pred_label_ids, pred_scores)
    >>> ev.compute().summary()          # {"AP": ..., "AP50": ...}

    ``classes`` maps evaluated class ids to names (default: the 8 Cityscapes classes, by
    label id, not train id). ``known_classes`` are other ids a prediction may carry and
    that are skipped (default: all Cityscapes label ids); anything else raises
    :class:`UnknownCategoryError`.
    """

    def __init__(self, classes: Mapping[int, str] | None = None, *,
                 known_classes: Iterable[int] | None = None,
                 min_region_size: int = MIN_REGION_SIZE,
                 overlaps: Iterable[float] | None = None) -> None:
        self.classes = dict(INSTANCE_CLASSES if classes is None else classes)
        if known_classes is None:
            known_classes = ALL_LABEL_IDS if classes is None else ()
        self.known = set(int(c) for c in known_classes) | set(self.classes)
        self.min_region_size = int(min_region_size)
        self.overlaps = OVERLAPS.copy() if overlaps is None else np.asarray(list(overlaps), float)
        self._data: dict[int, list[_ClassImage]] = {c: [] for c in self.classes}
        self._ids: set[Any] = set()

    # -- input
    def add(self, image_id: Any, gt_masks: Any, gt_classes: Any, pred_masks: Any,
            pred_classes: Any, pred_scores: Any, *, gt_is_group: Any = None,
            void: np.ndarray | dict | None = None, image_size: tuple[int, int] | None = None
            ) -> None:
        """Add one image given as masks.

        ``gt_is_group`` flags ground-truth regions that are groups (crowds), which are
        never counted but excuse predictions on them; ``void`` is an ``(H, W)`` boolean
        mask (or RLE) of void pixels.
        """
        if image_id in self._ids:
            raise MetricsInputError(f"image {image_id!r} was added twice")
        gt, pred, size = image_rles(gt_masks, pred_masks, image_id=image_id,
                                    image_size=image_size)
        gc = np.asarray(gt_classes, dtype=np.int64).reshape(-1)
        pc = np.asarray(pred_classes, dtype=np.int64).reshape(-1)
        if gc.size != len(gt):
            raise MetricsInputError(f"image {image_id!r}: {len(gt)} gt masks, {gc.size} classes")
        if pc.size != len(pred):
            raise MetricsInputError(
                f"image {image_id!r}: {len(pred)} predicted masks, {pc.size} classes")
        scores = check_scores(pred_scores, pc.size, image_id)
        group = (np.zeros(gc.size, bool) if gt_is_group is None
                 else np.asarray(gt_is_group, bool).reshape(-1))
        unknown = [int(c) for c in pc if int(c) not in self.known]
        if unknown:
            raise UnknownCategoryError(
                f"image {image_id!r}: predicted category {unknown[0]} is not a known class "
                f"(evaluated: {sorted(self.classes)})"
            )
        void_rle: list = []
        if void is not None:
            if isinstance(void, np.ndarray) and void.any():
                if size is not None and void.shape != size:
                    raise MaskSizeError(
                        f"image {image_id!r}: void mask size {void.shape} differs from image "
                        f"size {size}")
                void_rle = encode(void.astype(bool))
            elif isinstance(void, dict):
                void_rle = [void]
        pred_area = areas(pred)
        gt_area = areas(gt)
        pred_void = (intersection_matrix(pred, void_rle)[:, 0] if void_rle
                     else np.zeros(len(pred), np.int64))
        inter_all = intersection_matrix(pred, gt)
        self._ids.add(image_id)
        for c in self.classes:
            gm = gc == c
            # the reference skips predictions with no pixels
            pm = (pc == c) & (pred_area > 0)
            self._data[c].append(_ClassImage(
                gt_area[gm], group[gm], pred_area[pm], pred_void[pm], scores[pm],
                inter_all[np.ix_(pm, gm)],
            ))

    def add_id_map(self, image_id: Any, instance_ids: np.ndarray, pred_masks: Any,
                   pred_classes: Any, pred_scores: Any) -> None:
        """Add one image whose ground truth is a Cityscapes ``*_gtFine_instanceIds`` map.

        Ids >= 1000 are instances of class ``id // 1000``; ids below 1000 of an evaluated
        class are group regions; pixels whose id is a void label id are void.
        """
        ids = np.asarray(instance_ids).astype(np.int64)
        if ids.ndim != 2:
            raise MaskSizeError(f"image {image_id!r}: instanceIds must be (H, W), got {ids.shape}")
        uniq = np.unique(ids)
        label = np.where(uniq < 1000, uniq, uniq // 1000)
        keep = np.isin(label, list(self.classes))
        masks = np.stack([ids == u for u in uniq[keep]]) if keep.any() else \
            np.zeros((0,) + ids.shape, bool)
        self.add(image_id, masks, label[keep], pred_masks, pred_classes, pred_scores,
                 gt_is_group=uniq[keep] < 1000, void=np.isin(ids, VOID_IDS),
                 image_size=ids.shape)

    # -- output
    def compute(self) -> CityscapesResult:
        cls = list(self.classes)
        ap = np.full((len(cls), self.overlaps.size), np.nan)
        for ci, c in enumerate(cls):
            items = self._data[c]
            for oi, th in enumerate(self.overlaps):
                ap[ci, oi] = self._class_ap(items, th)
        return CityscapesResult(np.asarray(cls), tuple(self.classes[c] for c in cls),
                                self.overlaps.copy(), ap)

    def _class_ap(self, items: list[_ClassImage], th: float) -> float:
        y_true: list[np.ndarray] = []
        y_score: list[np.ndarray] = []
        hard_fns = 0
        have_gt = have_pred = False
        for it in items:
            counted = ~it.gt_group & (it.gt_count >= self.min_region_size)
            have_gt |= bool(counted.any())
            have_pred |= it.pred_count.size > 0
            m = it.pred_count.size
            if m == 0:
                hard_fns += int(counted.sum())
                continue
            union = it.gt_count[None, :] + it.pred_count[:, None] - it.inter
            with np.errstate(invalid="ignore", divide="ignore"):
                iou = np.where(it.inter > 0, it.inter / union, 0.0)
            hit = iou > th  # (m, n)
            # counted ground truths: best-scored match is TP, other matches are FPs
            for j in np.flatnonzero(counted):
                s = it.pred_score[hit[:, j]]
                if s.size == 0:
                    hard_fns += 1
                    continue
                k = int(np.argmax(s))
                y_true.append(np.r_[1.0, np.zeros(s.size - 1)])
                y_score.append(np.r_[s[k], np.delete(s, k)])
            # unmatched predictions: FP unless mostly on void / group / small ground truth
            found = hit.any(axis=1)
            small = it.gt_count < self.min_region_size
            ignore = it.pred_void + it.inter @ (it.gt_group.astype(np.int64)
                                                + small.astype(np.int64))
            fp = ~found & (ignore / it.pred_count <= th)
            y_true.append(np.zeros(int(fp.sum())))
            y_score.append(it.pred_score[fp])
        if have_gt and have_pred:
            return _step_ap(np.concatenate(y_true) if y_true else np.zeros(0),
                            np.concatenate(y_score) if y_score else np.zeros(0), hard_fns)
        return 0.0 if have_gt else float("nan")
