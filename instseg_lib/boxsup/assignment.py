"""The label-update step of BoxSup's training algorithm (§4.3): one candidate per box.

"With the network parameters theta fixed, we update the semantic labeling {l_S} ... one
ground-truth bounding box can 'activate' (i.e., assign a non-background label to) one and
only one candidate ... selecting a single candidate segment for each ground-truth bounding
box, such that its cost E_o + lambda E_r is the smallest among all candidates."

Two selection modes, Table 2's two "ours" rows:

- ``"argmin"`` ("ours w/o sampling"): the cheapest candidate (first on ties);
- ``"sample"`` ("ours"): a uniform draw among the ``k = 5`` cheapest.

*Which end of the ranking.* §4.3 says "we randomly sample a segment from the first k
segments with the largest costs", and §5.1 calls the w/o-sampling variant "the candidate
with the largest cost". Both contradict the winner-takes-all rule a paragraph earlier ("its
cost ... is the smallest among all candidates") and the minimisation of Eq. 4; sampling
among the most expensive candidates would pick the worst-fitting segments. We read
"largest costs" as a slip for the lowest costs (equivalently "largest scores").

*The first update.* "Our algorithm starts from the step of updating segment labels" with a
network "initialized by the model pre-trained in the ImageNet classification dataset"
(§4.3), whose segmentation classifier is untrained, so its E_r says nothing about the
classes. The first update therefore uses E_o alone (``log_probs=None``): as §4.2 notes,
"if only the term E_o exists, the optimization problem ... trivially finds a candidate
segment that has the largest IoU score with the box". Sampling applies to it too (it picks
among the 5 best-fitting segments).

*Semi-supervision* (§4.3, last paragraph): a sample with masks uses its true labels
(:func:`supervision_target`); only box-only samples go through the candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..proposals.candidates import Candidates
from ..proposals.quality import box_iou_matrix
from .labels import LabelMapReport, check_boxes, paint, resolve_shared
from .objective import LAMBDA, Normaliser, overlap_costs, regression_costs

#: §4.3: "In this paper we use k = 5."
K_SAMPLE = 5
Mode = Literal["sample", "argmin"]


def select_candidates(costs: np.ndarray, mode: Mode = "sample", k: int = K_SAMPLE,
                      rng: np.random.Generator | None = None) -> np.ndarray:
    """``(n_boxes,)`` chosen candidate per box from ``(n_boxes, N)`` costs."""
    costs = np.asarray(costs, dtype=np.float64)
    if costs.ndim != 2:
        raise ValueError(f"costs must be (n_boxes, N), got shape {costs.shape}")
    n_boxes, n = costs.shape
    if n_boxes and n == 0:
        raise ValueError("no candidate segments to choose from")
    if mode == "argmin":
        return np.argmin(costs, axis=1).astype(np.int64) if n_boxes else np.zeros(0, np.int64)
    if mode != "sample":
        raise ValueError(f"unknown selection mode {mode!r}; use 'sample' (ours) or 'argmin' (w/o sampling)")
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    rng = rng if rng is not None else np.random.default_rng()
    kk = min(int(k), n)
    lowest = np.argsort(costs, axis=1, kind="stable")[:, :kk]
    pick = rng.integers(0, kk, size=n_boxes)
    return lowest[np.arange(n_boxes), pick].astype(np.int64)


@dataclass(frozen=True)
class Assignment:
    """One image's update: the label map, the chosen candidate per box and the costs."""

    labels: np.ndarray  # (H, W) uint8, 255 = void
    chosen: np.ndarray  # (n_boxes,) int64 candidate index
    overlap_cost: np.ndarray  # (n_boxes, N) E_o
    regression_cost: np.ndarray | None  # (n_boxes, N) E_r, None on the first update
    cost: np.ndarray  # (n_boxes, N) E_o + lambda E_r
    report: LabelMapReport


def boxsup_labels(candidates: Candidates, boxes: np.ndarray, classes: np.ndarray, num_classes: int,
                  log_probs=None, lam: float = LAMBDA, mode: Mode = "sample", k: int = K_SAMPLE,
                  rng: np.random.Generator | None = None, crowd: np.ndarray | None = None,
                  normaliser: Normaliser = "boxes") -> Assignment:
    """Select one candidate per box (Eq. 4 with theta fixed) and paint the label map.

    ``log_probs``: ``(C, H, W)`` log-softmax of the current network at image resolution,
    or ``None`` for the first update (E_o alone). ``crowd`` pixels are void and left out of
    E_r. No boxes: all background (crowd void).
    """
    h, w = candidates.shape
    boxes, classes = check_boxes(boxes, classes, (h, w), num_classes)
    seg_boxes = candidates.boxes()
    e_o = overlap_costs(boxes, seg_boxes, normaliser)
    e_r = None
    cost = e_o
    if log_probs is not None and len(boxes):
        valid = None if crowd is None else ~np.asarray(crowd, bool)
        e_r = regression_costs(candidates, classes, log_probs, valid)
        cost = e_o + lam * e_r
    chosen = select_candidates(cost, mode, k, rng)
    ious = box_iou_matrix(boxes, seg_boxes)[np.arange(len(boxes)), chosen] if len(boxes) else np.zeros(0)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep, shared, conflicts = resolve_shared(chosen, classes, ious, areas)
    seg_area = candidates.areas()
    labels, overlap, void = paint((h, w), candidates.masks(chosen[keep]), classes[keep],
                                  areas=seg_area[chosen[keep]], crowd=crowd)
    report = LabelMapReport(len(boxes), shared, conflicts, overlap, void)
    return Assignment(labels, chosen, e_o, e_r, cost, report)


def supervision_target(sample, candidates: Candidates | None = None, **kwargs) -> np.ndarray:
    """The label map a sample trains with: its mask labels if it has them, else BoxSup's.

    §4.3: "The labeling l(p) is given by candidate proposals as above if a sample only has
    ground-truth boxes, and is simply assigned as the true label if a sample has
    ground-truth masks." A mask sample's map is returned as the reader gives it (its void
    already covers crowd pixels that no instance lies on); a box-only sample's crowd pixels
    are all void (which object lies on top of a crowd is unknown without masks).
    ``kwargs`` go to :func:`boxsup_labels` (``log_probs``, ``mode``, ``rng`` ...).
    """
    crowd = getattr(sample, "crowd", None)
    if sample.has_masks:
        return np.array(sample.semantic, dtype=np.uint8, copy=True)
    if candidates is None:
        raise ValueError(f"sample {sample.image_id}: box-only sample needs its candidate segments")
    return boxsup_labels(candidates, sample.boxes, sample.instance_classes, sample.num_classes,
                         crowd=crowd, **kwargs).labels
