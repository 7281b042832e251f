"""AP^r: hand-computed cases of the SDS protocol, its FCIS variant, and AP^r_vol."""

from __future__ import annotations

import numpy as np
import pytest

from instseg_lib.metrics import (
    VOL_THRESHOLDS,
    EmptyPredictionsWarning,
    MissingScoreError,
    SDSEvaluator,
    UnknownCategoryError,
    assign_fcis,
    assign_sds,
    voc07_ap,
    voc_ap,
)
from instseg_lib.metrics.ap import precision_recall
from instseg_lib.metrics.errors import MaskSizeError, MetricsInputError


def strip_masks(h: int, w: int, spans: list[tuple[int, int]]) -> np.ndarray:
    """Masks covering all rows and columns [a, b) of an h x w image."""
    out = np.zeros((len(spans), h, w), bool)
    for k, (a, b) in enumerate(spans):
        out[k, :, a:b] = True
    return out


# --------------------------------------------------------------------------- AP curves


def test_voc_area_and_11_point_by_hand():
    # ranked TP, FP, TP against 3 ground truths
    prec, rec = precision_recall(np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1]), 3)
    np.testing.assert_allclose(prec, [1, 0.5, 2 / 3])
    np.testing.assert_allclose(rec, [1 / 3, 1 / 3, 2 / 3])
    # envelope 1, 2/3, 2/3 -> area = 1/3 * 1 + 1/3 * 2/3
    assert voc_ap(rec, prec) == pytest.approx(1 / 3 + 2 / 9)
    # 11-point: t = 0 .. 0.3 -> 1 (4 points), t = 0.4 .. 0.6 -> 2/3 (3 points)
    assert voc07_ap(rec, prec) == pytest.approx((4 + 3 * 2 / 3) / 11)


def test_perfect_and_empty():
    assert voc_ap(np.array([0.5, 1.0]), np.array([1.0, 1.0])) == 1.0
    ev = SDSEvaluator()
    m = strip_masks(4, 10, [(0, 5)])
    ev.add(0, m, [1], np.zeros((0, 4, 10), bool), [], [])
    with pytest.warns(EmptyPredictionsWarning):
        table = ev.compute([0.5])
    assert table.map_at(0.5) == 0.0


# --------------------------------------------------------------------------- SDS vs FCIS


def test_duplicate_next_to_uncovered_second_best_ground_truth():
    """The fallback: SDS gives the duplicate the second-best, still free gt; FCIS does not."""
    h, w = 10, 20
    gt = strip_masks(h, w, [(0, 10), (10, 20)])  # two touching same-class objects
    # p0 = gt0 exactly; p1 = columns 2..16: IoU 80/170 with gt0 (best), 70/180 with gt1
    pred = strip_masks(h, w, [(0, 10), (2, 17)])
    scores = [0.9, 0.8]
    iou = np.array([[1.0, 0.0], [80 / 170, 70 / 180]])
    np.testing.assert_array_equal(assign_sds(iou, scores, [0.3]), [[True, True]])
    np.testing.assert_array_equal(assign_fcis(iou, scores, [0.3]), [[True, False]])
    res = {}
    for proto in ("sds", "fcis"):
        ev = SDSEvaluator(proto)
        ev.add("img", gt, [1, 1], pred, [1, 1], scores)
        res[proto] = ev.compute([0.3, 0.5])
    assert res["sds"].map_at(0.3) == 1.0  # 2 TP / 2 gt
    assert res["fcis"].map_at(0.3) == 0.5  # TP, FP: precision 1 up to recall 1/2
    # at 0.5 the second prediction matches nothing in either protocol
    assert res["sds"].map_at(0.5) == res["fcis"].map_at(0.5) == 0.5


def test_iou_exactly_at_threshold():
    """SDS counts IoU > t, the FCIS variant IoU >= t: 50/100 is exactly 0.5."""
    gt = strip_masks(10, 20, [(0, 10)])  # 100 px
    pred = strip_masks(10, 20, [(0, 5)])  # 50 px inside it
    out = {}
    for proto in ("sds", "fcis"):
        ev = SDSEvaluator(proto)
        ev.add(0, gt, [3], pred, [3], [0.5])
        out[proto] = ev.compute([0.5]).map_at(0.5)
    assert out == {"sds": 0.0, "fcis": 1.0}
    # 0.7 exactly: 70 of 100 px -> IoU 0.7 == the literal 0.7
    pred7 = strip_masks(10, 20, [(0, 7)])
    for proto, expected in (("sds", 0.0), ("fcis", 1.0)):
        ev = SDSEvaluator(proto)
        ev.add(0, gt, [3], pred7, [3], [0.5])
        assert ev.compute([0.7]).map_at(0.7) == expected


def test_duplicates_are_false_positives_and_order_is_by_score():
    gt = strip_masks(10, 30, [(0, 10)])
    pred = strip_masks(10, 30, [(0, 9), (0, 10), (20, 30)])  # near-duplicate, exact, FP
    ev = SDSEvaluator()
    ev.add(0, gt, [1], pred, [1, 1, 1], [0.6, 0.9, 0.7])
    t = ev.compute([0.5])
    # ranked: exact (TP), background (FP), near-duplicate (FP, gt covered) -> AP 1
    assert t.map_at(0.5) == 1.0
    # the strict protocol for covered gts: the lower-scored duplicate is not a TP
    tp = assign_sds(np.array([[0.9], [1.0], [0.0]]), np.array([0.6, 0.9, 0.7]), [0.5])
    np.testing.assert_array_equal(tp, [[False, True, False]])


def test_classes_are_separate_and_mean_skips_classes_without_gt():
    gt = strip_masks(8, 40, [(0, 10), (20, 30)])
    pred = strip_masks(8, 40, [(0, 10), (20, 30), (32, 40)])
    ev = SDSEvaluator()
    # the class-2 prediction on the class-1 object does not match it
    ev.add(0, gt, [1, 2], pred, [2, 2, 5], [0.9, 0.8, 0.7])
    t = ev.compute([0.5])
    df = t.to_frame()
    assert df.loc[1, "AP@0.5"] == 0.0
    assert df.loc[2, "AP@0.5"] == 0.5  # FP then TP: precision 1/2 at recall 1
    assert np.isnan(df.loc[5, "AP@0.5"])  # no gt of class 5
    assert t.map_at(0.5) == 0.25


def test_ap_vol_is_mean_over_nine_thresholds_and_table_shape():
    gt = strip_masks(10, 20, [(0, 10)])
    pred = strip_masks(10, 20, [(0, 6)])  # IoU 0.6
    ev = SDSEvaluator()
    ev.add(0, gt, [1], pred, [1], [1.0])
    t = ev.compute()
    assert t.ap.shape == (1, 9)
    np.testing.assert_array_equal(t.ap[0], [1, 1, 1, 1, 1, 0, 0, 0, 0])  # 0.6 > 0.6 fails
    assert t.ap_vol == pytest.approx(5 / 9)
    s = t.summary()
    assert set(s) == {f"mAP_r@{x:g}" for x in VOL_THRESHOLDS} | {"mAP_r_vol"}
    # FCIS counts the 0.6 threshold (>=)
    ev = SDSEvaluator("fcis")
    ev.add(0, gt, [1], pred, [1], [1.0])
    assert ev.compute().ap_vol == pytest.approx(6 / 9)


def test_11_point_switch():
    ev = SDSEvaluator("fcis", use_07_metric=True)
    gt = strip_masks(10, 40, [(0, 10), (10, 20), (20, 30)])
    pred = strip_masks(10, 40, [(0, 10), (30, 40), (20, 30)])
    ev.add(0, gt, [1, 1, 1], pred, [1, 1, 1], [0.9, 0.8, 0.7])
    t = ev.compute([0.5])
    assert t.ap_method == "voc07_11pt"
    assert t.map_at(0.5) == pytest.approx((4 + 3 * 2 / 3) / 11)


def test_streaming_equals_one_shot_and_memory_is_per_image_matrices():
    from instseg_lib.metrics.toy import make_toy_images

    ims = make_toy_images(6, 32, seed=3)
    ev = SDSEvaluator()
    for im in ims:
        ev.add(im.image_id, im.gt_masks, im.gt_classes, im.pred_masks, im.pred_classes,
               im.pred_scores)
    held = sum(im.pred_masks.shape[0] * im.gt_masks.shape[0] * 8 for im in ims)
    assert ev.nbytes < held + 64 * len(ims) * 4  # iou matrices + a few small vectors
    a = ev.compute(VOL_THRESHOLDS)
    b = ev.compute([0.5])
    assert a.map_at(0.5) == b.map_at(0.5)


def test_bad_input_errors_name_the_image():
    gt = strip_masks(10, 20, [(0, 10)])
    ev = SDSEvaluator(classes=[1, 2])
    with pytest.raises(UnknownCategoryError, match="image 'a'.*category 7"):
        ev.add("a", gt, [1], gt, [7], [0.5])
    with pytest.raises(MissingScoreError, match="image 'b'"):
        ev.add("b", gt, [1], gt, [1], None)
    with pytest.raises(MissingScoreError, match="image 'c'.*nan"):
        ev.add("c", gt, [1], gt, [1], [float("nan")])
    with pytest.raises(MaskSizeError, match="image 'd'.*differs"):
        ev.add("d", gt, [1], strip_masks(10, 21, [(0, 10)]), [1], [0.5])
    ev.add("e", gt, [1], gt, [1], [0.5])
    with pytest.raises(MetricsInputError, match="added twice"):
        ev.add("e", gt, [1], gt, [1], [0.5])
    with pytest.raises(ValueError, match="unknown AP"):
        SDSEvaluator("voc")
