"""Joint training transforms on :class:`~.sample.Sample` with ``torchvision.transforms.v2``.

Image, class map, instance map and boxes travel together as ``tv_tensors`` so that they
stay aligned. The augmentation follows Fathi et al. §4.2 (also used for every paper here):
random resize by a ratio in [0.7, 1.5], random rotation in [-10, 10] degrees, random crop
and random horizontal flip. Padding and rotated-in corners are void (255) in the class map
and "no instance" (0) in the instance map. After the warp, instance boxes are recomputed
from the masks (a rotated box is not the box of the rotated object); box-only samples
(BoxSup) carry their boxes through the transforms and drop boxes that left the crop.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from ..profiles import Profile, get_profile
from .sample import Sample, boxes_from_instances, relabel_consecutive


class SemanticMask(tv_tensors.Mask):
    """A class map: a Mask (nearest-neighbour warps) whose fill is 255 = void."""


FILL = {tv_tensors.Image: 0, SemanticMask: 255, tv_tensors.Mask: 0, "others": 0}


class RandomScaleRotateCrop(v2.Transform):
    """Random scale, rotation, crop and horizontal flip as *one* resampling per tensor.

    Equivalent to ``RandomResize(ratio in [lo, hi]) -> RandomRotation(+-degrees) ->
    RandomCrop(crop, pad_if_needed) -> RandomHorizontalFlip`` (Fathi §4.2), but each input
    is sampled once, directly on the ``crop x crop`` output grid (bilinear for the image,
    nearest for masks, corner transform for boxes), instead of being warped three times at
    the scaled size: several times faster on CPU and one interpolation fewer for the image.
    The crop window is uniform over the scaled image (or, when the scaled image is smaller
    than the crop, the image lies uniformly inside the window); uncovered pixels get the
    fill of their type (image 0, class map 255, instances 0).
    """

    def __init__(self, crop_size: int, scale: tuple[float, float] = (0.7, 1.5), degrees: float = 10.0,
                 flip: bool = True, fill: dict | None = None):
        super().__init__()
        self.crop, self.scale, self.degrees, self.flip = int(crop_size), scale, float(degrees), flip
        self.fill = FILL if fill is None else fill

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        from torchvision.transforms.v2._utils import query_size

        h, w = query_size(flat_inputs)
        c = self.crop
        r = torch.rand(5, dtype=torch.float64).tolist()
        s = self.scale[0] + r[0] * (self.scale[1] - self.scale[0])
        theta = np.deg2rad((2 * r[1] - 1) * self.degrees)
        # window offset in scaled coordinates, uniform over all valid placements
        oy = min(0.0, h * s - c) + r[2] * abs(h * s - c)
        ox = min(0.0, w * s - c) + r[3] * abs(w * s - c)
        p0 = np.array([(ox + c / 2) / s, (oy + c / 2) / s])   # window centre in input (x, y)
        cos, sin = np.cos(theta), np.sin(theta)
        A = s * np.array([[cos, -sin], [sin, cos]])           # input -> output linear part
        flip = self.flip and r[4] < 0.5
        if flip:
            A = np.array([[-1.0, 0.0], [0.0, 1.0]]) @ A
        # output = A (p - p0) + (c/2, c/2); sampling needs the inverse (a 2x2, by hand)
        Ainv = np.array([[A[1, 1], -A[0, 1]], [-A[1, 0], A[0, 0]]]) / (A[0, 0] * A[1, 1] - A[0, 1] * A[1, 0])
        px, py = self._grid(Ainv, p0)
        # nearest-neighbour source index of every output pixel, shared by all masks
        ix, iy = np.floor(px).astype(np.intp), np.floor(py).astype(np.intp)
        inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
        flat = np.where(inside, iy * w + ix, 0).ravel()
        return {"A": A, "p0": p0, "px": px, "py": py, "flat": flat, "outside": ~inside.ravel(), "size": (h, w)}

    def _grid(self, Ainv: np.ndarray, p0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = self.crop
        q = (np.arange(c, dtype=np.float32) + 0.5) - c / 2
        a = Ainv.astype(np.float32)
        px = np.float32(p0[0]) + a[0, 0] * q[None, :] + a[0, 1] * q[:, None]   # input coords of output pixel centres
        py = np.float32(p0[1]) + a[1, 0] * q[None, :] + a[1, 1] * q[:, None]
        return px, py

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        fill = self.fill.get(type(inpt), self.fill.get("others", 0))
        h, w = params["size"]
        c = self.crop
        if isinstance(inpt, tv_tensors.Image):
            # grid_sample with align_corners=False: -1/+1 are the outer pixel edges
            g = np.empty((1, c, c, 2), np.float32)
            g[0, ..., 0] = params["px"] * (2.0 / w) - 1
            g[0, ..., 1] = params["py"] * (2.0 / h) - 1
            out = torch.nn.functional.grid_sample(inpt.float()[None], torch.from_numpy(g), mode="bilinear",
                                                  padding_mode="zeros", align_corners=False)[0]
            if fill:
                out.view(out.shape[0], -1)[:, torch.from_numpy(params["outside"])] = float(fill)
            # bilinear weights are convex: values stay in [0, 255]; +0.5 then truncation rounds
            return tv_tensors.wrap(out.add_(0.5).to(inpt.dtype), like=inpt)
        if isinstance(inpt, tv_tensors.Mask):
            src = inpt.numpy().reshape(inpt.shape[0], -1)
            out = src[:, params["flat"]]
            out[:, params["outside"]] = fill
            return tv_tensors.wrap(torch.from_numpy(out.reshape(-1, c, c)), like=inpt)
        if isinstance(inpt, tv_tensors.BoundingBoxes):
            b = inpt.numpy().astype(np.float64).reshape(-1, 4)
            corners = np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [0, 3]], b[:, [2, 3]]], 1)   # (N, 4, 2) x, y
            out_pts = (corners - params["p0"]) @ params["A"].T + self.crop / 2
            nb = np.concatenate([out_pts.min(1), out_pts.max(1)], 1).clip(0, self.crop)
            return tv_tensors.wrap(torch.from_numpy(nb).to(inpt.dtype), like=inpt, canvas_size=(self.crop, self.crop))
        return inpt


def to_tv(sample: Sample) -> tuple:
    """``(image, semantic, instances[, boxes][, crowd])`` as tv_tensors: boxes for box-only
    samples, the crowd map (uint8, fill 0) when the sample has one."""
    h, w = sample.size
    img = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(sample.image)).permute(2, 0, 1))
    sem = torch.from_numpy(np.ascontiguousarray(sample.semantic))[None].as_subclass(SemanticMask)
    inst = tv_tensors.Mask(torch.from_numpy(np.ascontiguousarray(sample.instances))[None])
    out: tuple = (img, sem, inst)
    if not sample.has_masks:  # with masks, boxes are recomputed from the warped masks: do not warp them
        out += (tv_tensors.BoundingBoxes(torch.from_numpy(sample.boxes).reshape(-1, 4), format="XYXY",
                                         canvas_size=(h, w)),)
    if sample.crowd is not None:
        out += (tv_tensors.Mask(torch.from_numpy(np.ascontiguousarray(sample.crowd, dtype=np.uint8))[None]),)
    return out


def from_tv(sample: Sample, img, sem, inst, *rest) -> Sample:
    rest = list(rest)
    boxes = rest.pop(0) if not sample.has_masks else None
    crowd = rest.pop(0)[0].numpy().astype(bool) if sample.crowd is not None else None
    image = img.permute(1, 2, 0).numpy()
    semantic = sem[0].numpy()
    if sample.has_masks:
        instances, classes = relabel_consecutive(inst[0].numpy().astype(np.int32), sample.instance_classes)
        new_boxes = boxes_from_instances(instances, len(classes))
        meta = sample.meta
    else:
        b = boxes.numpy().astype(np.float32).reshape(-1, 4)
        keep = ((b[:, 2] - b[:, 0]) >= 1) & ((b[:, 3] - b[:, 1]) >= 1)
        instances, classes, new_boxes = inst[0].numpy().astype(np.int32), sample.instance_classes[keep], b[keep]
        meta = {k: (v[keep] if isinstance(v, np.ndarray) and len(v) == len(keep) else v) for k, v in sample.meta.items()}
    return sample.replace(image=np.ascontiguousarray(image), semantic=np.ascontiguousarray(semantic),
                          instances=np.ascontiguousarray(instances), instance_classes=classes, boxes=new_boxes, meta=meta,
                          crowd=crowd)


class SampleTransform:
    """Wrap a v2 pipeline so it maps Sample -> Sample."""

    def __init__(self, pipeline: Callable):
        self.pipeline = pipeline

    def __call__(self, sample: Sample) -> Sample:
        inputs = to_tv(sample)
        if isinstance(self.pipeline, RandomScaleRotateCrop):
            # The v2 Transform API without the pytree round trip of forward(): same result, less overhead.
            params = self.pipeline.make_params(list(inputs))
            out = [self.pipeline.transform(x, params) for x in inputs]
        else:
            out = self.pipeline(*inputs)
        return from_tv(sample, *out)

    def __repr__(self) -> str:
        return f"SampleTransform({self.pipeline!r})"


def train_transforms(profile: str | Profile | None = None, *, scale: tuple[float, float] = (0.7, 1.5),
                     degrees: float = 10.0, flip: bool = True) -> SampleTransform:
    """Fathi §4.2 augmentation (scale 0.7-1.5, rotation +-10 deg, crop, flip) to ``crop_size``."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    return SampleTransform(RandomScaleRotateCrop(prof.crop_size, scale, degrees, flip))


def eval_transforms(profile: str | Profile | None = None, *, resize: bool = False) -> Callable[[Sample], Sample]:
    """Evaluation keeps the native resolution (all five papers score at label resolution).

    ``resize=True`` scales the short side to the profile's ``image_size`` instead (real
    datasets in the cpu profile).
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    if not resize:
        return _identity
    return SampleTransform(v2.Resize(prof.image_size, antialias=True))


def _identity(sample: Sample) -> Sample:
    return sample


def collate(samples: list[Sample]) -> dict[str, Any]:
    """Batch Samples: pad to the largest size (image 0, class map 255, instances 0).

    Returns ``image`` uint8 (B,3,H,W), ``semantic`` int64 (B,H,W), ``instances`` int64
    (B,H,W), ``crowd`` bool (B,H,W) (False for samples without crowd regions) and
    per-sample lists ``boxes``, ``instance_classes``, ``image_id``.
    """
    H = max(s.size[0] for s in samples)
    W = max(s.size[1] for s in samples)
    B = len(samples)
    image = torch.zeros(B, 3, H, W, dtype=torch.uint8)
    semantic = torch.full((B, H, W), 255, dtype=torch.int64)
    instances = torch.zeros(B, H, W, dtype=torch.int64)
    crowd = torch.zeros(B, H, W, dtype=torch.bool)
    for i, s in enumerate(samples):
        h, w = s.size
        image[i, :, :h, :w] = torch.from_numpy(s.image).permute(2, 0, 1)
        semantic[i, :h, :w] = torch.from_numpy(s.semantic)
        instances[i, :h, :w] = torch.from_numpy(s.instances)
        if s.crowd is not None:
            crowd[i, :h, :w] = torch.from_numpy(s.crowd)
    return {"image": image, "semantic": semantic, "instances": instances, "crowd": crowd,
            "boxes": [torch.from_numpy(s.boxes) for s in samples],
            "instance_classes": [torch.from_numpy(s.instance_classes) for s in samples],
            "image_id": [s.image_id for s in samples]}
