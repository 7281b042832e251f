"""Hough/NMS grouping of Wu et al. 2016 §2.1, steps 1-6."""

from __future__ import annotations

import torch

from instseg_lib.grouping import hough_group, region_nms, top_n_masks


def perfect_boxes(inst: torch.Tensor) -> torch.Tensor:
    """(4, H, W) targets ``(dy, dx, h, w)`` in pixels for an instance-id map (0 = none)."""
    h, w = inst.shape
    out = torch.zeros(4, h, w)
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    for i in inst.unique():
        if i == 0:
            continue
        m = inst == i
        y, x = ys[m], xs[m]
        y0, y1, x0, x1 = y.min(), y.max(), x.min(), x.max()
        out[0][m] = (y0 + y1) / 2 - y.float()
        out[1][m] = (x0 + x1) / 2 - x.float()
        out[2][m] = float(y1 - y0 + 1)
        out[3][m] = float(x1 - x0 + 1)
    return out


def semantic_probs(labels: torch.Tensor, c: int, p: float = 0.8) -> torch.Tensor:
    """(C, H, W) probabilities with ``p`` on each pixel's label, the rest spread evenly."""
    probs = torch.full((c, *labels.shape), (1 - p) / (c - 1))
    probs.scatter_(0, labels[None], p)
    return probs


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a & b).sum() / (a | b).sum()).item()


def test_two_separated_squares_give_two_exact_instances():
    inst = torch.zeros(48, 48, dtype=torch.long)
    inst[4:16, 4:16] = 1
    inst[28:44, 24:40] = 2
    labels = (inst > 0).long()
    res = hough_group(semantic_probs(labels, 3), perfect_boxes(inst).repeat(2, 1, 1))
    assert len(res.scores) == 2 and res.masks.shape == (2, 48, 48)
    assert res.classes.tolist() == [1, 1]
    for i in (1, 2):
        assert max(iou(m, inst == i) for m in res.masks) == 1.0
    torch.testing.assert_close(res.scores, torch.full((2,), 0.8))  # mean semantic score


def test_touching_instances_of_one_class_are_separated():
    inst = torch.zeros(48, 48, dtype=torch.long)
    inst[8:40, 4:24] = 1
    inst[8:40, 24:44] = 2  # shares an edge with instance 1
    inst[20:30, 18:30] = 3  # a third one in front of both (partial occlusion)
    labels = (inst > 0).long()
    res = hough_group(semantic_probs(labels, 2), perfect_boxes(inst))
    assert len(res.scores) == 3
    for i in (1, 2, 3):
        assert max(iou(m, inst == i) for m in res.masks) == 1.0


def test_no_foreground_gives_empty_result():
    labels = torch.zeros(32, 32, dtype=torch.long)
    res = hough_group(semantic_probs(labels, 4), torch.zeros(12, 32, 32))
    assert res.masks.shape == (0, 32, 32) and res.classes.numel() == 0 and res.scores.numel() == 0


def test_top_n_masks_are_classwise():
    probs = torch.tensor([0.1, 0.6, 0.3]).view(3, 1, 1).expand(3, 2, 2).clone()
    assert top_n_masks(probs, 1)[1].all() and not top_n_masks(probs, 1)[2].any()
    m2 = top_n_masks(probs, 2)
    assert m2[1].all() and m2[2].all() and not m2[0].any()  # background never votes
    probs[:, 0, 0] = torch.tensor([0.7, 0.1, 0.2])  # a background pixel
    assert not top_n_masks(probs, 2)[:, 0, 0].any()
    assert top_n_masks(probs, 2, foreground_only=False)[:, 0, 0].tolist() == [False, False, True]


def test_top_n_adds_second_category_with_its_own_boxes():
    inst = torch.zeros(32, 32, dtype=torch.long)
    inst[4:28, 4:28] = 1
    probs = torch.zeros(3, 32, 32)
    probs[0] = 0.1
    probs[1], probs[2] = 0.3, 0.6
    probs[0][inst == 0], probs[1][inst == 0], probs[2][inst == 0] = 0.8, 0.1, 0.1
    split = inst.clone()
    split[4:28, 16:28] = 2  # class 1's boxes say "two halves", class 2's say "one object"
    boxes = torch.cat([perfect_boxes(split), perfect_boxes(inst)])
    one = hough_group(probs, boxes, top_n=1)
    assert one.classes.tolist() == [2]
    two = hough_group(probs, boxes, top_n=2)
    assert sorted(two.classes.tolist()) == [1, 1, 2]
    torch.testing.assert_close(two.scores, torch.tensor([0.6, 0.3, 0.3]))


def test_region_nms_removes_a_duplicate():
    inst = torch.zeros(32, 32, dtype=torch.long)
    inst[4:28, 4:28] = 1
    probs = torch.zeros(3, 32, 32)
    probs[:, inst == 1] = torch.tensor([0.1, 0.6, 0.3])[:, None]
    probs[:, inst == 0] = torch.tensor([0.8, 0.1, 0.1])[:, None]
    boxes = perfect_boxes(inst).repeat(2, 1, 1)
    kept = hough_group(probs, boxes, top_n=2, region_classwise=True)
    assert kept.classes.tolist() == [1, 2]  # one region, two categories
    dedup = hough_group(probs, boxes, top_n=2, region_classwise=False)
    assert dedup.classes.tolist() == [1]  # the weaker duplicate region is removed
    # within a class: overlapping masks from assign="all"
    masks = torch.zeros(3, 8, 8, dtype=torch.bool)
    masks[0, :4], masks[1, :5], masks[2, 5:] = True, True, True
    keep = region_nms(masks, torch.tensor([0.9, 0.8, 0.7]), torch.ones(3, dtype=torch.long), 0.5)
    assert keep.tolist() == [0, 2]


def test_assign_all_and_min_size_and_stride():
    inst = torch.zeros(48, 48, dtype=torch.long)
    inst[4:20, 4:20] = 1
    inst[28:44, 24:40] = 2
    inst[40:42, 2:4] = 3  # a 4-pixel instance
    labels = (inst > 0).long()
    probs, boxes = semantic_probs(labels, 2), perfect_boxes(inst)
    assert len(hough_group(probs, boxes).scores) == 3
    assert len(hough_group(probs, boxes, min_size=5).scores) == 2
    res = hough_group(probs, boxes, stride=2, min_size=5)
    assert len(res.scores) == 2
    for i in (1, 2):
        assert max(iou(m, inst == i) for m in res.masks) == 1.0
    res_all = hough_group(probs, boxes, assign="all")
    assert len(res_all.scores) == 3


def test_noisy_predictions_stay_bounded():
    torch.manual_seed(0)
    probs = torch.rand(3, 64, 64).softmax(0)
    boxes = torch.randn(8, 64, 64) * 10
    res = hough_group(probs, boxes, top_n=2, max_instances=50)
    assert res.masks.shape[0] <= 50 and res.masks.shape[1:] == (64, 64)
    assert torch.all(res.scores[:-1] >= res.scores[1:]) or res.scores.numel() < 2
