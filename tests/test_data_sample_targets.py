"""Sample helpers and the per-pixel training targets (Wu §2.1, PFN §3, Fathi §3.2)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from instseg_lib.data.sample import Sample, boxes_from_instances, majority_classes, relabel_consecutive
from instseg_lib.data.targets import instance_counts, pfn_location_targets, sample_instance_pixels, wu_box_targets


def toy() -> np.ndarray:
    inst = np.zeros((6, 8), np.int32)
    inst[1:3, 2:5] = 1      # 2 x 3 instance
    inst[4, 7] = 2          # one pixel
    inst[5, 0:2] = 3
    inst[3, 0] = 3          # instance 3 in two parts
    return inst


def test_boxes_inclusive_exclusive():
    b = boxes_from_instances(toy())
    assert b.dtype == np.float32
    np.testing.assert_array_equal(b, [[2, 1, 5, 3], [7, 4, 8, 5], [0, 3, 2, 6]])
    assert boxes_from_instances(np.zeros((3, 3), np.int32)).shape == (0, 4)


def test_majority_and_relabel():
    inst = toy()
    sem = np.where(inst > 0, 7, 0).astype(np.uint8)
    sem[1, 2] = 255
    sem[inst == 2] = 9
    np.testing.assert_array_equal(majority_classes(inst, sem, 3), [7, 9, 7])
    inst2 = inst.copy()
    inst2[inst2 == 2] = 0
    new, cls = relabel_consecutive(inst2, np.array([7, 9, 7]))
    assert new.max() == 2 and cls.tolist() == [7, 7]


def test_sample_validate_rejects_bad_fields():
    inst = toy()
    s = Sample(np.zeros((6, 8, 3), np.uint8), np.zeros((6, 8), np.uint8), inst, np.array([1, 2, 3]),
               boxes_from_instances(inst), "x", 21, ("bg",) * 21)
    s.validate()
    with pytest.raises(ValueError, match="instances"):
        s.replace(instances=inst.astype(np.int64)).validate()
    with pytest.raises(ValueError, match="semantic"):
        s.replace(semantic=np.full((6, 8), 30, np.uint8)).validate()


def test_wu_targets_toy():
    t = wu_box_targets(toy())
    off, w, valid = t["offsets"], t["weight"], t["valid"]
    assert off.shape == (4, 6, 8) and off.dtype == np.float32 and valid.sum() == 10
    # pixel (1, 2): centre (1.5, 2.5); box centre (2.0, 3.5), h 2, w 3
    np.testing.assert_allclose(off[:, 1, 2], [0.5, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(off[:, 4, 7], [0, 0, 1, 1])      # a one-pixel instance
    assert (off[:, ~valid] == 0).all() and (w[~valid] == 0).all()
    # one weight per instance, inversely proportional to box area, mean 1 over valid pixels
    inst = toy()
    for i in (1, 2, 3):
        assert np.unique(w[inst == i]).size == 1
    assert w[4, 7] / w[1, 2] == pytest.approx(6.0)
    assert w[valid].mean() == pytest.approx(1.0)
    assert wu_box_targets(toy(), weighting="none")["weight"][valid].tolist() == [1.0] * 10


@settings(max_examples=40, deadline=None)
@given(arrays(np.int32, (7, 9), elements=st.integers(0, 4)))
def test_wu_offsets_point_to_box_centre(inst):
    """Property: pixel centre + offset is the box centre; h, w are the box's (Wu §2.1)."""
    t = wu_box_targets(inst)
    boxes = boxes_from_instances(inst)
    ys, xs = np.nonzero(inst)
    for y, x in zip(ys, xs):
        x0, y0, x1, y1 = boxes[inst[y, x] - 1]
        dy, dx, h, w = t["offsets"][:, y, x]
        assert y + 0.5 + dy == pytest.approx((y0 + y1) / 2) and x + 0.5 + dx == pytest.approx((x0 + x1) / 2)
        assert (h, w) == (y1 - y0, x1 - x0)


def test_pfn_targets():
    inst = toy()
    t = pfn_location_targets(inst, normalize="none")
    assert t.shape == (6, 6, 8)
    np.testing.assert_allclose(t[:, 1, 3], [3.5, 2.0, 2, 1, 5, 3])      # cx, cy, lx, ly, rx, ry
    np.testing.assert_allclose(pfn_location_targets(inst)[:, 1, 3], [3.5 / 3, 1.0, 2 / 3, 0.5, 5 / 3, 1.5])
    np.testing.assert_allclose(pfn_location_targets(inst, normalize="image")[:, 1, 3], [3.5 / 8, 2 / 6, 2 / 8, 1 / 6, 5 / 8, 3 / 6])
    assert (t[:, inst == 0] == 0).all()
    # every pixel of one instance gets the same vector
    assert np.unique(t[:, inst == 3], axis=1).shape[1] == 1


def test_instance_counts():
    inst = toy()
    np.testing.assert_array_equal(instance_counts(inst, np.array([15, 15, 3]), 21)[[3, 15]], [1, 2])
    inst[inst == 2] = 0  # cropped away: not counted
    assert instance_counts(inst, np.array([15, 15, 3]), 21)[15] == 1


def test_sample_instance_pixels():
    inst = toy()
    rng = np.random.default_rng(0)
    ps = sample_instance_pixels(inst, 5, rng)
    assert ps.yx.shape == (15, 2) and ps.ids.tolist() == [1] * 5 + [2] * 5 + [3] * 5
    assert (inst[ps.yx[:, 0], ps.yx[:, 1]] == ps.ids).all()
    assert ps.sizes.tolist() == [6] * 5 + [1] * 5 + [3] * 5
    ps6 = sample_instance_pixels(inst, 6, np.random.default_rng(1))
    assert len(set(map(tuple, ps6.yx[:6]))) == 6                    # without replacement when possible
    bg = sample_instance_pixels(inst, 4, rng, include_background=True)
    assert bg.ids[:4].tolist() == [0] * 4
    assert sample_instance_pixels(np.zeros((3, 3), np.int32), 4, rng).yx.shape == (0, 2)
