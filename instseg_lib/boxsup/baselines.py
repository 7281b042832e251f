"""Table 2's two baselines: masks estimated from boxes once and never updated (§5.1).

- :func:`rectangle_labels`: "we fill each bounding box with its semantic label, and
  consider it as a rectangular mask (Fig. 2(c))";
- :func:`grabcut_labels`: "We also use GrabCut [26] to generate segmentation masks from
  boxes (Fig. 2(d))" -- OpenCV's ``cv2.grabCut`` initialised with the box as its rectangle
  (outside: definite background; inside: probable foreground), ``iterations = 5``.

Both paint with the rules of :mod:`instseg_lib.boxsup.labels` (background elsewhere,
crowd void) and put **the smaller box on top** where boxes overlap (ordered by box area,
also for GrabCut masks, so that the two baselines differ only in the mask inside each box).

GrabCut falls back to the box's rectangle, and counts it, when it cannot or does not give a
mask (the paper does not say; a failed box must still supervise something, and the
rectangle is the other baseline's answer):

- ``"whole_image"``: less than ``min_background_frac`` of the image lies outside the box,
  so there is (almost) no background to learn the background colour model from (OpenCV
  raises on a box covering the whole image);
- ``"tiny"``: a side shorter than ``min_side`` px (too few pixels for a 5-component GMM);
- ``"empty"``: GrabCut labels no pixel of the box foreground;
- ``"exception"``: OpenCV raised.

OpenCV's k-means initialisation draws from its global RNG; it is re-seeded before every box
so that results do not depend on call order.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .labels import box_masks, check_boxes, paint

FALLBACK_REASONS = ("whole_image", "tiny", "empty", "exception")


def rectangle_labels(shape: tuple[int, int], boxes: np.ndarray, classes: np.ndarray, num_classes: int,
                     crowd: np.ndarray | None = None) -> np.ndarray:
    """``(H, W)`` uint8: every box filled with its class, smaller boxes on top, crowd void."""
    boxes, classes = check_boxes(boxes, classes, shape, num_classes)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    labels, _, _ = paint(shape, box_masks(boxes, shape), classes, areas=areas, crowd=crowd)
    return labels


@dataclass(frozen=True)
class GrabCutResult:
    """Label map, per-box masks, which boxes fell back to rectangles, and why."""

    labels: np.ndarray
    masks: np.ndarray  # (n_boxes, H, W) bool
    fallback: np.ndarray  # (n_boxes,) bool
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def n_fallbacks(self) -> int:
        return int(self.fallback.sum())


def grabcut_mask(image: np.ndarray, box_mask: np.ndarray, iterations: int = 5, min_side: int = 4,
                 min_background_frac: float = 0.05, seed: int = 0) -> tuple[np.ndarray, str | None]:
    """GrabCut foreground inside one box, or ``(rectangle, reason)`` on fallback."""
    import cv2

    h, w = box_mask.shape
    ys, xs = np.nonzero(box_mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    if min(y1 - y0, x1 - x0) < min_side:
        return box_mask, "tiny"
    if (h * w - box_mask.sum()) < min_background_frac * h * w:
        return box_mask, "whole_image"
    gc = np.zeros((h, w), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(int(seed))
    try:
        bgr = np.ascontiguousarray(np.asarray(image, dtype=np.uint8)[..., ::-1])
        cv2.grabCut(bgr, gc, (int(x0), int(y0), int(x1 - x0), int(y1 - y0)), bgd, fgd, int(iterations),
                    cv2.GC_INIT_WITH_RECT)
    except cv2.error:
        return box_mask, "exception"
    fg = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)) & box_mask
    if not fg.any():
        return box_mask, "empty"
    return fg, None


def grabcut_labels(image: np.ndarray, boxes: np.ndarray, classes: np.ndarray, num_classes: int,
                   crowd: np.ndarray | None = None, iterations: int = 5, min_side: int = 4,
                   min_background_frac: float = 0.05, seed: int = 0) -> GrabCutResult:
    """GrabCut in every box (fallbacks counted), painted smaller box on top, crowd void."""
    image = np.asarray(image)
    shape = image.shape[:2]
    boxes, classes = check_boxes(boxes, classes, shape, num_classes)
    rects = box_masks(boxes, shape)
    masks = np.zeros_like(rects)
    fallback = np.zeros(len(boxes), bool)
    reasons: Counter[str] = Counter()
    for i, rect in enumerate(rects):
        masks[i], why = grabcut_mask(image, rect, iterations, min_side, min_background_frac, seed)
        if why is not None:
            fallback[i] = True
            reasons[why] += 1
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    labels, _, _ = paint(shape, masks, classes, areas=areas, crowd=crowd)
    return GrabCutResult(labels, masks, fallback, {r: reasons.get(r, 0) for r in FALLBACK_REASONS})
