"""A tiny, fast training task shared by the runner tests (resume, DDP).

Run as a script (also under ``torchrun``): trains a small GroupNorm conv net on a seeded
toy segmentation set through :func:`instseg_lib.train.train` and writes the final weights
and loss history to ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from instseg_lib.train import TrainConfig, is_main_process, train


class ToySegmentation(torch.utils.data.Dataset):
    """Image i is seeded noise; its label marks where channel 0 exceeds channel 1."""

    def __init__(self, n: int = 24, size: int = 16, augment: bool = True) -> None:
        self.n, self.size, self.augment = n, size, augment

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        g = torch.Generator().manual_seed(1000 + i)
        x = torch.randn(3, self.size, self.size, generator=g)
        y = (x[0] > x[1]).long()
        if self.augment and torch.rand(()) < 0.5:  # uses the loop's per-sample seed
            x, y = x.flip(-1), y.flip(-1)
        return x, y


def toy_model(dropout: float = 0.1) -> nn.Module:
    # DDP ranks draw their own dropout masks, so the DDP test runs without dropout.
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.ReLU(),
        nn.Dropout2d(dropout),
        nn.Conv2d(8, 2, 1),
    )


def toy_loss(model: nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(model(x), y)


def run(out: Path, steps: int, batch: int, checkpoint: Path | None, every: int,
        dropout: float = 0.1) -> None:
    torch.set_num_threads(1)
    model = toy_model(dropout)
    cfg = TrainConfig(steps=steps, batch_size=batch, lr=0.1, checkpoint_every=every, seed=3)
    hist = train(model, ToySegmentation(), toy_loss, cfg, checkpoint_path=checkpoint,
                 progress=False)
    if is_main_process():
        torch.save({"model": model.state_dict(), "losses": hist["losses"],
                    "resumed_from": hist["resumed_from"]}, out)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--checkpoint", type=Path)
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--dropout", type=float, default=0.1)
    a = ap.parse_args()
    run(a.out, a.steps, a.batch, a.checkpoint, a.every, a.dropout)
