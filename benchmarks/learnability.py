"""Does a longer run teach the cpu-profile FCRN anything? Mean IoU against training steps.

The cpu profile trains each of Wu's configs for a few dozen steps, and its verdicts come
out inconclusive because the nets stay at the trivial predictor's level (the Table 1
notebook shows the evidence). This diagnostic trains one FCRN-50 (1/8, k3, twin dilation
of 12) on the VOC twin for many more steps and prints mean IoU on the evaluation subset
every ``--every`` steps, next to the trivial "background everywhere" predictor, so the
reader can see whether more compute alone would change the verdicts.

    python benchmarks/learnability.py                         # Adam 1e-3, 1500 steps, ~5 min
    python benchmarks/learnability.py --optimizer sgd --lr 0.05 --steps 600

It uses the library's loop (:func:`instseg_lib.train.train`), one call per block of
``--every`` steps resuming from the previous block's checkpoint, so it measures exactly what
the notebooks train. Nothing is written under ``results/``; the checkpoint lives in a
temporary folder.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.data import Subset

from instseg_lib.data import open_dataset, train_transforms
from instseg_lib.losses import bootstrapped_cross_entropy
from instseg_lib.models import FCRN
from instseg_lib.profiles import get_profile
from instseg_lib.recipes import wu2016 as wu
from instseg_lib.recipes.common import TensorDataset, collate_dicts, evaluate_constant, evaluate_semantic
from instseg_lib.train import TrainConfig, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--dataset", default="voc")
    ap.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--every", type=int, default=250)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    os.environ.setdefault("INSTSEG_PROGRESS", "0")  # eval bars would break the printed table
    p = get_profile(args.profile)
    cfg = wu.semantic_config(p, args.dataset, 50, 8, 3, 12)
    train_ds = open_dataset(args.dataset, "train", profile=p.name)
    val = open_dataset(args.dataset, "val", profile=p.name)
    if p.eval_subset is not None:
        val = Subset(val, range(min(p.eval_subset, len(val))))
    chance = evaluate_constant(val, train_ds.num_classes)["miou"]
    model = FCRN(replace(cfg.fcrn(train_ds.num_classes), pretrained=False))
    data = TensorDataset(train_ds, train_transforms(p))
    loss = lambda m, b: bootstrapped_cross_entropy(m(b["image"]), b["semantic"], k=None)
    print(f"{cfg.name} width {p.width}, crop {p.crop_size}, batch {p.batch_size}, {args.optimizer} lr {args.lr}; "
          f"trivial predictor mean IoU {chance:.2f}")
    print(f"{'steps':>6} {'loss':>7} {'mIoU':>6} {'pixel acc':>9} {'seconds':>8}")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "learnability.pt"
        for done in range(args.every, args.steps + 1, args.every):
            # A constant learning rate (poly_power 0) so that each block continues the same run.
            tcfg = TrainConfig(steps=done, batch_size=p.batch_size, lr=args.lr, optimizer=args.optimizer,
                               poly_power=0.0, checkpoint_every=args.every, channels_last=True)
            hist = train(model, data, loss, tcfg, checkpoint_path=ckpt, collate_fn=collate_dicts,
                         progress=False)
            m = evaluate_semantic(model, val, train_ds.num_classes, "cpu")
            recent = hist["losses"][-50:]
            print(f"{done:>6} {sum(recent) / len(recent):>7.3f} {m['miou']:>6.2f} {m['pixel_acc']:>9.1f} "
                  f"{time.perf_counter() - t0:>8.0f}", flush=True)


if __name__ == "__main__":
    torch.set_num_threads(max(1, torch.get_num_threads()))
    main()
