"""Semantic metrics against direct per-pixel counts; trimap bands; bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from instseg_lib.metrics import (
    MaskSizeError,
    MetricsInputError,
    SemanticEvaluator,
    TrimapEvaluator,
    confusion_matrix,
)
from instseg_lib.metrics.semantic import boundary_distance


def direct_scores(gts, preds, n):
    """Count pixels class by class with boolean masks, the textbook way."""
    tp = np.zeros(n)
    gt_n = np.zeros(n)
    pr_n = np.zeros(n)
    correct = total = 0
    for g, p in zip(gts, preds):
        valid = g != 255
        correct += np.sum((g == p) & valid)
        total += np.sum(valid)
        for c in range(n):
            tp[c] += np.sum((g == c) & (p == c) & valid)
            gt_n[c] += np.sum((g == c) & valid)
            pr_n[c] += np.sum((p == c) & valid)
    acc = [tp[c] / gt_n[c] for c in range(n) if gt_n[c] > 0]
    iou = [tp[c] / (gt_n[c] + pr_n[c] - tp[c]) for c in range(n) if gt_n[c] + pr_n[c] > 0]
    return correct / total, np.mean(acc), np.mean(iou)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 6), n_img=st.integers(1, 4))
def test_matches_direct_count_on_random_maps(seed, n, n_img):
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    ev = SemanticEvaluator(n)
    for k in range(n_img):
        h, w = rng.integers(1, 20, 2)
        g = rng.integers(0, n, (h, w))
        g[rng.random((h, w)) < 0.2] = 255
        if not (g != 255).any():
            g[0, 0] = 0
        p = rng.integers(0, n, (h, w))
        gts.append(g)
        preds.append(p)
        ev.add(g, p, image_id=k)
    s = ev.compute()
    pa, ma, miou = direct_scores(gts, preds, n)
    assert s.pixel_acc == pytest.approx(pa, abs=1e-12)
    assert s.mean_acc == pytest.approx(ma, abs=1e-12)
    assert s.mean_iou == pytest.approx(miou, abs=1e-12)


def test_hand_case_and_absent_classes():
    g = np.array([[0, 0, 1, 255]])
    p = np.array([[0, 1, 1, 2]])  # the prediction under void does not count
    s = SemanticEvaluator(4)
    s.add(g, p)
    r = s.compute()
    assert r.pixel_acc == pytest.approx(2 / 3)
    np.testing.assert_allclose(r.per_class_iou[:2], [1 / 2, 1 / 2])
    assert np.isnan(r.per_class_iou[2]) and np.isnan(r.per_class_iou[3])
    assert r.mean_iou == pytest.approx(0.5)
    assert r.mean_acc == pytest.approx((1 / 2 + 1) / 2)
    np.testing.assert_array_equal(confusion_matrix(g, p, 4)[:2, :2], [[1, 1], [0, 1]])


def test_trimap_widths_at_another_resolution():
    """``px_scale`` measures the bands in another image's pixels: distances x 2 with widths x 2 cut
    the same bands, and void pixels count for neither region at any scale."""
    g = np.zeros((30, 40), np.int64)
    g[5:20, 8:25] = 1
    g[ndimage.binary_dilation(g == 1) ^ (g == 1)] = 255
    p = np.roll(g.clip(0, 1), 2, axis=1)
    plain, scaled = TrimapEvaluator(2, widths=[1, 2, 3, 7]), TrimapEvaluator(2, widths=[2, 4, 6, 14])
    plain.add(g, p)
    scaled.add(g, p, px_scale=2.0)
    a, b = plain.compute(), scaled.compute()
    np.testing.assert_array_equal(a.boundary_miou, b.boundary_miou)
    np.testing.assert_array_equal(a.interior_miou, b.interior_miou)
    with pytest.raises(ValueError, match="px_scale"):
        plain.add(g, p, px_scale=0.0)


def test_trimap_bands_match_direct_masks():
    rng = np.random.default_rng(0)
    ev = TrimapEvaluator(3, widths=[1, 2, 3, 7])
    gts, preds = [], []
    for _ in range(3):
        g = np.zeros((30, 40), np.int64)
        g[5:20, 8:25] = 1
        g[18:28, 20:38] = 2
        g[ndimage.binary_dilation(g == 1) ^ (g == 1)] = 255  # a void band
        p = np.roll(g.clip(0, 2), rng.integers(-3, 4), axis=1)
        gts.append(g)
        preds.append(p)
        ev.add(g, p)
    res = ev.compute()
    for k, w in enumerate(res.widths):
        band = SemanticEvaluator(3)
        inner = SemanticEvaluator(3)
        for g, p in zip(gts, preds):
            in_band = boundary_distance(g) < w
            gb = np.where(in_band, g, 255)
            gi = np.where(in_band, 255, g)
            band.add(gb, p)
            inner.add(gi, p)
        assert res.boundary_miou[k] == pytest.approx(band.compute().mean_iou, abs=1e-12)
        assert res.interior_miou[k] == pytest.approx(inner.compute().mean_iou, abs=1e-12)
    # narrow bands are harder than the interior for a shifted prediction
    assert res.boundary_miou[0] < res.interior_miou[0]
    assert res.to_frame().shape == (4, 2)


def test_boundary_distance_width_one_is_the_boundary():
    g = np.zeros((5, 6), int)
    g[:, 3:] = 1
    d = boundary_distance(g)
    np.testing.assert_array_equal(np.nonzero((d < 1).any(axis=0))[0], [2, 3])


def test_bad_input():
    ev = SemanticEvaluator(3)
    with pytest.raises(MaskSizeError, match="image 'x'"):
        ev.add(np.zeros((2, 2), int), np.zeros((2, 3), int), image_id="x")
    with pytest.raises(MetricsInputError, match="predicted label 7"):
        ev.add(np.zeros((2, 2), int), np.full((2, 2), 7), image_id="y")
    with pytest.raises(MetricsInputError, match="ground-truth label 9"):
        ev.add(np.full((2, 2), 9), np.zeros((2, 2), int), image_id="z")
