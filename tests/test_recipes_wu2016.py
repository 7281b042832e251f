"""Wu 2016 recipes end to end on the smoke twin: refusal before training, caching, sharing."""

from __future__ import annotations

import pytest

from instseg_lib.data import generate
from instseg_lib.papers import TABLES


@pytest.fixture(scope="module")
def smoke_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("wu")
    mp = pytest.MonkeyPatch()
    mp.setenv("INSTSEG_DATA", str(root / "data"))
    mp.setenv("INSTSEG_RESULTS", str(root / "results"))
    mp.setenv("INSTSEG_PROGRESS", "0")
    mp.delenv("FORCE", raising=False)
    generate("voc", "smoke", root / "data" / "smoke" / "voc", workers=1)
    yield root
    mp.undo()


def test_twin_dilation_keeps_fov_fraction_and_never_drops_below_one():
    from instseg_lib.recipes.wu2016 import twin_dilation

    assert twin_dilation(12, 500) == 12
    assert twin_dilation(12, 250) == 6
    assert twin_dilation(6, 80) == 1 and twin_dilation(12, 80) == 2 and twin_dilation(18, 80) == 3
    assert twin_dilation(6, 10) == 1


def test_every_table1_row_maps_to_its_config():
    from instseg_lib.recipes.wu2016 import config_from_row

    t = TABLES["wu2016.table1"]
    cfgs = {r.id: config_from_row(r, "cpu", "voc") for r in t.rows}
    c = cfgs["d101-s8-k5-d12"]
    assert (c.depth, c.output_stride, c.kernel, c.paper_dilation, c.bootstrap_k) == (101, 8, 5, 12, 0)
    assert cfgs["d50-s16-k3-d6"].output_stride == 16
    assert len({x.name for x in cfgs.values()}) == 14
    t7 = TABLES["wu2016.table7"]
    assert config_from_row(t7.row("voc-bs512"), "cpu", "voc").bootstrap_k == 512
    # Table 7's "F" row is Table 1's row: same config, same cache entry.
    assert config_from_row(t7.row("voc-nobs"), "cpu", "voc") == cfgs["d101-s8-k5-d12"]


def test_impossible_configs_are_refused_before_training(smoke_env):
    from instseg_lib.recipes import wu2016 as wu

    with pytest.raises(ValueError, match="depth"):
        wu.run_semantic(wu.semantic_config("smoke", "voc", depth=34))
    with pytest.raises(ValueError, match="FoV"):
        wu.run_semantic(wu.semantic_config("smoke", "voc", kernel=7, dilation=500))
    assert not (smoke_env / "results").exists()  # nothing trained, nothing written


@pytest.mark.slow
def test_semantic_and_instance_runs_are_cached_with_provenance(smoke_env):
    from instseg_lib.recipes import wu2016 as wu

    cfg = wu.semantic_config("smoke", "voc", depth=50, output_stride=16, kernel=3, dilation=6, steps=2)
    r = wu.run_semantic(cfg)
    assert not r.cached and 0 <= r["miou"] <= 100 and 0 <= r["pixel_acc"] <= 100
    assert r.provenance["dataset_fingerprint"]
    # No ImageNet weights at quarter width: the trunk starts from its cached stand-in pretraining.
    assert r.provenance["notes"]["init"]["init"] == "stand-in"
    assert (smoke_env / "results" / "smoke" / "pretrain").is_dir()
    assert {"initial_loss", "final_loss", "loss_curve"} <= set(r.metrics)
    assert r.path.with_suffix(".pt").exists()
    assert wu.run_semantic(cfg).cached

    loc = wu.localization_config("smoke", 50, bootstrap=True, weighted=True, steps=2)
    inst = wu.run_instances(wu.InstanceConfig(localization=loc, semantic=None, n_eval=2))
    for key in ("map_r_0.5", "map_r_0.7", "map_r_vol"):
        assert 0 <= inst[key] <= 100
    ours = wu.instance_ours({"gt-semantic-pilot": inst})
    assert set(ours["gt-semantic-pilot"]) == set(TABLES["wu2016.table6"].value_columns)


def test_ground_truth_probabilities_are_one_hot_with_void_as_background():
    import numpy as np

    from instseg_lib.recipes.wu2016 import ground_truth_probabilities

    sem = np.array([[0, 3], [255, 1]], np.uint8)
    p = ground_truth_probabilities(sem, 4)
    assert p.shape == (4, 2, 2) and p.sum(0).eq(1).all()
    assert p[3, 0, 1] == 1 and p[0, 1, 0] == 1 and p[1, 1, 1] == 1


def test_plans_refuse_rows_whose_fov_exceeds_the_crop_and_split_table7_by_block():
    from instseg_lib.profiles import get_profile
    from instseg_lib.recipes import wu2016 as wu

    plan = wu.plan_semantic("wu2016.table3", "cpu", "cityscapes")
    refused = sorted(p.row_id for p in plan if p.refused)
    assert refused == ["d50-s8-k5-d18", "d50-s8-k7-d12"]  # the FoV-584 rows: still wider than the crop
    frame = wu.plan_frame(plan)
    assert (frame["twin FoV"][frame["status"] == "run"] <= frame["crop"][frame["status"] == "run"]).all()

    t7 = wu.plan_table7("cpu")
    assert {p.config.dataset for p in t7 if p.row_id.startswith("voc")} == {"voc"}
    assert {p.config.dataset for p in t7 if p.row_id.startswith("cs")} == {"cityscapes"}
    assert {p.config.depth for p in t7 if p.row_id.startswith("cs")} == {152}
    crop = get_profile("cpu").crop_size
    assert list(wu.plan_frame(t7)["K % of crop pixels"]) == [round(100 * k / crop ** 2, 1) for k in (0, 256, 512, 1024)] * 2


def test_seed_spread_is_the_sample_std_and_skips_incomplete_keys():
    from instseg_lib.recipes.common import seed_spread

    out = seed_spread([{"a": 1.0, "b": 2.0, "c": None}, {"a": 3.0, "b": 2.0, "c": 1.0}])
    assert out["a"] == pytest.approx(2 ** 0.5)  # std of (1, 3) with ddof=1
    assert out["b"] == 0.0 and "c" not in out
    assert seed_spread([{"a": 1.0}]) == {}  # one run has no spread


def test_chance_level_is_the_constant_background_predictor():
    import numpy as np

    from instseg_lib.data.sample import Sample
    from instseg_lib.recipes.common import evaluate_constant

    # 3 background pixels, 1 of class 1, 1 void: background-everywhere gets 3 of 4 valid pixels
    sem = np.array([[0, 0, 0, 1, 255]], np.uint8)
    s = Sample(image=np.zeros((1, 5, 3), np.uint8), semantic=sem, instances=np.zeros((1, 5), np.int32),
               instance_classes=np.zeros(0, np.int64), boxes=np.zeros((0, 4), np.float32), image_id="x",
               num_classes=2, class_names=("background", "thing"))
    r = evaluate_constant([s], 2)
    assert r["pixel_acc"] == pytest.approx(75.0)
    assert r["per_class_iou"] == [pytest.approx(75.0), pytest.approx(0.0)]
    assert r["miou"] == pytest.approx(37.5) and r["mean_acc"] == pytest.approx(50.0)


@pytest.mark.slow
def test_semantic_noise_trains_seed_replicates_through_the_cache(smoke_env):
    from dataclasses import replace

    from instseg_lib.recipes import wu2016 as wu

    noise = wu.semantic_noise("smoke", "voc")
    ref = wu.noise_reference("smoke", "voc")
    seeds = [wu.run_semantic(replace(ref, seed=s)) for s in range(2)]  # smoke: noise_seeds=2
    assert all(r.cached for r in seeds)
    assert seeds[1].path.name.startswith(ref.name + "-seed1-")
    diff = abs(seeds[0]["miou"] - seeds[1]["miou"])
    assert noise.sigma["Mean IoU %"] == pytest.approx(diff / 2 ** 0.5)
    assert {"Pixel acc. %", "Mean acc. %", "Mean IoU %", "mean", "background"} <= set(noise.sigma)
    assert 0 < noise.chance["Pixel acc. %"] <= 100 and noise.chance["mean"] == noise.chance["Mean IoU %"]
    assert ref.name in noise.source
    assert noise.z == pytest.approx(12.706, abs=1e-3)  # 2 seeds: Student t with 1 degree of freedom


def test_class_prior_entropy_matches_the_label_histogram(smoke_env):
    import numpy as np

    from instseg_lib.data import open_dataset
    from instseg_lib.recipes.common import class_prior_entropy

    ds = open_dataset("voc", "train", profile="smoke")
    labels = np.concatenate([ds[i].semantic.ravel() for i in range(len(ds))])
    labels = labels[labels != 255]
    f = np.bincount(labels) / labels.size
    f = f[f > 0]
    h = class_prior_entropy("voc", "smoke")
    assert h == pytest.approx(float(-(f * np.log(f)).sum()))
    assert 0 < h < np.log(ds.num_classes)


def test_t_factor_is_the_students_t_quantile_and_needs_two_runs():
    from instseg_lib.recipes.common import t_factor

    assert t_factor(3) == pytest.approx(4.3027, abs=1e-4)  # t_{0.975, 2 df}
    assert t_factor(2) == pytest.approx(12.706, abs=1e-3)
    assert 1.96 < t_factor(1000) < 1.97  # tends to the normal quantile
    with pytest.raises(ValueError, match="at least 2"):
        t_factor(1)


def test_class_frequencies_are_read_once_and_callers_cannot_corrupt_the_cache(smoke_env):
    from instseg_lib.recipes import common

    common._class_frequencies.cache_clear()
    f = common.class_frequencies("voc", "smoke")
    assert f.sum() == pytest.approx(1.0)
    f[:] = 0  # a caller mutating its copy
    g = common.class_frequencies("voc", "smoke")
    assert g.sum() == pytest.approx(1.0)
    assert common._class_frequencies.cache_info().hits == 1
