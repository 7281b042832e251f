"""BoxSup's objective, Eq. 2-4 (Dai, He & Sun 2015, §4.2), per ground-truth box and candidate.

**E_o (Eq. 2)**, the overlap objective of a box ``B`` with label ``l_B``::

    E_o = 1/N * sum_S (1 - IoU(B, S)) * delta(l_B, l_S)

with IoU "computed from the ground-truth box B and the tight bounding box of the segment S".
Under §4.3's rule that a box activates exactly one candidate (the others keep the
background label, so delta = 0 for them), the sum has one non-zero term and choosing
candidate ``S`` for ``B`` costs ``(1 - IoU(B, box(S))) / N``. :func:`overlap_energy` is the
literal Eq. 2 for any labelling; :func:`overlap_costs` is that one-hot special case for all
candidates at once (a test checks they agree).

*Reading of N.* "This objective function is normalized by the number of candidate
segments." Two readings: all proposals of the image (hundreds), or the candidates that the
sum actually counts, i.e. the activated ones -- one per box, so N = the number of boxes and
E_o becomes the mean of ``1 - IoU`` over the image's boxes, in [0, 1]. We take the second
(``normaliser="boxes"``, default): only then does the fixed ``lambda = 3`` of Eq. 4 weigh
two terms of comparable size. With N = the number of proposals the overlap term is
``~1/N`` of the regression term's spread between candidates, so it would only break ties
and the boxes would hardly constrain the selection once the network predicts anything
(magnitudes: :func:`balance_example`, ``tests/test_boxsup.py`` and
``benchmarks/bench_proposals.py``). The literal-all-proposals reading is
``normaliser="proposals"``; ``"none"`` uses N = 1.

**E_r (Eq. 3)**, the regression objective ``sum_p e(X_theta(p), l_S(p))``, with ``e`` the
per-pixel cross-entropy of the FCN loss (Eq. 1). We take it as the *mean* over the image's
non-void pixels (the pixel sum would be ``H x W`` times larger than any E_o and ``lambda``
would have to scale with the image size), of the label map that choosing ``S`` for ``B``
induces: ``S`` gets ``l_B``, every other pixel background. The other boxes' objects then
count as background in every candidate's map alike, a constant that does not change which
candidate is cheapest except where ``S`` reaches into them. It is computed from the raw
network output (log-softmax of the logits at image resolution; no CRF -- the CRF is
post-processing, §3) with per-superpixel sums of class log-probabilities::

    E_r(S) = ( -sum_p log P_bg(p) + sum_{p in S} [log P_bg(p) - log P_lB(p)] ) / |valid|

so every candidate costs one sparse row-times-vector product (:func:`regression_costs`;
a test checks it against the dense cross-entropy of the painted map).

*Downsampled predictions* (the label update's cost, §4.3 re-labels every box-only image once
per epoch). DeepLab's scores are a grid at stride 8 of its input, and upsampling them to the
image before E_r costs more than the forward pass on a CPU. Bilinear upsampling is linear, so
the per-superpixel sums of the upsampled log-probabilities are a fixed ``(R, G)`` weight matrix
times the ``(G, C)`` grid of log-probabilities (:func:`grid_superpixel_weights`, computed once
per image since neither the superpixels nor the grid geometry change between updates;
:func:`grid_log_prob_sums`). Each pixel then carries the bilinear interpolation of the grid's
*log-probabilities* (log-softmax on the grid, then upsampling; :func:`upsample_grid` is the
dense reference a test checks the weights against), where upsampling the logits first would
take a log-softmax per pixel.

**Eq. 4**: per box, ``cost(S) = E_o(S) + lambda * E_r(S)`` with ``lambda = 3``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import sparse

from ..proposals.candidates import Candidates
from ..proposals.quality import box_iou_matrix

#: §4.2: "lambda = 3 is a fixed weighting parameter".
LAMBDA = 3.0
Normaliser = Literal["boxes", "proposals", "none"]


def _n(normaliser: Normaliser, n_boxes: int, n_candidates: int) -> float:
    if normaliser == "boxes":
        return float(max(n_boxes, 1))
    if normaliser == "proposals":
        return float(max(n_candidates, 1))
    if normaliser == "none":
        return 1.0
    raise ValueError(f"unknown normaliser {normaliser!r}; use 'boxes', 'proposals' or 'none'")


def overlap_energy(box: np.ndarray, box_label: int, segment_boxes: np.ndarray, segment_labels: np.ndarray,
                   n: float | None = None) -> float:
    """Eq. 2 literally: ``1/N sum_S (1 - IoU(B, S)) delta(l_B, l_S)`` (default N = #segments)."""
    segment_boxes = np.asarray(segment_boxes, dtype=np.float64).reshape(-1, 4)
    iou = box_iou_matrix(np.asarray(box, dtype=np.float64).reshape(1, 4), segment_boxes)[0]
    delta = np.asarray(segment_labels).reshape(-1) == box_label
    n = float(len(segment_boxes)) if n is None else float(n)
    return float(((1.0 - iou) * delta).sum() / max(n, 1.0))


def overlap_costs(boxes: np.ndarray, segment_boxes: np.ndarray, normaliser: Normaliser = "boxes") -> np.ndarray:
    """``(n_boxes, N)``: E_o of activating candidate ``S`` for box ``B`` (the one-hot case of Eq. 2)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    segment_boxes = np.asarray(segment_boxes, dtype=np.float64).reshape(-1, 4)
    iou = box_iou_matrix(boxes, segment_boxes)
    return (1.0 - iou) / _n(normaliser, len(boxes), len(segment_boxes))


def log_softmax_np(logits: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` log-probabilities of ``(C, H, W)`` logits (numpy or torch)."""
    x = _to_numpy(logits).astype(np.float64)
    m = x.max(axis=0, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=0, keepdims=True))


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor; half precision is widened, float64 kept
        x = x.detach().cpu()
        x = (x if x.dtype.is_floating_point and x.element_size() >= 4 else x.float()).numpy()
    return np.asarray(x)


def superpixel_log_prob_sums(log_probs, superpixels: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """``(R, C)``: sum over each cell's valid pixels of ``log P(c | p)``.

    ``log_probs``: ``(C, H, W)`` log-softmax of the network at image resolution.
    """
    lp = _to_numpy(log_probs).astype(np.float64)
    c, h, w = lp.shape
    sp = np.asarray(superpixels).ravel()
    if sp.size != h * w:
        raise ValueError(f"log-probabilities are {h}x{w} but the superpixel map is {np.asarray(superpixels).shape}")
    r = int(sp.max(initial=-1)) + 1
    keep = np.ones(h * w, bool) if valid is None else np.asarray(valid, bool).ravel()
    # (R, HW) one-hot incidence times (HW, C) log-probabilities
    inc = sparse.csr_matrix((keep.astype(np.float64), (sp, np.arange(h * w))), shape=(r, h * w))
    return np.asarray(inc @ lp.reshape(c, -1).T)


def grid_axis_weights(n_out: int, n_scaled: int, n_grid: int, stride: int = 8) -> tuple[np.ndarray, np.ndarray,
                                                                                        np.ndarray, np.ndarray]:
    """1-D bilinear weights of a stride-``stride`` score grid for the ``n_out`` pixels of an image axis.

    The image axis was resized to ``n_scaled`` pixels for the forward pass and the network's
    ``n_grid`` cells have their centres at ``stride * (j + 1/2)`` of that axis (VGG's 2x2 pools;
    the model's own ``F.interpolate`` by 8 puts them there). Pixel ``y`` (centre ``y + 1/2``) sits
    at ``(y + 1/2) * n_scaled / n_out`` in the scaled axis, i.e. at grid coordinate
    ``g = (y + 1/2) * n_scaled / (n_out * stride) - 1/2``, clamped as PyTorch's
    ``align_corners=False`` does. Returns ``(j0, j1, w0, w1)``, each ``(n_out,)``.
    """
    if min(n_out, n_scaled, n_grid, stride) < 1:
        raise ValueError(f"sizes must be positive, got n_out={n_out}, n_scaled={n_scaled}, n_grid={n_grid}, "
                         f"stride={stride}")
    g = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_scaled / (n_out * stride)) - 0.5
    g = np.clip(g, 0.0, n_grid - 1)
    j0 = np.floor(g).astype(np.int64)
    j1 = np.minimum(j0 + 1, n_grid - 1)
    w1 = g - j0
    return j0, j1, 1.0 - w1, w1


def upsample_grid(grid, shape: tuple[int, int], scaled_shape: tuple[int, int], stride: int = 8) -> np.ndarray:
    """``(C, H, W)``: a ``(C, gh, gw)`` score grid bilinearly upsampled to the image (the dense
    reference of :func:`grid_superpixel_weights`; equal to ``F.interpolate(..., align_corners=False)``
    when the scaled image is ``stride`` times the grid)."""
    g = _to_numpy(grid).astype(np.float64)
    (h, w), (hs, ws) = shape, scaled_shape
    y0, y1, a0, a1 = grid_axis_weights(h, hs, g.shape[1], stride)
    x0, x1, b0, b1 = grid_axis_weights(w, ws, g.shape[2], stride)
    rows = g[:, y0] * a0[None, :, None] + g[:, y1] * a1[None, :, None]  # (C, H, gw)
    return rows[:, :, x0] * b0 + rows[:, :, x1] * b1


def grid_superpixel_weights(superpixels: np.ndarray, grid_shape: tuple[int, int], scaled_shape: tuple[int, int],
                            stride: int = 8, valid: np.ndarray | None = None) -> sparse.csr_matrix:
    """``(R, gh * gw)`` sparse: ``W[r, j]`` = sum over cell ``r``'s valid pixels of the bilinear
    weight of grid cell ``j``, so ``W @ grid.reshape(C, -1).T`` equals
    :func:`superpixel_log_prob_sums` of :func:`upsample_grid` (``superpixels`` at image size)."""
    sp = np.asarray(superpixels)
    h, w = sp.shape
    gh, gw = int(grid_shape[0]), int(grid_shape[1])
    y0, y1, a0, a1 = grid_axis_weights(h, int(scaled_shape[0]), gh, stride)
    x0, x1, b0, b1 = grid_axis_weights(w, int(scaled_shape[1]), gw, stride)
    r = int(sp.max(initial=-1)) + 1
    keep = np.ones((h, w), bool) if valid is None else np.asarray(valid, bool)
    rows, cols, vals = [], [], []
    for yy, ay in ((y0, a0), (y1, a1)):
        for xx, bx in ((x0, b0), (x1, b1)):
            wt = (ay[:, None] * bx[None, :]) * keep
            rows.append(sp.ravel())
            cols.append((yy[:, None] * gw + xx[None, :]).ravel())
            vals.append(wt.ravel())
    # duplicates (pixels of one cell falling on one grid cell) are summed by the conversion
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, gh * gw))


def grid_log_prob_sums(grid_log_probs, weights: sparse.spmatrix) -> np.ndarray:
    """``(R, C)`` per-superpixel sums of the upsampled log-probabilities, from the ``(C, gh, gw)``
    grid and :func:`grid_superpixel_weights` (the ``sp_sums`` of :func:`regression_costs`)."""
    g = _to_numpy(grid_log_probs).astype(np.float64)
    c = g.shape[0]
    if g[0].size != weights.shape[1]:
        raise ValueError(f"the grid has {g[0].size} cells but the weights expect {weights.shape[1]}")
    return np.asarray(weights @ g.reshape(c, -1).T)


def grid_regression_costs(segment_weights: sparse.spmatrix, total_weights: np.ndarray, grid_log_probs,
                          box_labels: np.ndarray, n_valid: int, background: int = 0) -> np.ndarray:
    """``(n_boxes, N)``: E_r as :func:`regression_costs` of the upsampled grid, straight from the grid.

    ``segment_weights``: ``(N, G)`` = candidates' ``members @`` :func:`grid_superpixel_weights`
    (each candidate's bilinear weight on every grid cell, fixed for the run); ``total_weights``:
    ``(G,)`` the same summed over all valid pixels; ``grid_log_probs``: ``(C, gh, gw)``. One update
    then costs an ``(N, G) x (G, n_boxes)`` sparse product per image.
    """
    g = _to_numpy(grid_log_probs).astype(np.float64)
    c = g.shape[0]
    g = g.reshape(c, -1)
    if g.shape[1] != segment_weights.shape[1] or np.shape(total_weights) != (g.shape[1],):
        raise ValueError(f"the grid has {g.shape[1]} cells but the weights expect {segment_weights.shape[1]}")
    box_labels = np.asarray(box_labels, dtype=np.int64).reshape(-1)
    if box_labels.size and (box_labels.max() >= c or box_labels.min() < 0):
        raise ValueError(f"box class {int(box_labels.max())} has no channel in the {c}-class output")
    const = -float(np.asarray(total_weights, np.float64) @ g[background])
    gain = g[background][None, :] - g[box_labels]  # (n_boxes, G)
    var = np.asarray(segment_weights @ gain.T).T  # (n_boxes, N)
    return (const + var) / max(int(n_valid), 1)


def regression_costs(candidates: Candidates, box_labels: np.ndarray, log_probs, valid: np.ndarray | None = None,
                     background: int = 0, sp_sums: np.ndarray | None = None) -> np.ndarray:
    """``(n_boxes, N)``: E_r (image-mean cross-entropy) of the map induced by each choice."""
    if sp_sums is None:
        sp_sums = superpixel_log_prob_sums(log_probs, candidates.superpixels, valid)
    n_valid = candidates.superpixels.size if valid is None else int(np.asarray(valid, bool).sum())
    box_labels = np.asarray(box_labels, dtype=np.int64).reshape(-1)
    if box_labels.size and (box_labels.max() >= sp_sums.shape[1] or box_labels.min() < 0):
        raise ValueError(f"box class {int(box_labels.max())} has no channel in the {sp_sums.shape[1]}-class output")
    const = -sp_sums[:, background].sum()
    gain = sp_sums[:, [background]] - sp_sums[:, box_labels]  # (R, n_boxes)
    var = np.asarray(candidates.members.astype(np.float64) @ gain).T  # (n_boxes, N)
    return (const + var) / max(n_valid, 1)


def dense_regression_cost(log_probs, label_map: np.ndarray, ignore_index: int = 255) -> float:
    """The image-mean cross-entropy of one label map (the reference E_r is checked against)."""
    lp = _to_numpy(log_probs).astype(np.float64)
    lab = np.asarray(label_map).astype(np.int64)
    valid = lab != ignore_index
    if not valid.any():
        return 0.0
    picked = np.take_along_axis(lp, np.where(valid, lab, 0)[None], axis=0)[0]
    return float(-picked[valid].mean())


def balance_example(h: int = 64, w: int = 64, box_frac: float = 0.25, confidence: float = 3.0,
                    n_proposals: int = 500) -> dict[str, float]:
    """Spreads of E_o and lambda * E_r between a good and a poor candidate, on a made-up case.

    One square object covering ``box_frac`` of the image; a network whose logit for the
    right class exceeds the others by ``confidence`` on every pixel (21 classes; per-pixel
    CE 2.1, 0.69, 0.05 for ``confidence`` 1, 3, 6: an early to a well trained net); a good
    candidate (the object) and a poor one (the square grown by a quarter of its side on each
    edge, IoU 0.44 with the box). Returns the two candidates' cost differences under each
    reading of N (one box; N = 1 box or ``n_proposals``).

    Measured (``tests/test_boxsup.py`` checks the ranges): with N = boxes, ``lambda dE_r``
    over ``dE_o`` runs from 0.3 (confidence 1, box 5 % of the image) to 10 (confidence 6,
    box 25 %): the same order of magnitude, E_r weighing more as the net gets confident and
    the box large. With N = 500 proposals the ratio is 150 to 5000.
    """
    side = int(round(np.sqrt(box_frac * h * w)))
    y0 = x0 = (h - side) // 2
    obj = np.zeros((h, w), bool)
    obj[y0:y0 + side, x0:x0 + side] = True
    pad = side // 4
    poor = np.zeros((h, w), bool)
    poor[max(y0 - pad, 0):y0 + side + pad, max(x0 - pad, 0):x0 + side + pad] = True
    c = 21
    logits = np.zeros((c, h, w))
    logits[0][~obj] = confidence
    logits[1][obj] = confidence
    lp = log_softmax_np(logits)
    cands = Candidates.from_masks(np.stack([obj, poor]))
    box = np.array([[x0, y0, x0 + side, y0 + side]], float)
    e_r = regression_costs(cands, np.array([1]), lp)[0]
    out = {"lambda_dE_r": LAMBDA * float(e_r[1] - e_r[0]), "E_r_good": float(e_r[0])}
    for norm, n in (("boxes", 1), ("proposals", n_proposals)):
        e_o = overlap_costs(box, cands.boxes(), "none")[0] / n
        out[f"dE_o[{norm}]"] = float(e_o[1] - e_o[0])
    return out
