"""Multi-scale hierarchical merging of SLIC superpixels: a STAND-IN for MCG and GOP.

BoxSup adopts MCG (Arbeláez et al. 2014) "by default" (§4.2) and compares it with GOP
(Krähenbühl & Koltun 2014) and Selective Search in Table 3. Neither MCG (trained contour
detector, UCM hierarchies at several scales, combinatorial grouping of up to four regions,
a learned ranker) nor GOP (learned seeds and geodesic distance transforms) is available as
a Python package, and both rest on models trained on BSDS/VOC. This module is **not** MCG
and **not** GOP. It is a second segment-proposal method of *different* quality built from
the same ingredients MCG starts from (a fine partition, a merge hierarchy per scale,
pooling over scales), so that Table 3's question "does proposal quality change what
BoxSup learns?" can be asked on the twin with two measured qualities
(``benchmarks/bench_proposals.py`` prints them).

Per scale (``n_segments`` of SLIC):

1. SLIC superpixels (``skimage.segmentation.slic``, Lab k-means with a compactness term);
2. a region adjacency graph of mean Lab colours (the graph of ``skimage.graph.rag_mean_color``,
   built vectorised: :func:`rag_mean_color`);
3. greedy merging of the closest adjacent pair until one region is left
   (``skimage.graph.merge_hierarchical`` with an infinite threshold), updating mean colours;
   every region formed is a candidate, initial superpixels included.

Ranking (MCG ranks with a learned regressor; we have no training data for one): a region's
*persistence*, the merge distance at which it is absorbed into a larger region minus the
one at which it was formed -- the same idea as reading regions off an ultrametric contour
map at the levels where they stay stable. The whole-image region gets the largest merge
distance of its hierarchy as its end. Scales are pooled and sorted by persistence.

Measured on 20 cpu-profile VOC twin val images (``benchmarks/bench_proposals.py``): against
our Selective Search it recalls more objects with few proposals (mask ABO 0.52 vs 0.37 at
30) and fewer with many (0.72 vs 0.73 at 1000, recall@0.7 0.53 vs 0.64): a different
quality, not a uniformly better or worse one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
from skimage import color
from skimage.segmentation import slic

from .candidates import Candidates, relabel_sequential


@dataclass(frozen=True)
class SlicMergeConfig:
    """SLIC scales (approximate superpixel counts), compactness and pre-smoothing."""

    n_segments: tuple[int, ...] = (50, 100, 200)
    compactness: float = 10.0
    sigma: float = 1.0

    def key(self) -> str:
        return "slic_merge:" + json.dumps(asdict(self), sort_keys=True)


# The 3x3 footprint of connectivity 2, in the row-major order scipy's generic_filter visits it
_FOOTPRINT = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]


def rag_mean_color(image: np.ndarray, labels: np.ndarray):
    """``skimage.graph.rag_mean_color(image, labels, connectivity=2, mode="distance")``, vectorised.

    skimage builds the graph with a Python callback per pixel (``ndimage.generic_filter``) and
    a per-pixel loop for the colour sums: most of :func:`slic_merge_proposals`' time (2.4 s of
    process CPU per 320x480 image before, 0.57 s with this; ``benchmarks/bench_proposals.py``).
    This builds the *same* graph: the
    same node and edge insertion order (each 8-adjacent label pair enters at its first
    occurrence in skimage's scan: pixels in C order, the footprint row-major, borders
    replicated, oriented (centre, neighbour)), the same float64 colour sums in the same
    order (``bincount`` adds in index order, as skimage's loop does), and weights by the
    same ``np.linalg.norm`` per edge. The order matters because ``merge_hierarchical``
    breaks ties between equal weights by it; ``tests/test_proposals.py`` checks the graphs
    are identical.
    """
    from skimage.graph import RAG

    h, w = labels.shape
    ids = np.asarray(labels, dtype=np.int64)
    pad = np.pad(ids, 1, mode="edge")
    # events[pixel, k]: the label at footprint offset k of each pixel (k = 4 is the centre)
    nb = np.stack([pad[1 + dy:1 + dy + h, 1 + dx:1 + dx + w].ravel() for dy, dx in _FOOTPRINT], axis=1)
    centre = np.broadcast_to(ids.ravel()[:, None], nb.shape)
    hit = nb != centre
    c, v = centre[hit], nb[hit]  # C order over (pixel, k): skimage's scan order
    r = int(ids.max()) + 1
    key = np.minimum(c, v) * r + np.maximum(c, v)
    _, first = np.unique(key, return_index=True)
    first.sort()
    g = RAG()
    for a, b in zip(c[first].tolist(), v[first].tolist()):
        g.add_edge(a, b)
    count = np.bincount(ids.ravel(), minlength=r)
    total = np.stack([np.bincount(ids.ravel(), weights=image[..., ch].ravel().astype(np.float64), minlength=r)
                      for ch in range(image.shape[-1])], axis=1)
    for n in g:
        g.nodes[n].update({"labels": [n], "pixel count": int(count[n]), "total color": total[n].copy()})
        g.nodes[n]["mean color"] = g.nodes[n]["total color"] / g.nodes[n]["pixel count"]
    for x, y, d in g.edges(data=True):
        d["weight"] = np.linalg.norm(g.nodes[x]["mean color"] - g.nodes[y]["mean color"])
    return g


def _merge_hierarchy(lab: np.ndarray, labels: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Every region of one greedy merge hierarchy and its persistence."""
    from skimage import graph

    r = int(labels.max()) + 1
    if r == 1:  # one superpixel (tiny or blank image): nothing to merge, and no graph to build
        return [np.array([0], dtype=np.int64)], np.zeros(1)
    rag = rag_mean_color(lab, labels)
    regions: list[np.ndarray] = [np.array([i], dtype=np.int64) for i in range(r)]
    born = [0.0] * r
    died = [np.nan] * r
    node_region = {i: i for i in range(r)}  # graph node -> index of its current region

    def weight(g, src, dst, n):
        d = g.nodes[dst]["mean color"] - g.nodes[n]["mean color"]
        return {"weight": float(np.linalg.norm(d))}

    def merge(g, src, dst):
        w = float(g[src][dst]["weight"])
        a, b = node_region[src], node_region[dst]
        died[a] = died[b] = w
        regions.append(np.concatenate([regions[a], regions[b]]))
        born.append(w)
        died.append(np.nan)
        node_region[dst] = len(regions) - 1
        nd, ns = g.nodes[dst], g.nodes[src]
        nd["total color"] += ns["total color"]
        nd["pixel count"] += ns["pixel count"]
        nd["mean color"] = nd["total color"] / nd["pixel count"]

    graph.merge_hierarchical(labels, rag, thresh=np.inf, rag_copy=False, in_place_merge=True,
                             merge_func=merge, weight_func=weight)
    born_a, died_a = np.asarray(born), np.asarray(died)
    top = np.nanmax(died_a) if np.isfinite(died_a).any() else 1.0
    died_a = np.where(np.isnan(died_a), top, died_a)  # the root (and isolated regions)
    return regions, np.clip(died_a - born_a, 0.0, None)


def slic_merge_proposals(image: np.ndarray, config: SlicMergeConfig | None = None,
                         max_candidates: int | None = None) -> Candidates:
    """Ranked candidate segments of an ``(H, W, 3)`` uint8 RGB image (see module docstring)."""
    cfg = config or SlicMergeConfig()
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"slic_merge_proposals needs an (H, W, 3) RGB image, got shape {image.shape}")
    lab = color.rgb2lab(image)
    partitions, scores = [], []
    for n in cfg.n_segments:
        sp = slic(image, n_segments=int(n), compactness=cfg.compactness, sigma=cfg.sigma, start_label=0,
                  channel_axis=-1)
        labels, _ = relabel_sequential(sp)
        regions, persistence = _merge_hierarchy(lab, labels)
        partitions.append((labels, regions))
        scores.append(persistence)
    order = np.argsort(-np.concatenate(scores), kind="stable")
    cands = Candidates.from_partitions(partitions, order=order, method=cfg.key())
    return cands.top(max_candidates) if max_candidates is not None else cands
