"""Fathi et al. 2017: similarity (Eq. 1), embedding loss (§3.2), seediness (§3.4), seeds (§3.3), FathiNet."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from instseg_lib.grouping import (
    candidate_grid,
    first_n,
    grow_masks,
    sample_seeds,
    seed_group,
    seediness_from_probs,
    seediness_targets,
    select_seeds,
)
from instseg_lib.losses import (
    embedding_loss,
    embedding_pair_loss,
    embedding_pair_weights,
    fathi_lambda,
    fathi_loss,
    sample_pixels_per_instance,
    seediness_loss,
)
from instseg_lib.models import (
    FATHI_TAUS,
    FCRN,
    EmbeddingHead,
    FathiConfig,
    FathiNet,
    FCRNConfig,
    distance_threshold,
    log_dissimilarity,
    log_similarity,
    pairwise_sq_distances,
    similarity,
)

FAST = settings(max_examples=30, deadline=None)


# --------------------------------------------------------------------------- Eq. 1
def test_similarity_hand_values_and_extremes():
    d2 = torch.tensor([0.0, 1.0, 1e4])
    torch.testing.assert_close(similarity(d2), torch.tensor([1.0, 2 / (1 + math.e), 0.0]))
    assert log_similarity(torch.tensor(0.0)).item() == 0.0  # σ(p, p) = 1
    assert torch.isfinite(log_similarity(torch.tensor(1e6)))  # no overflow far away
    moderate = torch.tensor([0.05, 0.5, 2.0, 8.0])
    torch.testing.assert_close(log_dissimilarity(moderate), torch.log(1 - similarity(moderate)))


def test_log_dissimilarity_finite_at_coinciding_embeddings_with_gradient():
    d2 = torch.zeros(3, requires_grad=True)
    v = log_dissimilarity(d2, eps=1e-4)
    assert torch.isfinite(v).all()
    torch.testing.assert_close(v, torch.full((3,), math.log(math.tanh(5e-5))))
    v.sum().backward()
    assert torch.isfinite(d2.grad).all() and (d2.grad > 0).all()  # still pushes apart (straight-through)
    with pytest.raises(ValueError, match="eps"):
        log_dissimilarity(d2, eps=0.0)


def test_distance_threshold_round_trips_to_tau():
    thr = distance_threshold(FATHI_TAUS)
    torch.testing.assert_close(similarity(thr), torch.tensor(FATHI_TAUS))
    torch.testing.assert_close(thr[1], torch.tensor(math.log(3.0)))


@pytest.mark.parametrize("tau", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_bad_tau_is_refused(tau):
    with pytest.raises(ValueError, match="τ"):
        distance_threshold([0.5, tau])
    with pytest.raises(ValueError, match="τ"):
        FathiConfig(taus=(0.5, tau)).validate()


def test_pairwise_sq_distances_match_cdist_and_are_nonnegative():
    torch.manual_seed(0)
    a, b = torch.randn(7, 5), torch.randn(4, 5)
    torch.testing.assert_close(pairwise_sq_distances(a, b), torch.cdist(a, b) ** 2, atol=1e-5, rtol=1e-5)
    assert (pairwise_sq_distances(a, a) >= 0).all()


# --------------------------------------------------------------------------- §3.2 embedding loss
def test_two_point_loss_hand_values():
    e = torch.tensor([[0.0], [1.0]])  # squared distance 1
    sizes = torch.tensor([5, 7])
    diff = embedding_pair_loss(e, torch.tensor([1, 2]), sizes)
    same = embedding_pair_loss(e, torch.tensor([1, 1]), sizes)
    torch.testing.assert_close(diff, torch.tensor(-math.log(math.tanh(0.5))))  # 0.7719
    torch.testing.assert_close(same, torch.tensor(math.log1p(math.e) - math.log(2)))  # 0.6201
    assert abs(diff.item() - 0.7719) < 1e-4


def test_pair_weights_inverse_size_sum_to_one_and_skip_diagonal():
    w = embedding_pair_weights(torch.tensor([1, 2, 4]))
    assert torch.allclose(w.sum(), torch.tensor(1.0)) and (w.diagonal() == 0).all()
    # w_pq ∝ 1/(n_p n_q): off-diagonal products 1/2, 1/4, 1/8 (twice each), sum 1.75
    torch.testing.assert_close(w[0, 1], torch.tensor(0.5 / 1.75))
    torch.testing.assert_close(w[1, 2], torch.tensor(0.125 / 1.75))
    wd = embedding_pair_weights(torch.tensor([1, 2]), include_diagonal=True)
    assert wd[0, 0] > 0 and torch.allclose(wd.sum(), torch.tensor(1.0))
    wu = embedding_pair_weights(torch.tensor([1, 9, 9]), "uniform")
    torch.testing.assert_close(wu[0, 1], torch.tensor(1 / 6))
    assert embedding_pair_weights(torch.tensor([3])).sum() == 0  # one sample: no pair
    with pytest.raises(ValueError, match="weighting"):
        embedding_pair_weights(torch.tensor([1, 2]), "bogus")


@FAST
@given(st.integers(2, 24), st.integers(1, 4), st.integers(0, 10_000), st.floats(0.0, 3.0))
def test_pair_loss_nonnegative_finite_with_finite_gradient(m, n_ids, seed, spread):
    g = torch.Generator().manual_seed(seed)
    e = (torch.randn(m, 3, generator=g) * spread).requires_grad_(True)
    ids = torch.randint(0, n_ids, (m,), generator=g)
    sizes = torch.randint(1, 50, (m,), generator=g)
    loss = embedding_pair_loss(e, ids, sizes)
    assert torch.isfinite(loss) and loss.item() >= 0
    loss.backward()
    assert torch.isfinite(e.grad).all()


def test_loss_finite_at_coinciding_embeddings():
    e = torch.zeros(6, 4, requires_grad=True)
    loss = embedding_pair_loss(e, torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([9, 9, 3, 3, 2, 2]))
    assert torch.isfinite(loss) and loss.item() > 1.0  # different instances coincide: a large loss
    loss.backward()
    assert torch.isfinite(e.grad).all()


def test_perfectly_separated_embeddings_give_near_zero_loss():
    ids = torch.tensor([0, 0, 0, 1, 1, 2])
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])  # squared distances >= 100
    loss = embedding_pair_loss(centres[ids], ids, torch.tensor([30, 30, 30, 4, 4, 1]))
    assert 0 <= loss.item() < 1e-6


def test_sampler_takes_at_most_k_per_group_without_replacement():
    groups = torch.tensor([3] * 10 + [0] * 2 + [7] * 5)
    idx = sample_pixels_per_instance(groups, 4, torch.Generator().manual_seed(0))
    assert len(set(idx.tolist())) == len(idx)  # no duplicates
    counts = torch.bincount(groups[idx], minlength=8)
    assert counts[3] == 4 and counts[0] == 2 and counts[7] == 4  # the 2-pixel group gives both pixels
    assert sample_pixels_per_instance(torch.zeros(0, dtype=torch.long), 4).numel() == 0
    with pytest.raises(ValueError, match="k"):
        sample_pixels_per_instance(groups, 0)


def _two_instance_image(h: int = 16, w: int = 16) -> torch.Tensor:
    inst = torch.zeros(1, h, w, dtype=torch.long)
    inst[0, 2:8, 2:8] = 1
    inst[0, 9:15, 4:14] = 2
    return inst


def test_embedding_loss_ignores_void_and_counts_background_as_an_instance():
    inst = _two_instance_image()
    valid = torch.ones_like(inst, dtype=torch.bool)
    valid[0, :, 0] = False
    emb = torch.zeros(1, 3, 16, 16)
    emb[0, 0][inst[0] == 1] = 10.0
    emb[0, 1][inst[0] == 2] = 10.0
    emb[0, :, :, 0] = float("nan")  # void pixels: a sampled one would poison the loss
    emb.requires_grad_(True)
    loss = embedding_loss(emb, inst, valid, k=8, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and loss.item() < 1e-6  # background, 1 and 2 all separated
    loss.backward()
    assert (emb.grad[0, :, :, 0] == 0).all()
    # Background coinciding with instance 1: background is an instance, so this costs.
    emb2 = torch.zeros(1, 3, 16, 16)
    emb2[0, 1][inst[0] == 2] = 10.0
    assert embedding_loss(emb2, inst, valid, k=8).item() > 1.0


def test_embedding_loss_all_void_batch_is_zero_with_graph():
    emb = torch.randn(2, 4, 8, 8, requires_grad=True)
    loss = embedding_loss(emb, torch.zeros(2, 8, 8, dtype=torch.long), torch.zeros(2, 8, 8, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert (emb.grad == 0).all()


def test_embedding_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="instances"):
        embedding_loss(torch.zeros(1, 4, 8, 8), torch.zeros(1, 8, 9, dtype=torch.long))


# --------------------------------------------------------------------------- §3.4 seediness
def _perfect_embedding(inst: torch.Tensor, d: int = 4) -> torch.Tensor:
    """(d, H, W): each id at its own corner of a large simplex (squared distances 200)."""
    return (torch.nn.functional.one_hot(inst, d).permute(2, 0, 1) * 10.0).float()


def test_seediness_targets_with_perfect_embeddings_copy_instance_classes():
    inst = _two_instance_image()[0]
    pts = torch.tensor([2 * 16 + 2, 10 * 16 + 5, 0])  # in instance 1, in instance 2, background
    tg = seediness_targets(_perfect_embedding(inst), pts, inst, torch.tensor([5, 3]))
    assert tg.labels.shape == (len(FATHI_TAUS), 3)
    assert (tg.labels[:, 0] == 5).all() and (tg.labels[:, 1] == 3).all() and (tg.labels[:, 2] == 0).all()
    torch.testing.assert_close(tg.iou[:, :2], torch.ones(len(FATHI_TAUS), 2))
    assert tg.match[:, :2].tolist() == [[1, 2]] * len(FATHI_TAUS)


def test_seediness_targets_collapsed_embeddings_label_by_iou_threshold():
    inst = torch.zeros(10, 10, dtype=torch.long)
    inst[:, :6] = 1  # 60 % of the image
    inst[:, 8:] = 2
    pts = torch.tensor([0, 9, 7])
    same = torch.zeros(4, 10, 10)  # every mask is the whole image: IoU 0.6 with instance 1
    tg = seediness_targets(same, pts, inst, torch.tensor([4, 2]))
    assert (tg.labels == 4).all()
    inst[:, 5] = 0  # now 50 %: not above the threshold
    assert (seediness_targets(same, pts, inst, torch.tensor([4, 2])).labels == 0).all()
    # Void pixels are in neither mask nor ground truth: void out the rest and IoU is 1 again.
    valid = inst > 0
    assert (seediness_targets(same, pts[:2], inst, torch.tensor([4, 2]), valid=valid).labels == 4).all()


def test_seediness_targets_without_instances_are_background():
    tg = seediness_targets(torch.zeros(4, 6, 6), torch.tensor([0, 5]), torch.zeros(6, 6, dtype=torch.long),
                           torch.zeros(0, dtype=torch.long))
    assert (tg.labels == 0).all()
    with pytest.raises(ValueError, match="class"):
        seediness_targets(torch.zeros(4, 6, 6), torch.tensor([0]), torch.ones(6, 6, dtype=torch.long),
                          torch.zeros(0, dtype=torch.long))


def test_seediness_loss_uses_detached_embeddings_and_sampled_points_only():
    inst = _two_instance_image()
    emb = _perfect_embedding(inst[0])[None].clone().requires_grad_(True)
    logits = torch.zeros(1, len(FATHI_TAUS), 6, 16, 16, requires_grad=True)
    loss = seediness_loss(logits, emb, inst, [torch.tensor([5, 3])], k=3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(loss, torch.tensor(math.log(6.0)))  # uniform logits
    loss.backward()
    assert emb.grad is None  # targets from detached embeddings
    touched = (logits.grad.abs().sum((1, 2)) > 0)[0]
    assert 0 < int(touched.sum()) <= 3 * 3  # k = 3 points per instance, background included
    assert bool((inst[0][touched] == 0).any())  # background points are trained too
    with pytest.raises(ValueError, match="class"):
        seediness_loss(logits, emb, inst, [torch.tensor([9, 3])])


def test_seediness_from_probs_hand_case():
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.2, 0.1, 0.7]]).view(2, 3, 1, 1)
    s = seediness_from_probs(probs)
    assert (s.score.item(), s.tau_index.item(), s.classes.item()) == (pytest.approx(0.7), 1, 2)
    a = seediness_from_probs(probs, "class_agnostic")
    assert (a.score.item(), a.tau_index.item(), a.classes.item()) == (pytest.approx(0.8), 1, 2)
    with pytest.raises(ValueError, match="mode"):
        seediness_from_probs(probs, "bogus")


# --------------------------------------------------------------------------- §3.3 seeds
def _random_candidates(p: int, seed: int, d: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(p, d, generator=g), torch.rand(p, generator=g) * 0.98 + 0.01


@FAST
@given(st.integers(1, 40), st.integers(0, 10_000), st.sampled_from([0.0, 0.3, 1.0, 3.0]), st.data())
def test_seed_selection_is_prefix_stable_and_distinct(p, seed, alpha, data):
    emb, s = _random_candidates(p, seed)
    big = select_seeds(emb, s, p, alpha)
    n = data.draw(st.integers(0, p))
    assert torch.equal(select_seeds(emb, s, n, alpha), big[:n])
    assert len(set(big.tolist())) == len(big)
    assert big[0] == s.argmax()  # first seed: the highest seediness


@FAST
@given(st.integers(1, 40), st.integers(0, 10_000))
def test_alpha_zero_picks_in_seediness_order(p, seed):
    emb, s = _random_candidates(p, seed)
    s = (s * 4).ceil() / 4  # ties on purpose (values 0.25..1, never 0): broken by candidate order
    order = select_seeds(emb, s, p, alpha=0.0)
    expected = sorted(range(p), key=lambda i: (-s[i].item(), i))
    assert order.tolist() == expected


def test_diversity_term_moves_the_second_seed_to_another_cluster():
    emb = torch.tensor([[0.0, 0], [0.1, 0], [5, 5]])
    s = torch.tensor([0.9, 0.8, 0.5])
    assert select_seeds(emb, s, 2, alpha=0.0).tolist() == [0, 1]
    assert select_seeds(emb, s, 2, alpha=1.0).tolist() == [0, 2]
    # log 0.8 + log 0.01 < log 0.5 + log 50: diversity wins; an exact copy is never chosen (D = 0).
    dup = torch.tensor([[0.0, 0], [0.0, 0]])
    assert select_seeds(dup, torch.tensor([0.9, 0.8]), 2, alpha=0.5).tolist() == [0]


def test_select_seeds_rejects_bad_arguments():
    emb, s = _random_candidates(5, 0)
    with pytest.raises(ValueError, match="alpha"):
        select_seeds(emb, s, 2, alpha=-0.1)
    with pytest.raises(ValueError, match="num_seeds"):
        select_seeds(emb, s, -1)
    assert select_seeds(emb, torch.zeros(5), 3).numel() == 0  # S = 0 everywhere: no seed


@FAST
@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 10_000), st.sampled_from(FATHI_TAUS))
def test_grown_masks_contain_their_seed(h, w, seed, tau):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(5, h, w, generator=g) * 100  # large values: rounding in A² + B² - 2AB
    idx = torch.randint(0, h * w, (4,), generator=g)
    masks = grow_masks(emb, idx, distance_threshold([tau]).expand(4))
    assert masks.reshape(4, -1)[torch.arange(4), idx].all()


def test_grow_masks_use_each_seeds_own_threshold():
    emb = torch.tensor([0.0, 1.0, 3.0]).view(1, 1, 3)  # squared distances 1 and 9 from pixel 0
    thr = distance_threshold([0.5, 0.75])  # ln 3 = 1.10 and ln(5/3) = 0.51
    masks = grow_masks(emb, torch.tensor([0, 0]), thr)
    assert masks[0, 0].tolist() == [True, True, False] and masks[1, 0].tolist() == [True, False, False]


def test_candidate_grid():
    assert candidate_grid(8, 8, 4).tolist() == [2 * 8 + 2, 2 * 8 + 6, 6 * 8 + 2, 6 * 8 + 6]
    assert candidate_grid(1, 1, 4).tolist() == [0]
    assert candidate_grid(0, 5).numel() == 0
    with pytest.raises(ValueError, match="stride"):
        candidate_grid(4, 4, 0)


def _two_instance_outputs(c: int = 3):
    """Perfect embeddings and probabilities for the two-instance image (classes 1 and 2)."""
    inst = _two_instance_image()[0]
    emb = _perfect_embedding(inst)
    cls = torch.tensor([0, 1, 2])[inst]
    probs = torch.full((len(FATHI_TAUS), c, 16, 16), 0.05)
    probs[:, :, :, :] = torch.nn.functional.one_hot(cls, c).permute(2, 0, 1) * 0.9 + 0.05
    return inst, emb, probs


def test_seed_group_recovers_two_instances_in_two_seeds():
    inst, emb, probs = _two_instance_outputs()
    res = seed_group(emb, probs, num_seeds=2, alpha=0.3, stride=1)
    assert res.masks.shape == (2, 16, 16)
    found = {tuple(res.classes.tolist())}
    assert found == {(1, 2)} or found == {(2, 1)}
    for m, c in zip(res.masks, res.classes):
        assert torch.equal(m, inst == c)  # class c lies on instance c here
    torch.testing.assert_close(res.scores, torch.full((2,), 0.95))


def test_first_n_of_a_large_run_equals_a_small_run():
    torch.manual_seed(0)
    emb = torch.randn(4, 20, 24)
    probs = torch.randn(len(FATHI_TAUS), 3, 20, 24).softmax(1)
    big = seed_group(emb, probs, num_seeds=25)
    for n in (0, 1, 7, 25):
        small = seed_group(emb, probs, num_seeds=n)
        part = first_n(big, n)
        assert torch.equal(small.masks, part.masks) and torch.equal(small.classes, part.classes)
        assert torch.equal(small.scores, part.scores)
    with pytest.raises(ValueError):
        first_n(big, -1)


def test_mask_nms_switch_removes_duplicate_masks():
    inst, emb, probs = _two_instance_outputs()
    plain = seed_group(emb, probs, num_seeds=6, alpha=0.0, stride=1)
    assert len(plain.scores) == 6  # α = 0: seeds pile up on one instance, duplicates
    nms = seed_group(emb, probs, num_seeds=6, alpha=0.0, stride=1, mask_nms_iou=0.5)
    assert len(nms.scores) < len(plain.scores)


def test_class_agnostic_mode_scores_foreground_probability():
    inst, emb, probs = _two_instance_outputs()
    res = seed_group(emb, probs, num_seeds=2, stride=1, mode="class_agnostic")
    torch.testing.assert_close(res.scores, torch.full((2,), 0.95 + 0.05))
    sel = sample_seeds(emb, probs, num_seeds=2, stride=1)
    assert sel.yx(16).shape == (2, 2) and set(inst.reshape(-1)[sel.index].tolist()) == {1, 2}


@pytest.mark.parametrize("h,w", [(0, 0), (0, 7), (5, 0)])
def test_empty_image_gives_zero_instances(h, w):
    res = seed_group(torch.zeros(4, h, w), torch.zeros(len(FATHI_TAUS), 3, h, w))
    assert res.masks.shape == (0, h, w) and res.classes.numel() == 0 and res.scores.numel() == 0


def test_seed_group_input_errors():
    emb, probs = torch.zeros(4, 8, 8), torch.full((len(FATHI_TAUS), 3, 8, 8), 1 / 3)
    assert seed_group(emb, probs, num_seeds=0).masks.shape == (0, 8, 8)
    with pytest.raises(ValueError, match="taus"):
        seed_group(emb, probs, taus=(0.5, 0.75))
    with pytest.raises(ValueError, match="τ"):
        seed_group(emb, probs[:2], taus=(0.5, 1.2))
    with pytest.raises(ValueError, match="mode"):
        seed_group(emb, probs, mode="bogus")
    with pytest.raises(ValueError, match="NaN"):
        seed_group(emb, probs * float("nan"))
    with pytest.raises(ValueError, match="sizes"):
        seed_group(emb, probs[..., :7])


# --------------------------------------------------------------------------- FathiNet
def _tiny(**kw) -> FathiNet:
    return FathiNet(FathiConfig(depth=50, width=8, num_classes=3, embedding_dim=8, **kw))


def _batch(inst: torch.Tensor) -> dict:
    sem = inst.clamp(max=2).clone()
    sem[:, 0, :] = 255
    return {"instances": inst, "semantic": sem, "instance_classes": [torch.tensor([1, 2])] * len(inst)}


@pytest.mark.parametrize("d", [1, 257])
def test_bad_embedding_dim_is_refused(d):
    with pytest.raises(ValueError, match="embedding"):
        FathiConfig(embedding_dim=d).validate()
    with pytest.raises(ValueError, match="embedding"):
        EmbeddingHead(16, d)


def test_fathinet_smoke_forward_backward_reaches_heads_and_trunk():
    torch.manual_seed(0)
    net = _tiny()
    x = torch.randn(2, 3, 48, 48)
    out = net(x)
    assert out.embedding.shape == (2, 8, 48, 48) and out.logits.shape == (2, len(FATHI_TAUS), 3, 48, 48)
    torch.testing.assert_close(out.class_probs().sum(2), torch.ones(2, len(FATHI_TAUS), 48, 48))
    inst = torch.zeros(2, 48, 48, dtype=torch.long)
    inst[:, 4:20, 4:20] = 1
    inst[:, 26:44, 10:40] = 2
    loss, parts = fathi_loss(out, _batch(inst), lam=0.2, k_embedding=16)
    assert torch.isfinite(loss) and set(parts) == {"embedding", "seediness"}
    loss.backward()
    for name, mod in (("embedding", net.embedding_head), ("seediness", net.seediness_head), ("trunk", net.backbone)):
        grads = [p.grad for p in mod.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), name
        assert any(g.abs().sum() > 0 for g in grads), name


def test_lambda_zero_trains_the_embedding_only():
    net = _tiny()
    inst = _two_instance_image(48, 48)
    loss, parts = fathi_loss(net(torch.randn(1, 3, 48, 48)), _batch(inst), lam=0.0, k_embedding=8)
    loss.backward()
    assert math.isnan(parts["seediness"].item())
    assert all(p.grad is not None and (p.grad == 0).all() for p in net.seediness_head.parameters())
    assert [fathi_lambda(s, 10, 4) for s in (0, 9, 10, 11, 13, 99)] == pytest.approx([0, 0, 0.05, 0.1, 0.2, 0.2])
    assert fathi_lambda(0, 0, 0) == 0.2


def test_multiscale_switch_averages_pyramid_features():
    torch.manual_seed(0)
    net = _tiny(multiscale=True).eval()
    x = torch.randn(1, 3, 48, 48)
    out = net(x)
    assert out.embedding.shape == (1, 8, 48, 48) and out.logits.shape == (1, len(FATHI_TAUS), 3, 48, 48)
    one = _tiny(multiscale=True, scales=(1.0,)).eval()
    one.load_state_dict(net.state_dict())
    single = _tiny().eval()
    single.load_state_dict(net.state_dict())
    torch.testing.assert_close(one(x).embedding, single(x).embedding)  # a 1-level pyramid is the plain net
    assert not torch.allclose(out.embedding, single(x).embedding)


def test_param_groups_and_trunk_from_fcrn():
    net = _tiny()
    groups = net.param_groups(0.01, trunk_lr_scale=0.1)
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in net.parameters()) and len(set(ids)) == len(ids)
    assert [g["lr"] for g in groups] == pytest.approx([0.001, 0.01])
    fcrn = FCRN(FCRNConfig(depth=50, width=8, num_classes=3))
    net.load_trunk(fcrn.state_dict())  # §3.5: semantic-segmentation trunk, classifier chopped
    torch.testing.assert_close(net.backbone.conv1.weight, fcrn.backbone.conv1.weight)
    assert net.init_info["pretrained"]


def test_min_score_keeps_low_seediness_pixels_from_being_seeds():
    inst, emb, probs = _two_instance_outputs()
    sel = sample_seeds(emb, probs, num_seeds=50, stride=1, min_score=0.5)
    assert len(sel.index) == 2 and (sel.scores >= 0.5).all()  # D = 0 inside an instance, background too low


@pytest.mark.parametrize("weighting", ["inverse_size", "uniform"])
def test_free_embeddings_trained_by_the_loss_are_grouped_back_into_instances(weighting):
    """End to end without a network: L_e (§3.2) alone separates the instances, and seeds
    grown on the learned embeddings (§3.3) recover them. Free per-pixel embeddings only
    move where sampled, so k covers the instances and most of the background each step."""
    torch.manual_seed(0)
    inst = _two_instance_image()
    emb = torch.nn.Parameter(torch.randn(1, 4, 16, 16) * 0.01)
    opt = torch.optim.Adam([emb], lr=0.1)
    first = None
    for _ in range(150):
        loss = embedding_loss(emb, inst, k=64, weighting=weighting)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first
    _, _, probs = _two_instance_outputs()
    res = seed_group(emb.detach()[0], probs, num_seeds=2, stride=2)
    for c in (1, 2):
        m = res.masks[res.classes == c][0]
        iou = ((m & (inst[0] == c)).sum() / (m | (inst[0] == c)).sum()).item()
        assert iou > 0.9, (c, iou)
