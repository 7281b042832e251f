"""Proposal-free network (Liang et al. 2015): targets (§3.2), the instance-level net and its
losses (§3.2, Eq. 2-5), and the spectral-clustering test stage (§3.3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from instseg_lib.data.targets import PFN_LOCATION_CHANNELS, pfn_instance_targets, pfn_number_targets
from instseg_lib.grouping import (
    Instances,
    absolute_locations,
    cluster_mask,
    instance_count,
    pfn_affinity,
    pfn_group,
    refine_category_map,
    spectral_cluster,
    within_cluster_similarity,
)
from instseg_lib.losses import PFN_LAMBDA, centre_sample, pfn_location_loss, pfn_loss, pfn_number_loss
from instseg_lib.models import PFN, PFNConfig, coordinate_maps


def two_boxes(h: int = 6, w: int = 8) -> np.ndarray:
    """Instance 1: x in [2, 5), y in [1, 4); instance 2: an L at the bottom right."""
    inst = np.zeros((h, w), np.int32)
    inst[1:4, 2:5] = 1
    inst[4, 5:8] = 2
    inst[5, 7] = 2
    return inst


def agreement(pred: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of pixels on which two labellings agree under the best one-to-one matching."""
    from scipy.optimize import linear_sum_assignment

    conf = np.zeros((int(pred.max()) + 1, int(truth.max()) + 1))
    np.add.at(conf, (pred, truth), 1)
    r, c = linear_sum_assignment(-conf)
    return float(conf[r, c].sum() / len(pred))


def label_map(res: Instances, shape: tuple[int, int]) -> np.ndarray:
    out = np.full(shape, -1)
    for j, m in enumerate(res.masks.numpy()):
        out[m] = j
    return out


# --------------------------------------------------------------------------- targets (§3.2)
def test_location_targets_by_hand():
    inst = two_boxes()
    t = pfn_instance_targets(inst)
    loc, fg = t["locations"], t["foreground"]
    assert loc.shape == (6, 6, 8) and fg.dtype == bool and (fg == (inst > 0)).all()
    # instance 1, pixel (y=2, x=3): centre (3.5, 2.5), top-left (2, 1), bottom-right (5, 4) over (W, H) = (8, 6)
    np.testing.assert_allclose(loc[:, 2, 3], [3.5 / 8, 2.5 / 6, 2 / 8, 1 / 6, 5 / 8, 4 / 6], rtol=1e-6)
    # instance 2 (the L): its tight box x in [5, 8), y in [4, 6) -> centre (6.5, 5)
    np.testing.assert_allclose(loc[:, 5, 7], [6.5 / 8, 5 / 6, 5 / 8, 4 / 6, 1, 1], rtol=1e-6)
    assert (loc[:, ~fg] == 0).all()
    px = pfn_instance_targets(inst, frame="pixels")["locations"]
    np.testing.assert_allclose(px[:, 2, 3], [3.5, 2.5, 2, 1, 5, 4])
    rel = pfn_instance_targets(inst, frame="relative")["locations"]
    np.testing.assert_allclose(rel[:, 2, 3], [0, 0, -1.5 / 8, -1.5 / 6, 1.5 / 8, 1.5 / 6], atol=1e-7)


def test_location_variants_by_hand():
    inst = two_boxes()
    v = {name: pfn_instance_targets(inst, name)["locations"][:, 1, 2] for name in PFN_LOCATION_CHANNELS}
    assert {k: len(x) for k, x in v.items()} == {"offsets2": 2, "centers2": 2, "centers-wh4": 4,
                                                  "centers-topleft4": 4, "pfn6": 6, "plus-tr-bl10": 10}
    # pixel (y=1, x=2) has centre (2.5, 1.5); its box centre is (3.5, 2.5)
    np.testing.assert_allclose(v["offsets2"], [1 / 8, 1 / 6], rtol=1e-6)
    np.testing.assert_allclose(v["centers2"], [3.5 / 8, 2.5 / 6], rtol=1e-6)
    np.testing.assert_allclose(v["centers-wh4"], [3.5 / 8, 2.5 / 6, 3 / 8, 3 / 6], rtol=1e-6)
    np.testing.assert_allclose(v["centers-topleft4"], [3.5 / 8, 2.5 / 6, 2 / 8, 1 / 6], rtol=1e-6)
    # + top-right (rx, ly) and bottom-left (lx, ry)
    np.testing.assert_allclose(v["plus-tr-bl10"][6:], [5 / 8, 1 / 6, 2 / 8, 4 / 6], rtol=1e-6)
    np.testing.assert_allclose(v["plus-tr-bl10"][:6], v["pfn6"])


def test_literal_instance_frame_is_degenerate():
    """The paper's "normalised by the width and height of the instance": r/w - l/w = 1 and
    c/w = l/w + 1/2 for every instance, so the 6 numbers carry 2."""
    inst = two_boxes()
    loc = pfn_instance_targets(inst, frame="instance")["locations"]
    fg = inst > 0
    cx, cy, lx, ly, rx, ry = loc[:, fg]
    np.testing.assert_allclose(rx - lx, 1, rtol=1e-6)
    np.testing.assert_allclose(ry - ly, 1, rtol=1e-6)
    np.testing.assert_allclose(cx - lx, 0.5, rtol=1e-6)
    np.testing.assert_allclose(loc[:, 2, 3], [3.5 / 3, 2.5 / 3, 2 / 3, 1 / 3, 5 / 3, 4 / 3], rtol=1e-6)


def test_targets_crowd_empty_and_errors():
    inst = two_boxes()
    crowd = np.zeros_like(inst, bool)
    crowd[1, 2] = True
    t = pfn_instance_targets(inst, crowd=crowd)
    assert not t["foreground"][1, 2] and (t["locations"][:, 1, 2] == 0).all()
    e = pfn_instance_targets(np.zeros((4, 5), np.int32), "plus-tr-bl10")
    assert e["locations"].shape == (10, 4, 5) and not e["locations"].any() and not e["foreground"].any()
    with pytest.raises(ValueError, match="variant"):
        pfn_instance_targets(inst, "corners8")
    with pytest.raises(ValueError, match="frame"):
        pfn_instance_targets(inst, frame="box")


def test_number_targets():
    inst = two_boxes()
    g = pfn_number_targets(inst, np.array([3, 3]), 21)
    assert g.shape == (20,) and g.dtype == np.float32 and g[2] == 2 and g.sum() == 2
    inst[inst == 2] = 0  # cropped away: not counted
    assert pfn_number_targets(inst, np.array([3, 3]), 21)[2] == 1


@st.composite
def instance_maps(draw):
    h, w = draw(st.integers(3, 12)), draw(st.integers(3, 12))
    n = draw(st.integers(0, 4))
    inst = np.zeros((h, w), np.int32)
    for i in range(1, n + 1):
        y0, x0 = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
        y1, x1 = draw(st.integers(y0 + 1, h)), draw(st.integers(x0 + 1, w))
        inst[y0:y1, x0:x1] = i
    return inst


@settings(max_examples=40, deadline=None)
@given(instance_maps(), st.sampled_from(sorted(PFN_LOCATION_CHANNELS)))
def test_targets_properties(inst, variant):
    """One vector per instance (absolute frame), boxes contain their pixels, and the
    relative frame inverts to the absolute one (what the clustering relies on)."""
    t = pfn_instance_targets(inst, variant)
    loc, fg = t["locations"], t["foreground"]
    h, w = inst.shape
    names = PFN_LOCATION_CHANNELS[variant]
    for i in np.unique(inst[fg]):
        vecs = loc[:, inst == i]
        if variant != "offsets2":
            assert np.allclose(vecs, vecs[:, :1], atol=1e-6)
    ys, xs = np.nonzero(fg)
    if "lx" in names:
        assert (loc[names.index("lx"), ys, xs] <= (xs + 0.5) / w + 1e-6).all()
    if "rx" in names:
        assert (loc[names.index("rx"), ys, xs] >= (xs + 0.5) / w - 1e-6).all()
    if variant != "offsets2":
        assert loc.min() >= -1e-6  # absolute positions and sizes are in [0, 1]
        assert loc.max() <= 1 + 1e-6
    rel = pfn_instance_targets(inst, variant, frame="relative")["locations"]
    back = absolute_locations(rel, variant, "relative")
    ref = absolute_locations(loc, variant, "absolute")
    np.testing.assert_allclose(back[:, fg], ref[:, fg], atol=1e-5)


# --------------------------------------------------------------------------- the network (§3.2)
@pytest.mark.parametrize("width", [8, 16])
def test_pfn_shapes(width):
    m = PFN(PFNConfig(num_classes=4, width=width, fc6_dilation=2))
    out = m(torch.randn(2, 3, 48, 40))
    assert out["locations"].shape == (2, 6, 6, 5) and out["numbers"].shape == (2, 4)
    assert {k: tuple(v.shape[-2:]) for k, v in out["streams"].items()} == {
        "input": (48, 40), "pool1": (24, 20), "pool2": (12, 10), "pool3": (6, 5), "fc7": (6, 5)}
    assert "semantic" not in out
    assert m.streams["fc7"].conv1.out_channels == 2 * width            # 128 at width 64
    assert m.streams["fc7"].conv2.in_channels == 2 * width + 2         # "130 = 128 + 2"
    assert m.fuse.in_channels == 5 * 6 and m.fuse.kernel_size == (1, 1)
    assert m.number_branch.conv.in_channels == 16 * width + 6          # "1024 + 6 channels"
    assert m.number_branch.conv.stride == (2, 2) and m.number_branch.fc1.out_features == 16 * width
    # any input size (the number branch pools globally)
    assert m(torch.randn(1, 3, 72, 56))["numbers"].shape == (1, 4)
    pred = m.predict(torch.randn(1, 3, 48, 40))
    assert pred["locations"].shape == (1, 6, 48, 40) and m.training


@pytest.mark.parametrize("kw,d", [
    ({"location_variant": "offsets2"}, 2), ({"location_variant": "plus-tr-bl10"}, 10),
    ({"multiscale": False}, 6), ({"coordinate_maps": False}, 6), ({"fusion": "sum"}, 6),
    ({"number_features": "locations"}, 6), ({"number_features": "category"}, 6),
    ({"unified_classes": 5}, 6), ({"arch": "alexnet"}, 6),
])
def test_pfn_variants_train(kw, d):
    """Every ablation switch builds, has the right channels, and gets gradients everywhere."""
    torch.manual_seed(0)
    cfg = PFNConfig(num_classes=4, width=8, fc6_dilation=2, **kw)
    m = PFN(cfg)
    x = torch.randn(2, 3, 32, 32)
    out = m(x)
    assert out["locations"].shape == (2, d, 4, 4)
    if not cfg.multiscale:
        assert out["streams"] == {} and m.fuse is None
    if cfg.arch == "alexnet":
        assert tuple(out["streams"]) == ("input", "pool1", "pool2", "pool5", "fc7")
    inst = np.zeros((32, 32), np.int32)
    inst[4:14, 4:20] = 1
    inst[18:30, 10:28] = 2
    t = pfn_instance_targets(inst, cfg.location_variant)
    loc = torch.from_numpy(t["locations"])[None].repeat(2, 1, 1, 1)
    fg = torch.from_numpy(t["foreground"])[None].repeat(2, 1, 1)
    g = torch.tensor([[2.0, 0, 0, 0]] * 2)
    sem = torch.from_numpy((inst > 0).astype(np.int64))[None].repeat(2, 1, 1)
    terms = pfn_loss(out, loc, fg, g, semantic=sem)
    terms["loss"].backward()
    assert ("semantic" in terms) == bool(cfg.unified_classes)
    missing = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing
    assert m.backbone.features[0].weight.grad.abs().sum() > 0  # reaches the trunk's first conv


def test_coordinate_maps_eq3():
    c = coordinate_maps(2, 3, 4, torch.zeros(1))
    assert c.shape == (2, 2, 3, 4)
    torch.testing.assert_close(c[0, 0, 1], (torch.arange(4) + 0.5) / 4)  # x^o_1: the column
    torch.testing.assert_close(c[1, 1, :, 2], (torch.arange(3) + 0.5) / 3)  # x^o_2: the row


def test_category_features_from_a_separate_network():
    m = PFN(PFNConfig(num_classes=3, width=8, fc6_dilation=2, dropout=0.0)).eval()
    x = torch.randn(1, 3, 32, 32)
    cat = torch.randn(1, 128, 4, 4)
    a, b = m(x)["numbers"], m(x, category_features=cat)["numbers"]
    assert a.shape == b.shape and not torch.allclose(a, b)
    with pytest.raises(ValueError, match="fc7 grid"):
        m(x, category_features=torch.randn(1, 128, 3, 3))


def test_parameter_groups_and_config_errors():
    m = PFN(PFNConfig(num_classes=3, width=8))
    new = {id(p) for p in m.new_parameters()}
    assert {id(p) for p in m.number_parameters()} <= new
    assert not new & {id(p) for p in m.backbone.parameters()}
    for kw in ({"num_classes": 0}, {"location_variant": "x"}, {"fusion": "max"}, {"number_features": "x"},
               {"unified_classes": 1}, {"head_channels": 0}):
        with pytest.raises(ValueError):
            PFNConfig(**kw).validate()


# --------------------------------------------------------------------------- losses (Eq. 2-5)
def test_location_loss_is_a_foreground_mean():
    target = torch.zeros(1, 2, 8, 8)
    fg = torch.zeros(1, 8, 8, dtype=torch.bool)
    fg[0, :4, :4] = True
    pred = torch.zeros(1, 2, 8, 8)
    assert float(pfn_location_loss(pred, target, fg)) == 0.0
    pred[:, :, ~fg[0]] = 5.0  # errors on background pixels are not counted
    assert float(pfn_location_loss(pred, target, fg)) == 0.0
    pred = torch.full((1, 2, 8, 8), 0.2)
    one = float(pfn_location_loss(pred, target, fg))
    assert one == pytest.approx(2 * 0.5 * 0.2 ** 2)  # smooth-l1 summed over D = 2, divided by Omega
    fg[0] = True  # four times the foreground, same per-pixel error: same loss (divided by Omega)
    assert float(pfn_location_loss(pred, target, fg)) == pytest.approx(one)
    # a coarse prediction is compared with centre-sampled targets, Omega counted at its size
    assert float(pfn_location_loss(pred[:, :, :2, :2], target, fg)) == pytest.approx(one)
    assert float(pfn_location_loss(pred, target, torch.zeros_like(fg))) == 0.0  # no foreground


def test_centre_sample_and_number_loss():
    x = torch.arange(64).view(1, 8, 8)
    # 4x4 cells: rows/columns 2 and 6, the centres of the cells
    torch.testing.assert_close(centre_sample(x, (2, 2)), torch.tensor([[[2 * 8 + 2, 2 * 8 + 6], [6 * 8 + 2, 6 * 8 + 6]]]))
    assert centre_sample(x, (8, 8)) is x
    assert float(pfn_number_loss(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]]))) == pytest.approx(2.5)


def test_total_loss_is_lambda_location_plus_number():
    m = PFN(PFNConfig(num_classes=2, width=8, fc6_dilation=1))
    out = m(torch.randn(1, 3, 32, 32))
    inst = np.zeros((32, 32), np.int32)
    inst[5:20, 5:20] = 1
    t = pfn_instance_targets(inst)
    terms = pfn_loss(out, torch.from_numpy(t["locations"])[None], torch.from_numpy(t["foreground"])[None],
                     torch.tensor([[1.0, 0.0]]))
    assert PFN_LAMBDA == 10.0
    streams = sum(terms[f"location/{s}"] for s in m.taps)
    torch.testing.assert_close(terms["location"], terms["location/fuse"] + streams)
    torch.testing.assert_close(terms["loss"], 10.0 * terms["location"] + terms["number"])


# --------------------------------------------------------------------------- test stage (§3.3)
def blob_scene(noise: float = 0.02, seed: int = 0, gap: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Two instances of one class (separated, or touching side by side), noisy predicted locations."""
    inst = np.zeros((40, 48), np.int32)
    if gap:
        inst[4:20, 4:18] = 1
        inst[22:38, 28:44] = 2
    else:
        inst[8:30, 6:24] = 1
        inst[8:30, 24:42] = 2
    loc = pfn_instance_targets(inst)["locations"]
    loc = loc + np.random.default_rng(seed).normal(0, noise, loc.shape).astype(np.float32)
    return inst, loc


@pytest.mark.parametrize("gap", [True, False])
def test_spectral_separates_two_instances_of_one_class(gap):
    inst, loc = blob_scene(gap=gap)
    labels = (inst > 0).astype(np.int64) * 3  # class 3
    numbers = np.array([0, 0, 1.8])  # rounds to 2
    res = pfn_group(labels, loc, numbers)
    assert len(res.masks) == 2 and (res.classes == 3).all()
    pred = label_map(res, inst.shape)
    assert agreement(pred[inst > 0], inst[inst > 0] - 1) > 0.99
    assert res.masks.shape[1:] == inst.shape and res.masks.dtype == torch.bool


def test_spectral_respects_k():
    inst, loc = blob_scene()
    labels = (inst > 0).astype(np.int64)
    assert len(pfn_group(labels, loc, np.array([1.2])).masks) == 1
    assert len(pfn_group(labels, loc, np.array([3.0])).masks) == 3  # asked for 3: splits one
    # k = 0 predicted for a category that the map shows: clamped to 1 (not refined away)
    res = pfn_group(labels, loc, np.array([0.1]), refine=False)
    assert len(res.masks) == 1 and res.masks[0].numpy().sum() == (inst > 0).sum()
    # without numbers every category is one instance
    assert len(pfn_group(labels, loc, None).masks) == 1


def test_instance_count_rounds_half_up_and_clamps():
    assert [instance_count(g) for g in (-1.0, 0.0, 0.4, 0.5, 1.49, 1.5, 2.5, 3.7)] == [1, 1, 1, 1, 1, 2, 3, 4]


def test_empty_foreground_gives_no_instances():
    res = pfn_group(np.zeros((10, 12), np.int64), np.zeros((6, 10, 12), np.float32), np.array([2.0]))
    assert isinstance(res, Instances) and res.masks.shape == (0, 10, 12) and len(res.classes) == 0
    void = np.full((10, 12), 255)
    assert len(pfn_group(void, np.zeros((6, 10, 12), np.float32), np.array([2.0])).masks) == 0


def test_subsampled_agrees_with_dense_on_a_small_mask():
    """Clustering 150 of the mask's ~650 pixels and assigning the rest by mean Eq. 6 affinity
    gives the dense answer (benchmarks/bench_pfn.py prints the times: dense is O(n^2) memory)."""
    inst, loc = blob_scene(noise=0.03, gap=False)
    fg = inst > 0
    ys, xs = np.nonzero(fg)
    t = loc[:, ys, xs].T.astype(np.float64)
    q = np.stack([xs + 0.5, ys + 0.5], 1)
    t, q = t / np.abs(t).max(0), q / q.max(0)
    dense = cluster_mask(t, q, 2, max_pixels=None)
    sub = cluster_mask(t, q, 2, max_pixels=150, seed=1)
    assert len(t) > 600
    assert agreement(sub, dense) > 0.98 and agreement(dense, inst[fg] - 1) > 0.98


def test_size_constraint_drops_tiny_clusters():
    """§3.3: clusters below 0.1% of the mask (noisy background pixels) are discarded."""
    inst = np.zeros((48, 48), np.int32)
    inst[2:42, 2:42] = 1  # 1600 px
    inst[46, 46] = 2       # one stray pixel, far away in image and location: 1/1601 < 0.1%
    loc = pfn_instance_targets(inst)["locations"]
    labels = (inst > 0).astype(np.int64)
    # a narrow kernel, so that the stray pixel is its own cluster (at sigma = 0.5 Eq. 6 stays
    # above 2 exp(-2) ~ 0.27 between any two max-normalised pixels, and the normalised cut
    # halves the blob rather than isolate one pixel)
    kw = {"max_pixels": None, "sigma": 0.05}
    kept = pfn_group(labels, loc, np.array([2.0]), **kw)
    assert len(kept.masks) == 1 and kept.masks[0].numpy().sum() == 1600
    both = pfn_group(labels, loc, np.array([2.0]), min_cluster_fraction=0.0, **kw)
    assert sorted(int(m.sum()) for m in both.masks) == [1, 1600]


def test_refine_category_map_two_strategies():
    lab = np.array([[0, 1, 1, 2], [3, 3, 255, 0]])
    # several categories predicted (1 and 3): category 2 (predicted 0 instances) -> background
    np.testing.assert_array_equal(refine_category_map(lab, np.array([2.0, 0.2, 0.9])), [[0, 1, 1, 0], [3, 3, 255, 0]])
    # one category predicted: every other object pixel becomes it, background and void stay
    np.testing.assert_array_equal(refine_category_map(lab, np.array([0.0, 1.0, 0.4])), [[0, 2, 2, 2], [2, 2, 255, 0]])
    # none above tau: unchanged
    np.testing.assert_array_equal(refine_category_map(lab, np.array([0.5, 0.1, 0.0])), lab)


def test_grouping_uses_refinement_and_scores():
    inst, loc = blob_scene()
    labels = np.where(inst == 1, 1, np.where(inst == 2, 2, 0))
    probs = np.zeros((3, *inst.shape), np.float32)
    probs[1][inst == 1] = 0.9
    probs[2][inst == 2] = 0.6
    res = pfn_group(labels, loc, np.array([1.0, 1.0]), probs)
    assert res.classes.tolist() == [1, 2] and res.scores.tolist() == pytest.approx([0.9, 0.6])
    # only class 1 predicted: the class-2 pixels become class 1, one mask with g_1 = 1 ...
    one = pfn_group(labels, loc, np.array([1.0, 0.0]))
    assert one.classes.tolist() == [1] and one.masks[0].numpy().sum() == (inst > 0).sum()
    assert len(pfn_group(labels, loc, np.array([2.0, 0.0])).masks) == 2  # ... split in two with g_1 = 2


def test_offsets_are_made_absolute_before_clustering():
    inst, _ = blob_scene()
    off = pfn_instance_targets(inst, "offsets2")["locations"]
    res = pfn_group((inst > 0).astype(np.int64), off, np.array([2.0]), location_variant="offsets2")
    pred = label_map(res, inst.shape)
    assert len(res.masks) == 2 and agreement(pred[inst > 0], inst[inst > 0] - 1) > 0.99


def test_affinity_and_selection_score():
    rng = np.random.default_rng(0)
    t, q = rng.random((5, 6)), rng.random((5, 2))
    w = pfn_affinity(t, q)
    np.testing.assert_allclose(np.diag(w), 2.0)
    np.testing.assert_allclose(w, w.T)
    assert pfn_affinity(t, None).max() <= 1.0 + 1e-12
    # Eq. 6 by hand for one pair, sigma = 0.5
    expect = np.exp(-((t[0] - t[1]) ** 2).sum() / (6 * 0.5)) + np.exp(-((q[0] - q[1]) ** 2).sum() / (2 * 0.5))
    assert w[0, 1] == pytest.approx(expect)
    block = pfn_affinity(t[:2], q[:2], t2=t, q2=q)
    np.testing.assert_allclose(block, w[:2])
    w4 = np.array([[2, 1.5, 0.1, 0.1], [1.5, 2, 0.1, 0.1], [0.1, 0.1, 2, 1.0], [0.1, 0.1, 1.0, 2]])
    assert within_cluster_similarity(w4, np.array([0, 0, 1, 1])) == pytest.approx((1.5 * 2 + 1.0 * 2) / 4)
    assert within_cluster_similarity(w4, np.array([0, 1, 2, 3])) == 0.0
    lab = spectral_cluster(w4, 2)
    assert lab[0] == lab[1] != lab[2] == lab[3]


def test_degenerate_inputs_do_not_fail():
    same = np.ones((30, 6))
    assert spectral_cluster(pfn_affinity(same, None), 3).max() <= 2  # fewer distinct points than k
    assert (cluster_mask(same[:2], None, 5) < 2).all()               # k above the pixel count
    res = pfn_group(np.ones((3, 3), np.int64), np.zeros((6, 3, 3), np.float32), np.array([4.0]))
    assert 1 <= len(res.masks) <= 4 and sum(int(m.sum()) for m in res.masks) == 9
    with pytest.raises(ValueError, match="differ in size"):
        pfn_group(np.ones((3, 3), np.int64), np.zeros((6, 4, 3), np.float32))


def test_network_to_instances_end_to_end():
    m = PFN(PFNConfig(num_classes=2, width=8, fc6_dilation=1))
    x = torch.randn(1, 3, 24, 24)
    pred = m.predict(x)
    labels = np.zeros((24, 24), np.int64)
    labels[4:12, 4:20] = 2
    res = pfn_group(labels, pred["locations"][0], pred["numbers"][0].abs() + 1.0)
    assert len(res.masks) >= 1 and (res.classes == 2).all()
