"""Twin v2 looks, stand-in pretraining, the stable recipe (warm-up, divergence stop) and
per-depth noise: the pieces that let cpu-scale nets learn and verdicts be decided."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from instseg_lib.data import looks
from instseg_lib.papers.schema import Claim, Noise, noise_for
from instseg_lib.train import DivergedError, TrainConfig, check_divergence, poly_lr_lambda, train


# --------------------------------------------------------------------------- twin v2 looks
@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1),
       st.integers(0, 2**31))
@settings(max_examples=60, deadline=None)
def test_sampled_colours_stay_inside_their_palette(h0, h1, s0, s1, v0, v1, seed):
    s0, s1 = sorted((s0, s1))
    v0, v1 = sorted((v0, v1))
    c = looks.sample_color(np.random.default_rng(seed), (h0, h1, s0, s1, v0, v1))
    h, s, v = colorsys.rgb_to_hsv(*map(float, c))
    assert v0 - 1e-4 <= v <= v1 + 1e-4
    if v > 1e-3:  # saturation is undefined for black
        assert s0 - 1e-3 <= s <= s1 + 1e-3
    if s > 1e-3 and v > 1e-3 and h0 != h1:  # hue is defined; the range may wrap through red
        span = (h1 - h0) % 1.0
        assert ((h - h0) % 1.0) <= span + 1e-3 or abs(((h - h0) % 1.0) - 1.0) < 1e-3


def test_every_class_of_every_preset_has_a_look_of_its_own():
    from instseg_lib.data.classes import CONTEXT_CLASSES, VOC_CLASSES

    for name in VOC_CLASSES[1:]:
        assert name in looks.CLASS_LOOKS, name
    for name in ("sky", "grass", "wall", "road", "water"):
        assert name in looks.STUFF_LOOKS
    # Context classes without an entry get a stable derived look, distinct between names.
    derived = {n: looks.look_of(n) for n in CONTEXT_CLASSES if n not in looks.CLASS_LOOKS and n not in looks.STUFF_LOOKS}
    assert derived and all(looks.look_of(n) == lk for n, lk in derived.items())
    assert len({lk.body for lk in derived.values()}) == len(derived)


def test_class_looks_separate_the_classes_a_net_must_tell_apart():
    """Mean body colour of 200 instances: buses are yellow, TV cases dark, cows mostly white."""
    rng = np.random.default_rng(0)

    def mean_hsv(name):
        cs = [looks.appearance_of(rng, name, off_palette=0.0).colors[0] for _ in range(200)]
        return np.array([colorsys.rgb_to_hsv(*map(float, c)) for c in cs]).mean(0)

    bus, cow, tv = mean_hsv("bus"), mean_hsv("cow"), mean_hsv("tvmonitor")
    assert 0.08 < bus[0] < 0.17 and bus[1] > 0.7
    assert tv[2] < 0.25 and cow[2] > 0.6
    # Off-palette instances ignore the look: their hues spread over the whole circle.
    hues = [colorsys.rgb_to_hsv(*map(float, looks.appearance_of(rng, "bus", off_palette=1.0).colors[0]))[0]
            for _ in range(200)]
    assert np.mean([0.08 <= h <= 0.17 for h in hues]) < 0.3


def test_twin_v2_scenes_are_pure_functions_and_keep_their_labels():
    from instseg_lib.data.synthetic import render

    a = render("voc", "train", 3, seed=0, image_size=64)
    b = render("voc", "train", 3, seed=0, image_size=64)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.semantic, b.semantic)
    c = render("voc", "train", 3, seed=1, image_size=64)
    assert not np.array_equal(a.image, c.image)
    for preset in ("cityscapes", "context", "coco"):
        s = render(preset, "val", 1, seed=0, image_size=48)
        assert s.image.dtype == np.uint8 and s.image.shape[:2] == s.semantic.shape


# --------------------------------------------------------------------------- the recipe
def test_warmup_then_poly():
    f = poly_lr_lambda(100, 0.9, warmup=10)
    assert f(0) == pytest.approx(0.1)
    assert f(5) == pytest.approx(0.55 * (1 - 0.05) ** 0.9)
    assert f(10) == pytest.approx((1 - 0.1) ** 0.9)
    assert f(100) == 0.0
    assert poly_lr_lambda(100, 0.9)(0) == 1.0


def test_divergence_check_hand_computed():
    assert check_divergence([3.0] * 14, 3.0) is None  # too short to judge
    assert check_divergence([3.0] * 20, 3.0) is None
    rising = [3.0] * 5 + [3.0] * 5 + [10.0] * 10
    assert "exceeds 3 x" in check_divergence(rising, 3.0)
    assert check_divergence(rising, TrainConfig(steps=1, batch_size=1).divergence_factor) is None  # 3.3x < 4x
    assert check_divergence(rising, 0.0) is None  # disabled
    assert check_divergence([3.0] * 5 + [8.9] * 10, 3.0) is None  # 8.9 < 9


class _Blowup(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.w * x


def test_a_diverging_run_stops_names_the_config_and_leaves_no_checkpoint(tmp_path):
    data = [torch.ones(1)] * 8
    ckpt = tmp_path / "run.pt"
    # Loss w^2 with a huge learning rate: w goes 1 -> -199 -> ... so the loss explodes.
    cfg = TrainConfig(steps=40, batch_size=2, lr=100.0, momentum=0.0, weight_decay=0.0, checkpoint_every=5)
    with pytest.raises(DivergedError, match="config blowup-run"):
        train(_Blowup(), data, lambda m, b: (m(b) ** 2).mean(), cfg, checkpoint_path=ckpt, desc="blowup-run",
              progress=False)
    assert not ckpt.exists()


def test_stop_after_resumes_the_same_schedule(tmp_path):
    data = [torch.ones(1)] * 8
    loss = lambda m, b: ((m(b) - 3) ** 2).mean()  # noqa: E731
    cfg = TrainConfig(steps=12, batch_size=2, lr=0.05, momentum=0.0, weight_decay=0.0, checkpoint_every=4,
                      divergence_factor=0.0)
    torch.manual_seed(0)
    full = _Blowup()
    h_full = train(full, data, loss, cfg, checkpoint_path=tmp_path / "a.pt", progress=False)["losses"]
    part = _Blowup()
    from dataclasses import replace

    h1 = train(part, data, loss, replace(cfg, stop_after=5), checkpoint_path=tmp_path / "b.pt", progress=False)
    assert len(h1["losses"]) == 5
    h2 = train(part, data, loss, cfg, checkpoint_path=tmp_path / "b.pt", progress=False)["losses"]
    assert np.allclose(h2, h_full) and torch.allclose(part.w, full.w)


def test_loss_record_summarises_start_end_and_curve():
    from instseg_lib.recipes.common import loss_record

    rec = loss_record([4.0] * 5 + list(np.linspace(4, 1, 95)))
    assert rec["initial_loss"] == pytest.approx(4.0)
    assert rec["final_loss"] == pytest.approx(np.mean(np.linspace(4, 1, 95)[-10:]))
    assert len(rec["loss_curve"]) <= 120 and rec["loss_curve"][0][0] == 1 and rec["loss_curve"][-1][0] == 100
    assert loss_record([])["final_loss"] is None


def test_learning_status_flags():
    from instseg_lib.recipes.common import learning_status

    assert learning_status(float("nan"), 1.0, False) == "diverged"
    assert learning_status(1.2, 1.0, False).startswith("not learning")
    assert learning_status(0.5, 1.0, True) == "at the trivial predictor's level"
    assert learning_status(0.5, 1.0, False) == "learned"


# --------------------------------------------------------------------------- noise per row
def test_a_claim_across_rows_with_different_noise_takes_the_larger_spread():
    n50 = Noise(sigma={"m": 0.5}, chance={"m": 4.0}, z=4.3, source="50 layers")
    n101 = Noise(sigma={"m": 1.5}, chance={"m": 4.0}, z=12.7, source="101 layers")
    claim = Claim("c", "101 beats 50", "greater", "m", ("b",), ("a",))
    combined = noise_for(claim, {"a": n50, "b": n101})
    assert combined.sigma["m"] == 1.5 and combined.z == 12.7 and "50 layers" in combined.source
    same = Claim("d", "x", "greater", "m", ("a",), ("a2",))
    assert noise_for(same, {"a": n50, "a2": n50}) is n50
    assert noise_for(Claim("e", "x", "greater", "m", ("zz",)), {"a": n50}) is None


# --------------------------------------------------------------------------- stand-in pretraining
@pytest.mark.slow
def test_standin_pretraining_is_cached_disjoint_and_initialises_the_trunk(tmp_path, monkeypatch):
    from instseg_lib import pretrain
    from instseg_lib.models.backbones import ScaledResNet

    monkeypatch.setenv("INSTSEG_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("INSTSEG_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("INSTSEG_PROGRESS", "0")
    monkeypatch.delenv("FORCE", raising=False)
    cfg = pretrain.pretrain_config("smoke", "resnet50")
    assert cfg.crops.scene_seed != 0  # twin datasets are rendered with seed 0
    data = pretrain.build_crop_set(cfg.crops, workers=1)
    assert len(data["images"]) == len(data["labels"]) > 0 and data["images"].shape[1:] == (32, 32, 3)
    assert pretrain.crop_set_path(cfg.crops).exists()
    res = pretrain.run_pretraining(cfg)
    assert not res.cached and 0 <= res.metrics["val_accuracy"] <= 100
    assert pretrain.run_pretraining(cfg).cached
    monkeypatch.setenv("FORCE", "1")  # recomputes a table's rows, not the pretraining they share
    assert pretrain.run_pretraining(cfg).cached
    monkeypatch.delenv("FORCE")
    bb = ScaledResNet(50, 8, 16)
    before = bb.conv1.weight.clone()
    from dataclasses import replace as dc_replace

    from instseg_lib.profiles import get_profile

    p = get_profile("smoke")  # the crop stage alone (the segmentation stage has its own test)
    info = pretrain.initialise_backbone(bb, dc_replace(p, extra={k: v for k, v in p.extra.items()
                                                                 if k != "pretrain_seg_steps"}))
    assert info["init"] == "stand-in" and res.path.stem in info["weights"]
    state, _ = pretrain.standin_state(cfg)
    assert torch.equal(bb.conv1.weight, state["conv1.weight"]) and not torch.equal(before, bb.conv1.weight)
    with pytest.raises(ValueError, match="no stand-in"):
        pretrain.pretrain_config("smoke", "vgg19")  # vgg16 has one since PFN (§3.1)


def test_the_fine_tuning_config_hash_follows_its_pretraining():
    """A changed stand-in pretraining must not serve stale cached fine-tuned results."""
    from dataclasses import replace as dc_replace

    from instseg_lib.experiments import config_hash
    from instseg_lib.profiles import get_profile
    from instseg_lib.recipes import wu2016 as wu

    p = get_profile("smoke")
    a = wu.semantic_config(p, "voc", 50, 16, 3, 6)
    assert a.init.startswith("standin-seg-resnet50-w8-")  # the segmentation stage, which names its crop stage
    steps = dict(p.extra["pretrain_steps"], resnet50=7)
    b = wu.semantic_config(dc_replace(p, extra={**p.extra, "pretrain_steps": steps}), "voc", 50, 16, 3, 6)
    assert a.init != b.init and config_hash(a) != config_hash(b)
    seg = dict(p.extra["pretrain_seg_steps"], resnet50=5)
    c = wu.semantic_config(dc_replace(p, extra={**p.extra, "pretrain_seg_steps": seg}), "voc", 50, 16, 3, 6)
    assert c.init != a.init and config_hash(c) != config_hash(a)
    assert wu.semantic_config(p, "voc", 101, 16, 3, 6).init.startswith("standin-seg-resnet101-")
    assert wu.localization_config(p, 101).init == wu.semantic_config(p, "voc", 101).init


def test_the_segmentation_stage_follows_the_profile():
    from dataclasses import replace as dc_replace

    from instseg_lib import pretrain
    from instseg_lib.profiles import get_profile

    for name in ("smoke", "cpu"):
        assert pretrain.seg_pretrain_config(name, "resnet50") is not None
        assert pretrain.init_key(name, 50).startswith("standin-seg-resnet50-")
        assert pretrain.init_key(name, "vgg16").startswith("standin-seg-vgg16-")  # PFN's and BoxSup's trunks
    p = get_profile("cpu")
    off = dc_replace(p, extra={k: v for k, v in p.extra.items() if k != "pretrain_seg_steps"})
    assert pretrain.seg_pretrain_config(off, "resnet50") is None and pretrain.init_key(off, 50).startswith("standin-r")
    # VGG trunks segment through DeepLab-LargeFOV: stride 8, fc6 3x3 at the crop-scaled dilation
    from instseg_lib.models.vgg import largefov_dilation

    v = pretrain.seg_pretrain_config("cpu", "vgg16", steps=100)
    assert (v.output_stride, v.kernel, v.dilation) == (8, 3, largefov_dilation(p.crop_size))
    assert v.base == pretrain.pretrain_config("cpu", "vgg16")
    with pytest.raises(ValueError, match="no stand-in"):
        pretrain.seg_pretrain_config("cpu", "vgg19", steps=100)
    cfg = pretrain.seg_pretrain_config("cpu", "resnet101", steps=100)
    assert cfg.base == pretrain.pretrain_config("cpu", "resnet101") and cfg.steps == 100
    # its scenes have their own seed: neither the twin datasets' (0) nor the crop stage's
    assert cfg.scenes.scene_seed not in (0, cfg.base.crops.scene_seed)


@pytest.mark.slow
def test_segmentation_stage_trains_from_the_crop_stage_and_initialises_the_trunk(tmp_path, monkeypatch):
    from dataclasses import replace

    from instseg_lib import pretrain
    from instseg_lib.models import ScaledResNet
    from instseg_lib.profiles import PROFILES

    monkeypatch.setenv("INSTSEG_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("INSTSEG_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("INSTSEG_PROGRESS", "0")
    cfg = pretrain.seg_pretrain_config("smoke", "resnet50", steps=2)
    cfg = replace(cfg, scenes=replace(cfg.scenes, n_scenes=10))
    state, res = pretrain.seg_standin_state(cfg)
    assert res.metrics["n_train"] == 9 and res.metrics["n_val"] == 1 and 0 <= res.metrics["val_miou"] <= 100
    crop_state, _ = pretrain.standin_state(cfg.base)
    assert set(state) == set(crop_state)  # the same trunk, moved by the stage
    assert any(not torch.equal(state[k], crop_state[k]) for k in state if state[k].is_floating_point())
    ScaledResNet(50, cfg.base.width, output_stride=16).load_state_dict(state, strict=True)
    # a VGG stage trains DeepLab-LargeFOV and keeps a trunk that loads into PFN's / BoxSup's net
    from instseg_lib.models import DeepLabLargeFOV

    vcfg = pretrain.seg_pretrain_config("smoke", "vgg16", steps=2)
    vcfg = replace(vcfg, scenes=cfg.scenes)
    vstate, vres = pretrain.seg_standin_state(vcfg)
    vcrop, _ = pretrain.standin_state(vcfg.base)
    assert set(vstate) == set(vcrop) and 0 <= vres.metrics["val_miou"] <= 100
    assert any(not torch.equal(vstate[k], vcrop[k]) for k in vstate if vstate[k].is_floating_point())
    DeepLabLargeFOV(21, "vgg16", vcfg.base.width, fc6_dilation=vcfg.dilation).backbone.load_state_dict(vstate)
    # scenes are rendered once and read back equal
    a = pretrain.build_scene_set(cfg.scenes)
    b = pretrain.build_scene_set(cfg.scenes)
    assert len(a) == 10 and all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    # a profile that sets the stage initialises from it, and its fine-tuning configs say so
    prof = replace(PROFILES["smoke"], extra={**PROFILES["smoke"].extra, "pretrain_seg_steps": {"resnet50": 2},
                                             "pretrain_seg_scenes": 10})
    assert pretrain.init_key(prof, 50).startswith("standin-seg-resnet50-")
    net = ScaledResNet(50, cfg.base.width, output_stride=16)
    info = pretrain.initialise_backbone(net, prof)
    assert info["init"] == "stand-in" and "segmenting" in info["reason"]
    assert all(torch.equal(net.state_dict()[k], v) for k, v in state.items())
