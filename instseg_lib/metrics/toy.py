"""A deterministic toy benchmark for the metrics chapter and tests.

Ground truth: a few elliptical and rectangular instances per image (several of one class
touching each other), painted into a semantic map with a 1-px void band on every object
boundary as in PASCAL VOC. Predictions imitate a real instance segmenter's mistakes:
each object is found with a jittered, slightly mis-sized mask whose score grows with its
quality; some objects get a second, shifted duplicate; a few get the wrong class; a few
are missed; and background false positives are added. Everything is a pure function of
the arguments (``numpy.random.default_rng(seed)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class ToyImage:
    image_id: int
    gt_masks: np.ndarray  # (N, H, W) bool
    gt_classes: np.ndarray  # (N,) in 1..n_classes
    pred_masks: np.ndarray  # (M, H, W) bool
    pred_classes: np.ndarray  # (M,)
    pred_scores: np.ndarray  # (M,)
    semantic_gt: np.ndarray  # (H, W) 0 = background, 255 = void band
    semantic_pred: np.ndarray  # (H, W)


def _shape(rng: np.random.Generator, size: int, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    cy, cx = rng.uniform(0.15, 0.85, 2) * size
    ry, rx = rng.uniform(0.07, 0.22, 2) * size
    if rng.random() < 0.6:
        return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    return (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)


def _perturb(rng: np.random.Generator, mask: np.ndarray, strength: float) -> np.ndarray:
    """Shift by up to ``strength`` x object size and erode or dilate by a pixel or two."""
    ys, xs = np.nonzero(mask)
    extent = max(np.ptp(ys) + 1, np.ptp(xs) + 1) if ys.size else 1
    dy, dx = np.rint(rng.normal(0, strength * extent, 2)).astype(int)
    out = np.roll(mask, (dy, dx), axis=(0, 1))
    k = int(rng.integers(-2, 3))
    if k > 0:
        out = ndimage.binary_dilation(out, iterations=k)
    elif k < 0:
        eroded = ndimage.binary_erosion(out, iterations=-k)
        out = eroded if eroded.any() else out
    return out


def make_toy_images(n_images: int, image_size: int, *, n_classes: int = 4, seed: int = 0,
                    max_objects: int = 5) -> list[ToyImage]:
    """``n_images`` deterministic :class:`ToyImage` of ``image_size`` x ``image_size`` px."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:image_size, 0:image_size].astype(np.float64)
    images = []
    for i in range(n_images):
        n = int(rng.integers(1, max_objects + 1))
        base_class = int(rng.integers(1, n_classes + 1))
        gts, gcs = [], []
        occupied = np.zeros((image_size, image_size), bool)
        for _ in range(n):
            # half the objects share one class: crowds of same-class instances
            c = base_class if rng.random() < 0.5 else int(rng.integers(1, n_classes + 1))
            m = _shape(rng, image_size, yy, xx) & ~occupied  # later objects are occluded
            if m.sum() < 4:
                continue
            occupied |= m
            gts.append(m)
            gcs.append(c)
        if not gts:  # keep at least one object per image
            m = _shape(rng, image_size, yy, xx)
            gts, gcs = [m], [base_class]
        gt = np.stack(gts)
        gc = np.asarray(gcs, np.int64)
        preds, pcs, scs = [], [], []
        for m, c in zip(gt, gc):
            if rng.random() < 0.1:  # missed object
                continue
            strength = rng.uniform(0.0, 0.25)
            p = _perturb(rng, m, strength)
            iou = (p & m).sum() / max((p | m).sum(), 1)
            wrong = rng.random() < 0.1
            pc = int(rng.integers(1, n_classes + 1)) if wrong else int(c)
            preds.append(p)
            pcs.append(pc)
            scs.append(float(np.clip(0.4 + 0.6 * iou + rng.normal(0, 0.15), 0.01, 0.99)))
            if rng.random() < 0.3:  # a duplicate with a larger shift and a lower score
                preds.append(_perturb(rng, m, 0.2))
                pcs.append(pc)
                scs.append(scs[-1] * rng.uniform(0.5, 0.95))
        for _ in range(int(rng.integers(0, 3))):  # background false positives
            preds.append(_shape(rng, image_size, yy, xx))
            pcs.append(int(rng.integers(1, n_classes + 1)))
            scs.append(float(rng.uniform(0.05, 0.6)))
        if preds:
            pm = np.stack(preds)
        else:
            pm = np.zeros((0, image_size, image_size), bool)
        pc_arr = np.asarray(pcs, np.int64)
        sc_arr = np.asarray(scs, np.float64)
        sem_gt = np.zeros((image_size, image_size), np.int64)
        for m, c in zip(gt, gc):
            sem_gt[m] = c
        edge = np.zeros_like(occupied)
        for m in gt:  # VOC-style void band on object boundaries
            edge |= m ^ ndimage.binary_erosion(m)
        sem_gt[edge] = 255
        sem_pred = np.zeros((image_size, image_size), np.int64)
        for k in np.argsort(sc_arr, kind="stable"):  # higher scores paint last
            sem_pred[pm[k]] = pc_arr[k]
        images.append(ToyImage(i, gt, gc, pm, pc_arr, sc_arr, sem_gt, sem_pred))
    return images
