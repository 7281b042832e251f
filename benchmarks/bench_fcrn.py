"""Training speed of FCRN-50 (Wu et al. 2016 §2.3) against torchvision's DeepLabv3-ResNet50.

Both networks use a ResNet-50 trunk at output stride 8 (``replace_stride_with_dilation``
= [False, True, True]); FCRN tops it with one dilated k x k classifier, DeepLabv3 with
ASPP. Same batch, input size, width, optimiser (SGD, momentum 0.9) and loss (CE).

Width: at ``--width 64`` DeepLabv3 is ``torchvision.models.segmentation.
deeplabv3_resnet50(weights=None, weights_backbone=None)`` itself. At other widths torchvision
has no width knob, so we build ``DeepLabV3`` from torchvision's own classes on our
width-scaled trunk (:class:`instseg_lib.models.ScaledResNet`, the same one FCRN uses)
with the ASPP/head channels scaled alike (256 * width / 64), keeping the comparison
like for like. channels_last everywhere; bf16 autocast on CUDA.

Also times §2.1 grouping (:func:`instseg_lib.grouping.hough_group`) on one 96x96 image.

    python benchmarks/bench_fcrn.py                # width 16, 80 px, batch 8, CPU, < 1 min
    python benchmarks/bench_fcrn.py --width 64 --size 321 --device cuda --steps 50
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.segmentation import deeplabv3_resnet50
from torchvision.models.segmentation.deeplabv3 import ASPP, DeepLabV3

from instseg_lib.grouping import hough_group
from instseg_lib.models import FCRN, FCRNConfig, ScaledResNet


class _DictTrunk(nn.Module):
    """Adapts a trunk to DeepLabV3's ``{"out": features}`` backbone interface."""

    def __init__(self, trunk: nn.Module) -> None:
        super().__init__()
        self.trunk = trunk

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.trunk(x)}


def build_deeplabv3(width: int, num_classes: int) -> nn.Module:
    """DeepLabv3-ResNet50 at output stride 8; torchvision's own model at width 64."""
    if width == 64:
        return deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=num_classes)
    trunk = ScaledResNet(50, width, output_stride=8)
    oc = max(8, 256 * width // 64)
    head = nn.Sequential(  # torchvision's DeepLabHead with scaled channels
        ASPP(trunk.out_channels, [12, 24, 36], out_channels=oc),
        nn.Conv2d(oc, oc, 3, padding=1, bias=False),
        nn.BatchNorm2d(oc),
        nn.ReLU(),
        nn.Conv2d(oc, num_classes, 1),
    )
    return DeepLabV3(_DictTrunk(trunk), head)


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    return out["out"] if isinstance(out, dict) else out


def time_training(model: nn.Module, args: argparse.Namespace) -> float:
    """Steps per second of SGD training on random data (after warm-up)."""
    dev = torch.device(args.device)
    model = model.to(dev).to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size, generator=g).to(dev)
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, args.classes, (args.batch, args.size, args.size), generator=g).to(dev)
    cuda = dev.type == "cuda"

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            loss = F.cross_entropy(_logits(model, x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    return args.steps / (time.perf_counter() - t0)


def time_grouping(size: int = 96, repeats: int = 5) -> tuple[float, float]:
    """Seconds per image of hough_group: clean votes (4 objects) and random votes."""
    inst = torch.zeros(size, size, dtype=torch.long)
    s = size // 4
    for i, (y, x) in enumerate([(4, 4), (4, 2 * s), (2 * s, 4), (2 * s, 2 * s)], start=1):
        inst[y : y + s + 8, x : x + s + 8] = i
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    boxes = torch.zeros(4, size, size)
    for i in range(1, 5):
        m = inst == i
        y0, y1, x0, x1 = ys[m].min(), ys[m].max(), xs[m].min(), xs[m].max()
        boxes[0][m] = (y0 + y1) / 2 - ys[m].float()
        boxes[1][m] = (x0 + x1) / 2 - xs[m].float()
        boxes[2][m], boxes[3][m] = float(y1 - y0 + 1), float(x1 - x0 + 1)
    boxes = boxes + torch.randn_like(boxes)  # noisy but right
    probs = torch.full((21, size, size), 0.01)
    probs[0][inst == 0] = 0.8
    probs[15][inst > 0] = 0.8
    clean = boxes.repeat(20, 1, 1)
    noisy = torch.randn(80, size, size) * 20
    rand_probs = torch.rand(21, size, size).softmax(0)

    def run(p: torch.Tensor, b: torch.Tensor) -> float:
        hough_group(p, b)
        t0 = time.perf_counter()
        for _ in range(repeats):
            hough_group(p, b, top_n=2)
        return (time.perf_counter() - t0) / repeats

    return run(probs, clean), run(rand_probs, noisy)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--size", type=int, default=80)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--classes", type=int, default=21)
    ap.add_argument("--kernel", type=int, default=3)
    ap.add_argument("--dilation", type=int, default=4, help="FoV ((k-1)d+1)*8 must fit --size")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--no-grouping", action="store_true")
    args = ap.parse_args()

    torch.manual_seed(0)
    cfg = FCRNConfig(depth=50, output_stride=8, kernel=args.kernel, dilation=args.dilation,
                     width=args.width, num_classes=args.classes).validate(crop_size=args.size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fcrn = FCRN(cfg)
    dl = build_deeplabv3(args.width, args.classes)
    n_f = sum(p.numel() for p in fcrn.parameters()) / 1e6
    n_d = sum(p.numel() for p in dl.parameters()) / 1e6
    print(f"device={args.device} threads={torch.get_num_threads()} width={args.width} "
          f"size={args.size} batch={args.batch} steps={args.steps} amp={'bf16' if args.device.startswith('cuda') else 'off'}")
    print(f"FCRN-50 OS8 k={cfg.kernel} d={cfg.dilation} FoV={cfg.fov}: {n_f:.2f} M params")
    print(f"DeepLabv3-ResNet50 OS8 ({'torchvision' if args.width == 64 else 'width-scaled'}): {n_d:.2f} M params")
    s_f = time_training(fcrn, args)
    print(f"FCRN-50     : {s_f:.3f} steps/s")
    s_d = time_training(dl, args)
    print(f"DeepLabv3-50: {s_d:.3f} steps/s")
    print(f"ratio FCRN/DeepLabv3 = {s_f / s_d:.2f} (goal >= 1.0)")
    if not args.no_grouping:
        clean, noisy = time_grouping()
        print(f"hough_group 96x96, top_n=2: {clean * 1e3:.1f} ms (clean votes), "
              f"{noisy * 1e3:.1f} ms (random votes)")


if __name__ == "__main__":
    main()
