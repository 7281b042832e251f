"""Data-layer benchmark (not a timed test): twin generation time and loader throughput.

    python benchmarks/bench_data.py                 # cpu profile, 2 workers, into a temp dir
    python benchmarks/bench_data.py --out DIR --workers 2 --images 1000

Targets (the data issue): generating every cpu-profile preset in at most 60 s on 2 cores;
reader + train transforms at least 500 images/s at 96 px on one core.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def bench_generation(out: Path, profile: str, workers: int) -> dict:
    from concurrent.futures import ProcessPoolExecutor

    from instseg_lib.data.synthetic import PRESETS, generate
    from instseg_lib.profiles import get_profile

    prof = get_profile(profile)
    times = {}
    cpu0 = _cpu_seconds()
    t_all = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as ex:
        for p in PRESETS:
            t0 = time.perf_counter()
            generate(p, prof, out / p, workers=workers, force=True, executor=ex)
            times[p] = round(time.perf_counter() - t0, 2)
    total = round(time.perf_counter() - t_all, 2)
    cpu = _cpu_seconds() - cpu0  # workers are joined: their CPU time is counted
    n = sum(prof.n_boxes + prof.n_val if p == "boxes" else prof.n_train + prof.n_val for p in PRESETS)
    # On a shared machine the wall time includes waiting for other processes; CPU seconds / workers
    # is what the same run takes on `workers` otherwise idle cores.
    return {"profile": profile, "workers": workers, "images": n, "seconds_per_preset": times, "seconds_total": total,
            "cpu_seconds": round(cpu, 1), "seconds_on_idle_cores_estimate": round(cpu / workers, 1),
            "load_average_1min": round(os.getloadavg()[0], 2), "target_seconds": 60}


def _cpu_seconds() -> float:
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def bench_loader(root: Path, profile: str, n_images: int) -> dict:
    import torch

    from instseg_lib.data import open_dataset, train_transforms

    torch.set_num_threads(1)
    ds = open_dataset("voc", "train", root=root)
    t = train_transforms(profile)
    for i in range(10):  # warm-up
        t(ds[i])
    n = min(n_images, len(ds) * 4)

    def rate(fn) -> tuple[float, float]:
        """(images per wall second, images per CPU second of this process)."""
        t0, c0 = time.perf_counter(), time.process_time()
        for k in range(n):
            fn(k % len(ds))
        return n / (time.perf_counter() - t0), n / (time.process_time() - c0)

    read = rate(lambda i: ds.load(i))
    both = rate(lambda i: t(ds.load(i)))
    s = ds.load(0)
    trans = rate(lambda i: t(s))
    return {"images": n, "image_size": list(s.image.shape[:2]), "crop_size": t.pipeline.crop,
            "reader_img_per_s": round(read[0], 1), "transforms_img_per_s": round(trans[0], 1),
            "reader_plus_transforms_img_per_s": round(both[0], 1),
            "reader_plus_transforms_img_per_cpu_s": round(both[1], 1),
            "load_average_1min": round(os.getloadavg()[0], 2), "target_img_per_s": 500, "threads": 1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = a.out or Path(tmp)
        gen = bench_generation(out, a.profile, a.workers)
        print(json.dumps({"generation": gen}, indent=1), flush=True)
        load = bench_loader(out / "voc", a.profile, a.images)
        print(json.dumps({"loader": load}, indent=1))
    print(f"cpus: {os.cpu_count()}")


if __name__ == "__main__":
    main()
