"""BoxSup (Dai et al. 2015) recipe: the semi split, config normalisation and the table builders
by hand, the update's fallbacks and refusals, and smoke runs end to end (labels updated each
round and logged, resumption after a kill without recomputing finished rounds, baselines that
never update, BoxSup+ as a separate evaluation).

The selection rules themselves ("argmin" picks the argmin, "sample" picks among the 5 lowest
costs) are tested with the library, ``tests/test_boxsup.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from instseg_lib.data import Sample
from instseg_lib.data.errors import MissingDatasetError
from instseg_lib.experiments import config_hash
from instseg_lib.papers import TABLES
from instseg_lib.proposals import Candidates
from instseg_lib.recipes import dai2015 as d

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- semi split
def test_semi_split_by_hand():
    assert len(d.semi_mask_indices(10582)) == 1464  # the paper's 1,464 of 10,582
    assert len(d.semi_mask_indices(800)) == 110  # cpu twin: 13.75 %
    np.testing.assert_array_equal(d.semi_mask_indices(8), [7])  # smoke twin: one image
    np.testing.assert_array_equal(d.semi_mask_indices(30), [7, 14, 21, 28])
    assert len(d.semi_mask_indices(7)) == 0
    assert [d.semi_keeps_mask(i) for i in range(8)] == [False] * 7 + [True]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 20000), st.integers(0, 500))
def test_semi_split_is_a_prefix_rule_of_the_right_size(n, extra):
    """Adding images never changes which earlier ones keep masks; the count is floor(n a / b)."""
    a, b = d.SEMI_FRACTION
    idx = d.semi_mask_indices(n)
    assert len(idx) == n * a // b
    more = d.semi_mask_indices(n + extra)
    np.testing.assert_array_equal(more[more < n], idx)
    if n:
        assert abs(len(idx) / n - a / b) <= 1 / n  # ~13.8 %
        # evenly spread: consecutive kept images are 7 or 8 apart (10582 / 1464 = 7.23)
        assert set(np.diff(idx).tolist()) <= {7, 8}


# --------------------------------------------------------------------------- configs
def test_configs_drop_what_does_not_apply_and_name_what_they_train():
    t1 = d.table1_configs("smoke")
    mask = t1["voc-mask"]
    assert (mask.estimate, mask.selection, mask.proposals, mask.proposal_configs) == ("", "", "", ())
    assert mask.updates == 0 and mask.supervision == "mask" and mask.name == "boxsup-voc-mask"
    assert t1["voc-box"].name == "boxsup-voc-box-ss4slic-sample" and t1["voc-box"].supervision == "box"
    assert t1["voc-semi"].supervision == "semi" and t1["coco-semi"].supervision == "semi"
    assert t1["coco-semi"].name == "boxsup-voc-mask-coco-box-ss4slic-sample"
    assert t1["coco-mask"].name == "boxsup-voc-mask-coco-mask"
    rect = d.boxsup_config("smoke", [("voc", "box")], estimate="rectangles", selection="argmin", proposals="ss1")
    assert (rect.selection, rect.proposals, rect.updates, rect.name) == ("", "", 1, "boxsup-voc-box-rectangles")
    assert t1["voc-box"].updates == t1["voc-box"].rounds == d.ROUNDS["smoke"]
    assert d.boxsup_config("smoke", [("voc", "box")], seed=2).name.endswith("-seed2")
    cpu = d.table1_configs("cpu")["voc-box"]
    assert (cpu.rounds, cpu.steps_per_round, cpu.steps, cpu.update_scale) == (5, 100, 500, 0.375)


@pytest.mark.parametrize("kw, match", [
    ({"sources": (("boxes", "mask"),)}, "no masks"),
    ({"sources": (("sbd", "box"),)}, "unknown training set"),
    ({"sources": (("voc", "boxes"),)}, "unknown supervision"),
    ({"selection": "largest"}, "unknown selection"),
    ({"proposals": "mcg"}, "unknown proposal setting"),
    ({"estimate": "crf"}, "mask estimate"),
    ({"rounds": 0}, "positive"),
    ({"update_scale": 0.0}, "update_scale"),
])
def test_impossible_configs_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        replace(d.table1_configs("smoke")["voc-box"], **kw)


def test_mask_only_configs_take_no_box_settings():
    with pytest.raises(ValueError, match="mask-only"):
        replace(d.table1_configs("smoke")["voc-mask"], estimate="boxsup")


@pytest.mark.parametrize("number", [1, 2, 3])
def test_table_builders_return_exactly_the_transcribed_ours_rows(number):
    table = TABLES[f"dai2015.table{number}"]
    builder = getattr(d, f"table{number}_configs")
    for profile in ("smoke", "cpu", "gpu"):
        cfgs = builder(profile)
        assert set(cfgs) == {r.id for r in table.rows if r.ours}
        assert all(c.profile == profile for c in cfgs.values())
    assert d.MIOU in table.value_columns


def test_configs_that_coincide_across_tables_are_one_config():
    for profile in ("smoke", "cpu"):
        t1, t2, t3 = d.table1_configs(profile), d.table2_configs(profile), d.table3_configs(profile)
        assert t1["voc-box"] == t2["ours"] == t3["mcg"]
        assert config_hash(t1["voc-box"]) == config_hash(t3["mcg"])
        every = [*t1.values(), *t2.values(), *t3.values()]
        distinct = {config_hash(c): c.name for c in every}
        assert len(distinct) == 5 + 3 + 2  # Table 1, Table 2 minus ours, Table 3 minus mcg
        assert len(set(distinct.values())) == len(distinct)  # names tell the runs apart
    t3 = d.table3_configs("smoke")
    assert {rid: c.proposals for rid, c in t3.items()} == {"ss": "ss1", "gop": "ss4", "mcg": "ss4slic"}
    t2 = d.table2_configs("smoke")
    assert t2["ours-no-sampling"].selection == "argmin" and t2["ours"].selection == "sample"
    assert {t2["rectangles"].estimate, t2["grabcut"].estimate} == {"rectangles", "grabcut"}


def test_proposal_settings_are_nested():
    """Table 3's settings are nested (one SS strategy < four < four + SLIC-merging)."""
    s = d.PROPOSAL_SETTINGS
    assert set(s["ss1"][0][1].colour_spaces) <= set(s["ss4"][0][1].colour_spaces)
    assert set(s["ss1"][0][1].similarities) <= set(s["ss4"][0][1].similarities)
    assert s["ss4"][0] == s["ss4slic"][0] and s["ss4slic"][1][0] == "slic_merge"


def test_training_items_follow_the_supervision():
    t1 = d.table1_configs("smoke")
    items = d.training_items(t1["voc-semi"], [30])
    assert [it.index for it in items if it.mode == "mask"] == [7, 14, 21, 28]
    items = d.training_items(t1["coco-semi"], [3, 2])
    assert [(it.source, it.mode) for it in items] == [(0, "mask")] * 3 + [(1, "box")] * 2
    assert {it.mode for it in d.training_items(t1["voc-mask"], [5])} == {"mask"}


def test_ours_maps_results_to_the_table_column():
    class R:
        def __init__(self, v):
            self.metrics = {"miou": v, "miou_nocrf": v - 1}

    got = d.ours({"voc-box": R(12.5), "voc-mask": R(20.0)})
    assert got == {"voc-box": {"mean IoU": 12.5}, "voc-mask": {"mean IoU": 20.0}}
    assert d.ours({"x": R(3.0)}, key="miou_nocrf") == {"x": {"mean IoU": 2.0}}


def test_crf_widths_scale_with_the_image_and_keep_one_pixel():
    crf = d.CRFSettings()
    assert crf.widths((500, 375)) == pytest.approx((121.0, 3.0))
    ta, tg = crf.widths((128, 192))
    assert ta == pytest.approx(121 * 192 / 500) and tg == pytest.approx(3 * 192 / 500)  # 1.15 px: kept
    assert crf.widths((48, 72))[1] == 1.0  # 0.43 px clamped


# --------------------------------------------------------------------------- the update, by hand
def _box_sample(boxes, classes, h=12, w=16, image=None) -> Sample:
    image = np.zeros((h, w, 3), np.uint8) if image is None else image
    return Sample(image=image, semantic=np.full((h, w), 255, np.uint8), instances=np.zeros((h, w), np.int32),
                  instance_classes=np.asarray(classes, np.int64), boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
                  image_id="img7", num_classes=21, class_names=tuple(str(i) for i in range(21)), has_masks=False)


def test_a_box_no_candidate_overlaps_falls_back_to_its_rectangle():
    h, w = 12, 16
    left = np.zeros((h, w), bool)
    left[:, :5] = True
    cands = Candidates.from_masks(left[None])
    boxes = np.array([[1, 1, 4, 6], [9, 2, 15, 10]], float)  # the second is far from the only candidate
    out, n = d._with_rectangle_fallback(cands, boxes, (h, w))
    assert n == 1 and len(out) == 2
    rect = np.zeros((h, w), bool)
    rect[2:10, 9:15] = True
    assert any((m == rect).all() for m in out.masks())
    out, n = d._with_rectangle_fallback(Candidates.from_masks(np.zeros((0, h, w), bool)), boxes, (h, w))
    assert n == 2 and len(out) == 2


@pytest.mark.parametrize("boxes, classes, match", [
    ([[3, 3, 3, 8]], [5], "no area"),
    ([[40, 40, 50, 50]], [5], "no area"),
    ([[1, 1, 5, 5]], [33], "class id 33"),
])
def test_bad_boxes_are_refused_naming_the_image(boxes, classes, match):
    cfg = replace(d.table2_configs("smoke")["rectangles"])
    with pytest.raises(ValueError, match=f"voc twin image img7: .*{match}"):
        d.estimate_labels(cfg, _box_sample(boxes, classes), "voc", 0, 0, None, "cpu")


def test_baseline_estimates_by_hand():
    s = _box_sample([[2, 2, 10, 8]], [4])
    lab, info = d.estimate_labels(d.table2_configs("smoke")["rectangles"], s, "voc", 0, 0, None, "cpu")
    want = np.zeros((12, 16), np.uint8)
    want[2:8, 2:10] = 4
    np.testing.assert_array_equal(lab, want)
    # GrabCut on a blank image finds no foreground: the rectangle, counted as a fallback
    lab, info = d.estimate_labels(d.table2_configs("smoke")["grabcut"], s, "voc", 0, 0, None, "cpu")
    assert sum(info["grabcut"].values()) == 1
    np.testing.assert_array_equal(lab, want)


class _GridNet(torch.nn.Module):
    """A stand-in for DeepLab: stride-8 scores from 8 x 8 means of the input, a fixed 1x1 mix."""

    def __init__(self, num_classes: int = 21) -> None:
        super().__init__()
        self.mix = torch.nn.Conv2d(3, num_classes, 1)
        with torch.no_grad():
            self.mix.weight.copy_(torch.randn(num_classes, 3, 1, 1, generator=torch.Generator().manual_seed(0)) * 3)
            self.mix.bias.zero_()

    def forward_features(self, x):
        return self.mix(torch.nn.functional.avg_pool2d(x, 8))


class _Source(list):
    num_classes = 21


def _image_with_objects(h, w, seed):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 60, (h, w, 3)).astype(np.uint8)
    img[2:h // 2, 3:w // 2] = (220, 40, 40)
    img[h // 2:h - 2, w // 2:w - 3] = (40, 40, 220)
    return img


def test_the_batched_update_is_the_one_image_update_round_after_round(monkeypatch):
    """update_labels (same-size images batched, each image prepared once and cached between
    rounds) gives every image the labels estimate_labels gives it alone, in every round; E_r
    is read from the stride-8 grid of the input at update_scale."""
    masks = {}

    def fake_candidates(sample, dataset, setting, profile):
        h, w = sample.size
        return masks.setdefault((h, w), Candidates.from_masks(np.stack([
            np.pad(np.ones((h // 2 - 2, w // 2 - 3), bool), ((2, h - h // 2), (3, w - w // 2))),
            np.pad(np.ones((h // 2 - 2, w - w // 2 - 3), bool), ((h // 2, 2), (w // 2, 3))),
            np.ones((h, w), bool), np.eye(h, w, dtype=bool) | np.eye(h, w, k=1, dtype=bool)])))

    monkeypatch.setattr(d, "candidates_for", fake_candidates)
    sizes = [(32, 48), (48, 32), (32, 48), (32, 48), (40, 40)]
    samples = []
    for i, (h, w) in enumerate(sizes):
        s = _box_sample([[3, 2, w // 2, h // 2], [w // 2, h // 2, w - 3, h - 2]], [5, 9], h, w,
                        image=_image_with_objects(h, w, i))
        samples.append(s.replace(image_id=f"img{i}"))
    cfg = replace(d.table1_configs("smoke")["voc-box"], update_scale=0.5, rounds=3)
    items = [d.Item(0, i, "box") for i in range(len(samples))]
    data = d.LabelledSet([_Source(samples)], items)
    net = _GridNet()
    cache = d.UpdateCache()
    for r in range(3):
        model = None if r == 0 else net
        labels, meta = d.update_labels(cfg, data, r, model, "cpu", r, cache)
        assert meta["n_images"] == 5 and meta["e_o_only"] == (r == 0) and meta["n_unscored"] == 5
        assert len(cache.entries) == 5 and cache.nbytes > 0
        fresh, _ = d.update_labels(cfg, data, r, model, "cpu", r)  # no cache: prepared from scratch
        for k, s in enumerate(samples):
            alone, _ = d.estimate_labels(cfg, s, "voc", r, k, model, "cpu")
            np.testing.assert_array_equal(labels[k], alone)
            np.testing.assert_array_equal(fresh[k], alone)
    # the grid: the input at update_scale 0.5 is 16 x 24, its stride-8 grid 2 x 3 (stride 16 px of the image)
    e = cache.entries[0]
    assert tuple(e.x.shape) == (3, 16, 24) and e.segment_weights.shape == (4, 6)
    g = d.update_grids(net, [e.x], "cpu")[0]
    assert tuple(g.shape) == (21, 2, 3)
    torch.testing.assert_close(g.exp().sum(0), torch.ones(2, 3))
    # a cache too small to keep anything still updates the same
    tiny = d.UpdateCache(max_bytes=0)
    again, _ = d.update_labels(cfg, data, 2, net, "cpu", 2, tiny)
    assert not tiny.entries and all(np.array_equal(again[k], labels[k]) for k in labels)


def test_batched_forward_passes_equal_one_image_ones():
    rng = torch.Generator().manual_seed(1)
    xs = [torch.randn(3, 16, 24, generator=rng) for _ in range(5)] + [torch.randn(3, 20, 12, generator=rng)]
    net = _GridNet()
    together = d.update_grids(net, xs, "cpu", batch=4)
    for x, g in zip(xs, together):
        torch.testing.assert_close(g, d.update_grids(net, [x], "cpu")[0], rtol=1e-5, atol=1e-5)
    assert tuple(together[-1].shape) == (21, 3, 2)  # 20 x 12 padded to 24 x 16


# --------------------------------------------------------------------------- smoke runs
SMALL = {"rounds": 3, "steps_per_round": 2}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke twin the suite uses (``make test`` generates it), results in a fresh folder."""
    root = tmp_path_factory.mktemp("dai")
    mp = pytest.MonkeyPatch()
    mp.setenv("INSTSEG_RESULTS", str(root / "results"))
    mp.setenv("INSTSEG_PROGRESS", "0")
    mp.delenv("FORCE", raising=False)
    mp.delenv("INSTSEG_FAULT_AFTER_STEP", raising=False)
    try:
        d.open_dataset("voc", "train", profile="smoke")
        d.open_dataset("coco", "train", profile="smoke")
    except MissingDatasetError as exc:  # pragma: no cover - make test generates the smoke twin first
        mp.undo()
        pytest.skip(str(exc))
    yield root
    mp.undo()


def _box_cfg(**kw):
    return replace(d.table1_configs("smoke")["voc-box"], **{**SMALL, **kw})


@pytest.fixture(scope="module")
def box_run(smoke):
    return d.run_boxsup(_box_cfg())


@pytest.mark.slow
def test_a_box_run_trains_updates_every_round_and_logs_one_miou_per_update(box_run):
    m = box_run.metrics
    cfg = _box_cfg()
    assert m["steps"] == 6 and len(m["loss_curve"]) == 6 and m["updates"] == 3
    log = m["label_log"]
    assert [e["round"] for e in log] == [0, 1, 2] and [e["step"] for e in log] == [0, 2, 4]
    assert [e["e_o_only"] for e in log] == [True, False, False]
    assert all(e["n_images"] == m["n_box_images"] == 8 and e["n_scored"] == 8 for e in log)
    assert all(e["label_miou"] is not None and 0 <= e["label_miou"] <= 100 for e in log)
    assert m["label_miou"] == [e["label_miou"] for e in log]
    assert all(e["update_seconds"] > 0 and e["train_seconds"] > 0 and e["train_steps"] == 2 for e in log)
    assert 0 <= m["miou"] <= 100 and 0 <= m["miou_nocrf"] <= 100 and m["n_eval_images"] == 4
    store = d.LabelStore(d.labels_folder(box_run.path))
    assert store.rounds() == [0, 1, 2]
    labels, meta = store.load(2)
    assert sorted(labels) == list(range(8)) and meta["round"] == 2
    assert box_run.provenance["notes"]["rounds_computed_in_this_process"] == [0, 1, 2]
    # the cache serves the identical config (Table 2's ours / Table 3's mcg) without training
    again = d.run_boxsup(cfg)
    assert again.cached and again.metrics["label_log"] == log
    frame = d.label_log_frame({"voc-box": again})
    assert len(frame) == 3 and frame["label mIoU %"].notna().all()


@pytest.mark.slow
def test_a_run_killed_mid_training_resumes_without_recomputing_finished_rounds(box_run, tmp_path, monkeypatch):
    """Kill after step 3 (round 1 of 3, after its update): the resumed run keeps rounds 0 and 1,
    recomputes only round 2 from the step-4 checkpoint, and ends where the uninterrupted run did."""
    from instseg_lib.pretrain import seg_pretrain_config, seg_standin_state

    results = tmp_path / "results"
    monkeypatch.setenv("INSTSEG_RESULTS", str(results))
    cfg = _box_cfg()
    # the stand-in pretraining (crop and segmentation stages) trains steps itself: run it here,
    # outside the killed process
    seg_standin_state(seg_pretrain_config("smoke", "vgg16"))
    env = {**os.environ, "INSTSEG_FAULT_AFTER_STEP": "3", "PROFILE": "smoke",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    code = ("from dataclasses import replace; from instseg_lib.recipes import dai2015 as d; "
            f"d.run_boxsup(replace(d.table1_configs('smoke')['voc-box'], **{SMALL!r}))")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -9, proc.stderr[-2000:]
    res_path, ckpt = d.result_paths(cfg)
    store = d.LabelStore(d.labels_folder(res_path))
    assert store.rounds() == [0, 1] and ckpt.exists() and not res_path.exists()
    stamps = {r: store.path(r).stat().st_mtime_ns for r in (0, 1)}
    resumed = d.run_boxsup(cfg)
    assert resumed.provenance["notes"]["rounds_computed_in_this_process"] == [2]
    assert {r: store.path(r).stat().st_mtime_ns for r in (0, 1)} == stamps
    a, b = resumed.metrics, box_run.metrics
    assert [e["label_miou"] for e in a["label_log"]] == [e["label_miou"] for e in b["label_log"]]
    for r in range(3):
        got, want = store.load(r)[0], d.LabelStore(d.labels_folder(box_run.path)).load(r)[0]
        assert all(np.array_equal(got[k], want[k]) for k in want)
    np.testing.assert_allclose([p[1] for p in a["loss_curve"]], [p[1] for p in b["loss_curve"]], rtol=1e-5)
    assert a["miou"] == pytest.approx(b["miou"])


@pytest.mark.slow
def test_a_forced_run_drops_the_labels_of_its_old_weights(box_run, smoke):
    cfg = _box_cfg()
    res_path, ckpt = d.result_paths(cfg)
    ckpt.unlink()  # as FORCE=1 does before rerunning
    store = d.LabelStore(d.labels_folder(res_path))
    stamp0 = store.path(0).stat().st_mtime_ns
    again = d.run_boxsup(cfg, force=True)
    assert again.provenance["notes"]["dropped_stale_rounds"] == [1, 2]
    assert again.provenance["notes"]["rounds_computed_in_this_process"] == [1, 2]
    assert store.path(0).stat().st_mtime_ns == stamp0  # round 0 (E_o alone) depends on the config only
    assert again.metrics["label_miou"] == box_run.metrics["label_miou"]


@pytest.mark.slow
@pytest.mark.parametrize("row", ["rectangles", "grabcut"])
def test_baselines_compute_labels_once_and_never_update(smoke, row):
    cfg = replace(d.table2_configs("smoke")[row], **SMALL)
    res = d.run_boxsup(cfg)
    m = res.metrics
    assert m["updates"] == 1 and len(m["label_log"]) == 1 and len(m["loss_curve"]) == 6
    assert m["label_log"][0]["e_o_only"] and m["label_log"][0]["train_steps"] == 6
    assert d.LabelStore(d.labels_folder(res.path)).rounds() == [0]


@pytest.mark.slow
def test_mask_and_semi_runs(smoke):
    mask = d.run_boxsup(replace(d.table1_configs("smoke")["voc-mask"], **SMALL))
    assert mask.metrics["updates"] == 0 and mask.metrics["n_box_images"] == 0 and len(mask.metrics["loss_curve"]) == 6
    assert not d.labels_folder(mask.path).exists()
    semi = d.run_boxsup(replace(d.table1_configs("smoke")["coco-semi"], **SMALL))
    assert semi.metrics["n_mask_images"] == 8 and semi.metrics["n_box_images"] == 8
    assert semi.metrics["updates"] == 3 and all(e["n_images"] == 8 for e in semi.metrics["label_log"])


@pytest.mark.slow
def test_boxsup_plus_is_a_separate_evaluation_of_the_same_model(box_run):
    plus = d.run_evaluation(d.boxsup_plus(_box_cfg()))
    assert plus.metrics["scales"] == [0.8, 1.0, 1.2] and 0 <= plus.metrics["miou"] <= 100
    assert plus.metrics["n_eval_images"] == 4
    single = d.run_evaluation(d.BoxSupEvalConfig(train=_box_cfg(), n_eval=4))
    assert single.metrics["miou"] == pytest.approx(box_run.metrics["miou"])  # same model, same evaluation
    assert d.run_boxsup(_box_cfg()).cached  # nothing retrained


@pytest.mark.slow
def test_the_update_probe_relabels_from_e_o_alone_and_from_each_driver(box_run):
    probe = d.update_probe(_box_cfg(), {"own net": _box_cfg()}, lams=(3.0, 0.3))
    assert list(probe.index)[:2] == ["ground-truth masks (reference)", "E_o alone (round 0)"] and len(probe) == 4
    # E_o alone is round 0 of the run itself (same candidates, seed and sampling)
    round0 = box_run.metrics["label_log"][0]["label_miou"]
    assert probe.loc["E_o alone (round 0)", "label mIoU %"] == pytest.approx(round0)
    driven = probe.iloc[2:]
    assert list(driven["λ"]) == [3.0, 0.3] and all(0 <= v <= 100 for v in driven["label mIoU %"])
    assert all(0 <= v <= 100 for v in probe["foreground fraction %"])


# --------------------------------------------------------------------------- Tables 4 and 5
def test_table4_rows_reuse_table1_runs_and_add_the_voc07_run(smoke):
    t1, t4 = d.table1_configs("cpu"), d.table4_configs("cpu")
    assert t4["boxsup-box"] == t1["voc-box"] and t4["boxsup-semi-voc"] == t1["voc-semi"]
    assert t4["boxsup-semi-coco"] == t1["coco-semi"] and t4["mask"] == t1["voc-mask"]
    assert t4["boxsup-semi-voc07-coco"].sources == (("voc", "mask"), ("coco", "box"), ("boxes", "box"))
    assert t4["boxsup+-semi-voc07-coco"] == t4["boxsup-semi-voc07-coco"]  # one run, two evaluations
    ev = d.table4_evaluations("smoke")  # the held-out range reads the twin (the smoke one here)
    assert ev["boxsup+-semi-voc07-coco"].scales == d.PLUS_SCALES
    assert all(e.scales == (1.0,) for rid, e in ev.items() if not rid.startswith("boxsup+"))


def test_the_held_out_images_are_the_val_images_no_other_table_reads(smoke, monkeypatch):
    from dataclasses import replace as dc_replace

    from instseg_lib.profiles import PROFILES

    n_val = len(d.open_dataset("voc", "val", profile="smoke"))
    assert d.held_out_range("smoke") == (0, n_val)  # smoke evaluates its whole val split: nothing left over
    prof = dc_replace(PROFILES["smoke"], eval_subset=n_val - 1)
    monkeypatch.setitem(PROFILES, "smoke", prof)
    assert d.held_out_range("smoke") == (n_val - 1, 1)
    ds = d._eval_set("voc", "val", "smoke", 1, n_val - 1)
    assert len(ds) == 1 and ds[0].image_id == d.open_dataset("voc", "val", profile="smoke")[n_val - 1].image_id
    with pytest.raises(ValueError, match="has none"):
        d._eval_set("voc", "val", "smoke", 1, n_val)
    e = d.held_out(d.table1_configs("smoke")["voc-box"])
    assert e.start == n_val - 1 and e.n_eval == 1 and f"-from{n_val - 1}-" in e.name


def test_context_runs_train_alone_on_masks_and_init_from_names_its_source():
    t5 = d.table5_configs("cpu")
    base, ours = t5["baseline"], t5["boxsup-semi-coco"]
    assert base.sources == ours.sources == (("context", "mask"),) and base.eval_dataset == "context"
    assert base.init_from is None and base.init.startswith("standin-seg-vgg16-")
    assert ours.init_from == d.boxsup_config("cpu", d.TABLE5_PRETRAIN) and ours.init_from.eval_dataset == "voc"
    assert ours.init.startswith(ours.init_from.name) and ours.name.endswith("-from-coco-box-ss4slic-sample")
    from instseg_lib.experiments import config_hash

    assert config_hash(ours) != config_hash(base)
    reseeded = replace(ours, init_from=replace(ours.init_from, seed=1))  # init follows its source
    assert reseeded.init.startswith(ours.init_from.name + "-seed1-") and reseeded.init != ours.init
    with pytest.raises(ValueError, match="trains alone"):
        d.boxsup_config("cpu", (("context", "mask"), ("voc", "mask")))
    with pytest.raises(ValueError, match="trains alone"):
        d.boxsup_config("cpu", (("context", "box"),))


@pytest.mark.slow
def test_a_run_initialised_from_another_starts_from_its_trained_trunk(smoke):
    from types import SimpleNamespace

    import torch

    src = replace(d.table1_configs("smoke")["voc-mask"], **SMALL)
    cfg = replace(d.table5_configs("smoke")["baseline"], **SMALL)
    cfg = replace(cfg, init_from=src)
    n_ctx = d.open_dataset("context", "train", profile="smoke").num_classes
    model, ctx = d.build_model(cfg, n_ctx), SimpleNamespace(notes={})
    head = model.classifier.weight.clone()
    d._initialise(model, cfg, ctx)
    trained = d.load_model(src).backbone.state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in model.backbone.state_dict().items())
    assert torch.equal(model.classifier.weight, head)  # a new classifier, of Context's classes
    assert ctx.notes["init"]["init"] == "boxsup run" and src.name in ctx.notes["init"]["reason"]
    res = d.run_boxsup(cfg)  # and it trains and evaluates on the Context twin
    assert len(res.metrics["class_names"]) == n_ctx and res.provenance["notes"]["init"]["init"] == "boxsup run"


# --------------------------------------------------------------------------- Fig. 4 (trimap)
def _trimap_result(boundary, interior):
    class R:
        metrics = {"widths": list(d.TRIMAP_WIDTHS), "boundary_miou": list(boundary), "interior_miou": list(interior),
                   "n_eval_images": 4, "mean_longer_side": 192.0}
    return R()


def test_the_trimap_claim_compares_the_interior_gain_with_the_boundary_gain():
    from instseg_lib.papers.schema import Noise

    n = len(d.TRIMAP_WIDTHS)
    voc = _trimap_result([30.0] * n, [60.0] * n)
    # +10 in the interior, +2 on the boundary: interior - boundary rises from 30 to 38
    coco = _trimap_result([32.0] * n, [70.0] * n)
    assert d.trimap_value(coco) == pytest.approx(38.0)
    assert d.trimap_verdict({"voc-mask": voc, "coco-semi": coco}).verdict == "reproduced"
    assert d.trimap_verdict({"voc-mask": voc, "coco-semi": _trimap_result([40.0] * n, [65.0] * n)}).verdict \
        == "not reproduced"  # +10 on the boundary, +5 inside
    noise = Noise(sigma={d.TRIMAP_COLUMN: 2.0}, chance={d.TRIMAP_COLUMN: 5.0}, z=4.3)
    assert d.trimap_verdict({"voc-mask": voc, "coco-semi": coco}, noise).verdict == "inconclusive"  # 8 < 4.3*2*1.41
    wide = _trimap_result([30.0] * n, [90.0] * n)
    assert d.trimap_verdict({"voc-mask": voc, "coco-semi": wide}, noise).verdict == "reproduced"
    at_chance = _trimap_result([30.0] * n, [35.0] * n)
    r = d.trimap_verdict({"voc-mask": at_chance, "coco-semi": _trimap_result([30.0] * n, [34.0] * n)}, noise)
    assert r.verdict == "inconclusive" and "trivial predictor" in r.detail
    assert d.trimap_verdict({"voc-mask": voc}).verdict == "not run"
    frame = d.trimap_frame({"voc-mask": voc, "coco-semi": coco})
    assert list(frame.index) == list(d.TRIMAP_WIDTHS) and frame.shape == (n, 5)
    assert frame["≈ twin px"].iloc[-1] == pytest.approx(40 * 192 / 500, abs=0.05)


def test_the_trimap_claim_quotes_the_paper_verbatim():
    from instseg_lib.paths import papers_text_root

    root = papers_text_root()
    if root is None or not (root / "dai2015_boxsup.txt").is_file():
        pytest.skip("the papers' texts (../shared/papers) are not available")
    text = " ".join((root / "dai2015_boxsup.txt").read_text(encoding="utf-8").replace("*", "").split())
    quotes = d.TRIMAP_CLAIM.source.split("'")[1::2]
    assert quotes and all(" ".join(q.split()) in text for q in quotes)


@pytest.mark.slow
def test_trimap_evaluation_of_a_smoke_run_is_cached_and_consistent(smoke):
    cfg = replace(d.table1_configs("smoke")["voc-mask"], **SMALL)
    tcfg = d.trimap_config(cfg)
    res = d.run_trimap(tcfg)
    m = res.metrics
    assert tcfg.name.endswith("-trimap-voc-val") and m["n_eval_images"] == 4 and m["widths"] == list(d.TRIMAP_WIDTHS)
    for key in ("boundary_miou", "interior_miou", "boundary_miou_nocrf", "interior_miou_nocrf"):
        assert len(m[key]) == len(d.TRIMAP_WIDTHS) and all(0 <= v <= 100 for v in m[key] if v == v)
    assert d.run_trimap(tcfg).cached
    assert np.isfinite(d.trimap_chance("smoke"))


def test_table_noise_takes_the_larger_spread_of_both_references():
    """A collapsed reference (every seed at the trivial level, spread 0) must not set the band alone."""
    noise = d.table_noise("smoke")
    refs = d.noise_references("smoke")
    assert set(refs) == {"voc-box", "voc-mask"}
    spreads = []
    for ref in refs.values():
        vals = [d.run_boxsup(replace(ref, seed=s)).metrics["miou"] for s in range(2)]  # smoke: 2 seeds
        spreads.append(np.std(vals, ddof=1))
        assert ref.name in noise.source
    assert noise.sigma[d.MIOU] == pytest.approx(max(spreads))
    assert noise.z == pytest.approx(12.706, abs=1e-3)
