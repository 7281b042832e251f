"""Wu, Shen & van den Hengel 2016 as experiments: FCRN semantic nets (Tables 1-5, 7), the
localization net, and Hough grouping into instances (Table 6).

Each config names what it trains; its content hash names its cached result. Configs that
coincide across tables (Table 1's 101-layer k5 d12 net is Table 7's "F" row and Table 2's
"FCRN") are the same config, so they train once and the cache serves every table.

**Scaling to the twin.** The twin's images are a few times smaller than VOC's 500 px, so
the paper's classifier dilations are scaled by ``crop / 500`` (rounded, at least 1):
the classifier's field of view keeps roughly the same *fraction of the crop* as in the
paper. ``twin_dilation`` says what each paper row becomes, and the notebooks print the
mapping. A config whose FoV still exceeds the crop is refused before training (§3.1:
"if the size of FoV is larger than the size of image crops during training, the outer part
of the kernels cannot be properly learned"). K, the number of hard pixels kept per crop by
bootstrapping (Table 7), is used as printed; at our crops it is a larger fraction of the
pixels than in the paper, which the Table 7 notebook points out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable

import numpy as np
import torch

from ..data import open_dataset, train_transforms
from ..data.registry import dataset_label
from ..data.targets import wu_box_targets
from ..experiments import Result, RunContext, load_checkpoint, run_experiment
from ..grouping import hough_group
from ..losses import DEFAULT_BOX_IOU_THRESHOLD, bootstrapped_cross_entropy, weighted_smooth_l1
from ..metrics import SDSEvaluator
from ..models import FCRN, FCRNConfig, FCRNLocalization, field_of_view
from ..papers.schema import Noise, Row
from ..pretrain import init_key, initialise_backbone
from ..profiles import Profile, get_profile
from ..train import DivergedError, TrainConfig, progress_enabled, train
from .common import (PlanResults, TensorDataset, class_frequencies, class_prior_entropy, collate_dicts,
                     dataset_fingerprint_of, gt_instance_masks, evaluate_constant, evaluate_semantic, image_tensor, loss_curves_figure,
                     loss_record, pad_to_multiple, predict_probabilities, recipe_settings, seed_spread, t_factor,
                     to_tensors, trivial_predictor_scores)


PAPER = "wu2016"
#: VOC images are at most 500 x 500 and the paper feeds them whole (§3.1).
PAPER_CROP = 500
#: "coco": the semantic trunk Fathi et al. pre-train on COCO (§3.5) is this recipe on the COCO twin;
#: "sbd": the semantic subnetwork of Arnab & Torr's SBD models (Table 3-4) is this recipe on the SBD twin.
DATASETS = ("voc", "cityscapes", "context", "coco", "sbd")


def _profile_sizes(p: Profile) -> dict[str, Any]:
    """The training sizes and the shared recipe (:func:`recipe_settings`) every Wu config takes
    from the profile table."""
    return {"profile": p.name, "width": p.width, "crop_size": p.crop_size, "steps": p.train_steps,
            "batch_size": p.batch_size, **recipe_settings(p)}


def _train_config(cfg: Any, ctx: RunContext) -> TrainConfig:
    """The loop's settings for a semantic or localization config."""
    return TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed,
                       optimizer=cfg.optimizer, warmup_steps=cfg.warmup_steps,
                       weight_decay=1e-4 if cfg.optimizer == "adam" else 5e-4,
                       checkpoint_every=get_profile(cfg.profile).checkpoint_every,
                       channels_last=not ctx.device.startswith("cuda"))


def _initialise(model: torch.nn.Module, cfg: Any, ctx: RunContext) -> None:
    """ImageNet (or its twin stand-in) for the trunk, as §2.3 starts from ImageNet ResNets."""
    info = initialise_backbone(model.backbone, cfg.profile) if cfg.pretrained else \
        {"init": "random", "pretrained": False, "weights": None, "reason": "pretrained=False"}
    ctx.notes["init"] = info


def _load_trained(model: torch.nn.Module, result: Result, device: str) -> torch.nn.Module:
    """Load the final checkpoint that training wrote beside ``result``."""
    state = load_checkpoint(result.path.with_suffix(".pt"), map_location=device)
    model.load_state_dict(state["model"])
    return model.to(device).eval()


def twin_dilation(paper_dilation: int, crop_size: int) -> int:
    """The paper's classifier dilation scaled to a ``crop_size`` crop (at least 1)."""
    return max(1, int(round(paper_dilation * crop_size / PAPER_CROP)))


# --------------------------------------------------------------------------- semantic nets
@dataclass(frozen=True)
class SemanticConfig:
    """One FCRN semantic segmentation run (Tables 1, 3, 5, 7; §2.3)."""

    dataset: str
    depth: int
    output_stride: int
    kernel: int
    paper_dilation: int
    bootstrap_k: int  # 0: plain cross-entropy (Table 7 "F")
    profile: str
    width: int
    crop_size: int
    steps: int
    batch_size: int
    lr: float
    optimizer: str
    warmup_steps: int
    n_eval: int | None
    seed: int = 0
    pretrained: bool = True
    #: The stand-in pretraining this run starts from (its config hash), so that a changed
    #: pretraining invalidates the cached fine-tuned results (``pretrain.init_key``).
    init: str = ""

    @property
    def dilation(self) -> int:
        return twin_dilation(self.paper_dilation, self.crop_size)

    @property
    def name(self) -> str:
        bs = f"-bs{self.bootstrap_k}" if self.bootstrap_k else ""
        seed = f"-seed{self.seed}" if self.seed else ""
        return (f"fcrn{self.depth}-{self.dataset}-os{self.output_stride}-k{self.kernel}"
                f"-d{self.paper_dilation}{bs}{seed}")

    def fcrn(self, num_classes: int) -> FCRNConfig:
        # The trunk's initialisation is the recipe's job (_initialise), not the model's.
        return FCRNConfig(depth=self.depth, output_stride=self.output_stride, kernel=self.kernel,
                          dilation=self.dilation, width=self.width, num_classes=num_classes)

    def validate(self) -> "SemanticConfig":
        """Refuse impossible settings before any training (raises ``ValueError``)."""
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; use one of {DATASETS}")
        self.fcrn(2).validate(self.crop_size)
        return self


def semantic_config(profile: Profile | str, dataset: str, depth: int = 50, output_stride: int = 8,
                    kernel: int = 3, dilation: int = 12, bootstrap_k: int = 0, **overrides: Any
                    ) -> SemanticConfig:
    """A semantic config with sizes from the profile table."""
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    cfg = SemanticConfig(dataset=dataset, depth=depth, output_stride=output_stride, kernel=kernel,
                         paper_dilation=dilation, bootstrap_k=bootstrap_k, n_eval=p.eval_subset,
                         init=init_key(p, depth), **_profile_sizes(p))
    return replace(cfg, **overrides) if overrides else cfg


def config_from_row(row: Row, profile: Profile | str, dataset: str, bootstrap_k: int = 0) -> SemanticConfig:
    """The config of a Table 1/3/7 row (its Depth, Resolution, Kernel and Dilation cells)."""
    c = row.cells
    stride = int(str(c["Resolution"]).split("/")[1])
    bs = c.get("Bs.", "F")
    k = bootstrap_k if bs in (None, "F") else int(bs)
    return semantic_config(profile, dataset, int(c["Depth"]), stride, int(c["Kernel"]), int(c["Dilation"]), k)


def _semantic_loss(k: int):
    def loss(model, batch):
        return bootstrapped_cross_entropy(model(batch["image"]), batch["semantic"], k=k or None)
    return loss


def build_semantic_model(cfg: SemanticConfig, num_classes: int) -> FCRN:
    return FCRN(cfg.fcrn(num_classes))


def _train_semantic(cfg: SemanticConfig, ctx: RunContext) -> dict[str, Any]:
    cfg.validate()
    prof = get_profile(cfg.profile)
    train_ds = open_dataset(cfg.dataset, "train", profile=cfg.profile)
    val_ds = open_dataset(cfg.dataset, "val", profile=cfg.profile)
    if cfg.n_eval is not None and cfg.n_eval < len(val_ds):
        val_ds = torch.utils.data.Subset(val_ds, range(cfg.n_eval))
    ctx.dataset_fingerprint = dataset_fingerprint_of(train_ds)
    num_classes = train_ds.num_classes
    model = build_semantic_model(cfg, num_classes)
    _initialise(model, cfg, ctx)
    ctx.notes["twin_dilation"] = cfg.dilation
    ctx.notes["twin_fov"] = field_of_view(cfg.kernel, cfg.dilation, cfg.output_stride)
    tcfg = _train_config(cfg, ctx)
    data = TensorDataset(train_ds, train_transforms(prof))
    hist = train(model, data, _semantic_loss(cfg.bootstrap_k), tcfg, checkpoint_path=ctx.checkpoint_path,
                 device=ctx.device, collate_fn=collate_dicts, desc=cfg.name)
    metrics = evaluate_semantic(model, val_ds, num_classes, ctx.device, desc=f"eval {cfg.name}")
    metrics.update(loss_record(hist["losses"]))
    metrics["class_names"] = list(train_ds.class_names)
    return metrics


def run_semantic(cfg: SemanticConfig, force: bool | None = None) -> Result:
    """Train (or load from the cache) and evaluate one semantic FCRN."""
    cfg.validate()
    return run_experiment(cfg, _train_semantic, paper=PAPER, name=cfg.name, profile=cfg.profile,
                          seed=cfg.seed, force=force)


def load_semantic_model(cfg: SemanticConfig, device: str = "cpu") -> FCRN:
    """The trained model of ``cfg`` (trains it first if its result is not cached)."""
    res = run_semantic(cfg)
    return _load_trained(build_semantic_model(cfg, len(res.metrics["class_names"])), res, device)


SEMANTIC_COLUMNS = {"Pixel acc. %": "pixel_acc", "Mean acc. %": "mean_acc", "Mean IoU %": "miou"}


def semantic_ours(results: dict[str, Result]) -> dict[str, dict[str, float]]:
    """``{row_id: {column: value}}`` for the three-score tables (1, 3, 5, 7)."""
    return {rid: {col: r.metrics[key] for col, key in SEMANTIC_COLUMNS.items()} for rid, r in results.items()}


def per_class_ours(result: Result, columns: Iterable[str]) -> dict[str, float | None]:
    """Per-class IoU by class name, plus ``mean`` (Tables 2, 4); None for classes the twin lacks."""
    names = result.metrics["class_names"]
    iou = dict(zip(names, result.metrics["per_class_iou"]))
    out: dict[str, float | None] = {}
    for col in columns:
        out[col] = result.metrics["miou"] if col == "mean" else iou.get(col)
    return out


# --------------------------------------------------------------------------- localization net
@dataclass(frozen=True)
class LocalizationConfig:
    """The localization net of §2.1: class-wise (dy, dx, h, w) per pixel, smooth-L1."""

    dataset: str
    depth: int
    bootstrap: bool  # drop pixels whose predicted box already has IoU >= 0.7 with the truth (§2.2)
    weighted: bool  # one loss weight per instance from its box size (§2.1)
    profile: str
    width: int
    crop_size: int
    steps: int
    batch_size: int
    lr: float
    optimizer: str
    warmup_steps: int
    kernel: int = 3
    paper_dilation: int = 12
    seed: int = 0
    pretrained: bool = True
    #: The stand-in pretraining this run starts from (its config hash), so that a changed
    #: pretraining invalidates the cached fine-tuned results (``pretrain.init_key``).
    init: str = ""

    @property
    def name(self) -> str:
        seed = f"-seed{self.seed}" if self.seed else ""
        return (f"loc{self.depth}-{self.dataset}{'-bs' if self.bootstrap else ''}{'-wl' if self.weighted else ''}"
                f"{seed}")

    def fcrn(self, num_classes: int) -> FCRNConfig:
        return FCRNConfig(depth=self.depth, output_stride=8, kernel=self.kernel,
                          dilation=twin_dilation(self.paper_dilation, self.crop_size), width=self.width,
                          num_classes=num_classes)


def localization_config(profile: Profile | str, depth: int = 50, bootstrap: bool = False,
                        weighted: bool = False, dataset: str = "voc", **overrides: Any) -> LocalizationConfig:
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    cfg = LocalizationConfig(dataset=dataset, depth=depth, bootstrap=bootstrap, weighted=weighted,
                             init=init_key(p, depth), **_profile_sizes(p))
    return replace(cfg, **overrides) if overrides else cfg


def _with_box_targets(sample) -> dict[str, Any]:
    out = to_tensors(sample)
    t = wu_box_targets(sample.instances)
    out["offsets"] = torch.from_numpy(t["offsets"])
    out["weight"] = torch.from_numpy(t["weight"])
    out["valid"] = torch.from_numpy(t["valid"] & (sample.semantic != 255))
    return out


def _localization_loss(cfg: LocalizationConfig):
    def loss(model, batch):
        weight = batch["weight"] if cfg.weighted else torch.ones_like(batch["weight"])
        return weighted_smooth_l1(model(batch["image"]), batch["offsets"], weight, batch["valid"],
                                  labels=batch["semantic"],
                                  iou_threshold=DEFAULT_BOX_IOU_THRESHOLD if cfg.bootstrap else None)
    return loss


def _train_localization(cfg: LocalizationConfig, ctx: RunContext) -> dict[str, Any]:
    prof = get_profile(cfg.profile)
    train_ds = open_dataset(cfg.dataset, "train", profile=cfg.profile)
    ctx.dataset_fingerprint = dataset_fingerprint_of(train_ds)
    model = FCRNLocalization(cfg.fcrn(train_ds.num_classes))
    _initialise(model, cfg, ctx)
    tcfg = _train_config(cfg, ctx)
    data = TensorDataset(train_ds, train_transforms(prof), convert=_with_box_targets)
    hist = train(model, data, _localization_loss(cfg), tcfg, checkpoint_path=ctx.checkpoint_path,
                 device=ctx.device, collate_fn=collate_dicts, desc=cfg.name)
    return {**loss_record(hist["losses"]), "num_classes": train_ds.num_classes}


def run_localization(cfg: LocalizationConfig, force: bool | None = None) -> Result:
    cfg.fcrn(2).validate(cfg.crop_size)
    return run_experiment(cfg, _train_localization, paper=PAPER, name=cfg.name, profile=cfg.profile,
                          seed=cfg.seed, force=force)


def load_localization_model(cfg: LocalizationConfig, device: str = "cpu") -> FCRNLocalization:
    res = run_localization(cfg)
    return _load_trained(FCRNLocalization(cfg.fcrn(int(res.metrics["num_classes"]))), res, device)


# --------------------------------------------------------------------------- instances (Table 6)
@dataclass(frozen=True)
class InstanceConfig:
    """Semantic net (or ground-truth maps: the §3.2 pilot) + localization net + grouping."""

    localization: LocalizationConfig
    semantic: SemanticConfig | None  # None: ground-truth semantic score maps (pilot)
    top_n: int = 1
    nms_iou: float = 0.5
    region_nms_iou: float = 0.5
    min_size: int = 4
    n_eval: int | None = None

    @property
    def name(self) -> str:
        sem = "gtsem" if self.semantic is None else self.semantic.name
        return f"inst-{self.localization.name}-{sem}"


def ground_truth_probabilities(semantic: np.ndarray, num_classes: int) -> torch.Tensor:
    """One-hot score maps from a ground-truth class map (void counts as background)."""
    sem = torch.from_numpy(semantic.astype(np.int64))
    sem = torch.where(sem == 255, torch.zeros_like(sem), sem)
    return torch.nn.functional.one_hot(sem, num_classes).permute(2, 0, 1).float()


@torch.no_grad()
def predict_instances(sem_model, loc_model, sample, cfg: InstanceConfig, device: str):
    """§2.1 steps 1-6 on one image: score maps, transform maps, Hough/NMS grouping."""
    num_classes = sample.num_classes
    if sem_model is None:
        prob = ground_truth_probabilities(sample.semantic, num_classes)
    else:
        prob = predict_probabilities(sem_model, sample.image, device)
    x, (h, w) = pad_to_multiple(image_tensor(sample.image)[None].to(device), 16)
    boxes = loc_model(x)[0, :, :h, :w].float().cpu()
    return hough_group(prob, boxes, top_n=cfg.top_n, nms_iou=cfg.nms_iou,
                       region_nms_iou=cfg.region_nms_iou, min_size=cfg.min_size)


def _evaluate_instances(cfg: InstanceConfig, ctx: RunContext) -> dict[str, Any]:
    from tqdm import tqdm

    loc_cfg = cfg.localization
    val_ds = open_dataset(loc_cfg.dataset, "val", profile=loc_cfg.profile)
    ctx.dataset_fingerprint = dataset_fingerprint_of(val_ds)
    n = len(val_ds) if cfg.n_eval is None else min(cfg.n_eval, len(val_ds))
    sem_model = None if cfg.semantic is None else load_semantic_model(cfg.semantic, ctx.device)
    loc_model = load_localization_model(loc_cfg, ctx.device)
    ev = SDSEvaluator("sds", classes=range(1, val_ds.num_classes))
    n_pred = 0
    for i in tqdm(range(n), desc=f"group {cfg.name}", disable=not progress_enabled(), leave=False):
        s = val_ds[i]
        inst = predict_instances(sem_model, loc_model, s, cfg, ctx.device)
        gt_masks = gt_instance_masks(s)
        ev.add(s.image_id, gt_masks, s.instance_classes, inst.masks.numpy(), inst.classes.numpy(),
               inst.scores.numpy())
        n_pred += len(inst.scores)
    table = ev.compute()
    summary = table.summary()
    # per class at the thresholds the other papers' per-class tables use (Fathi's thin classes)
    frame = table.to_frame(dict(enumerate(val_ds.class_names)))
    per_class = {f"{t:g}": {**{name: (None if not np.isfinite(v) else 100 * float(v))
                               for name, v in frame[f"AP@{t:g}"].items()}, "mean": 100 * table.map_at(t)}
                 for t in (0.5, 0.6, 0.7)}
    return {"map_r_0.5": 100 * summary["mAP_r@0.5"], "map_r_0.7": 100 * summary["mAP_r@0.7"],
            "map_r_vol": 100 * summary["mAP_r_vol"], "n_images": n, "n_predictions": n_pred,
            "per_class": per_class}


def run_instances(cfg: InstanceConfig, force: bool | None = None) -> Result:
    if cfg.semantic is not None:
        cfg.semantic.validate()
    cfg.localization.fcrn(2).validate(cfg.localization.crop_size)
    return run_experiment(cfg, _evaluate_instances, paper=PAPER, name=cfg.name,
                          profile=cfg.localization.profile, seed=cfg.localization.seed, force=force)


INSTANCE_COLUMNS = {"mAP^r_0.5 %": "map_r_0.5", "mAP^r_0.7 %": "map_r_0.7", "mAP^r_vol %": "map_r_vol"}


def instance_ours(results: dict[str, Result]) -> dict[str, dict[str, float]]:
    return {rid: {col: r.metrics[key] for col, key in INSTANCE_COLUMNS.items()} for rid, r in results.items()}


# --------------------------------------------------------------------------- noise
def noise_reference(profile: Profile | str, dataset: str, depth: int = 50) -> SemanticConfig:
    """The config whose spread over seeds stands for every semantic row of ``depth`` on ``dataset``.

    It is that depth's cheapest Table 1/3 setting (1/16, k3, d6), so its seed-0 run is a
    table row already and the replicates cost least. Each depth gets its own: deeper nets
    may be noisier, and one cheap config's σ for every row would understate their spread.
    """
    return semantic_config(profile, dataset, depth, 16, 3, 6)


def _semantic_values(metrics: dict[str, Any], class_names: Iterable[str]) -> dict[str, float | None]:
    """A result's numbers under every column name the semantic tables use (1-5, 7)."""
    out: dict[str, float | None] = {col: metrics[key] for col, key in SEMANTIC_COLUMNS.items()}
    out["mean"] = metrics["miou"]
    out.update(zip(class_names, metrics["per_class_iou"]))
    return out


def semantic_noise(profile: Profile | str, dataset: str, depth: int = 50) -> Noise:
    """Seed spread of :func:`noise_reference` for ``depth`` and the chance level.

    Trains the reference with seeds ``0 .. p.seeds_for(PAPER)-1`` (each through the runner's cache)
    and evaluates the trivial predictor, the training set's most frequent class everywhere,
    on the same images.
    """
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    ref = noise_reference(p, dataset, depth)
    runs = [run_semantic(replace(ref, seed=seed)) for seed in range(p.seeds_for(PAPER))]
    names = runs[0].metrics["class_names"]
    sigma = seed_spread([_semantic_values(r.metrics, names) for r in runs])
    chance, trivial = _trivial_scores(p, dataset, names)
    source = (f"{depth} layers: σ is the spread of `{ref.name}` over {len(runs)} seeds on the "
              f"{dataset_label(dataset)} "
              f"(mean IoU σ = {sigma.get('Mean IoU %', float('nan')):.2f} points); {trivial}")
    return Noise(sigma=sigma, chance=chance, z=t_factor(len(runs)), source=source)


def _trivial_scores(p: Profile, dataset: str, names: list[str]) -> tuple[dict[str, float], str]:
    """Scores of the most-frequent-class predictor on the evaluation images, and a sentence."""
    scores, label_name, n = trivial_predictor_scores(dataset, p)
    chance = {k: v for k, v in _semantic_values(scores, names).items() if v is not None}
    return chance, (f"the trivial predictor labels every pixel '{label_name}', the most frequent training class "
                    f"(mean IoU {chance['Mean IoU %']:.2f} on the same {n} images).")


def chance_level(profile: Profile | str, result: Result, dataset: str) -> Noise:
    """The trivial predictor's scores alone (no seed replicates), for a page with no claims."""
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    chance, trivial = _trivial_scores(p, dataset, result.metrics["class_names"])
    return Noise(sigma={}, chance=chance, z=0.0, source="No seed replicates at this table; " + trivial)


def noise_by_row(plan: Iterable[PlannedRow], profile: Profile | str) -> dict[str, Noise]:
    """One :class:`Noise` per planned row, measured for the row's own depth and twin.

    Refused rows get none (they have no numbers). A claim across depths takes the larger
    spread (:func:`instseg_lib.papers.schema.noise_for`).
    """
    cache: dict[tuple[str, int], Noise] = {}
    out = {}
    for p in plan:
        if p.refused:
            continue
        key = (p.config.dataset, p.config.depth)
        if key not in cache:
            cache[key] = semantic_noise(profile, *key)
        out[p.row_id] = cache[key]
    return out


def instance_noise(profile: Profile | str) -> Noise:
    """Seed spread of Table 6's first row (semantic and localization nets both re-seeded).

    The trivial instance predictor returns no instances, whose AP^r is 0 by definition.
    """
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    base = table6_configs(p)["r50"]
    runs, diverged = [], []
    for seed in range(p.seeds_for(PAPER)):
        try:
            runs.append(run_instances(replace(base, localization=replace(base.localization, seed=seed),
                                              semantic=replace(base.semantic, seed=seed))))
        except DivergedError as err:  # a replicate that diverged has no numbers; say so
            diverged.append(f"seed {seed} diverged ({err})")
    if len(runs) < 2:
        raise DivergedError(f"Table 6 noise: fewer than two seed replicates trained: {'; '.join(diverged)}")
    sigma = seed_spread([{col: r.metrics[key] for col, key in INSTANCE_COLUMNS.items()} for r in runs])
    source = (f"σ is the spread of Table 6's 50-layer row over {len(runs)} seeds of both nets "
              f"(mAP^r@0.5 σ = {sigma.get('mAP^r_0.5 %', float('nan')):.2f} points); the trivial predictor "
              "returns no instances (AP^r 0)." + (f" Left out: {'; '.join(diverged)}." if diverged else ""))
    return Noise(sigma=sigma, chance={col: 0.0 for col in INSTANCE_COLUMNS}, z=t_factor(len(runs)), source=source)


def learning_frame(results: dict[str, Result], noise: Noise, dataset: str, profile: Profile | str):
    """Did the nets learn beyond class frequencies? (:func:`recipes.common.learning_frame`)."""
    from .common import learning_frame as frame

    return frame(results, noise, dataset, profile)


def localization_results(configs: dict[str, InstanceConfig]) -> dict[str, Result]:
    """The (cached) localization-net result of each Table 6 row, keyed by row id."""
    return {rid: run_localization(cfg.localization) for rid, cfg in configs.items()}


def localization_frame(configs: dict[str, InstanceConfig], results: dict[str, Result]):
    """Did the localization nets and the pipelines learn? Per Table 6 row: the localization
    net's first-steps and final smooth-L1 loss (regression has no class prior; a net that
    learned nothing ends near its start), and the pipeline's mAP^r next to the trivial
    predictor's 0 (it returns no instances)."""
    import pandas as pd

    recs = []
    for rid, cfg in configs.items():
        loc = run_localization(cfg.localization).metrics
        start, end = loc.get("initial_loss"), loc.get("final_loss")
        learned = start is not None and end is not None and end < 0.8 * start
        ap = results[rid].metrics["map_r_0.5"] if rid in results else None
        recs.append({"row": rid, "localization net": cfg.localization.name,
                     "first-steps loss": None if start is None else round(start, 4),
                     "final loss": None if end is None else round(end, 4),
                     "mAP^r_0.5 %": None if ap is None else round(ap, 2), "trivial predictor mAP^r_0.5 %": 0.0,
                     "status": ("learned" if learned and (ap or 0) > 0 else
                                "localization loss fell, but no instance found" if learned else
                                "not learning (loss fell by less than 20%)")})
    return pd.DataFrame(recs)


def table7_noise(profile: Profile | str) -> dict[str, Noise]:
    """One :class:`Noise` per Table 7 row: each block's twin and depth has its own spread."""
    return noise_by_row(plan_table7(profile), profile)


# --------------------------------------------------------------------------- table plans
@dataclass(frozen=True)
class PlannedRow:
    """One paper row: its config, or why the config is refused at this profile."""

    row_id: str
    config: Any
    refused: str = ""


def plan_semantic(table_key: str, profile: Profile | str, dataset: str, bootstrap_k: int = 0,
                  rows: Iterable[str] | None = None) -> list[PlannedRow]:
    """Configs of a Table 1/3/7 (block), each validated before anything trains."""
    from ..papers import TABLES

    table = TABLES[table_key]
    wanted = set(rows) if rows is not None else None
    plan = []
    for row in table.rows:
        if not row.ours or (wanted is not None and row.id not in wanted):
            continue
        cfg = config_from_row(row, profile, dataset, bootstrap_k)
        try:
            cfg.validate()
            plan.append(PlannedRow(row.id, cfg))
        except ValueError as exc:
            plan.append(PlannedRow(row.id, cfg, str(exc)))
    return plan


#: Table 7's blocks ("Dataset" key column) and the twin each one trains on.
TABLE7_TWINS = {"PASCAL VOC 2012": "voc", "Cityscapes": "cityscapes"}


def plan_table7(profile: Profile | str) -> list[PlannedRow]:
    """Table 7: each block's rows on its own twin (VOC: 101 layers, Cityscapes: 152)."""
    from ..papers import TABLES

    table = TABLES["wu2016.table7"]
    plan: list[PlannedRow] = []
    for block, dataset in TABLE7_TWINS.items():
        rows = [r.id for r in table.rows if r.cells["Dataset"] == block]
        plan += plan_semantic(table.key, profile, dataset, rows=rows)
    return plan


def plan_frame(plan: list[PlannedRow]):
    """The plan as a table: the paper's setting, what it becomes on the twin, and its status."""
    import pandas as pd

    recs = []
    for p in plan:
        c = p.config
        recs.append({"row": p.row_id, "depth": c.depth, "stride": f"1/{c.output_stride}", "kernel": c.kernel,
                     "paper dilation": c.paper_dilation,
                     "paper FoV": field_of_view(c.kernel, c.paper_dilation, c.output_stride),
                     "twin dilation": c.dilation, "twin FoV": field_of_view(c.kernel, c.dilation, c.output_stride),
                     "crop": c.crop_size, "K": c.bootstrap_k or "F",
                     "K % of crop pixels": round(100 * c.bootstrap_k / c.crop_size ** 2, 1),
                     "status": "refused: FoV exceeds the crop" if p.refused else "run"})
    return pd.DataFrame(recs)


def run_plan(plan: list[PlannedRow]) -> PlanResults:
    """Run every runnable row (cached rows load at once); refused rows are left out.

    A row whose training diverges is listed in ``.diverged`` with its message, and has no
    numbers (so its claims read "not run"); the other rows still run.
    """
    out = PlanResults()
    for p in plan:
        if p.refused:
            continue
        try:
            out[p.row_id] = run_semantic(p.config)
        except DivergedError as err:
            out.diverged[p.row_id] = str(err)
    return out


def provenance_for(results: dict[str, Result], dataset: str, profile: str, note: str = ""):
    """The caption's account of our side: dataset, profile, hardware and summed wall time."""
    from ..papers.render import Provenance

    if not results:
        return Provenance(dataset=dataset, profile=profile, note=note)
    first = next(iter(results.values()))
    wall = sum(float(r.provenance.get("wall_seconds", 0.0)) for r in results.values())
    return Provenance(dataset=dataset, profile=profile, hardware=first.provenance.get("device", ""),
                      wall_seconds=wall, note=note)


# --------------------------------------------------------------------------- figures
def semantic_examples(cfg: SemanticConfig, n: int = 3, device: str = "cpu"):
    """Image / ground truth / prediction rows for the first ``n`` val images (Figs. 2-4), with a
    caption and a legend naming the twin's classes."""
    from ..papers import citation
    from ..viz import colorize_labels, image_grid

    model = load_semantic_model(cfg, device)
    val = open_dataset(cfg.dataset, "val", profile=cfg.profile)
    rows = []
    for i in range(min(n, len(val))):
        s = val[i]
        pred = predict_probabilities(model, s.image, device).argmax(0).numpy()
        rows.append([s.image, colorize_labels(s.semantic), colorize_labels(pred)])
    caption = (f"{citation(PAPER)}, Figs. 2-4, on the {dataset_label(cfg.dataset)}: each row is one of the first "
               f"{len(rows)} "
               f"validation images, its ground-truth class map and the prediction of {cfg.name} ({cfg.profile} "
               "profile). Class maps use the VOC palette (void in cream); the legend names the classes shown.")
    return image_grid(rows, ["image", "ground truth", f"{cfg.name}"], caption=caption, class_names=val.class_names)


def instance_examples(cfg: InstanceConfig, n: int = 3, device: str = "cpu"):
    """Image / ground-truth instances / predicted instances for the first ``n`` val images (Fig. 5)."""
    from ..papers import citation
    from ..viz import colorize_instances, image_grid, masks_to_id_map

    sem = None if cfg.semantic is None else load_semantic_model(cfg.semantic, device)
    loc = load_localization_model(cfg.localization, device)
    val = open_dataset(cfg.localization.dataset, "val", profile=cfg.localization.profile)
    rows = []
    for i in range(min(n, len(val))):
        s = val[i]
        inst = predict_instances(sem, loc, s, cfg, device)
        rows.append([s.image, colorize_instances(s.instances), colorize_instances(masks_to_id_map(inst.masks.numpy()))])
    semantic = "ground-truth score maps (the §3.2 pilot)" if cfg.semantic is None else cfg.semantic.name
    caption = (f"{citation(PAPER)}, Fig. 5, on the {dataset_label(cfg.localization.dataset)}: each row is one of "
               "the first "
               f"{len(rows)} validation images, its ground-truth instances and the instances that Hough grouping "
               f"finds from {semantic} and the localization net {cfg.localization.name} "
               f"({cfg.localization.profile} profile). Each instance has a random colour; black is no instance.")
    return image_grid(rows, ["image", "ground-truth instances", "predicted instances"], caption=caption)


def pipeline_figure(cfg: InstanceConfig, index: int = 0, device: str = "cpu"):
    """Fig. 1 on one twin image: score map, transform map, detected maxima, masks, instances,
    with a caption and a legend of the marks."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from ..grouping import top_n_masks
    from ..papers import citation
    from ..viz import add_caption, colorize_instances, draw_boxes, masks_to_id_map, uniform_note

    sem = None if cfg.semantic is None else load_semantic_model(cfg.semantic, device)
    loc = load_localization_model(cfg.localization, device)
    val = open_dataset(cfg.localization.dataset, "val", profile=cfg.localization.profile)
    s = val[index]
    prob = ground_truth_probabilities(s.semantic, s.num_classes) if sem is None \
        else predict_probabilities(sem, s.image, device)
    inst = predict_instances(sem, loc, s, cfg, device)
    # The class shown is the most frequent ground-truth object class of the image.
    classes, counts = np.unique(s.semantic[(s.semantic > 0) & (s.semantic < 255)], return_counts=True)
    c = int(classes[counts.argmax()]) if len(classes) else 1
    name = s.class_names[c]
    x, (h, w) = pad_to_multiple(image_tensor(s.image)[None].to(device), 16)
    with torch.no_grad():
        boxes = loc(x)[0, 4 * (c - 1):4 * c, :h, :w].cpu().numpy()
    keep = top_n_masks(prob, cfg.top_n)[c].numpy()
    ys, xs = np.nonzero(keep)
    fig, axes = plt.subplots(1, 5, figsize=(11, 2.1 * s.image.shape[0] / s.image.shape[1] + 0.6))
    axes[0].imshow(s.image), axes[0].set_title("image", fontsize=10)
    axes[1].imshow(prob[c].numpy(), vmin=0, vmax=1, cmap="magma"), axes[1].set_title(f"score map: {name}", fontsize=10)
    axes[2].imshow(s.image, alpha=0.4)
    axes[2].scatter(xs + 0.5 + boxes[1, ys, xs], ys + 0.5 + boxes[0, ys, xs], s=2, c="red")
    axes[2].set_title("transform map: voted centres", fontsize=10)
    axes[3].imshow(s.image)
    sel = inst.classes.numpy() == c
    masks = inst.masks.numpy()[sel]
    bx = np.array([[m.nonzero()[1].min(), m.nonzero()[0].min(), m.nonzero()[1].max() + 1, m.nonzero()[0].max() + 1]
                   for m in masks]) if len(masks) else np.zeros((0, 4))
    draw_boxes(axes[3], bx), axes[3].set_title(f"{len(masks)} detected maxima", fontsize=10)
    final = colorize_instances(masks_to_id_map(inst.masks.numpy()))
    axes[4].imshow(final), axes[4].set_title("final instances", fontsize=10)
    note = uniform_note(final)
    if note:
        axes[4].text(0.5, 0.5, note, transform=axes[4].transAxes, ha="center", va="center", fontsize=7, wrap=True,
                     bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"})
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    source = "the ground-truth class map (the §3.2 pilot)" if sem is None else f"the semantic net {cfg.semantic.name}"
    caption = (f"{citation(PAPER)}, Fig. 1, on validation image {s.image_id} of the "
               f"{dataset_label(cfg.localization.dataset)} "
               f"({cfg.name}, {cfg.localization.profile} profile). From left: the image; the score map of '{name}', "
               f"the image's most frequent object class, from {source} (black 0, yellow 1); the box centre that "
               f"each of the {len(xs)} pixels where '{name}' is among the top {cfg.top_n} classes votes for, from "
               f"the localization net {cfg.localization.name}; the boxes of the {len(masks)} '{name}' instances that "
               f"grouping keeps; the final instances of every class, each in a random colour (black: no instance).")
    handles = [Line2D([], [], ls="", marker="o", ms=4, color="red", label="a pixel's voted box centre"),
               Patch(facecolor="0.35", edgecolor="yellow", label=f"box of a detected '{name}' instance")]
    add_caption(fig, caption, handles, ncol=2)
    return fig


def table6_configs(profile: Profile | str) -> dict[str, InstanceConfig]:
    """Table 6's rows we reproduce, plus the §3.2 pilot (ground-truth semantic maps).

    Semantic nets are each depth's best Table 1 setting (1/8, k5, d12); the rows vary the
    localization net as the paper does: bootstrapping (§2.2) and the size-weighted loss (§2.1).
    The pilot pairs ground-truth score maps with the best localization net (101, Bs., weighted).
    """
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    sem50 = semantic_config(p, "voc", 50, 8, 5, 12)
    sem101 = semantic_config(p, "voc", 101, 8, 5, 12)
    n_eval = p.eval_subset
    best_loc = localization_config(p, 101, bootstrap=True, weighted=True)
    return {
        "r50": InstanceConfig(localization_config(p, 50), sem50, n_eval=n_eval),
        "r50-bs": InstanceConfig(localization_config(p, 50, bootstrap=True), sem50, n_eval=n_eval),
        "r50-bs-wl": InstanceConfig(localization_config(p, 50, bootstrap=True, weighted=True), sem50, n_eval=n_eval),
        "r101-bs-wl": InstanceConfig(best_loc, sem101, n_eval=n_eval),
        "gt-semantic-pilot": InstanceConfig(best_loc, None, n_eval=n_eval),
    }
