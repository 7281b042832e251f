"""The dense CRF (Krähenbühl & Koltun 2011; CRF-RNN, Zheng et al. 2015; Arnab & Torr 2017 §3).

Hand-computed cases against the exact filter, invariants (probabilities, uniform stays
uniform, zero weights, smoothing, label permutation), gradients (gradcheck in double),
the lattice against the exact Gaussian and against pydensecrf2, and the failure cases.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from instseg_lib.models import DenseCRF, dense_crf, scale_position_widths
from instseg_lib.models.crf import PermutohedralLattice, spatial_kernel, unary_energy

EXACT = dict(bilateral_filter="exact", spatial_filter="exact")


def _softmax(x: np.ndarray, axis: int = 0) -> np.ndarray:
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def _reference_mean_field(u, img, it, ta, tb, tg, wb, ws, mu, include_self=True):
    """Direct numpy transcription of the update, pixel by pixel, with explicit sums.

    ``u`` (L, H, W) energies, ``img`` (C, H, W), ``mu`` (L, L) compatibility.
    """
    L, H, W = u.shape
    pix = [(y, x) for y in range(H) for x in range(W)]

    def kernel(i, j, bilateral):
        (yi, xi), (yj, xj) = pix[i], pix[j]
        if bilateral:
            e = ((xi - xj) ** 2 + (yi - yj) ** 2) / ta**2
            e += sum((img[c, yi, xi] - img[c, yj, xj]) ** 2 for c in range(img.shape[0])) / tb**2
        else:
            e = ((xi - xj) ** 2 + (yi - yj) ** 2) / tg**2
        return math.exp(-0.5 * e)

    n = len(pix)
    ks = []
    for bil in (True, False):
        k = np.array([[kernel(i, j, bil) for j in range(n)] for i in range(n)])
        if not include_self:
            k -= np.eye(n)
        dinv = 1 / np.sqrt(k.sum(1))
        ks.append(dinv[:, None] * k * dinv[None, :])
    uf = u.reshape(L, n)
    q = _softmax(-uf)
    for _ in range(it):
        msg = wb * q @ ks[0].T + ws * q @ ks[1].T  # (L, N)
        q = _softmax(-uf - mu @ msg)
    return q.reshape(L, H, W)


# ----------------------------------------------------------------------------- hand-computed


def test_two_pixels_one_iteration_closed_form():
    """1x2 image, equal colours, spatial kernel only: k = exp(-1 / 2 theta^2), D = 1 + k."""
    tg, ws = 2.0, 3.0
    u = torch.tensor([[[0.2, 1.5]], [[1.0, 0.1]]], dtype=torch.float64)  # (2 labels, 1, 2)
    img = torch.zeros(3, 1, 2, dtype=torch.float64)
    q = dense_crf(u, img, iterations=1, theta_gamma=tg, w_bilateral=0.0, w_spatial=ws,
                  unary_kind="energy", **EXACT)
    k = math.exp(-1 / (2 * tg**2))
    q0 = torch.softmax(-u[:, 0], 0)  # (2 labels, 2 pixels)
    msg = (q0 + k * q0.flip(1)) / (1 + k)  # Kn Q0 for each pixel
    expected = torch.softmax(-u[:, 0] + ws * msg, 0)  # Potts 1: -U - (1 - I) msg ~ -U + msg
    torch.testing.assert_close(q[:, 0], expected)


@pytest.mark.parametrize("include_self", [True, False])
def test_2x2_one_iteration_matches_explicit_sums(include_self):
    img = np.array([[[10, 200], [12, 190]], [[0, 50], [5, 60]], [[30, 30], [200, 40]]], dtype=np.float64)
    u = np.array([[[0.1, 2.0], [1.0, 0.3]], [[1.2, 0.2], [0.4, 0.9]], [[2.0, 1.0], [0.5, 0.5]]])
    args = dict(ta=1.5, tb=40.0, tg=1.0, wb=5.0, ws=3.0)
    mu = 1.0 - np.eye(3)
    ref = _reference_mean_field(u, img, 1, mu=mu, include_self=include_self, **args)
    q = dense_crf(torch.from_numpy(u), torch.from_numpy(img), iterations=1, unary_kind="energy",
                  theta_alpha=1.5, theta_beta=40.0, theta_gamma=1.0, w_bilateral=5.0, w_spatial=3.0,
                  include_self=include_self, **EXACT)
    np.testing.assert_allclose(q.numpy(), ref, rtol=1e-10, atol=1e-12)


def test_three_iterations_with_a_matrix_compatibility_match_explicit_sums():
    rng = np.random.default_rng(3)
    img = rng.uniform(0, 255, (3, 3, 4))
    u = rng.uniform(0, 3, (4, 3, 4))
    mu = rng.uniform(0, 2, (4, 4))
    ref = _reference_mean_field(u, img, 3, ta=2.0, tb=30.0, tg=1.5, wb=4.0, ws=2.0, mu=mu)
    q = dense_crf(torch.from_numpy(u), torch.from_numpy(img), iterations=3, unary_kind="energy",
                  theta_alpha=2.0, theta_beta=30.0, theta_gamma=1.5, w_bilateral=4.0, w_spatial=2.0,
                  compatibility=torch.from_numpy(mu), **EXACT)
    np.testing.assert_allclose(q.numpy(), ref, rtol=1e-10, atol=1e-12)


def test_separable_exact_spatial_kernel_equals_dense_exact():
    torch.manual_seed(0)
    u, img = torch.rand(3, 5, 7, dtype=torch.float64), torch.rand(3, 5, 7, dtype=torch.float64) * 255
    spatial_kernel.cache_clear()
    sep = dense_crf(u, img, w_bilateral=0.0, **EXACT)
    # A bilateral kernel with a huge colour width is the spatial kernel, dense N x N.
    dense = dense_crf(u, img, w_spatial=0.0, w_bilateral=3.0, theta_alpha=3.0, theta_beta=1e9, **EXACT)
    torch.testing.assert_close(sep, dense)


def test_potts_matrix_equals_potts_scalar():
    torch.manual_seed(1)
    u, img = torch.randn(4, 6, 6, dtype=torch.float64), torch.rand(3, 6, 6, dtype=torch.float64) * 255
    a = dense_crf(u, img, compatibility=2.0)
    b = dense_crf(u, img, compatibility=2.0 * (1 - torch.eye(4, dtype=torch.float64)))
    torch.testing.assert_close(a, b)


# ----------------------------------------------------------------------------- invariants


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    h=st.integers(1, 9), w=st.integers(1, 9), labels=st.integers(1, 6), it=st.integers(1, 4),
    seed=st.integers(0, 2**16), filt=st.sampled_from(["permutohedral", "exact"]),
    wb=st.floats(0, 20), ws=st.floats(0, 10),
)
def test_output_is_a_distribution_per_pixel(h, w, labels, it, seed, filt, wb, ws):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(labels, h, w, generator=g) * 5
    img = torch.randint(0, 256, (3, h, w), generator=g).float()
    q = dense_crf(logits, img, iterations=it, w_bilateral=wb, w_spatial=ws,
                  bilateral_filter=filt, spatial_filter=filt)
    assert q.shape == logits.shape
    assert torch.isfinite(q).all() and (q >= 0).all()
    torch.testing.assert_close(q.sum(0), torch.ones(h, w))


@pytest.mark.parametrize("filt", ["permutohedral", "exact"])
def test_constant_image_and_uniform_unary_stay_uniform(filt):
    img = torch.full((3, 10, 12), 77.0)
    q = dense_crf(torch.zeros(5, 10, 12), img, bilateral_filter=filt, spatial_filter=filt)
    torch.testing.assert_close(q, torch.full_like(q, 0.2))


@pytest.mark.parametrize("filt", ["permutohedral", "exact"])
def test_zero_weights_give_softmax_of_minus_unary(filt):
    torch.manual_seed(2)
    u, img = torch.rand(4, 8, 9) * 3, torch.rand(3, 8, 9) * 255
    q = dense_crf(u, img, w_bilateral=0.0, w_spatial=0.0, unary_kind="energy",
                  bilateral_filter=filt, spatial_filter=filt)
    torch.testing.assert_close(q, torch.softmax(-u, 0))
    q = dense_crf(u, img, compatibility=0.0, unary_kind="energy")
    torch.testing.assert_close(q, torch.softmax(-u, 0))


def test_large_smooth_regions_with_noisy_unary_get_smoothed():
    """Two flat regions of different colour; the unary is right on 70 % of the pixels."""
    h, w = 48, 64
    gt = torch.zeros(h, w, dtype=torch.long)
    gt[:, 30:] = 1
    img = torch.stack([gt * 180.0 + 30, 100 - gt * 60.0, 50 + gt * 100.0])
    g = torch.Generator().manual_seed(0)
    flip = torch.rand(h, w, generator=g) < 0.3
    noisy = torch.where(flip, 1 - gt, gt)
    probs = torch.nn.functional.one_hot(noisy, 2).permute(2, 0, 1).float() * 0.4 + 0.3  # 0.7 / 0.3
    theta_alpha, theta_gamma = scale_position_widths(image_size=64)
    q = dense_crf(probs, img, unary_kind="probs", theta_alpha=theta_alpha, theta_gamma=theta_gamma)
    acc_unary = (probs.argmax(0) == gt).float().mean().item()
    acc_crf = (q.argmax(0) == gt).float().mean().item()
    print(f"smoothing: unary accuracy {acc_unary:.3f} -> CRF {acc_crf:.3f}")
    assert acc_unary < 0.75 and acc_crf > 0.99


def test_potts_crf_is_equivariant_to_label_permutation():
    torch.manual_seed(4)
    u, img = torch.randn(5, 7, 8), torch.rand(3, 7, 8) * 255
    perm = torch.tensor([3, 0, 4, 1, 2])
    torch.testing.assert_close(dense_crf(u[perm], img), dense_crf(u, img)[perm])


def test_unary_kinds_agree():
    torch.manual_seed(5)
    logits, img = torch.randn(3, 6, 6, dtype=torch.float64), torch.rand(3, 6, 6, dtype=torch.float64) * 255
    a = dense_crf(logits, img, unary_kind="logits")
    b = dense_crf(-torch.log_softmax(logits, 0), img, unary_kind="energy")
    c = dense_crf(torch.softmax(logits, 0), img, unary_kind="probs")
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)
    torch.testing.assert_close(unary_energy(torch.tensor([0.0, 1.0]), "probs"),
                               torch.tensor([-math.log(1e-5), 0.0]))


def test_batch_equals_one_image_at_a_time_and_uint8_images_work():
    torch.manual_seed(6)
    u = torch.randn(2, 4, 9, 11)
    img = torch.randint(0, 256, (2, 3, 9, 11), dtype=torch.uint8)
    q = dense_crf(u, img)
    for b in range(2):
        torch.testing.assert_close(q[b], dense_crf(u[b], img[b].float()))


def test_any_number_of_channels_in_the_guidance_image():
    torch.manual_seed(7)
    q = dense_crf(torch.randn(3, 6, 7), torch.rand(1, 6, 7) * 255)  # grey
    assert torch.allclose(q.sum(0), torch.ones(6, 7))
    q = dense_crf(torch.randn(3, 6, 7), torch.rand(4, 6, 7) * 255)  # e.g. RGB + depth
    assert torch.allclose(q.sum(0), torch.ones(6, 7))


# ----------------------------------------------------------------------------- the lattice


@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_normalised_lattice_filter_approximates_the_exact_gaussian(d):
    g = torch.Generator().manual_seed(d)
    f = torch.rand(500, d, generator=g, dtype=torch.float64) * 4
    v = torch.rand(500, 3, generator=g, dtype=torch.float64)
    k = torch.exp(-0.5 * torch.cdist(f, f).square())
    lat = PermutohedralLattice(f)
    ones = torch.ones(500, 1, dtype=torch.float64)
    approx, exact = lat.filter(v) / lat.filter(ones), (k @ v) / (k @ ones)
    rel = ((approx - exact).norm() / exact.norm()).item()
    print(f"d={d}: normalised lattice vs exact Gaussian, relative error {rel:.4f}")
    assert rel < 0.05


def test_lattice_filter_is_linear_and_its_backward_is_its_transpose():
    g = torch.Generator().manual_seed(0)
    f = torch.rand(60, 5, generator=g, dtype=torch.float64) * 3
    lat = PermutohedralLattice(f)
    eye = torch.eye(60, dtype=torch.float64)
    a = lat.filter(eye)  # column j = A e_j
    v = torch.rand(60, 3, generator=g, dtype=torch.float64)
    torch.testing.assert_close(lat.filter(2.5 * v + 1.0), a @ (2.5 * v + 1.0))
    assert (a >= 0).all() and (a.diagonal() > 0).all()
    # The blurs do not commute, so A is not symmetric (nor is pydensecrf's); A^T is the
    # same filter with the blur directions in reverse order, which backward uses.
    torch.testing.assert_close(lat._apply(eye, reverse=True), a.T, rtol=0, atol=1e-12)
    v = torch.rand(60, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lat.filter, (v,))
    torch.testing.assert_close(PermutohedralLattice(f).ones_response(), a.sum(1))


def test_lattice_hashes_far_apart_points_to_separate_vertices():
    f = torch.tensor([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    lat = PermutohedralLattice(f)
    out = lat.filter(torch.eye(3))
    torch.testing.assert_close(out - out.diagonal().diag(), torch.zeros(3, 3))


# ----------------------------------------------------------------------------- gradients


def test_gradcheck_exact_path_unary_weights_and_potts():
    torch.manual_seed(8)
    img = torch.rand(3, 3, 3, dtype=torch.float64) * 255
    u = torch.randn(3, 3, 3, dtype=torch.float64, requires_grad=True)
    wb = torch.tensor(4.0, dtype=torch.float64, requires_grad=True)
    ws = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    p = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)

    def f(u, wb, ws, p):
        return dense_crf(u, img, iterations=3, theta_alpha=2.0, theta_beta=60.0, theta_gamma=1.0,
                         w_bilateral=wb, w_spatial=ws, compatibility=p, **EXACT)

    assert torch.autograd.gradcheck(f, (u, wb, ws, p))


def test_gradcheck_exact_path_compatibility_matrix():
    torch.manual_seed(9)
    img = torch.rand(3, 2, 3, dtype=torch.float64) * 255
    u = torch.randn(3, 2, 3, dtype=torch.float64, requires_grad=True)
    mu = (1 - torch.eye(3, dtype=torch.float64) + 0.1 * torch.rand(3, 3, dtype=torch.float64)).requires_grad_()
    f = lambda u, mu: dense_crf(u, img, iterations=2, theta_alpha=2.0, theta_beta=60.0,  # noqa: E731
                                theta_gamma=1.0, compatibility=mu, **EXACT)
    assert torch.autograd.gradcheck(f, (u, mu))


def test_gradcheck_lattice_path():
    torch.manual_seed(10)
    img = torch.rand(3, 4, 5, dtype=torch.float64) * 255
    u = torch.randn(2, 4, 5, dtype=torch.float64, requires_grad=True)
    wb = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    f = lambda u, wb: dense_crf(u, img, iterations=2, theta_alpha=3.0, theta_beta=50.0,  # noqa: E731
                                theta_gamma=1.0, w_bilateral=wb)
    assert torch.autograd.gradcheck(f, (u, wb))


def test_module_learns_its_parameters_and_takes_any_label_count_with_potts():
    crf = DenseCRF(iterations=3)
    names = {n for n, _ in crf.named_parameters()}
    assert names == {"w_bilateral", "w_spatial", "compatibility"}
    img = torch.rand(1, 3, 8, 8) * 255
    for labels in (2, 5):  # Arnab §3.3: D+1 instance labels vary per image
        logits = torch.randn(1, labels, 8, 8, requires_grad=True)
        crf.zero_grad()
        q = crf(logits, img)
        assert q.shape == (1, labels, 8, 8)
        (q[:, 0] ** 2).sum().backward()
        for n, p in crf.named_parameters():
            assert p.grad is not None and p.grad.abs() > 0, n
        assert logits.grad.abs().sum() > 0


def test_module_matrix_compatibility_is_potts_initialised_and_learnable():
    crf = DenseCRF(num_labels=4, compatibility="matrix")
    torch.testing.assert_close(crf.compatibility.detach(), 1 - torch.eye(4))
    img, logits = torch.rand(2, 3, 6, 6) * 255, torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(crf(logits, img), DenseCRF()(logits, img))
    crf(logits, img).square().sum().backward()
    assert crf.compatibility.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="compatibility must be a scalar"):
        crf(torch.randn(2, 3, 6, 6), img)


def test_module_without_learning_registers_buffers():
    crf = DenseCRF(learnable=False, iterations=3)
    assert not list(crf.parameters())
    assert {n for n, _ in crf.named_buffers()} == {"w_bilateral", "w_spatial", "compatibility"}
    assert "iterations=3" in repr(crf)


# ----------------------------------------------------------------------------- failures


@pytest.mark.parametrize("iterations", [0, -1, 1.5, True, "5"])
def test_bad_iteration_count_raises(iterations):
    u, img = torch.zeros(2, 3, 3), torch.zeros(3, 3, 3)
    with pytest.raises(ValueError, match="iterations must be a positive int"):
        dense_crf(u, img, iterations=iterations)
    with pytest.raises(ValueError, match="iterations"):
        DenseCRF(iterations=iterations)


@pytest.mark.parametrize("name", ["theta_alpha", "theta_beta", "theta_gamma"])
@pytest.mark.parametrize("value", [0.0, -3.0, float("nan"), float("inf")])
def test_zero_negative_or_non_finite_width_raises(name, value):
    u, img = torch.zeros(2, 3, 3), torch.zeros(3, 3, 3)
    with pytest.raises(ValueError, match=f"{name} must be a positive finite number"):
        dense_crf(u, img, **{name: value})
    with pytest.raises(ValueError, match=name):
        DenseCRF(**{name: value})


def test_shape_mismatches_raise():
    with pytest.raises(ValueError, match="differ in batch or size"):
        dense_crf(torch.zeros(2, 4, 4), torch.zeros(3, 4, 5))
    with pytest.raises(ValueError, match="differ in batch or size"):
        dense_crf(torch.zeros(2, 2, 4, 4), torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"\(B, L, H, W\)"):
        dense_crf(torch.zeros(4, 4), torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match="compatibility must be a scalar"):
        dense_crf(torch.zeros(2, 4, 4), torch.zeros(3, 4, 4), compatibility=torch.eye(3))


def test_bad_options_raise():
    u, img = torch.zeros(2, 3, 3), torch.zeros(3, 3, 3)
    with pytest.raises(ValueError, match="unknown filter kind"):
        dense_crf(u, img, bilateral_filter="windowed")
    with pytest.raises(ValueError, match="unknown unary kind"):
        dense_crf(u, img, unary_kind="log")
    with pytest.raises(ValueError, match="needs num_labels"):
        DenseCRF(compatibility="matrix")
    with pytest.raises(ValueError, match="'potts' or 'matrix'"):
        DenseCRF(compatibility="diagonal")
    with pytest.raises(ValueError, match="image_size"):
        scale_position_widths(image_size=0)


def test_scale_position_widths():
    assert scale_position_widths(80.0, 3.0, image_size=125) == (20.0, 0.75)
    assert scale_position_widths(80.0, 3.0, image_size=500) == (80.0, 3.0)


# ----------------------------------------------------------------------------- references


def _twin_inputs(h: int, w: int, labels: int, seed: int = 0):
    from instseg_lib.data.scene_voc import voc_scene

    scene = voc_scene(np.random.default_rng(seed), h, w)
    gt = np.where(scene.semantic < labels, scene.semantic, 0).astype(np.int64)
    rng = np.random.default_rng(seed + 1)
    logits = 3.0 * np.eye(labels)[gt].transpose(2, 0, 1) + rng.standard_normal((labels, h, w))
    energy = -np.log(np.clip(_softmax(logits), 1e-5, 1.0)).reshape(labels, -1)
    return np.ascontiguousarray(scene.image), gt, np.ascontiguousarray(energy, dtype=np.float32)


@pytest.mark.parametrize("scene", ["twin", "noise"])
def test_agrees_with_pydensecrf(scene):
    """A twin scene, and i.i.d. random colours (the lattice's worst case: most vertices)."""
    dcrf = pytest.importorskip("pydensecrf.densecrf")
    h, w, labels = 48, 64, 21
    image, gt, energy = _twin_inputs(h, w, labels)
    if scene == "noise":
        image = np.random.default_rng(5).integers(0, 256, image.shape, dtype=np.uint8)
    ta, tg = scale_position_widths(80.0, 3.0, image_size=64, reference_size=320)
    ref = dcrf.DenseCRF2D(w, h, labels)
    ref.setUnaryEnergy(energy)
    ref.addPairwiseGaussian(sxy=tg, compat=3)
    ref.addPairwiseBilateral(sxy=ta, srgb=13, rgbim=image, compat=10)
    q_ref = np.array(ref.inference(5)).reshape(labels, h, w)
    q = dense_crf(torch.from_numpy(energy).view(labels, h, w), torch.from_numpy(image).permute(2, 0, 1),
                  iterations=5, theta_alpha=ta, theta_beta=13.0, theta_gamma=tg, w_bilateral=10.0,
                  w_spatial=3.0, unary_kind="energy").numpy()
    agree = (q.argmax(0) == q_ref.argmax(0)).mean()
    exact_sp = dense_crf(torch.from_numpy(energy).view(labels, h, w),
                         torch.from_numpy(image).permute(2, 0, 1).float(), theta_alpha=ta,
                         theta_gamma=tg, unary_kind="energy", spatial_filter="exact").numpy()
    agree_exact = (exact_sp.argmax(0) == q_ref.argmax(0)).mean()
    print(f"{scene}: label agreement with pydensecrf2: {100 * agree:.2f} % (lattice spatial), "
          f"{100 * agree_exact:.2f} % (exact spatial); max |Q - Q_ref| {np.abs(q - q_ref).max():.2e}")
    assert agree >= 0.99 and agree_exact >= 0.95
    np.testing.assert_allclose(q, q_ref, atol=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    torch.manual_seed(11)
    u, img = torch.randn(1, 6, 40, 50), torch.rand(1, 3, 40, 50) * 255
    crf = DenseCRF()
    q = crf(u, img)
    torch.testing.assert_close(crf.cuda()(u.cuda(), img.cuda()).cpu(), q, atol=1e-4, rtol=1e-4)
