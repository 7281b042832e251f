"""Object detections: the second input of Arnab & Torr's instance subnetwork (§3.2).

"For each input image, we assume that there are D object detections, and that the i-th
detection is of the form (l_i, s_i, B_i) where l_i is the detected class label, s_i in
[0, 1] is the confidence score and B_i is the set of indices of the pixels falling within
the detector's bounding box" (§3.2). This module holds that triple (:class:`Detection`),
reads and writes it as a COCO-format results file, selects the detections the instance
CRF sees (:class:`DetectionConfig`), and builds a *controlled detector* from ground truth
(:func:`controlled_detections`) for the robustness claims of Figs. 3-4.

**Why a top-level module** (not ``data/``): detections are neither a dataset nor a sample
field; they are produced by a detector (R-FCN in the paper, §4.1; the controlled detector
here) and consumed by :mod:`instseg_lib.grouping.instance_crf`. ``data/`` stays the home of
the dataset readers and the twin.

**Boxes.** ``Detection.box`` is ``(x0, y0, x1, y1)`` in pixels, inclusive-exclusive like
:attr:`instseg_lib.data.Sample.boxes` (a one-pixel box at column 5 is ``x0=5, x1=6``), so a
COCO ``bbox [x, y, w, h]`` is ``(x, y, x + w, y + h)``. Pixel ``(row, col)`` belongs to
``B_k`` when its centre ``(col + 0.5, row + 0.5)`` lies in ``[x0, x1) x [y0, y1)``
(:func:`box_pixel_range`); for integer boxes these are exactly columns ``x0 .. x1-1``.

**Selection** (:class:`DetectionConfig`, :func:`select_detections`): the release's
detector script (``detection_utils.detect_single``) keeps, per class, the boxes with score
``>= 0.5`` and applies NMS at IoU 0.3; its network input holds at most D = 30 detections
(``din.prototxt``). We do the same and order the kept detections by descending score; that
order fixes the instance labels 1..D (§3.4: "the ordering of the instances in our network
are actually determined by the object detector").
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Hashable

import numpy as np

from .experiments import atomic_write_bytes
from .metrics.masks import box_iou_matrix

#: Release values (``detection_utils.detect_single``, ``demo.py --det_threshold``,
#: ``din.prototxt``'s detections blob): score threshold, NMS IoU, maximum D.
RELEASE_SCORE_THRESHOLD = 0.5
RELEASE_NMS_IOU = 0.3
RELEASE_MAX_DETECTIONS = 30

#: Slack (pixels) when checking that a box lies inside its image: a COCO ``[x, y, w, h]``
#: written from float32 corners can overshoot ``W`` by a rounding error. Boxes within the
#: slack are clipped to the image; anything further out is refused.
BOX_TOLERANCE = 1e-3

Box = tuple[float, float, float, float]


class DetectionFileError(ValueError):
    """A detections file or record is malformed; the message names the file and record."""


@dataclass(frozen=True)
class Detection:
    """One detection ``(l_k, s_k, B_k)`` of §3.2: class id, score in [0, 1], box ``(x0, y0, x1, y1)``."""

    class_id: int
    score: float
    box: Box

    def __post_init__(self) -> None:
        box = tuple(float(v) for v in self.box)
        if len(box) != 4:
            raise ValueError(f"a detection box has 4 numbers (x0, y0, x1, y1), got {self.box!r}")
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "class_id", int(self.class_id))
        object.__setattr__(self, "score", float(self.score))

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def aspect(self) -> float:
        """Width / height of the box (the Shape term's aspect-ratio bin, §3.2.3)."""
        return self.width / self.height


def box_pixel_range(box: Sequence[float], height: int, width: int) -> tuple[int, int, int, int]:
    """``(r0, r1, c0, c1)``: the pixels of ``B_k`` are rows ``r0:r1``, columns ``c0:c1``.

    A pixel is inside when its centre is in ``[x0, x1) x [y0, y1)``, i.e. columns
    ``ceil(x0 - 0.5) .. ceil(x1 - 0.5) - 1``; clipped to the image. May be empty for a
    box thinner than a pixel that straddles no centre.
    """
    x0, y0, x1, y1 = (float(v) for v in box)

    def rng(a: float, b: float, n: int) -> tuple[int, int]:
        lo = min(max(math.ceil(a - 0.5), 0), n)
        hi = min(max(math.ceil(b - 0.5), 0), n)
        return lo, max(lo, hi)

    r0, r1 = rng(y0, y1, height)
    c0, c1 = rng(x0, x1, width)
    return r0, r1, c0, c1


def check_detection(det: Detection, image_size: tuple[int, int], known_classes: Iterable[int] | None = None,
                    *, where: str = "detection", tolerance: float = BOX_TOLERANCE) -> Detection:
    """Validate one detection against its image; returns it with the box clipped within ``tolerance``.

    Raises :class:`DetectionFileError` naming ``where`` for an unknown class, a score
    outside [0, 1] (or not finite), a box of zero (or negative) area, or a box outside
    the image by more than ``tolerance`` pixels.
    """
    h, w = int(image_size[0]), int(image_size[1])
    if known_classes is not None:
        known = sorted(set(int(c) for c in known_classes))
        if det.class_id not in known:
            raise DetectionFileError(f"{where}: unknown class {det.class_id}; known classes are {known}")
    if not (math.isfinite(det.score) and 0.0 <= det.score <= 1.0):
        raise DetectionFileError(f"{where}: score {det.score!r} is outside [0, 1] (§3.2: s_k in [0, 1]); "
                                 f"rescale the detector's scores to probabilities")
    x0, y0, x1, y1 = det.box
    if not all(math.isfinite(v) for v in det.box):
        raise DetectionFileError(f"{where}: box {det.box} has a non-finite coordinate")
    if not (x1 > x0 and y1 > y0):
        raise DetectionFileError(f"{where}: box {det.box} has zero area (width {x1 - x0:g}, height {y1 - y0:g})")
    if x0 < -tolerance or y0 < -tolerance or x1 > w + tolerance or y1 > h + tolerance:
        raise DetectionFileError(f"{where}: box (x0, y0, x1, y1) = {det.box} lies outside the {w}x{h} image "
                                 f"(x in [0, {w}], y in [0, {h}]); clip the detector's boxes to the image")
    clipped = (max(x0, 0.0), max(y0, 0.0), min(x1, float(w)), min(y1, float(h)))
    return det if clipped == det.box else Detection(det.class_id, det.score, clipped)


# ------------------------------------------------------------------------------- files


def _known_categories(category_to_class: Mapping[int, int] | None, num_classes: int | None) -> dict[int, int]:
    if category_to_class is not None:
        return {int(k): int(v) for k, v in category_to_class.items()}
    if num_classes is None:
        raise ValueError("give num_classes (category ids 1..num_classes-1 are class ids) "
                         "or category_to_class (e.g. COCO ids -> VOC class ids)")
    return {c: c for c in range(1, int(num_classes))}


def read_detections(path: str | Path, image_sizes: Mapping[Hashable, tuple[int, int]], *,
                    num_classes: int | None = None, category_to_class: Mapping[int, int] | None = None,
                    tolerance: float = BOX_TOLERANCE) -> dict[Hashable, list[Detection]]:
    """Read a COCO results file (``[{image_id, category_id, bbox [x, y, w, h], score}, ...]``).

    ``image_sizes`` maps every image id of the set to ``(H, W)``; the result has one entry
    per image, in that order, and an image without detections gets ``[]`` (the instance
    CRF then labels it all background; not an error). Category ids map to class ids
    through ``category_to_class``, or are class ids ``1..num_classes-1`` themselves.
    Detections keep the file's order (use :func:`select_detections` to threshold, NMS,
    sort and cap them).

    Refuses, naming the file and the record's index: a file that is not a JSON list, a
    record that is not an object or lacks a field, an unknown image id, an unknown
    category, a score outside [0, 1], a box of zero area or outside the image.
    """
    path = Path(path)
    cats = _known_categories(category_to_class, num_classes)
    try:
        records = json.loads(path.read_text())
    except FileNotFoundError:
        raise DetectionFileError(f"{path}: no such detections file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DetectionFileError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(records, list):
        raise DetectionFileError(f"{path}: a COCO results file is a JSON list of detections, "
                                 f"got a {type(records).__name__}")
    out: dict[Hashable, list[Detection]] = {iid: [] for iid in image_sizes}
    for i, rec in enumerate(records):
        where = f"{path}: detection #{i}"
        if not isinstance(rec, dict):
            raise DetectionFileError(f"{where}: expected an object with image_id, category_id, bbox, score")
        missing = [k for k in ("image_id", "category_id", "bbox", "score") if k not in rec]
        if missing:
            raise DetectionFileError(f"{where}: missing field(s) {missing}")
        iid = rec["image_id"]
        where = f"{where} (image {iid!r})"
        if not isinstance(iid, Hashable) or iid not in image_sizes:
            raise DetectionFileError(f"{where}: unknown image_id; the set has {len(image_sizes)} images")
        bbox = rec["bbox"]
        if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)):
            raise DetectionFileError(f"{where}: bbox must be 4 numbers [x, y, w, h], got {bbox!r}")
        cat, score = rec["category_id"], rec["score"]
        if isinstance(cat, bool) or not isinstance(cat, int) or cat not in cats:
            raise DetectionFileError(f"{where}: unknown class (category_id {cat!r}); "
                                     f"known category ids are {sorted(cats)}")
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise DetectionFileError(f"{where}: score must be a number, got {score!r}")
        x, y, bw, bh = (float(v) for v in bbox)
        det = Detection(cats[cat], float(score), (x, y, x + bw, y + bh))
        out[iid].append(check_detection(det, image_sizes[iid], where=where, tolerance=tolerance))
    return out


def write_detections(path: str | Path, detections: Mapping[Hashable, Sequence[Detection]], *,
                     class_to_category: Mapping[int, int] | None = None) -> None:
    """Write detections as a COCO results file (atomically: a temporary file, then a rename).

    ``class_to_category`` maps class ids to the file's category ids (identity if None).
    Images without detections write nothing (COCO files list detections, not images).
    """
    path = Path(path)
    records: list[dict[str, Any]] = []
    for iid, dets in detections.items():
        for d in dets:
            cat = d.class_id if class_to_category is None else int(class_to_category[d.class_id])
            x0, y0, x1, y1 = d.box
            records.append({"image_id": iid, "category_id": cat, "bbox": [x0, y0, x1 - x0, y1 - y0],
                            "score": d.score})
    atomic_write_bytes(path, json.dumps(records).encode())


# --------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class DetectionConfig:
    """Which detections the instance CRF sees (defaults: the release's 0.5, 0.3, 30).

    ``score_threshold``: keep ``score >= threshold``; ``nms_iou``: per-class greedy NMS
    suppresses boxes overlapping a higher-scoring box of the class above this IoU (as the
    release's script does per class; ``None`` skips NMS); ``max_detections``: the D cap,
    highest scores kept.
    """

    score_threshold: float = RELEASE_SCORE_THRESHOLD
    nms_iou: float | None = RELEASE_NMS_IOU
    max_detections: int | None = RELEASE_MAX_DETECTIONS


def select_detections(detections: Sequence[Detection], config: DetectionConfig = DetectionConfig()
                      ) -> list[Detection]:
    """Threshold, per-class NMS, sort by descending score (stable) and cap at D.

    The returned order is the label order of the instance CRF: detection ``k`` of the list
    is label ``k + 1`` (label 0 is background).
    """
    import torch
    from torchvision.ops import batched_nms

    kept = [d for d in detections if d.score >= config.score_threshold]
    if kept and config.nms_iou is not None:
        boxes = torch.tensor([d.box for d in kept], dtype=torch.float64)
        scores = torch.tensor([d.score for d in kept], dtype=torch.float64)
        classes = torch.tensor([d.class_id for d in kept])
        keep = set(batched_nms(boxes, scores, classes, config.nms_iou).tolist())
        kept = [d for i, d in enumerate(kept) if i in keep]
    kept = sorted(kept, key=lambda d: -d.score)  # sorted() is stable: ties keep the input order
    if config.max_detections is not None:
        kept = kept[: config.max_detections]
    return kept


# ------------------------------------------------------------------ controlled detector


@dataclass(frozen=True)
class ControlledDetectorConfig:
    """A detector derived from ground truth with set error rates (for Figs. 3-4).

    - ``miss_rate``: each ground-truth object is missed independently with this probability;
    - ``fp_rate``: false positives per image, Poisson with this mean (detection papers'
      "false positives per image"); each is a random box of a random foreground class,
      sides ``fp_size`` (fractions of the image side), redrawn (up to 100 times) while it
      overlaps a ground-truth box of its class with IoU ``>= fp_max_iou``, so it is a false
      positive by any AP^r rule; its score is uniform in ``fp_score`` ("confident false
      positive detections", Fig. 3);
    - ``jitter``: every edge of a true detection moves by Gaussian noise with this standard
      deviation, as a fraction of the box's width (x edges) or height (y edges);
    - ``shrink``: a true detection keeps ``1 - shrink`` of the object's width and height,
      at a uniformly random position inside the ground-truth box, so part of the object is
      outside its box (Fig. 4);
    - ``tp_score`` and ``score_noise``: a true detection scores ``tp_score`` plus Gaussian
      noise of this standard deviation, clipped to [0, 1];
    - ``seed``: with the image id, seeds everything (see :func:`controlled_detections`).

    Boxes are clipped to the image and kept at least one pixel wide and high.
    """

    miss_rate: float = 0.0
    fp_rate: float = 0.0
    jitter: float = 0.0
    shrink: float = 0.0
    score_noise: float = 0.0
    tp_score: float = 0.9
    fp_score: tuple[float, float] = (0.7, 1.0)
    fp_size: tuple[float, float] = (0.1, 0.5)
    fp_max_iou: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("miss_rate", "tp_score", "fp_max_iou"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v!r}")
        if not 0.0 <= self.shrink < 1.0:
            raise ValueError(f"shrink must be in [0, 1), got {self.shrink!r}")
        for name in ("fp_rate", "jitter", "score_noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        lo, hi = self.fp_score
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"fp_score must be a range inside [0, 1], got {self.fp_score!r}")
        lo, hi = self.fp_size
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"fp_size must be a range inside (0, 1], got {self.fp_size!r}")


#: Independent random streams: changing one error rate leaves the others' draws unchanged
#: (e.g. the same objects are missed at every jitter level).
_STREAMS = {"miss": 0, "box": 1, "score": 2, "fp": 3}


def _rng(seed: int, image_id: Hashable, stream: str) -> np.random.Generator:
    key = zlib.crc32(repr(image_id).encode())  # stable across runs, unlike hash()
    return np.random.default_rng([int(seed), key, _STREAMS[stream]])


def _clip_box(x0: float, y0: float, x1: float, y1: float, h: int, w: int) -> Box:
    """Clip to the image and keep at least one pixel in each direction."""
    x0, x1 = min(max(x0, 0.0), w - 1.0), min(max(x1, 0.0), float(w))
    y0, y1 = min(max(y0, 0.0), h - 1.0), min(max(y1, 0.0), float(h))
    return x0, y0, max(x1, x0 + 1.0), max(y1, y0 + 1.0)


def controlled_detections(boxes: np.ndarray, classes: Sequence[int], image_size: tuple[int, int],
                          config: ControlledDetectorConfig, *, image_id: Hashable = 0,
                          num_classes: int | None = None, fp_classes: Sequence[int] | None = None
                          ) -> list[Detection]:
    """Detections of one image from its ground truth (``boxes`` (N, 4) ``x0, y0, x1, y1``).

    Deterministic: every draw comes from ``numpy`` generators seeded by ``(config.seed,
    crc32(image_id), stream)``, one stream per error type, so an image's detections do
    not depend on the order images are processed in, and raising one rate does not
    re-draw the others. Ground-truth boxes of zero area (absent instances) are skipped.
    False positives need ``num_classes`` (their class is uniform over ``1..num_classes-1``) or
    ``fp_classes`` (uniform over those: the instance classes of a label set whose class 0 is not
    background, such as Cityscapes').
    With every rate 0 the detections are the ground-truth boxes with score ``tp_score``.
    Returned in descending score order (stable).
    """
    h, w = int(image_size[0]), int(image_size[1])
    gt = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    cls = np.asarray(classes, dtype=np.int64).reshape(-1)
    if len(cls) != len(gt):
        raise ValueError(f"{len(gt)} boxes but {len(cls)} classes")
    n = len(gt)
    c = config
    # Draw a fixed number of values per object from each stream, whatever the rates.
    missed = _rng(c.seed, image_id, "miss").random(n) < c.miss_rate
    box_rng = _rng(c.seed, image_id, "box")
    edge_noise, placement = box_rng.standard_normal((n, 4)), box_rng.random((n, 2))
    score_noise = _rng(c.seed, image_id, "score").standard_normal(n)
    out: list[Detection] = []
    for i in range(n):
        x0, y0, x1, y1 = gt[i]
        bw, bh = x1 - x0, y1 - y0
        if bw <= 0 or bh <= 0 or missed[i]:
            continue
        if c.shrink > 0:
            sw, sh = (1 - c.shrink) * bw, (1 - c.shrink) * bh
            x0, y0 = x0 + placement[i, 0] * (bw - sw), y0 + placement[i, 1] * (bh - sh)
            x1, y1 = x0 + sw, y0 + sh
        if c.jitter > 0:
            dx0, dy0, dx1, dy1 = edge_noise[i] * c.jitter
            x0, x1, y0, y1 = x0 + dx0 * bw, x1 + dx1 * bw, y0 + dy0 * bh, y1 + dy1 * bh
            x0, x1 = min(x0, x1), max(x0, x1)
            y0, y1 = min(y0, y1), max(y0, y1)
        box = (float(x0), float(y0), float(x1), float(y1))
        if c.shrink > 0 or c.jitter > 0:
            box = _clip_box(*box, h, w)
        score = float(np.clip(c.tp_score + c.score_noise * score_noise[i], 0.0, 1.0))
        out.append(Detection(int(cls[i]), score, box))
    if c.fp_rate > 0:
        if fp_classes is not None:
            if not len(fp_classes):
                raise ValueError("fp_classes is empty: false positives need a class to take")
        elif num_classes is None or num_classes < 2:
            raise ValueError("false positives need num_classes >= 2 (their class is drawn from 1..num_classes-1)")
        fp = _rng(c.seed, image_id, "fp")
        for _ in range(int(fp.poisson(c.fp_rate))):
            k = (int(fp.integers(1, num_classes)) if fp_classes is None
                 else int(fp_classes[fp.integers(len(fp_classes))]))
            same = gt[(cls == k) & (gt[:, 2] > gt[:, 0]) & (gt[:, 3] > gt[:, 1])]
            for _try in range(100):
                fw, fh = fp.uniform(*c.fp_size, size=2) * (w, h)
                fx, fy = fp.uniform(0, w - fw), fp.uniform(0, h - fh)
                box = _clip_box(fx, fy, fx + fw, fy + fh, h, w)
                if not (box_iou_matrix(box, same)[0] >= c.fp_max_iou).any():
                    break
            out.append(Detection(k, float(fp.uniform(*c.fp_score)), box))
    return sorted(out, key=lambda d: -d.score)


def controlled_detections_for(sample: Any, config: ControlledDetectorConfig) -> list[Detection]:
    """:func:`controlled_detections` of a :class:`~instseg_lib.data.Sample` (its boxes and classes).

    False positives take a class that has instances: ``1..C-1`` where class 0 is background,
    and on Cityscapes' label set (no background) its eight instance classes."""
    from .data.classes import CITYSCAPES_THING_CLASSES

    names = list(getattr(sample, "class_names", ()) or ())
    fp_classes = None
    if names and names[0] != "background":
        fp_classes = [i for i, n in enumerate(names) if n in CITYSCAPES_THING_CLASSES] or None
    return controlled_detections(sample.boxes, sample.instance_classes, sample.size, config,
                                 image_id=sample.image_id, num_classes=sample.num_classes, fp_classes=fp_classes)
