"""Fathi et al. 2017 recipe: the training loop's hooks it needs (parameter groups, a loss on a
schedule), its evaluation helpers against references, and one smoke-scale run end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from instseg_lib.data.errors import MissingDatasetError
from instseg_lib.metrics.masks import image_rles, iou_matrix
from instseg_lib.papers import TABLES
from instseg_lib.papers.schema import check_claims
from instseg_lib.recipes import fathi2017 as fathi
from instseg_lib.train import TrainConfig, make_optimizer, train


# --------------------------------------------------------------------------- train() hooks
class _TwoPart(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Conv2d(3, 4, 1)
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        return self.head(self.backbone(x))


def _groups(m, lr=1e-2):
    return [{"params": list(m.backbone.parameters()), "lr": lr * 0.1}, {"params": list(m.head.parameters()), "lr": lr}]


def test_param_groups_get_their_own_learning_rates():
    m = _TwoPart()
    opt = make_optimizer(m, TrainConfig(steps=1, batch_size=1, lr=1e-2, optimizer="adam"), _groups)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-3, 1e-2])


def test_param_groups_that_leave_a_parameter_out_are_refused():
    m = _TwoPart()
    with pytest.raises(ValueError, match="leaves 2 trainable parameters out.*head"):
        make_optimizer(m, TrainConfig(steps=1, batch_size=1), lambda mm: [{"params": list(mm.backbone.parameters())}])


def _data(n=4):
    g = torch.Generator().manual_seed(0)
    return [(torch.rand(3, 4, 4, generator=g), torch.randint(0, 2, (4, 4), generator=g)) for _ in range(n)]


def test_a_loss_with_a_step_keyword_sees_the_step_and_resumes_it(tmp_path):
    seen: list[int] = []

    def loss(net, batch, *, step):
        seen.append(step)
        x, y = batch
        return nn.functional.cross_entropy(net(x), y)

    cfg = TrainConfig(steps=6, batch_size=2, checkpoint_every=2, lr=1e-3, optimizer="adam", stop_after=4)
    ckpt = tmp_path / "run.pt"
    train(_TwoPart(), _data(), loss, cfg, checkpoint_path=ckpt, progress=False)
    assert seen == [0, 1, 2, 3]
    seen.clear()
    from dataclasses import replace

    train(_TwoPart(), _data(), loss, replace(cfg, stop_after=None), checkpoint_path=ckpt, progress=False)
    assert seen == [4, 5]  # the schedule continues where the checkpoint stopped


def test_trunk_learns_slower_than_the_heads_in_training():
    """With the trunk's lr at 0 (scale ~0) its weights stay put while the head moves."""
    m = _TwoPart()
    before_b, before_h = m.backbone.weight.detach().clone(), m.head.weight.detach().clone()

    def loss(net, batch):
        x, y = batch
        return nn.functional.cross_entropy(net(x), y)

    groups = lambda mm: [{"params": list(mm.backbone.parameters()), "lr": 0.0},  # noqa: E731
                         {"params": list(mm.head.parameters()), "lr": 1e-2}]
    train(m, _data(), loss, TrainConfig(steps=3, batch_size=2, optimizer="adam", lr=1e-2, weight_decay=0.0),
          checkpoint_path=None, progress=False, param_groups=groups)
    assert torch.equal(m.backbone.weight, before_b)
    assert not torch.equal(m.head.weight, before_h)


# --------------------------------------------------------------------------- helpers
@settings(max_examples=30, deadline=None)
@given(st.integers(0, 6), st.integers(0, 4), st.integers(1, 9), st.integers(0, 2**31 - 1))
def test_mask_iou_agrees_with_pycocotools(m, n, size, seed):
    rng = np.random.default_rng(seed)
    pred = rng.random((m, size, size + 1)) < rng.random()
    gt = rng.random((n, size, size + 1)) < rng.random()
    ours = fathi.mask_iou(torch.from_numpy(pred), torch.from_numpy(gt))
    g, p, _ = image_rles(gt, pred)
    ref = iou_matrix(p, g) if m and n else np.zeros((m, n))
    assert ours.shape == (m, n)
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_embedding_distance_ratio_hand_case():
    # two instances (ids 0 and 1) with embeddings 0 and 2 in 1-d: within 0, between 4
    inst = np.array([[0, 0, 1, 1]])
    emb = torch.tensor([[[0.0, 0.0, 2.0, 2.0]]])
    within, between = fathi.embedding_distance_ratio(emb, inst, k=8)
    assert within == pytest.approx(0.0) and between == pytest.approx(4.0)
    assert fathi.embedding_distance_ratio(emb, np.zeros((1, 4), int)) is None


def test_collate_keeps_instance_classes_per_image():
    items = [{"image": torch.zeros(3, 2, 2), "instance_classes": torch.tensor([1, 2])},
             {"image": torch.ones(3, 2, 2), "instance_classes": torch.tensor([5])}]
    out = fathi.collate_fathi(items)
    assert out["image"].shape == (2, 3, 2, 2)
    assert [t.tolist() for t in out["instance_classes"]] == [[1, 2], [5]]


def test_paired_noise_combines_bootstrap_and_seed_spread():
    class R:  # a stand-in Result
        def __init__(self, t2, boot=None):
            self.metrics = {"table2": t2, "bootstrap": {"sd_diff": boot or {}}}

    runs = [R({"0.1": 10.0, "0.3": 11.0}, {"0.1-0.3": 0.3}), R({"0.1": 10.0, "0.3": 12.0}), R({"0.1": 11.0, "0.3": 12.0})]
    # differences 1, 2, 1: sd = 0.577; with the bootstrap's 0.3 -> hypot = 0.650; sigma = that / sqrt(2)
    n = fathi.table2_noise(runs)
    assert n.sigma["mAP^r"] == pytest.approx(math.hypot(np.std([1, 2, 1], ddof=1), 0.3) / math.sqrt(2))
    assert n.band("mAP^r") == pytest.approx(n.z * math.hypot(np.std([1, 2, 1], ddof=1), 0.3))


def test_configs_name_what_they_train_and_refuse_bad_schedules():
    cfg = fathi.train_config("smoke")
    assert cfg.name == f"fathi{cfg.trunk.depth}-sbd-d64" and cfg.trunk.dataset == "coco"
    assert fathi.train_config("smoke", seed=2).name.endswith("-seed2")
    with pytest.raises(ValueError, match="hold_fraction"):
        fathi.train_config("smoke", hold_fraction=0.8, ramp_fraction=0.5)
    with pytest.raises(ValueError, match="embedding_dim"):
        fathi.train_config("smoke", embedding_dim=512)
    assert fathi.eval_config("smoke").train == cfg


# --------------------------------------------------------------------------- smoke run
@pytest.fixture(scope="module")
def smoke_runs():
    try:
        return fathi.evaluations("smoke")
    except MissingDatasetError as exc:  # pragma: no cover - make test generates the smoke twin first
        pytest.skip(str(exc))


def test_smoke_evaluation_fills_every_table(smoke_runs):
    assert len(smoke_runs) == 2  # smoke's noise_seeds
    m = smoke_runs[0].metrics
    names = set(TABLES["fathi2017.table1"].value_columns)
    for t in ("0.5", "0.6", "0.7"):
        assert set(m["table1"][t]) <= names | {"background"} and "mean" in m["table1"][t]
    assert set(m["table2"]) == {f"{a:g}" for a in fathi.ALPHAS}
    assert sorted(int(k) for k in m["table3"]) == list(fathi.TABLE3_SEEDS)
    # recall of the first n seeds cannot fall as n grows (a prefix of a prefix)
    ar = [m["table3"][str(k)]["ar_50"] for k in fathi.TABLE3_SEEDS]
    assert all(b >= a for a, b in zip(ar[:-1], ar[1:]))
    for t in (fathi.table1_ours, fathi.table2_ours, fathi.table3_ours):
        rows = t(smoke_runs[0])
        key = {fathi.table1_ours: "fathi2017.table1", fathi.table2_ours: "fathi2017.table2",
               fathi.table3_ours: "fathi2017.table3"}[t]
        results = check_claims(TABLES[key], rows)
        # a class with no instance among the 4 smoke val images has no AP (None), so the
        # class-comparing claim may be "not run" there; every other claim must be decided
        unrun = [r.claim.id for r in results if r.verdict == "not run" and r.claim.kind != "best_column"]
        assert not unrun, (key, unrun)


def test_smoke_noise_and_frames(smoke_runs):
    n1 = fathi.table1_noise(smoke_runs)
    assert "mean" in n1.sigma and n1.z == pytest.approx(12.706, abs=1e-3)  # t for 2 seeds
    n3 = fathi.table3_noise(smoke_runs)
    assert set(n3) == {f"n{k}" for k in fathi.TABLE3_SEEDS}


def test_table3_seed_counts_come_in_numeric_order():
    class R:
        metrics = {"table3": {k: {} for k in sorted(str(n) for n in fathi.TABLE3_SEEDS)}}  # as a result file has them

    assert fathi.table3_seed_counts(R()) == [str(n) for n in fathi.TABLE3_SEEDS]


@pytest.mark.filterwarnings("ignore::instseg_lib.metrics.errors.EmptyPredictionsWarning")
@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_bootstrap_records_give_the_evaluators_map(n_images, seed):
    """mAP from per-image TP records equals SDSEvaluator's, also for images drawn twice."""
    from instseg_lib.metrics import SDSEvaluator

    rng = np.random.default_rng(seed)
    classes = [1, 2, 3]
    imgs = []
    for _ in range(n_images):
        m, n = int(rng.integers(0, 6)), int(rng.integers(0, 4))
        gc = rng.integers(1, 4, n)
        pc = rng.integers(1, 4, m)
        sc = rng.random(m).round(2)  # ties happen
        iou = rng.random((m, n)) * (rng.random((m, n)) < 0.7)
        imgs.append((gc, pc, sc, iou))
    pick = rng.integers(0, n_images, n_images)
    ev = SDSEvaluator("sds", classes=classes)
    for k, i in enumerate(pick):
        ev.add_iou(k, imgs[i][3], imgs[i][0], imgs[i][1], imgs[i][2])
    recs = [fathi.image_tp_records(*imgs[i], classes) for i in pick]
    ref = ev.compute((0.5,)).map_at(0.5) if any(imgs[i][0].size for i in pick) else float("nan")
    got = fathi.map_from_records(recs, classes)
    if np.isnan(ref):
        assert np.isnan(got)
    else:
        assert got == pytest.approx(ref, abs=1e-12)


def test_wu_per_class_is_wus_own_result_and_agrees_with_its_mean(smoke_runs):
    res = fathi.wu_per_class("smoke")
    pc = res.metrics["per_class"]
    assert set(pc) == {"0.5", "0.6", "0.7"}
    assert pc["0.5"]["mean"] == pytest.approx(res.metrics["map_r_0.5"])
    assert pc["0.7"]["mean"] == pytest.approx(res.metrics["map_r_0.7"])
    frame = fathi.thin_class_frame(smoke_runs, res)
    assert any(m.startswith("Wu 2016") for m, _ in frame.index)
