"""Liang et al. 2015 (PFN) as experiments: the category-level net, the instance-level net and
its ablations, and the spectral-clustering test stage (Tables 1-3).

The pipeline, as the paper describes it:

1. **Category-level network** (§3.1, §5.2 "In the first training stage"): DeepLab-LargeFOV
   (:class:`~instseg_lib.models.DeepLabLargeFOV`) on VGG-16, or on AlexNet for the
   "PFN Alexnet" rows (§4.2), width-scaled, trained with the per-pixel cross-entropy of §3.1
   on the **SBD twin's train split** from its stand-in ImageNet init
   (:func:`~instseg_lib.pretrain.initialise_backbone`). Its mean IoU on the VOC twin val
   is printed as a diagnostic (the paper: 67.53, :data:`~instseg_lib.papers.liang2015.CATEGORY_MIOU`).
2. **Instance-level network** (§3.2, :class:`~instseg_lib.models.PFN`), fine-tuned from the
   category network's trunk ("two-stage"): five multi-scale streams with coordinate maps
   (Eq. 3) regressing the per-pixel instance locations with smooth-L1 on foreground pixels
   (Eq. 2, Eq. 4), deep supervision per stream, and the instance-number branch with its
   Euclidean loss, ``L = λ L_o + L_n`` with λ = 10 (Eq. 5; :func:`~instseg_lib.losses.pfn_loss`).
   §4.1: the pretrained layers learn at 1/10 of the new layers' rate (0.001 vs 0.01).
   Every Table 1/2 row that changes training is one :class:`InstanceConfig` (:data:`ROWS`).
3. **Test stage** (§3.3, :func:`group_image` around :func:`~instseg_lib.grouping.pfn_group`):
   the category map with the dense CRF (:func:`~instseg_lib.models.dense_crf`), refined by the
   predicted instance numbers (τ = 0.5), per category normalised spectral clustering of the
   foreground pixels with Eq. 6's affinity (σ = 0.5), the cluster count from the predicted
   number, the best of 20 k-means seedings by mean within-cluster similarity, and clusters
   under 0.1% of the mask dropped. The "Testing strategy" rows and both upper bounds are
   :class:`TestSettings` of the one trained "PFN" net: separate cached evaluations that load
   the same cached training (they never retrain).
4. **Evaluation**: AP^r (SDS protocol, :class:`~instseg_lib.metrics.SDSEvaluator`) per class at
   IoU 0.1-0.9 on the **VOC twin's val split** (the paper trains on SBD and tests on VOC 2012
   val, §5.1), which fills Table 1 (0.5), Table 2 (AP^r_vol, the mean over 0.1-0.9) and
   Table 3 (0.6-0.9) from one evaluation per row.

Choices the paper leaves open (ours; the notebook repeats them):

- **Ranking score for AP^r.** The paper gives none. Each instance is scored by the **mean
  category probability of its pixels** for its class, read from the CRF's marginals (the map
  the instance was cut from). Every table depends on this choice.
- **Target normalisation.** §3.2 divides by "the width and the height of the object
  instance"; read literally the 6-d vector carries only 2 numbers and the 2/4/6/10-d ablation
  is vacuous (:func:`~instseg_lib.data.targets.pfn_instance_targets`). We divide x by the
  **image** width and y by the image height (``frame="absolute"``); offsets (2) are measured
  from the pixel and scaled the same way.
- **Coordinate maps** are the cell-centre positions normalised to [0, 1] per stream (Eq. 3
  says raw ix, iy): one frame for every stride (:mod:`instseg_lib.models.pfn`). Stream kernel
  sizes are 3x3; predictions are area-pooled to stride 8 and fused by a 1x1 conv (5 x D -> D).
- **Number branch.** The fc layer fixes the input size in the paper; we global-average-pool the
  128 maps before it, so any image size works. It reads the instance net's own fc7 (its trunk
  starts as the category network's), concatenated with the D location maps.
- **"PFN unified"** is one stage from the stand-in VGG init, with a C + 1 category classifier
  on fc7 trained in the same net (loss weight 1, §5.3), whose CRF'd output is the category
  map at test time. "PFN separate finetune" trains the locations first (no number loss), then
  the number branch alone with everything else frozen, for half the steps.
- **Count -> clusters.** k = round half up of the predicted number (τ = 0.5). A class the
  (refined) map shows but whose number rounds to 0 gets k = 1, and k never exceeds the mask's
  pixels; both clamps are counted in the result (``clamps``). When no class exceeds τ the map
  is left unrefined. "w/o classify" skips the refinement and keeps the clamp k >= 1.
- **k-means seeding**: 20 single-seed scikit-learn fits, each scored by the pooled mean Eq. 6
  affinity within clusters (not scikit-learn's inertia), the best kept.
- **Eq. 6**: σ sits in the usual Gaussian ``2σ²``, each term divided by its dimension |t| = D
  or |q| = 2; t and q are normalised by their maxima over the category mask.
- **Scale and cost.** Location maps are bilinearly upsampled from stride 8 to the image before
  clustering (so the 0.1% size threshold is counted in image pixels). Dense Eq. 6 is quadratic:
  each mask is clustered on a uniform subset of ``max_pixels`` pixels (cpu: 500) and every other
  pixel joins the cluster of highest mean affinity. Measured with ``benchmarks/bench_pfn.py``'s
  blobs (one core, location noise 0.05): two touching instances of 1,600 / 3,600 pixels, dense
  1.3 / 6.2 s, the 500-pixel subset 0.2 s, both labellings equal to the truth (agreement 1.000);
  three touching side by side are split poorly by the dense σ = 0.5 solution itself (0.65 of the
  pixels agree with the truth) and the subset agrees as well with the truth (0.66) but only 0.50
  with the dense labelling (a different poor split; see :mod:`instseg_lib.grouping.spectral`).
- **Upper bounds.** "GT numbers": the ground-truth count vector replaces the predicted one
  (refinement included). "GT locations": the ground-truth location vector of every pixel that
  lies on a ground-truth instance replaces the prediction there (elsewhere the prediction is
  kept, as there is no truth to put).
- **Splits.** SBD twin train, VOC twin val; the twins are generated disjoint, so the real
  data's SBD-train ∩ VOC12-val overlap does not arise (on real data it must be removed).
- **Test-time CRF.** PFN gives no parameters; DeepLab-LargeFOV's are used
  (:class:`~.dai2015.CRFSettings`: 10 iterations, w1 = 4, θα = 121, θβ = 5, w2 = 3, θγ = 3,
  position widths scaled from 500 px to the twin's image size).
- **Optimiser.** The book's shared recipe (:func:`~.common.recipe_settings`, Adam with a
  warm-up) for both stages, not §4.1's SGD; the instance stage trains for the profile's steps.
- **Budget (cpu profile).** Not every Table 1/2 row is trained: :data:`TRAINED_ROWS` lists
  those that are, the others read "not run" with that reason (:func:`plan`). Seed noise comes
  from ``profile.seeds_for(PAPER)`` trainings of the main "PFN" net (the category net fixed at seed 0).
"""

from __future__ import annotations

import math
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..data import open_dataset, train_transforms
from ..data.registry import dataset_label
from ..data.targets import PFN_LOCATION_CHANNELS, pfn_instance_targets, pfn_number_targets
from ..experiments import Result, RunContext, load_checkpoint, run_experiment
from ..grouping import Instances, pfn_group, refine_category_map
from ..grouping.spectral import PFN_KMEANS_RUNS, PFN_MIN_CLUSTER_FRACTION, PFN_SIGMA, PFN_TAU
from ..losses import PFN_LAMBDA, pfn_loss
from ..metrics import SDSEvaluator
from ..metrics.ap import VOL_THRESHOLDS
from ..models import PFN, DeepLabLargeFOV, PFNConfig, largefov_dilation
from ..papers.schema import Claim, Noise, check_claim
from ..paths import data_identity
from ..pretrain import init_key, initialise_backbone
from ..profiles import Profile, get_profile
from ..train import DivergedError, TrainConfig, progress_enabled, train
from .common import (PlanResults, TensorDataset, collate_dicts, dataset_fingerprint_of, gt_instance_masks, image_tensor,
                     loss_record, pad_to_multiple, recipe_settings, t_factor, to_tensors)
from .dai2015 import CRFSettings, crf_probabilities, evaluate as evaluate_category_maps, score_maps

PAPER = "liang2015"
#: §5.1: trained on SBD's training images, tested on VOC 2012 val.
TRAIN_SET, EVAL_SET = "sbd", "voc"
#: Table 3's IoU thresholds.
TABLE3_IOUS: tuple[float, ...] = (0.6, 0.7, 0.8, 0.9)
#: Subset size of a mask's spectral clustering per profile (module docstring, "Scale and cost").
MAX_PIXELS = {"smoke": 200, "cpu": 500, "gpu": 1000}


# --------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class CategoryConfig:
    """The category-level network (§3.1): DeepLab-LargeFOV trained with cross-entropy."""

    arch: str  # "vgg16" | "alexnet"
    dataset: str
    profile: str
    width: int
    crop_size: int
    steps: int
    batch_size: int
    lr: float
    optimizer: str
    warmup_steps: int
    n_eval: int | None
    crf: CRFSettings = field(default_factory=CRFSettings)
    seed: int = 0
    #: The stand-in pretraining this run starts from (``pretrain.init_key``).
    init: str = ""

    @property
    def name(self) -> str:
        seed = f"-seed{self.seed}" if self.seed else ""
        return f"pfn-category-{self.arch}-{self.dataset}{seed}"

    @property
    def fc6_dilation(self) -> int:
        return largefov_dilation(self.crop_size)

    def validate(self) -> "CategoryConfig":
        if self.arch not in ("vgg16", "alexnet"):
            raise ValueError(f"arch must be 'vgg16' or 'alexnet'; got {self.arch!r}")
        return self


@dataclass(frozen=True)
class InstanceConfig:
    """One instance-level network (§3.2) and how it is trained (Tables 1-2's training rows).

    ``category`` is the category net it is fine-tuned from (two-stage); ``None`` starts from
    the stand-in ImageNet init of ``arch`` ("PFN unified" with ``unified=True``; otherwise
    the §3.1 comparison "fine-tuned from VGG-16").
    """

    category: CategoryConfig | None
    arch: str
    location_variant: str
    multiscale: bool
    coordinate_maps: bool
    fusion: str
    number_features: str
    unified: bool
    separate: bool
    profile: str
    width: int
    crop_size: int
    steps: int
    batch_size: int
    lr: float
    optimizer: str
    warmup_steps: int
    frame: str = "absolute"
    lam: float = PFN_LAMBDA
    #: §4.1: pre-trained layers at 0.001, new ones at 0.01.
    trunk_lr_scale: float = 0.1
    seed: int = 0
    init: str = ""

    @property
    def name(self) -> str:
        parts = ["pfn", self.arch, self.location_variant]
        if not self.multiscale:
            parts.append("single")
        if not self.coordinate_maps:
            parts.append("nocoordmaps")
        if self.fusion != "concat":
            parts.append(self.fusion)
        if self.number_features != "both":
            parts.append(f"num{self.number_features}")
        if self.unified:
            parts.append("unified")
        elif self.category is None:
            parts.append("from-imagenet")
        if self.separate:
            parts.append("separate")
        if self.seed:
            parts.append(f"seed{self.seed}")
        return "-".join(parts)

    def net(self, num_object_classes: int) -> PFNConfig:
        return PFNConfig(num_classes=num_object_classes, arch=self.arch, width=self.width,  # type: ignore[arg-type]
                         fc6_dilation=largefov_dilation(self.crop_size), location_variant=self.location_variant,
                         multiscale=self.multiscale, coordinate_maps=self.coordinate_maps,
                         fusion=self.fusion,  # type: ignore[arg-type]
                         number_features=self.number_features,  # type: ignore[arg-type]
                         unified_classes=num_object_classes + 1 if self.unified else 0)

    def validate(self) -> "InstanceConfig":
        self.net(20).validate()
        if self.category is not None:
            self.category.validate()
            if self.category.arch != self.arch:
                raise ValueError(f"the instance net ({self.arch}) must share the category net's trunk "
                                 f"({self.category.arch})")
        if self.unified and self.category is not None:
            raise ValueError("'PFN unified' is one stage from the ImageNet init: category must be None")
        if not 0 < self.trunk_lr_scale <= 1:
            raise ValueError(f"trunk_lr_scale must be in (0, 1]; got {self.trunk_lr_scale}")
        return self


@dataclass(frozen=True)
class TestSettings:
    """The §3.3 test stage; the switches are Table 1's "Testing strategy" and "Upperbound" rows."""

    refine: bool = True  # False: "w/o classify"
    size: bool = True  # False: "w/o size"
    coordinates: bool = True  # False: "w/o coordinates" (Eq. 6 without q)
    numbers: str = "predicted"  # "gt": "upperbound instnum"
    locations: str = "predicted"  # "gt": "upperbound instloc"
    crf: bool = True
    max_pixels: int = 500
    sigma: float = PFN_SIGMA
    tau: float = PFN_TAU
    n_init: int = PFN_KMEANS_RUNS
    min_cluster_fraction: float = PFN_MIN_CLUSTER_FRACTION

    @property
    def tag(self) -> str:
        parts = []
        if not self.refine:
            parts.append("noclassify")
        if not self.size:
            parts.append("nosize")
        if not self.coordinates:
            parts.append("nocoords")
        if self.numbers == "gt":
            parts.append("gtnum")
        if self.locations == "gt":
            parts.append("gtloc")
        if not self.crf:
            parts.append("nocrf")
        return "-".join(parts) or "test"

    def validate(self) -> "TestSettings":
        for k in ("numbers", "locations"):
            if getattr(self, k) not in ("predicted", "gt"):
                raise ValueError(f"{k} must be 'predicted' or 'gt'; got {getattr(self, k)!r}")
        if self.max_pixels < 2 or self.n_init < 1 or self.sigma <= 0:
            raise ValueError(f"max_pixels >= 2, n_init >= 1 and sigma > 0 needed; got {self}")
        return self


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation of a trained instance net with one test stage (cached on its own)."""

    train: InstanceConfig
    test: TestSettings
    dataset: str = EVAL_SET
    n_eval: int | None = None

    @property
    def name(self) -> str:
        return f"eval-{self.train.name}-{self.test.tag}-{self.dataset}"


def _sizes(p: Profile) -> dict[str, Any]:
    return {"profile": p.name, "width": p.width, "crop_size": p.crop_size, "steps": p.train_steps,
            "batch_size": p.batch_size, **recipe_settings(p)}


def category_config(profile: Profile | str, arch: str = "vgg16", seed: int = 0) -> CategoryConfig:
    """The category net of ``arch`` trained on the SBD twin, sizes from the profile."""
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    return CategoryConfig(arch=arch, dataset=TRAIN_SET, n_eval=p.eval_subset, seed=seed, init=init_key(p, arch),
                          **_sizes(p)).validate()


def instance_config(profile: Profile | str, arch: str = "vgg16", *, location_variant: str = "pfn6",
                    multiscale: bool = True, coordinate_maps: bool = True, fusion: str = "concat",
                    number_features: str = "both", unified: bool = False, separate: bool = False,
                    from_category: bool = True, seed: int = 0, **overrides: Any) -> InstanceConfig:
    """An instance net; the defaults are the paper's "PFN" (VGG-16, 6-d, multi-scale, concat)."""
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    cat = category_config(p, arch) if from_category and not unified else None
    cfg = InstanceConfig(category=cat, arch=arch, location_variant=location_variant, multiscale=multiscale,
                         coordinate_maps=coordinate_maps, fusion=fusion, number_features=number_features,
                         unified=unified, separate=separate, seed=seed,
                         init="" if cat is not None else init_key(p, arch), **_sizes(p))
    return (replace(cfg, **overrides) if overrides else cfg).validate()


def test_settings(profile: Profile | str, **switches: Any) -> TestSettings:
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    return TestSettings(max_pixels=MAX_PIXELS.get(p.name, 500), **switches).validate()


#: Table 1/2 rows -> (training switches of :func:`instance_config`, test switches of :class:`TestSettings`).
ROWS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "pfn": ({}, {}),
    "pfn-alexnet": ({"arch": "alexnet"}, {}),
    "pfn-unified": ({"unified": True}, {}),
    "pfn-offsets2": ({"location_variant": "offsets2"}, {}),
    "pfn-centers2": ({"location_variant": "centers2"}, {}),
    "pfn-centers-wh4": ({"location_variant": "centers-wh4"}, {}),
    "pfn-centers-topleft4": ({"location_variant": "centers-topleft4"}, {}),
    "pfn-plus-tr-bl10": ({"location_variant": "plus-tr-bl10"}, {}),
    "pfn-wo-multiscale": ({"multiscale": False}, {}),
    "pfn-wo-coordmaps": ({"coordinate_maps": False}, {}),
    "pfn-fusing-sum": ({"fusion": "sum"}, {}),
    "pfn-wo-category": ({"number_features": "locations"}, {}),
    "pfn-wo-instance": ({"number_features": "category"}, {}),
    "pfn-separate-ft": ({"separate": True}, {}),
    "pfn-wo-coords": ({}, {"coordinates": False}),
    "pfn-wo-classify-size": ({}, {"refine": False, "size": False}),
    "pfn-wo-size": ({}, {"size": False}),
    "pfn-wo-classify": ({}, {"refine": False}),
    "pfn-ub-instnum": ({}, {"numbers": "gt"}),
    "pfn-ub-instloc": ({}, {"locations": "gt"}),
    # §3.1, text only: the instance net fine-tuned from ImageNet VGG-16 instead of the category net
    "pfn-from-imagenet": ({"from_category": False}, {}),
}
#: The §3.1 text-only row (no printed number; see :func:`text_claims`).
TEXT_ONLY_ROWS = ("pfn-from-imagenet",)
_ALL_TRAINED = tuple(r for r, (tr, _) in ROWS.items() if tr or r == "pfn")
#: Rows whose network is trained at each profile (test-time rows follow "pfn"). The cpu budget
#: (20 min on 2 cores for the PFN pages, pretraining excluded), measured on one core of a shared
#: 2-core machine: the two category nets, six instance nets and the two seed replicates of "PFN"
#: with every evaluation took 19.5 min (an instance net 100-170 s, its evaluation ~5 s once the
#: CRF'd category maps of the val images, ~2 min per category net, are in memory); six more
#: instance nets took 9.3 min more (the page itself ~1 min). About 30 min on one core in all, an
#: estimated ~15 min on two. "w/o instance-level", "separate finetune" (1.5 trainings) and the
#: §3.1 ImageNet-init row stay out and read "not run" (:func:`plan`). The smoke profile runs the
#: cpu set.
_CPU_ROWS = ("pfn", "pfn-alexnet", "pfn-unified", "pfn-offsets2", "pfn-centers2", "pfn-centers-wh4",
             "pfn-centers-topleft4", "pfn-plus-tr-bl10", "pfn-wo-multiscale", "pfn-wo-coordmaps", "pfn-fusing-sum",
             "pfn-wo-category")
TRAINED_ROWS: dict[str, tuple[str, ...]] = {"smoke": _CPU_ROWS, "cpu": _CPU_ROWS, "gpu": _ALL_TRAINED}


def eval_config(profile: Profile | str, row: str = "pfn", seed: int = 0) -> EvalConfig:
    """The evaluation behind one Table 1/2 row (``seed``: of the instance training)."""
    if row not in ROWS:
        raise KeyError(f"no PFN row {row!r}; rows: {', '.join(ROWS)}")
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    tr, te = ROWS[row]
    return EvalConfig(train=instance_config(p, seed=seed, **tr), test=test_settings(p, **te), n_eval=p.eval_subset)


@dataclass(frozen=True)
class PlannedRow:
    """One paper row: its evaluation, or why it is not run at this profile."""

    row_id: str
    config: EvalConfig
    not_run: str = ""


def plan(profile: Profile | str) -> list[PlannedRow]:
    """Every Table 1/2 row (and the §3.1 text-only row) with its config and status."""
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    trained = set(TRAINED_ROWS.get(p.name, _ALL_TRAINED))
    out = []
    for rid, (tr, _) in ROWS.items():
        needs = rid if (tr or rid == "pfn") else "pfn"
        why = "" if needs in trained else (f"not run at the {p.name} profile: its network is not in the budget "
                                           f"(TRAINED_ROWS['{p.name}'])")
        out.append(PlannedRow(rid, eval_config(p, rid), why))
    return out


# --------------------------------------------------------------------------- training
def _category_tensors(sample) -> dict[str, Any]:
    return to_tensors(sample)


def _pfn_tensors(sample, variant: str, frame: str) -> dict[str, Any]:
    """A training sample with PFN's targets computed after augmentation (§3.2)."""
    out = to_tensors(sample)
    t = pfn_instance_targets(sample.instances, variant, frame, crowd=getattr(sample, "crowd", None))  # type: ignore[arg-type]
    out["locations"] = torch.from_numpy(t["locations"])
    out["foreground"] = torch.from_numpy(t["foreground"])
    out["numbers"] = torch.from_numpy(pfn_number_targets(sample.instances, sample.instance_classes, sample.num_classes))
    return out


def _train_config(cfg: Any, ctx: RunContext, steps: int | None = None) -> TrainConfig:
    return TrainConfig(steps=steps or cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed,
                       optimizer=cfg.optimizer, warmup_steps=cfg.warmup_steps,
                       weight_decay=1e-4 if cfg.optimizer == "adam" else 5e-4,
                       checkpoint_every=get_profile(cfg.profile).checkpoint_every,
                       channels_last=not ctx.device.startswith("cuda"))


def _category_loss(model, batch):
    # §3.1: per-pixel cross-entropy on the confidence maps (void ignored)
    return torch.nn.functional.cross_entropy(model(batch["image"]), batch["semantic"].long(), ignore_index=255)


def _eval_subset(dataset: str, profile: str, n_eval: int | None):
    ds = open_dataset(dataset, "val", profile=profile)
    if n_eval is not None and n_eval < len(ds):
        return torch.utils.data.Subset(ds, range(n_eval)), ds
    return ds, ds


def _train_category(cfg: CategoryConfig, ctx: RunContext) -> dict[str, Any]:
    prof = get_profile(cfg.profile)
    train_ds = open_dataset(cfg.dataset, "train", profile=cfg.profile)
    ctx.dataset_fingerprint = dataset_fingerprint_of(train_ds)
    model = DeepLabLargeFOV(train_ds.num_classes, cfg.arch, cfg.width, cfg.fc6_dilation)  # type: ignore[arg-type]
    ctx.notes["init"] = initialise_backbone(model.backbone, cfg.profile, cfg.arch)
    hist = train(model, TensorDataset(train_ds, train_transforms(prof), convert=_category_tensors), _category_loss,
                 _train_config(cfg, ctx), checkpoint_path=ctx.checkpoint_path, device=ctx.device,
                 collate_fn=collate_dicts, desc=cfg.name)
    val, base = _eval_subset(EVAL_SET, cfg.profile, cfg.n_eval)
    metrics = evaluate_category_maps(model, val, base.num_classes, ctx.device, cfg.crf, desc=f"eval {cfg.name}")
    metrics.update(loss_record(hist["losses"]))
    metrics["class_names"] = list(train_ds.class_names)
    return metrics


def run_category(cfg: CategoryConfig, force: bool | None = None) -> Result:
    """Train (or load) one category-level net; its metrics hold the VOC-twin val mean IoU with
    the CRF (``miou``) and without (``miou_nocrf``)."""
    cfg.validate()
    return run_experiment(cfg, _train_category, paper=PAPER, name=cfg.name, profile=cfg.profile, seed=cfg.seed,
                          force=force)


def load_category_model(cfg: CategoryConfig, device: str = "cpu") -> DeepLabLargeFOV:
    res = run_category(cfg)
    model = DeepLabLargeFOV(len(res.metrics["class_names"]), cfg.arch, cfg.width, cfg.fc6_dilation)  # type: ignore[arg-type]
    model.load_state_dict(load_checkpoint(res.path.with_suffix(".pt"), map_location=device)["model"])
    return model.to(device).eval()


def _instance_loss(cfg: InstanceConfig, log: list[tuple[float, float]], numbers: bool, locations: bool = True):
    def loss(model, batch, *, step: int):
        out = model(batch["image"])
        terms = pfn_loss(out, batch["locations"], batch["foreground"], batch["numbers"] if numbers else None,
                         lam=cfg.lam if locations else 0.0, semantic=batch["semantic"] if cfg.unified else None)
        log.append((float(terms["location"].detach()),
                    float(terms["number"].detach()) if "number" in terms else float("nan")))
        return terms["loss"]
    return loss


def _groups(cfg: InstanceConfig):
    """§4.1's two learning rates: the trunk (pre-trained) at ``trunk_lr_scale`` of the new layers'."""
    def groups(m: PFN) -> list[dict[str, Any]]:
        trunk = [p for p in m.backbone.parameters() if p.requires_grad]
        new = [p for p in m.new_parameters() if p.requires_grad]
        return [g for g in ({"params": trunk, "lr": cfg.lr * cfg.trunk_lr_scale}, {"params": new, "lr": cfg.lr})
                if g["params"]]
    return groups


def _train_instance(cfg: InstanceConfig, ctx: RunContext) -> dict[str, Any]:
    prof = get_profile(cfg.profile)
    train_ds = open_dataset(TRAIN_SET, "train", profile=cfg.profile)
    ctx.dataset_fingerprint = dataset_fingerprint_of(train_ds)
    n_obj = train_ds.num_classes - 1
    model = PFN(cfg.net(n_obj))
    if cfg.category is not None:
        # two-stage (§3.2): the trunk starts as the trained category network's
        cat = run_category(cfg.category)
        state = load_checkpoint(cat.path.with_suffix(".pt"), map_location="cpu")["model"]
        model.backbone.load_state_dict({k.removeprefix("backbone."): v for k, v in state.items()
                                        if k.startswith("backbone.")}, strict=True)
        ctx.notes["init"] = {"init": "category net", "category": cfg.category.name,
                             "category_miou_voc_val": round(float(cat.metrics["miou"]), 2),
                             "category_init": (cat.provenance.get("notes", {}).get("init") or {}).get("init", "")}
    else:
        ctx.notes["init"] = initialise_backbone(model.backbone, cfg.profile, cfg.arch)
    data = TensorDataset(train_ds, train_transforms(prof),
                         convert=partial(_pfn_tensors, variant=cfg.location_variant, frame=cfg.frame))
    log: list[tuple[float, float]] = []
    if not cfg.separate:
        hist = train(model, data, _instance_loss(cfg, log, numbers=True), _train_config(cfg, ctx),
                     checkpoint_path=ctx.checkpoint_path, device=ctx.device, collate_fn=collate_dicts,
                     desc=cfg.name, param_groups=_groups(cfg))
        losses = hist["losses"]
    else:
        # "separate finetune": locations first, then the number branch alone (the rest frozen)
        stage1 = ctx.checkpoint_path.with_name(ctx.checkpoint_path.stem + ".stage1.pt")
        h1 = train(model, data, _instance_loss(cfg, log, numbers=False), _train_config(cfg, ctx),
                   checkpoint_path=stage1, device=ctx.device, collate_fn=collate_dicts, desc=f"{cfg.name} (1)",
                   param_groups=_groups(cfg))
        number = {id(p) for p in model.number_parameters()}
        for p in model.parameters():
            p.requires_grad_(id(p) in number)
        h2 = train(model, data, _instance_loss(cfg, log, numbers=True, locations=False),
                   _train_config(cfg, ctx, max(1, cfg.steps // 2)), checkpoint_path=ctx.checkpoint_path,
                   device=ctx.device, collate_fn=collate_dicts, desc=f"{cfg.name} (2)")
        for p in model.parameters():
            p.requires_grad_(True)
        losses = h1["losses"] + h2["losses"]
    rec = loss_record(losses)
    loc = [x for x, _ in log if math.isfinite(x)]
    num = [y for _, y in log if math.isfinite(y)]
    tail = lambda xs: float(np.mean(xs[-max(10, len(xs) // 10):])) if xs else None  # noqa: E731
    return {**rec, "num_classes": train_ds.num_classes, "class_names": list(train_ds.class_names),
            "final_location_loss": tail(loc), "final_number_loss": tail(num),
            "initial_location_loss": float(np.mean(loc[:5])) if loc else None,
            "initial_number_loss": float(np.mean(num[:5])) if num else None}


def run_train(cfg: InstanceConfig, force: bool | None = None) -> Result:
    """Train (or load from the cache) one instance-level net."""
    cfg.validate()
    return run_experiment(cfg, _train_instance, paper=PAPER, name=cfg.name, profile=cfg.profile, seed=cfg.seed,
                          force=force)


def load_instance_model(cfg: InstanceConfig, device: str = "cpu") -> PFN:
    res = run_train(cfg)
    model = PFN(cfg.net(int(res.metrics["num_classes"]) - 1))
    model.load_state_dict(load_checkpoint(res.path.with_suffix(".pt"), map_location=device)["model"])
    return model.to(device).eval()


# --------------------------------------------------------------------------- test stage
@dataclass(frozen=True)
class Prediction:
    """What the nets give for one image: CRF'd category probabilities ``(C + 1, H, W)``
    (float16 to keep a val set in memory), location maps ``(D, H, W)``, numbers ``(C,)``."""

    probs: np.ndarray
    locations: np.ndarray
    numbers: np.ndarray


@torch.no_grad()
def category_probabilities(category: DeepLabLargeFOV, image: np.ndarray, crf: CRFSettings | None,
                           device: str = "cpu") -> np.ndarray:
    """The category map's probabilities ``(C + 1, H, W)`` of one image: DeepLab-LargeFOV's softmax,
    then the dense CRF's marginals (DeepLab-LargeFOV's parameters, module docstring)."""
    probs = score_maps(category, image, device).softmax(0)
    if crf is not None:
        probs = crf_probabilities(probs, image, crf)
    return probs.numpy().astype(np.float16)


@torch.no_grad()
def predict(inst: PFN, image: np.ndarray, category_probs: np.ndarray | None, crf: CRFSettings | None,
            device: str = "cpu") -> Prediction:
    """§3.3's inputs for one image: the category map (``category_probs`` from
    :func:`category_probabilities`, or for "PFN unified" the net's own classifier + CRF), the
    instance locations bilinearly upsampled to the image, and the instance numbers."""
    x, (h, w) = pad_to_multiple(image_tensor(image)[None].to(device), 8)
    out = inst.predict(x)
    if category_probs is None:
        if "semantic" not in out:
            raise ValueError("an instance net without a category head needs a category network's map")
        probs = out["semantic"][0, :, :h, :w].float().cpu().softmax(0)
        if crf is not None:
            probs = crf_probabilities(probs, image, crf)
        category_probs = probs.numpy().astype(np.float16)
    return Prediction(category_probs, out["locations"][0, :, :h, :w].float().cpu().numpy(),
                      out["numbers"][0].float().cpu().numpy())


@dataclass
class ClampRecord:
    """Counts of the §3.3 cluster-number clamps over an evaluation (module docstring)."""

    masks: int = 0  # category masks clustered
    raised_to_one: int = 0  # a class in the map whose number rounds to 0: k = 1
    capped_at_pixels: int = 0  # k larger than the mask's pixels: k = pixels

    def as_dict(self) -> dict[str, int]:
        return {"masks": self.masks, "raised_to_one": self.raised_to_one, "capped_at_pixels": self.capped_at_pixels}


def cluster_counts(labels: np.ndarray, numbers: np.ndarray | None, num_object_classes: int,
                   record: ClampRecord | None = None) -> np.ndarray:
    """k per object class (``(C,)`` float, 0 for classes absent from ``labels``): the predicted
    number rounded half up (τ = 0.5, §3.3), at least 1 for a class the map shows and at most its
    pixel count; each clamp is counted in ``record``."""
    k = np.zeros(num_object_classes)
    ids, counts = np.unique(labels, return_counts=True)
    for c, n in zip(ids.tolist(), counts.tolist()):
        if c == 0 or c == 255:
            continue
        if not 1 <= c <= num_object_classes:
            raise ValueError(f"class {c} in the category map; expected 1..{num_object_classes} (or 0, 255)")
        raw = 1 if numbers is None else int(math.floor(float(numbers[c - 1]) + 0.5))
        kk = min(max(raw, 1), int(n))
        if record is not None:
            record.masks += 1
            record.raised_to_one += int(raw < 1)
            record.capped_at_pixels += int(max(raw, 1) > n)
        k[c - 1] = kk
    return k


@dataclass(frozen=True)
class GroupSteps:
    """The §3.3 test stage of one image, step by step (what Figs. 4 and 5 show).

    ``labels`` the category map (argmax of the CRF'd probabilities); ``refined`` the map after
    the refinement with the instance-number vector (τ = 0.5, the two strategies of §3.3; equal
    to ``labels`` when ``test.refine`` is off or no numbers are given); ``counts`` the clamped
    cluster number per object class (:func:`cluster_counts`); ``instances`` the result.
    """

    labels: np.ndarray
    refined: np.ndarray
    counts: np.ndarray
    instances: Instances


def group_steps(probs: np.ndarray, locations: np.ndarray, numbers: np.ndarray | None, test: TestSettings,
                location_variant: str = "pfn6", frame: str = "absolute", image_id: str = "?",
                record: ClampRecord | None = None, seed: int = 0) -> GroupSteps:
    """:func:`group_image` keeping its intermediate results (:class:`GroupSteps`); the same
    computation, for the figures of §3.3 (Figs. 4 and 5)."""
    probs = np.asarray(probs, dtype=np.float32)
    loc = np.asarray(locations, dtype=np.float32)
    bad = int((~np.isfinite(loc)).sum())
    if bad:
        raise ValueError(f"image {image_id}: {bad} of the predicted instance locations are NaN or infinite; the "
                         "instance network diverged or its checkpoint is damaged: retrain it (FORCE=1)")
    if numbers is not None and not np.isfinite(np.asarray(numbers, dtype=float)).all():
        raise ValueError(f"image {image_id}: the predicted instance numbers are NaN or infinite; retrain the "
                         "instance network (FORCE=1)")
    if loc.shape[0] != len(PFN_LOCATION_CHANNELS[location_variant]):
        raise ValueError(f"image {image_id}: {loc.shape[0]} location channels for variant {location_variant!r}")
    labels = probs.argmax(0)
    refined = labels
    if test.refine and numbers is not None:
        refined = refine_category_map(labels, numbers, test.tau)
    k = cluster_counts(refined, numbers, probs.shape[0] - 1, record)
    out = pfn_group(refined, loc, k, probs, refine=False, sigma=test.sigma, use_coordinates=test.coordinates,
                    n_init=test.n_init, min_cluster_fraction=test.min_cluster_fraction if test.size else 0.0,
                    max_pixels=test.max_pixels, location_variant=location_variant,
                    frame=frame, seed=seed)  # type: ignore[arg-type]
    return GroupSteps(labels, refined, k, out)


def group_image(probs: np.ndarray, locations: np.ndarray, numbers: np.ndarray | None, test: TestSettings,
                location_variant: str = "pfn6", frame: str = "absolute", image_id: str = "?",
                record: ClampRecord | None = None, seed: int = 0) -> Instances:
    """§3.3 on one image: refine the category map with the numbers (unless ``test.refine`` is off),
    cluster each category mask with the clamped counts (:func:`cluster_counts`), drop clusters
    under 0.1% of their mask (unless ``test.size`` is off); score = mean category probability.

    Non-finite locations or numbers are refused, naming ``image_id``; an image whose category map
    has no foreground gives no instances. :func:`group_steps` keeps the intermediate maps.
    """
    return group_steps(probs, locations, numbers, test, location_variant, frame, image_id, record, seed).instances


# Per process, the category maps of one category net and the predictions of one instance net on
# the val images: the test-time rows of a net, and every instance net fine-tuned from the same
# category net, reuse them (the CRF, ~0.7 s per twin image on one core, runs once per category net).
_CATEGORY_MAPS: "OrderedDict[tuple, list[np.ndarray]]" = OrderedDict()
_PREDICTIONS: "OrderedDict[tuple, list[Prediction]]" = OrderedDict()


def _keep(cache: OrderedDict, key: tuple, value: Any, size: int = 1) -> Any:
    """Store ``value`` under ``key``, keeping the ``size`` most recent entries (a val set of maps
    is ~1 MB per image)."""
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)
    return value


def _category_maps(cfg: CategoryConfig, crf: bool, dataset: str, n: int, device: str) -> list[np.ndarray]:
    from tqdm import tqdm

    from ..experiments import config_hash

    key = (config_hash(cfg), crf, dataset, n, data_identity())  # twin and real images never share maps
    if key in _CATEGORY_MAPS:
        _CATEGORY_MAPS.move_to_end(key)
        return _CATEGORY_MAPS[key]
    model = load_category_model(cfg, device)
    val = open_dataset(dataset, "val", profile=cfg.profile)
    maps = [category_probabilities(model, val[i].image, cfg.crf if crf else None, device)
            for i in tqdm(range(n), desc=f"CRF {cfg.name}", disable=not progress_enabled(), leave=False)]
    return _keep(_CATEGORY_MAPS, key, maps, size=2)  # the VGG-16 and the AlexNet category nets


def _predictions(cfg: EvalConfig, device: str, n: int) -> list[Prediction]:
    from tqdm import tqdm

    from ..experiments import config_hash

    key = (config_hash(cfg.train), cfg.test.crf, cfg.dataset, n, data_identity())
    if key in _PREDICTIONS:
        return _PREDICTIONS[key]
    inst = load_instance_model(cfg.train, device)
    cat = cfg.train.category
    maps = _category_maps(cat, cfg.test.crf, cfg.dataset, n, device) if cat is not None else [None] * n
    crf = CRFSettings() if cfg.test.crf else None
    val = open_dataset(cfg.dataset, "val", profile=cfg.train.profile)
    preds = [predict(inst, val[i].image, maps[i], crf, device)
             for i in tqdm(range(n), desc=f"predict {cfg.train.name}", disable=not progress_enabled(), leave=False)]
    return _keep(_PREDICTIONS, key, preds)


def _gt_locations(sample, pred_loc: np.ndarray, variant: str, frame: str) -> np.ndarray:
    t = pfn_instance_targets(sample.instances, variant, frame)  # type: ignore[arg-type]
    return np.where(t["foreground"][None], t["locations"], pred_loc)


def _evaluate(cfg: EvalConfig, ctx: RunContext) -> dict[str, Any]:
    from tqdm import tqdm

    val = open_dataset(cfg.dataset, "val", profile=cfg.train.profile)
    ctx.dataset_fingerprint = dataset_fingerprint_of(val)
    n = len(val) if cfg.n_eval is None else min(cfg.n_eval, len(val))
    t0 = time.perf_counter()
    preds = _predictions(cfg, ctx.device, n)
    t_pred = time.perf_counter() - t0
    names = list(val.class_names)
    ev = SDSEvaluator("sds", classes=range(1, val.num_classes))
    record = ClampRecord()
    n_pred, count_err, count_n = 0, 0.0, 0
    t1 = time.perf_counter()
    for i in tqdm(range(n), desc=f"cluster {cfg.name}", disable=not progress_enabled(), leave=False):
        s = val[i]
        p = preds[i]
        gt_num = pfn_number_targets(s.instances, s.instance_classes, s.num_classes)
        numbers = gt_num if cfg.test.numbers == "gt" else p.numbers
        loc = p.locations if cfg.test.locations == "predicted" else \
            _gt_locations(s, p.locations, cfg.train.location_variant, cfg.train.frame)
        inst = group_image(p.probs, loc, numbers, cfg.test, cfg.train.location_variant, cfg.train.frame,
                           s.image_id, record, seed=i)
        present = (gt_num > 0) | (p.numbers > 0.5)
        count_err += float(np.abs(p.numbers - gt_num)[present].sum())
        count_n += int(present.sum())
        gt = gt_instance_masks(s)
        ev.add(s.image_id, gt, s.instance_classes, inst.masks.numpy(), inst.classes.numpy(), inst.scores.numpy())
        n_pred += len(inst.scores)
    table = ev.compute(VOL_THRESHOLDS)
    ap = {}
    for t in VOL_THRESHOLDS:
        col = table.ap[:, table._index(t)]
        ap[f"{t:g}"] = {names[int(c)]: (None if not np.isfinite(v) else 100 * float(v)) for c, v in zip(table.classes, col)}
        ap[f"{t:g}"]["mean"] = 100 * table.map_at(t)
    vol = {names[int(c)]: (None if not np.isfinite(v) else 100 * float(v))
           for c, v in zip(table.classes, table.per_class_vol())}
    vol["mean"] = 100 * table.ap_vol
    return {"ap": ap, "vol": vol, "n_images": n, "n_predictions": n_pred,
            "n_gt_per_class": {names[int(c)]: int(g) for c, g in zip(table.classes, table.n_gt)},
            "clamps": record.as_dict(), "count_mae": count_err / max(count_n, 1),
            "predict_seconds": round(t_pred, 3), "cluster_seconds": round(time.perf_counter() - t1, 3),
            "class_names": names}


def run_eval(cfg: EvalConfig, force: bool | None = None) -> Result:
    """Evaluate (or load) one row: a trained net (cached) with one test stage."""
    cfg.train.validate()
    cfg.test.validate()
    return run_experiment(cfg, _evaluate, paper=PAPER, name=cfg.name, profile=cfg.train.profile,
                          seed=cfg.train.seed, force=force)


def run_plan(rows: Sequence[PlannedRow]) -> PlanResults:
    """Every runnable row (cached rows load at once); rows not run are left out, a diverged
    training is listed in ``.diverged`` (its rows have no numbers)."""
    # run the rows of one net one after the other, so its predictions are computed once
    first: dict[str, int] = {}
    for i, pr in enumerate(rows):
        first.setdefault(pr.config.train.name, i)
    done: dict[str, Result] = {}
    diverged: dict[str, str] = {}
    for pr in sorted(rows, key=lambda r: first[r.config.train.name]):
        if pr.not_run or pr.config.train.name in diverged:
            if pr.config.train.name in diverged:
                diverged[pr.row_id] = diverged[pr.config.train.name]
            continue
        try:
            done[pr.row_id] = run_eval(pr.config)
        except DivergedError as err:
            diverged[pr.row_id] = diverged[pr.config.train.name] = str(err)
    out = PlanResults({pr.row_id: done[pr.row_id] for pr in rows if pr.row_id in done})
    out.diverged.update({pr.row_id: diverged[pr.row_id] for pr in rows if pr.row_id in diverged})
    return out


def evaluations(profile: Profile | str) -> PlanResults:
    """The results of every row of :func:`plan` that runs at ``profile``."""
    return run_plan(plan(profile))


def seed_runs(profile: Profile | str) -> list[Result]:
    """The main "PFN" row for training seeds ``0 .. profile.seeds_for(PAPER)-1`` (seed 0 is the table's)."""
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    return [run_eval(eval_config(p, "pfn", seed)) for seed in range(p.seeds_for(PAPER))]


# --------------------------------------------------------------------------- tables
def _cells(values: Mapping[str, float | None]) -> dict[str, float | None]:
    return {k: (None if v is None else float(v)) for k, v in values.items() if k != "background"}


def table1_ours(results: Mapping[str, Result]) -> dict[str, dict[str, float | None]]:
    """Table 1: per-class AP^r at 0.5 and its mean for every row that ran (text-only rows left out)."""
    return {rid: _cells(r.metrics["ap"]["0.5"]) for rid, r in results.items() if rid not in TEXT_ONLY_ROWS}


def table2_ours(results: Mapping[str, Result]) -> dict[str, dict[str, float | None]]:
    """Table 2: per-class AP^r_vol (mean over IoU 0.1-0.9) and its mean."""
    from ..papers import TABLES

    rows = {r.id for r in TABLES["liang2015.table2"].rows}
    return {rid: _cells(r.metrics["vol"]) for rid, r in results.items() if rid in rows}


def table3_ours(results: Mapping[str, Result]) -> dict[str, dict[str, float | None]]:
    """Table 3: per-class AP^r at 0.6-0.9 for PFN and PFN Alexnet (rows ``<row>@<iou>``)."""
    return {f"{rid}@{t:g}": _cells(results[rid].metrics["ap"][f"{t:g}"])
            for rid in ("pfn-alexnet", "pfn") if rid in results for t in TABLE3_IOUS}


def _spread(xs: Sequence[float]) -> float:
    return float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0


def noise(runs: Sequence[Result], key: str = "0.5", source: str | None = None) -> Noise:
    """Seed noise of the main "PFN" net: per column (class or mean) the spread over ``runs``
    (trainings with different seeds) of AP^r at IoU ``key`` (``"vol"``: AP^r_vol). The trivial
    predictor returns no instances: AP^r 0 on every column.

    Every claim takes this σ, also those between test-time variants of one net, whose
    differences are paired and so vary less: a conservative band.
    """
    if len(runs) < 2:
        raise ValueError(f"seed noise needs at least two trainings; got {len(runs)}")
    vals = [r.metrics["vol"] if key == "vol" else r.metrics["ap"][key] for r in runs]
    cols = sorted({c for v in vals for c in v if c != "background"})  # sorted: stable outputs
    sigma = {c: _spread([float(v[c]) for v in vals]) for c in cols if all(v.get(c) is not None for v in vals)}
    what = "AP^r_vol" if key == "vol" else f"AP^r at IoU {key}"
    return Noise(sigma=sigma, chance={c: 0.0 for c in cols}, z=t_factor(len(runs)),
                 source=source or (f"σ is the spread of the main PFN net's {what} over {len(runs)} instance trainings with "
                         f"different seeds (the category net fixed; mean σ = {sigma.get('mean', float('nan')):.2f} "
                         "points), applied to every row, also to the test-time rows whose paired differences vary "
                         "less; the trivial predictor returns no instances (AP^r 0)."))


def table3_noise(runs: Sequence[Result]) -> dict[str, Noise]:
    """Per Table 3 row, the seed noise of AP^r at that row's IoU threshold (:func:`noise`)."""
    by_t = {}
    for t in TABLE3_IOUS:
        means = noise(runs, f"{t:g}").sigma.get("mean", float("nan"))
        by_t[t] = means
    text = (f"σ is the spread over {len(runs)} instance trainings with different seeds of the main PFN net's AP^r at "
            "each row's IoU threshold (mean σ " + ", ".join(f"{v:.2f} at {t:g}" for t, v in by_t.items()) +
            " points), applied to both rows; the trivial predictor returns no instances (AP^r 0).")
    return {f"{rid}@{t:g}": noise(runs, f"{t:g}", source=text) for rid in ("pfn-alexnet", "pfn") for t in TABLE3_IOUS}


def provenance_for(results: Mapping[str, Result], runs: Sequence[Result] = (), note: str = ""):
    """Caption provenance: the evaluation images and the summed wall time of every training
    (category and instance nets, counted once) and evaluation behind the page."""
    from ..papers.render import Provenance

    evals = list(results.values()) + [r for r in runs if r not in results.values()]
    if not evals:
        return Provenance(dataset="not run", profile="", note=note)
    first = evals[0]
    prof = first.provenance.get("profile", "cpu")
    seen: dict[str, float] = {}
    for r in evals:
        seen[str(r.path)] = float(r.provenance.get("wall_seconds", 0.0))
    cfgs = {pr.row_id: pr.config for pr in plan(prof)}
    for rid in results:
        tr = cfgs[rid].train
        t = run_train(tr)
        seen[str(t.path)] = float(t.provenance.get("wall_seconds", 0.0))
        if tr.category is not None:
            c = run_category(tr.category)
            seen[str(c.path)] = float(c.provenance.get("wall_seconds", 0.0))
    return Provenance(dataset=f"{dataset_label('voc', 'val')} ({first.metrics['n_images']} images), trained on the "
                              f"{dataset_label('sbd', 'train')}",
                      profile=prof, hardware=first.provenance.get("device", ""), wall_seconds=sum(seen.values()),
                      note=note)


# --------------------------------------------------------------------------- frames
def plan_frame(rows: Sequence[PlannedRow]):
    """Every row, the network it evaluates, its test stage and whether it runs."""
    import pandas as pd

    recs = []
    for pr in rows:
        c = pr.config
        recs.append({"row": pr.row_id, "network": c.train.name,
                     "starts from": (c.train.category.name if c.train.category is not None else
                                     f"stand-in ImageNet {c.train.arch}"),
                     "test stage": c.test.tag, "status": pr.not_run or "run"})
    return pd.DataFrame(recs).set_index("row")


def category_frame(profile: Profile | str):
    """The category nets' VOC-twin val mean IoU, with and without the CRF, beside the paper's
    67.53 (§5.2; reported for VGG-16 only). A diagnostic, not a table of the paper."""
    import pandas as pd

    from ..papers.liang2015 import CATEGORY_MIOU

    p = profile if isinstance(profile, Profile) else get_profile(profile)
    recs = []
    for arch in ("vgg16", "alexnet"):
        cfg = category_config(p, arch)
        r = run_category(cfg)
        init = (r.provenance.get("notes", {}).get("init") or {}).get("init", "")
        recs.append({"network": cfg.name, "initialisation": init, "mean IoU % (CRF)": round(r.metrics["miou"], 2),
                     "mean IoU % (no CRF)": round(r.metrics["miou_nocrf"], 2),
                     "paper mean IoU % (VOC 2012 val)": CATEGORY_MIOU if arch == "vgg16" else None,
                     "final training loss": round(r.metrics["final_loss"], 3)})
    return pd.DataFrame(recs).set_index("network")


def training_frame(results: Mapping[str, Result]):
    """Per trained network behind the rows: the location and number losses at the start and
    the end, the count error on val, and AP^r at 0.5 (did it learn?)."""
    import pandas as pd

    if not results:
        return pd.DataFrame()
    cfgs = {pr.row_id: pr.config for pr in plan(next(iter(results.values())).provenance.get("profile", "cpu"))}
    recs, seen = [], set()
    for rid, r in results.items():
        tr = cfgs[rid].train
        if tr.name in seen:
            continue
        seen.add(tr.name)
        m = run_train(tr).metrics
        rnd = lambda v, d=4: None if v is None else round(float(v), d)  # noqa: E731
        recs.append({"network": tr.name, "first row": rid, "steps": tr.steps,
                     "location loss: first steps": rnd(m.get("initial_location_loss")),
                     "location loss: final": rnd(m.get("final_location_loss")),
                     "number loss: first steps": rnd(m.get("initial_number_loss")),
                     "number loss: final": rnd(m.get("final_number_loss")),
                     "count error on val (mean |g - g*|)": rnd(r.metrics["count_mae"], 3),
                     "AP^r@0.5 %": rnd(r.metrics["ap"]["0.5"]["mean"], 2)})
    return pd.DataFrame(recs).set_index("network")


def clamp_frame(results: Mapping[str, Result]):
    """Per row: category masks clustered and how often the cluster count was clamped."""
    import pandas as pd

    recs = [{"row": rid, **r.metrics["clamps"], "instances predicted": r.metrics["n_predictions"]}
            for rid, r in results.items()]
    return pd.DataFrame(recs).set_index("row")


def seed_table(runs: Sequence[Result]):
    """The main net's numbers for every training seed (what the noise is measured from)."""
    import pandas as pd

    recs = [{"seed": r.provenance.get("seed", 0), "mAP^r@0.5": round(r.metrics["ap"]["0.5"]["mean"], 2),
             "mAP^r@0.7": round(r.metrics["ap"]["0.7"]["mean"], 2), "mAP^r_vol": round(r.metrics["vol"]["mean"], 2)}
            for r in runs]
    return pd.DataFrame(recs).set_index("seed")


#: §3.1's text-only statement, checked when its row runs (it has no printed number, so it is
#: not a claim of the transcribed tables).
TEXT_CLAIMS: tuple[Claim, ...] = (
    Claim("init-from-category-net", "Fine-tuning the instance net from the category net beats fine-tuning it from "
          "ImageNet VGG-16.", "greater", "mean", ("pfn",), ("pfn-from-imagenet",),
          source="§3.1: 'the performance on instance-level segmentation is much better when fine-tuning the "
                 "instance-level network based on the category-level segmentation network compared to the "
                 "original VGG-16'"),
)


def text_claims_frame(results: Mapping[str, Result], noise_: Noise | None, rows: Sequence[PlannedRow] = ()):
    """Verdicts of :data:`TEXT_CLAIMS` on our numbers (``not run`` with the reason when a row is missing)."""
    import pandas as pd

    why = {pr.row_id: pr.not_run for pr in rows if pr.not_run}
    values = {rid: {"mean": r.metrics["ap"]["0.5"]["mean"]} for rid, r in results.items()}
    recs = []
    for c in TEXT_CLAIMS:
        res = check_claim(c, values, noise_)
        missing = [r for r in c.rows_a + c.rows_b if r not in values]
        detail = res.detail if not missing else "; ".join(f"{r}: {why.get(r, 'no result')}" for r in missing)
        recs.append({"claim": c.text, "paper says (where)": c.source, "ours": detail, "verdict": res.verdict})
    return pd.DataFrame(recs)


def train_results(results: Mapping[str, Result]) -> dict[str, Result]:
    """``{network name: training result}`` of the nets behind ``results`` (each once), for
    :func:`~.common.loss_curves_figure`."""
    if not results:
        return {}
    cfgs = {pr.row_id: pr.config for pr in plan(next(iter(results.values())).provenance.get("profile", "cpu"))}
    out: dict[str, Result] = {}
    for rid in results:
        tr = cfgs[rid].train
        if tr.name not in out:
            out[tr.name] = run_train(tr)
    return out


# --------------------------------------------------------------------------- figures
def pipeline_figure(profile: Profile | str, index: int = 0, row: str = "pfn", arrows: int = 150):
    """Fig. 1 on one VOC-twin val image: the image, the category map after the CRF, each
    foreground pixel's predicted instance centre drawn as a vector from the pixel (a subset of
    ``arrows`` pixels), the instances of the §3.3 test stage, and the ground-truth instances."""
    import matplotlib.pyplot as plt

    from ..papers import citation
    from ..viz import add_caption, class_handles, colorize_instances, colorize_labels, masks_to_id_map

    p = profile if isinstance(profile, Profile) else get_profile(profile)
    cfg = eval_config(p, row)
    val = open_dataset(cfg.dataset, "val", profile=p.name)
    s = val[index]
    inst = load_instance_model(cfg.train)
    cat = None if cfg.train.category is None else load_category_model(cfg.train.category)
    crf = cfg.train.category.crf if cfg.train.category is not None else CRFSettings()
    probs = None if cat is None else category_probabilities(cat, s.image, crf)
    pred = predict(inst, s.image, probs, crf)
    out = group_image(pred.probs, pred.locations, pred.numbers, cfg.test, cfg.train.location_variant,
                      cfg.train.frame, s.image_id)
    labels = pred.probs.astype(np.float32).argmax(0)
    h, w = labels.shape
    ys, xs = np.nonzero(labels > 0)
    pick = np.random.default_rng(index).choice(len(ys), size=min(arrows, len(ys)), replace=False) if len(ys) else []
    ys, xs = ys[pick], xs[pick]
    from ..grouping import absolute_locations

    loc = absolute_locations(pred.locations, cfg.train.location_variant, cfg.train.frame)
    names = PFN_LOCATION_CHANNELS[cfg.train.location_variant]
    cx = loc[names.index("cx")] * w if "cx" in names else loc[names.index("dx")] * w
    cy = loc[names.index("cy")] * h if "cy" in names else loc[names.index("dy")] * h
    fig, axes = plt.subplots(1, 5, figsize=(12, 2.4 * h / w + 0.8))
    panels = [(s.image, "image"), (colorize_labels(labels), "category map (CRF)"), (s.image, "predicted centres"),
              (colorize_instances(masks_to_id_map(out.masks.numpy())) if len(out.masks) else
               np.zeros((h, w, 3), np.uint8), f"{len(out.masks)} instances (§3.3)"),
              (colorize_instances(s.instances), "ground-truth instances")]
    for ax, (img, title) in zip(axes, panels):
        ax.imshow(img)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    if len(ys):
        axes[2].quiver(xs + 0.5, ys + 0.5, cx[ys, xs] - xs - 0.5, cy[ys, xs] - ys - 0.5, angles="xy",
                       scale_units="xy", scale=1, width=0.004, color="yellow")
    fig.tight_layout()
    g = ", ".join(f"{s.class_names[c + 1]} {pred.numbers[c]:.1f}" for c in np.flatnonzero(pred.numbers > 0.5)) or "none"
    add_caption(fig, (f"{citation(PAPER)}, Fig. 1 on {dataset_label('voc', 'val')} image {s.image_id} "
                      f"({cfg.train.name}, {p.name} "
                      "profile). From left: the image; the category-level map (DeepLab-LargeFOV, then the dense CRF "
                      "with DeepLab-LargeFOV's parameters) in the VOC palette; for a random subset of "
                      f"{len(ys)} foreground pixels, a yellow vector from the pixel to the instance centre its "
                      "predicted location vector gives (pixels of one instance should point to one place); the "
                      "instances of the test stage (refinement, spectral clustering with the predicted counts, "
                      "size constraint), each in a random colour; the ground-truth instances. Predicted instance "
                      f"numbers above 0.5: {g}. The legend names the classes of the category map."),
                class_handles(sorted(int(c) for c in np.unique(labels)), s.class_names), legend_title="classes")
    return fig


# --------------------------------------------------------------------------- figures of §3.3 and §6
#: §3.3's two refinement strategies (Fig. 4's two rows), keyed by how many classes the
#: instance-number vector predicts present (number > τ).
REFINE_STRATEGIES: dict[str, str] = {
    "several": "several classes above τ, so pixels of every other class become background (Fig. 4, first row)",
    "one": "one class above τ, so pixels of the other object classes become that class (Fig. 4, second row)",
}
#: Box IoU above which two instances of one class count as overlapping (Fig. 7's occlusion case).
OCCLUSION_BOX_IOU = 0.1
#: Fig. 7's small instances: at least one cell of the nets' stride-8 output (8 x 8 pixels)
#: visible, so that a remnant left by an occluder is not taken for a small object.
SMALL_INSTANCE_MIN_PIXELS = 64


def refinement_strategy(numbers: np.ndarray, tau: float = PFN_TAU) -> str | None:
    """Which §3.3 strategy a number vector triggers: ``"several"`` (two or more classes above
    τ), ``"one"`` (exactly one) or ``None`` (none above τ: the map is left as it is)."""
    n = int((np.asarray(numbers, dtype=float) > tau).sum())
    return "several" if n >= 2 else "one" if n == 1 else None


def _eval_predictions(cfg: EvalConfig, device: str = "cpu"):
    """The evaluation's val images and their predictions (:func:`_predictions`, kept per process,
    so the figures of one page compute them once)."""
    val = open_dataset(cfg.dataset, "val", profile=cfg.train.profile)
    n = len(val) if cfg.n_eval is None else min(cfg.n_eval, len(val))
    return val, _predictions(cfg, device, n)


def _gt_numbers(s) -> np.ndarray:
    return pfn_number_targets(s.instances, s.instance_classes, s.num_classes)


def refinement_cases(val, preds: Sequence[Prediction], tau: float = PFN_TAU) -> dict[str, tuple[int, str] | None]:
    """Fig. 4's images by a fixed rule: per strategy (:data:`REFINE_STRATEGIES`), the first
    evaluated val image where it changes at least one pixel of the category map with the
    **predicted** numbers; where no image does, the first where it does with the
    **ground-truth** numbers (Table 1's "upperbound instnum" test stage); ``None`` where
    neither does. Values are ``(index, "predicted" | "gt")``."""
    found: dict[str, tuple[int, str] | None] = {k: None for k in REFINE_STRATEGIES}
    for source in ("predicted", "gt"):
        for i, p in enumerate(preds):
            if all(v is not None for v in found.values()):
                return found
            numbers = p.numbers if source == "predicted" else _gt_numbers(val[i])
            strat = refinement_strategy(numbers, tau)
            if strat is None or found[strat] is not None:
                continue
            labels = p.probs.astype(np.float32).argmax(0)
            if (refine_category_map(labels, numbers, tau) != labels).any():
                found[strat] = (i, source)
    return found


def occlusion_score(s) -> int:
    """Pairs of same-class instances whose boxes overlap (box IoU > :data:`OCCLUSION_BOX_IOU`)."""
    from ..metrics.masks import box_iou_matrix

    c = np.asarray(s.instance_classes)
    if len(c) < 2:
        return 0
    iou = box_iou_matrix(s.boxes, s.boxes)
    same = (c[:, None] == c[None, :]) & np.triu(np.ones((len(c), len(c)), bool), 1)
    return int((iou[same] > OCCLUSION_BOX_IOU).sum())


def _visible_sizes(s) -> np.ndarray:
    """Visible pixels of instances ``1..N``."""
    return np.bincount(s.instances.ravel(), minlength=s.num_instances + 1)[1:s.num_instances + 1]


def failure_cases(val, n: int) -> dict[str, int]:
    """Fig. 7's two images among the first ``n`` val images, by a fixed rule on the ground truth
    (never on the outcome): ``"occlusion"`` the image with the most overlapping same-class pairs
    (:func:`occlusion_score`), ``"small"`` the image holding the smallest instance (fewest
    visible pixels, at least :data:`SMALL_INSTANCE_MIN_PIXELS`; where no instance is that large,
    any); ties go to the first image, and the two differ where the set allows."""
    occ = [occlusion_score(val[i]) for i in range(n)]
    big = np.iinfo(np.int64).max
    smallest = []
    for i in range(n):
        v = _visible_sizes(val[i])
        smallest.append(int(v[v > 0].min()) if (v > 0).any() else big)
    large = [int(v[v >= SMALL_INSTANCE_MIN_PIXELS].min()) if (v >= SMALL_INSTANCE_MIN_PIXELS).any() else big
             for v in (_visible_sizes(val[i]) for i in range(n))]
    if min(large, default=big) < big:
        smallest = large
    first = int(np.argmax(occ))
    order = sorted(range(n), key=lambda i: (smallest[i], i))
    small = next((i for i in order if i != first), order[0])
    return {"occlusion": first, "small": small}


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    u = int((a | b).sum())
    return float((a & b).sum()) / u if u else 0.0


def _n(k: int, what: str) -> str:
    """``"1 pixel"``, ``"2 pixels"``."""
    return f"{k} {what}" + ("" if k == 1 else "s")


def _class_list(numbers: np.ndarray, names: Sequence[str], tau: float = PFN_TAU) -> str:
    on = np.flatnonzero(np.asarray(numbers, dtype=float) > tau)
    return ", ".join(f"{names[c + 1]} {float(numbers[c]):.1f}" for c in on) or "none"


def _panel(ax, img, title: str) -> None:
    ax.imshow(img)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([]), ax.set_yticks([])


def _instance_image(inst: Instances, size: tuple[int, int]) -> np.ndarray:
    from ..viz import colorize_instances, masks_to_id_map

    return colorize_instances(masks_to_id_map(inst.masks.numpy())) if len(inst.masks) else \
        np.zeros((*size, 3), np.uint8)


def _changes(before: np.ndarray, after: np.ndarray, names: Sequence[str]) -> str:
    """"n px: a → b, ..." for the pixels a refinement relabelled."""
    diff = before != after
    pairs = Counter(zip(before[diff].tolist(), after[diff].tolist()))
    return ", ".join(f"{v} px {names[a]} → {names[b]}" for (a, b), v in sorted(pairs.items()))


def refinement_figure(profile: Profile | str, row: str = "pfn", device: str = "cpu"):
    """Fig. 4 on the twin: per §3.3 refinement strategy (τ = 0.5), one VOC-twin val image chosen by
    :func:`refinement_cases`: the image, the category map (CRF), the map refined with the
    instance-number vector, the instances of the test stage on the refined map, the ground truth."""
    import matplotlib.pyplot as plt

    from ..papers import citation
    from ..viz import add_caption, class_handles, colorize_instances, colorize_labels

    p = profile if isinstance(profile, Profile) else get_profile(profile)
    cfg = eval_config(p, row)
    val, preds = _eval_predictions(cfg, device)
    cases = refinement_cases(val, preds, cfg.test.tau)
    shown = [(k, v) for k, v in cases.items() if v is not None]
    none = [k for k, v in cases.items() if v is None]
    rows = shown or [(None, (0, "predicted"))]
    names = val.class_names
    h, w = val[0].size
    fig, axes = plt.subplots(len(rows), 5, figsize=(12, len(rows) * (2.4 * h / w + 0.5)), squeeze=False)
    texts, classes = [], set()
    for r, (strat, (i, source)) in enumerate(rows):
        s, pr = val[i], preds[i]
        numbers = pr.numbers if source == "predicted" else _gt_numbers(s)
        st = group_steps(pr.probs, pr.locations, numbers, cfg.test, cfg.train.location_variant, cfg.train.frame,
                         s.image_id, seed=i)
        classes |= set(np.unique(st.labels).tolist()) | set(np.unique(st.refined).tolist())
        what = "predicted" if source == "predicted" else "ground-truth"
        _panel(axes[r, 0], s.image, f"image {s.image_id}")
        _panel(axes[r, 1], colorize_labels(st.labels), "category map (CRF)")
        _panel(axes[r, 2], colorize_labels(st.refined), f"refined, {what} numbers")
        _panel(axes[r, 3], _instance_image(st.instances, s.size), f"{_n(len(st.instances.masks), 'instance')} (§3.3)")
        _panel(axes[r, 4], colorize_instances(s.instances), "ground-truth instances")
        changed = int((st.labels != st.refined).sum())
        head = f"strategy '{strat}': {REFINE_STRATEGIES[strat]}" if strat else "no strategy changes a pixel"
        texts.append(f"Row {r + 1}, image {s.image_id}: {head}; {what} numbers above τ: {_class_list(numbers, names)}; "
                     f"{changed} pixels relabelled" + (f" ({_changes(st.labels, st.refined, names)})" if changed else ""))
    fig.tight_layout()
    src = {v[1] for _, v in shown}
    rule = (f"Images by a fixed rule (liang2015.refinement_cases): per strategy, the first of the {len(preds)} "
            "evaluated val images where it changes a pixel with the predicted numbers, else the first where it does "
            "with the ground-truth numbers (Table 1's 'upperbound instnum' test stage)")
    notes = []
    if "gt" in src:
        notes.append(f"With the predicted numbers no image of the {len(preds)} is changed by "
                     + " or ".join(f"'{k}'" for k, v in shown if v[1] == "gt"))
    if none:
        notes.append("No image is changed by " + " or ".join(f"'{k}'" for k in none)
                     + " with either number vector" + ("" if shown else "; shown: the first val image"))
    add_caption(fig, (f"{citation(PAPER)}, Fig. 4 (§3.3) on the {dataset_label('voc')} ({cfg.train.name}, "
                      f"{p.name} profile): "
                      "the category map refined with the instance-number vector (τ = 0.5), then clustered into "
                      "instances (random colours). " + ". ".join(texts) + ". " + rule
                      + (". " + ". ".join(notes) if notes else "") + ". Maps in the VOC palette; the legend names "
                      "their classes."),
                class_handles(sorted(int(c) for c in classes), names), legend_title="classes")
    return fig


@dataclass(frozen=True)
class ClusterSizes:
    """Every cluster of the §3.3 test stage before the size constraint, over the evaluated images:
    ``image`` index, ``cls`` class id, ``pixels`` its size and ``mask`` the pixels of its class in
    the refined map; :attr:`dropped` marks those under ``fraction`` of their mask."""

    image: np.ndarray
    cls: np.ndarray
    pixels: np.ndarray
    mask: np.ndarray
    fraction: float

    @property
    def share(self) -> np.ndarray:
        return self.pixels / np.maximum(self.mask, 1)

    @property
    def dropped(self) -> np.ndarray:
        return self.pixels < self.fraction * self.mask


def cluster_sizes(cfg: EvalConfig, val, preds: Sequence[Prediction]) -> ClusterSizes:
    """The clusters of ``cfg``'s test stage with the size constraint off (:func:`group_steps`,
    the evaluation's seeds), each with its mask's size: the constraint drops a cluster of fewer
    than ``min_cluster_fraction`` (0.1%) of its mask's pixels."""
    test = replace(cfg.test, size=False)
    rec: dict[str, list[int]] = {"image": [], "cls": [], "pixels": [], "mask": []}
    for i, pr in enumerate(preds):
        s = val[i]
        st = group_steps(pr.probs, pr.locations, pr.numbers, test, cfg.train.location_variant, cfg.train.frame,
                         s.image_id, seed=i)
        for m, c in zip(st.instances.masks.numpy(), st.instances.classes.tolist()):
            rec["image"].append(i), rec["cls"].append(int(c))
            rec["pixels"].append(int(m.sum())), rec["mask"].append(int((st.refined == c).sum()))
    return ClusterSizes(**{k: np.asarray(v, dtype=np.int64) for k, v in rec.items()},
                        fraction=cfg.test.min_cluster_fraction)


def size_constraint_case(sizes: ClusterSizes) -> tuple[int | None, bool]:
    """Fig. 5's image by a fixed rule: the first evaluated image where the size constraint drops a
    cluster (``(index, True)``); where none does, the image of the cluster smallest against its
    mask (``(index, False)``, first on ties); ``(None, False)`` with no clusters at all."""
    if not len(sizes.image):
        return None, False
    if sizes.dropped.any():
        return int(sizes.image[sizes.dropped].min()), True
    order = np.lexsort((sizes.image, sizes.share))
    return int(sizes.image[order[0]]), False


def size_constraint_figure(profile: Profile | str, row: str = "pfn", device: str = "cpu"):
    """Fig. 5 on the twin: the §3.3 size constraint (clusters under 0.1% of their category mask are
    dropped) on one VOC-twin val image chosen by :func:`size_constraint_case`: the image, the
    refined category map, the clusters without the constraint (dropped ones in white), the
    instances with it, and every cluster's share of its mask over the evaluated images."""
    import matplotlib.pyplot as plt

    from ..papers import citation
    from ..viz import add_caption, class_handles, colorize_labels

    p = profile if isinstance(profile, Profile) else get_profile(profile)
    cfg = eval_config(p, row)
    val, preds = _eval_predictions(cfg, device)
    sizes = cluster_sizes(cfg, val, preds)
    index, drops = size_constraint_case(sizes)
    i = 0 if index is None else index
    s, pr = val[i], preds[i]
    off = group_steps(pr.probs, pr.locations, pr.numbers, replace(cfg.test, size=False), cfg.train.location_variant,
                      cfg.train.frame, s.image_id, seed=i)
    on = group_steps(pr.probs, pr.locations, pr.numbers, cfg.test, cfg.train.location_variant, cfg.train.frame,
                     s.image_id, seed=i)
    here = sizes.image == i
    fig, axes = plt.subplots(1, 5, figsize=(12.5, 2.4 * s.size[0] / s.size[1] + 0.9),
                             gridspec_kw={"width_ratios": [1, 1, 1, 1, 1.3]})
    unconstrained = _instance_image(off.instances, s.size)
    small = [m for m, c in zip(off.instances.masks.numpy(), off.instances.classes.tolist())
             if m.sum() < cfg.test.min_cluster_fraction * (off.refined == c).sum()]
    for m in small:
        unconstrained[m] = 255
    _panel(axes[0], s.image, f"image {s.image_id}")
    _panel(axes[1], colorize_labels(on.refined), "refined category map")
    _panel(axes[2], unconstrained, f"w/o size constraint: {_n(len(off.instances.masks), 'cluster')}")
    _panel(axes[3], _instance_image(on.instances, s.size), f"with it: {_n(len(on.instances.masks), 'instance')}")
    ax = axes[4]
    if len(sizes.image):
        share = 100 * sizes.share
        bins = np.logspace(np.log10(min(share.min(), 100 * sizes.fraction) / 2), np.log10(100), 25)
        ax.hist(share, bins=bins, color="0.5", label="all clusters")
        ax.hist(share[here], bins=bins, color="tab:orange", label=f"image {s.image_id}")
        ax.legend(fontsize=7)
    ax.axvline(100 * sizes.fraction, color="tab:red", ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("cluster, % of its category mask", fontsize=8)
    ax.set_ylabel("clusters", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(f"{len(sizes.image)} clusters, {len(preds)} images", fontsize=8)
    fig.tight_layout()
    n_drop, n_img = int(sizes.dropped.sum()), len(set(sizes.image[sizes.dropped].tolist()))
    if index is None:
        how = f"no image of the {len(preds)} evaluated has a cluster (no foreground in any category map); shown: the first"
    elif drops:
        how = (f"the first of the {len(preds)} evaluated val images where the constraint drops a cluster "
               f"(it drops {len(small)} here, {n_drop} of {len(sizes.image)} clusters in {n_img} images in all)")
    else:
        j = np.flatnonzero(here)[np.argmin(sizes.share[here])]
        how = (f"the constraint drops none of the {len(sizes.image)} clusters of the {len(preds)} evaluated val "
               f"images; shown: the image of the cluster smallest against its mask ({sizes.pixels[j]} of "
               f"{sizes.mask[j]} pixels, {100 * sizes.share[j]:.1f}%; the threshold is {100 * sizes.fraction:g}%, "
               f"{sizes.fraction * sizes.mask[j]:.1f} pixels)")
    add_caption(fig, (f"{citation(PAPER)}, Fig. 5 (§3.3) on the {dataset_label('voc')} ({cfg.train.name}, "
                      f"{p.name} profile): the "
                      f"size constraint drops clusters with fewer pixels than {100 * sizes.fraction:g}% of their "
                      "category mask. From left: the image; the category map refined with the predicted numbers (VOC "
                      "palette); the clusters of the test stage without the constraint (random colours, dropped ones "
                      "in white); the instances with it; the share of its mask of every cluster of the evaluated "
                      f"images before the constraint (log scale; red dashed: the {100 * sizes.fraction:g}% threshold). "
                      f"Image by a fixed rule (liang2015.size_constraint_case): {how}."),
                class_handles(sorted(int(c) for c in np.unique(on.refined)), val.class_names), legend_title="classes")
    return fig


def failure_cases_figure(profile: Profile | str, row: str = "pfn", device: str = "cpu"):
    """Fig. 7 on the twin: PFN on heavy occlusion (first row) and on small instances (second row),
    the VOC-twin val images chosen by :func:`failure_cases` on the ground truth: the image, the
    ground-truth instances, the category map (CRF) and the instances of the §3.3 test stage."""
    import matplotlib.pyplot as plt

    from ..papers import citation
    from ..viz import add_caption, class_handles, colorize_instances, colorize_labels, draw_boxes

    p = profile if isinstance(profile, Profile) else get_profile(profile)
    cfg = eval_config(p, row)
    val, preds = _eval_predictions(cfg, device)
    names = val.class_names
    cases = failure_cases(val, len(preds))
    h, w = val[0].size
    fig, axes = plt.subplots(2, 4, figsize=(10, 2 * (2.4 * h / w + 0.5)), squeeze=False)
    texts, classes = [], set()
    for r, (case, i) in enumerate(cases.items()):
        s, pr = val[i], preds[i]
        st = group_steps(pr.probs, pr.locations, pr.numbers, cfg.test, cfg.train.location_variant, cfg.train.frame,
                         s.image_id, seed=i)
        classes |= set(np.unique(st.labels).tolist())
        got = st.instances.masks.numpy()
        got_cls = st.instances.classes.numpy()
        _panel(axes[r, 0], s.image, f"image {s.image_id}")
        _panel(axes[r, 1], colorize_instances(s.instances), f"ground truth: {_n(s.num_instances, 'instance')}")
        _panel(axes[r, 2], colorize_labels(st.labels), "category map (CRF)")
        _panel(axes[r, 3], _instance_image(st.instances, s.size), f"PFN: {_n(len(got), 'instance')}")
        cls = np.asarray(s.instance_classes)
        if case == "occlusion":
            per = Counter()
            if len(cls) >= 2:
                from ..metrics.masks import box_iou_matrix

                iou = box_iou_matrix(s.boxes, s.boxes)
                for a, b in zip(*np.nonzero(np.triu(iou > OCCLUSION_BOX_IOU, 1))):
                    if cls[a] == cls[b]:
                        per[int(cls[a])] += 1
            if per:
                c = max(per, key=lambda k: (per[k], -k))
                ids = np.flatnonzero(cls == c) + 1
                draw_boxes(axes[r, 1], s.boxes[ids - 1])
                best = [max((_mask_iou(s.instances == k, m) for m, gc in zip(got, got_cls) if gc == c), default=0.0)
                        for k in ids]
                texts.append(f"Row 1 (heavy occlusion), image {s.image_id}: {occlusion_score(s)} pairs of same-class "
                             f"instances with overlapping boxes (box IoU > {OCCLUSION_BOX_IOU:g}), most of class "
                             f"{names[c]} ({_n(per[c], 'pair')}; its {len(ids)} instances boxed in yellow); the predicted "
                             f"{names[c]} number is {float(pr.numbers[c - 1]):.1f} (truth {len(ids)}), the test stage "
                             f"gives {_n(int((got_cls == c).sum()), names[c] + ' instance')}, and "
                             f"{sum(b >= 0.5 for b in best)} of the {len(ids)} are found at mask IoU 0.5 (best IoU "
                             + ", ".join(f"{b:.2f}" for b in best) + ")")
            else:
                texts.append(f"Row 1, image {s.image_id}: no two same-class instances of the {len(preds)} evaluated "
                             "images have overlapping boxes; shown: the first image")
        else:
            v = _visible_sizes(s)
            floor = SMALL_INSTANCE_MIN_PIXELS if (v >= SMALL_INSTANCE_MIN_PIXELS).any() else 1
            if (v > 0).any():
                k = int(np.flatnonzero(v == v[v >= floor].min())[0]) + 1
                c = int(cls[k - 1])
                m = s.instances == k
                draw_boxes(axes[r, 1], s.boxes[k - 1:k])
                best = max((_mask_iou(m, g) for g, gc in zip(got, got_cls) if gc == c), default=0.0)
                texts.append(f"Row 2 (small instances), image {s.image_id}: its smallest instance of at least {floor} "
                             "visible pixels (boxed in yellow), a "
                             f"{names[c]} of {_n(int(v[k - 1]), 'pixel')} ({100 * v[k - 1] / m.size:.2f}% of the image), is "
                             f"labelled {names[c]} on {100 * float((st.labels[m] == c).mean()):.0f}% of its pixels in "
                             f"the category map; the predicted {names[c]} number is {float(pr.numbers[c - 1]):.1f} "
                             f"(truth {int((cls == c).sum())}), and the best {names[c]} instance of the test stage "
                             f"overlaps it at mask IoU {best:.2f}")
            else:
                texts.append(f"Row 2, image {s.image_id}: no evaluated image has an instance")
    fig.tight_layout()
    add_caption(fig, (f"{citation(PAPER)}, Fig. 7 (failure cases) on the {dataset_label('voc')} "
                      f"({cfg.train.name}, {p.name} "
                      "profile): heavy occlusion (first row) and small instances (second row). Instances in random "
                      "colours, the category map in the VOC palette (the legend names its classes). "
                      + ". ".join(texts) + f". Images by a fixed rule on the ground truth of the {len(preds)} "
                      "evaluated val images (liang2015.failure_cases): the most overlapping same-class pairs, and the "
                      f"smallest instance of at least {SMALL_INSTANCE_MIN_PIXELS} visible pixels (one cell of the "
                      "stride-8 output); not chosen for the outcome."),
                class_handles(sorted(int(c) for c in classes), names), legend_title="classes")
    return fig
