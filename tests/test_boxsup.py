"""instseg_lib.boxsup: E_o by hand, E_r against the dense cross-entropy (also from a downsampled
score grid), the selection modes (property tests), label-map rules (painting on superpixels as
on dense masks), the prepared image of the rounds (:class:`BoxImage`), the baselines with
GrabCut's fallbacks, bad input, and the update on smoke twin images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instseg_lib.boxsup import (
    K_SAMPLE,
    LAMBDA,
    VOID,
    BoxImage,
    balance_example,
    boxsup_labels,
    check_boxes,
    dense_regression_cost,
    grabcut_labels,
    grid_log_prob_sums,
    grid_regression_costs,
    grid_superpixel_weights,
    log_softmax_np,
    overlap_costs,
    overlap_energy,
    paint,
    paint_cells,
    rectangle_labels,
    regression_costs,
    select_candidates,
    superpixel_log_prob_sums,
    supervision_target,
    upsample_grid,
)
from instseg_lib.data import Sample
from instseg_lib.proposals import Candidates, selective_search


def square(h, w, y0, x0, y1, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


# --------------------------------------------------------------------------- E_o (Eq. 2)
def test_overlap_cost_hand_values():
    box = np.array([[0, 0, 4, 4]])
    segs = np.array([[0, 0, 4, 4], [0, 0, 2, 4], [4, 4, 8, 8]], float)  # IoU 1, 1/2, 0
    np.testing.assert_allclose(overlap_costs(box, segs, "none"), [[0.0, 0.5, 1.0]])
    np.testing.assert_allclose(overlap_costs(box, segs, "boxes"), [[0.0, 0.5, 1.0]])  # one box: N = 1
    np.testing.assert_allclose(overlap_costs(box, segs, "proposals"), [[0.0, 0.5, 1.0]] / np.float64(3))
    two = overlap_costs(np.array([[0, 0, 4, 4], [0, 0, 2, 4]]), segs, "boxes")
    np.testing.assert_allclose(two, [[0.0, 0.25, 0.5], [0.25, 0.0, 0.5]])  # N = 2 boxes
    # Eq. 2 literally: delta keeps the segments labelled like the box; N = 3 segments
    assert overlap_energy(box[0], 7, segs, np.array([7, 0, 7])) == pytest.approx((0 + 1) / 3)
    assert overlap_energy(box[0], 7, segs, np.array([0, 0, 0])) == 0.0
    # one-hot labelling (one activated candidate) == the per-candidate cost
    for i in range(3):
        onehot = np.where(np.arange(3) == i, 7, 0)
        assert overlap_energy(box[0], 7, segs, onehot) == pytest.approx(overlap_costs(box, segs, "proposals")[0, i])
    with pytest.raises(ValueError, match="normaliser"):
        overlap_costs(box, segs, "pixels")


# --------------------------------------------------------------------------- E_r (Eq. 3)
@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.booleans())
def test_regression_cost_equals_dense_cross_entropy(seed, with_void):
    rng = np.random.default_rng(seed)
    h, w, c = 9, 11, 5
    masks = rng.random((6, h, w)) < 0.35
    cands = Candidates.from_masks(masks)
    logits = rng.normal(0, 2, (c, h, w))
    lp = log_softmax_np(logits)
    crowd = (rng.random((h, w)) < 0.15) if with_void else None
    valid = None if crowd is None else ~crowd
    labels = np.array([3, 1])
    e_r = regression_costs(cands, labels, lp, valid)
    assert e_r.shape == (2, len(cands))
    for b, lab in enumerate(labels):
        for i in range(len(cands)):
            target = np.where(cands.mask(i), lab, 0).astype(np.uint8)
            if crowd is not None:
                target[crowd] = VOID
            assert e_r[b, i] == pytest.approx(dense_regression_cost(lp, target), rel=1e-9, abs=1e-12)


def test_regression_cost_matches_torch_cross_entropy():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    rng = np.random.default_rng(1)
    logits = torch.tensor(rng.normal(0, 1, (1, 4, 6, 7)), dtype=torch.float64)
    cands = Candidates.from_masks(square(6, 7, 1, 1, 4, 5)[None])
    target = torch.tensor(np.where(cands.mask(0), 2, 0))[None]
    ref = F.cross_entropy(logits, target).item()
    lp = F.log_softmax(logits[0], dim=0)
    assert regression_costs(cands, np.array([2]), lp)[0, 0] == pytest.approx(ref, rel=1e-9)
    sums = superpixel_log_prob_sums(lp, cands.superpixels)
    assert sums.shape == (cands.n_superpixels, 4)
    with pytest.raises(ValueError, match="channel"):
        regression_costs(cands, np.array([9]), lp)


# --------------------------------------------------------------------------- E_r from a score grid
def _grid_e_r(cands, labels, grid_lp, scaled, stride, valid=None):
    w = grid_superpixel_weights(cands.superpixels, grid_lp.shape[1:], scaled, stride, valid)
    seg = cands.members.astype(np.float64) @ w
    n_valid = cands.superpixels.size if valid is None else int(valid.sum())
    return w, grid_regression_costs(seg, np.asarray(w.sum(axis=0)).ravel(), grid_lp, labels, n_valid)


def test_grid_e_r_by_hand():
    """A 16 x 16 image, a 2 x 2 grid at stride 8 (scale 1): where the grid is constant its
    upsampling is too, and E_r is the per-pixel cross-entropy counted by hand."""
    h = w = 16
    seg = square(h, w, 0, 0, 8, 16)  # the top half
    cands = Candidates.from_masks(seg[None])
    grid = np.zeros((2, 2, 2))
    grid[1] = np.log(0.75)  # class 1 has p = 0.75 on every pixel, background 0.25
    grid[0] = np.log(0.25)
    _, e_r = _grid_e_r(cands, np.array([1]), grid, (h, w), 8)
    # half the pixels are labelled 1 (cost -log 0.75), half background (-log 0.25)
    assert e_r[0, 0] == pytest.approx(0.5 * -np.log(0.75) + 0.5 * -np.log(0.25), rel=1e-12)
    # a grid that ramps across the image: the exact bilinear values, by hand at two pixels
    ramp = np.zeros((1, 2, 2))
    ramp[0, :, 1] = 8.0  # column centres at x = 4 and 12 (continuous coordinates)
    up = upsample_grid(ramp, (h, w), (h, w), 8)[0]
    assert up[0, 4] == pytest.approx(8.0 * (4.5 - 4) / 8) and up[5, 0] == 0.0 and up[3, 15] == 8.0


def test_upsample_grid_is_torch_bilinear_when_the_grid_tiles_the_image():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    g = np.random.default_rng(0).normal(size=(3, 4, 6))
    ref = F.interpolate(torch.tensor(g)[None], size=(32, 48), mode="bilinear", align_corners=False)[0].numpy()
    np.testing.assert_allclose(upsample_grid(g, (32, 48), (32, 48), 8), ref, atol=1e-12)
    # the image was halved for the forward pass: the grid is at stride 16 of the image
    ref = F.interpolate(torch.tensor(g)[None], size=(64, 96), mode="bilinear", align_corners=False)[0].numpy()
    np.testing.assert_allclose(upsample_grid(g, (64, 96), (32, 48), 8), ref, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.booleans(), st.integers(6, 30), st.integers(6, 30))
def test_grid_e_r_equals_dense_e_r_of_the_upsampled_grid(seed, with_void, h, w):
    """Per-superpixel E_r from a downsampled grid = the dense cross-entropy of the painted map
    under the upsampled log-probabilities, at any scale and with void pixels left out."""
    rng = np.random.default_rng(seed)
    c = 4
    cands = Candidates.from_masks(rng.random((5, h, w)) < 0.4)
    scaled = (max(1, int(h * rng.uniform(0.3, 1.0))), max(1, int(w * rng.uniform(0.3, 1.0))))
    stride = int(rng.choice([4, 8]))
    grid = log_softmax_np(rng.normal(0, 2, (c, -(-scaled[0] // stride), -(-scaled[1] // stride))))
    crowd = (rng.random((h, w)) < 0.2) if with_void else None
    valid = None if crowd is None else ~crowd
    up = upsample_grid(grid, (h, w), scaled, stride)
    labels = np.array([2, 1, 3])
    wts, e_r = _grid_e_r(cands, labels, grid, scaled, stride, valid)
    np.testing.assert_allclose(grid_log_prob_sums(grid, wts), superpixel_log_prob_sums(up, cands.superpixels, valid),
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(e_r, regression_costs(cands, labels, up, valid), rtol=1e-9, atol=1e-12)
    for b, lab in enumerate(labels):
        for i in range(len(cands)):
            target = np.where(cands.mask(i), lab, 0).astype(np.uint8)
            if crowd is not None:
                target[crowd] = VOID
            assert e_r[b, i] == pytest.approx(dense_regression_cost(up, target), rel=1e-9, abs=1e-12)


def test_downsampled_choice_equals_the_full_resolution_choice_where_it_must():
    """An object on grid-cell boundaries, a net sure of it everywhere: the stride-16 grid (the
    image halved, stride 8) blurs the boundary symmetrically, so the object stays the cheapest
    candidate, as at full resolution, against grown, shrunk and shifted copies."""
    h = w = 64
    obj = square(h, w, 16, 16, 48, 48)
    cands = Candidates.from_masks(np.stack([square(h, w, 12, 12, 52, 52), square(h, w, 20, 20, 44, 44), obj,
                                            square(h, w, 20, 16, 52, 48), square(h, w, 16, 8, 48, 40)]))
    box, cls = np.array([[16, 16, 48, 48]]), np.array([1])
    full = np.zeros((3, h, w))
    full[0][~obj], full[1][obj] = 5.0, 5.0
    lp = log_softmax_np(full)
    grid = log_softmax_np(full.reshape(3, 4, 16, 4, 16).mean(axis=(2, 4)))  # the net's stride-16 scores
    _, e_r = _grid_e_r(cands, cls, grid, (32, 32), 8)
    e_o = overlap_costs(box, cands.boxes())
    dense = boxsup_labels(cands, box, cls, 3, log_probs=lp, mode="argmin")
    img = BoxImage(cands, box, cls, 3)
    down = img.assign(e_r=e_r, mode="argmin")
    assert dense.chosen[0] == down.chosen[0] == 2
    assert np.argmin(e_r[0]) == np.argmin(dense.regression_cost[0]) == 2  # E_r alone agrees too
    np.testing.assert_allclose(down.cost, e_o + LAMBDA * e_r)
    np.testing.assert_array_equal(down.labels, dense.labels)


def test_lambda_3_balances_the_terms_only_when_n_counts_boxes():
    """§4.2's lambda = 3 weighs E_o and E_r alike (within ~10x) when N = the activated
    candidates (one per box); with N = all 500 proposals E_o is 100-5000x smaller."""
    for conf in (1.0, 3.0, 6.0):
        for frac in (0.05, 0.25):
            m = balance_example(confidence=conf, box_frac=frac, n_proposals=500)
            ratio_boxes = m["lambda_dE_r"] / m["dE_o[boxes]"]
            ratio_props = m["lambda_dE_r"] / m["dE_o[proposals]"]
            assert 0.2 < ratio_boxes < 12, (conf, frac, m)
            assert ratio_props > 100, (conf, frac, m)
    assert LAMBDA == 3.0


# --------------------------------------------------------------------------- selection
@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_selection_argmin_and_sampling_within_k_lowest(n_boxes, n, seed):
    rng = np.random.default_rng(seed)
    costs = rng.random((n_boxes, n)).round(2)  # rounding makes ties
    np.testing.assert_array_equal(select_candidates(costs, "argmin"), costs.argmin(axis=1))
    for _ in range(5):
        pick = select_candidates(costs, "sample", rng=rng)
        kth = np.sort(costs, axis=1)[:, min(K_SAMPLE, n) - 1]
        assert (costs[np.arange(n_boxes), pick] <= kth).all()
        assert ((pick >= 0) & (pick < n)).all()


def test_sampling_is_uniform_over_the_five_cheapest():
    costs = np.array([[0.9, 0.1, 0.5, 0.3, 0.8, 0.2, 0.7, 0.4]])
    rng = np.random.default_rng(0)
    picks = np.concatenate([select_candidates(costs, "sample", rng=rng) for _ in range(2000)])
    counts = np.bincount(picks, minlength=8)
    assert set(np.flatnonzero(counts)) == {1, 5, 3, 7, 2}  # the five lowest costs
    assert counts[[1, 5, 3, 7, 2]].min() > 300  # ~400 each
    assert (select_candidates(costs[:, :2], "sample", k=5, rng=rng) < 2).all()  # k > N
    with pytest.raises(ValueError, match="no candidate"):
        select_candidates(np.zeros((1, 0)))
    with pytest.raises(ValueError, match="mode"):
        select_candidates(costs, "largest")
    assert select_candidates(np.zeros((0, 3))).shape == (0,)


def test_first_update_uses_overlap_alone_then_network_moves_the_choice():
    h, w = 20, 20
    full = square(h, w, 2, 2, 14, 14)  # = the box
    inner = square(h, w, 5, 5, 11, 11)  # IoU 0.25 with the box
    far = square(h, w, 15, 15, 20, 20)
    cands = Candidates.from_masks(np.stack([inner, far, full]))
    box, cls = np.array([[2, 2, 14, 14]]), np.array([1])
    first = boxsup_labels(cands, box, cls, num_classes=3, mode="argmin")
    assert first.regression_cost is None
    assert cands.mask(first.chosen[0]).sum() == full.sum()
    # a net sure that only the inner square is class 1: lambda E_r now outweighs E_o
    logits = np.zeros((3, h, w))
    logits[0] = 8.0
    logits[0][inner], logits[1][inner] = 0.0, 8.0
    later = boxsup_labels(cands, box, cls, 3, log_probs=log_softmax_np(logits), mode="argmin")
    assert cands.mask(later.chosen[0]).sum() == inner.sum()
    np.testing.assert_allclose(later.cost, later.overlap_cost + LAMBDA * later.regression_cost)
    np.testing.assert_array_equal(later.labels, np.where(inner, 1, 0))


# --------------------------------------------------------------------------- label-map rules
def test_smaller_segment_on_top_and_uncovered_box_pixels_background():
    h, w = 16, 16
    big = square(h, w, 0, 0, 12, 12)
    small = square(h, w, 4, 4, 8, 8)
    cands = Candidates.from_masks(np.stack([big, small]))
    # box 0 (class 1) fits big, box 1 (class 2) fits small; the big box is wider than its segment
    out = boxsup_labels(cands, np.array([[0, 0, 14, 14], [4, 4, 8, 8]]), np.array([1, 2]), 3, mode="argmin")
    expect = np.zeros((h, w), np.uint8)
    expect[big] = 1
    expect[small] = 2
    np.testing.assert_array_equal(out.labels, expect)  # box pixels 12..14 stay background
    assert out.report.overlap_px == small.sum() and out.report.shared == 0
    # the order of the boxes does not matter
    rev = boxsup_labels(cands, np.array([[4, 4, 8, 8], [0, 0, 14, 14]]), np.array([2, 1]), 3, mode="argmin")
    np.testing.assert_array_equal(rev.labels, expect)


def test_two_boxes_choosing_the_same_candidate():
    h, w = 12, 12
    seg = square(h, w, 2, 2, 10, 10)
    cands = Candidates.from_masks(seg[None])
    boxes = np.array([[2, 2, 10, 10], [1, 1, 11, 11]])  # IoU 1.0 and 0.64 with the segment's box
    other = boxsup_labels(cands, boxes, np.array([2, 1]), 3, mode="argmin")
    assert (other.labels[seg] == 2).all() and (other.labels[~seg] == 0).all()
    assert other.report.shared == 2 and other.report.conflicts == 1
    flipped = boxsup_labels(cands, boxes[::-1], np.array([1, 2]), 3, mode="argmin")
    assert (flipped.labels[seg] == 2).all()  # the better-fitting box wins, wherever it is listed
    same = boxsup_labels(cands, boxes, np.array([1, 1]), 3, mode="argmin")
    assert (same.labels[seg] == 1).all() and same.report.conflicts == 0


def test_crowd_is_void_and_left_out_of_e_r():
    h, w = 10, 10
    seg = square(h, w, 0, 0, 5, 5)
    cands = Candidates.from_masks(np.stack([seg, ~seg]))
    crowd = square(h, w, 3, 3, 7, 7)
    out = boxsup_labels(cands, np.array([[0, 0, 5, 5]]), np.array([1]), 2, crowd=crowd, mode="argmin",
                        log_probs=log_softmax_np(np.random.default_rng(0).normal(size=(2, h, w))))
    assert (out.labels[crowd] == VOID).all() and (out.labels[seg & ~crowd] == 1).all()
    assert out.report.void_px == crowd.sum()
    target = np.where(cands.mask(out.chosen[0]), 1, 0).astype(np.uint8)
    target[crowd] = VOID
    lp = log_softmax_np(np.random.default_rng(0).normal(size=(2, h, w)))
    assert out.regression_cost[0, out.chosen[0]] == pytest.approx(dense_regression_cost(lp, target))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(0, 4), st.booleans())
def test_painting_on_superpixels_equals_painting_dense_masks(seed, n, with_crowd):
    rng = np.random.default_rng(seed)
    h, w = 9, 13
    cands = Candidates.from_masks(rng.random((6, h, w)) < 0.3)
    idx = rng.integers(0, len(cands), n)
    classes = rng.integers(1, 5, n)
    areas = rng.integers(1, 4, n).astype(float)  # ties in area: the later one on top in both
    crowd = (rng.random((h, w)) < 0.1) if with_crowd else None
    m = cands.members
    cells = [m.indices[m.indptr[i]:m.indptr[i + 1]] for i in idx]
    got = paint_cells(cands.superpixels, cells, classes, areas, crowd=crowd)
    want = paint((h, w), cands.masks(idx), classes, areas=areas, crowd=crowd)
    np.testing.assert_array_equal(got[0], want[0])
    assert got[1:] == want[1:]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from(["sample", "argmin"]))
def test_a_prepared_image_assigns_as_the_one_off_update(seed, mode):
    """:class:`BoxImage` (what a run keeps between rounds, 16-bit cells) gives the labels, choices
    and costs of :func:`boxsup_labels`, from E_r, from per-superpixel sums, or from E_o alone."""
    rng = np.random.default_rng(seed)
    h, w = 12, 14
    cands = Candidates.from_masks(rng.random((7, h, w)) < 0.35)
    boxes = np.array([[1, 1, 8, 9], [4, 2, 13, 11]], float)
    cls = np.array([2, 1])
    crowd = rng.random((h, w)) < 0.1
    lp = log_softmax_np(rng.normal(0, 2, (3, h, w)))
    img = BoxImage(cands, boxes, cls, 3, crowd=crowd)
    assert img.superpixels.dtype == np.uint16 and img.nbytes > 0
    for log_probs in (None, lp):
        ref = boxsup_labels(cands, boxes, cls, 3, log_probs=log_probs, mode=mode, rng=np.random.default_rng(1),
                            crowd=crowd)
        sums = None if log_probs is None else superpixel_log_prob_sums(lp, cands.superpixels, ~crowd)
        for got in (img.assign(sums, mode=mode, rng=np.random.default_rng(1)),
                    img.assign(mode=mode, rng=np.random.default_rng(1), e_r=ref.regression_cost)):
            np.testing.assert_array_equal(got.labels, ref.labels)
            np.testing.assert_array_equal(got.chosen, ref.chosen)
            np.testing.assert_allclose(got.cost, ref.cost, rtol=1e-12)
            assert got.report == ref.report
    np.testing.assert_allclose(img.overlap_cost, overlap_costs(boxes, cands.boxes()))
    with pytest.raises(ValueError, match="E_r has shape"):
        img.assign(e_r=np.zeros((1, 3)))


# --------------------------------------------------------------------------- bad input
def test_bad_input():
    cands = Candidates.from_masks(square(8, 8, 1, 1, 4, 4)[None])
    with pytest.raises(ValueError, match=r"box 1 .*no area inside the 8x8 image"):
        boxsup_labels(cands, np.array([[1, 1, 4, 4], [20, 20, 30, 30]]), np.array([1, 1]), 3)
    with pytest.raises(ValueError, match="box 0: class id 21 outside 1..20"):
        boxsup_labels(cands, np.array([[1, 1, 4, 4]]), np.array([21]), 21)
    with pytest.raises(ValueError, match="class id 0 outside"):
        rectangle_labels((8, 8), np.array([[1, 1, 4, 4]]), np.array([0]), 21)
    with pytest.raises(ValueError, match="2 boxes but 1 class"):
        check_boxes(np.zeros((2, 4)) + [0, 0, 1, 1], np.array([1]), (8, 8), 3)
    with pytest.raises(ValueError, match="non-finite"):
        check_boxes(np.array([[0, 0, np.nan, 2]]), np.array([1]), (8, 8), 3)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        check_boxes(np.zeros((2, 3)), np.array([1, 1]), (8, 8), 3)
    # a box partly outside is clipped
    clipped, _ = check_boxes(np.array([[-3, 2, 12, 5]]), np.array([1]), (8, 8), 3)
    np.testing.assert_array_equal(clipped, [[0, 2, 8, 5]])
    # no boxes: all background (crowd void)
    crowd = square(8, 8, 0, 0, 2, 2)
    empty = boxsup_labels(cands, np.zeros((0, 4)), np.zeros(0, np.int64), 21, crowd=crowd,
                          log_probs=np.zeros((21, 8, 8)))
    np.testing.assert_array_equal(empty.labels, np.where(crowd, VOID, 0))
    assert empty.chosen.shape == (0,)
    assert (rectangle_labels((8, 8), [], [], 21) == 0).all()


# --------------------------------------------------------------------------- baselines
def two_objects(h=64, w=80):
    rng = np.random.default_rng(0)
    img = np.full((h, w, 3), 128.0)
    img[8:30, 6:34] = (220, 30, 30)
    img[34:58, 40:74] = (30, 40, 210)
    img += rng.normal(0, 4, img.shape)
    boxes = np.array([[6, 8, 34, 30], [40, 34, 74, 58]], float)
    return img.clip(0, 255).astype(np.uint8), boxes


def test_rectangles_smaller_box_on_top():
    lab = rectangle_labels((10, 10), np.array([[0, 0, 8, 8], [2, 2, 4, 4]]), np.array([1, 2]), 3,
                           crowd=square(10, 10, 9, 9, 10, 10))
    expect = np.zeros((10, 10), np.uint8)
    expect[:8, :8] = 1
    expect[2:4, 2:4] = 2
    expect[9, 9] = VOID
    np.testing.assert_array_equal(lab, expect)
    lab2 = rectangle_labels((10, 10), np.array([[2, 2, 4, 4], [0, 0, 8, 8]]), np.array([2, 1]), 3)
    assert (lab2[2:4, 2:4] == 2).all()
    # sub-pixel box coordinates: pixels whose centres lie inside
    lab3 = rectangle_labels((10, 10), np.array([[0.6, 0.4, 3.4, 2.6]]), np.array([1]), 3)
    assert lab3.sum() == 2 * 3  # columns 1, 2 (centres 1.5, 2.5), rows 0, 1, 2 (centres 0.5 ... 2.5)
    assert (lab3[0:3, 1:3] == 1).all()


def test_grabcut_finds_objects_inside_their_boxes():
    pytest.importorskip("cv2")
    img, boxes = two_objects()
    res = grabcut_labels(img, boxes, np.array([1, 2]), 3)
    assert res.n_fallbacks == 0 and sum(res.reasons.values()) == 0
    truth = [square(64, 80, 8, 6, 30, 34), square(64, 80, 34, 40, 58, 74)]
    for m, t in zip(res.masks, truth):
        assert (m & t).sum() / (m | t).sum() > 0.8
    again = grabcut_labels(img, boxes, np.array([1, 2]), 3)
    np.testing.assert_array_equal(res.labels, again.labels)  # re-seeded: deterministic


def test_grabcut_fallbacks_are_counted(monkeypatch):
    cv2 = pytest.importorskip("cv2")
    img, boxes = two_objects()
    h, w = img.shape[:2]
    allb = np.array([[0, 0, w, h], [10, 10, 12, 40], [6, 8, 34, 30]], float)  # whole image, 2 px wide, fine
    res = grabcut_labels(img, allb, np.array([1, 2, 1]), 3)
    assert res.reasons == {"whole_image": 1, "tiny": 1, "empty": 0, "exception": 0}
    np.testing.assert_array_equal(res.fallback, [True, True, False])
    assert res.masks[0].all() and res.masks[1].sum() == 2 * 30  # the rectangles

    def boom(*a, **k):
        raise cv2.error("boom")

    monkeypatch.setattr(cv2, "grabCut", boom)
    res = grabcut_labels(img, boxes, np.array([1, 2]), 3)
    assert res.reasons["exception"] == 2 and res.n_fallbacks == 2
    np.testing.assert_array_equal(res.labels, rectangle_labels((h, w), boxes, np.array([1, 2]), 3))

    def nothing(image, mask, rect, bgd, fgd, it, mode):
        mask[:] = cv2.GC_BGD

    monkeypatch.setattr(cv2, "grabCut", nothing)
    assert grabcut_labels(img, boxes[:1], np.array([1]), 3).reasons["empty"] == 1


# --------------------------------------------------------------------------- semi-supervision + twin
def _sample(has_masks: bool) -> Sample:
    h, w = 12, 12
    sem = np.zeros((h, w), np.uint8)
    sem[2:6, 2:6] = 4
    sem[6, 2:6] = VOID
    inst = (sem == 4).astype(np.int32)
    if not has_masks:
        sem = np.full((h, w), VOID, np.uint8)
        inst = np.zeros((h, w), np.int32)
    return Sample(image=np.zeros((h, w, 3), np.uint8), semantic=sem, instances=inst,
                  instance_classes=np.array([4]), boxes=np.array([[2, 2, 6, 6]], np.float32), image_id="x",
                  num_classes=21, class_names=tuple(str(i) for i in range(21)), has_masks=has_masks)


def test_supervision_target_semi():
    s = _sample(True)
    np.testing.assert_array_equal(supervision_target(s), s.semantic)  # masks: the true labels
    b = _sample(False)
    with pytest.raises(ValueError, match="needs its candidate"):
        supervision_target(b)
    cands = Candidates.from_masks(np.stack([square(12, 12, 2, 2, 6, 6), square(12, 12, 0, 0, 12, 12)]))
    lab = supervision_target(b, cands, mode="argmin")
    np.testing.assert_array_equal(lab, np.where(square(12, 12, 2, 2, 6, 6), 4, 0))


@pytest.fixture(scope="module")
def twin(tmp_path_factory) -> dict[str, Path]:
    from instseg_lib.data.synthetic import generate

    base = tmp_path_factory.mktemp("twin")
    return {n: generate(n, "smoke", base / n, workers=1) for n in ("boxes", "coco")}


def test_update_on_smoke_twin(twin):
    from instseg_lib.data import open_dataset

    rng = np.random.default_rng(0)
    for preset in ("boxes", "coco"):
        ds = open_dataset(preset, "train", root=twin[preset])
        for i in range(min(3, len(ds))):
            s = ds[i]
            cands = selective_search(s.image)
            box_only = s.replace(has_masks=False)  # §5.1: COCO masks replaced by their tight boxes
            out = boxsup_labels(cands, box_only.boxes, box_only.instance_classes, s.num_classes, rng=rng,
                                crowd=s.crowd)
            assert out.labels.shape == s.size and out.chosen.shape == (s.num_instances,)
            present = set(np.unique(out.labels)) - {0, VOID}
            assert present <= set(s.instance_classes.tolist())
            if s.crowd is not None:
                assert (out.labels[s.crowd] == VOID).all()
            lp = log_softmax_np(rng.normal(size=(s.num_classes, *s.size)))
            later = boxsup_labels(cands, s.boxes, s.instance_classes, s.num_classes, log_probs=lp, rng=rng)
            assert later.regression_cost.shape == (s.num_instances, len(cands))
            assert np.isfinite(later.cost).all()
            assert supervision_target(box_only, cands, rng=rng).shape == s.size
            gc = grabcut_labels(s.image, s.boxes, s.instance_classes, s.num_classes, crowd=s.crowd)
            assert gc.labels.shape == s.size and len(gc.fallback) == s.num_instances


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3), st.integers(1, 40), st.integers(1, 7), st.integers(0, 2**31 - 1))
def test_the_k_cheapest_are_the_stable_argsort_prefix(n_boxes, n, k, seed):
    from instseg_lib.boxsup.assignment import _k_lowest

    costs = np.random.default_rng(seed).integers(0, 6, (n_boxes, n)).astype(float)  # many ties
    kk = min(k, n)
    np.testing.assert_array_equal(_k_lowest(costs, kk), np.argsort(costs, axis=1, kind="stable")[:, :kk])
