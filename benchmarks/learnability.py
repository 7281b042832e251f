"""Do the cpu-profile nets learn from the twin? Learning curves, printed and as JSON.

For each twin (VOC, Cityscapes, Context) and each initialisation of the cpu-profile FCRN-50
(1/16, k3, twin dilation of 6: Wu's cheapest Table 1 row), the benchmark trains one run with
the book's recipe (:func:`instseg_lib.recipes.common.recipe_settings`) and evaluates it at
several step counts along the way:

- ``fcrn50-standin``: the trunk from the crop-classification stage of its stand-in
  pretraining alone (:mod:`instseg_lib.pretrain`);
- ``fcrn50-standin-seg``: that stage followed by the segmentation stage of
  :func:`instseg_lib.pretrain.seg_pretrain_config` (``--seg-steps`` on COCO-style scenes of
  their own seed), as every cpu-profile FCRN table starts (the profile's ``pretrain_seg_steps``);
- ``fcrn50-random``: the same net from random initialisation;
- ``largefov-standin`` / ``largefov-standin-seg`` (not in the default set; ``--models``):
  DeepLab-LargeFOV on VGG-16, the net of PFN and BoxSup, from its crop stage alone or with
  the VGG segmentation stage (a LargeFOV on the same scenes), the measurement that decides
  whether a profile adopts that stage;
- ``tinycnn``: five 3x3 conv layers of 32 channels, a sanity reference: if it learns and the
  FCRN does not, the FCRN's recipe is at fault, not the twin.

Reported at each evaluation: val mean IoU, foreground IoU (object classes against the rest),
the mean training loss of the last steps next to the class-prior entropy (a loss above it
means the net knows no more than how common each class is), and the trivial predictor's mean
IoU (the most frequent training class everywhere). The schedule is the book's: warm-up and
poly decay over the full run, so an intermediate point is that run part way, not a shorter
schedule.

    python benchmarks/learnability.py                 # all twins, ~20 min on 2 cores
    python benchmarks/learnability.py --quick --json out.json    # same keys, under 2 minutes

Nothing is written under ``results/`` except the cached stand-in pretraining, which the
full run trains first if it is absent (up to 10 minutes per backbone); ``--quick`` uses the
cached one when present and otherwise a short stand-in, and says which.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Subset

from instseg_lib.data import open_dataset, train_transforms
from instseg_lib.data.classes import VOC_CLASSES
from instseg_lib.experiments import atomic_write_bytes
from instseg_lib.losses import bootstrapped_cross_entropy
from instseg_lib.models import FCRN
from instseg_lib.profiles import get_profile
from instseg_lib.recipes import wu2016 as wu
from instseg_lib.recipes.common import (TensorDataset, class_frequencies, class_prior_entropy, collate_dicts,
                                        evaluate_constant, predict_probabilities, recipe_settings)
from instseg_lib.train import TrainConfig, train

#: Object ("thing") classes per twin: foreground IoU is theirs against everything else.
THINGS = set(VOC_CLASSES[1:]) | {"table", "rider", "truck", "motorcycle"}
DATASETS = ("voc", "cityscapes", "context")
MODELS = ("fcrn50-standin", "fcrn50-standin-seg", "fcrn50-random", "tinycnn", "largefov-standin",
          "largefov-standin-seg")
#: What a plain run (and ``--quick``) measures.
DEFAULT_MODELS = MODELS[:4]
#: Steps of the segmentation stage measured by ``fcrn50-standin-seg`` (``--seg-steps``).
SEG_STEPS = 2000


class TinyCNN(nn.Module):
    """Five 3x3 conv layers of 32 channels (dilations 1, 2, 4, 8, 1) and a 1x1 classifier."""

    def __init__(self, num_classes: int, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for d in (1, 2, 4, 8, 1):
            layers += [nn.Conv2d(cin, width, 3, padding=d, dilation=d, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True)]
            cin = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.head(self.body(x))


@torch.no_grad()
def evaluate(model: nn.Module, val, num_classes: int) -> dict[str, float]:
    """Mean IoU and foreground IoU (in %) over ``val``."""
    from instseg_lib.metrics import SemanticEvaluator

    model.eval()
    ev = SemanticEvaluator(num_classes)
    inter = union = 0
    names = None
    for i in range(len(val)):
        s = val[i]
        names = names or s.class_names
        pred = predict_probabilities(model, s.image, "cpu").argmax(0).numpy()
        ev.add(s.semantic, pred, s.image_id)
        fg_ids = np.array([n in THINGS for n in s.class_names])
        valid = s.semantic != 255
        gt_fg = fg_ids[np.clip(s.semantic, 0, num_classes - 1)] & valid
        pr_fg = fg_ids[pred] & valid
        inter += int((gt_fg & pr_fg).sum())
        union += int((gt_fg | pr_fg).sum())
    model.train()
    return {"miou": 100 * float(ev.compute().mean_iou), "fg_iou": 100 * inter / max(union, 1)}


def build(model: str, num_classes: int, profile, quick: bool) -> tuple[nn.Module, str]:
    from instseg_lib import pretrain

    if model == "tinycnn":
        return TinyCNN(num_classes), "random"
    if model.startswith("largefov"):
        return _build_largefov(model, num_classes, profile, quick)
    cfg = wu.semantic_config(profile, "voc", 50, 16, 3, 6)
    net = FCRN(cfg.fcrn(num_classes))
    if model == "fcrn50-random":
        return net, "random"
    from instseg_lib.experiments import read_result, result_paths

    pcfg = pretrain.pretrain_config(profile, "resnet50")
    path, _ = result_paths(pcfg, paper=pretrain.PAPER, name=pcfg.name, profile=profile)
    if quick and read_result(path) is None:
        pcfg = replace(pcfg, steps=60, warmup_steps=5, crops=replace(pcfg.crops, n_scenes=60))
        label = "quick stand-in (60 steps on 60 scenes; the cpu stand-in was not cached)"
    else:
        label = f"stand-in {pcfg.name}"
    state, res = pretrain.standin_state(pcfg)
    net.backbone.load_state_dict(state)
    if model == "fcrn50-standin-seg":
        scfg = pretrain.seg_pretrain_config(profile, "resnet50", steps=20 if quick else SEG_STEPS)
        scfg = replace(scfg, base=pcfg, **({"scenes": replace(scfg.scenes, n_scenes=40)} if quick else {}))
        state, sres = pretrain.seg_standin_state(scfg)
        net.backbone.load_state_dict(state)
        return net, (f"{label} + segmentation stage {scfg.name} ({scfg.steps} steps on {sres.metrics['n_train']} "
                     f"COCO-style scenes, {sres.metrics['val_miou']:.1f}% mIoU on its own held-out scenes)")
    return net, f"{label}, {res.metrics['val_accuracy']:.1f}% crop accuracy"


def _build_largefov(model: str, num_classes: int, profile, quick: bool) -> tuple[nn.Module, str]:
    """PFN's / BoxSup's DeepLab-LargeFOV on VGG-16 from its stand-in (crop stage, maybe + seg stage)."""
    from instseg_lib import pretrain
    from instseg_lib.models import DeepLabLargeFOV, largefov_dilation

    net = DeepLabLargeFOV(num_classes, "vgg16", profile.width, fc6_dilation=largefov_dilation(profile.crop_size))
    pcfg = pretrain.pretrain_config(profile, "vgg16")
    if quick:
        pcfg = replace(pcfg, steps=60, warmup_steps=5, crops=replace(pcfg.crops, n_scenes=60))
    state, res = pretrain.standin_state(pcfg)
    net.backbone.load_state_dict(state)
    label = f"stand-in {pcfg.name}, {res.metrics['val_accuracy']:.1f}% crop accuracy"
    if model == "largefov-standin-seg":
        scfg = pretrain.seg_pretrain_config(profile, "vgg16", steps=20 if quick else SEG_STEPS)
        scfg = replace(scfg, base=pcfg, **({"scenes": replace(scfg.scenes, n_scenes=40)} if quick else {}))
        state, sres = pretrain.seg_standin_state(scfg)
        net.backbone.load_state_dict(state)
        label += (f" + segmentation stage {scfg.name} ({scfg.steps} steps on {sres.metrics['n_train']} COCO-style "
                  f"scenes, {sres.metrics['val_miou']:.1f}% mIoU on its own held-out scenes)")
    return net, label


def run_one(dataset: str, model: str, profile, steps: int, every: int, n_eval: int, quick: bool) -> dict[str, Any]:
    train_ds = open_dataset(dataset, "train", profile=profile.name)
    val = open_dataset(dataset, "val", profile=profile.name)
    val = Subset(val, range(min(n_eval, len(val))))
    freq = class_frequencies(dataset, profile)
    chance = evaluate_constant(val, train_ds.num_classes, int(np.argmax(freq)))["miou"]
    entropy = class_prior_entropy(dataset, profile)
    net, init = build(model, train_ds.num_classes, profile, quick)
    data = TensorDataset(train_ds, train_transforms(profile))
    loss = lambda m, b: bootstrapped_cross_entropy(m(b["image"]), b["semantic"], k=None)  # noqa: E731
    rec = recipe_settings(profile)
    curve = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "learnability.pt"
        for done in list(range(every, steps + 1, every)) or [steps]:
            # One schedule over all ``steps``; each call resumes the same run up to ``done``.
            tcfg = TrainConfig(steps=steps, batch_size=profile.batch_size, lr=rec["lr"], optimizer=rec["optimizer"],
                               warmup_steps=rec["warmup_steps"] * steps // max(profile.train_steps, 1) or 1,
                               weight_decay=1e-4, checkpoint_every=every, channels_last=True)
            hist = _train_until(net, data, loss, tcfg, ckpt, done)
            m = evaluate(net, val, train_ds.num_classes)
            recent = hist[-min(len(hist), max(10, every // 2)):]
            curve.append({"steps": done, "miou": round(m["miou"], 2), "fg_iou": round(m["fg_iou"], 2),
                          "loss": round(float(np.mean(recent)), 4), "seconds": round(time.perf_counter() - t0, 1)})
            print(f"  {dataset:>10} {model:>15} {done:>6} {curve[-1]['loss']:>7.3f} {entropy:>7.3f} "
                  f"{curve[-1]['miou']:>6.2f} {curve[-1]['fg_iou']:>6.2f} {chance:>6.2f} {curve[-1]['seconds']:>7.0f}",
                  flush=True)
    return {"init": init, "prior_entropy": round(entropy, 4), "trivial_miou": round(chance, 2), "curve": curve}


def _train_until(net, data, loss, tcfg: TrainConfig, ckpt: Path, done: int) -> list[float]:
    """Train the run of ``tcfg`` up to step ``done`` (resuming from ``ckpt``), same schedule."""
    hist = train(net, data, loss, replace(tcfg, stop_after=done), checkpoint_path=ckpt, collate_fn=collate_dicts,
                 progress=False)
    return hist["losses"]


def main() -> None:
    global SEG_STEPS  # --seg-steps sets the stage build() measures
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    ap.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), choices=MODELS)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--every", type=int, default=250)
    ap.add_argument("--eval", type=int, default=200, help="validation images per evaluation")
    ap.add_argument("--quick", action="store_true", help="40 steps, 12 images: same keys, under 2 minutes")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    ap.add_argument("--seg-steps", type=int, default=SEG_STEPS,
                    help="steps of the segmentation stage of the *-standin-seg models (cached per value)")
    args = ap.parse_args()
    SEG_STEPS = args.seg_steps
    warnings.filterwarnings("ignore")
    os.environ.setdefault("INSTSEG_PROGRESS", "0")
    torch.manual_seed(0)
    p = get_profile(args.profile)
    steps, every, n_eval = (40, 20, 12) if args.quick else (args.steps, args.every, args.eval)
    print(f"profile {p.name}: width {p.width}, crop {p.crop_size}, batch {p.batch_size}, recipe {recipe_settings(p)}")
    print(f"  {'twin':>10} {'model':>15} {'steps':>6} {'loss':>7} {'H(prior)':>7} {'mIoU':>6} {'fgIoU':>6} "
          f"{'trivial':>6} {'seconds':>7}")
    out: dict[str, Any] = {"profile": p.name, "quick": args.quick, "steps": steps, "eval_images": n_eval,
                           "recipe": recipe_settings(p), "torch_threads": torch.get_num_threads(), "runs": {}}
    for ds in args.datasets:
        for model in args.models:
            out["runs"][f"{ds}/{model}"] = run_one(ds, model, p, steps, every, n_eval, args.quick)
            if args.json:  # after every run, atomically: an interrupted benchmark keeps what it measured
                atomic_write_bytes(args.json, json.dumps(out, indent=1).encode())
    if args.json:
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
