"""Matching IoU (Arnab & Torr §4.2), recall@k (Fathi Table 3) and the RLE/IoU helpers."""

from __future__ import annotations

import numpy as np
import pytest

from instseg_lib.metrics import (
    MaskSizeError,
    MatchingIoUEvaluator,
    RecallEvaluator,
    encode,
    intersection_matrix,
    iou_matrix,
    match_segments,
    matching_iou,
    to_rles,
)
from instseg_lib.metrics.masks import decode, segmentation_to_rle


def test_matching_is_optimal_not_greedy():
    # greedy would pair p0-g0 (0.8) and p1-g1 (0.1): 0.9; the optimum is 0.5 + 0.6 = 1.1
    iou = np.array([[0.8, 0.5], [0.6, 0.1], [0.3, 0.0]])
    rows, cols, w = match_segments(iou, [1, 1], [1, 1, 2])
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(0, 1), (1, 0)]
    assert w.sum() == pytest.approx(1.1)
    ev = MatchingIoUEvaluator()
    ev.add_iou("a", iou, [1, 1], [1, 1, 2])  # the class-2 prediction is left over
    ev.add_iou("b", np.zeros((0, 1)), [1], [])  # a missed object: IoU 0
    r = ev.compute()
    assert r.per_image["a"] == pytest.approx(1.1 / 3)
    assert r.per_image["b"] == 0.0
    assert r.mean == pytest.approx(1.1 / 6)
    assert r.pooled == pytest.approx(1.1 / 4)


def test_matching_iou_on_masks_respects_classes():
    gt = np.zeros((2, 10, 10), bool)
    gt[0, :, :5] = True
    gt[1, :, 5:] = True
    pred = gt.copy()
    assert matching_iou(gt, [1, 2], pred, [1, 2]) == 1.0
    assert matching_iou(gt, [1, 2], pred, [2, 1]) == 0.0  # right shapes, wrong classes
    assert matching_iou(gt, [1, 2], pred[:1], [1]) == pytest.approx(1 / 2)


def test_recall_at_k_and_ar_by_hand():
    iou = np.array([[0.6, 0.0], [0.0, 0.3], [0.0, 0.5]])
    ev = RecallEvaluator(ks=[1, 2, 3, 10])
    ev.add_iou(0, iou, [0.9, 0.8, 0.7])
    r = ev.compute()
    np.testing.assert_allclose(r.recall, [0.5, 0.5, 1.0, 1.0])
    # k = 3: g0 (best 0.6) is recalled at 0.5, 0.55, 0.6; g1 (0.5) at 0.5 only
    assert r.average_recall[2] == pytest.approx((3 + 1) / 10 / 2)
    assert r.to_frame().index.tolist() == [1, 2, 3, 10]


def test_recall_is_class_agnostic_and_ranked_by_score():
    gt = np.zeros((1, 8, 8), bool)
    gt[0, :4] = True
    props = np.zeros((2, 8, 8), bool)
    props[0, 4:] = True  # higher score, misses
    props[1, :4] = True  # lower score, hits
    ev = RecallEvaluator(ks=[1, 2])
    ev.add(0, gt, props, [0.9, 0.1])
    np.testing.assert_allclose(ev.compute().recall, [0.0, 1.0])


def test_iou_and_intersection_match_numpy():
    rng = np.random.default_rng(0)
    a = rng.random((5, 13, 17)) < 0.4
    b = rng.random((3, 13, 17)) < 0.5
    b[2] = False  # an empty mask
    inter = (a[:, None] & b[None]).sum((2, 3))
    union = (a[:, None] | b[None]).sum((2, 3))
    ra, rb = encode(a), encode(b)
    np.testing.assert_array_equal(intersection_matrix(ra, rb), inter)
    expected = np.where(union > 0, inter / np.maximum(union, 1), 0)
    np.testing.assert_array_equal(iou_matrix(ra, rb), expected)  # bit-identical
    np.testing.assert_array_equal(decode(ra), a)
    assert iou_matrix([], rb).shape == (0, 3)


def test_rle_forms_and_size_errors():
    m = np.zeros((6, 7), bool)
    m[1:4, 2:6] = True
    rle = encode(m)[0]
    as_str = {"size": rle["size"], "counts": rle["counts"].decode()}
    poly = [[2, 1, 6, 1, 6, 4, 2, 4]]  # x, y pairs of a rectangle
    r_str = segmentation_to_rle(as_str, 6, 7)
    r_poly = segmentation_to_rle(poly, 6, 7)
    assert iou_matrix([r_str], [rle])[0, 0] == 1.0
    assert iou_matrix([r_poly], [rle])[0, 0] > 0.5
    with pytest.raises(MaskSizeError, match="image 5.*8x7"):
        to_rles([{"size": [8, 7], "counts": as_str["counts"]}], 6, 7, image_id=5)
    with pytest.raises(MaskSizeError, match="image 5"):
        to_rles(np.zeros((1, 5, 7), bool), 6, 7, image_id=5)
