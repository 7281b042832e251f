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
from scipy import sparse

from ..proposals.candidates import Candidates
from ..proposals.quality import box_iou_matrix
from .labels import LabelMapReport, check_boxes, paint_cells, resolve_shared
from .objective import LAMBDA, Normaliser, _n, regression_costs

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
    lowest = _k_lowest(costs, kk)
    pick = rng.integers(0, kk, size=n_boxes)
    return lowest[np.arange(n_boxes), pick].astype(np.int64)


def _k_lowest(costs: np.ndarray, kk: int) -> np.ndarray:
    """``np.argsort(costs, axis=1, kind="stable")[:, :kk]`` without sorting all N candidates
    (a label update ranks ~1,000 per box): a partition, ties at the k-th cost by index."""
    n = costs.shape[1]
    if kk >= n or not np.isfinite(costs).all():
        return np.argsort(costs, axis=1, kind="stable")[:, :kk]
    out = np.empty((len(costs), kk), np.int64)
    kth = np.partition(costs, kk - 1, axis=1)[:, kk - 1]
    for b, (row, t) in enumerate(zip(costs, kth)):
        less = np.flatnonzero(row < t)
        sel = np.concatenate([less, np.flatnonzero(row == t)[:kk - len(less)]])
        out[b] = sel[np.lexsort((sel, row[sel]))]
    return out


@dataclass(frozen=True)
class Assignment:
    """One image's update: the label map, the chosen candidate per box and the costs."""

    labels: np.ndarray  # (H, W) uint8, 255 = void
    chosen: np.ndarray  # (n_boxes,) int64 candidate index
    overlap_cost: np.ndarray  # (n_boxes, N) E_o
    regression_cost: np.ndarray | None  # (n_boxes, N) E_r, None on the first update
    cost: np.ndarray  # (n_boxes, N) E_o + lambda E_r
    report: LabelMapReport


class BoxImage:
    """One box-only image prepared for label updates: what Eq. 4 needs that the network does not
    change, computed once and reused every round (§4.3 fixes the candidates for the whole run).

    Holds the checked boxes and classes, E_o (Eq. 2) of every (box, candidate), the boxes' IoU
    with every candidate's tight box (rule 3 of :mod:`.labels`), the areas, the valid (non-crowd)
    pixels E_r averages over, and the candidates as cell lists on the superpixel map (16-bit
    where the ids fit: a run keeps one per training image). :meth:`assign` is one update given
    E_r or the per-superpixel log-probability sums it comes from (or neither: E_o alone).
    """

    def __init__(self, candidates: Candidates, boxes: np.ndarray, classes: np.ndarray, num_classes: int,
                 crowd: np.ndarray | None = None, normaliser: Normaliser = "boxes") -> None:
        h, w = candidates.shape
        self.shape = (h, w)
        self.boxes, self.classes = check_boxes(boxes, classes, (h, w), num_classes)
        self.crowd = None if crowd is None else np.asarray(crowd, bool)
        self.valid = None if self.crowd is None else ~self.crowd
        self.n_valid = h * w if self.valid is None else int(self.valid.sum())
        seg_boxes = candidates.boxes()
        iou = box_iou_matrix(self.boxes, seg_boxes)
        self.overlap_cost = (1.0 - iou) / _n(normaliser, len(self.boxes), len(seg_boxes))  # = overlap_costs()
        self.iou = iou
        self.box_areas = (self.boxes[:, 2] - self.boxes[:, 0]) * (self.boxes[:, 3] - self.boxes[:, 1])
        self.seg_areas = candidates.areas()
        self.cell_areas = candidates.superpixel_areas()
        small = np.uint16 if candidates.n_superpixels <= np.iinfo(np.uint16).max + 1 else np.int32
        self.superpixels = candidates.superpixels.astype(small)
        self.cell_indptr = candidates.members.indptr.astype(np.int64)
        self.cell_indices = candidates.members.indices.astype(small)
        self.n_candidates, self.n_superpixels = len(candidates), candidates.n_superpixels

    @property
    def n_boxes(self) -> int:
        return len(self.boxes)

    @property
    def members(self) -> sparse.csr_matrix:
        """``(N, R)`` boolean incidence of candidates and superpixels (as :class:`Candidates`)."""
        return sparse.csr_matrix((np.ones(self.cell_indices.size, bool), self.cell_indices.astype(np.int32),
                                  self.cell_indptr), shape=(self.n_candidates, self.n_superpixels))

    def cells(self, i: int) -> np.ndarray:
        """The superpixel ids of candidate ``i``."""
        return self.cell_indices[self.cell_indptr[i]:self.cell_indptr[i + 1]]

    @property
    def nbytes(self) -> int:
        arrays = (self.overlap_cost, self.iou, self.seg_areas, self.cell_areas, self.superpixels, self.cell_indptr,
                  self.cell_indices) + (() if self.crowd is None else (self.crowd, self.valid))
        return int(sum(a.nbytes for a in arrays))

    def assign(self, sp_sums: np.ndarray | None = None, lam: float = LAMBDA, mode: Mode = "sample",
               k: int = K_SAMPLE, rng: np.random.Generator | None = None, e_r: np.ndarray | None = None) -> Assignment:
        """Select one candidate per box (Eq. 4 with theta fixed) and paint the label map.

        ``sp_sums``: ``(R, C)`` per-superpixel sums of the network's log-probabilities over the
        valid pixels (:func:`~.objective.superpixel_log_prob_sums`, :func:`~.objective.grid_log_prob_sums`),
        or ``e_r``: ``(n_boxes, N)`` E_r itself (:func:`~.objective.grid_regression_costs`);
        neither: the first update, E_o alone.
        """
        e_o, cost = self.overlap_cost, self.overlap_cost
        n = self.n_boxes
        if e_r is None and sp_sums is not None and n:
            lite = Candidates(self.superpixels, self.members)
            e_r = regression_costs(lite, self.classes, None, self.valid, sp_sums=sp_sums)
        if e_r is not None and n:
            e_r = np.asarray(e_r, dtype=np.float64)
            if e_r.shape != e_o.shape:
                raise ValueError(f"E_r has shape {e_r.shape}, E_o {e_o.shape}")
            cost = e_o + lam * e_r
        else:
            e_r = None
        chosen = select_candidates(cost, mode, k, rng)
        ious = self.iou[np.arange(n), chosen] if n else np.zeros(0)
        keep, shared, conflicts = resolve_shared(chosen, self.classes, ious, self.box_areas)
        picked = chosen[keep]
        labels, overlap, void = paint_cells(self.superpixels, [self.cells(i) for i in picked], self.classes[keep],
                                            self.seg_areas[picked], crowd=self.crowd, cell_areas=self.cell_areas)
        return Assignment(labels, chosen, e_o, e_r, cost, LabelMapReport(n, shared, conflicts, overlap, void))


def boxsup_labels(candidates: Candidates, boxes: np.ndarray, classes: np.ndarray, num_classes: int,
                  log_probs=None, lam: float = LAMBDA, mode: Mode = "sample", k: int = K_SAMPLE,
                  rng: np.random.Generator | None = None, crowd: np.ndarray | None = None,
                  normaliser: Normaliser = "boxes") -> Assignment:
    """Select one candidate per box (Eq. 4 with theta fixed) and paint the label map.

    ``log_probs``: ``(C, H, W)`` log-softmax of the current network at image resolution,
    or ``None`` for the first update (E_o alone). ``crowd`` pixels are void and left out of
    E_r. No boxes: all background (crowd void). One-off form of :class:`BoxImage`.
    """
    img = BoxImage(candidates, boxes, classes, num_classes, crowd=crowd, normaliser=normaliser)
    e_r = None
    if log_probs is not None and img.n_boxes:
        e_r = regression_costs(candidates, img.classes, log_probs, img.valid)
    return img.assign(lam=lam, mode=mode, k=k, rng=rng, e_r=e_r)


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
