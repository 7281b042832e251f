"""Model FLOPs utilisation (MFU) of FCRN training: the gpu profile's throughput target.

The target (real-data issue): FCRN-101 (Wu et al. 2016 §2.3, output stride 8, 3x3
classifier of dilation 12) training at 321 px, batch 16, in bf16, reaches >= 35% MFU on one
GPU. MFU = (model FLOPs per step x steps per second) / the device's peak dense bf16 rate.

- **FLOPs per step** are counted, not estimated: ``torch.utils.flop_counter.FlopCounterMode``
  records every convolution and matrix product of one forward and backward pass of the
  training step (the loss included), so the figure is what the model needs, independent of
  how fast the kernels run. Recomputation or padding the kernels add is not counted, as MFU
  (Chowdhery et al., PaLM, App. B) prescribes.
- **Peak:** looked up from the device name (:data:`PEAK_BF16_TFLOPS`, dense, no sparsity),
  or ``--peak-tflops``. On a CPU there is no table entry: the benchmark prints throughput
  and the FLOP count, and MFU only when ``--peak-tflops`` is given.
- **Timing:** the same step as the book's training loop (:func:`instseg_lib.train.train`'s
  autocast, channels_last, Adam), after ``--warmup`` untimed steps, synchronised.

    python benchmarks/bench_mfu.py                           # CUDA: the target's setting
    python benchmarks/bench_mfu.py --quick                   # any machine: width 16, 97 px, batch 2
                                                             # (the default without CUDA)
    python benchmarks/bench_mfu.py --json mfu.json           # also write the figures

The result is printed, never asserted (targets are benchmarks, not tests).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from instseg_lib.experiments import atomic_write_bytes
from instseg_lib.models import FCRN, FCRNConfig
from instseg_lib.train import autocast_dtype

#: Peak dense bf16 tensor throughput (TFLOP/s) by device-name substring, from the vendors'
#: data sheets (SXM parts; without 2:4 sparsity). The first match wins.
PEAK_BF16_TFLOPS: dict[str, float] = {
    "H200": 989.4, "H100": 989.4, "A100": 312.0, "L40S": 362.0, "A10G": 70.0, "L4": 121.0, "V100": 125.0,
}


def peak_tflops(device: torch.device, override: float | None) -> float | None:
    """The device's peak dense bf16 rate, or ``None`` where it is not known."""
    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def step_flops(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """FLOPs of one training step's forward and backward pass (counted, not estimated)."""
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y, ignore_index=255).backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def measure(depth: int, width: int, size: int, batch: int, steps: int, warmup: int, device: str,
            peak: float | None = None) -> dict[str, Any]:
    """Throughput and MFU of FCRN-``depth`` training at ``size`` px and ``batch``."""
    dev = torch.device(device)
    torch.manual_seed(0)
    model = FCRN(FCRNConfig(depth=depth, output_stride=8, kernel=3, dilation=12, width=width)).to(dev)
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, size, size, device=dev).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 21, (batch, size, size), device=dev)
    amp = autocast_dtype(dev)
    with torch.autocast(dev.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
        flops = step_flops(model, x, y)

    def step() -> None:
        with torch.autocast(dev.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
            loss = F.cross_entropy(model(x), y, ignore_index=255)
        opt.zero_grad(set_to_none=True)
        loss.float().backward()
        opt.step()

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    seconds = (time.perf_counter() - t0) / steps
    achieved = flops / seconds / 1e12
    pk = peak_tflops(dev, peak)
    out = {"model": f"FCRN-{depth} os8 k3 d12", "width": width, "size": size, "batch": batch,
           "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "dtype": str(amp).removeprefix("torch.") if amp is not None else "float32",
           "gflops_per_step": round(flops / 1e9, 1), "seconds_per_step": round(seconds, 4),
           "images_per_second": round(batch / seconds, 2), "achieved_tflops": round(achieved, 3),
           "peak_tflops": pk, "mfu_percent": round(100 * achieved / pk, 1) if pk else None}
    if dev.type == "cuda":
        out["max_memory_gib"] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--depth", type=int, default=101, choices=(50, 101, 152))
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--size", type=int, default=321)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--peak-tflops", type=float, help="the device's peak dense bf16 TFLOP/s (else looked up)")
    ap.add_argument("--quick", action="store_true", help="width 16, 97 px, batch 2, 3 steps: any machine")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--full-on-cpu", action="store_true", help="the target's setting even without CUDA (slow)")
    args = ap.parse_args()
    if args.device == "cpu" and not (args.quick or args.full_on_cpu):
        print("no CUDA device: the --quick setting (the target's setting needs a GPU; --full-on-cpu forces it)")
        args.quick = True
    if args.quick:
        args.width, args.size, args.batch, args.steps, args.warmup = 16, 97, 2, 3, 1
    r = measure(args.depth, args.width, args.size, args.batch, args.steps, args.warmup, args.device,
                args.peak_tflops)
    print(f"{r['model']}, width {r['width']}, {r['size']} px, batch {r['batch']}, {r['dtype']} on {r['device']}")
    print(f"  FLOPs per training step (forward + backward, counted by FlopCounterMode): {r['gflops_per_step']} G")
    print(f"  {r['seconds_per_step']} s/step, {r['images_per_second']} images/s, {r['achieved_tflops']} TFLOP/s")
    if r["mfu_percent"] is None:
        print("  MFU: peak unknown for this device (pass --peak-tflops)")
    else:
        print(f"  MFU {r['mfu_percent']}% of a {r['peak_tflops']} TFLOP/s peak (target >= 35% for the default setting)")
    if args.json:
        atomic_write_bytes(args.json, json.dumps(r, indent=1).encode())
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
