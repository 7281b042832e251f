"""Stand-in pretraining: the twin's "ImageNet" for every backbone the papers fine-tune.

All five papers start from ImageNet-pretrained nets (Wu §2.3: "We initialize an FCRN from
ResNet"). At standard width 64 :func:`initialise_backbone` loads torchvision's ImageNet
weights (:mod:`instseg_lib.models.weights`: verified, cached in ``$TORCH_HOME``); a run whose
weights cannot be had stops, unless ``INSTSEG_INIT_FALLBACK=standin`` asks for the stand-in
below. At the smoke and cpu profiles' narrower widths no such weights exist, so each backbone
is pretrained here, as ImageNet models are, by **classifying object-centric crops**:

- the crops come from twin scenes rendered with their own scene seed
  (:data:`PRETRAIN_SCENE_SEED`), so no pretraining image is an image of any evaluation
  split (twin datasets use seed 0);
- one crop per visible instance (its box with a margin of context, squared) from the
  VOC-, COCO- and Cityscapes-style generators, plus stuff patches (sky, grass, road, wall,
  ...) from the Cityscapes- and Context-style ones, so the vocabulary covers every class
  the downstream tables segment, as ImageNet's does for VOC;
- the label is the class (or stuff) name; the net is the backbone at output stride 32
  with global average pooling and a linear classifier, trained with the project's loop.

Backbones (:data:`ARCHS`): the width-scaled ResNets of Wu et al. and the VGG-16 / AlexNet
trunks of PFN (:class:`~instseg_lib.models.vgg.VGGTrunk`; at stride 32 their pools keep
stride 2, the classification form of the same parameters, as ImageNet's VGG-16 is DeepLab's
before its conversion; fc6/fc7 are pretrained too, as ImageNet's are).

A second stage (:class:`SegPretrainConfig`, where the profile's ``pretrain_seg_steps`` sets
one) then trains each backbone to segment COCO-style twin scenes of their own seed, with the
head its papers put on it (an FCRN on the ResNets, DeepLab-LargeFOV on VGG-16 and AlexNet), and
keeps the trunk: from the crop stage alone every measured cpu-profile fine-tune scored well below
(``benchmarks/learnability.py``; the profile table quotes the measurements).

The crop set is written once per configuration under ``data_root()/<profile>/pretrain``;
the trained backbone is a cached experiment (``results/<profile>/pretrain/``) with
provenance, like every other run. :func:`initialise_backbone` records which initialisation a
model got, and captions report it.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .experiments import Result, RunContext, atomic_write_bytes, canonical_json, load_checkpoint, run_experiment
from .paths import data_root
from .profiles import Profile, get_profile

PAPER = "pretrain"
#: Scene seed of the pretraining images; twin datasets use seed 0, so the sets are disjoint.
PRETRAIN_SCENE_SEED = 104729
#: Presets whose objects give crops, and those whose labelled stuff gives patches.
OBJECT_PRESETS = ("voc", "coco", "cityscapes")
STUFF_PRESETS = ("context", "cityscapes")
#: Names folded together: the same look and the same kind of thing.
SYNONYMS = {"motorcycle": "motorbike", "rider": "person", "table": "diningtable"}
#: Labels that are not a thing to recognise.
IGNORED = {"background", "unlabeled", "ego vehicle", "rectification border", "out of roi", "static", "dynamic",
           "ground", "parking", "rail track", "guard rail", "bridge", "tunnel", "polegroup", "caravan", "trailer",
           "license plate"}


@dataclass(frozen=True)
class CropSetConfig:
    """The pretraining images: how many scenes, at what size, cropped how."""

    profile: str
    image_size: int
    crop_px: int
    n_scenes: int
    min_box_px: int = 8
    stuff_patches_per_scene: int = 3
    scene_seed: int = PRETRAIN_SCENE_SEED
    version: int = 1


@dataclass(frozen=True)
class PretrainConfig:
    """One stand-in pretraining run of a backbone (cached like every experiment)."""

    arch: str  # one of ARCHS: "resnet50" | "resnet101" | "resnet152" | "vgg16" | "alexnet"
    width: int
    crops: CropSetConfig
    steps: int
    batch_size: int
    lr: float
    warmup_steps: int
    seed: int = 0

    @property
    def name(self) -> str:
        return f"standin-{self.arch}-w{self.width}"

    @property
    def depth(self) -> int:
        """The ResNet depth (ResNet archs only)."""
        return int(self.arch.removeprefix("resnet"))


def crop_set_config(profile: Profile | str) -> CropSetConfig:
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    return CropSetConfig(profile=p.name, image_size=p.image_size, crop_px=int(p.extra.get("pretrain_crop", 64)),
                         n_scenes=int(p.extra.get("pretrain_scenes", 1500)))


def pretrain_config(profile: Profile | str, arch: str) -> PretrainConfig:
    """The stand-in pretraining of ``arch`` at ``profile``'s width and budget."""
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    if arch not in ARCHS:
        raise ValueError(f"no stand-in pretraining for {arch!r}; use one of {', '.join(ARCHS)}")
    steps = int(p.extra.get("pretrain_steps", {}).get(arch, 100))
    return PretrainConfig(arch=arch, width=p.width, crops=crop_set_config(p), steps=steps,
                          batch_size=int(p.extra.get("pretrain_batch", 64)), lr=float(p.extra.get("pretrain_lr", 2e-3)),
                          warmup_steps=max(1, steps // 20))


ARCHS = ("resnet50", "resnet101", "resnet152", "vgg16", "alexnet")
# Architectures whose fallback to the stand-in was warned about: once per process each.
_WARNED_FALLBACK: set[str] = set()
#: The PFN trunks among them (:mod:`instseg_lib.models.vgg`).
VGG_ARCHS = ("vgg16", "alexnet")


# --------------------------------------------------------------------------- the crop set
def _scene_crops(args: tuple[str, int, CropSetConfig]) -> list[tuple[np.ndarray, str]]:
    """Crops of one pretraining scene: ``[(uint8 crop, name), ...]``."""
    from PIL import Image

    from .data.classes import CITYSCAPES_LABELS, CONTEXT_CLASSES, VOC_CLASSES
    from .data.synthetic import render

    preset, index, cfg = args
    sc = render(preset, "train", index, seed=cfg.scene_seed, image_size=cfg.image_size)
    H, W = sc.semantic.shape
    if preset == "cityscapes":
        names = {lab.id: lab.name for lab in CITYSCAPES_LABELS}
    elif preset == "context":
        names = dict(enumerate(CONTEXT_CLASSES))
    else:
        names = dict(enumerate(VOC_CLASSES))
    out: list[tuple[np.ndarray, str]] = []

    def take(y0: float, x0: float, y1: float, x1: float, name: str) -> None:
        name = SYNONYMS.get(name, name)
        if name in IGNORED:
            return
        cy, cx, half = (y0 + y1) / 2, (x0 + x1) / 2, max(y1 - y0, x1 - x0) / 2
        box = (int(round(cx - half)), int(round(cy - half)), int(round(cx + half)), int(round(cy + half)))
        crop = Image.fromarray(sc.image).crop(box).resize((cfg.crop_px, cfg.crop_px), Image.BILINEAR)
        out.append((np.asarray(crop), name))

    if preset in OBJECT_PRESETS:
        boxes = sc.boxes  # (x0, y0, x1, y1) per instance
        for k, (x0, y0, x1, y1) in enumerate(boxes):
            if sc.crowd[k] or min(x1 - x0, y1 - y0) < cfg.min_box_px:
                continue
            name = names.get(int(sc.instance_classes[k]), "")
            if not name or int(sc.instance_classes[k]) == 0:
                continue
            m = 0.15 * max(x1 - x0, y1 - y0)  # some context around the object
            take(y0 - m, x0 - m, y1 + m, x1 + m, name)
    if preset in STUFF_PRESETS:
        rng = np.random.default_rng([cfg.scene_seed, index, 7])
        for _ in range(cfg.stuff_patches_per_scene * 4):
            if sum(1 for _, n in out if n not in VOC_CLASSES) >= cfg.stuff_patches_per_scene:
                break
            s = int(rng.integers(max(8, H // 6), max(9, H // 2)))
            y, x = int(rng.integers(0, H - s + 1)), int(rng.integers(0, W - s + 1))
            win = sc.semantic[y:y + s, x:x + s]
            ids, counts = np.unique(win, return_counts=True)
            top = int(ids[counts.argmax()])
            # Only a patch that is mostly one stuff class, and not an instance class.
            if counts.max() < 0.7 * win.size or (sc.instances[y:y + s, x:x + s] > 0).mean() > 0.3:
                continue
            take(y, x, y + s, x + s, names.get(top, ""))
    return out


class _Serial:
    """The executor interface, in this process."""

    def __enter__(self) -> "_Serial":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    @staticmethod
    def map(fn, items, chunksize: int = 1):  # noqa: ARG004 - same signature as the pool's
        return map(fn, items)


def crop_set_path(cfg: CropSetConfig) -> Path:
    h = hashlib.sha256(canonical_json(cfg).encode()).hexdigest()[:12]
    return data_root() / cfg.profile / "pretrain" / f"crops-{h}.npz"


def build_crop_set(cfg: CropSetConfig, workers: int | None = None) -> dict[str, Any]:
    """The crop set of ``cfg`` (built once, then read from its ``.npz``).

    Returns ``{"images": (N, S, S, 3) uint8, "labels": (N,) int64, "names": [...],
    "is_val": (N,) bool}``; every 10th scene is held out for validation accuracy.
    """
    path = crop_set_path(cfg)
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                return {"images": z["images"], "labels": z["labels"], "names": [str(n) for n in z["names"]],
                        "is_val": z["is_val"]}
        except Exception:  # noqa: BLE001 - a damaged cache file is rebuilt, not trusted
            path.unlink()
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    from .train import progress_enabled

    presets = sorted(set(OBJECT_PRESETS) | set(STUFF_PRESETS))
    jobs = [(p, i, cfg) for i in range(cfg.n_scenes) for p in presets]
    # A process pool pays off only for a large set (and a small one stays in-process, as in
    # the smoke profile's notebooks).
    workers = workers or (min(2, os.cpu_count() or 1) if len(jobs) >= 200 else 1)
    images, names, is_val = [], [], []
    with ProcessPoolExecutor(workers) if workers > 1 else _Serial() as ex:
        for (preset, index, _), crops in tqdm(zip(jobs, ex.map(_scene_crops, jobs, chunksize=16)), total=len(jobs),
                                              desc="pretraining crops", disable=not progress_enabled(), leave=False):
            for img, name in crops:
                images.append(img)
                names.append(name)
                is_val.append(index % 10 == 9)
    vocab = sorted(set(names))
    labels = np.array([vocab.index(n) for n in names], np.int64)
    out = {"images": np.stack(images) if images else np.zeros((0, cfg.crop_px, cfg.crop_px, 3), np.uint8),
           "labels": labels, "names": vocab, "is_val": np.array(is_val, bool)}
    buf = io.BytesIO()
    np.savez(buf, images=out["images"], labels=labels, names=np.array(vocab), is_val=out["is_val"])
    atomic_write_bytes(path, buf.getvalue())
    return out


# --------------------------------------------------------------------------- the classifier
class CropClassifier(nn.Module):
    """Backbone at output stride 32, global average pooling, a linear classifier.

    ``depth``: a ResNet depth (50, 101, 152) or an :data:`ARCHS` name (``"vgg16"``, ...).
    The VGG/AlexNet trunk keeps its fc6/fc7 (with VGG's dropout 0.5) under the pooling.
    """

    def __init__(self, depth: int | str, width: int, num_classes: int) -> None:
        super().__init__()
        arch = depth if isinstance(depth, str) else f"resnet{depth}"
        if arch in VGG_ARCHS:
            from .models.vgg import VGGTrunk

            self.backbone: nn.Module = VGGTrunk(arch, width, output_stride=32)
        else:
            from .models.backbones import ScaledResNet

            self.backbone = ScaledResNet(int(arch.removeprefix("resnet")), width, output_stride=32)
        self.fc = nn.Linear(self.backbone.out_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.fc(self.backbone(x).mean((2, 3)))


class _Crops(torch.utils.data.Dataset):
    """Training crops with a random flip and a random shift (pad 4, crop back)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, augment: bool) -> None:
        from .recipes.common import MEAN, STD

        self.x = torch.from_numpy(images).permute(0, 3, 1, 2)
        self.y = torch.from_numpy(labels)
        self.mean, self.std, self.augment = MEAN, STD, augment

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        x = self.x[i].float().div_(255.0)
        if self.augment:
            if torch.rand(()) < 0.5:
                x = x.flip(-1)
            s = x.shape[-1]
            x = nn.functional.pad(x[None], (4, 4, 4, 4), mode="replicate")[0]
            dy, dx = (int(v) for v in torch.randint(0, 9, (2,)))
            x = x[:, dy:dy + s, dx:dx + s]
            x = x * (0.8 + 0.4 * torch.rand(())) + 0.1 * (torch.rand(3, 1, 1) - 0.5)
        return {"image": (x - self.mean) / self.std, "label": self.y[i]}


@torch.no_grad()
def _accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, device: str) -> float:
    model.eval()
    ds = _Crops(images, labels, augment=False)
    correct = 0
    for i in range(0, len(ds), 256):
        batch = torch.stack([ds[j]["image"] for j in range(i, min(i + 256, len(ds)))]).to(device)
        correct += int((model(batch).argmax(1).cpu() == ds.y[i:i + 256]).sum())
    return 100.0 * correct / max(1, len(ds))


def _pretrain(cfg: PretrainConfig, ctx: RunContext) -> dict[str, Any]:
    from .train import TrainConfig, train

    data = build_crop_set(cfg.crops)
    val = data["is_val"]
    model = CropClassifier(cfg.arch, cfg.width, len(data["names"]))
    ds = _Crops(data["images"][~val], data["labels"][~val], augment=True)
    tcfg = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, optimizer="adam", weight_decay=1e-4,
                       warmup_steps=cfg.warmup_steps, seed=cfg.seed, checkpoint_every=max(50, cfg.steps // 4),
                       channels_last=not ctx.device.startswith("cuda"))
    hist = train(model, ds, lambda m, b: nn.functional.cross_entropy(m(b["image"]), b["label"]), tcfg,
                 checkpoint_path=ctx.checkpoint_path, device=ctx.device, desc=cfg.name)
    counts = np.bincount(data["labels"][~val], minlength=len(data["names"]))
    majority = 100.0 * float((data["labels"][val] == counts.argmax()).mean()) if val.any() else 0.0
    ctx.notes["crop_set"] = str(crop_set_path(cfg.crops).name)
    return {"val_accuracy": _accuracy(model, data["images"][val], data["labels"][val], ctx.device),
            "majority_accuracy": majority, "n_train": int((~val).sum()), "n_val": int(val.sum()),
            "n_classes": len(data["names"]), "class_names": data["names"],
            "losses": [round(float(v), 4) for v in hist["losses"]],
            "final_loss": float(np.mean(hist["losses"][-20:]))}


def run_pretraining(cfg: PretrainConfig, force: bool | None = None) -> Result:
    """Pretrain (or load from the cache) one stand-in backbone.

    ``FORCE=1`` recomputes a table's experiments but not the pretraining every one of them
    starts from (that would retrain it once per row); ``FORCE_PRETRAIN=1`` recomputes it.
    """
    if force is None:
        force = _force_pretrain()
    return run_experiment(cfg, _pretrain, paper=PAPER, name=cfg.name, profile=cfg.crops.profile, seed=cfg.seed,
                          force=force)


def _force_pretrain() -> bool:
    return os.environ.get("FORCE_PRETRAIN", "").strip().lower() in {"1", "true", "yes"}


def trunk_state(res: Result, device: str = "cpu") -> dict[str, torch.Tensor]:
    """The ``backbone.`` part of a trained result's checkpoint (a pretraining, or any run whose
    model keeps its trunk as ``backbone``), prefix removed."""
    state = load_checkpoint(res.path.with_suffix(".pt"), map_location=device)["model"]
    return {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}


def standin_state(cfg: PretrainConfig, device: str = "cpu") -> tuple[dict[str, torch.Tensor], Result]:
    """The pretrained backbone's state dict (``backbone.`` prefix removed) and its result."""
    res = run_pretraining(cfg)
    return trunk_state(res, device), res


def init_key(profile: Profile | str, depth: int | str, width: int | None = None) -> str:
    """What a fine-tuning config records of its initialisation: the stand-in pretraining's
    name and config hash (ImageNet weights, where they load, take precedence at run time).
    ``depth``: a ResNet depth or an :data:`ARCHS` name."""
    from .experiments import config_hash

    p = profile if isinstance(profile, Profile) else get_profile(profile)
    arch = depth if isinstance(depth, str) else f"resnet{depth}"
    if arch not in ARCHS:
        return ""  # no such backbone: the config's own validation refuses the depth
    seg = seg_pretrain_config(p, arch) if width in (None, p.width) else None
    if seg is not None:  # the segmentation stage, which names its crop stage in its own config
        return f"{seg.name}-{config_hash(seg)}"
    cfg = replace(pretrain_config(p, arch), width=width or p.width)
    return f"{cfg.name}-{config_hash(cfg)}"


def initialise_backbone(backbone: nn.Module, profile: Profile | str, arch: str | None = None) -> dict[str, Any]:
    """Initialise ``backbone`` as the papers do, from ImageNet, or from its stand-in.

    At width 64 the ImageNet weights of :mod:`instseg_lib.models.weights` (torchvision's, from
    the verified cache, downloaded if need be) are used; when they cannot be had the run stops
    with :class:`~instseg_lib.models.weights.WeightsUnavailableError`, unless
    ``$INSTSEG_INIT_FALLBACK=standin`` asks for the stand-in (one warning, and the record's
    ``reason`` and ``imagenet_unavailable`` say why). At other widths no ImageNet weights exist:
    the cached stand-in pretraining of this architecture and width (trained first if absent) is
    used, as always. The returned record goes into provenance and captions:
    ``{"init": "imagenet" | "stand-in", "weights": ..., "reason": ...}`` (imagenet adds the
    file's ``url`` and ``sha256``).
    """
    from .models.backbones import load_imagenet_weights
    from .models.vgg import load_vgg_imagenet_weights
    from .models.weights import FALLBACK_ENV, WeightsUnavailableError, fallback_requested

    arch = arch or getattr(backbone, "arch", None) or f"resnet{backbone.depth}"
    unavailable = None
    if backbone.width == 64:
        loader = load_vgg_imagenet_weights if arch in VGG_ARCHS else load_imagenet_weights
        try:
            return {"init": "imagenet", **loader(backbone, True, fallback=False)}
        except WeightsUnavailableError as err:
            if not fallback_requested():
                raise
            unavailable = err.cause
            if arch not in _WARNED_FALLBACK:
                _WARNED_FALLBACK.add(arch)
                warnings.warn(f"ImageNet weights for {arch} unavailable ({err.cause}); {FALLBACK_ENV} asks for the "
                              f"stand-in pretraining instead", RuntimeWarning, stacklevel=2)
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    cfg = replace(pretrain_config(p, arch), width=backbone.width)
    seg = seg_pretrain_config(p, arch) if backbone.width == p.width else None
    state, res = standin_state(cfg) if seg is None else seg_standin_state(seg)
    backbone.load_state_dict(state, strict=True)
    if seg is None:
        reason = (f"twin stand-in for ImageNet: {cfg.arch} at width {cfg.width} classifying "
                  f"{res.metrics['n_train']} object and stuff crops, {res.metrics['val_accuracy']:.1f}% val "
                  f"accuracy over {res.metrics['n_classes']} classes")
    else:
        reason = (f"twin stand-in for ImageNet: {cfg.arch} at width {cfg.width} classifying object and stuff "
                  f"crops ({res.metrics['base_val_accuracy']:.1f}% val accuracy), then segmenting "
                  f"{res.metrics['n_train']} COCO-style scenes for {seg.steps} steps "
                  f"({res.metrics['val_miou']:.1f}% val mean IoU)")
    if unavailable is None:
        return {"init": "stand-in", "pretrained": True, "weights": f"{res.path.stem}", "reason": reason}
    return {"init": "stand-in", "pretrained": True, "weights": f"{res.path.stem}",
            "reason": f"{FALLBACK_ENV} fallback, ImageNet weights unavailable; {reason}",
            "imagenet_unavailable": unavailable}


# --------------------------------------------------------------------------- the segmentation stage
#: Scene seed of the segmentation stage's scenes: neither the twin datasets' (0) nor the crops'.
SEG_SCENE_SEED = PRETRAIN_SCENE_SEED + 1


@dataclass(frozen=True)
class SceneSetConfig:
    """The segmentation stage's images: COCO-style twin scenes rendered with their own seed."""

    profile: str
    image_size: int
    n_scenes: int
    preset: str = "coco"
    scene_seed: int = SEG_SCENE_SEED
    version: int = 1


@dataclass(frozen=True)
class SegPretrainConfig:
    """A second pretraining stage of a stand-in: dense segmentation of COCO-style scenes.

    It starts from the crop-classification stage (``base``) and trains a segmentation net on
    the 20 VOC categories of :class:`SceneSetConfig`'s scenes, as real pipelines fine-tune
    ImageNet nets on COCO before VOC. Only the trunk is kept; each downstream row gets a new
    head. The net is the one the downstream papers put on that trunk:

    - a ResNet: an FCRN (Wu §2.3, the head every FCRN row uses: output stride 16, a 3x3
      classifier of dilation 6);
    - VGG-16 / AlexNet: DeepLab-LargeFOV (PFN §3.1, BoxSup §3), output stride 8, fc6 a 3x3
      conv of dilation ``dilation`` (LargeFOV's 12 scaled to the crop,
      :func:`~instseg_lib.models.largefov_dilation`); ``kernel`` is fc6's size. The trunk the
      downstream nets load is then already in its stride-8 DeepLab form, as DeepLab's
      ImageNet VGG is after its conversion.
    """

    base: PretrainConfig
    scenes: SceneSetConfig
    steps: int
    batch_size: int
    crop_size: int
    lr: float
    warmup_steps: int
    output_stride: int = 16
    kernel: int = 3
    dilation: int = 6
    seed: int = 0

    @property
    def name(self) -> str:
        return f"standin-seg-{self.base.arch}-w{self.base.width}"


def seg_pretrain_config(profile: Profile | str, arch: str, steps: int | None = None) -> SegPretrainConfig | None:
    """The segmentation stage of ``arch``'s stand-in at ``profile``, or ``None`` where it has none.

    Its length is the profile's ``pretrain_seg_steps`` entry for ``arch`` (0 or absent: no
    stage, and the book's nets start from the crop stage alone). ``steps`` overrides it (the
    learnability benchmark measures a stage before a profile adopts it).
    """
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    if arch not in ARCHS:
        raise ValueError(f"no stand-in pretraining for {arch!r}; use one of {', '.join(ARCHS)}")
    steps = int(p.extra.get("pretrain_seg_steps", {}).get(arch, 0)) if steps is None else steps
    if steps <= 0:
        return None
    scenes = SceneSetConfig(profile=p.name, image_size=p.image_size,
                            n_scenes=int(p.extra.get("pretrain_seg_scenes", 1600)))
    cfg = SegPretrainConfig(base=pretrain_config(p, arch), scenes=scenes, steps=steps, batch_size=p.batch_size,
                            crop_size=p.crop_size, lr=float(p.extra.get("lr", 1e-3)), warmup_steps=max(1, steps // 20))
    if arch in VGG_ARCHS:  # DeepLab-LargeFOV's head: stride 8, fc6 3x3 at the crop-scaled dilation
        from .models.vgg import largefov_dilation

        cfg = replace(cfg, output_stride=8, kernel=3, dilation=largefov_dilation(p.crop_size))
    return cfg


def scene_set_path(cfg: SceneSetConfig) -> Path:
    h = hashlib.sha256(canonical_json(cfg).encode()).hexdigest()[:12]
    return data_root() / cfg.profile / "pretrain" / f"scenes-{h}.npz"


def _render_scene(args: tuple[SceneSetConfig, int]) -> tuple[np.ndarray, np.ndarray]:
    from .data.synthetic import render

    cfg, index = args
    sc = render(cfg.preset, "train", index, seed=cfg.scene_seed, image_size=cfg.image_size)
    sem = sc.semantic.astype(np.uint8).copy()
    sem[sc.void.astype(bool)] = 255  # unlabelled pixels carry no loss, as in the datasets
    return sc.image, sem


def build_scene_set(cfg: SceneSetConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(image, class map), ...]`` of ``cfg`` (rendered once, then read from its ``.npz``)."""
    path = scene_set_path(cfg)
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                return [(z[f"image{i}"], z[f"semantic{i}"]) for i in range(int(z["n"]))]
        except Exception:  # noqa: BLE001 - a damaged cache file is rebuilt, not trusted
            path.unlink()
    from tqdm import tqdm

    from .train import progress_enabled

    out = [_render_scene((cfg, i)) for i in tqdm(range(cfg.n_scenes), desc="pretraining scenes",
                                                  disable=not progress_enabled(), leave=False)]
    buf = io.BytesIO()
    arrays = {f"image{i}": im for i, (im, _) in enumerate(out)} | {f"semantic{i}": s for i, (_, s) in enumerate(out)}
    np.savez(buf, n=np.array(len(out)), **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return out


class _Scenes(torch.utils.data.Dataset):
    """The scene set as :class:`~instseg_lib.data.sample.Sample` s (every 10th held out)."""

    def __init__(self, scenes: list[tuple[np.ndarray, np.ndarray]], val: bool) -> None:
        from .data.classes import VOC_CLASSES

        self.items = [s for i, s in enumerate(scenes) if (i % 10 == 9) == val]
        self.names = tuple(VOC_CLASSES)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        from .data.sample import Sample

        image, sem = self.items[i]
        h, w = sem.shape
        return Sample(image=image, semantic=sem, instances=np.zeros((h, w), np.int32),
                      instance_classes=np.zeros(0, np.int64), boxes=np.zeros((0, 4), np.float32),
                      image_id=f"pretrain-{i:06d}", num_classes=len(self.names), class_names=self.names,
                      has_instances=False)


def _seg_model(cfg: SegPretrainConfig, num_classes: int) -> nn.Module:
    from .models import FCRN, FCRNConfig

    if cfg.base.arch in VGG_ARCHS:
        from .models.vgg import DeepLabLargeFOV

        arch = cfg.base.arch
        return DeepLabLargeFOV(num_classes, arch, cfg.base.width, fc6_dilation=cfg.dilation)  # type: ignore[arg-type]
    return FCRN(FCRNConfig(depth=cfg.base.depth, output_stride=cfg.output_stride, kernel=cfg.kernel,
                           dilation=cfg.dilation, width=cfg.base.width, num_classes=num_classes))


def _seg_pretrain(cfg: SegPretrainConfig, ctx: RunContext) -> dict[str, Any]:
    from .data.transforms import SampleTransform, RandomScaleRotateCrop
    from .losses import bootstrapped_cross_entropy
    from .recipes.common import TensorDataset, collate_dicts, evaluate_semantic
    from .train import TrainConfig, train

    scenes = build_scene_set(cfg.scenes)
    tr, va = _Scenes(scenes, val=False), _Scenes(scenes, val=True)
    model = _seg_model(cfg, len(tr.names))
    state, base = standin_state(cfg.base)
    model.backbone.load_state_dict(state, strict=True)
    data = TensorDataset(tr, SampleTransform(RandomScaleRotateCrop(cfg.crop_size, (0.7, 1.5), 10.0, True)))
    tcfg = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, optimizer="adam", weight_decay=1e-4,
                       warmup_steps=cfg.warmup_steps, seed=cfg.seed, checkpoint_every=max(50, cfg.steps // 4),
                       channels_last=not ctx.device.startswith("cuda"))
    loss = lambda m, b: bootstrapped_cross_entropy(m(b["image"]), b["semantic"], k=None)  # noqa: E731
    hist = train(model, data, loss, tcfg, checkpoint_path=ctx.checkpoint_path, device=ctx.device,
                 collate_fn=collate_dicts, desc=cfg.name)
    scores = evaluate_semantic(model, va, len(tr.names), ctx.device, desc=f"{cfg.name} val")
    ctx.notes["scene_set"] = scene_set_path(cfg.scenes).name
    ctx.notes["base"] = base.path.stem
    return {"val_miou": float(scores["miou"]), "n_train": len(tr), "n_val": len(va),
            "base_val_accuracy": float(base.metrics["val_accuracy"]),
            "losses": [round(float(v), 4) for v in hist["losses"]],
            "final_loss": float(np.mean(hist["losses"][-20:]))}


def run_seg_pretraining(cfg: SegPretrainConfig, force: bool | None = None) -> Result:
    """The segmentation stage (or its cached result); ``FORCE_PRETRAIN=1`` recomputes it."""
    if force is None:
        force = _force_pretrain()
    return run_experiment(cfg, _seg_pretrain, paper=PAPER, name=cfg.name, profile=cfg.scenes.profile, seed=cfg.seed,
                          force=force)


def seg_standin_state(cfg: SegPretrainConfig, device: str = "cpu") -> tuple[dict[str, torch.Tensor], Result]:
    """The segmentation stage's trunk (``backbone.`` prefix removed) and its result."""
    res = run_seg_pretraining(cfg)
    return trunk_state(res, device), res
