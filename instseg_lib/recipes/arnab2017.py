"""Arnab & Torr 2017 as experiments: a semantic subnetwork with a dense CRF, the dynamic
instance CRF on detections, trained piecewise or end to end with the matched loss
(Tables 1, 3, 4; Table 2's "Ours" row; Table 5's "Ours" row on the Cityscapes twin; Figs. 3-6;
a detector-robustness sweep).

The pipeline (Fig. 2):

1. **Semantic subnetwork** (§3.1): a fully convolutional net and a dense CRF whose
   mean-field inference is unrolled as an RNN (:class:`~instseg_lib.models.DenseCRF`,
   CRF-RNN) with the higher-order detection potential, giving the per-pixel class
   probabilities ``Q`` and the recalibrated detection scores. The paper's net is FCN-8s on
   VGG-16 (§3.5); **ours is Wu 2016's FCRN-50** semantic recipe
   (:func:`~.wu2016.semantic_config`, output stride 8, its stand-in ImageNet init), trained
   on the same twin the instance stage uses, and read from Wu's cache. The paper
   pretrains the CRF with the net for semantics; ours starts the semantic CRF at its
   default parameters (Table 4's "before" is the FCRN with that CRF).
2. **Detections** (§3.2, §3.6): the detector stays fixed. Here a **controlled detector**
   derived from the ground truth (:func:`~instseg_lib.detections.controlled_detections`)
   with set rates of misses, confident false positives, box jitter and score noise
   (:data:`DETECTOR`), the same rates for training and test images but independent draws.
   The paper's detector is R-FCN; a trained torchvision detector is not built yet (it
   would be the honest stand-in for the paper's absolute numbers; the controlled one makes
   the robustness claims of Figs. 3-4 measurable). The release's selection follows
   (:class:`~instseg_lib.detections.DetectionConfig`: score >= 0.5, per-class NMS 0.3, at
   most 30).
3. **Dynamic instance CRF** (§3.2-3.3): Box, Global and Shape unaries
   (:class:`~instseg_lib.grouping.InstanceUnaries`, Eq. 2-6; templates by k-means of the
   training masks, :class:`~instseg_lib.grouping.ShapeTemplates`) and a Potts dense CRF
   with the release's parameters (:data:`INSTANCE_CRF`: 3 iterations, θα = 49, θβ = 5,
   θγ = 3, spatial weight 3, bilateral weight 4), position widths scaled to the twin.
4. **Training** (§3.4-3.5): the matched ground-truth loss
   (:func:`~instseg_lib.losses.matched_loss`, recomputed on the current prediction every
   step), batch 1, gradient clipping. *Piecewise*: the semantic subnetwork is frozen and
   only the instance subnetwork learns (w1-w3, the templates, the instance CRF's three
   scalars). *End to end*: everything learns, the semantic subnetwork at a tenth of the
   rate, "with instance segmentation annotations and only the loss detailed in Sec. 3.4".
5. **Evaluation** (§4.2) on the twin's val split: AP^r at 0.5-0.9 and AP^r_vol
   (:class:`~instseg_lib.metrics.SDSEvaluator`), Matching IoU in both readings
   (:class:`~instseg_lib.metrics.MatchingIoUEvaluator`: ``"voc"``, the pixel
   TP / (TP + FP + FN) of [13] that §4.2 names, is the table's column; ``"segment"``, the
   mean matched segment IoU, is reported beside it), and the semantic mean IoU of ``Q``
   (Table 4).

Choices the paper leaves open (ours; the notebooks repeat them):

- **Loss scale and optimiser.** §3.5's SGD rates (1e-8 semantic, 1e-12 instance) and clip
  (l2 norm 1e9) are for a loss summed over pixels. Ours is the pixel mean; the clip is the
  paper's divided by a 500 x 375 VOC image's pixels (:data:`CLIP_NORM`), and the run
  records how often it acted. The optimiser is the book's stable recipe (Adam,
  :func:`~.common.recipe_settings`, rate r): the paper's normalised instance-stage rate
  (1e-12 x ~1.9e5 px ~ 2e-7) moves nothing in a few hundred steps. The instance
  subnetwork (w1-w3, three CRF scalars, the templates) learns at 10 r: at r its weights
  moved by 0.003 in 8 steps. End to end, the semantic subnetwork learns at r / 100: at
  r / 10 the FCRN's mean background probability swung between 0.08 and 0.99 from one
  image to the next within 8 steps (measured on the cpu twin), which is forgetting, not
  fine-tuning.
- **Batch norm.** The FCRN's batch-norm statistics stay frozen in both regimes (batch 1;
  FCN-8s has none).
- **Input.** Whole images, batch 1, a random horizontal flip; no scale augmentation
  (§3.5 states none for the instance stage).
- **Ranking score for AP^r**: the release's mean of ``Q_i(l_k)`` over the instance's
  pixels (``ranking="mean_q"``); ``"detection"`` is the switch. Empty instances are dropped.
- **s_k in Eq. 3** is the detection's score recalibrated by the semantic CRF's
  higher-order detection potential (§3.1, [2];
  :class:`~instseg_lib.models.DetectionPotential`, whose docstring says what is read from
  the authors' release and what is ours): ``Q(Y_d = 1)`` after mean field. The potential's
  weights belong to the semantic subnetwork (frozen piecewise, learned end to end).
- **Unmatched ground truth** in the matched loss is background (missed objects' pixels
  are still supervised); void pixels are ignored.
- **A second match by box IoU** (``box_fallback``): Eq. 7 matches predicted *segments*; a
  label whose segment is empty matches nothing, so a network that starts by labelling
  every pixel background (a weak semantic subnetwork: ``Q(background)`` beats ``Q(l_k) s_k``
  inside the boxes) gets an all-background target, a loss of ~1e-9 and no gradient
  (measured on the smoke twin). Leftover labels and leftover ground truth are therefore
  matched again by the IoU of the detection's box with the instance's box.
- **Which model fills each table**: Table 1 all six rows on the VOC twin; Table 2 "Ours" =
  Box+Global+Shape end to end; Table 3 "Ours" = Box+Global+Shape on the SBD twin, each
  regime; Table 4 "after" = the end-to-end model (piecewise leaves the semantic net
  unchanged by construction). VOC and SBD models are trained separately. Table 5 "Ours" =
  Box+Global+Shape end to end on the Cityscapes twin, on Wu's FCRN-101 (§4.7's ResNet-101),
  label 0 the summed stuff classes (:func:`stuff_ids_for`), AP 100m / 50m not computable.
- **Noise**: ``profile.seeds_for(PAPER)`` trainings of the Box+Global+Shape models (both regimes,
  both twins); every Table 1 row shares that spread.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..data import open_dataset
from ..data.registry import dataset_label
from ..detections import (ControlledDetectorConfig, Detection, DetectionConfig, controlled_detections_for,
                          select_detections)
from ..experiments import Result, RunContext, load_checkpoint, run_experiment
from ..grouping import InstanceUnaries, ShapeTemplates, dynamic_instance_crf
from ..grouping.hough import Instances
from ..grouping.instance_crf import TERMS, background_from_stuff, box_masks, instance_masks, label_classes
from ..losses import matched_loss
from ..metrics import CityscapesEvaluator, MatchingIoUEvaluator, SDSEvaluator, SemanticEvaluator
from ..models import DenseCRF, DetectionPotential, scale_position_widths
from ..models.crf import (DEFAULT_THETA_ALPHA, DEFAULT_THETA_BETA, DEFAULT_THETA_GAMMA, DEFAULT_W_BILATERAL,
                          DEFAULT_W_SPATIAL, REFERENCE_SIZE)
from ..papers.schema import Noise
from ..paths import data_identity
from ..profiles import Profile, get_profile
from ..train import TrainConfig, progress_enabled, train
from . import detector
from . import wu2016 as wu
from .detector import DetectionsConfig
from .common import (dataset_fingerprint_of, flip_boxes, gt_instance_masks, image_tensor, loss_record, recipe_settings,
                     rgb_tensor, t_factor)

PAPER = "arnab2017"
#: Table 1's unary-term sets, by row-id prefix.
TERM_SETS: dict[str, tuple[str, ...]] = {"box": ("box",), "box+global": ("box", "global"),
                                         "box+global+shape": ("box", "global", "shape")}
#: Training regimes, by row-id suffix (Table 1).
REGIMES: dict[str, str] = {"pw": "piecewise", "e2e": "end-to-end"}
#: AP^r thresholds of Table 2 (Tables 1 and 3 print a subset).
AP_THRESHOLDS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)
#: The release's instance CRF (3 mean-field iterations; Potts; widths for ~500 px images).
INSTANCE_CRF: dict[str, float] = {"iterations": 3, "theta_alpha": 49.0, "theta_beta": 5.0, "theta_gamma": 3.0,
                                  "w_spatial": 3.0, "w_bilateral": 4.0}
#: The semantic CRF's starting parameters: the dense CRF module's defaults (pydensecrf's
#: README values; the paper's CRF-RNN values come from its pretraining, not stated).
SEMANTIC_CRF: dict[str, float] = {"iterations": 5, "theta_alpha": DEFAULT_THETA_ALPHA,
                                  "theta_beta": DEFAULT_THETA_BETA, "theta_gamma": DEFAULT_THETA_GAMMA,
                                  "w_spatial": DEFAULT_W_SPATIAL, "w_bilateral": DEFAULT_W_BILATERAL}
#: §3.5's clip (1e9 on a pixel-summed loss) over a 500 x 375 VOC image's pixels, for our pixel-mean loss.
CLIP_NORM = 1e9 / (500 * 375)
#: The controlled detector of training and test (ours, fixed before any run): a tenth of the
#: objects missed, 0.3 confident false positives per image, edges jittered by 5% of the box
#: side, true-positive scores 0.85 +- 0.1. Training draws use seed 1, test draws seed 0.
DETECTOR = ControlledDetectorConfig(miss_rate=0.1, fp_rate=0.3, jitter=0.05, score_noise=0.1, tp_score=0.85)
TRAIN_DETECTOR_SEED = 1


def stuff_ids_for(class_names: Sequence[str]) -> tuple[int, ...] | None:
    """The classes merged into the instance CRF's label 0, or ``None`` where class 0 is background.

    VOC and SBD have a background class, which Eq. 4's label 0 takes. Cityscapes' 19 training
    classes (§4.7) have none: its 11 stuff classes (every class that is not one of the 8
    instance classes) are summed into label 0 (:func:`~instseg_lib.grouping.instance_crf.
    background_from_stuff`).
    """
    from ..data.classes import CITYSCAPES_THING_CLASSES

    names = list(class_names)
    if names and names[0] == "background":
        return None
    return tuple(i for i, n in enumerate(names) if n not in CITYSCAPES_THING_CLASSES)
#: The robustness sweep (new, not in the paper): false positives per image, and box jitter.
SWEEP_FP_RATES: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0)
SWEEP_JITTERS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3)


def _scaled_crf(params: dict[str, float], image_size: float) -> dict[str, float]:
    """Position widths for ``image_size`` px images (the spatial width kept >= 1 px)."""
    ta, tg = scale_position_widths(params["theta_alpha"], params["theta_gamma"], image_size, REFERENCE_SIZE)
    return {**params, "theta_alpha": ta, "theta_gamma": max(tg, 1.0)}


# --------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class ArnabTrainConfig:
    """One instance network (semantic subnetwork + dynamic instance CRF) of Tables 1/3/4."""

    semantic: wu.SemanticConfig
    dataset: str
    terms: tuple[str, ...]
    regime: str  # "pw" | "e2e"
    profile: str
    image_size: int
    steps: int
    lr: float
    optimizer: str
    warmup_steps: int
    #: The instance subnetwork's ~10 scalars and templates learn at 10x the recipe's rate,
    #: the semantic subnetwork (end to end) at 1/100 of it (see the module docstring).
    instance_lr_scale: float = 10.0
    semantic_lr_scale: float = 0.01
    detector: ControlledDetectorConfig = field(default_factory=lambda: replace(DETECTOR, seed=TRAIN_DETECTOR_SEED))
    detection: DetectionConfig = DetectionConfig()
    max_grad_norm: float = CLIP_NORM
    per_class_templates: bool = False
    unmatched: str = "background"
    #: The second, box-IoU match of :func:`~instseg_lib.losses.matched_ground_truth` (ours).
    box_fallback: bool = True
    #: The semantic CRF's higher-order detection potential (§3.1, [2]); its recalibrated
    #: scores are the s_k of Eq. 3 (``recalibrate``) or the raw detector scores are kept.
    detection_potential: bool = True
    recalibrate: bool = True
    seed: int = 0

    @property
    def term_key(self) -> str:
        return "+".join(self.terms)

    @property
    def name(self) -> str:
        seed = f"-seed{self.seed}" if self.seed else ""
        return f"din-{self.dataset}-{self.term_key.replace('+', '_')}-{self.regime}{seed}"

    def validate(self) -> "ArnabTrainConfig":
        if self.term_key not in TERM_SETS:
            raise ValueError(f"terms must be one of Table 1's sets {list(TERM_SETS)}, got {self.terms!r}")
        if self.regime not in REGIMES:
            raise ValueError(f"regime must be one of {list(REGIMES)}, got {self.regime!r}")
        if not 0 < self.semantic_lr_scale <= 1 or not self.instance_lr_scale > 0:
            raise ValueError(f"semantic_lr_scale must be in (0, 1] and instance_lr_scale positive, got "
                             f"{self.semantic_lr_scale}, {self.instance_lr_scale}")
        self.semantic.validate()
        return self


@dataclass(frozen=True)
class ArnabEvalConfig:
    """One evaluation on the twin's val split. ``train=None`` with ``paste_box`` evaluates the
    "paste the box" baseline (each detection's box, scored by the detection)."""

    train: ArnabTrainConfig | None
    dataset: str
    profile: str
    n_eval: int | None
    detector: ControlledDetectorConfig = DETECTOR
    detection: DetectionConfig = DetectionConfig()
    ranking: str = "mean_q"
    paste_box: bool = False
    #: Evaluate the untrained instance subnetwork (w = 1, initial templates and CRF) on
    #: ``train``'s semantic net: Table 4's "before" and a check that training moved something.
    untrained: bool = False
    #: Replace ``Q`` by the ground-truth class map as probabilities (a diagnostic, ours: what
    #: the trained instance subnetwork does with a perfect semantic subnetwork).
    gt_semantic: bool = False

    @property
    def name(self) -> str:
        d = self.detector
        det = f"-m{d.miss_rate:g}-fp{d.fp_rate:g}-j{d.jitter:g}-s{d.shrink:g}".replace(".", "p")
        if self.paste_box:
            return f"eval-pastebox-{self.dataset}{det}"
        base = self.train.name + ("-untrained" if self.untrained else "") + ("-gtsem" if self.gt_semantic else "")
        rank = "" if self.ranking == "mean_q" else f"-{self.ranking}"
        return f"eval-{base}{det}{rank}"


def _arnab_steps(p: Profile) -> int:
    return int(p.train_steps * float(p.extra.get("arnab_steps_factor", 1)))


def semantic_config(profile: Profile | str, dataset: str) -> wu.SemanticConfig:
    """The semantic subnetwork: Wu's FCRN-50 recipe on ``dataset`` (the stand-in for FCN-8s).

    On Cityscapes (§4.7) the paper's semantic network is a ResNet-101 (PSPNet, [52]); ours is
    Wu's FCRN-101, the row of Wu's Table 3 with the same head, so its cache is shared."""
    depth = 101 if dataset == "cityscapes" else 50
    return wu.semantic_config(profile, dataset, depth=depth, output_stride=8, kernel=3, dilation=12)


def train_config(profile: Profile | str, dataset: str = "voc", terms: str = "box+global+shape",
                 regime: str = "e2e", seed: int = 0, **overrides: Any) -> ArnabTrainConfig:
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    rs = recipe_settings(p)
    cfg = ArnabTrainConfig(semantic=semantic_config(p, dataset), dataset=dataset, terms=TERM_SETS[terms],
                           regime=regime, profile=p.name, image_size=p.image_size, steps=_arnab_steps(p),
                           lr=rs["lr"], optimizer=rs["optimizer"], warmup_steps=rs["warmup_steps"], seed=seed)
    return (replace(cfg, **overrides) if overrides else cfg).validate()


def eval_config(train: ArnabTrainConfig | None, profile: Profile | str | None = None, dataset: str | None = None,
                **overrides: Any) -> ArnabEvalConfig:
    p = get_profile(profile if profile is not None else train.profile) if not isinstance(profile, Profile) else profile
    ds = dataset or train.dataset
    return ArnabEvalConfig(train=train, dataset=ds, profile=p.name, n_eval=p.eval_subset, **overrides)


# --------------------------------------------------------------------------- the network
class ArnabNet(nn.Module):
    """Fig. 2: FCRN + semantic dense CRF -> ``Q``; detections -> dynamic instance CRF.

    ``forward(x, rgb, detections)`` takes one normalised image ``x`` (1, 3, H, W), the same
    image in 0..255 (the CRFs' colour features) and the detections, and returns the
    :class:`~instseg_lib.grouping.instance_crf.InstanceCRFOutput` plus ``Q``.
    """

    def __init__(self, semantic: nn.Module, semantic_crf: DenseCRF, unaries: InstanceUnaries,
                 instance_crf: DenseCRF, *, freeze_semantic: bool,
                 detection_potential: DetectionPotential | None = None, recalibrate: bool = True,
                 stuff_ids: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.stuff_ids = stuff_ids
        self.semantic, self.semantic_crf = semantic, semantic_crf
        self.detection_potential = detection_potential
        self.unaries, self.instance_crf = unaries, instance_crf
        self.freeze_semantic, self.recalibrate = freeze_semantic, recalibrate
        if freeze_semantic:
            for prm in self._semantic_parameters():
                prm.requires_grad_(False)

    def _semantic_parameters(self) -> list[nn.Parameter]:
        mods = [self.semantic, self.semantic_crf] + ([self.detection_potential] if self.detection_potential else [])
        return [p for m in mods for p in m.parameters()]

    def train(self, mode: bool = True) -> "ArnabNet":
        super().train(mode)
        # batch 1: keep the FCRN's batch-norm statistics (and, when frozen, all of it) fixed
        for m in self.semantic.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) or self.freeze_semantic:
                m.eval()
        return self

    def semantic_q(self, x: torch.Tensor, rgb: torch.Tensor, detections: Sequence[Detection] = ()
                   ) -> tuple[torch.Tensor, list[Detection]]:
        """``Q`` (1, C, H, W), the semantic CRF's marginals on the FCRN's logits with the
        detection potential (§3.1), and the detections with the scores the instance CRF
        uses: recalibrated (``Q(Y_d = 1)``) or, without the potential or ``recalibrate``, raw."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_semantic):
            ho = None
            if self.detection_potential is not None and detections:
                ho = self.detection_potential.for_image(detections, tuple(x.shape[-2:]))
            q = self.semantic_crf(self.semantic(x), rgb, higher_order=ho)
        if ho is None or not self.recalibrate:
            return q, list(detections)
        scores = ho.scores().detach().clamp(0.0, 1.0).tolist()
        return q, [Detection(d.class_id, s, d.box) for d, s in zip(detections, scores)]

    def instance_q(self, q: torch.Tensor) -> torch.Tensor:
        """``Q`` as the instance CRF reads it: channel 0 the background (the summed stuff
        classes on a label set without one, :func:`stuff_ids_for`)."""
        return q if self.stuff_ids is None else background_from_stuff(q, self.stuff_ids)

    def forward(self, x: torch.Tensor, rgb: torch.Tensor, detections: Sequence[Detection]):
        q, dets = self.semantic_q(x, rgb, detections)
        out = dynamic_instance_crf(self.instance_q(q), dets, self.unaries, image=rgb, crf=self.instance_crf)
        return out, q

    def param_groups(self, lr: float, semantic_lr_scale: float, instance_lr_scale: float = 1.0
                     ) -> list[dict[str, Any]]:
        """The semantic subnetwork and the instance subnetwork, each at its own rate."""
        sem = self._semantic_parameters()
        ids = {id(p) for p in sem}
        rest = [p for p in self.parameters() if id(p) not in ids]
        return [{"params": sem, "lr": lr * semantic_lr_scale}, {"params": rest, "lr": lr * instance_lr_scale}]


def _template_init(dataset: str, profile: str, per_class: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """k-means templates of the training masks (§3.2.3), computed once per process and data source."""
    return _templates_of(dataset, profile, per_class, data_identity())


@functools.lru_cache(maxsize=4)
def _templates_of(dataset: str, profile: str, per_class: bool, data: tuple[str, ...]
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    del data  # only a cache key: the twin's and the real dataset's templates differ
    ds = open_dataset(dataset, "train", profile=profile)
    masks, classes = instance_masks(ds[i] for i in range(len(ds)))
    t = ShapeTemplates.from_masks(masks, classes, num_classes=ds.num_classes, per_class=per_class)
    return t.templates.detach().clone(), t.valid.clone(), t.aspect_centres.clone()


def build_model(cfg: ArnabTrainConfig, num_classes: int, semantic_state: dict | None = None,
                class_names: Sequence[str] | None = None) -> ArnabNet:
    """The network of ``cfg`` (instance subnetwork untrained; the FCRN from ``semantic_state``).
    ``class_names`` decide label 0 (:func:`stuff_ids_for`; ``None``: class 0 is background)."""
    fcrn = wu.build_semantic_model(cfg.semantic, num_classes)
    if semantic_state is not None:
        fcrn.load_state_dict(semantic_state)
    sem_crf = DenseCRF(**_scaled_crf(SEMANTIC_CRF, cfg.image_size), unary_kind="logits")
    templates = None
    if "shape" in cfg.terms:
        tt, valid, centres = _template_init(cfg.dataset, cfg.profile, cfg.per_class_templates)
        templates = ShapeTemplates(tt.clone(), valid, centres, per_class=cfg.per_class_templates)
    unaries = InstanceUnaries(cfg.terms, templates)
    inst_crf = DenseCRF(**_scaled_crf(INSTANCE_CRF, cfg.image_size), unary_kind="energy")
    pot = DetectionPotential(num_classes) if cfg.detection_potential else None
    return ArnabNet(fcrn, sem_crf, unaries, inst_crf, freeze_semantic=cfg.regime == "pw", detection_potential=pot,
                    recalibrate=cfg.recalibrate, stuff_ids=stuff_ids_for(class_names) if class_names else None)


def _semantic_state(cfg: wu.SemanticConfig) -> tuple[dict, Result]:
    res = wu.run_semantic(cfg)
    return load_checkpoint(res.path.with_suffix(".pt"), map_location="cpu")["model"], res


# --------------------------------------------------------------------------- training
def detections_for(sample, detector: ControlledDetectorConfig, selection: DetectionConfig) -> list[Detection]:
    """The controlled detector's output on ``sample``, after the release's selection."""
    return select_detections(controlled_detections_for(sample, detector), selection)


def _flip(sample, flip: bool):
    if not flip:
        return sample
    return sample.replace(image=np.ascontiguousarray(sample.image[:, ::-1]),
                          semantic=np.ascontiguousarray(sample.semantic[:, ::-1]),
                          instances=np.ascontiguousarray(sample.instances[:, ::-1]),
                          boxes=flip_boxes(sample.boxes, sample.size[1]),
                          crowd=None if sample.crowd is None else np.ascontiguousarray(sample.crowd[:, ::-1]))


class _InstanceTrainSet(torch.utils.data.Dataset):
    """Whole images with a random horizontal flip, their detections and matched-loss targets."""

    def __init__(self, base, cfg: ArnabTrainConfig) -> None:
        self.base, self.cfg = base, cfg

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict[str, Any]:
        s = _flip(self.base[i], bool(torch.rand(()) < 0.5))  # torch's seed is set per sample by train()
        valid = s.semantic != 255
        if s.crowd is not None:
            valid &= ~s.crowd
        return {"image": image_tensor(s.image)[None], "rgb": rgb_tensor(s.image)[None],
                "instances": torch.from_numpy(s.instances.astype(np.int64)),
                "instance_classes": torch.as_tensor(np.asarray(s.instance_classes, dtype=np.int64)),
                "valid": torch.from_numpy(valid), "detections": detections_for(s, self.cfg.detector, self.cfg.detection)}


def _collate_one(items: list[dict[str, Any]]) -> dict[str, Any]:
    if len(items) != 1:
        raise ValueError("the instance stage trains with batch 1 (§3.5): D differs per image")
    return items[0]


def _loss(cfg: ArnabTrainConfig):
    def loss(model, batch):
        dets = batch["detections"]
        out, _ = model(batch["image"], batch["rgb"], dets)
        return matched_loss(out.marginals, label_classes(dets), batch["instances"], batch["instance_classes"],
                            batch["valid"], unmatched=cfg.unmatched,
                            label_boxes=[d.box for d in dets] if cfg.box_fallback else None)
    return loss


def _train(cfg: ArnabTrainConfig, ctx: RunContext) -> dict[str, Any]:
    prof = get_profile(cfg.profile)
    train_ds = open_dataset(cfg.dataset, "train", profile=cfg.profile)
    ctx.dataset_fingerprint = dataset_fingerprint_of(train_ds)
    state, sem_res = _semantic_state(cfg.semantic)
    model = build_model(cfg, train_ds.num_classes, state, train_ds.class_names)
    ctx.notes["semantic"] = {"config": cfg.semantic.name, "miou_val": round(float(sem_res.metrics["miou"]), 2)}
    tcfg = TrainConfig(steps=cfg.steps, batch_size=1, lr=cfg.lr, seed=cfg.seed, optimizer=cfg.optimizer,
                       warmup_steps=cfg.warmup_steps, weight_decay=0.0, checkpoint_every=prof.checkpoint_every,
                       max_grad_norm=cfg.max_grad_norm,
                       # a loss on one image swings with its detections: no divergence check on it
                       divergence_factor=0.0)
    groups = lambda m: m.param_groups(cfg.lr, cfg.semantic_lr_scale, cfg.instance_lr_scale)  # noqa: E731
    hist = train(model, _InstanceTrainSet(train_ds, cfg), _loss(cfg), tcfg, checkpoint_path=ctx.checkpoint_path,
                 device=ctx.device, collate_fn=_collate_one, desc=cfg.name, param_groups=groups)
    u = model.unaries
    return {**loss_record(hist["losses"]), "num_classes": train_ds.num_classes,
            "class_names": list(train_ds.class_names), "clipped_steps": hist.get("clipped_steps", 0),
            "unary_weights": [round(float(w), 4) for w in u.weights.detach()],
            "instance_crf": {k: round(float(getattr(model.instance_crf, k).detach()), 4)
                             for k in ("w_bilateral", "w_spatial", "compatibility")},
            "semantic_crf": {k: round(float(getattr(model.semantic_crf, k).detach()), 4)
                             for k in ("w_bilateral", "w_spatial", "compatibility")}}


def run_train(cfg: ArnabTrainConfig, force: bool | None = None) -> Result:
    """Train (or load from the cache) one instance network."""
    cfg.validate()
    return run_experiment(cfg, _train, paper=PAPER, name=cfg.name, profile=cfg.profile, seed=cfg.seed, force=force)


def load_model(cfg: ArnabTrainConfig, device: str = "cpu", trained: bool = True) -> ArnabNet:
    """The trained network of ``cfg`` (``trained=False``: the instance subnetwork as initialised)."""
    state, sem_res = _semantic_state(cfg.semantic)
    model = build_model(cfg, len(sem_res.metrics["class_names"]), state, sem_res.metrics["class_names"])
    if trained:
        res = run_train(cfg)
        model.load_state_dict(load_checkpoint(res.path.with_suffix(".pt"), map_location="cpu")["model"])
    return model.to(device).eval()


# --------------------------------------------------------------------------- evaluation
def paste_box_instances(detections: Sequence[Detection], size: tuple[int, int]) -> Instances:
    """The "paste the box" baseline: each detection's rectangle, scored by the detection."""
    return Instances(box_masks(detections, *size), torch.tensor([d.class_id for d in detections], dtype=torch.long),
                     torch.tensor([d.score for d in detections], dtype=torch.float32))


@torch.no_grad()
def predict(model: ArnabNet, sample, detections: Sequence[Detection], ranking: str = "mean_q",
            device: str = "cpu", q: torch.Tensor | None = None):
    """One image through the network: (InstanceCRFOutput, Q). A given ``q`` (1, C, H, W)
    replaces the semantic subnetwork's (and its detection potential). ``out.detections`` are
    the detections with the scores the instance CRF used (recalibrated, by default)."""
    x = image_tensor(sample.image)[None].to(device)
    rgb = rgb_tensor(sample.image)[None].to(device)
    if q is None:
        q, detections = model.semantic_q(x, rgb, detections)
    else:
        q = q.to(device)
    out = dynamic_instance_crf(model.instance_q(q), detections, model.unaries, image=rgb, crf=model.instance_crf,
                               ranking=ranking)
    return out, q


def true_positive_detections(detections: Sequence[Detection], sample, iou: float = 0.5) -> list[bool]:
    """Whether each detection is a true positive: greedy in score order, box IoU >= ``iou``
    with a not yet taken ground-truth box of its class (the usual detection rule)."""
    from ..metrics.masks import box_iou_matrix

    gt = np.asarray(sample.boxes, dtype=np.float64).reshape(-1, 4)
    gc = np.asarray(sample.instance_classes)
    taken = np.zeros(len(gt), bool)
    out = [False] * len(detections)
    for k in sorted(range(len(detections)), key=lambda j: -detections[j].score):
        d = detections[k]
        if not len(gt):
            break
        ov = box_iou_matrix(np.asarray(d.box)[None], gt)[0]
        ov[(gc != d.class_id) | taken] = -1
        j = int(ov.argmax())
        if ov[j] >= iou:
            taken[j], out[k] = True, True
    return out


def _evaluate(cfg: ArnabEvalConfig, ctx: RunContext) -> dict[str, Any]:
    return _evaluate_with(cfg, ctx, lambda s: detections_for(s, cfg.detector, cfg.detection))


def _evaluate_with(cfg: ArnabEvalConfig, ctx: RunContext, detections_of) -> dict[str, Any]:
    """The evaluation of ``cfg`` with the detections ``detections_of(sample)`` (selected)."""
    from tqdm import tqdm

    val = open_dataset(cfg.dataset, "val", profile=cfg.profile)
    ctx.dataset_fingerprint = dataset_fingerprint_of(val)
    n = len(val) if cfg.n_eval is None else min(cfg.n_eval, len(val))
    model = None if cfg.paste_box else load_model(cfg.train, ctx.device, trained=not cfg.untrained)
    stuff = stuff_ids_for(val.class_names)
    things = [c for c in range(1 if stuff is None else 0, val.num_classes) if stuff is None or c not in stuff]
    ap = SDSEvaluator("sds", classes=things)
    cs = _CityscapesAP(val[0].size) if cfg.dataset == "cityscapes" else None
    m_voc, m_seg = MatchingIoUEvaluator("voc"), MatchingIoUEvaluator("segment")
    sem = SemanticEvaluator(val.num_classes)
    n_det = n_pred = 0
    scores: dict[str, list[float]] = {"raw_tp": [], "raw_fp": [], "used_tp": [], "used_fp": []}
    for i in tqdm(range(n), desc=cfg.name, disable=not progress_enabled(), leave=False):
        s = val[i]
        dets = detections_of(s)
        n_det += len(dets)
        if cfg.paste_box:
            inst = paste_box_instances(dets, s.size)
        else:
            q_gt = wu.ground_truth_probabilities(s.semantic, val.num_classes)[None] if cfg.gt_semantic else None
            out, q = predict(model, s, dets, cfg.ranking, ctx.device, q=q_gt)
            inst = out.instances
            sem.add(s.semantic, q[0].argmax(0).cpu().numpy(), s.image_id)
            for d, used, tp in zip(dets, out.detections, true_positive_detections(dets, s)):
                scores["raw_tp" if tp else "raw_fp"].append(d.score)
                scores["used_tp" if tp else "used_fp"].append(used.score)
        gt = gt_instance_masks(s)
        void = s.semantic == 255
        pm, pc = inst.masks.numpy(), inst.classes.numpy()
        ap.add(s.image_id, gt, s.instance_classes, pm, pc, inst.scores.numpy())
        m_voc.add(s.image_id, gt, s.instance_classes, pm, pc, void=void)
        m_seg.add(s.image_id, gt, s.instance_classes, pm, pc, void=void)
        if cs is not None:
            cs.add(s, gt, pm, pc, inst.scores.numpy())
        n_pred += len(pc)
    table = ap.compute()
    out: dict[str, Any] = {f"ap_r_{t:g}": 100 * float(table.map_at(t)) for t in AP_THRESHOLDS}
    out.update({"ap_r_vol": 100 * float(table.ap_vol), "matching_iou": 100 * float(m_voc.compute().mean),
                "matching_iou_segment": 100 * float(m_seg.compute().mean), "n_images": n,
                "n_detections": n_det, "n_predictions": n_pred})
    if cs is not None:
        out.update(cs.compute())
    if not cfg.paste_box:
        sc = sem.compute()
        out["semantic_miou"] = 100 * float(sc.mean_iou)
        out["detection_scores"] = {k: (float(np.mean(v)) if v else None) for k, v in scores.items()}
        out["detection_counts"] = {"tp": len(scores["raw_tp"]), "fp": len(scores["raw_fp"])}
    return out


class _CityscapesAP:
    """Table 5's metric, Cityscapes AP and AP at 0.5 (:mod:`instseg_lib.metrics.cityscapes`), on
    the twin: train ids mapped to label ids, crowd regions as groups, and the benchmark's
    100-pixel minimum region scaled by the twin's image area against Cityscapes' 2048 x 1024
    (ours: unscaled, it would drop most twin instances, which are a few hundred pixels)."""

    def __init__(self, size: tuple[int, int]) -> None:
        from ..data.classes import cityscapes_train_id_to_id
        from ..metrics.cityscapes import MIN_REGION_SIZE

        self.to_label = cityscapes_train_id_to_id()
        self.min_region = max(1, round(MIN_REGION_SIZE * size[0] * size[1] / (1024 * 2048)))
        self.ev = CityscapesEvaluator(min_region_size=self.min_region)

    def add(self, s, gt: np.ndarray, pm: np.ndarray, pc: np.ndarray, scores: np.ndarray) -> None:
        classes = [self.to_label[int(c)] for c in s.instance_classes]
        groups = []
        if s.crowd is not None and s.crowd.any():  # a crowd region of each class is a Cityscapes group
            for c in np.unique(s.semantic[s.crowd]):
                if int(c) in self.to_label:
                    groups.append((s.crowd & (s.semantic == c), self.to_label[int(c)]))
        masks = np.concatenate([gt.reshape(-1, *s.size), np.stack([m for m, _ in groups])]) if groups else gt
        self.ev.add(s.image_id, masks, classes + [c for _, c in groups],
                    pm, [self.to_label[int(c)] for c in pc], scores,
                    gt_is_group=[False] * len(classes) + [True] * len(groups), void=s.semantic == 255,
                    image_size=s.size)

    def compute(self) -> dict[str, Any]:
        r = self.ev.compute()
        return {"cs_ap": 100 * float(r.AP), "cs_ap50": 100 * float(r.AP50), "cs_min_region_px": self.min_region}


def run_eval(cfg: ArnabEvalConfig, force: bool | None = None) -> Result:
    """Evaluate (or load) one configuration on the val split."""
    if cfg.train is not None:
        cfg.train.validate()
    elif not cfg.paste_box:
        raise ValueError("an evaluation needs a trained config, or paste_box=True")
    seed = 0 if cfg.train is None else cfg.train.seed
    return run_experiment(cfg, _evaluate, paper=PAPER, name=cfg.name, profile=cfg.profile, seed=seed, force=force)


@dataclass(frozen=True)
class TrainedDetectorEvalConfig:
    """An evaluation (``base``) with a trained detector's detections (:mod:`.detector`)
    instead of the controlled detector's: the stand-in for the paper's R-FCN, read back from
    its COCO results file and passed through the same selection."""

    base: ArnabEvalConfig
    detections: DetectionsConfig

    @property
    def name(self) -> str:
        who = "pastebox" if self.base.paste_box else self.base.train.name
        return f"evaldet-{who}-{self.detections.detector.name}"


def trained_detector_eval_config(train: ArnabTrainConfig | None, profile: Profile | str, dataset: str = "voc",
                                 **overrides: Any) -> TrainedDetectorEvalConfig:
    base = eval_config(train, profile, dataset, paste_box=train is None, **overrides)
    det = detector.detector_config(profile)
    return TrainedDetectorEvalConfig(base=base, detections=detector.detections_config(det, dataset, "val"))


def _evaluate_trained_detector(cfg: TrainedDetectorEvalConfig, ctx: RunContext) -> dict[str, Any]:
    res = detector.run_detections(cfg.detections)
    dets = detector.load_detections(cfg.detections, res)
    out = _evaluate_with(cfg.base, ctx, lambda s: select_detections(dets[s.image_id], cfg.base.detection))
    out["detector"] = dict(res.metrics)
    return out


def run_trained_detector_eval(cfg: TrainedDetectorEvalConfig, force: bool | None = None) -> Result:
    """Evaluate (or load) the network, or paste-the-box, with the trained detector's boxes."""
    seed = 0 if cfg.base.train is None else cfg.base.train.seed
    return run_experiment(cfg, _evaluate_trained_detector, paper=PAPER, name=cfg.name, profile=cfg.base.profile,
                          seed=seed, force=force)


# --------------------------------------------------------------------------- tables
T1_COLUMNS = {"AP^r 0.5": "ap_r_0.5", "AP^r 0.7": "ap_r_0.7", "AP^r 0.9": "ap_r_0.9", "AP^r_vol": "ap_r_vol",
              "match IoU": "matching_iou"}
T2_COLUMNS = {**{f"AP^r {t:g}": f"ap_r_{t:g}" for t in AP_THRESHOLDS}, "AP^r_vol": "ap_r_vol"}
T3_COLUMNS = {"AP^r 0.5": "ap_r_0.5", "AP^r 0.7": "ap_r_0.7", "AP^r_vol": "ap_r_vol", "match IoU": "matching_iou"}


def _row_values(res: Result, columns: dict[str, str]) -> dict[str, float]:
    return {col: float(res.metrics[key]) for col, key in columns.items()}


def table2_ours(res: Result, pfn: dict[str, float] | None = None) -> dict[str, dict[str, float]]:
    """Table 2's "Ours" row from the Box+Global+Shape end-to-end evaluation, and the PFN row
    (:func:`pfn_row`) when given."""
    out = {"ours": _row_values(res, T2_COLUMNS)}
    if pfn:
        out["pfn"] = dict(pfn)
    return out


def pfn_row(profile: Profile | str) -> dict[str, float]:
    """Table 2's PFN row of ours: the book's PFN (:mod:`.liang2015`, its main "pfn" row,
    trained on the SBD twin as Liang et al. do) on the same VOC twin val images."""
    from . import liang2015 as pfn

    res = pfn.run_eval(pfn.eval_config(profile, "pfn"))
    ap = res.metrics["ap"]
    return {**{f"AP^r {t:g}": float(ap[f"{t:g}"]["mean"]) for t in AP_THRESHOLDS},
            "AP^r_vol": float(res.metrics["vol"]["mean"])}


def table1_runs(profile: Profile | str) -> dict[str, Result]:
    """Table 1's six rows on the VOC twin (seed 0), keyed by the paper's row ids."""
    return {rid: run_eval(eval_config(cfg)) for rid, cfg in table1_configs(profile).items()}


def table1_configs(profile: Profile | str, dataset: str = "voc") -> dict[str, ArnabTrainConfig]:
    """Table 1's six trainings, keyed by the paper's row ids."""
    return {f"{t}-{r}": train_config(profile, dataset, t, r) for t in TERM_SETS for r in REGIMES}


def noise_configs(profile: Profile | str, dataset: str = "voc") -> list[ArnabTrainConfig]:
    """The Box+Global+Shape trainings of every seed and regime (the noise estimate's)."""
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    return [train_config(p, dataset, "box+global+shape", r, seed=s)
            for r in REGIMES for s in range(p.seeds_for(PAPER))]


def noise_runs(profile: Profile | str, dataset: str = "voc") -> dict[str, list[Result]]:
    """Box+Global+Shape evaluations over ``profile.seeds_for(PAPER)`` trainings, per regime."""
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    return {r: [run_eval(eval_config(train_config(p, dataset, "box+global+shape", r, seed=s)))
                for s in range(p.seeds_for(PAPER))] for r in REGIMES}


def table1_ours(runs: dict[str, Result]) -> dict[str, dict[str, float]]:
    return {rid: _row_values(res, T1_COLUMNS) for rid, res in runs.items()}


def _spread(values: Sequence[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def seed_noise(noise: dict[str, list[Result]], columns: dict[str, str], chance: dict[str, float] | None = None,
               rows: dict[str, str] | None = None) -> Noise | dict[str, Noise]:
    """Seed noise of the Box+Global+Shape trainings (``noise``: regime -> runs over seeds).

    With ``rows`` (row id -> regime) one :class:`Noise` per row, from its own regime's spread:
    piecewise runs train ~10 scalars on a frozen semantic net and spread far less than end-
    to-end runs, so each class of compared configs gets its own σ (a claim across regimes
    takes the larger, :func:`~instseg_lib.papers.schema.noise_for`). Without ``rows``, one
    Noise with the larger spread. Seed noise only: the sampling of the val images is not in it.
    """
    n = min(len(v) for v in noise.values())

    def one(regimes: Sequence[str]) -> Noise:
        sigma = {col: max(_spread([r.metrics[key] for r in noise[g]]) for g in regimes)
                 for col, key in columns.items()}
        if len(regimes) > 1:
            text = (f"every row: the larger of the spreads of Box+Global+Shape trained piecewise and end to end, "
                    f"over {n} trainings with different seeds each (seed noise only, not the sampling of the val "
                    "images).")
        else:
            text = (f"{REGIMES[regimes[0]]} rows: the spread of Box+Global+Shape trained {REGIMES[regimes[0]]} over "
                    f"{n} trainings with different seeds (seed noise only, not the sampling of the val images).")
        return Noise(sigma=sigma, chance=chance or {}, z=t_factor(n), source=text)

    if rows is None:
        return one(list(noise))
    per = {g: one([g]) for g in noise}
    return {rid: per[g] for rid, g in rows.items()}


def table1_rows() -> dict[str, str]:
    """Table 1's row ids -> their training regime."""
    return {f"{t}-{r}": r for t in TERM_SETS for r in REGIMES}


def semantic_chance(profile: Profile | str, dataset: str) -> float:
    """Mean IoU of the all-background predictor on the val images (Table 4's chance level)."""
    from .common import trivial_predictor_scores

    scores, _, _ = trivial_predictor_scores(dataset, profile)
    return float(scores["miou"])


def table3_ours(pw: Result, e2e: Result) -> dict[str, dict[str, float]]:
    return {"ours-pw": _row_values(pw, T3_COLUMNS), "ours-e2e": _row_values(e2e, T3_COLUMNS)}


def table4_runs(profile: Profile | str) -> dict[str, Result]:
    """Semantic mean IoU before (untrained instance subnetwork: the FCRN with the semantic CRF
    at its initial parameters) and after end-to-end instance training, per twin."""
    out = {}
    for ds, key in (("voc", "voc"), ("sbd", "sbd")):
        cfg = train_config(profile, ds, "box+global+shape", "e2e")
        out[f"{key}-before"] = run_eval(eval_config(cfg, untrained=True))
        out[f"{key}-after"] = run_eval(eval_config(cfg))
    return out


def table4_ours(runs: dict[str, Result]) -> dict[str, dict[str, float]]:
    return {rid: {"Mean IoU [%]": float(r.metrics["semantic_miou"])} for rid, r in runs.items()}


def table4_noise(profile: Profile | str) -> dict[str, Noise]:
    out = {}
    for ds in ("voc", "sbd"):
        runs = noise_runs(profile, ds)["e2e"]
        sigma = _spread([r.metrics["semantic_miou"] for r in runs])
        nz = Noise(sigma={"Mean IoU [%]": sigma}, chance={"Mean IoU [%]": semantic_chance(profile, ds)},
                   z=t_factor(len(runs)),
                   source=(f"the spread of the end-to-end model's semantic mean IoU over {len(runs)} trainings; "
                           "chance: the all-background predictor"))
        out[f"{ds}-before"] = out[f"{ds}-after"] = nz
    return out


def runs_frame(runs: dict[str, Result], cols: dict[str, str] | None = None):
    """Every evaluated run's numbers (both Matching IoU readings, detections, predictions), or
    the metrics ``cols`` names (``{column: metric key}``); a metric a run lacks is blank."""
    import pandas as pd

    cols = cols or {**T2_COLUMNS, "match IoU (VOC pixels)": "matching_iou",
                    "match IoU (segments)": "matching_iou_segment", "semantic mIoU": "semantic_miou",
                    "detections": "n_detections", "instances": "n_predictions"}
    recs = []
    for rid, r in runs.items():
        rec = {"run": rid}
        rec.update({c: (None if k not in r.metrics else int(r.metrics[k]) if k.startswith("n_")
                        else round(float(r.metrics[k]), 2)) for c, k in cols.items()})
        recs.append(rec)
    return pd.DataFrame(recs).set_index("run")


def recalibration_frame(runs: dict[str, Result]):
    """Mean detection score of true and false positives (box IoU >= 0.5 with a same-class
    object), as the detector gave it and as the instance CRF used it (recalibrated by the
    detection potential, §3.1): recalibration works when it widens the gap."""
    import pandas as pd

    recs = []
    for rid, r in runs.items():
        sc, n = r.metrics.get("detection_scores"), r.metrics.get("detection_counts")
        if not sc:
            continue
        rnd = lambda v: None if v is None else round(float(v), 3)  # noqa: E731
        recs.append({"run": rid, "true positives": n["tp"], "false positives": n["fp"],
                     "raw score TP": rnd(sc["raw_tp"]), "raw score FP": rnd(sc["raw_fp"]),
                     "used score TP": rnd(sc["used_tp"]), "used score FP": rnd(sc["used_fp"])})
    return pd.DataFrame(recs).set_index("run")


def training_frame(configs: dict[str, ArnabTrainConfig]):
    """Per trained network: loss at start and end, learned w1-w3 and CRF weights, clipped steps."""
    import pandas as pd

    recs = []
    for rid, cfg in configs.items():
        m = run_train(cfg).metrics
        w = m["unary_weights"]
        recs.append({"run": rid, "loss at start": _r3(m["initial_loss"]), "loss at end": _r3(m["final_loss"]),
                     "w1 Box": w[0], "w2 Global": w[1], "w3 Shape": w[2],
                     "inst. CRF bilateral": m["instance_crf"]["w_bilateral"],
                     "inst. CRF spatial": m["instance_crf"]["w_spatial"],
                     "clipped steps": m["clipped_steps"]})
    return pd.DataFrame(recs).set_index("run")


def _r3(v: float | None) -> float | None:
    return None if v is None else round(float(v), 3)


def provenance_for(runs: Sequence[Result], dataset: str, note: str = "",
                   trains: Sequence[ArnabTrainConfig] = ()):
    """Caption provenance: the wall time of the evaluations ``runs``, of the trainings
    ``trains`` behind them and of their semantic subnetworks (each counted once)."""
    from ..papers.render import Provenance

    wall = sum(float(r.provenance.get("wall_seconds", 0.0)) for r in runs)
    seen: set[str] = set()
    for cfg in trains:
        wall += float(run_train(cfg).provenance.get("wall_seconds", 0.0))
        if cfg.semantic.name not in seen:
            seen.add(cfg.semantic.name)
            wall += float(wu.run_semantic(cfg.semantic).provenance.get("wall_seconds", 0.0))
    first = runs[0]
    return Provenance(dataset=f"{dataset_label(dataset, 'val')} ({first.metrics['n_images']} images), "
                              f"{dataset_label(dataset, 'train')}",
                      profile=first.provenance.get("profile", ""), hardware=first.provenance.get("device", ""),
                      wall_seconds=wall, note=note)


# --------------------------------------------------------------------------- robustness sweep
@dataclass(frozen=True)
class SweepConfig:
    """The robustness sweep (new, not in the paper): AP^r_vol and AP^r as the controlled
    detector's false-positive rate and box jitter grow, for a trained network and for the
    "paste the box" baseline, on one pass over the val images."""

    train: ArnabTrainConfig
    dataset: str
    profile: str
    n_eval: int | None
    fp_rates: tuple[float, ...] = SWEEP_FP_RATES
    jitters: tuple[float, ...] = SWEEP_JITTERS
    detector: ControlledDetectorConfig = DETECTOR
    detection: DetectionConfig = DetectionConfig()

    @property
    def name(self) -> str:
        return f"sweep-{self.train.name}"

    def settings(self) -> dict[str, ControlledDetectorConfig]:
        out = {f"fp={v:g}": replace(self.detector, fp_rate=v) for v in self.fp_rates}
        out.update({f"jitter={v:g}": replace(self.detector, jitter=v) for v in self.jitters})
        return out


def sweep_config(profile: Profile | str, dataset: str = "voc") -> SweepConfig:
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    return SweepConfig(train=train_config(p, dataset, "box+global+shape", "e2e"), dataset=dataset, profile=p.name,
                       n_eval=p.eval_subset)


def _sweep(cfg: SweepConfig, ctx: RunContext) -> dict[str, Any]:
    from tqdm import tqdm

    val = open_dataset(cfg.dataset, "val", profile=cfg.profile)
    ctx.dataset_fingerprint = dataset_fingerprint_of(val)
    n = len(val) if cfg.n_eval is None else min(cfg.n_eval, len(val))
    model = load_model(cfg.train, ctx.device)
    settings = cfg.settings()
    ev = {(who, k): SDSEvaluator("sds", classes=range(1, val.num_classes)) for k in settings
          for who in ("ours", "paste-box")}
    for i in tqdm(range(n), desc=cfg.name, disable=not progress_enabled(), leave=False):
        s = val[i]
        gt = gt_instance_masks(s)
        for k, det_cfg in settings.items():
            dets = detections_for(s, det_cfg, cfg.detection)
            # with the detection potential, Q depends on the detections: one semantic CRF per setting
            ours = predict(model, s, dets, device=ctx.device)[0].instances
            for who, inst in (("ours", ours), ("paste-box", paste_box_instances(dets, s.size))):
                ev[(who, k)].add(s.image_id, gt, s.instance_classes, inst.masks.numpy(), inst.classes.numpy(),
                                 inst.scores.numpy())
    out: dict[str, Any] = {"n_images": n, "settings": list(settings)}
    for (who, k), e in ev.items():
        t = e.compute()
        out.setdefault(who, {})[k] = {"ap_r_vol": 100 * float(t.ap_vol), "ap_r_0.5": 100 * float(t.map_at(0.5)),
                                      "ap_r_0.7": 100 * float(t.map_at(0.7))}
    return out


def run_sweep(cfg: SweepConfig, force: bool | None = None) -> Result:
    cfg.train.validate()
    return run_experiment(cfg, _sweep, paper=PAPER, name=cfg.name, profile=cfg.profile, seed=cfg.train.seed,
                          force=force)


def sweep_frame(res: Result, metric: str = "ap_r_vol"):
    """One row per detector setting (in the config's order), ours beside the baseline."""
    import pandas as pd

    rows = []
    for k in res.metrics["settings"]:
        rows.append({"detector": k, "ours": round(res.metrics["ours"][k][metric], 2),
                     "paste the box": round(res.metrics["paste-box"][k][metric], 2)})
    df = pd.DataFrame(rows).set_index("detector")
    df["ours - paste"] = (df["ours"] - df["paste the box"]).round(2)
    return df


def sweep_summary(res: Result, metric: str = "ap_r_vol"):
    """Per axis: how far each method falls from the cleanest to the noisiest detector, and
    whether ours falls less (the robustness claim, read on one run: no noise band)."""
    import pandas as pd

    rows = []
    for axis, name in (("fp", "false positives"), ("jitter", "box jitter")):
        keys = [k for k in res.metrics["settings"] if k.startswith(axis)]
        lo, hi = keys[0], keys[-1]
        ours = res.metrics["ours"][lo][metric] - res.metrics["ours"][hi][metric]
        base = res.metrics["paste-box"][lo][metric] - res.metrics["paste-box"][hi][metric]
        rows.append({"detector error": f"{name}: {lo} -> {hi}", "ours falls by": round(ours, 2),
                     "paste the box falls by": round(base, 2), "ours falls less": bool(ours < base)})
    return pd.DataFrame(rows).set_index("detector error")


def sweep_figure(res: Result, metric: str = "ap_r_vol"):
    """AP^r_vol against false positives per image and against box jitter, ours and the baseline."""
    import matplotlib.pyplot as plt

    from ..papers import citation
    from ..viz import add_caption

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, axis, label in ((axes[0], "fp", "confident false positives per image"),
                            (axes[1], "jitter", "box-edge jitter (fraction of the box side)")):
        keys = [k for k in res.metrics["settings"] if k.startswith(axis)]
        xs = [float(k.split("=")[1]) for k in keys]
        for who, style in (("ours", "o-"), ("paste-box", "s--")):
            ax.plot(xs, [res.metrics[who][k][metric] for k in keys], style,
                    label="dynamic instance CRF (end to end)" if who == "ours" else "paste the box")
        ax.set_xlabel(label)
        ax.set_ylabel(metric.replace("ap_r_vol", "AP^r_vol %").replace("ap_r_", "AP^r@"))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    add_caption(fig, (f"Robustness sweep (ours, not in {citation(PAPER)}): the controlled detector's other rates "
                      f"stay at the tables' setting while one grows; {res.metrics['n_images']} "
                      f"{dataset_label(res.config['dataset'], 'val')} images. "
                      "The paper's claim (Figs. 3-4) is that the instance CRF ignores confident false positives "
                      "and recovers from poorly localised boxes, which 'paste the box' cannot."))
    return fig


# --------------------------------------------------------------------------- figures
def _pick_image(val, min_instances: int = 2, start: int = 0) -> int:
    """The first val image from ``start`` with at least ``min_instances`` objects (else ``start``)."""
    for i in range(start, len(val)):
        if val[i].num_instances >= min_instances:
            return i
    return start


def pipeline_figure(cfg: ArnabTrainConfig, index: int | None = None, device: str = "cpu"):
    """Fig. 2 on one twin val image: the image with its detections, the semantic map, each
    unary term of the first detection, the instance CRF's marginals and the instances."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from ..papers import citation
    from ..viz import add_caption, class_handles, colorize_instances, colorize_labels, draw_boxes

    val = open_dataset(cfg.dataset, "val", profile=cfg.profile)
    i = _pick_image(val) if index is None else index
    s = val[i]
    model = load_model(cfg, device)
    dets = detections_for(s, DETECTOR, DetectionConfig())
    out, q = predict(model, s, dets, device=device)
    with torch.no_grad():
        psi = model.unaries.potentials(q, dets) if dets else {}
    k = 1 if dets else 0
    terms = list(psi)
    ncol = 3 + len(terms) + 1
    fig, axes = plt.subplots(1, ncol, figsize=(2.3 * ncol, 2.3 * s.size[0] / s.size[1] + 0.7))
    axes[0].imshow(s.image)
    if dets:
        draw_boxes(axes[0], np.array([d.box for d in dets]))
    axes[0].set_title(f"image, {len(dets)} detections", fontsize=9)
    sem_map = q[0].argmax(0).cpu().numpy()
    axes[1].imshow(colorize_labels(sem_map)), axes[1].set_title("semantic map (argmax Q)", fontsize=9)
    for j, name in enumerate(terms):
        axes[2 + j].imshow(psi[name][k].cpu().numpy(), cmap="magma", vmin=0)
        axes[2 + j].set_title(f"ψ_{name.capitalize()}, label {k}", fontsize=9)
    j = 2 + len(terms)
    axes[j].imshow(out.marginals[0, k].cpu().numpy(), cmap="magma", vmin=0, vmax=1)
    axes[j].set_title(f"CRF marginal, label {k}", fontsize=9)
    axes[j + 1].imshow(colorize_instances(out.labels.cpu().numpy())), axes[j + 1].set_title("instances", fontsize=9)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    det0 = f"'{s.class_names[dets[0].class_id]}' (score {dets[0].score:.2f})" if dets else "none"
    caption = (f"{citation(PAPER)}, Fig. 2, on {dataset_label(cfg.dataset, 'val')} image {s.image_id} "
               f"({cfg.name}, {cfg.profile} "
               f"profile). From left: the image with the controlled detector's boxes (yellow); the semantic "
               f"subnetwork's class map; the unary terms (Eq. 3-6) of label {k}, the highest-scoring detection, "
               f"{det0} (black 0); the dynamic instance CRF's marginal of that label after mean field; every "
               f"pixel's instance label, one random colour per label (black: background).")
    present = sorted(int(c) for c in np.unique(sem_map) if 0 < c < 255)
    add_caption(fig, caption, class_handles(present, s.class_names) +
                [Patch(facecolor="none", edgecolor="yellow", label="detection box")])
    return fig


def matched_gt_figure(cfg: ArnabTrainConfig, index: int | None = None, device: str = "cpu"):
    """Fig. 6 on one twin val image: the prediction, the ground truth as numbered, and the
    ground truth permuted to the prediction (§3.4, Eq. 7)."""
    import matplotlib.pyplot as plt

    from ..losses import matched_ground_truth
    from ..papers import citation
    from ..viz import add_caption, colorize_instances

    val = open_dataset(cfg.dataset, "val", profile=cfg.profile)
    i = _pick_image(val, 2) if index is None else index
    s = val[i]
    model = load_model(cfg, device)
    dets = detections_for(s, DETECTOR, DetectionConfig())
    out, _ = predict(model, s, dets, device=device)
    valid = torch.from_numpy(s.semantic != 255)
    m = matched_ground_truth(out.labels, label_classes(dets), torch.from_numpy(s.instances.astype(np.int64)),
                             list(s.instance_classes), valid, label_boxes=[d.box for d in dets])
    tgt = m.target.numpy().copy()
    tgt[tgt == 255] = 0
    fig, axes = plt.subplots(1, 4, figsize=(10, 2.5 * s.size[0] / s.size[1] + 0.7))
    panels = ((s.image, "image"), (colorize_instances(out.labels.numpy()), "prediction (labels 1..D)"),
              (colorize_instances(s.instances), "ground truth (its own numbering)"),
              (colorize_instances(tgt), "matched ground truth G*"))
    for ax, (img, title) in zip(axes, panels):
        ax.imshow(img), ax.set_title(title, fontsize=9), ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    n_seg = int((m.iou > 0).sum())
    caption = (f"{citation(PAPER)}, Fig. 6 (§3.4, Eq. 7), on {dataset_label(cfg.dataset, 'val')} image "
               f"{s.image_id} ({cfg.name}). "
               f"Colours follow the label number (the same colour = the same number across panels). The ground "
               f"truth's numbering is arbitrary; G* renumbers each instance with the prediction label it overlaps "
               f"most (maximum-weight bipartite matching on same-class IoU): {n_seg} pairs matched by segment IoU, "
               f"{len(m.iou) - n_seg} by our second, box-IoU match; unmatched instances become background.")
    add_caption(fig, caption)
    return fig


def loss_figure(configs: dict[str, ArnabTrainConfig]):
    """The matched loss per step of each trained network (smoothed as the results keep it)."""
    import matplotlib.pyplot as plt

    from ..papers import citation
    from ..viz import add_caption

    fig, ax = plt.subplots(figsize=(7, 3.2))
    window = 15  # curve points (about an eighth of the run): one image per step swings widely
    for rid, cfg in configs.items():
        curve = run_train(cfg).metrics["loss_curve"]
        if len(curve) >= window:
            xs = np.array([c[0] for c in curve], float)
            ys = np.convolve([c[1] for c in curve], np.ones(window) / window, mode="valid")
            ax.plot(xs[window // 2: window // 2 + len(ys)], ys, label=rid, lw=1.2,
                    ls="-" if cfg.regime == "e2e" else "--")
        elif curve:
            ax.plot([c[0] for c in curve], [c[1] for c in curve], label=rid, lw=1.2,
                    ls="-" if cfg.regime == "e2e" else "--")
    ax.set_xlabel("step (one image each)"), ax.set_ylabel("matched loss"), ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    add_caption(fig, (f"Training loss of the instance networks of {citation(PAPER)} Table 1 on the "
                      f"{dataset_label('voc')} (solid: end "
                      "to end, dashed: piecewise): the pixel-mean cross-entropy against the matched ground truth "
                      "(§3.4), a running mean over 15 of the stored curve's points (about an eighth of the run): "
                      "one image per step, so the raw loss swings with each image's detections."))
    return fig


#: What each of the paper's Figs. 3-5 shows, and the twin setting that tests it here.
FIGURE_CASES: dict[str, dict[str, Any]] = {
    "fig3": {"title": "Fig. 3: a confident false positive",
             "detector": replace(DETECTOR, miss_rate=0.0, fp_rate=2.0, jitter=0.0, score_noise=0.0),
             "models": ("box+global+shape-e2e",),
             "text": ("the controlled detector adds confident false positives (boxes of a random class that overlap "
                      "no object of that class, score 0.7-1); the paper's Fig. 3 shows the instance CRF giving such "
                      "a detection no pixels, where 'paste the box' keeps it")},
    "fig4": {"title": "Fig. 4: a box that cuts its object",
             "detector": replace(DETECTOR, miss_rate=0.0, fp_rate=0.0, jitter=0.0, shrink=0.3, score_noise=0.0),
             "models": ("box-e2e", "box+global-e2e"),
             "text": ("every box keeps 70% of its object's width and height at a random place inside it; the paper's "
                      "Fig. 4 shows the Global term (Eq. 4) labelling the object outside its box, which Box alone "
                      "cannot (ψ_Box is 0 there)")},
    "fig5": {"title": "Fig. 5: occluding instances of one class",
             "detector": replace(DETECTOR, miss_rate=0.0, fp_rate=0.0, jitter=0.0, score_noise=0.0),
             "models": ("box+global-e2e", "box+global+shape-e2e"),
             "text": ("clean boxes on an image with overlapping same-class objects; the paper's Fig. 5 shows the "
                      "Shape term (Eq. 5-6) separating instances that Box+Global merges")},
}


def _overlapping_same_class(s) -> bool:
    b, c = np.asarray(s.boxes).reshape(-1, 4), np.asarray(s.instance_classes)
    from ..metrics.masks import box_iou_matrix

    iou = box_iou_matrix(b, b)
    same = (c[:, None] == c[None, :]) & ~np.eye(len(c), dtype=bool)
    return bool((iou[same] > 0.1).any())


def case_index(val, case: str) -> int:
    """The val image a case is drawn on, by a fixed rule: Figs. 3 and 4 take the first and
    second image with two or more objects, Fig. 5 the first other image where two objects of
    one class have overlapping boxes (each case its own image where the set allows)."""
    multi = [i for i in range(len(val)) if val[i].num_instances >= 2]
    taken = multi[:2]
    if case == "fig3":
        return taken[0] if taken else 0
    if case == "fig4":
        return taken[1] if len(taken) > 1 else (taken[0] if taken else 0)
    overlapping = [i for i in range(len(val)) if _overlapping_same_class(val[i])]
    rest = [i for i in overlapping if i not in taken]
    return (rest or overlapping or [0])[0]


def case_figure(profile: Profile | str, case: str, index: int | None = None, device: str = "cpu"):
    """One of the paper's Figs. 3-5 on a twin val image (:data:`FIGURE_CASES`): the image with the
    detections of the case's detector, the ground truth, "paste the box", and each model's instances."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from ..papers import citation
    from ..viz import add_caption, colorize_instances, draw_boxes, masks_to_id_map

    if case not in FIGURE_CASES:
        raise ValueError(f"case must be one of {list(FIGURE_CASES)}, got {case!r}")
    spec = FIGURE_CASES[case]
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    val = open_dataset("voc", "val", profile=p.name)
    if index is None:
        index = case_index(val, case)
    s = val[index]
    dets = detections_for(s, spec["detector"], DetectionConfig())
    panels = [(s.image, f"image, {len(dets)} detections"), (colorize_instances(s.instances), "ground truth"),
              (colorize_instances(masks_to_id_map(paste_box_instances(dets, s.size).masks.numpy())), "paste the box")]
    counts = []
    for rid in spec["models"]:
        terms, regime = rid.rsplit("-", 1)
        model = load_model(train_config(p, "voc", terms, regime), device)
        out, _ = predict(model, s, dets, device=device)
        counts.append(f"{rid}: {len(out.instances.scores)} of {len(dets)} detections kept pixels")
        panels.append((colorize_instances(out.labels.numpy()), rid))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.6 * s.size[0] / s.size[1] + 0.7))
    for ax, (img, title) in zip(axes, panels):
        ax.imshow(img), ax.set_title(title, fontsize=9), ax.set_xticks([]), ax.set_yticks([])
    if dets:
        draw_boxes(axes[0], np.array([d.box for d in dets]))
    fig.suptitle(spec["title"], fontsize=10)
    fig.tight_layout()
    caption = (f"{citation(PAPER)}, {spec['title']}, on {dataset_label('voc', 'val')} image {s.image_id} "
               f"({p.name} profile): "
               f"{spec['text']}. Instances in random colours (black: background); {'; '.join(counts)}. One image, "
               "chosen by a fixed rule (arnab2017.case_index), not for its outcome.")
    add_caption(fig, caption, [Patch(facecolor="none", edgecolor="yellow", label="detection box")])
    return fig


def settings_frame(profile: Profile | str):
    """The recipe's settings as the code holds them (detector, selection, both CRFs, training)."""
    import pandas as pd

    cfg = train_config(profile)
    d, sel = DETECTOR, cfg.detection
    rows = {
        "controlled detector": (f"miss {d.miss_rate:g}, false positives/image {d.fp_rate:g} (score {d.fp_score[0]:g}-"
                                f"{d.fp_score[1]:g}), edge jitter {d.jitter:g}, TP score {d.tp_score:g} ± {d.score_noise:g}"),
        "selection (release)": f"score >= {sel.score_threshold:g}, NMS {sel.nms_iou:g}, at most {sel.max_detections}",
        "instance CRF (release, scaled)": ", ".join(f"{k} {v:.3g}" for k, v in _scaled_crf(INSTANCE_CRF,
                                                                                         cfg.image_size).items()),
        "semantic CRF (start, scaled)": ", ".join(f"{k} {v:.3g}" for k, v in _scaled_crf(SEMANTIC_CRF,
                                                                                        cfg.image_size).items()),
        "semantic subnetwork": cfg.semantic.name,
        "training": (f"{cfg.steps} steps of one image, {cfg.optimizer} lr {cfg.lr:g} (instance x{cfg.instance_lr_scale:g}, "
                     f"semantic x{cfg.semantic_lr_scale:g} end to end), clip {cfg.max_grad_norm:.3g}"),
    }
    return pd.DataFrame({"setting": list(rows.values())}, index=pd.Index(list(rows), name="part"))


#: Table 5's columns we measure (the rest need a per-instance distance: :data:`TABLE5_NOT_COMPUTABLE`).
T5_COLUMNS = {"AP": "cs_ap", "AP at 0.5": "cs_ap50"}
TABLE5_NOT_COMPUTABLE = (
    "AP 100m and AP 50m count only instances within 100 m and 50 m of the camera; the Cityscapes twin carries no "
    "per-instance distance (no disparity maps), so those columns are not computable on it")


def table5_config(profile: Profile | str) -> ArnabTrainConfig:
    """Table 5's network (§4.7): Box+Global+Shape trained end to end on the Cityscapes twin,
    on Wu's FCRN-101 (:func:`semantic_config`), label 0 the summed stuff classes."""
    return train_config(profile, "cityscapes", "box+global+shape", "e2e")


def table5_runs(profile: Profile | str) -> dict[str, Result]:
    """Our Table 5 row on the Cityscapes twin's val split, and "paste the box" on the same
    detections (the floor any instance CRF should clear)."""
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    return {"ours": run_eval(eval_config(table5_config(p))),
            "paste the box": run_eval(eval_config(None, p, "cityscapes", paste_box=True))}


def table5_frame(runs: dict[str, Result]):
    """Table 5's runs: Cityscapes AP and AP at 0.5 beside AP^r, Matching IoU and the counts."""
    return runs_frame(runs, {"AP": "cs_ap", "AP at 0.5": "cs_ap50", "AP^r 0.5": "ap_r_0.5", "AP^r_vol": "ap_r_vol",
                             "match IoU": "matching_iou", "semantic mIoU": "semantic_miou",
                             "detections": "n_detections", "instances": "n_predictions", "images": "n_images"})


def table5_ours(runs: dict[str, Result]) -> dict[str, dict[str, float | None]]:
    return {"ours": {**_row_values(runs["ours"], T5_COLUMNS), "AP 100m": None, "AP 50m": None}}


def table5_provenance(runs: dict[str, Result], note: str = ""):
    """Caption provenance of Table 5: the twin's val, the scaled minimum region, the columns
    that are not computable, and the wall time of the run and its semantic subnetwork."""
    r = runs["ours"]
    prov = provenance_for([r], "cityscapes", note, trains=[table5_config(r.config["profile"])])
    return replace(prov, dataset=(f"{prov.dataset}; the benchmark's 100-pixel minimum region scaled to the twin's "
                                  f"image area ({r.metrics['cs_min_region_px']} px); {TABLE5_NOT_COMPUTABLE}"))
