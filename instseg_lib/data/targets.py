"""Per-pixel training targets, numpy in / numpy out, one function per paper.

Coordinates: pixel ``(y, x)`` covers ``[y, y+1) x [x, x+1)``; its centre is ``(y+0.5, x+0.5)``.
Boxes are inclusive-exclusive ``x0, y0, x1, y1`` (the tight box of the instance's visible
pixels), so a box centre is ``((x0+x1)/2, (y0+y1)/2)`` and a one-pixel instance has a zero
offset to its own centre.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np

from .sample import boxes_from_instances


def wu_box_targets(instances: np.ndarray, boxes: np.ndarray | None = None,
                   weighting: Literal["inverse_area", "inverse_sqrt_area", "none"] = "inverse_area") -> dict[str, np.ndarray]:
    """Wu et al. §2.1: per-pixel box regression targets and per-instance loss weights.

    "Our regression targets include the vertical and horizontal offsets from the current
    pixel to the bounding-box center of the instance that it belongs to, and also the height
    and width of that instance. To balance the contributions of instances in different sizes,
    we re-weight their pixels in the training loss according to their heights and widths.
    However, we let pixels in the same instance have the same loss weight."

    Returns ``offsets`` (4,H,W) float32 = (dy, dx, h, w): box-centre y minus pixel-centre y,
    box-centre x minus pixel-centre x, box height, box width, in pixels, 0 outside instances;
    ``weight`` (H,W) float32; ``valid`` (H,W) bool (pixels of an instance).

    The paper gives no formula for the weight. Our choice (``inverse_area``): every pixel of
    instance i gets ``1 / (h_i * w_i)``, so that each instance contributes about equally to
    the summed loss whatever its size (its pixel count is roughly proportional to h*w);
    weights are then scaled so that they average 1 over the valid pixels of the image, which
    keeps the loss magnitude comparable to an unweighted loss. ``inverse_sqrt_area``
    (``1/sqrt(h w)``) is a milder variant; ``none`` gives weight 1.
    """
    H, W = instances.shape
    n = int(instances.max(initial=0))
    if boxes is None:
        boxes = boxes_from_instances(instances, n)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if n > len(boxes):
        raise ValueError(f"instance ids go up to {n} but only {len(boxes)} boxes were given")
    x0, y0, x1, y1 = boxes.T if len(boxes) else (np.zeros(0, np.float32),) * 4
    bh, bw = y1 - y0, x1 - x0
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    if weighting == "inverse_area":
        wi = 1.0 / np.maximum(bh * bw, 1.0)
    elif weighting == "inverse_sqrt_area":
        wi = 1.0 / np.sqrt(np.maximum(bh * bw, 1.0))
    elif weighting == "none":
        wi = np.ones_like(bh)
    else:
        raise ValueError(f"unknown weighting {weighting!r}")
    valid = instances > 0
    idx = np.maximum(instances, 1) - 1
    ys = np.arange(H, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(W, dtype=np.float32)[None, :] + 0.5
    offsets = np.zeros((4, H, W), np.float32)
    weight = np.zeros((H, W), np.float32)
    if n:
        offsets[0] = np.where(valid, cy[idx] - ys, 0)
        offsets[1] = np.where(valid, cx[idx] - xs, 0)
        offsets[2] = np.where(valid, bh[idx], 0)
        offsets[3] = np.where(valid, bw[idx], 0)
        weight = np.where(valid, wi[idx], 0).astype(np.float32)
        weight *= valid.sum() / max(float(weight.sum()), 1e-12)
    return {"offsets": offsets, "weight": weight.astype(np.float32), "valid": valid}


def pfn_location_targets(instances: np.ndarray, boxes: np.ndarray | None = None,
                         normalize: Literal["instance", "image", "none"] = "instance") -> np.ndarray:
    """Liang et al. (PFN) §3, "Pixel-wise Instance Location Prediction": the 6-d instance
    location vector of every pixel.

    "For each pixel i belonging to the object instance s, the ground-truth instance location
    vector is t_i = (c_x^s/w_s, c_y^s/h_s, l_x^s/w_s, l_y^s/h_s, r_x^s/w_s, r_y^s/h_s), where
    w_s and h_s are the width and the height of the object instance s" -- the centre, the
    top-left and the bottom-right corners of the instance's bounding box. Channels, in that
    order: ``(cx, cy, lx, ly, rx, ry)``, in image coordinates (pixel edges: lx = x0,
    rx = x1 of the inclusive-exclusive box), zero outside instances.

    ``normalize``: ``"instance"`` divides x by the instance width and y by its height, as the
    paper's text states (the equation itself is garbled in our copy); ``"image"`` divides by
    the image width/height, a well-scaled alternative in [0, 1] (PFN's clustering also
    normalises t by its maximum, §3 "testing stage"); ``"none"`` keeps pixels.
    """
    H, W = instances.shape
    n = int(instances.max(initial=0))
    if boxes is None:
        boxes = boxes_from_instances(instances, n)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    out = np.zeros((6, H, W), np.float32)
    if n == 0:
        return out
    x0, y0, x1, y1 = boxes.T
    per = np.stack([(x0 + x1) / 2, (y0 + y1) / 2, x0, y0, x1, y1])  # (6, N)
    if normalize == "instance":
        per = per / np.stack([np.maximum(x1 - x0, 1), np.maximum(y1 - y0, 1)] * 3)
    elif normalize == "image":
        per = per / np.array([W, H] * 3, np.float32)[:, None]
    elif normalize != "none":
        raise ValueError(f"unknown normalize {normalize!r}")
    valid = instances > 0
    idx = np.maximum(instances, 1) - 1
    out[:] = np.where(valid[None], per[:, idx], 0)
    return out


def instance_counts(instances: np.ndarray, instance_classes: np.ndarray, num_classes: int) -> np.ndarray:
    """Liang et al. (PFN) §3, "Instance Number Prediction": the number of instances of each
    class in the image (the regression target of PFN's instance-number branch).

    ``(num_classes,)`` int64; ids absent from the map (fully cropped away) are not counted.
    Entry 0 (background) is always 0: PFN's vector g over the C object classes is
    ``instance_counts(...)[1:]``.
    """
    classes = np.asarray(instance_classes, np.int64)
    present = np.zeros(len(classes) + 1, bool)
    present[np.unique(instances)] = True
    cls = classes[present[1:]]
    if len(cls) and (cls.max() >= num_classes or cls.min() < 0):
        raise ValueError(f"instance class {int(cls.max())} outside 0..{num_classes - 1}")
    return np.bincount(cls, minlength=num_classes).astype(np.int64)


class PixelSample(NamedTuple):
    """``yx`` (M,2) int64 pixel coordinates, ``ids`` (M,) instance ids, ``sizes`` (M,) pixel
    count of each sample's instance (for Fathi's inverse-size pair weights)."""

    yx: np.ndarray
    ids: np.ndarray
    sizes: np.ndarray


def sample_instance_pixels(instances: np.ndarray, k: int, rng: np.random.Generator,
                           include_background: bool = False) -> PixelSample:
    """Fathi et al. §3.2: "randomly sampling K points for each object instance".

    K pixels per instance (without replacement, or with replacement when the instance has
    fewer than K pixels), in instance order. ``include_background`` also samples K pixels of
    id 0 as one more group. The pair weights w_pq are "inversely proportional to the size of
    the instances p and q belong to" (§3.2); ``sizes`` gives those sizes.
    """
    flat = instances.ravel()
    order = np.argsort(flat, kind="stable")
    counts = np.bincount(flat, minlength=1)
    starts = np.concatenate([[0], np.cumsum(counts)])
    ids_all = np.nonzero(counts)[0]
    if not include_background:
        ids_all = ids_all[ids_all > 0]
    yx, ids, sizes = [], [], []
    W = instances.shape[1]
    for i in ids_all:
        members = order[starts[i]:starts[i + 1]]
        pick = rng.choice(members, size=k, replace=len(members) < k)
        yx.append(np.stack([pick // W, pick % W], 1))
        ids.append(np.full(k, i, np.int64))
        sizes.append(np.full(k, len(members), np.int64))
    if not yx:
        return PixelSample(np.zeros((0, 2), np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
    return PixelSample(np.concatenate(yx).astype(np.int64), np.concatenate(ids), np.concatenate(sizes))
