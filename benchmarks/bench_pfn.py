"""Cost of PFN's test stage (Liang et al. 2015 §3.3): dense vs subsampled spectral clustering.

One category mask of n pixels holding k instances (blobs side by side, touching, with noisy
predicted instance locations), clustered by :func:`instseg_lib.grouping.cluster_mask` densely
(all n pixels: an n x n affinity and its eigenvectors, O(n^2) memory and O(n^3) time) and on a
``max_pixels`` subset (the rest assigned by mean affinity). Prints the wall time of each and
the agreement of the subsampled labelling with the dense one (best matching of clusters).
Also times the forward pass of the PFN instance network at a given width.

    python benchmarks/bench_pfn.py                     # a few mask sizes, < 1 min on 1 core
    python benchmarks/bench_pfn.py --sizes 400 1600 6400 --max-pixels 500 1000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from instseg_lib.grouping import cluster_mask
from instseg_lib.models import PFN, PFNConfig


def blobs(n: int, k: int, noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(t, q, truth)`` for a square mask of about ``n`` pixels cut into ``k`` vertical strips
    (touching instances); t = the strip's box (cx, cy, lx, ly, rx, ry) plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    side = int(round(np.sqrt(n)))
    ys, xs = np.mgrid[0:side, 0:side]
    ys, xs = ys.ravel() + 0.5, xs.ravel() + 0.5
    truth = np.minimum((xs * k / side).astype(int), k - 1)
    edges = np.linspace(0, side, k + 1)
    lx, rx = edges[truth], edges[truth + 1]
    t = np.stack([(lx + rx) / 2, np.full_like(lx, side / 2), lx, np.zeros_like(lx), rx, np.full_like(lx, side)], 1)
    t = t / side + rng.normal(0, noise, t.shape)
    q = np.stack([xs, ys], 1)
    m = np.abs(t).max(0)
    return t / np.where(m > 0, m, 1.0), q / q.max(0), truth  # Eq. 6's max normalisation


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of pixels on which two labellings agree under the best one-to-one matching."""
    from scipy.optimize import linear_sum_assignment

    conf = np.zeros((int(a.max()) + 1, int(b.max()) + 1))
    np.add.at(conf, (a, b), 1)
    r, c = linear_sum_assignment(-conf)
    return float(conf[r, c].sum() / len(a))


def image_target(noise: float = 0.02) -> None:
    """The issue's target: the test stage (refinement + clustering + size constraint, the
    recipe's :func:`~instseg_lib.recipes.liang2015.group_image`) of one 320 x 480 image whose
    category map is 30% foreground over 3 classes (two instances each), <= 1 s on one core."""
    from instseg_lib.data.targets import pfn_instance_targets
    from instseg_lib.recipes.liang2015 import TestSettings, group_image

    h, w = 320, 480
    inst = np.zeros((h, w), np.int32)
    cls = []
    # 6 boxes of 80 x 96 px = 46,080 px = 30% of the image; classes 3, 8, 12, two instances each
    for j, (y, x) in enumerate([(20, 20), (20, 116), (140, 20), (140, 116), (20, 300), (140, 300)]):
        inst[y:y + 80, x:x + 96] = j + 1
        cls.append((3, 3, 8, 8, 12, 12)[j])
    lab = np.where(inst > 0, np.asarray([0, *cls])[inst], 0)
    probs = np.full((21, h, w), 0.01, np.float32)
    for c in range(21):
        probs[c][lab == c] = 0.8
    t = pfn_instance_targets(inst, "pfn6", "absolute")["locations"]
    t = t + np.random.default_rng(0).normal(0, noise, t.shape).astype(np.float32)
    numbers = np.zeros(20)
    numbers[[2, 7, 11]] = 2.0
    print(f"\ntest stage of one {h} x {w} image, {100 * (lab > 0).mean():.0f}% foreground over 3 classes "
          "(target: <= 1 s on one core)")
    for m in (250, 500, 1000):
        t0 = time.perf_counter()
        out = group_image(probs, t, numbers, TestSettings(max_pixels=m), image_id="bench")
        dt = time.perf_counter() - t0
        print(f"  max_pixels {m:>5}: {dt:.2f} s, {len(out.masks)} instances ({dt:.2f}x the 1 s target)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[400, 1600, 3600])
    ap.add_argument("--max-pixels", type=int, nargs="+", default=[250, 500, 1000])
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--noise", type=float, default=0.05)
    ap.add_argument("--sigma", type=float, default=0.5, help="Eq. 6's sigma (paper: 0.5)")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--image", type=int, default=112)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"k={args.k} touching instances per mask, location noise {args.noise}, sigma {args.sigma}; "
          "times in s (1 thread)")
    print(f"{'pixels':>7} {'mode':>10} {'time':>7} {'vs truth':>9} {'vs dense':>9}")
    cluster_mask(*blobs(100, 2, 0.0)[:2], 2)  # imports scikit-learn outside the timings
    for n in args.sizes:
        t, q, truth = blobs(n, args.k, args.noise)
        t0 = time.perf_counter()
        dense = cluster_mask(t, q, args.k, sigma=args.sigma, max_pixels=None)
        td = time.perf_counter() - t0
        print(f"{len(t):>7} {'dense':>10} {td:>7.2f} {agreement(dense, truth):>9.3f} {1.0:>9.3f}")
        for m in args.max_pixels:
            if m >= len(t):
                continue
            t0 = time.perf_counter()
            sub = cluster_mask(t, q, args.k, sigma=args.sigma, max_pixels=m)
            ts = time.perf_counter() - t0
            print(f"{len(t):>7} {f'sub {m}':>10} {ts:>7.2f} {agreement(sub, truth):>9.3f} {agreement(sub, dense):>9.3f}")
    image_target()
    model = PFN(PFNConfig(num_classes=20, width=args.width, fc6_dilation=4)).eval()
    x = torch.randn(1, 3, args.image, args.image)
    with torch.no_grad():
        model(x)
        t0 = time.perf_counter()
        for _ in range(3):
            model(x)
    print(f"PFN forward, width {args.width}, {args.image} px: {(time.perf_counter() - t0) / 3:.3f} s")


if __name__ == "__main__":
    main()
