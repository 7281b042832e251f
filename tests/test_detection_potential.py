"""The higher-order detection potential (Arnab et al. 2016, in Arnab & Torr 2017 §3.1) as a
mean-field term of the dense CRF: hand-computed updates, recalibration in the right
direction, gradients, and refused inputs."""

from __future__ import annotations

import math

import pytest
import torch

from instseg_lib.detections import Detection
from instseg_lib.models import DetectionPotential, dense_crf

EXACT = {"bilateral_filter": "exact", "spatial_filter": "exact"}


def _image(h=4, w=5, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, h, w, generator=g, dtype=dtype) * 255


def test_one_step_by_hand():
    pot = DetectionPotential(3)
    det = Detection(2, 0.8, (0.0, 0.0, 1.0, 2.0))  # pixels (0, 0) and (1, 0) of a 2 x 2 image: rows 0, 2
    bound = pot.for_image([det], (2, 2))
    bound.start(2, 2)
    q = torch.tensor([[0.2, 0.2, 0.6], [0.1, 0.1, 0.8], [0.5, 0.5, 0.0], [0.2, 0.7, 0.1]], dtype=torch.float64)
    msg = bound.step(q)
    w = 1.0  # softplus(raw) starts at 1
    p = 0.8
    x = w * 0.8
    # message from the prior Q(Y): label 2 gets -x Q(Y=0), others -x Q(Y=1), on the box's pixels only
    expect = torch.zeros(4, 3, dtype=torch.float64)
    for i in (0, 2):
        expect[i] = -x * p
        expect[i, 2] = -x * (1 - p)
    torch.testing.assert_close(msg, expect)
    # Y update: y = w s / |F| = 0.4; sums of Q_i(2) over F: 0.6 + 0.0, of 1 - Q_i(2): 1.4
    y = w * 0.8 / 2
    l0, l1 = math.log(1 - p) - y * 0.6, math.log(p) - y * 1.4
    q1 = math.exp(l1) / (math.exp(l0) + math.exp(l1))
    assert float(bound.scores()[0].detach()) == pytest.approx(q1)


def test_no_detection_leaves_the_crf_unchanged():
    img = _image()
    unary = torch.randn(1, 4, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    plain = dense_crf(unary, img[None], iterations=3, **EXACT)
    pot = DetectionPotential(4)
    with_ho = dense_crf(unary, img[None], iterations=3, higher_order=pot.for_image([], (4, 5)), **EXACT)
    torch.testing.assert_close(plain, with_ho)


def test_a_detection_its_pixels_agree_with_is_recalibrated_up_and_one_they_refute_down():
    h, w = 6, 8
    img = _image(h, w)
    logits = torch.zeros(1, 3, h, w, dtype=torch.float64)
    logits[0, 1, :, :4] = 4.0  # class 1 on the left half
    logits[0, 0, :, 4:] = 4.0  # background on the right half
    good = Detection(1, 0.6, (0.0, 0.0, 4.0, 6.0))
    bad = Detection(2, 0.6, (4.0, 0.0, 8.0, 6.0))
    bound = DetectionPotential(3).for_image([good, bad], (h, w))
    q = dense_crf(logits, img[None], iterations=5, higher_order=bound, **EXACT)
    s = bound.scores()
    assert float(s[0]) > 0.6 > float(s[1])
    # a believed detection pushes its pixels towards its class
    plain = dense_crf(logits, img[None], iterations=5, **EXACT)
    assert float(q[0, 1, :, :4].mean()) >= float(plain[0, 1, :, :4].mean())


def test_gradients_reach_the_unary_and_the_weights():
    h, w = 3, 4
    img = _image(h, w)
    unary = torch.randn(1, 3, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(2), requires_grad=True)
    pot = DetectionPotential(3).double()
    dets = [Detection(1, 0.7, (0.0, 0.0, 2.0, 2.0)), Detection(2, 0.9, (1.0, 1.0, 4.0, 3.0))]

    def f(u):
        b = pot.for_image(dets, (h, w))
        q = dense_crf(u, img[None], iterations=2, higher_order=b, **EXACT)
        return (q ** 2).sum() + b.scores().sum()

    assert torch.autograd.gradcheck(f, (unary,), eps=1e-6, atol=1e-5)
    f(unary).backward()
    assert float(pot.raw_x.grad.abs()[1:].min()) > 0 and float(pot.raw_y.grad.abs()[1:].min()) > 0
    assert float(pot.raw_x.grad[0]) == 0.0  # no background detection, no gradient for its weight


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="num_classes"):
        DetectionPotential(1)
    with pytest.raises(ValueError, match="outside"):
        DetectionPotential(3).for_image([Detection(5, 0.5, (0.0, 0.0, 1.0, 1.0))], (4, 4))
    b = DetectionPotential(3).for_image([Detection(1, 0.5, (0.0, 0.0, 1.0, 1.0))], (4, 4))
    with pytest.raises(ValueError, match="bound for a"):
        dense_crf(torch.zeros(1, 3, 5, 5), _image(5, 5, dtype=torch.float32)[None], higher_order=b)
    with pytest.raises(ValueError, match="one image"):
        dense_crf(torch.zeros(2, 3, 4, 4), _image(4, 4, dtype=torch.float32)[None].expand(2, -1, -1, -1),
                  higher_order=b)
