"""From chosen segments (or boxes) to the label map the network regresses (BoxSup Eq. 3's l_S).

§4.3 says only: "The selected segment is assigned the ground-truth semantic label associated
with that bounding box. All other pixels are assigned the background label." It leaves open
what happens where selected segments overlap, when two boxes select the same candidate, and
on annotated crowds. Our rules, shared by BoxSup and both baselines (Table 2's rectangles
and GrabCut), so that the estimated masks are the only difference between those rows:

1. every pixel starts as background (0) -- also uncovered pixels inside a box;
2. segments are painted from the largest to the smallest, so **the smaller segment is on
   top** where two overlap (a small object in front of a large one is the common case of
   overlapping boxes; a large segment over a small one would erase the small object);
   equal areas: the later box is on top;
3. two boxes that select the **same candidate** (possible: each box picks independently):
   with the same class it is painted once; with different classes the box whose IoU with
   the segment's tight box is higher takes it (then the smaller box, then the first box);
   the others get no pixels -- counted in :class:`LabelMapReport`;
4. crowd regions (COCO ``iscrowd``) become void (255, no loss), over everything.

Box checks (:func:`check_boxes`): a box partly outside the image is clipped to it; a box
wholly outside (or empty after clipping), a non-finite box, or a class id outside
``1 .. num_classes - 1`` (0 is background, 255 void) raise a ``ValueError`` naming the box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VOID = 255
BACKGROUND = 0


@dataclass(frozen=True)
class LabelMapReport:
    """What the painting rules had to decide on one image."""

    n_boxes: int = 0
    shared: int = 0  # boxes whose segment was also selected by another box
    conflicts: int = 0  # of those, boxes that lost it to a box of another class
    overlap_px: int = 0  # pixels covered by two or more painted segments
    void_px: int = 0  # crowd pixels set to void

    def __add__(self, other: "LabelMapReport") -> "LabelMapReport":
        return LabelMapReport(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple())))

    def as_tuple(self) -> tuple[int, ...]:
        return (self.n_boxes, self.shared, self.conflicts, self.overlap_px, self.void_px)


def check_boxes(boxes: np.ndarray, classes: np.ndarray, shape: tuple[int, int],
                num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(boxes, classes)`` validated: boxes ``(N, 4)`` float64 clipped to the image, classes int64."""
    h, w = int(shape[0]), int(shape[1])
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    classes = np.asarray(classes).reshape(-1)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must be (N, 4) x0, y0, x1, y1, got shape {boxes.shape}")
    if len(classes) != len(boxes):
        raise ValueError(f"{len(boxes)} boxes but {len(classes)} class ids")
    if classes.size and not np.issubdtype(classes.dtype, np.integer):
        if not np.all(np.equal(np.mod(classes, 1), 0)):
            raise ValueError(f"class ids must be integers, got {classes}")
    classes = classes.astype(np.int64)
    for i, (b, c) in enumerate(zip(boxes, classes)):
        if not 1 <= c < num_classes:
            raise ValueError(f"box {i}: class id {c} outside 1..{num_classes - 1} "
                             f"(0 is background, {VOID} void; num_classes={num_classes})")
        if not np.isfinite(b).all():
            raise ValueError(f"box {i}: non-finite coordinates {b.tolist()}")
    clipped = boxes.copy()
    clipped[:, 0::2] = clipped[:, 0::2].clip(0, w)
    clipped[:, 1::2] = clipped[:, 1::2].clip(0, h)
    for i, (b, c) in enumerate(zip(boxes, clipped)):
        if c[2] - c[0] <= 0 or c[3] - c[1] <= 0:
            raise ValueError(f"box {i} {b.tolist()} has no area inside the {w}x{h} image "
                             f"(x0, y0, x1, y1 in pixels, inclusive-exclusive)")
    return clipped, classes


def box_masks(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(N, H, W)`` bool: the pixels whose centres lie inside each (clipped) box."""
    h, w = shape
    out = np.zeros((len(boxes), h, w), dtype=bool)
    for i, (x0, y0, x1, y1) in enumerate(np.asarray(boxes, dtype=np.float64)):
        # pixel (r, c) covers [c, c+1); its centre c + 0.5 must lie in [x0, x1)
        c0, c1 = int(np.ceil(x0 - 0.5)), int(np.ceil(x1 - 0.5))
        r0, r1 = int(np.ceil(y0 - 0.5)), int(np.ceil(y1 - 0.5))
        if c1 <= c0:  # a sub-pixel box still covers the pixel it sits on
            c0 = min(int(np.floor(x0)), w - 1); c1 = c0 + 1
        if r1 <= r0:
            r0 = min(int(np.floor(y0)), h - 1); r1 = r0 + 1
        out[i, max(r0, 0):min(r1, h), max(c0, 0):min(c1, w)] = True
    return out


def _void_crowd(labels: np.ndarray, crowd: np.ndarray | None) -> int:
    """Rule 4: crowd pixels become void in ``labels`` (in place); returns how many."""
    if crowd is None:
        return 0
    crowd = np.asarray(crowd, dtype=bool)
    if crowd.shape != labels.shape:
        raise ValueError(f"crowd map {crowd.shape} differs from the image size {labels.shape}")
    labels[crowd] = VOID
    return int(crowd.sum())


def paint(shape: tuple[int, int], masks: np.ndarray, classes: np.ndarray, areas: np.ndarray | None = None,
          crowd: np.ndarray | None = None) -> tuple[np.ndarray, int, int]:
    """``(labels, overlap_px, void_px)``: rules 1, 2 and 4 of the module docstring.

    ``areas`` orders the painting (default: the masks' pixel counts); larger first, so
    smaller on top; ties: later index on top.
    """
    h, w = shape
    labels = np.full((h, w), BACKGROUND, dtype=np.uint8)
    masks = np.asarray(masks, dtype=bool).reshape(-1, h, w)
    if len(masks):
        areas = masks.sum(axis=(1, 2)) if areas is None else np.asarray(areas)
        order = np.lexsort((np.arange(len(masks)), -areas.astype(np.float64)))
        for i in order:
            labels[masks[i]] = classes[i]
        overlap = int((masks.sum(axis=0) > 1).sum())
    else:
        overlap = 0
    return labels, overlap, _void_crowd(labels, crowd)


def paint_cells(superpixels: np.ndarray, cell_lists: list[np.ndarray], classes: np.ndarray, areas: np.ndarray,
                crowd: np.ndarray | None = None, cell_areas: np.ndarray | None = None) -> tuple[np.ndarray, int, int]:
    """:func:`paint` for segments that are unions of superpixels: the same ``(labels, overlap_px,
    void_px)``, painted on the ``R`` cells and then looked up per pixel (a label update paints
    every box-only image each round; dense masks cost ``n x H x W``).

    ``cell_lists[i]``: the cell ids of segment ``i``; ``areas`` orders the painting as in
    :func:`paint`; ``cell_areas``: pixels per cell (counted when ``None``).
    """
    sp = np.asarray(superpixels)
    h, w = sp.shape
    if cell_areas is None:
        cell_areas = np.bincount(sp.ravel().astype(np.int64))
    r = len(cell_areas)
    lut = np.full(r, BACKGROUND, dtype=np.uint8)
    overlap = 0
    if len(cell_lists):
        order = np.lexsort((np.arange(len(cell_lists)), -np.asarray(areas, dtype=np.float64)))
        for i in order:
            lut[cell_lists[i]] = classes[i]
        cover = np.bincount(np.concatenate(cell_lists).astype(np.int64), minlength=r)
        overlap = int(np.asarray(cell_areas)[cover > 1].sum())
    labels = lut[sp]
    return labels, overlap, _void_crowd(labels, crowd)


def resolve_shared(chosen: np.ndarray, classes: np.ndarray, ious: np.ndarray,
                   box_areas: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Rule 3: ``(keep, shared, conflicts)``; ``keep[b]`` is False for boxes that paint nothing.

    ``ious[b]``: IoU of box ``b`` with the tight box of its chosen segment.
    """
    n = len(chosen)
    keep = np.ones(n, dtype=bool)
    shared = conflicts = 0
    for seg in np.unique(chosen):
        idx = np.flatnonzero(chosen == seg)
        if len(idx) < 2:
            continue
        shared += len(idx)
        # best fit first: higher IoU, then smaller box, then first box
        order = idx[np.lexsort((idx, box_areas[idx], -ious[idx]))]
        winner = order[0]
        for b in order[1:]:
            keep[b] = False  # same class: painted once by the winner; other class: lost
            conflicts += int(classes[b] != classes[winner])
    return keep, shared, conflicts
