"""Losses of Wu et al. 2016: bootstrapped CE (§2.2 Eq. 1) and the localization loss (§2.1)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from instseg_lib.losses import (
    bootstrapped_cross_entropy,
    box_iou_from_offsets,
    hard_pixel_mask,
    instance_size_weights,
    weighted_smooth_l1,
)


def _logits_with_true_prob(p_true: torch.Tensor, target: torch.Tensor, c: int = 3) -> torch.Tensor:
    """Logits whose softmax gives probability ``p_true`` to the target class."""
    rest = (1 - p_true) / (c - 1)
    probs = rest.unsqueeze(1).repeat(1, c, 1, 1)
    probs.scatter_(1, target.unsqueeze(1), p_true.unsqueeze(1))
    return probs.log()


@pytest.mark.parametrize("k", [None, 0])
def test_plain_cross_entropy_when_k_is_off(k):
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 6, 6)
    target = torch.randint(0, 4, (2, 6, 6))
    target[0, 0, :3] = 255
    ref = F.cross_entropy(logits, target, ignore_index=255)
    torch.testing.assert_close(bootstrapped_cross_entropy(logits, target, k), ref)


def test_keeps_exactly_k_hardest_per_image_and_easy_pixels_get_zero_gradient():
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    p = torch.full((2, 4, 4), 0.99)
    p[0, 0, :3] = torch.tensor([0.1, 0.2, 0.3])  # the three hard pixels of image 0
    p[1] = torch.linspace(0.05, 0.9, 16).reshape(4, 4)  # image 1: every pixel harder than image 0's easy ones
    logits = _logits_with_true_prob(p, target).requires_grad_(True)
    loss = bootstrapped_cross_entropy(logits, target, k=3)
    loss.backward()
    grad_nonzero = logits.grad.abs().sum(1) > 0
    expected = torch.zeros(2, 4, 4, dtype=torch.bool)
    expected[0, 0, :3] = True
    expected[1, 0, :3] = True  # the 3 lowest-probability pixels of image 1 (K is per image)
    assert torch.equal(grad_nonzero, expected)
    ref = -(torch.tensor([0.1, 0.2, 0.3]).log().sum() + p[1, 0, :3].log().sum()) / 6
    torch.testing.assert_close(loss, ref, atol=1e-5, rtol=1e-5)


def test_threshold_keeps_more_than_k_and_never_ignored_pixels():
    target = torch.zeros(1, 2, 4, dtype=torch.long)
    p = torch.tensor([[[0.1, 0.2, 0.3, 0.4], [0.9, 0.95, 0.97, 0.05]]])
    target[0, 1, 3] = 255  # hardest pixel but void
    logits = _logits_with_true_prob(p, target.clamp(max=2)).requires_grad_(True)
    bootstrapped_cross_entropy(logits, target, k=1, threshold=0.5).backward()
    kept = logits.grad.abs().sum(1)[0] > 0
    assert kept.tolist() == [[True, True, True, True], [False, False, False, False]]


def test_k_larger_than_labelled_pixels_keeps_all_of_them():
    target = torch.randint(0, 3, (1, 4, 4))
    target[0, :2] = 255
    logits = torch.randn(1, 3, 4, 4)
    ref = F.cross_entropy(logits, target, ignore_index=255)
    torch.testing.assert_close(bootstrapped_cross_entropy(logits, target, k=512), ref)


def test_all_void_batch_gives_zero_with_graph():
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    loss = bootstrapped_cross_entropy(logits, torch.full((1, 4, 4), 255), k=4)
    loss.backward()
    assert loss.item() == 0.0


def test_hard_pixel_mask_respects_candidates():
    hardness = torch.arange(8.0).reshape(1, 2, 4)
    cand = torch.ones(1, 2, 4, dtype=torch.bool)
    cand[0, 1, 3] = False
    keep = hard_pixel_mask(hardness, cand, torch.ones_like(cand), k=2)
    assert keep[0].nonzero().tolist() == [[1, 1], [1, 2]]


def _box(dy, dx, h, w):
    return torch.tensor([dy, dx, h, w], dtype=torch.float).view(1, 4, 1, 1)


def test_box_iou_from_offsets():
    assert box_iou_from_offsets(_box(1, 2, 4, 6), _box(1, 2, 4, 6)).item() == pytest.approx(1.0)
    # same size, shifted by half a width: IoU = 1/3
    assert box_iou_from_offsets(_box(0, 2, 4, 4), _box(0, 0, 4, 4)).item() == pytest.approx(1 / 3)


def _two_instances(h=16, w=16):
    """Target maps: a 2x2 instance (class 1) and a 6x6 instance (class 2)."""
    target = torch.zeros(1, 4, h, w)
    labels = torch.zeros(1, h, w, dtype=torch.long)
    valid = torch.zeros(1, h, w, dtype=torch.bool)
    for (y0, x0, s, c) in [(1, 1, 2, 1), (8, 8, 6, 2)]:
        ys, xs = torch.meshgrid(torch.arange(y0, y0 + s), torch.arange(x0, x0 + s), indexing="ij")
        cy = cx = y0 + (s - 1) / 2
        target[0, 0, ys, xs] = cy - ys.float()
        target[0, 1, ys, xs] = cx - xs.float()
        target[0, 2, ys, xs] = s
        target[0, 3, ys, xs] = s
        labels[0, ys, xs] = c
        valid[0, ys, xs] = True
    return target, labels, valid


def test_smooth_l1_zero_for_perfect_classwise_prediction():
    target, labels, valid = _two_instances()
    pred = torch.randn(1, 8, 16, 16) * 50  # 2 foreground classes x 4
    pred[:, 0:4][:, :, labels[0] == 1] = target[:, :, labels[0] == 1]
    pred[:, 4:8][:, :, labels[0] == 2] = target[:, :, labels[0] == 2]
    assert weighted_smooth_l1(pred, target, None, valid, labels).item() == pytest.approx(0.0)
    with pytest.raises(ValueError, match="labels"):
        weighted_smooth_l1(pred, target, None, valid)


def test_size_weights_give_instances_equal_total_weight():
    target, labels, valid = _two_instances()
    w = instance_size_weights(target, valid)
    small, large = w[labels == 1], w[labels == 2]
    assert small.unique().numel() == 1 and large.unique().numel() == 1  # one weight per instance
    assert small.sum().item() == pytest.approx(large.sum().item())
    assert w[valid].mean().item() == pytest.approx(1.0)
    # with size weights, the small instance's error counts as much as the large one's
    pred = target.clone()
    pred[:, 0][labels == 1] += 0.5 * 16  # error of 0.5 image heights on the small box
    lw = weighted_smooth_l1(pred, target, None, valid, labels)
    lu = weighted_smooth_l1(pred, target, valid.float(), valid, labels)
    assert lw.item() == pytest.approx(0.5 * 0.5**2 / 2)  # half the weight mass has error .5
    assert lu.item() == pytest.approx(0.5 * 0.5**2 * 4 / 40)  # 4 of 40 pixels


def test_iou_bootstrapping_drops_easy_boxes():
    target, labels, valid = _two_instances()
    pred = target.clone()
    pred[:, 1][labels == 1] += 1.0  # small instance boxes shifted by half a width: IoU 1/3
    pred[:, 1][labels == 2] += 0.1  # large instance nearly right: IoU ~0.97
    pred.requires_grad_(True)
    loss = weighted_smooth_l1(pred, target, None, valid, labels, iou_threshold=0.7)
    loss.backward()
    has_grad = pred.grad.abs().sum(1)[0] > 0
    assert torch.equal(has_grad, labels[0] == 1)  # the large, near-perfect instance is dropped
    pred.grad = None
    weighted_smooth_l1(pred, target, None, valid, labels, iou_threshold=0.2).backward()
    assert pred.grad.abs().sum() == 0  # everything easy at a lax threshold
    pred.grad = None
    weighted_smooth_l1(pred, target, None, valid, labels, iou_threshold=0.2, min_kept=5).backward()
    assert (pred.grad.abs().sum(1) > 0).sum() == 5  # at least min_kept pixels per image
    assert math.isfinite(loss.item())
