"""Liang et al. 2015 (PFN) recipe: configs per table row, the §3.3 test stage on hand-built
inputs (clamps, empty maps, NaN refused), the cache serving the test-time rows, and one
smoke-scale run end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instseg_lib.data.errors import MissingDatasetError
from instseg_lib.papers import TABLES
from instseg_lib.papers.schema import check_claims
from instseg_lib.recipes import liang2015 as pfn


# --------------------------------------------------------------------------- configs
def test_every_table_row_has_a_config_and_rows_name_what_they_train():
    ours = {r.id for t in ("liang2015.table1", "liang2015.table2") for r in TABLES[t].rows if r.ours}
    assert ours <= set(pfn.ROWS)
    names = {rid: pfn.eval_config("smoke", rid).train.name for rid in pfn.ROWS}
    assert names["pfn"] == "pfn-vgg16-pfn6"
    assert names["pfn-alexnet"] == "pfn-alexnet-pfn6"
    assert names["pfn-unified"] == "pfn-vgg16-pfn6-unified"
    assert names["pfn-offsets2"] == "pfn-vgg16-offsets2"
    assert names["pfn-wo-category"] == "pfn-vgg16-pfn6-numlocations"
    assert names["pfn-wo-instance"] == "pfn-vgg16-pfn6-numcategory"
    assert names["pfn-from-imagenet"] == "pfn-vgg16-pfn6-from-imagenet"
    # the testing-strategy rows and the upper bounds reuse the PFN net: same training config
    for rid in ("pfn-wo-coords", "pfn-wo-classify-size", "pfn-wo-size", "pfn-wo-classify", "pfn-ub-instnum",
                "pfn-ub-instloc"):
        cfg = pfn.eval_config("smoke", rid)
        assert cfg.train == pfn.eval_config("smoke", "pfn").train, rid
        assert cfg.name != pfn.eval_config("smoke", "pfn").name, rid
    # every other training row trains a network of its own
    trained = [r for r, (tr, _) in pfn.ROWS.items() if tr]
    assert len({names[r] for r in trained} | {names["pfn"]}) == len(trained) + 1


def test_two_stage_rows_start_from_the_category_net_and_unified_does_not():
    main = pfn.eval_config("smoke", "pfn").train
    assert main.category == pfn.category_config("smoke", "vgg16") and main.category.dataset == "sbd"
    assert pfn.eval_config("smoke", "pfn-alexnet").train.category.arch == "alexnet"
    uni = pfn.eval_config("smoke", "pfn-unified").train
    assert uni.category is None and uni.unified and uni.net(20).unified_classes == 21
    assert pfn.eval_config("smoke").dataset == "voc"  # trained on the SBD twin, tested on the VOC twin
    with pytest.raises(ValueError, match="unified"):
        pfn.InstanceConfig(**{**vars(uni), "category": main.category}).validate()
    with pytest.raises(ValueError, match="location_variant"):
        pfn.instance_config("smoke", location_variant="corners3")
    with pytest.raises(ValueError, match="numbers"):
        pfn.TestSettings(numbers="oracle").validate()
    with pytest.raises(KeyError, match="no PFN row"):
        pfn.eval_config("smoke", "pfn-best")


def test_every_row_config_builds_a_network_of_the_right_shape():
    x = torch.zeros(1, 3, 48, 48)
    for rid in ("pfn", "pfn-offsets2", "pfn-plus-tr-bl10", "pfn-wo-multiscale", "pfn-fusing-sum",
                "pfn-wo-category", "pfn-unified", "pfn-alexnet"):
        cfg = pfn.eval_config("smoke", rid).train
        net = pfn.PFN(cfg.net(20)).eval()
        out = net.predict(x)
        d = {"pfn-offsets2": 2, "pfn-plus-tr-bl10": 10}.get(rid, 6)
        assert out["locations"].shape == (1, d, 48, 48), rid
        assert out["numbers"].shape == (1, 20), rid
        assert ("semantic" in out) == (rid == "pfn-unified"), rid


def test_plan_marks_rows_outside_the_budget_not_run_with_the_reason():
    rows = {pr.row_id: pr for pr in pfn.plan("cpu")}
    assert set(rows) == set(pfn.ROWS)
    trained = set(pfn.TRAINED_ROWS["cpu"])
    for rid, pr in rows.items():
        needs = rid if pfn.ROWS[rid][0] else "pfn"
        assert (pr.not_run == "") == (needs in trained), rid
        if pr.not_run:
            assert "cpu profile" in pr.not_run and "budget" in pr.not_run
    assert all(not pr.not_run for pr in pfn.plan("gpu"))


# --------------------------------------------------------------------------- the test stage
def _probs(labels: np.ndarray, classes: int = 21) -> np.ndarray:
    p = np.full((classes, *labels.shape), 0.01, np.float32)
    for c in range(classes):
        p[c][labels == c] = 0.9
    return p


def _two_boxes():
    """Two class-1 instances side by side (a 20 x 40 map) with their exact 6-d locations."""
    inst = np.zeros((20, 40), np.int32)
    inst[4:16, 2:18] = 1
    inst[4:16, 22:38] = 2
    lab = np.where(inst > 0, 1, 0)
    t = pfn.pfn_instance_targets(inst, "pfn6", "absolute")["locations"]
    return inst, lab, t


def test_group_image_separates_two_instances_with_their_true_locations():
    inst, lab, t = _two_boxes()
    numbers = np.zeros(20)
    numbers[0] = 2.2
    out = pfn.group_image(_probs(lab), t, numbers, pfn.TestSettings(max_pixels=1000), image_id="img-a")
    assert len(out.masks) == 2 and out.classes.tolist() == [1, 1]
    found = sorted(tuple(np.unique(inst[m.numpy()])) for m in out.masks)
    assert found == [(1,), (2,)]  # each cluster is exactly one instance
    # score: the mean category probability over the cluster (0.9 here)
    assert out.scores.numpy() == pytest.approx([0.9, 0.9], abs=1e-3)


def test_counts_are_clamped_to_one_and_to_the_pixels_and_recorded():
    lab = np.zeros((6, 6), np.int64)
    lab[0, 0:3] = 2  # three pixels of class 2
    lab[4:6, 4:6] = 5  # four pixels of class 5
    numbers = np.zeros(20)
    numbers[1] = 9.0  # class 2: 9 instances predicted on 3 pixels -> 3
    numbers[4] = 0.2  # class 5: present in the map, number rounds to 0 -> 1
    numbers[7] = 3.0  # class 8: not in the map -> no clusters
    rec = pfn.ClampRecord()
    k = pfn.cluster_counts(lab, numbers, 20, rec)
    assert k[1] == 3 and k[4] == 1 and k[7] == 0 and k.sum() == 4
    assert rec.as_dict() == {"masks": 2, "raised_to_one": 1, "capped_at_pixels": 1}
    # round half up (tau = 0.5): 1.5 -> 2, 1.49 -> 1
    assert pfn.cluster_counts(lab, np.r_[0, 1.5, np.zeros(18)], 20)[1] == 2
    assert pfn.cluster_counts(lab, np.r_[0, 1.49, np.zeros(18)], 20)[1] == 1
    with pytest.raises(ValueError, match="class 30"):
        pfn.cluster_counts(np.full((2, 2), 30), None, 20)


def test_no_foreground_gives_no_instances():
    lab = np.zeros((10, 12), np.int64)
    out = pfn.group_image(_probs(lab), np.zeros((6, 10, 12), np.float32), np.full(20, 3.0), pfn.TestSettings(),
                          image_id="empty")
    assert out.masks.shape == (0, 10, 12) and len(out.scores) == 0


def test_nan_locations_are_refused_naming_the_image():
    inst, lab, t = _two_boxes()
    t = t.copy()
    t[2, 5, 5] = np.nan
    with pytest.raises(ValueError, match=r"image 2008_000123: 1 of the predicted instance locations are NaN"):
        pfn.group_image(_probs(lab), t, np.ones(20), pfn.TestSettings(), image_id="2008_000123")
    with pytest.raises(ValueError, match="image x7: the predicted instance numbers"):
        pfn.group_image(_probs(lab), np.zeros_like(t), np.full(20, np.nan), pfn.TestSettings(), image_id="x7")


def test_classify_refinement_relabels_a_confused_class():
    """§3.3: with one class predicted present, pixels of another object class become it."""
    inst, lab, t = _two_boxes()
    lab = lab.copy()
    lab[inst == 2] = 3  # the second instance is mislabelled as class 3
    numbers = np.zeros(20)
    numbers[0] = 2.0
    on = pfn.group_image(_probs(lab), t, numbers, pfn.TestSettings(max_pixels=1000), image_id="r")
    off = pfn.group_image(_probs(lab), t, numbers, pfn.TestSettings(refine=False, max_pixels=1000), image_id="r")
    assert sorted(on.classes.tolist()) == [1, 1]
    # w/o classify: class 3 keeps its own (clamped) cluster, and class 1 splits its one instance in two
    assert sorted(off.classes.tolist()) == [1, 1, 3]


def test_gt_locations_replace_the_prediction_on_instances_only():
    inst, lab, t = _two_boxes()

    class S:
        instances = inst

    pred = np.full_like(t, 0.5)
    out = pfn._gt_locations(S(), pred, "pfn6", "absolute")
    fg = inst > 0
    np.testing.assert_array_equal(out[:, fg], t[:, fg])
    assert (out[:, ~fg] == 0.5).all()


# --------------------------------------------------------------------------- smoke run
@pytest.fixture(scope="module")
def smoke():
    try:
        return pfn.evaluations("smoke"), pfn.seed_runs("smoke")
    except MissingDatasetError as exc:  # pragma: no cover - make test generates the smoke twin first
        pytest.skip(str(exc))


def test_smoke_run_fills_the_three_tables(smoke):
    res, runs = smoke
    assert set(res) == {pr.row_id for pr in pfn.plan("smoke") if not pr.not_run}
    t1, t2, t3 = pfn.table1_ours(res), pfn.table2_ours(res), pfn.table3_ours(res)
    classes = set(TABLES["liang2015.table1"].value_columns)
    for rows in (t1, t2, t3):
        for rid, cells in rows.items():
            assert set(cells) <= classes and "mean" in cells, rid
            assert all(v is None or 0.0 <= v <= 100.0 for v in cells.values()), rid
    assert set(t2) <= {r.id for r in TABLES["liang2015.table2"].rows}
    assert set(t3) == {f"{r}@{t}" for r in ("pfn", "pfn-alexnet") for t in ("0.6", "0.7", "0.8", "0.9")}
    m = res["pfn"].metrics
    # AP^r_vol is the mean over the nine thresholds
    assert m["vol"]["mean"] == pytest.approx(np.mean([m["ap"][f"{t / 10:g}"]["mean"] for t in range(1, 10)]))
    assert len(runs) == 2 and runs[0].metrics == res["pfn"].metrics
    n = pfn.noise(runs)
    assert n.z == pytest.approx(12.706, abs=1e-3) and n.chance["mean"] == 0.0
    verdicts = {r.claim.id: r.verdict for r in check_claims(TABLES["liang2015.table1"], t1, n)}
    assert verdicts["pfn-beats-pfn-separate-ft"] == "not run"  # not trained in the smoke/cpu budget
    assert verdicts["vgg-beats-alexnet"] != "not run"


def test_test_time_rows_reuse_the_cached_network(smoke):
    res, _ = smoke
    train = pfn.run_train(pfn.eval_config("smoke", "pfn").train)
    assert train.cached  # trained once, for the main row
    for rid in ("pfn-wo-coords", "pfn-wo-size", "pfn-ub-instnum", "pfn-ub-instloc"):
        assert pfn.run_train(pfn.eval_config("smoke", rid).train).path == train.path
        assert res[rid].path != res["pfn"].path
    again = pfn.run_eval(pfn.eval_config("smoke", "pfn-wo-size"))
    assert again.cached and again.metrics == res["pfn-wo-size"].metrics


def test_smoke_frames_and_provenance(smoke):
    res, runs = smoke
    assert list(pfn.training_frame(res).index)[0] == "pfn-vgg16-pfn6"
    clamps = pfn.clamp_frame(res)
    assert (clamps["raised_to_one"] <= clamps["masks"]).all()
    assert set(pfn.category_frame("smoke").index) == {"pfn-category-vgg16-sbd", "pfn-category-alexnet-sbd"}
    prov = pfn.provenance_for(res, runs)
    assert prov.profile == "smoke" and prov.wall_seconds > 0 and "SBD twin" in prov.dataset
    text = pfn.text_claims_frame(res, pfn.noise(runs), pfn.plan("smoke"))
    assert text["verdict"].tolist() == ["not run"] and "budget" in text["ours"][0]


def test_category_maps_are_computed_once_per_category_net(smoke, monkeypatch):
    """The CRF'd category maps depend on the category net only: every instance net fine-tuned
    from it, and every test-time row, reuses them within a process."""
    calls = []
    orig = pfn.category_probabilities
    monkeypatch.setattr(pfn, "category_probabilities", lambda *a, **k: calls.append(1) or orig(*a, **k))
    pfn._CATEGORY_MAPS.clear()
    pfn._PREDICTIONS.clear()
    n = 2
    for rid in ("pfn", "pfn-alexnet", "pfn-offsets2", "pfn-wo-size"):
        preds = pfn._predictions(pfn.eval_config("smoke", rid), "cpu", n)
        assert len(preds) == n and preds[0].probs.shape[0] == 21
    assert len(calls) == 2 * n  # the VGG-16 maps once (three rows share them), the AlexNet maps once
    pfn._CATEGORY_MAPS.clear()
    pfn._PREDICTIONS.clear()


def test_separate_finetune_trains_only_the_number_branch_second(smoke):
    """'PFN separate finetune': stage 1 trains locations (no number loss), stage 2 the number
    branch alone; the trunk and the location layers leave stage 2 as stage 1 left them."""
    from instseg_lib.experiments import load_checkpoint

    cfg = pfn.eval_config("smoke", "pfn-separate-ft").train
    res = pfn.run_train(cfg)
    final = load_checkpoint(res.path.with_suffix(".pt"), map_location="cpu")["model"]
    stage1 = load_checkpoint(res.path.with_name(res.path.stem + ".stage1.pt"), map_location="cpu")["model"]
    assert set(final) == set(stage1)
    for k in final:
        same = torch.equal(final[k], stage1[k])
        assert same != k.startswith("number_branch."), k  # only the number branch moved
    assert res.metrics["final_number_loss"] is not None
    assert pfn.load_instance_model(cfg).config.number_features == "both"


def test_the_imagenet_init_row_trains_from_the_stand_in(smoke):
    res = pfn.run_train(pfn.eval_config("smoke", "pfn-from-imagenet").train)
    assert res.provenance["notes"]["init"]["init"] in ("stand-in", "imagenet")
    main = pfn.run_train(pfn.eval_config("smoke", "pfn").train)
    assert main.provenance["notes"]["init"]["init"] == "category net"


# --------------------------------------------------------------------------- figures' selection rules (Figs. 4, 5, 7)
def test_group_steps_keeps_the_maps_and_gives_group_image_s_instances():
    inst, lab, t = _two_boxes()
    lab = lab.copy()
    lab[inst == 2] = 3  # mislabelled: the 'one' strategy turns it into class 1
    numbers = np.zeros(20)
    numbers[0] = 2.0
    test = pfn.TestSettings(max_pixels=1000)
    st = pfn.group_steps(_probs(lab), t, numbers, test, image_id="s", seed=3)
    out = pfn.group_image(_probs(lab), t, numbers, test, image_id="s", seed=3)
    np.testing.assert_array_equal(st.labels, lab)
    assert set(np.unique(st.refined).tolist()) == {0, 1} and (st.refined[inst == 2] == 1).all()
    assert st.counts[0] == 2 and st.counts.sum() == 2
    assert torch.equal(st.instances.masks, out.masks) and torch.equal(st.instances.scores, out.scores)
    off = pfn.group_steps(_probs(lab), t, numbers, pfn.TestSettings(refine=False, max_pixels=1000))
    np.testing.assert_array_equal(off.refined, off.labels)


def test_refinement_strategy_follows_the_numbers_above_tau():
    assert pfn.refinement_strategy(np.r_[0.6, 0.7, np.zeros(18)]) == "several"
    assert pfn.refinement_strategy(np.r_[0.6, 0.5, np.zeros(18)]) == "one"  # 0.5 is not above τ
    assert pfn.refinement_strategy(np.zeros(20)) is None


class _S:
    """A stand-in val sample: instances, their classes and boxes."""

    num_classes = 21

    def __init__(self, instances, classes):
        from instseg_lib.data.sample import boxes_from_instances

        self.instances = instances.astype(np.int32)
        self.instance_classes = np.asarray(classes, np.int64)
        self.num_instances = len(classes)
        self.boxes = boxes_from_instances(self.instances, self.num_instances)


def _pred(lab, numbers):
    return pfn.Prediction(_probs(lab).astype(np.float16), np.zeros((6, *lab.shape), np.float32), np.asarray(numbers))


def test_refinement_cases_take_the_first_changed_image_per_strategy_and_fall_back_to_gt_numbers():
    lab = np.zeros((8, 8), np.int64)
    lab[2:5, 2:5] = 15
    inst = np.zeros((8, 8), np.int64)
    inst[1:4, 1:4] = 1
    one_present = np.zeros(20)
    one_present[14] = 1.0  # person only: nothing to change in a person-only map
    val = [_S(inst, [9]), _S(inst, [9]), _S(inst, [15])]
    preds = [_pred(lab, one_present)] * 3
    cases = pfn.refinement_cases(val, preds)
    # predicted numbers never change the map; the ground truth 'chair' (one class) does, first at image 0
    assert cases == {"several": None, "one": (0, "gt")}
    several = np.zeros(20)
    several[[1, 5]] = 1.0
    preds = [_pred(lab, one_present), _pred(lab, several), _pred(lab, several)]
    assert pfn.refinement_cases(val, preds)["several"] == (1, "predicted")


def test_cluster_sizes_mark_clusters_under_a_thousandth_of_their_mask():
    sizes = pfn.ClusterSizes(image=np.array([0, 0, 2, 3]), cls=np.array([15, 15, 15, 9]),
                             pixels=np.array([3000, 2, 500, 4]), mask=np.array([3002, 3002, 500, 5000]),
                             fraction=1e-3)
    assert sizes.dropped.tolist() == [False, True, False, True]  # 2 < 3.002, 4 < 5.0
    assert pfn.size_constraint_case(sizes) == (0, True)
    kept = pfn.ClusterSizes(image=np.array([1, 2]), cls=np.array([15, 15]), pixels=np.array([400, 30]),
                            mask=np.array([400, 60]), fraction=1e-3)
    assert pfn.size_constraint_case(kept) == (2, False)  # the cluster smallest against its mask
    empty = pfn.ClusterSizes(*(np.zeros(0, np.int64),) * 4, fraction=1e-3)
    assert pfn.size_constraint_case(empty) == (None, False)


def test_failure_cases_pick_overlap_and_small_instances_by_the_ground_truth():
    a = np.zeros((40, 40), np.int64)
    a[0:20, 0:20], a[5:25, 10:30] = 1, 2  # two overlapping boxes of one class
    b = np.zeros((40, 40), np.int64)
    b[0:10, 0:10], b[20:29, 20:29] = 1, 2  # 100 and 81 pixels, apart
    c = np.zeros((40, 40), np.int64)
    c[0:30, 0:30], c[35, 35] = 1, 2  # a one-pixel remnant (under 64 pixels) and a large one
    val = [_S(b, [3, 3]), _S(a, [7, 7]), _S(c, [5, 5])]
    assert pfn.occlusion_score(val[1]) == 1 and pfn.occlusion_score(val[0]) == 0
    assert pfn.failure_cases(val, 3) == {"occlusion": 1, "small": 0}  # 81 px, not the 1-px remnant
    assert pfn.failure_cases(val[:1], 1) == {"occlusion": 0, "small": 0}  # one image: both rows on it
