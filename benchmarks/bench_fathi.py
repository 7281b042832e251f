"""Seed sampling and mask growing of Fathi et al. 2017 (§3.3) on one image, CPU by default.

Times :func:`instseg_lib.grouping.sample_seeds` (seediness, then greedy diverse selection on
the stride-4 candidate grid) and :func:`instseg_lib.grouping.instances_from_seeds` (all masks
at each seed's own τ by one matrix product) for 100 seeds on a 320 x 480 image with 64-d
embeddings. Target: <= 0.1 s in all on CPU. Printed, never asserted.

    python benchmarks/bench_fathi.py
    python benchmarks/bench_fathi.py --seeds 1000 --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from instseg_lib.grouping import instances_from_seeds, sample_seeds
from instseg_lib.models import FATHI_TAUS


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--height", type=int, default=320)
    ap.add_argument("--width", type=int, default=480)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--classes", type=int, default=21)
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--alpha", type=float, default=0.3)
    ap.add_argument("--stride", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    dev = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(args.dim, args.height, args.width, generator=g).to(dev)
    probs = torch.randn(len(FATHI_TAUS), args.classes, args.height, args.width, generator=g).softmax(1).to(dev)

    def run() -> tuple[float, float, int]:
        _sync(dev)
        t0 = time.perf_counter()
        seeds = sample_seeds(emb, probs, num_seeds=args.seeds, alpha=args.alpha, stride=args.stride)
        _sync(dev)
        t1 = time.perf_counter()
        res = instances_from_seeds(emb, seeds)
        _sync(dev)
        return t1 - t0, time.perf_counter() - t1, len(res.scores)

    run()  # warm-up
    times = [run() for _ in range(args.repeats)]
    sample_t = statistics.median(t[0] for t in times)
    grow_t = statistics.median(t[1] for t in times)
    total = sample_t + grow_t
    print(f"Fathi §3.3 seeds on {args.height}x{args.width}, d={args.dim}, {args.classes} classes, "
          f"{times[0][2]} seeds, stride {args.stride}, device {dev}, torch threads {torch.get_num_threads()}")
    print(f"  sample seeds : {sample_t * 1e3:8.1f} ms (median of {args.repeats})")
    print(f"  grow masks   : {grow_t * 1e3:8.1f} ms")
    print(f"  total        : {total * 1e3:8.1f} ms   target <= 100 ms   ratio {total / 0.1:.2f}x of target")


if __name__ == "__main__":
    main()
