"""Fathi et al. §3.6's image pyramid: does averaging the trunk's features over the scales
(0.25, 0.5, 1, 2) change Tables 1-3? Printed, never asserted.

Trains the book's Fathi net (:func:`instseg_lib.recipes.fathi2017.train_config`) with
``multiscale=True`` for each requested seed, evaluates it exactly as the tables do
(:func:`~instseg_lib.recipes.fathi2017.run_eval`), and prints it beside the single-scale
net of the same seed, with the single-scale nets' seed spread for scale. Both are cached
experiments (``results/<profile>/fathi2017``), so the single-scale side is free after
``make book``.

The pyramid costs about 5.3x the trunk's single-scale work per step (0.25² + 0.5² + 1 + 2²),
which is why the cpu book does not run it:

    python benchmarks/bench_fathi_multiscale.py                  # cpu profile, seed 0 (~20 min on 2 cores)
    python benchmarks/bench_fathi_multiscale.py --seeds 0 1 2 --profile gpu
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _row(res) -> dict[str, float]:
    m = res.metrics
    return {"mAP^r@0.5 (α 0.3)": m["table1"]["0.5"]["mean"], "mAP^r@0.7": m["table1"]["0.7"]["mean"],
            "mAP^r_vol": m["map_r_vol"], "recall@0.5, 100 seeds": m["table3"]["100"]["ar_50"],
            "recall@0.5, 1000 seeds": m["table3"]["1000"]["ar_50"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = ap.parse_args()

    from dataclasses import replace

    from instseg_lib.profiles import get_profile
    from instseg_lib.recipes import fathi2017 as fathi

    p = get_profile(args.profile)
    single = [fathi.run_eval(fathi.eval_config(p, s)) for s in range(p.noise_seeds)]
    sigma = {k: float(np.std([_row(r)[k] for r in single], ddof=1)) if len(single) > 1 else float("nan")
             for k in _row(single[0])}
    print(f"Fathi §3.6 image pyramid, profile {p.name}; single-scale seed spread over {len(single)} seeds")
    for seed in args.seeds:
        cfg = fathi.eval_config(p, seed)
        ms = replace(cfg, train=replace(cfg.train, multiscale=True))
        t0 = time.perf_counter()
        res_ms = fathi.run_eval(ms)
        wall = time.perf_counter() - t0
        res_ss = fathi.run_eval(cfg)
        print(f"\nseed {seed}: multiscale net {ms.train.name} ({'cached' if res_ms.cached else f'{wall:.0f} s'})")
        print(f"  {'':28s} {'single':>8s} {'pyramid':>8s} {'diff':>8s} {'seed σ':>8s}")
        a, b = _row(res_ss), _row(res_ms)
        for k in a:
            print(f"  {k:28s} {a[k]:8.2f} {b[k]:8.2f} {b[k] - a[k]:+8.2f} {sigma[k]:8.2f}")


if __name__ == "__main__":
    main()
