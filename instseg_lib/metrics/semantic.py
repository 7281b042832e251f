"""Semantic segmentation metrics from one confusion matrix, and the trimap analysis.

- Pixel accuracy, mean class accuracy and mean IoU as Wu et al. 2016 §3.1 report them
  ("the percentage of correctly labeled pixels on a whole test set", "the mean of
  class-wise pixel accuracies", "the mean class-wise IoU"), accumulated over the whole
  set as in the PASCAL VOC devkit (``VOCevalseg``), with ground-truth label 255 = void
  ignored.
- Trimap IoU (BoxSup, Dai et al. 2015, Fig. 4; following DeepLab and Kohli et al.): mean
  IoU inside a band of width ``w`` around ground-truth boundaries ("boundary") and outside
  it ("interior"), for ``w`` = 1 ... 40 px.

Classes that never occur in ground truth or prediction have IoU NaN and are left out of
the means (so a 21-class table over a subset stays honest).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .errors import MaskSizeError, MetricsInputError

VOID = 255


def _check_pair(gt: np.ndarray, pred: np.ndarray, n_classes: int, ignore_index: int,
                image_id: object) -> tuple[np.ndarray, np.ndarray]:
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.shape != pred.shape:
        raise MaskSizeError(
            f"image {image_id!r}: prediction size {pred.shape} differs from ground truth "
            f"size {gt.shape}"
        )
    gt = gt.astype(np.int64, copy=False).ravel()
    pred = pred.astype(np.int64, copy=False).ravel()
    valid = gt != ignore_index
    bad_gt = valid & ((gt < 0) | (gt >= n_classes))
    if bad_gt.any():
        raise MetricsInputError(
            f"image {image_id!r}: ground-truth label {int(gt[bad_gt][0])} outside "
            f"0..{n_classes - 1} (and not the void label {ignore_index})"
        )
    bad = valid & ((pred < 0) | (pred >= n_classes))
    if bad.any():
        raise MetricsInputError(
            f"image {image_id!r}: predicted label {int(pred[bad][0])} outside 0..{n_classes - 1}"
        )
    return gt[valid], pred[valid]


def confusion_matrix(gt: np.ndarray, pred: np.ndarray, n_classes: int,
                     ignore_index: int = VOID, image_id: object = None) -> np.ndarray:
    """``(C, C)`` int64 counts, rows = ground truth, columns = prediction; void ignored."""
    g, p = _check_pair(gt, pred, n_classes, ignore_index, image_id)
    return np.bincount(g * n_classes + p, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


@dataclass(frozen=True)
class SemanticScores:
    """Scores of one confusion matrix (all fractions in [0, 1])."""

    pixel_acc: float
    mean_acc: float
    mean_iou: float
    per_class_iou: np.ndarray
    per_class_acc: np.ndarray
    confusion: np.ndarray

    def as_dict(self) -> dict[str, float]:
        return {"pixel_acc": self.pixel_acc, "mean_acc": self.mean_acc, "mIoU": self.mean_iou}


def scores_from_confusion(cm: np.ndarray) -> SemanticScores:
    """Pixel accuracy, mean class accuracy, mean IoU and per-class IoU of a confusion matrix.

    Wu et al. 2016 §3.1 definitions; per-class values are NaN for classes absent from the
    ground truth (accuracy) or from both maps (IoU) and are left out of the means.
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    gt_count = cm.sum(axis=1)
    pred_count = cm.sum(axis=0)
    union = gt_count + pred_count - tp
    total = cm.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(gt_count > 0, tp / gt_count, np.nan)
        iou = np.where(union > 0, tp / union, np.nan)
    pixel_acc = float(tp.sum() / total) if total > 0 else float("nan")
    mean_acc = float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan")
    mean_iou = float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")
    return SemanticScores(pixel_acc, mean_acc, mean_iou, iou, acc, cm.astype(np.int64))


class SemanticEvaluator:
    """Streams (ground truth, prediction) label maps into one confusion matrix.

    >>> ev = SemanticEvaluator(n_classes=21)
    >>> ev.add(gt_map, pred_map)          # (H, W) int arrays, 255 = void in gt
    >>> ev.compute().mean_iou
    """

    def __init__(self, n_classes: int, ignore_index: int = VOID) -> None:
        if n_classes < 1:
            raise ValueError(f"n_classes must be positive, got {n_classes}")
        self.n_classes = int(n_classes)
        self.ignore_index = ignore_index
        self.confusion = np.zeros((self.n_classes, self.n_classes), dtype=np.int64)
        self.n_images = 0

    def add(self, gt: np.ndarray, pred: np.ndarray, image_id: object = None) -> None:
        """Add one image's ``(H, W)`` ground-truth and predicted label maps."""
        image_id = self.n_images if image_id is None else image_id
        self.confusion += confusion_matrix(gt, pred, self.n_classes, self.ignore_index, image_id)
        self.n_images += 1

    def compute(self) -> SemanticScores:
        return scores_from_confusion(self.confusion)


# --------------------------------------------------------------------------- trimap


def boundary_distance(gt: np.ndarray) -> np.ndarray:
    """Euclidean distance (px) of each pixel to the nearest ground-truth boundary pixel.

    A boundary pixel has a 4-neighbour with a different label; the void band of VOC
    (label 255) counts as a label, so its edges are boundaries, as in DeepLab's trimap.
    """
    gt = np.asarray(gt)
    edge = np.zeros(gt.shape, dtype=bool)
    dv = gt[1:, :] != gt[:-1, :]
    dh = gt[:, 1:] != gt[:, :-1]
    edge[1:, :] |= dv
    edge[:-1, :] |= dv
    edge[:, 1:] |= dh
    edge[:, :-1] |= dh
    if not edge.any():
        return np.full(gt.shape, np.inf)
    return ndimage.distance_transform_edt(~edge)


@dataclass(frozen=True)
class TrimapScores:
    """Mean IoU inside (``boundary``) and outside (``interior``) bands of each width."""

    widths: np.ndarray
    boundary_miou: np.ndarray
    interior_miou: np.ndarray

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(
            {"band_width_px": self.widths, "boundary_mIoU": self.boundary_miou,
             "interior_mIoU": self.interior_miou}
        ).set_index("band_width_px")


class TrimapEvaluator:
    """BoxSup Fig. 4 trimap: boundary and interior mean IoU for band widths 1 ... 40 px.

    A pixel is in the band of width ``w`` when its distance to the nearest ground-truth
    boundary is strictly less than ``w`` (``w = 1``: the boundary pixels themselves).
    One ``bincount`` per image over (distance bin, gt, pred) gives every width at once:
    the band confusion of width ``w`` is a cumulative sum over distance bins, and the
    interior confusion is the whole-image confusion minus it.
    """

    def __init__(self, n_classes: int, widths: Iterable[int] = range(1, 41),
                 ignore_index: int = VOID) -> None:
        self.n_classes = int(n_classes)
        self.widths = np.asarray(sorted(set(int(w) for w in widths)), dtype=np.int64)
        if self.widths.size == 0 or self.widths[0] < 1:
            raise ValueError("band widths must be positive integers")
        self.ignore_index = ignore_index
        self._max_w = int(self.widths[-1])
        # bins 0 .. max_w-1 hold distance d with floor(d) == bin; bin max_w holds the rest
        self._cm = np.zeros((self._max_w + 1, self.n_classes, self.n_classes), dtype=np.int64)

    def add(self, gt: np.ndarray, pred: np.ndarray, image_id: object = None, px_scale: float = 1.0) -> None:
        """Add one image's ``(H, W)`` label maps.

        ``px_scale``: the widths' pixels per pixel of this image, so that widths given at one
        reference resolution (BoxSup's VOC images, ~500 px) band images of another size alike:
        distances are multiplied by it before the bands are cut.
        """
        if not px_scale > 0:
            raise ValueError(f"px_scale must be positive, got {px_scale}")
        gt = np.asarray(gt)
        dist = boundary_distance(gt).ravel() * float(px_scale)
        valid = gt.ravel() != self.ignore_index
        g, p = _check_pair(gt, pred, self.n_classes, self.ignore_index, image_id)
        # distance < w  <=>  floor(distance) <= w - 1
        d_bin = np.minimum(np.floor(dist[valid]), self._max_w).astype(np.int64)
        c2 = self.n_classes * self.n_classes
        counts = np.bincount(d_bin * c2 + g * self.n_classes + p,
                             minlength=(self._max_w + 1) * c2)
        self._cm += counts.reshape(self._max_w + 1, self.n_classes, self.n_classes)

    def compute(self) -> TrimapScores:
        cum = np.cumsum(self._cm, axis=0)
        total = cum[-1]
        boundary, interior = [], []
        for w in self.widths:
            band = cum[w - 1]
            boundary.append(scores_from_confusion(band).mean_iou)
            interior.append(scores_from_confusion(total - band).mean_iou)
        return TrimapScores(self.widths.copy(), np.asarray(boundary), np.asarray(interior))
