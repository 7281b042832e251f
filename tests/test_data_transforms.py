"""Joint transforms (Fathi §4.2): image, class map, instances and boxes stay aligned."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instseg_lib.data import collate, eval_transforms, open_dataset, train_transforms
from instseg_lib.data.sample import Sample, boxes_from_instances
from instseg_lib.data.synthetic import generate
from instseg_lib.profiles import get_profile


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("tw")
    return {n: generate(n, "smoke", base / n, workers=1) for n in ("voc", "boxes")}


def checker_sample() -> Sample:
    """Colour-coded image: pixel colour encodes its class, so misalignment is visible."""
    h, w = 40, 60
    inst = np.zeros((h, w), np.int32)
    inst[5:20, 5:25] = 1
    inst[22:38, 30:55] = 2
    sem = np.zeros((h, w), np.uint8)
    sem[inst == 1], sem[inst == 2] = 3, 7
    img = np.zeros((h, w, 3), np.uint8)
    img[inst == 1] = (250, 0, 0)
    img[inst == 2] = (0, 0, 250)
    return Sample(img, sem, inst, np.array([3, 7]), boxes_from_instances(inst), "c", 21, ("x",) * 21)


def test_train_transform_keeps_image_and_labels_aligned():
    torch.manual_seed(0)
    t = train_transforms("cpu")
    for _ in range(20):
        s = t(checker_sample()).validate()
        assert s.size == (get_profile("cpu").crop_size,) * 2
        red = s.image[..., 0].astype(int) - s.image[..., 2]
        for k, c in enumerate(s.instance_classes, start=1):
            m = s.instances == k
            assert (s.semantic[m] == c).all()
            if c == 3:  # the colour under an instance agrees with its class
                assert (red[m] > 0).mean() > 0.9
            else:
                assert (red[m] < 0).mean() > 0.9
        np.testing.assert_array_equal(s.boxes, boxes_from_instances(s.instances, s.num_instances))
        # padding / rotated-in corners: void in the class map, no instance
        assert set(np.unique(s.semantic)) <= {0, 3, 7, 255}
        assert (s.instances[s.semantic == 255] == 0).all()


def test_crop_pads_with_void_and_scale_range():
    torch.manual_seed(1)
    s = checker_sample()
    t = train_transforms(get_profile("cpu"), degrees=0, flip=False)
    sizes = set()
    for _ in range(30):
        out = t(s)
        assert out.size == (get_profile("cpu").crop_size,) * 2
        valid = out.semantic != 255
        sizes.add(int(valid.any(axis=1).sum()))
        assert (out.image[~valid] == 0).all()
    assert min(sizes) >= int(40 * 0.7) - 1 and max(sizes) <= int(40 * 1.5) + 1 and len(sizes) > 5


def test_transforms_on_twin_and_box_only(roots):
    torch.manual_seed(2)
    ds = open_dataset("voc", "train", root=roots["voc"], transform=train_transforms("smoke"))
    for i in range(len(ds)):
        s = ds[i].validate()
        assert s.size == (48, 48)
    bx = open_dataset("boxes", "train", root=roots["boxes"], transform=train_transforms("smoke"))
    for i in range(len(bx)):
        s = bx[i].validate()
        assert not s.has_masks and len(s.boxes) == len(s.instance_classes) == len(s.meta["difficult"])
        assert (s.boxes[:, 2:] > s.boxes[:, :2]).all() and (s.boxes >= 0).all() and (s.boxes <= 48).all()


def test_eval_transforms_and_collate(roots):
    ds = open_dataset("voc", "val", root=roots["voc"], transform=eval_transforms("smoke"))
    a, b = ds[0], ds[1]
    assert a.image.shape == open_dataset("voc", "val", root=roots["voc"])[0].image.shape
    batch = collate([a, b])
    H = max(a.size[0], b.size[0])
    W = max(a.size[1], b.size[1])
    assert batch["image"].shape == (2, 3, H, W) and batch["image"].dtype == torch.uint8
    assert batch["semantic"].shape == (2, H, W)
    assert len(batch["boxes"]) == 2 and batch["image_id"] == [a.image_id, b.image_id]
    r = eval_transforms("smoke", resize=True)(open_dataset("voc", "val", root=roots["voc"])[0])
    assert min(r.size) == 48


def test_crop_larger_than_image_pads():
    """gpu profile: crop 321 on 320 px images; the image lies inside a void-padded window."""
    torch.manual_seed(3)
    s = checker_sample()
    out = train_transforms(get_profile("gpu"), scale=(1.0, 1.0), degrees=0)(s)
    assert out.size == (321, 321)
    assert (out.semantic == 255).mean() > 0.9 and set(out.instance_classes.tolist()) == {3, 7}
    assert (np.bincount(out.instances.ravel())[1:] == np.bincount(s.instances.ravel())[1:]).all()
