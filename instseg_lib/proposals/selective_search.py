"""Selective Search (Uijlings, van de Sande, Gevers & Smeulders, IJCV 2013) returning segments.

BoxSup §4.1 names Selective Search [31] as its example of an unsupervised region proposal
method and Table 3 trains with it ("SS"). Selective Search is a segment method at heart: its
hierarchy merges regions, and the boxes people usually take from it are only their tight
boxes. We keep the regions (as unions of base cells, :class:`Candidates`).

The algorithm (IJCV 2013 §3), as implemented here:

1. **Base over-segmentation** (§3.1): Felzenszwalb & Huttenlocher's graph segmentation
   (``skimage.segmentation.felzenszwalb``) in the strategy's colour space.
2. **Hierarchical grouping** (§3.1, Alg. 1): greedily merge the most similar pair of
   *neighbouring* regions until one region is left; every region ever formed (the initial
   ones included) is a hypothesis.
3. **Similarities** (§3.2), all in [0, 1], summed over the strategy's subset:

   - colour ``s_colour = sum_k min(c_i^k, c_j^k)``: L1-normalised histograms, 25 bins per
     channel (75-d);
   - texture ``s_texture = sum_k min(t_i^k, t_j^k)``: Gaussian derivatives (sigma = 1) in
     eight orientations per channel, 10 bins each (240-d), L1-normalised;
   - size ``s_size = 1 - (size_i + size_j) / size(im)`` (merge small regions early);
   - fill ``s_fill = 1 - (size(BB_ij) - size_i - size_j) / size(im)`` (merge regions that
     fill each other's gaps).

   Merged histograms are the size-weighted average, as in the paper (no pixel revisits).
4. **Diversification** (§3.3): several strategies (colour space x base threshold k x
   similarity subset) each give a hierarchy; their hypotheses are pooled.
5. **Ranking** (§3.3 "Combining locations"): in each hierarchy the region formed last
   (the whole image) has position 1, the one before it 2, ...; each position is multiplied
   by a random number in [0, 1] and all hypotheses are sorted by that value; duplicates keep
   their best copy. (The random factor interleaves strategies and still favours large,
   late regions.)

Choices for small twin images (~128 px; the paper's images are ~500 px):

- "Eight orientations" read as four directions (0, 45, 90, 135 degrees) of the Gaussian
  first derivative, each split into its positive and negative half (8 rectified maps).
  Responses are binned in [0, max] of that map over the image.
- The default runs 4 strategies, a subset of the paper's "fast" mode (which runs 8: HSV
  and Lab, k = 50 and 100, C+T+S+F and T+S+F): HSV and Lab, one k, both similarity subsets.
  Felzenszwalb's ``scale`` acts on [0, 1] colour values here; ``scale=100``,
  ``min_size=20`` give ~100-300 base regions on a 128 x 192 image, which keeps one image
  in well under a second on one core. Every knob is a parameter.
- The strategies share nothing, so their base maps differ; the returned candidates live on
  the overlay of those maps (see :meth:`Candidates.from_partitions`).

:func:`opencv_selective_search_boxes` wraps OpenCV's ximgproc implementation (boxes only),
the reference our box recall is checked against (``tests/test_proposals.py``,
``benchmarks/bench_proposals.py``). On 20 cpu-profile VOC twin images our default gives box
ABO 0.48 at 100 proposals against OpenCV "fast"'s 0.48 (0.59 vs 0.53 with all proposals,
~450 vs ~200 per image).
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage
from skimage import color
from skimage.segmentation import felzenszwalb

from .candidates import Candidates, relabel_sequential

SIMILARITIES = ("colour", "texture", "size", "fill")
#: IJCV 2013 §3.2: "C+T+S+F" and "T+S+F", the two subsets of the paper's fast mode.
FAST_SIMILARITIES = (("colour", "texture", "size", "fill"), ("texture", "size", "fill"))
COLOUR_BINS = 25
TEXTURE_BINS = 10
TEXTURE_SIGMA = 1.0


@dataclass(frozen=True)
class SelectiveSearchConfig:
    """Strategies: every combination of ``colour_spaces`` x ``scales`` x ``similarities``."""

    colour_spaces: tuple[str, ...] = ("hsv", "lab")
    scales: tuple[float, ...] = (100.0,)
    similarities: tuple[tuple[str, ...], ...] = FAST_SIMILARITIES
    sigma: float = 0.8
    min_size: int = 20
    seed: int = 0

    def key(self) -> str:
        return "selective_search:" + json.dumps(asdict(self), sort_keys=True)

    def __post_init__(self) -> None:
        for cs in self.colour_spaces:
            if cs not in ("rgb", "hsv", "lab"):
                raise ValueError(f"unknown colour space {cs!r}; use rgb, hsv or lab")
        for subset in self.similarities:
            bad = set(subset) - set(SIMILARITIES)
            if bad or not subset:
                raise ValueError(f"similarity subset {subset!r}: use a non-empty subset of {SIMILARITIES}")


# --------------------------------------------------------------------------- features
def to_colour_space(image: np.ndarray, space: str) -> np.ndarray:
    """``(H, W, 3)`` float64 in [0, 1] per channel."""
    rgb = np.asarray(image)
    if rgb.dtype == np.uint8:
        rgb = rgb.astype(np.float64) / 255.0
    if space == "rgb":
        return rgb.astype(np.float64)
    if space == "hsv":
        return color.rgb2hsv(rgb)
    if space == "lab":
        lab = color.rgb2lab(rgb)
        # L in [0, 100], a and b within about [-128, 127]
        return np.stack([lab[..., 0] / 100.0, (lab[..., 1] + 128.0) / 255.0,
                         (lab[..., 2] + 128.0) / 255.0], axis=-1).clip(0.0, 1.0)
    raise ValueError(f"unknown colour space {space!r}")


def _binned(values: np.ndarray, bins: int) -> np.ndarray:
    return np.minimum((values * bins).astype(np.int64), bins - 1)


def region_histograms(labels: np.ndarray, feat: np.ndarray, bins: int) -> np.ndarray:
    """``(R, C * bins)`` L1-normalised histograms of ``feat`` ``(H, W, C)`` in [0, 1] per region."""
    r = int(labels.max()) + 1
    lab = labels.ravel()
    cols = []
    for c in range(feat.shape[-1]):
        b = _binned(feat[..., c].ravel(), bins)
        cols.append(np.bincount(lab * bins + b, minlength=r * bins).reshape(r, bins))
    h = np.concatenate(cols, axis=1).astype(np.float64)
    return h / np.maximum(h.sum(axis=1, keepdims=True), 1e-12)


def texture_features(img: np.ndarray, sigma: float = TEXTURE_SIGMA) -> np.ndarray:
    """``(H, W, 8 * C)`` rectified oriented Gaussian derivatives, each scaled to [0, 1]."""
    maps = []
    for c in range(img.shape[-1]):
        ch = img[..., c]
        gy = ndimage.gaussian_filter(ch, sigma, order=(1, 0))
        gx = ndimage.gaussian_filter(ch, sigma, order=(0, 1))
        for theta in (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4):
            d = np.cos(theta) * gx + np.sin(theta) * gy
            for half in (np.maximum(d, 0.0), np.maximum(-d, 0.0)):
                top = half.max()
                maps.append(half / top if top > 0 else half)
    return np.stack(maps, axis=-1)


def adjacent_pairs(labels: np.ndarray) -> np.ndarray:
    """``(P, 2)`` unique pairs ``i < j`` of 4-adjacent regions."""
    a = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()])
    b = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()])
    diff = a != b
    if not diff.any():
        return np.zeros((0, 2), np.int64)
    lo, hi = np.minimum(a[diff], b[diff]).astype(np.int64), np.maximum(a[diff], b[diff]).astype(np.int64)
    # one int64 code per pair: its sorted unique codes are the rows np.unique(axis=0) gives, in the
    # same (lo, hi) order, without np.unique's row-wise lexsort
    r = int(hi.max()) + 1
    code = np.unique(lo * r + hi)
    return np.stack([code // r, code % r], axis=1)


# --------------------------------------------------------------------------- grouping
def hierarchical_grouping(labels: np.ndarray, colour_hist: np.ndarray | None, texture_hist: np.ndarray | None,
                          similarities: Sequence[str]) -> list[np.ndarray]:
    """IJCV 2013 Alg. 1 on base regions ``0..R-1``: every region formed, in formation order.

    Returns a list of ``2R - 1`` (for a connected image) arrays of base-region ids: the
    ``R`` initial regions, then one merged region per step; the last is the whole image.
    """
    r = int(labels.max()) + 1
    im_size = float(labels.size)
    cap = 2 * r
    size = np.zeros(cap)
    size[:r] = np.bincount(labels.ravel(), minlength=r)
    box = np.zeros((cap, 4))
    for i, sl in enumerate(ndimage.find_objects(labels + 1, max_label=r)):
        box[i] = (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop)
    use = set(similarities)
    hc = np.zeros((cap, colour_hist.shape[1])) if "colour" in use else None
    ht = np.zeros((cap, texture_hist.shape[1])) if "texture" in use else None
    if hc is not None:
        hc[:r] = colour_hist
    if ht is not None:
        ht[:r] = texture_hist

    def sim(i: int, js: np.ndarray) -> np.ndarray:
        s = np.zeros(js.size)
        if hc is not None:
            s += np.minimum(hc[i], hc[js]).sum(axis=1)
        if ht is not None:
            s += np.minimum(ht[i], ht[js]).sum(axis=1)
        if "size" in use:
            s += 1.0 - (size[i] + size[js]) / im_size
        if "fill" in use:
            bb = ((np.maximum(box[i, 2], box[js, 2]) - np.minimum(box[i, 0], box[js, 0]))
                  * (np.maximum(box[i, 3], box[js, 3]) - np.minimum(box[i, 1], box[js, 1])))
            s += 1.0 - (bb - size[i] - size[js]) / im_size
        return s

    neighbours: list[set[int]] = [set() for _ in range(cap)]
    heap: list[tuple[float, int, int]] = []
    pairs = adjacent_pairs(labels)
    for i, j in pairs:
        neighbours[i].add(int(j))
        neighbours[j].add(int(i))
    if len(pairs):
        # initial similarities of all neighbouring pairs at once
        for i in np.unique(pairs[:, 0]):
            js = pairs[pairs[:, 0] == i, 1]
            for j, s in zip(js, sim(int(i), js)):
                heap.append((-float(s), int(i), int(j)))
        heapq.heapify(heap)
    regions: list[np.ndarray] = [np.array([i], dtype=np.int64) for i in range(r)]
    alive = np.zeros(cap, dtype=bool)
    alive[:r] = True
    t = r
    while heap:
        _, i, j = heapq.heappop(heap)
        if not (alive[i] and alive[j]):
            continue  # stale entry of a region merged earlier
        alive[i] = alive[j] = False
        size[t] = size[i] + size[j]
        box[t] = (min(box[i, 0], box[j, 0]), min(box[i, 1], box[j, 1]),
                  max(box[i, 2], box[j, 2]), max(box[i, 3], box[j, 3]))
        # size-weighted histogram of the union (IJCV 2013 §3.2, "propagated through the hierarchy")
        wi, wj = size[i] / size[t], size[j] / size[t]
        if hc is not None:
            hc[t] = wi * hc[i] + wj * hc[j]
        if ht is not None:
            ht[t] = wi * ht[i] + wj * ht[j]
        nb = (neighbours[i] | neighbours[j]) - {i, j}
        for n in nb:
            neighbours[n].discard(i)
            neighbours[n].discard(j)
            neighbours[n].add(t)
        neighbours[t] = nb
        neighbours[i] = neighbours[j] = set()
        regions.append(np.concatenate([regions[i], regions[j]]))
        alive[t] = True
        if nb:
            js = np.fromiter(nb, dtype=np.int64, count=len(nb))
            for n, s in zip(js, sim(t, js)):
                heapq.heappush(heap, (-float(s), t, int(n)))
        t += 1
    return regions


def _strategy_hierarchy(image: np.ndarray, space: str, scale: float, subsets: Sequence[Sequence[str]],
                        sigma: float, min_size: int) -> tuple[np.ndarray, list[list[np.ndarray]]]:
    img = to_colour_space(image, space)
    labels, _ = relabel_sequential(felzenszwalb(img, scale=scale, sigma=sigma, min_size=min_size))
    ch = region_histograms(labels, img, COLOUR_BINS)
    th = region_histograms(labels, texture_features(img), TEXTURE_BINS)
    return labels, [hierarchical_grouping(labels, ch, th, subset) for subset in subsets]


def selective_search(image: np.ndarray, config: SelectiveSearchConfig | None = None,
                     max_candidates: int | None = None) -> Candidates:
    """Ranked candidate segments of an ``(H, W, 3)`` uint8 RGB image (see module docstring)."""
    cfg = config or SelectiveSearchConfig()
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"selective_search needs an (H, W, 3) RGB image, got shape {image.shape}")
    rng = np.random.default_rng(cfg.seed)
    partitions: list[tuple[np.ndarray, list[np.ndarray]]] = []
    values: list[np.ndarray] = []
    for space in cfg.colour_spaces:
        for scale in cfg.scales:
            labels, hierarchies = _strategy_hierarchy(image, space, scale, cfg.similarities, cfg.sigma, cfg.min_size)
            for regions in hierarchies:
                # position 1 = last region formed (the whole image), times U(0, 1)
                pos = np.arange(len(regions), 0, -1, dtype=np.float64)
                values.append(pos * rng.random(len(regions)))
                partitions.append((labels, regions))
    order = np.argsort(np.concatenate(values), kind="stable")
    cands = Candidates.from_partitions(partitions, order=order, method=cfg.key())
    return cands.top(max_candidates) if max_candidates is not None else cands


# --------------------------------------------------------------------------- reference
def opencv_selective_search_boxes(image: np.ndarray, mode: str = "fast") -> np.ndarray:
    """OpenCV ximgproc Selective Search boxes ``(N, 4)`` float32 ``x0, y0, x1, y1`` (ranked).

    ``mode``: ``"single"`` (one strategy), ``"fast"`` or ``"quality"`` (OpenCV's presets of
    the paper's modes). Needs ``opencv-contrib-python-headless``; reference only.
    """
    import cv2

    ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    # OpenCV expects BGR
    ss.setBaseImage(np.ascontiguousarray(np.asarray(image)[..., ::-1]))
    {"single": ss.switchToSingleStrategy, "fast": ss.switchToSelectiveSearchFast,
     "quality": ss.switchToSelectiveSearchQuality}[mode]()
    rects = np.asarray(ss.process(), dtype=np.float32).reshape(-1, 4)  # x, y, w, h
    rects[:, 2:] += rects[:, :2]
    return rects
