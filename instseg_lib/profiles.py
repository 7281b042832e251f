"""The three scales the whole book runs at: ``smoke``, ``cpu`` and ``gpu``.

One table, read by every notebook through its papermill ``parameters`` cell. A notebook
never branches on the profile name; it reads sizes, steps and widths from here.

- ``smoke``: CI and ``make test``. Every notebook runs end to end in seconds. The numbers
  mean nothing and the notebooks say so.
- ``cpu``: the default ``make book`` on a 2-core laptop. Quarter-width models on small
  images; trends should be visible.
- ``gpu``: one or more GPUs. Standard-width models, full-size synthetic sets, and the real
  datasets when they are present.

Reading a profile's numbers is always allowed (``get_profile("gpu").train_steps``: plans,
config hashes). Starting work at the gpu profile without a CUDA device is refused
(:func:`check_can_start`, called where experiments run and where the book executes): it
would silently train standard-width nets for 20,000 steps on the CPU.
``INSTSEG_ALLOW_GPU_PROFILE_ON_CPU=1`` (:data:`ALLOW_GPU_ON_CPU_ENV`) lets it start anyway.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

PROFILE_NAMES = ("smoke", "cpu", "gpu")
#: Set to 1 to start work at the gpu profile on a machine without CUDA anyway.
ALLOW_GPU_ON_CPU_ENV = "INSTSEG_ALLOW_GPU_PROFILE_ON_CPU"


class UnknownProfileError(ValueError):
    """Raised for a profile name outside :data:`PROFILE_NAMES`."""


class ProfileDeviceError(RuntimeError):
    """Work at the gpu profile was about to start without a CUDA device."""


@dataclass(frozen=True)
class Profile:
    """Every size that changes between the smoke, cpu and gpu scales."""

    name: str
    #: Short side of the synthetic images in pixels (Cityscapes twin images are 2:1).
    image_size: int
    #: Square training crop in pixels.
    crop_size: int
    #: Base width of backbones; 64 is the standard ResNet width, 16 a quarter.
    width: int
    #: Optimiser steps of one training run (experiments may scale it, never exceed 4x).
    train_steps: int
    batch_size: int
    #: Steps between checkpoints (resumable training).
    checkpoint_every: int
    #: Images per split and preset of the synthetic twin.
    n_train: int
    n_val: int
    #: The box-only set of BoxSup is larger than the mask sets (paper §4: VOC07 + COCO boxes).
    n_boxes: int
    #: Number of validation images that evaluations use (``None``: all of them).
    eval_subset: int | None
    #: Pixels sampled per instance by embedding losses (Fathi §3.1).
    pixels_per_instance: int
    #: Seeds of the reference config whose spread is the noise band of claim verdicts.
    noise_seeds: int = 3
    #: Short side (px) at which real datasets are read (``None``: native resolution, as the
    #: papers do). The smoke and cpu profiles size nets, crops and budgets for twin images of
    #: ``image_size``, so their real images are resized to it.
    real_short_side: int | None = None
    #: Free-form notes shown in captions.
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def seeds_for(self, paper: str) -> int:
        """Seeds of ``paper``'s noise references: ``extra["noise_seeds"][paper]`` where the
        profile sets one (a paper whose reference runs are cheap affords more), else ``noise_seeds``."""
        n = int(self.extra.get("noise_seeds", {}).get(paper, self.noise_seeds))
        if n < 2:
            raise ValueError(f"profile {self.name!r}: {paper} needs at least 2 noise seeds, got {n}")
        return n

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke", image_size=48, crop_size=48, width=8, train_steps=3, batch_size=2,
        checkpoint_every=3, n_train=8, n_val=4, n_boxes=12, eval_subset=4,
        pixels_per_instance=16, noise_seeds=2, real_short_side=48,
        note="smoke profile: a few steps on a few images; numbers are meaningless",
        extra={"pretrain_scenes": 6, "pretrain_crop": 32, "pretrain_batch": 8,
               "pretrain_steps": {"resnet50": 3, "resnet101": 3, "resnet152": 3, "vgg16": 3, "alexnet": 3},
               "pretrain_seg_steps": {"resnet50": 3, "resnet101": 3, "resnet152": 3, "vgg16": 3, "alexnet": 3},
               "pretrain_seg_scenes": 10},
    ),
    "cpu": Profile(
        name="cpu", image_size=128, crop_size=112, width=16, train_steps=250, batch_size=8,
        checkpoint_every=125, n_train=800, n_val=200, n_boxes=800, eval_subset=100,
        pixels_per_instance=64, real_short_side=128,
        extra={"pretrain_scenes": 1200, "pretrain_crop": 64, "pretrain_batch": 64,
               # The same number of pretraining steps for every depth: fewer steps for the deeper
               # nets (1,000 and 800 were tried) left their stand-ins weaker (60% and 55% crop
               # accuracy against 74%), the opposite of ImageNet, and confounded Table 1/3's depth rows.
               "pretrain_steps": {"resnet50": 1500, "resnet101": 1500, "resnet152": 1500,
                                  # PFN's trunks (VGG-16, AlexNet): the same budget
                                  "vgg16": 1500, "alexnet": 1500},
               # The ResNets' second stage, segmenting 1,600 COCO-style scenes of their own seed
               # (pretrain.seg_pretrain_config). Measured on the VOC twin, FCRN os16 k3 d6, 250
               # fine-tuning steps: 12.3-13.1 mIoU (50 layers) and 4.4-9.0 (101) from the crop
               # stage alone; 20.4 (50, 200 val images) and 19.6 (101, 100 val images) with it. The
               # crop stage alone left the deeper nets far behind the 50-layer one after 250 steps.
               # PFN's and BoxSup's VGG trunks get the same stage as DeepLab-LargeFOV: on the VOC twin a
               # 500-step LargeFOV fine-tune (benchmarks/learnability.py --models largefov-standin
               # largefov-standin-seg --steps 500 --eval 100) went from 9.0 mean IoU (foreground IoU 25.6)
               # from the crop stage alone to 18.4 (46.2) with it; the stage took 7.6 min. AlexNet takes it
               # too, so PFN's two trunk rows start alike.
               "pretrain_seg_steps": {"resnet50": 2000, "resnet101": 2000, "resnet152": 2000,
                                      "vgg16": 2000, "alexnet": 2000},
               "pretrain_seg_scenes": 1600,
               # Fathi et al.: a 50-layer trunk (the 101-layer stand-in learns more slowly in a short
               # schedule), pre-trained on the COCO twin for 4x the profile's steps (after 250 steps
               # it reached 12.3 mean IoU there; §3.5's COCO pretraining is a large dataset's), and
               # twice the profile's steps for the two heads (λ's hold and ramp need them)
               "fathi_depth": 50, "fathi_trunk_steps_factor": 4, "fathi_steps_factor": 2,
               # Papers whose noise references cost minutes here take 5 seeds (Student t 2.78 instead of
               # 4.30 at 3, and a better estimate of σ): Wu's take 45-150 s a run (a semantic net; Table
               # 6's row about 10 min with both nets), Arnab's 1-4 min per regime and twin with its
               # evaluation, PFN's about 3 min, Fathi's about 6 (heads only; the trunk is shared). BoxSup's
               # references are re-seeded in four places (Tables 1-3, 4, 5 and the trimap), at 5-10 min a
               # run plus Table 5's COCO-box pretraining, and keep 3.
               "noise_seeds": {"wu2016": 5, "arnab2017": 5, "liang2015": 5, "fathi2017": 5}},
        note=("cpu profile: quarter-width nets fine-tuned from their stand-in ImageNet pretraining (twin "
              "object and stuff crops, then segmenting COCO-style twin scenes), 250 steps of batch 8 on 112 px "
              "crops of 128 px twin images, evaluated "
              "on 100 val images; seed noise is measured per depth and twin. Far shorter schedules than the "
              "papers', so absolute numbers are low; directions within the measured noise read inconclusive"),
    ),
    "gpu": Profile(
        name="gpu", image_size=320, crop_size=321, width=64, train_steps=20000, batch_size=16,
        checkpoint_every=1000, n_train=10582, n_val=1449, n_boxes=20000, eval_subset=None,
        pixels_per_instance=256,
        note="gpu profile: standard-width models on full-size twin sets",
    ),
}


def get_profile(name: str | None = None) -> Profile:
    """Return the profile called ``name`` (default: ``$PROFILE``, else ``cpu``).

    An unknown name raises :class:`UnknownProfileError` with a one-line fix.
    """
    if name is None:
        name = os.environ.get("PROFILE") or "cpu"
    if name not in PROFILES:
        raise UnknownProfileError(
            f"unknown profile {name!r}: use one of {', '.join(PROFILE_NAMES)} "
            f"(e.g. `make book PROFILE=cpu`)"
        )
    return PROFILES[name]


def default_device() -> str:
    """``cuda`` when a GPU is present, else ``cpu`` (``INSTSEG_DEVICE`` overrides)."""
    forced = os.environ.get("INSTSEG_DEVICE")
    if forced:
        return forced
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_can_start(profile: Profile | str, device: str | None = None) -> None:
    """Refuse to start work at the gpu profile unless it runs on an available CUDA device.

    ``device`` is where the work would run (default :func:`default_device`). Call this where
    work starts (an experiment that is not cached, the book's executor), never where a
    profile is merely read. ``$INSTSEG_ALLOW_GPU_PROFILE_ON_CPU=1`` skips the check. Raises
    :class:`ProfileDeviceError` naming the override.
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    if prof.name != "gpu" or os.environ.get(ALLOW_GPU_ON_CPU_ENV, "").strip().lower() in {"1", "true", "yes"}:
        return
    import torch

    device = device or default_device()
    if device.startswith("cuda") and torch.cuda.is_available():
        return
    why = ("torch.cuda.is_available() is False on this machine" if not torch.cuda.is_available()
           else f"the device is {device!r} (INSTSEG_DEVICE)")
    raise ProfileDeviceError(
        f"the gpu profile needs a CUDA GPU and {why}: it trains width-{prof.width} nets for {prof.train_steps:,} "
        f"steps, days on a CPU. Use PROFILE=cpu (or smoke) here, or set {ALLOW_GPU_ON_CPU_ENV}=1 to run the gpu "
        f"profile on this device anyway"
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m instseg_lib.profiles [NAME] [--check]``: print the profile, or a one-line error.

    ``--check`` also refuses, as work would be (:func:`check_can_start`), a profile this
    machine cannot run (the gpu profile without CUDA); ``make book`` asks it first.
    """
    import json
    import sys

    args = sys.argv[1:] if argv is None else argv
    check = "--check" in args
    names = [a for a in args if a != "--check"]
    try:
        prof = get_profile(names[0] if names else None)
        if check:
            check_can_start(prof)
    except (UnknownProfileError, ProfileDeviceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(prof.as_dict(), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
