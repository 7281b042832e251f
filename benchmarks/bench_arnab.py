"""Full instance inference of Arnab & Torr 2017 on one 320 x 480 image, CPU by default.

The semantic subnetwork (the book's FCRN-50 stand-in for FCN-8s, untrained weights: timing
does not depend on them) with its dense CRF (21 labels, 5 mean-field iterations), then the
dynamic instance CRF with Box, Global and Shape unaries for 10 detections and its dense CRF
(3 iterations, the release's setting). The paper reports 1.1 s per image on a Titan X
(§4.4, FCN-8s + both CRFs); printed, never asserted.

    python benchmarks/bench_arnab.py
    python benchmarks/bench_arnab.py --width 64 --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from instseg_lib.detections import Detection
from instseg_lib.grouping import InstanceUnaries, ShapeTemplates, dynamic_instance_crf
from instseg_lib.models import DenseCRF, FCRN, FCRNConfig
from instseg_lib.recipes.arnab2017 import INSTANCE_CRF, SEMANTIC_CRF, _scaled_crf


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--height", type=int, default=320)
    ap.add_argument("--img-width", type=int, default=480)
    ap.add_argument("--width", type=int, default=16, help="FCRN channel width (cpu profile 16, gpu 64)")
    ap.add_argument("--classes", type=int, default=21)
    ap.add_argument("--detections", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    dev = torch.device(args.device)
    h, w = args.height, args.img_width
    rng = np.random.default_rng(0)
    fcrn = FCRN(FCRNConfig(depth=50, output_stride=8, kernel=3, dilation=12 * h // 500 or 1, width=args.width,
                           num_classes=args.classes)).to(dev).eval()
    size = max(h, w)
    sem_crf = DenseCRF(**_scaled_crf(SEMANTIC_CRF, size), unary_kind="logits", learnable=False).to(dev)
    inst_crf = DenseCRF(**_scaled_crf(INSTANCE_CRF, size), unary_kind="energy", learnable=False).to(dev)
    masks = [rng.random((rng.integers(8, 40), rng.integers(8, 40))) > 0.3 for _ in range(200)]
    unaries = InstanceUnaries(templates=ShapeTemplates.from_masks(masks, templates_per_bin=50)).to(dev)
    dets = []
    for _ in range(args.detections):
        x0, y0 = rng.uniform(0, w - 60), rng.uniform(0, h - 60)
        dets.append(Detection(int(rng.integers(1, args.classes)), float(rng.uniform(0.5, 1)),
                              (x0, y0, x0 + rng.uniform(20, 120), y0 + rng.uniform(20, 120))))
    # a twin-like image: flat-coloured rectangles with mild noise (pure noise would give the
    # permutohedral lattice one vertex per pixel, a worst case no photograph reaches)
    img = np.empty((3, h, w), np.float32)
    img[:] = rng.integers(0, 256, (3, 1, 1))
    for _ in range(12):
        y0, x0 = rng.integers(0, h - 20), rng.integers(0, w - 20)
        img[:, y0:y0 + rng.integers(20, 160), x0:x0 + rng.integers(20, 200)] = rng.integers(0, 256, (3, 1, 1))
    img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.float32)
    image = torch.from_numpy(img)[None].to(dev)
    x = (image / 255.0 - 0.45) / 0.225

    @torch.no_grad()
    def run() -> tuple[float, float, float]:
        _sync(dev)
        t0 = time.perf_counter()
        logits = fcrn(x)
        _sync(dev)
        t1 = time.perf_counter()
        q = sem_crf(logits, image)
        _sync(dev)
        t2 = time.perf_counter()
        dynamic_instance_crf(q, dets, unaries, image=image, crf=inst_crf)
        _sync(dev)
        return t1 - t0, t2 - t1, time.perf_counter() - t2

    run()  # warm-up (lattice code paths, allocator)
    times = [run() for _ in range(args.repeats)]
    parts = [statistics.median(t[i] for t in times) for i in range(3)]
    total = sum(parts)
    print(f"Arnab & Torr full inference on {h}x{w}, FCRN-50 width {args.width}, {args.classes} classes, "
          f"{args.detections} detections, device {dev}, torch threads {torch.get_num_threads()}")
    print(f"  semantic net        : {parts[0]:7.3f} s (median of {args.repeats})")
    print(f"  semantic dense CRF  : {parts[1]:7.3f} s ({SEMANTIC_CRF['iterations']} iterations)")
    print(f"  instance CRF        : {parts[2]:7.3f} s (unaries + {INSTANCE_CRF['iterations']} iterations)")
    print(f"  total               : {total:7.3f} s per image   paper: 1.1 s on a Titan X (ratio {total / 1.1:.2f}x)")


if __name__ == "__main__":
    main()
