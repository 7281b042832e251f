"""Arnab & Torr 2017 without the dense CRF: detections and their files, the controlled
detector, the instance unaries of Eq. 2-6 and their label set, the matched loss (§3.4) and
both readings of the Matching IoU (§4.2). Hand-computed cases, invariants and properties."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from instseg_lib.data import Sample
from instseg_lib.detections import (
    ControlledDetectorConfig,
    Detection,
    DetectionConfig,
    DetectionFileError,
    box_pixel_range,
    controlled_detections,
    controlled_detections_for,
    read_detections,
    select_detections,
    write_detections,
)
from instseg_lib.grouping import (
    InstanceUnaries,
    ShapeTemplates,
    box_masks,
    dynamic_instance_crf,
    instance_masks,
    instance_scores,
    label_classes,
)
from instseg_lib.grouping.instance_crf import UNARY_EPS
from instseg_lib.losses import matched_ground_truth, matched_loss
from instseg_lib.metrics import MatchingIoUEvaluator, MetricsInputError, matching_iou

EPS = UNARY_EPS


# ------------------------------------------------------------------------------ helpers


def q_4x4() -> torch.Tensor:
    """(1, 3, 4, 4) probabilities: class 1 at 0.6 inside rows/cols 1-2, 0.2 elsewhere;
    class 2 at 0.1 everywhere; background the rest."""
    q = torch.zeros(1, 3, 4, 4)
    q[0, 1] = 0.2
    q[0, 1, 1:3, 1:3] = 0.6
    q[0, 2] = 0.1
    q[0, 0] = 1 - q[0, 1] - q[0, 2]
    return q


def one_template(t: torch.Tensor, aspect: float = 1.0) -> ShapeTemplates:
    """A ShapeTemplates holding the (K, S, S) templates ``t`` in one bin."""
    k, s, _ = t.shape
    return ShapeTemplates(t.reshape(1, 1, k, s, s), torch.ones(1, 1, k, dtype=torch.bool),
                          torch.tensor([aspect]))


BOX = Detection(1, 0.8, (1, 1, 3, 3))  # pixels rows 1-2, cols 1-2


# --------------------------------------------------------------------------- detections


def test_detection_box_pixels_follow_pixel_centres():
    assert box_pixel_range((1, 1, 3, 3), 4, 4) == (1, 3, 1, 3)
    # centres 0.5, 1.5, 2.5: only 1.5 lies in [0.6, 2.4)
    assert box_pixel_range((0.6, 0, 2.4, 1), 4, 4) == (0, 1, 1, 2)
    assert box_pixel_range((0, 0, 0.4, 4), 4, 4)[2:] == (0, 0)  # thinner than a pixel: empty
    m = box_masks([BOX, Detection(2, 0.5, (0, 0, 4, 1))], 4, 4)
    assert m.shape == (2, 4, 4) and m[0].sum() == 4 and m[0, 1:3, 1:3].all() and m[1, 0].all()
    assert label_classes([BOX, Detection(2, 0.5, (0, 0, 4, 1))]).tolist() == [0, 1, 2]


def test_detection_file_round_trip_and_empty_images(tmp_path):
    sizes = {"a": (10, 20), "b": (8, 8), "c": (5, 5)}
    dets = {"a": [Detection(1, 0.9, (0.5, 1.25, 20.0, 10.0)), Detection(3, 0.25, (2, 2, 4, 7))],
            "b": [Detection(2, 1.0, (0, 0, 8, 8))], "c": []}
    p = tmp_path / "dets.json"
    write_detections(p, dets)
    back = read_detections(p, sizes, num_classes=4)
    assert list(back) == ["a", "b", "c"] and back["c"] == []
    for iid in dets:
        assert len(back[iid]) == len(dets[iid])
        for d, e in zip(dets[iid], back[iid]):
            assert (d.class_id, d.score) == (e.class_id, e.score)
            np.testing.assert_allclose(d.box, e.box, atol=1e-9)
    rec = json.loads(p.read_text())[0]
    assert rec == {"image_id": "a", "category_id": 1, "bbox": [0.5, 1.25, 19.5, 8.75], "score": 0.9}
    # category ids through a map (e.g. COCO ids -> VOC classes), both ways
    write_detections(p, dets, class_to_category={1: 5, 2: 2, 3: 7})
    assert json.loads(p.read_text())[0]["category_id"] == 5
    back = read_detections(p, sizes, category_to_class={5: 1, 2: 2, 7: 3})
    assert [d.class_id for d in back["a"]] == [1, 3]


@pytest.mark.parametrize("record, message", [
    ({"image_id": "a", "category_id": 9, "bbox": [0, 0, 2, 2], "score": 0.5}, "unknown class"),
    ({"image_id": "a", "category_id": 0, "bbox": [0, 0, 2, 2], "score": 0.5}, "unknown class"),
    ({"image_id": "a", "category_id": 1, "bbox": [15, 0, 10, 2], "score": 0.5}, "outside the 20x10 image"),
    ({"image_id": "a", "category_id": 1, "bbox": [-1, 0, 2, 2], "score": 0.5}, "outside the 20x10 image"),
    ({"image_id": "a", "category_id": 1, "bbox": [0, 0, 0, 2], "score": 0.5}, "zero area"),
    ({"image_id": "a", "category_id": 1, "bbox": [0, 0, 2, 2], "score": 1.5}, "outside [0, 1]"),
    ({"image_id": "a", "category_id": 1, "bbox": [0, 0, 2, 2], "score": -0.1}, "outside [0, 1]"),
    ({"image_id": "zz", "category_id": 1, "bbox": [0, 0, 2, 2], "score": 0.5}, "unknown image_id"),
    ({"image_id": "a", "category_id": 1, "score": 0.5}, "missing field"),
    ({"image_id": "a", "category_id": 1, "bbox": [0, 0, 2], "score": 0.5}, "4 numbers"),
])
def test_detection_file_refusals_name_the_record_and_file(tmp_path, record, message):
    good = {"image_id": "a", "category_id": 1, "bbox": [0, 0, 2, 2], "score": 0.5}
    p = tmp_path / "bad.json"
    p.write_text(json.dumps([good, good, record]))
    with pytest.raises(DetectionFileError) as err:
        read_detections(p, {"a": (10, 20)}, num_classes=3)
    text = str(err.value)
    assert message in text and "detection #2" in text and str(p) in text


def test_detection_file_must_be_a_list_and_boxes_within_rounding_are_clipped(tmp_path):
    p = tmp_path / "d.json"
    p.write_text(json.dumps({"image_id": 1}))
    with pytest.raises(DetectionFileError, match="JSON list"):
        read_detections(p, {1: (4, 4)}, num_classes=2)
    p.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [0.1, 0, 3.9000001, 4], "score": 1}]))
    (d,) = read_detections(p, {1: (4, 4)}, num_classes=2)[1]
    assert d.box == (0.1, 0.0, 4.0, 4.0)
    with pytest.raises(ValueError, match="num_classes"):
        read_detections(p, {1: (4, 4)})


def test_select_detections_thresholds_nms_per_class_sorts_and_caps():
    dets = [
        Detection(1, 0.6, (0, 0, 10, 10)),
        Detection(1, 0.9, (1, 0, 11, 10)),   # IoU 9/11 with the first: suppresses it
        Detection(2, 0.7, (0, 0, 10, 10)),   # other class: kept
        Detection(1, 0.8, (30, 30, 40, 40)),
        Detection(1, 0.4, (50, 50, 60, 60)),  # below 0.5
    ]
    kept = select_detections(dets)
    assert [(d.class_id, d.score) for d in kept] == [(1, 0.9), (1, 0.8), (2, 0.7)]
    assert len(select_detections(dets, DetectionConfig(max_detections=2))) == 2
    assert len(select_detections(dets, DetectionConfig(score_threshold=0.0, nms_iou=None))) == 5
    assert DetectionConfig() == DetectionConfig(0.5, 0.3, 30)


# ------------------------------------------------------------------ controlled detector


@st.composite
def gt_scenes(draw):
    h, w = draw(st.integers(8, 64)), draw(st.integers(8, 64))
    n = draw(st.integers(0, 6))
    boxes = []
    for _ in range(n):
        x0, y0 = draw(st.integers(0, w - 1)), draw(st.integers(0, h - 1))
        boxes.append((x0, y0, draw(st.integers(x0 + 1, w)), draw(st.integers(y0 + 1, h))))
    classes = [draw(st.integers(1, 4)) for _ in range(n)]
    return np.array(boxes, np.float32).reshape(-1, 4), classes, (h, w), draw(st.integers(0, 1000))


@settings(max_examples=40, deadline=None)
@given(gt_scenes(), st.floats(0, 1), st.floats(0, 0.3))
def test_controlled_detector_without_fp_or_jitter_only_returns_gt_boxes(scene, miss, noise):
    boxes, classes, size, seed = scene
    cfg = ControlledDetectorConfig(miss_rate=miss, score_noise=noise, seed=seed)
    dets = controlled_detections(boxes, classes, size, cfg, image_id=seed, num_classes=5)
    gt = {(int(c), tuple(float(v) for v in b)) for b, c in zip(boxes, classes)}
    assert all((d.class_id, d.box) in gt for d in dets)
    assert all(0 <= d.score <= 1 for d in dets)
    assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)
    if miss == 0:
        assert len(dets) == len(boxes)
    if miss == 1:
        assert dets == []


@settings(max_examples=40, deadline=None)
@given(gt_scenes(), st.floats(0, 1), st.floats(0, 0.9), st.floats(0, 3))
def test_controlled_detector_boxes_stay_valid_and_are_deterministic(scene, jitter, shrink, fp):
    boxes, classes, (h, w), seed = scene
    cfg = ControlledDetectorConfig(jitter=jitter, shrink=shrink, fp_rate=fp, seed=seed)
    dets = controlled_detections(boxes, classes, (h, w), cfg, image_id="img", num_classes=5)
    assert dets == controlled_detections(boxes, classes, (h, w), cfg, image_id="img", num_classes=5)
    for d in dets:
        x0, y0, x1, y1 = d.box
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h and x1 - x0 >= 1 - 1e-9 and y1 - y0 >= 1 - 1e-9
        r0, r1, c0, c1 = box_pixel_range(d.box, h, w)
        assert r1 > r0 and c1 > c0  # at least one pixel: B_k is never empty
        assert 1 <= d.class_id <= 4


def test_controlled_detector_shrink_keeps_part_of_the_object_outside():
    boxes = np.array([[10, 10, 30, 50]], np.float32)
    (d,) = controlled_detections(boxes, [1], (64, 64), ControlledDetectorConfig(shrink=0.5, seed=3))
    x0, y0, x1, y1 = d.box
    assert (x1 - x0, y1 - y0) == pytest.approx((10, 20))
    assert 10 <= x0 and x1 <= 30 and 10 <= y0 and y1 <= 50


def test_controlled_detector_rates_and_independent_streams():
    rng = np.random.default_rng(0)
    n_img, per = 400, 5
    miss_cfg = ControlledDetectorConfig(miss_rate=0.3, seed=1)
    kept = 0
    fps = []
    for i in range(n_img):
        b = rng.integers(0, 40, (per, 2))
        boxes = np.concatenate([b, b + rng.integers(4, 20, (per, 2))], 1).astype(np.float32)
        classes = [1] * per
        dets = controlled_detections(boxes, classes, (64, 64), miss_cfg, image_id=i)
        kept += len(dets)
        # the same objects are missed whatever the jitter (one random stream per error type)
        jit = controlled_detections(boxes, classes, (64, 64), ControlledDetectorConfig(
            miss_rate=0.3, jitter=0.2, seed=1), image_id=i)
        assert len(jit) == len(dets)
        fp_cfg = ControlledDetectorConfig(fp_rate=2.0, fp_score=(0.8, 0.95), seed=1)
        only_fp = controlled_detections(boxes[:0], [], (64, 64), fp_cfg, image_id=i, num_classes=3)
        fps.append(len(only_fp))
        assert all(0.8 <= d.score <= 0.95 for d in only_fp)
    assert kept / (n_img * per) == pytest.approx(0.7, abs=0.03)
    assert np.mean(fps) == pytest.approx(2.0, abs=0.2)
    assert controlled_detections(np.zeros((0, 4)), [], (64, 64), fp_cfg, image_id=1, num_classes=3) != \
        controlled_detections(np.zeros((0, 4)), [], (64, 64), fp_cfg, image_id=2, num_classes=3)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    iw = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter)


def test_controlled_false_positives_avoid_same_class_objects():
    boxes = np.array([[0, 0, 32, 32], [32, 32, 64, 64]], np.float32)
    cfg = ControlledDetectorConfig(fp_rate=5.0, seed=7)
    n_fp = 0
    for i in range(50):
        for d in controlled_detections(boxes, [1, 1], (64, 64), cfg, image_id=i, num_classes=2):
            if d.score != cfg.tp_score:
                n_fp += 1
                assert (_iou(np.array(d.box), boxes.astype(float)) < cfg.fp_max_iou).all()
    assert n_fp > 100


def test_controlled_detector_on_a_sample_and_bad_configs():
    inst = np.zeros((8, 8), np.int32)
    inst[1:3, 2:6] = 1
    s = Sample(image=np.zeros((8, 8, 3), np.uint8), semantic=(inst > 0).astype(np.uint8) * 2, instances=inst,
               instance_classes=np.array([2]), boxes=np.array([[2, 1, 6, 3]], np.float32), image_id="s",
               num_classes=3, class_names=("bg", "a", "b"))
    assert controlled_detections_for(s, ControlledDetectorConfig()) == [Detection(2, 0.9, (2, 1, 6, 3))]
    with pytest.raises(ValueError, match="miss_rate"):
        ControlledDetectorConfig(miss_rate=1.5)
    with pytest.raises(ValueError, match="num_classes"):
        controlled_detections(np.zeros((0, 4)), [], (8, 8), ControlledDetectorConfig(fp_rate=1.0))


# ------------------------------------------------------------------------------ unaries


def test_box_and_global_unaries_by_hand_on_4x4():
    q = q_4x4()
    u = InstanceUnaries(("box", "global"))(q, [BOX])[0]
    assert u.shape == (2, 4, 4)
    # label 0 (Global only, §3.2.2): Q_i(background) = 0.3 inside, 0.7 outside
    assert u[0, 1, 1].item() == pytest.approx(-math.log(0.3 + EPS), rel=1e-6)
    assert u[0, 0, 0].item() == pytest.approx(-math.log(0.7 + EPS), rel=1e-6)
    # label 1 inside: w1 Q s + w2 Q = 0.6 * 0.8 + 0.6; outside: Global only, 0.2
    assert u[1, 2, 2].item() == pytest.approx(-math.log(0.6 * 0.8 + 0.6 + EPS), rel=1e-6)
    assert u[1, 0, 3].item() == pytest.approx(-math.log(0.2 + EPS), rel=1e-6)
    psi = InstanceUnaries(("box", "global")).potentials(q, [BOX])
    assert psi["box"][1].nonzero().tolist() == [[1, 1], [1, 2], [2, 1], [2, 2]]
    assert (psi["box"][0] == 0).all()  # no background detection with Global


def test_box_alone_adds_the_full_image_background_detection():
    q = q_4x4()
    u = InstanceUnaries(("box",))(q, [BOX])[0]
    # label 0: s_0 Q_i(0) with s_0 = 1 (§4.3); label 1 outside its box: -ln(eps)
    assert u[0, 0, 0].item() == pytest.approx(-math.log(0.7 + EPS), rel=1e-6)
    assert u[0, 1, 2].item() == pytest.approx(-math.log(0.3 + EPS), rel=1e-6)
    assert u[1, 1, 1].item() == pytest.approx(-math.log(0.48 + EPS), rel=1e-6)
    assert u[1, 0, 0].item() == pytest.approx(-math.log(EPS), rel=1e-6)
    assert torch.isfinite(u).all()
    # without the background detection the background cannot be labelled at all
    u_no = InstanceUnaries(("box",), background_detection=False)(q, [BOX])[0].detach()
    assert torch.allclose(u_no[0], torch.full((4, 4), -math.log(EPS)))
    u_half = InstanceUnaries(("box",), background_score=0.5)(q, [BOX])[0]
    assert u_half[0, 0, 0].item() == pytest.approx(-math.log(0.35 + EPS), rel=1e-6)
    # the release's score fallback e^s / (e^s + e^(1-s))
    u_rel = InstanceUnaries(("box",), score_transform="release")(q, [BOX])[0]
    s = math.exp(0.8) / (math.exp(0.8) + math.exp(0.2))
    assert u_rel[1, 1, 1].item() == pytest.approx(-math.log(0.6 * s + EPS), rel=1e-6)


def test_shape_term_by_hand():
    q = q_4x4()
    t = torch.tensor([[[1.0, 0.0], [0.5, 1.0]]])  # 2x2 template; the box is 2x2: the warp is the identity
    mod = InstanceUnaries(templates=one_template(t))
    psi = mod.potentials(q, [BOX])["shape"]
    expect = torch.zeros(4, 4)
    expect[1:3, 1:3] = 0.6 * t[0]
    assert torch.allclose(psi[1], expect) and (psi[0] == 0).all()
    u = mod(q, [BOX])[0]
    assert u[1, 1, 2].item() == pytest.approx(-math.log(0.48 + 0.6 + 0.0 + EPS), rel=1e-6)
    assert u[1, 2, 1].item() == pytest.approx(-math.log(0.48 + 0.6 + 0.3 + EPS), rel=1e-6)
    assert u[1, 0, 0].item() == pytest.approx(-math.log(0.2 + EPS), rel=1e-6)


def test_ncc_picks_the_matching_template_not_the_largest():
    s = 8
    vertical = torch.zeros(s, s)
    vertical[:, 3:5] = 1
    horizontal = vertical.T.clone()
    full = torch.ones(s, s)
    temps = one_template(torch.stack([full, horizontal, 0.5 * vertical]))
    q_box = torch.full((16, 16), 0.05)
    q_box[:, 6:10] = 0.9  # a vertical bar, at twice the template size
    t_star, (b, k), ncc = temps.match(q_box, class_id=1, aspect=1.0)
    assert (b, k) == (0, 2) and t_star.shape == (16, 16)
    assert ncc > 0.9
    # the unnormalised correlation would choose the all-ones template
    raw = [(temps.warped(0, 0, i, 16, 16) * q_box).sum().item() for i in range(3)]
    assert int(np.argmax(raw)) == 0


def test_only_the_nearest_aspect_bin_is_matched():
    s = 4
    tall, wide = torch.zeros(s, s), torch.zeros(s, s)
    tall[:, 1:3] = 1
    wide[1:3, :] = 1
    temps = ShapeTemplates(torch.stack([tall, wide]).reshape(1, 2, 1, s, s), torch.ones(1, 2, 1, dtype=torch.bool),
                           torch.tensor([0.5, 2.0]))
    assert temps.candidate_bins(0.4, 1) == [0] and temps.candidate_bins(3.0, 1) == [1]
    assert temps.candidate_bins(0.4, 1, "all") == [0, 1]
    q_box = torch.zeros(8, 4)
    q_box[3:5, :] = 1.0  # looks like the wide template, but the box is tall
    assert temps.match(q_box, 1, aspect=0.5)[1] == (0, 0)
    assert temps.match(q_box, 1, aspect=0.5, aspect_matching="all")[1] == (1, 0)


def test_unary_shapes_and_gradients_reach_q_weights_and_templates():
    torch.manual_seed(0)
    q = torch.softmax(torch.randn(1, 4, 12, 10), 1).requires_grad_()
    dets = [Detection(1, 0.9, (0, 0, 6, 8)), Detection(3, 0.6, (3, 2, 10, 12)), Detection(1, 0.5, (2.5, 3.2, 7.7, 9.1))]
    temps = ShapeTemplates(torch.rand(1, 2, 3, 6, 6), torch.ones(1, 2, 3, dtype=torch.bool), torch.tensor([0.7, 1.4]))
    mod = InstanceUnaries(templates=temps)
    assert mod.weights.tolist() == pytest.approx([1.0, 1.0, 1.0])
    u = mod(q, dets)
    assert u.shape == (1, 4, 12, 10) and torch.isfinite(u).all()
    (u * torch.randn_like(u)).sum().backward()
    assert q.grad.abs().sum() > 0
    assert (mod.raw_weights.grad.abs() > 0).all()
    assert temps.templates.grad.abs().sum() > 0
    # exactly one template per detection receives gradient (Eq. 5's argmax)
    used = (temps.templates.grad.abs().flatten(3).sum(-1) > 0).sum().item()
    assert 1 <= used <= 3
    for terms in [("box",), ("global",), ("box", "global"), ("global", "shape")]:
        m = InstanceUnaries(terms, templates=temps)
        assert m(q, dets).shape == (1, 4, 12, 10)


def test_unary_gradcheck_in_double():
    torch.manual_seed(1)
    q = torch.softmax(torch.randn(1, 3, 5, 6, dtype=torch.float64), 1).requires_grad_()
    dets = [Detection(1, 0.7, (0, 0, 4, 3)), Detection(2, 0.9, (2, 1, 6, 5))]
    temps = ShapeTemplates(torch.rand(1, 1, 2, 3, 3), torch.ones(1, 1, 2, dtype=torch.bool), torch.tensor([1.0]))
    mod = InstanceUnaries(templates=temps).double()
    assert torch.autograd.gradcheck(lambda x: mod(x, dets), (q,), eps=1e-6, atol=1e-5)


def test_weights_stay_positive_and_templates_are_clamped():
    mod = InstanceUnaries(("box", "global"))
    with torch.no_grad():
        mod.raw_weights.fill_(-30.0)
    assert (mod.weights > 0).all()
    assert torch.isfinite(mod(q_4x4(), [BOX])).all()
    temps = one_template(torch.tensor([[[-3.0, 2.0], [0.5, 0.5]]]))
    assert temps.warped(0, 0, 0, 2, 2).tolist() == [[0.0, 1.0], [0.5, 0.5]]


def test_zero_detections_give_only_the_background_label():
    q = q_4x4()
    temps = one_template(torch.ones(1, 2, 2))
    for mod in [InstanceUnaries(("box",)), InstanceUnaries(("box", "global")), InstanceUnaries(templates=temps)]:
        u = mod(q, [])
        assert u.shape == (1, 1, 4, 4) and torch.isfinite(u).all()
        out = dynamic_instance_crf(q, [], mod)
        assert (out.labels == 0).all() and out.marginals.shape == (1, 1, 4, 4)
        assert len(out.instances.masks) == 0 and out.instances.masks.shape == (0, 4, 4)


def test_bad_configurations_are_refused():
    with pytest.raises(ValueError, match="background"):
        InstanceUnaries(("shape",), templates=one_template(torch.ones(1, 2, 2)))
    with pytest.raises(ValueError, match="templates"):
        InstanceUnaries(("box", "shape"))
    with pytest.raises(ValueError, match="Box term"):
        InstanceUnaries(("global",), background_detection=True)
    with pytest.raises(ValueError, match=r"\(1, C, H, W\)"):
        InstanceUnaries(("box",))(torch.rand(2, 3, 4, 4), [])
    with pytest.raises(ValueError, match="class ids outside"):
        InstanceUnaries(("box",))(q_4x4(), [Detection(3, 0.5, (0, 0, 2, 2))])


def test_instances_ranking_and_false_positive_dropped():
    q = torch.zeros(1, 3, 6, 6)
    q[0, 0] = 0.9
    q[0, 1, :, :3] = 0.8
    q[0, 0, :, :3] = 0.1
    q[0, 2] = 1 - q[0, 0] - q[0, 1]  # class 2 nowhere likely: 0.1 / 0.0
    dets = [Detection(2, 0.99, (3, 0, 6, 6)),  # confident false positive on background (Fig. 3)
            Detection(1, 0.6, (0, 0, 3, 6))]
    out = dynamic_instance_crf(q, dets, InstanceUnaries(("box", "global")))
    assert out.labels[:, :3].eq(2).all() and out.labels[:, 3:].eq(0).all()
    assert out.instances.classes.tolist() == [1]  # the false positive has no pixel: dropped
    assert out.instances.scores.tolist() == pytest.approx([0.8])  # mean Q_i(l_k), the release's rescoring
    by_det = instance_scores(out.labels, dets, ranking="detection")
    assert by_det.tolist() == pytest.approx([0.99, 0.6])
    assert instance_scores(out.labels, dets, q, ranking="mean_q").tolist() == pytest.approx([0.0, 0.8])
    # a CRF layer plugs in: called with the energies and the image, returns marginals
    seen = {}

    def fake_crf(unary, image):
        seen["shape"] = (tuple(unary.shape), tuple(image.shape))
        return torch.softmax(-unary, 1)

    out2 = dynamic_instance_crf(q, dets, InstanceUnaries(("box", "global")), image=torch.zeros(1, 3, 6, 6),
                                crf=fake_crf)
    assert seen["shape"] == ((1, 3, 6, 6), (1, 3, 6, 6)) and torch.equal(out2.labels, out.labels)


def test_template_init_by_kmeans_gives_five_aspect_bins():
    rng = np.random.default_rng(0)
    masks, classes = [], []
    for i in range(150):
        aspect = [0.3, 0.6, 1.0, 1.7, 3.0][i % 5] * rng.uniform(0.9, 1.1)
        h = int(rng.integers(12, 30))
        w = max(2, int(round(h * aspect)))
        yy, xx = np.mgrid[:h, :w]
        ell = ((yy - h / 2 + 0.5) / (h / 2)) ** 2 + ((xx - w / 2 + 0.5) / (w / 2)) ** 2 <= 1
        m = ell if i % 2 else np.ones((h, w), bool)
        canvas = np.zeros((40, 100), bool)
        canvas[3:3 + h, 5:5 + w] = m
        masks.append(canvas)
        classes.append(1 + i % 2)
    temps = ShapeTemplates.from_masks(masks, templates_per_bin=3, size=16)
    assert temps.templates.shape == (1, 5, 3, 16, 16) and isinstance(temps.templates, torch.nn.Parameter)
    centres = temps.aspect_centres.tolist()
    assert centres == sorted(centres)
    for c, want in zip(centres, [0.3, 0.6, 1.0, 1.7, 3.0]):
        assert c == pytest.approx(want, rel=0.15)
    assert temps.valid.all()  # 30 masks per bin, clustered to 3
    t = temps.templates.detach()
    assert t.min() >= 0 and t.max() <= 1
    # each bin's templates look like its masks: a wide bin's template is wider than tall
    wide = t[0, 4, 0] > 0.5
    assert wide.any(0).sum() >= wide.any(1).sum()
    per = ShapeTemplates.from_masks(masks, classes, num_classes=3, per_class=True, templates_per_bin=2, size=8)
    assert per.templates.shape == (3, 5, 2, 8, 8)
    assert not per.valid[0].any() and per.valid[1:].any()
    # deterministic
    again = ShapeTemplates.from_masks(masks, templates_per_bin=3, size=16)
    assert torch.equal(again.templates, temps.templates)


def test_instance_masks_from_samples():
    inst = np.zeros((6, 6), np.int32)
    inst[0:2, 0:3] = 1
    inst[3:6, 4:6] = 2
    s = Sample(image=np.zeros((6, 6, 3), np.uint8), semantic=np.zeros((6, 6), np.uint8), instances=inst,
               instance_classes=np.array([1, 2]), boxes=np.zeros((2, 4), np.float32), image_id="x",
               num_classes=3, class_names=("bg", "a", "b"))
    masks, classes = instance_masks([s])
    assert [m.shape for m in masks] == [(2, 3), (3, 2)] and classes == [1, 2] and all(m.all() for m in masks)


# --------------------------------------------------------------------------- matched loss


def _two_instances() -> tuple[torch.Tensor, torch.Tensor]:
    """GT: left half id 1, right half id 2 (both class 1), on 4x4; output predicting label 1
    left and label 2 right with p = 0.8."""
    gt = torch.zeros(4, 4, dtype=torch.long)
    gt[:, :2], gt[:, 2:] = 1, 2
    out = torch.full((1, 3, 4, 4), 0.1)
    out[0, 1, :, :2] = 0.8
    out[0, 2, :, 2:] = 0.8
    return gt, out


def test_permuted_ground_truth_gives_the_same_loss():
    gt, out = _two_instances()
    swapped = torch.where(gt > 0, 3 - gt, gt)
    a = matched_loss(out, [0, 1, 1], gt, [1, 1])
    b = matched_loss(out, [0, 1, 1], swapped, [1, 1])
    assert a.item() == pytest.approx(-math.log(0.8)) and b.item() == pytest.approx(a.item())
    m = matched_ground_truth(out[0].argmax(0), [0, 1, 1], swapped, [1, 1])
    assert torch.equal(m.target, gt) and sorted(zip(m.pred_labels.tolist(), m.gt_ids.tolist())) == [(1, 2), (2, 1)]
    # the naive loss against the unpermuted ids would be -log 0.1
    naive = torch.nn.functional.nll_loss(torch.log(out), swapped[None])
    assert naive.item() == pytest.approx(-math.log(0.1))


def test_matching_respects_classes_is_optimal_and_drops_zero_iou():
    gt = torch.zeros(2, 6, dtype=torch.long)
    gt[:, 0:2], gt[:, 2:4], gt[:, 4:6] = 1, 2, 3
    pred = torch.zeros(2, 6, dtype=torch.long)
    pred[:, 0:3] = 1   # class 1: covers gt 1 (IoU 4/6) and part of gt 2 (class 2: no edge)
    pred[:, 4:6] = 2   # class 1 label over gt 3 of class 2: same pixels, wrong class
    m = matched_ground_truth(pred, [0, 1, 1], gt, [1, 2, 2])
    assert list(zip(m.pred_labels.tolist(), m.gt_ids.tolist())) == [(1, 1)]
    assert m.iou.tolist() == pytest.approx([4 / 6])
    assert (m.target[:, 0:2] == 1).all() and (m.target[:, 2:] == 0).all()  # gts 2, 3 unmatched -> background
    # a same-class prediction with no overlap is not matched either
    m2 = matched_ground_truth(pred, [0, 1, 2], gt, [1, 2, 1])
    assert sorted(zip(m2.pred_labels.tolist(), m2.gt_ids.tolist())) == [(1, 1)]
    # optimal, not greedy: greedy takes p1-g1 (IoU 3/6) and leaves p2-g2 at 0 (total 0.5);
    # the maximum-weight matching takes p1-g2 (2/7) and p2-g1 (1/4), total 0.536
    gt3 = torch.tensor([[1, 1, 1, 1, 2, 2, 2, 2]])
    pr3 = torch.tensor([[2, 1, 1, 1, 1, 1, 0, 0]])
    m3 = matched_ground_truth(pr3, [0, 1, 1], gt3, [1, 1])
    assert sorted(zip(m3.pred_labels.tolist(), m3.gt_ids.tolist())) == [(1, 2), (2, 1)]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.permutations([1, 2, 3, 4]))
def test_matched_loss_is_invariant_to_ground_truth_numbering(seed, perm):
    g = torch.Generator().manual_seed(seed)
    gt = torch.randint(0, 5, (6, 7), generator=g)
    classes = torch.randint(1, 3, (4,), generator=g)
    out = torch.softmax(torch.randn(1, 4, 6, 7, generator=g), 1)
    lab_cls = [0, *torch.randint(1, 3, (3,), generator=g).tolist()]
    valid = torch.rand(6, 7, generator=g) > 0.2
    lut = torch.tensor([0, *perm])
    renum = lut[gt]
    renum_classes = torch.zeros(4, dtype=torch.long)
    renum_classes[lut[1:] - 1] = classes
    # Eq. 7's argmax is not unique when two same-class segments tie on IoU; then the
    # numbering decides (scipy's order). Only untied cases are invariant.
    ious = _pair_ious(out[0].argmax(0), gt, valid)
    assume(len(set(ious)) == len(ious))
    for unmatched in ("background", "ignore"):
        a = matched_loss(out, lab_cls, gt, classes, valid, unmatched=unmatched)
        b = matched_loss(out, lab_cls, renum, renum_classes, valid, unmatched=unmatched)
        assert a.item() == pytest.approx(b.item())


def _pair_ious(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> list[float]:
    """Every nonzero IoU between a predicted label >= 1 and a ground-truth id >= 1."""
    out = []
    for k in pred[valid].unique().tolist():
        for j in gt[valid].unique().tolist():
            if k and j:
                p, g = (pred == k) & valid, (gt == j) & valid
                inter = (p & g).sum().item()
                if inter:
                    out.append(round(inter / (p | g).sum().item(), 12))
    return out


def test_unmatched_instances_and_void_pixels():
    gt, out = _two_instances()
    out = out.clone()
    out[0, 2] = 0.1
    out[0, 0, :, 2:] = 0.8  # label 2 predicts nothing: gt 2 is unmatched
    m_bg = matched_ground_truth(out[0].argmax(0), [0, 1, 1], gt, [1, 1])
    m_ig = matched_ground_truth(out[0].argmax(0), [0, 1, 1], gt, [1, 1], unmatched="ignore", ignore_index=255)
    assert (m_bg.target[:, 2:] == 0).all() and (m_ig.target[:, 2:] == 255).all()
    assert matched_loss(out, [0, 1, 1], gt, [1, 1]).item() == pytest.approx(-math.log(0.8))
    assert matched_loss(out, [0, 1, 1], gt, [1, 1], unmatched="ignore").item() == pytest.approx(-math.log(0.8))
    # void pixels: ignored by the loss and by the matching's IoU
    valid = torch.ones(4, 4, dtype=torch.bool)
    valid[0] = False
    m_v = matched_ground_truth(out[0].argmax(0), [0, 1, 1], gt, [1, 1], valid=valid)
    assert (m_v.target[0] == 255).all() and m_v.iou.tolist() == pytest.approx([1.0])
    changed = out.clone()
    changed[0, :, 0] = torch.tensor([0.98, 0.01, 0.01])[:, None]  # whatever happens on void
    assert matched_loss(changed, [0, 1, 1], gt, [1, 1], valid).item() == pytest.approx(
        matched_loss(out, [0, 1, 1], gt, [1, 1], valid).item())
    # nothing supervised: zero, still in the graph
    x = out.clone().requires_grad_()
    z = matched_loss(x, [0, 1, 1], gt, [1, 1], torch.zeros(4, 4, dtype=torch.bool))
    z.backward()
    assert z.item() == 0 and (x.grad == 0).all()


def test_matched_loss_recomputes_the_match_and_backpropagates():
    gt, out = _two_instances()
    logits = torch.log(out).clone().requires_grad_()
    loss = matched_loss(logits, [0, 1, 1], gt, [1, 1], input_kind="logits")
    loss.backward()
    assert logits.grad.abs().sum() > 0
    assert loss.item() == pytest.approx(matched_loss(torch.softmax(torch.log(out), 1), [0, 1, 1], gt, [1, 1]).item())
    # same ground truth, the prediction's labels swapped: the match follows the prediction
    flipped = out[:, [0, 2, 1]]
    assert matched_loss(flipped, [0, 1, 1], gt, [1, 1]).item() == pytest.approx(-math.log(0.8))
    s = matched_loss(out, [0, 1, 1], gt, [1, 1], reduction="sum")
    assert s.item() == pytest.approx(16 * -math.log(0.8))


def test_matched_loss_on_the_instance_unaries():
    """End to end without the dense CRF: unaries -> softmax(-U) -> matched loss -> gradients."""
    q = q_4x4().requires_grad_()
    dets = [Detection(1, 0.9, (1, 1, 3, 3))]
    mod = InstanceUnaries(("box", "global"))
    out = dynamic_instance_crf(q, dets, mod)
    gt = torch.zeros(4, 4, dtype=torch.long)
    gt[1:3, 1:3] = 1
    loss = matched_loss(out.marginals, label_classes(dets), gt, [1])
    loss.backward()
    assert torch.isfinite(loss) and q.grad.abs().sum() > 0 and mod.raw_weights.grad.abs().sum() > 0


# ---------------------------------------------------------------------------- Matching IoU


def _masks(h: int, w: int, pixel_sets: list[list[tuple[int, int]]]) -> np.ndarray:
    out = np.zeros((len(pixel_sets), h, w), bool)
    for i, px in enumerate(pixel_sets):
        for r, c in px:
            out[i, r, c] = True
    return out


G1 = [(0, 0), (0, 1), (1, 0), (1, 1)]            # class 1, 4 px
G2 = [(5, 0), (5, 1)]                            # class 1, 2 px
G3 = [(3, 4), (3, 5), (3, 6)]                    # class 2, 3 px
P1 = [(0, 0), (0, 1), (1, 0), (0, 2)]            # class 1: 3 px on G1, area 4 -> IoU 3/5
P2 = G3                                          # class 2: exact
P3 = [(7, 6), (7, 7)]                            # class 1: on nothing


def test_matching_iou_both_readings_by_hand():
    gt, pred = _masks(8, 8, [G1, G2, G3]), _masks(8, 8, [P1, P2, P3])
    gc, pc = [1, 1, 2], [1, 2, 1]
    # segment mean: matched 3/5 and 1; left over G2 and P3 count as 0 -> 1.6 / 4
    assert matching_iou(gt, gc, pred, pc) == pytest.approx(1.6 / 4)
    # VOC pixels: class 1 TP = 3, TP+FP+FN = |P1 u G1| (5) + |P3| (2) + |G2| (2) = 9; class 2: 3 / 3
    assert matching_iou(gt, gc, pred, pc, mode="voc") == pytest.approx(6 / 12)
    ev = MatchingIoUEvaluator(mode="voc")
    ev.add("a", gt, gc, pred, pc)
    # a second image: a perfect class-1 instance of 6 px accumulates into class 1's counts
    ev.add("b", _masks(8, 8, [[(r, 7) for r in range(6)]]), [1], _masks(8, 8, [[(r, 7) for r in range(6)]]), [1])
    r = ev.compute()
    assert r.mode == "voc"
    assert r.per_class == pytest.approx({1: (3 + 6) / (9 + 6), 2: 1.0})
    assert r.mean == pytest.approx(((9 / 15) + 1) / 2)
    assert r.pooled == pytest.approx(12 / 18)
    assert r.per_image == pytest.approx({"a": 0.5, "b": 1.0})
    seg = MatchingIoUEvaluator()  # default unchanged: the segment reading
    seg.add("a", gt, gc, pred, pc)
    seg.add("b", _masks(8, 8, [[(r, 7) for r in range(6)]]), [1], _masks(8, 8, [[(r, 7) for r in range(6)]]), [1])
    rs = seg.compute()
    assert rs.mode == "segment" and rs.per_class is None
    assert rs.mean == pytest.approx((0.4 + 1.0) / 2) and rs.pooled == pytest.approx(2.6 / 5)


def test_matching_iou_voc_reading_weighs_pixels_and_ignores_void():
    # one large perfect instance and one small missed one: segments 1/2, pixels 16/17
    big = [(r, c) for r in range(4) for c in range(4)]
    gt = _masks(8, 8, [big, [(7, 7)]])
    pred = _masks(8, 8, [big])
    assert matching_iou(gt, [1, 1], pred, [1]) == pytest.approx(0.5)
    assert matching_iou(gt, [1, 1], pred, [1], mode="voc") == pytest.approx(16 / 17)
    # a prediction spilling onto void pixels is not penalised for them (VOC ignores void)
    spill = _masks(8, 8, [big + [(4, 0), (4, 1)]])
    void = np.zeros((8, 8), bool)
    void[4, :] = True
    assert matching_iou(gt[:1], [1], spill, [1], mode="voc") == pytest.approx(16 / 18)
    assert matching_iou(gt[:1], [1], spill, [1], mode="voc", void=void) == pytest.approx(1.0)
    assert matching_iou(gt[:1], [1], spill, [1], void=void) == pytest.approx(1.0)
    ev = MatchingIoUEvaluator(mode="voc")
    ev.add(0, gt[:1], [1], spill, [1], void=void)
    assert ev.compute().mean == pytest.approx(1.0)


def test_matching_iou_modes_refuse_mixing_inputs():
    with pytest.raises(MetricsInputError, match="mode"):
        MatchingIoUEvaluator(mode="pixels")
    ev = MatchingIoUEvaluator(mode="voc")
    with pytest.raises(MetricsInputError, match="add_iou"):
        ev.add_iou(0, np.zeros((1, 1)), [1], [1])
    ev.add_counts(0, np.array([[2]]), [3], [2], [1], [1])
    with pytest.raises(MetricsInputError, match="twice"):
        ev.add_counts(0, np.array([[2]]), [3], [2], [1], [1])
    assert ev.compute().mean == pytest.approx(2 / 3)
    empty = MatchingIoUEvaluator(mode="voc")
    empty.add_counts(1, np.zeros((0, 0)), [], [], [], [])
    assert math.isnan(empty.compute().mean)
