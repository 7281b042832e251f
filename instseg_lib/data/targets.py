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


#: PFN's instance-location variants (§3.2 and §4.3 "Instance location prediction") and their
#: channels, x before y as in the paper's t_i = (c_x, c_y, l_x, l_y, r_x, r_y). ``dx``/``dy``
#: are offsets from the pixel centre, ``w``/``h`` box sizes, the rest box positions.
PFN_LOCATION_CHANNELS: dict[str, tuple[str, ...]] = {
    "offsets2": ("dx", "dy"),                                  # "PFN offsets (2)"
    "centers2": ("cx", "cy"),                                  # "PFN centers (2)"
    "centers-wh4": ("cx", "cy", "w", "h"),                     # "PFN centers, w,h (4)"
    "centers-topleft4": ("cx", "cy", "lx", "ly"),              # "PFN centers, topleft (4)"
    "pfn6": ("cx", "cy", "lx", "ly", "rx", "ry"),              # "PFN": centre, top-left, bottom-right
    "plus-tr-bl10": ("cx", "cy", "lx", "ly", "rx", "ry",       # "PFN +topright, bottomleft (10)"
                     "rx", "ly", "lx", "ry"),
}
PFN_FRAMES = ("absolute", "relative", "instance", "pixels")


def pfn_channel_axis(name: str) -> str:
    """``"x"`` or ``"y"``: which image axis a PFN location channel is measured along."""
    return "x" if name in ("dx", "cx", "lx", "rx", "w") else "y"


def pfn_instance_targets(instances: np.ndarray, variant: str = "pfn6",
                         frame: Literal["absolute", "relative", "instance", "pixels"] = "absolute",
                         boxes: np.ndarray | None = None, crowd: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """PFN §3.2 "Pixel-wise Instance Location Prediction": every pixel's instance location
    vector t*_i and the foreground mask of the filtered loss (Eq. 2, ``[k*_i >= 1]``).

    Returns ``locations`` ``(D, H, W)`` float32 with the channels of
    :data:`PFN_LOCATION_CHANNELS[variant]` (zero off the foreground) and ``foreground``
    ``(H, W)`` bool: the pixels of an instance (a labelled pixel without an instance, or a
    crowd pixel, has no instance box to regress, so it gets no location loss). Boxes are the
    tight inclusive-exclusive boxes of the visible pixels: ``l = x0, y0``, ``r = x1, y1``,
    centre their mean (pixel ``x`` has centre ``x + 0.5``, as in the module docstring).

    ``frame`` -- how positions are scaled. The paper divides "by the width and height of
    the instance" (``"instance"``, the literal reading, kept for the record): then
    ``r_x/w_s - l_x/w_s = 1`` and ``c_x/w_s = l_x/w_s + 1/2`` for every instance, so the
    6-d vector carries 2 numbers and instances of different size are no longer comparable
    in one frame -- a degenerate target, **not used by default**. Our default
    ``"absolute"`` divides x-channels by the image width and y-channels by its height,
    positions in ``[0, 1]`` in one frame for all instances (what the clustering of §3.3
    compares across pixels); ``"relative"`` does the same for positions measured from the
    pixel centre (``c_x - p_x`` ...), the form of "offsets (2)" for every variant;
    ``"pixels"`` leaves pixels. ``offsets2`` is relative in every frame (it is defined so);
    ``w``/``h`` channels are sizes and are only scaled.
    """
    if variant not in PFN_LOCATION_CHANNELS:
        raise ValueError(f"unknown PFN location variant {variant!r}; use one of {', '.join(PFN_LOCATION_CHANNELS)}")
    if frame not in PFN_FRAMES:
        raise ValueError(f"unknown frame {frame!r}; use one of {', '.join(PFN_FRAMES)}")
    H, W = instances.shape
    n = int(instances.max(initial=0))
    names = PFN_LOCATION_CHANNELS[variant]
    foreground = instances > 0
    if crowd is not None:
        foreground &= ~crowd
    out = np.zeros((len(names), H, W), np.float32)
    if n == 0 or not foreground.any():
        return {"locations": out, "foreground": foreground}
    if boxes is None:
        boxes = boxes_from_instances(instances, n)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if n > len(boxes):
        raise ValueError(f"instance ids go up to {n} but only {len(boxes)} boxes were given")
    x0, y0, x1, y1 = boxes[:n].T
    per_inst = {"cx": (x0 + x1) / 2, "cy": (y0 + y1) / 2, "lx": x0, "ly": y0, "rx": x1, "ry": y1,
                "w": x1 - x0, "h": y1 - y0, "dx": (x0 + x1) / 2, "dy": (y0 + y1) / 2}
    idx = np.maximum(instances, 1) - 1
    px = np.arange(W, dtype=np.float32)[None, :] + 0.5
    py = np.arange(H, dtype=np.float32)[:, None] + 0.5
    for c, name in enumerate(names):
        axis = pfn_channel_axis(name)
        v = per_inst[name][idx]
        is_size = name in ("w", "h")
        if not is_size and (name in ("dx", "dy") or frame == "relative"):
            v = v - (px if axis == "x" else py)
        if frame in ("absolute", "relative"):
            v = v / (W if axis == "x" else H)
        elif frame == "instance":  # the literal reading: every channel over the instance's extent
            extent = np.maximum((x1 - x0) if axis == "x" else (y1 - y0), 1.0)
            v = v / extent[idx]
        out[c] = np.where(foreground, v, 0)
    return {"locations": out, "foreground": foreground}


def pfn_number_targets(instances: np.ndarray, instance_classes: np.ndarray, num_classes: int) -> np.ndarray:
    """PFN §3.2 "Instance Number Prediction": g* = (g*_1, ..., g*_C), the number of
    instances of each object class in the image, float32 ``(num_classes - 1,)``.

    ``num_classes`` counts background (VOC: 21 -> C = 20). Instances fully cropped away are
    not counted (:func:`instance_counts`); crowd regions are not instances.
    """
    return instance_counts(instances, instance_classes, num_classes)[1:].astype(np.float32)
