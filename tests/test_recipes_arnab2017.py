"""Arnab & Torr 2017 recipe: the matched loss's second (box) match, gradient clipping, the
configs, the baselines and helpers against hand-computed cases, and one smoke-scale run of
every table end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from instseg_lib.data.errors import MissingDatasetError
from instseg_lib.data.sample import boxes_from_instances
from instseg_lib.detections import Detection
from instseg_lib.losses import matched_ground_truth, matched_loss
from instseg_lib.papers import TABLES
from instseg_lib.papers.schema import check_claims
from instseg_lib.recipes import arnab2017 as arnab
from instseg_lib.recipes import wu2016 as wu
from instseg_lib.recipes.common import flip_boxes
from instseg_lib.train import TrainConfig, train


# --------------------------------------------------------------------------- the box match
def _two_objects() -> tuple[torch.Tensor, list[int]]:
    gt = torch.zeros(8, 10, dtype=torch.long)
    gt[1:4, 1:4] = 1   # class 5, box (1, 1, 4, 4)
    gt[4:7, 6:9] = 2   # class 5, box (6, 4, 9, 7)
    return gt, [5, 5]


def test_an_all_background_prediction_gets_no_instance_target_without_the_box_match():
    gt, classes = _two_objects()
    pred = torch.zeros_like(gt)
    m = matched_ground_truth(pred, [0, 5, 5], gt, classes)
    assert set(m.target.unique().tolist()) == {0} and len(m.pred_labels) == 0


def test_the_box_match_pairs_empty_labels_with_the_instances_their_boxes_cover():
    gt, classes = _two_objects()
    pred = torch.zeros_like(gt)
    # label 1's box covers instance 2, label 2's box covers instance 1
    boxes = [(6.0, 4.0, 9.0, 7.0), (1.0, 1.0, 4.0, 4.0)]
    m = matched_ground_truth(pred, [0, 5, 5], gt, classes, label_boxes=boxes)
    assert (m.target[gt == 2] == 1).all() and (m.target[gt == 1] == 2).all() and (m.target[gt == 0] == 0).all()
    assert sorted(zip(m.pred_labels.tolist(), m.gt_ids.tolist())) == [(1, 2), (2, 1)]
    assert m.iou.tolist() == [0.0, 0.0]  # no segment overlap: these are box matches


def test_the_box_match_leaves_segment_matches_alone_and_respects_classes():
    gt, classes = _two_objects()
    pred = torch.zeros_like(gt)
    pred[1:4, 1:4] = 1  # label 1's segment is instance 1 exactly
    # label 1's box would prefer instance 2, but its segment matched first; label 2 is another class
    m = matched_ground_truth(pred, [0, 5, 7], gt, classes, label_boxes=[(6.0, 4.0, 9.0, 7.0), (6.0, 4.0, 9.0, 7.0)])
    assert (m.target[gt == 1] == 1).all()
    assert (m.target[gt == 2] == 0).all()  # the class-7 label may not claim a class-5 object
    with pytest.raises(ValueError, match="label_boxes has 1 boxes for 2 instance labels"):
        matched_ground_truth(pred, [0, 5, 5], gt, classes, label_boxes=[(0.0, 0.0, 1.0, 1.0)])


def test_the_box_match_gives_a_confident_background_prediction_a_gradient():
    gt, classes = _two_objects()
    logits = torch.zeros(1, 3, 8, 10)
    logits[:, 0] = 5.0  # everything background
    logits.requires_grad_(True)
    boxes = [(1.0, 1.0, 4.0, 4.0), (6.0, 4.0, 9.0, 7.0)]
    plain = matched_loss(logits, [0, 5, 5], gt, classes, input_kind="logits")
    boxed = matched_loss(logits, [0, 5, 5], gt, classes, input_kind="logits", label_boxes=boxes)
    assert float(plain.detach()) < 0.02 < float(boxed.detach())
    boxed.backward()
    assert logits.grad[0, 1][gt == 1].lt(0).all()  # raising label 1 on instance 1 lowers the loss


# --------------------------------------------------------------------------- clipping
class _Lin(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))


def test_train_clips_the_gradient_norm_and_counts_the_clipped_steps():
    data = [torch.tensor([1.0]), torch.tensor([1e-4])]
    m = _Lin()
    # gradient of 100 * w * x is 100 x: clipped on the first sample (100 > 1), not on the second (0.01)
    hist = train(m, data, lambda net, b: 100 * (net.w * b).sum(),
                 TrainConfig(steps=2, batch_size=1, lr=0.1, optimizer="sgd", momentum=0.0, weight_decay=0.0,
                             poly_power=0.0, max_grad_norm=1.0, divergence_factor=0.0),
                 checkpoint_path=None, progress=False, collate_fn=lambda items: items[0])
    assert hist["clipped_steps"] in (1,)
    with pytest.raises(ValueError, match="max_grad_norm"):
        TrainConfig(steps=1, batch_size=1, max_grad_norm=0.0)


# --------------------------------------------------------------------------- configs and helpers
def test_configs_name_what_they_train_and_refuse_what_the_tables_do_not_have():
    cfg = arnab.train_config("smoke", "voc", "box+global", "pw", seed=2)
    assert cfg.name == "din-voc-box_global-pw-seed2" and cfg.terms == ("box", "global")
    assert cfg.semantic == wu.semantic_config("smoke", "voc", depth=50, output_stride=8, kernel=3, dilation=12)
    with pytest.raises(KeyError):
        arnab.train_config("smoke", "voc", "global+shape")
    with pytest.raises(ValueError, match="regime"):
        arnab.train_config("smoke", regime="joint")
    with pytest.raises(ValueError, match="semantic_lr_scale"):
        arnab.train_config("smoke", semantic_lr_scale=2.0)
    e = arnab.eval_config(cfg)
    assert e.name.startswith("eval-din-voc-box_global-pw-seed2-m0p1-fp0p3-j0p05") and "." not in e.name
    assert arnab.eval_config(cfg, untrained=True).name != e.name != arnab.eval_config(cfg, gt_semantic=True).name
    assert arnab.eval_config(None, "smoke", "voc", paste_box=True).name.startswith("eval-pastebox-voc")
    with pytest.raises(ValueError, match="paste_box"):
        arnab.run_eval(arnab.eval_config(None, "smoke", "voc"))
    keys = list(arnab.sweep_config("smoke").settings())
    assert keys == [f"fp={v:g}" for v in arnab.SWEEP_FP_RATES] + [f"jitter={v:g}" for v in arnab.SWEEP_JITTERS]


def test_paste_the_box_fills_each_box_and_keeps_the_detection_scores():
    dets = [Detection(3, 0.9, (1.0, 2.0, 4.0, 5.0)), Detection(7, 0.6, (0.0, 0.0, 2.0, 1.0))]
    inst = arnab.paste_box_instances(dets, (6, 6))
    assert inst.masks.shape == (2, 6, 6)
    assert inst.masks[0].sum() == 9 and inst.masks[0, 2:5, 1:4].all()
    assert inst.masks[1].sum() == 2 and inst.masks[1, 0, 0:2].all()
    assert inst.classes.tolist() == [3, 7] and inst.scores.tolist() == pytest.approx([0.9, 0.6])
    assert arnab.paste_box_instances([], (4, 5)).masks.shape == (0, 4, 5)


def test_true_positive_detections_follow_the_greedy_detection_rule():
    from types import SimpleNamespace

    s = SimpleNamespace(boxes=np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float), instance_classes=np.array([1, 2]))
    dets = [Detection(1, 0.6, (0.0, 0.0, 10.0, 10.0)),   # TP, but a higher-scoring duplicate takes the object
            Detection(1, 0.9, (1.0, 0.0, 10.0, 10.0)),   # IoU 0.9: TP
            Detection(2, 0.8, (0.0, 0.0, 10.0, 10.0)),   # wrong class for the box it covers
            Detection(2, 0.7, (24.0, 20.0, 30.0, 30.0))]  # IoU 0.6 with object 2: TP
    assert arnab.true_positive_detections(dets, s) == [False, True, False, True]
    assert arnab.true_positive_detections(dets, s, iou=0.95) == [True, False, False, False]
    assert arnab.true_positive_detections([], s) == []


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_flipped_boxes_are_the_boxes_of_the_flipped_instances(seed):
    rng = np.random.default_rng(seed)
    inst = np.zeros((9, 13), np.int64)
    for k in range(1, 4):
        y, x = rng.integers(0, 7), rng.integers(0, 11)
        inst[y:y + rng.integers(1, 3), x:x + rng.integers(1, 3)] = k
    n = int(inst.max())
    boxes = boxes_from_instances(inst, n)
    flipped = boxes_from_instances(inst[:, ::-1].copy(), n)
    present = (boxes[:, 2] > boxes[:, 0])
    np.testing.assert_allclose(flip_boxes(boxes, 13)[present], flipped[present])
    np.testing.assert_allclose(flip_boxes(flip_boxes(boxes, 13), 13), boxes)


# --------------------------------------------------------------------------- smoke run
@pytest.fixture(scope="module")
def smoke():
    try:
        t1 = arnab.table1_runs("smoke")
    except MissingDatasetError as exc:  # pragma: no cover - make test generates the smoke twin first
        pytest.skip(str(exc))
    return t1


def test_smoke_table1_has_every_row_and_column_and_gets_verdicts(smoke):
    ours = arnab.table1_ours(smoke)
    table = TABLES["arnab2017.table1"]
    assert set(ours) == {r.id for r in table.rows}
    assert all(set(v) == set(table.value_columns) for v in ours.values())
    assert all(0.0 <= x <= 100.0 for v in ours.values() for x in v.values())
    noise = arnab.seed_noise(arnab.noise_runs("smoke", "voc"), arnab.T1_COLUMNS, rows=arnab.table1_rows())
    assert set(noise) == {r.id for r in table.rows} and noise["box-pw"] is noise["box+global-pw"]
    verdicts = {c.verdict for c in check_claims(table, ours, noise)}
    assert "not run" not in verdicts


def test_piecewise_leaves_the_semantic_subnetwork_as_trained_and_end_to_end_moves_it(smoke):
    state, _ = arnab._semantic_state(arnab.semantic_config("smoke", "voc"))
    pw = arnab.load_model(arnab.train_config("smoke", "voc", "box", "pw")).semantic.state_dict()
    e2e = arnab.load_model(arnab.train_config("smoke", "voc", "box", "e2e")).semantic.state_dict()
    assert all(torch.equal(pw[k], state[k]) for k in state)
    assert any(not torch.equal(e2e[k], state[k]) for k in state if state[k].is_floating_point())
    # the detection potential is part of the semantic subnetwork: frozen piecewise
    pw_model = arnab.load_model(arnab.train_config("smoke", "voc", "box", "pw"))
    assert torch.equal(pw_model.detection_potential.w_x, arnab.DetectionPotential(21).w_x)


def test_recalibrated_scores_reach_the_instance_crf_and_are_recorded(smoke):
    res = arnab.run_eval(arnab.eval_config(arnab.train_config("smoke", "voc", "box+global+shape", "e2e")))
    counts = res.metrics["detection_counts"]
    assert counts["tp"] + counts["fp"] == res.metrics["n_detections"]
    frame = arnab.recalibration_frame({"e2e": res})
    assert list(frame.columns)[:2] == ["true positives", "false positives"]
    from instseg_lib.data import open_dataset

    s = open_dataset("voc", "val", profile="smoke")[0]
    dets = arnab.detections_for(s, arnab.DETECTOR, arnab.DetectionConfig())
    model = arnab.load_model(arnab.train_config("smoke", "voc", "box+global+shape", "e2e"))
    out, _ = arnab.predict(model, s, dets)
    assert [d.box for d in out.detections] == [d.box for d in dets]
    assert all(0.0 <= d.score <= 1.0 for d in out.detections)
    assert [d.score for d in out.detections] != [d.score for d in dets]


def test_no_detection_gives_an_all_background_map_and_no_instance(smoke):
    from instseg_lib.data import open_dataset

    s = open_dataset("voc", "val", profile="smoke")[0]
    model = arnab.load_model(arnab.train_config("smoke", "voc", "box+global+shape", "e2e"))
    out, q = arnab.predict(model, s, [])
    assert out.marginals.shape[1] == 1 and int(out.labels.max()) == 0 and len(out.instances.scores) == 0
    assert q.shape[-2:] == s.size


def test_smoke_tables_3_4_and_the_sweep(smoke):
    sbd = arnab.noise_runs("smoke", "sbd")
    ours3 = arnab.table3_ours(sbd["pw"][0], sbd["e2e"][0])
    assert set(ours3) == {"ours-pw", "ours-e2e"}
    runs4 = arnab.table4_runs("smoke")
    ours4 = arnab.table4_ours(runs4)
    assert set(ours4) == {r.id for r in TABLES["arnab2017.table4"].rows}
    # piecewise cannot change Q; "before" is the untrained instance subnetwork on the same Q
    pw = arnab.run_eval(arnab.eval_config(arnab.train_config("smoke", "voc", "box+global+shape", "pw")))
    assert pw.metrics["semantic_miou"] == pytest.approx(runs4["voc-before"].metrics["semantic_miou"])
    res = arnab.run_sweep(arnab.sweep_config("smoke"))
    frame = arnab.sweep_frame(res)
    assert list(frame.index) == res.metrics["settings"] and len(frame) == 10
    summary = arnab.sweep_summary(res)
    assert list(summary.columns) == ["ours falls by", "paste the box falls by", "ours falls less"]
    # the tables' detector setting inside the sweep equals the plain evaluation of the same network
    plain = arnab.run_eval(arnab.eval_config(arnab.train_config("smoke", "voc", "box+global+shape", "e2e")))
    key = f"jitter={arnab.DETECTOR.jitter:g}"
    assert res.metrics["ours"][key]["ap_r_vol"] == pytest.approx(plain.metrics["ap_r_vol"])


def test_table2_sets_the_books_pfn_beside_ours_on_the_same_images(smoke):
    pfn = arnab.pfn_row("smoke")
    assert set(pfn) == set(TABLES["arnab2017.table2"].value_columns)
    ours = arnab.table2_ours(smoke["box+global+shape-e2e"], pfn)
    assert set(ours) == {"ours", "pfn"}
    results = check_claims(TABLES["arnab2017.table2"], ours)
    assert [r.claim.id for r in results] == ["ahead-of-pfn-0.7", "ahead-of-pfn-0.8", "ahead-of-pfn-0.9"]
    assert all(r.verdict != "not run" for r in results)
    assert {r.verdict for r in check_claims(TABLES["arnab2017.table2"], arnab.table2_ours(smoke["box-pw"]))} == {"not run"}


# --------------------------------------------------------------------------- Table 5 (Cityscapes)
def test_background_from_stuff_sums_the_stuff_channels_and_keeps_the_rest():
    from instseg_lib.grouping import background_from_stuff

    q = torch.softmax(torch.randn(1, 5, 3, 4), 1).requires_grad_(True)
    out = background_from_stuff(q, [0, 2, 3])
    assert torch.allclose(out[:, 0], q[:, 0] + q[:, 2] + q[:, 3])
    assert torch.equal(out[:, 1:], q[:, 1:])  # the instance classes' channels, unchanged
    out[:, 0].sum().backward()
    assert torch.equal(q.grad[0, :, 0, 0], torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match="stuff_ids must be channels of Q"):
        background_from_stuff(q, [5])


def test_label_0_is_background_on_voc_and_the_summed_stuff_on_cityscapes():
    from instseg_lib.data.classes import CITYSCAPES_CLASSES, CITYSCAPES_THING_CLASSES, VOC_CLASSES

    assert arnab.stuff_ids_for(VOC_CLASSES) is None
    stuff = arnab.stuff_ids_for(CITYSCAPES_CLASSES)
    assert len(stuff) == 11 and not {CITYSCAPES_CLASSES[i] for i in stuff} & set(CITYSCAPES_THING_CLASSES)
    assert arnab.semantic_config("smoke", "cityscapes").depth == 101  # §4.7: a ResNet-101 semantic network
    assert arnab.semantic_config("smoke", "voc").depth == 50


def test_cityscapes_false_positives_take_an_instance_class():
    from instseg_lib.data import open_dataset
    from instseg_lib.data.classes import CITYSCAPES_THING_CLASSES
    from instseg_lib.detections import ControlledDetectorConfig, controlled_detections_for

    try:
        val = open_dataset("cityscapes", "val", profile="smoke")
    except MissingDatasetError as exc:  # pragma: no cover
        pytest.skip(str(exc))
    cfg = ControlledDetectorConfig(miss_rate=0.0, fp_rate=5.0)
    things = {i for i, n in enumerate(val.class_names) if n in CITYSCAPES_THING_CLASSES}
    classes = [d.class_id for i in range(len(val)) for d in controlled_detections_for(val[i], cfg)]
    assert len(classes) > sum(val[i].num_instances for i in range(len(val)))  # false positives were drawn
    assert set(classes) <= things


def test_cityscapes_ap_of_the_ground_truth_is_100_and_of_nothing_is_0():
    from instseg_lib.data import open_dataset

    try:
        val = open_dataset("cityscapes", "val", profile="smoke")
    except MissingDatasetError as exc:  # pragma: no cover
        pytest.skip(str(exc))
    perfect, empty = arnab._CityscapesAP(val[0].size), arnab._CityscapesAP(val[0].size)
    for i in range(len(val)):
        s = val[i]
        gt = arnab.gt_instance_masks(s)
        perfect.add(s, gt, gt, np.asarray(s.instance_classes), np.ones(len(gt)))
        empty.add(s, gt, np.zeros((0, *s.size), bool), np.zeros(0, np.int64), np.zeros(0))
    assert perfect.compute()["cs_ap"] == pytest.approx(100.0) and empty.compute()["cs_ap"] == 0.0


def test_smoke_table5_fills_ap_and_ap50_and_leaves_the_distance_columns_empty(smoke):
    runs = arnab.table5_runs("smoke")
    ours = arnab.table5_ours(runs)
    assert set(ours) == {"ours"} and set(ours["ours"]) == set(TABLES["arnab2017.table5"].value_columns)
    assert ours["ours"]["AP 100m"] is None and ours["ours"]["AP 50m"] is None
    assert all(0.0 <= runs[k].metrics[m] <= 100.0 for k in runs for m in ("cs_ap", "cs_ap50"))
    assert runs["ours"].config["train"]["semantic"]["depth"] == 101
    assert "not computable" in arnab.table5_provenance(runs).dataset
    assert list(arnab.table5_frame(runs).index) == ["ours", "paste the box"]
