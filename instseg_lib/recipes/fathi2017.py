"""Fathi et al. 2017 as experiments: pixel embeddings and seediness heads on a COCO-twin
semantic trunk, evaluated by diverse seed sampling (Tables 1-3, Figs. 3-7).

The pipeline, as §3.5 and §4.1 describe it:

1. **Trunk pretraining.** §3.5 pre-trains DeepLab v2 (ResNet-101) "for semantic segmentation
   on COCO" and "chops off" its final layer. Here the trunk is Wu's FCRN semantic recipe
   (:func:`~.wu2016.semantic_config`, a dilated ResNet at output stride 8 with its own
   stand-in ImageNet init) trained on the **COCO twin**; its classifier is dropped.
2. **Fathi net** (:class:`~instseg_lib.models.FathiNet`): embedding and seediness heads on
   that trunk, trained on the SBD twin's train split (§4.1: "PASCAL VOC 2012 training set,
   with additional instance mask annotation from [9]") with ``L = L_e + λ L_cls``
   (:func:`~instseg_lib.losses.fathi_loss`); λ is held at 0, then ramped linearly to 0.2
   (:func:`~instseg_lib.losses.fathi_lambda`); the trunk learns at a tenth of the heads'
   rate (:meth:`~instseg_lib.models.FathiNet.param_groups`); the §4.2 augmentation
   (:func:`~instseg_lib.data.train_transforms`).
3. **One evaluation serves all three tables** (the sweeps are test time only): on the VOC
   twin's val split, one 1,000-seed class-aware run per α and image
   (:func:`~instseg_lib.grouping.seed_group`), one class-agnostic run at α = 0.2 for the
   proposal recall, and the first-n prefixes of the α = 0.2 run for Table 3 (greedy
   selection is prefix-stable, :func:`~instseg_lib.grouping.first_n`).

Choices the paper leaves open (ours; the notebooks repeat them):

- **Seeds for Tables 1-2: 1,000** (capped by the candidate grid: a 128 x 192 twin image has
  1,536 stride-4 candidates). Table 2's α = 0.2 value equals Table 3's 1,000-seed value,
  so the paper most likely used 1,000 too. Table 1 uses α = 0.3, Table 2's best (its 62.1
  is Table 1's mean).
- **Ranking score.** Each mask's score is its seed's confidence ``s_p`` (§3.4); no mask NMS.
- **Number of seeds in Table 3** means the first n of the 1,000 selected seeds, in
  selection order, both for mAP^r and for the recall: the recall evaluator ranks proposals
  by score, so it is given the selection rank as the score.
- **Noise** (Table 2's α curve and Table 3's sweep compare numbers of one net): a paired
  bootstrap over the val images of the differences between α values, plus the spread of
  those differences over ``profile.seeds_for(PAPER)`` trainings; Table 1's rows use the seed spread
  alone.
- **Trunk depth** is the profile's ``fathi_depth`` (cpu: 50, where the 101-layer stand-in
  learns more slowly in a short schedule; gpu: the paper's 101).
- **Crops weighted towards more instances** (§4.2) are not implemented: crops are uniform.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np
import torch

from ..data import open_dataset, train_transforms
from ..data.registry import dataset_label
from ..experiments import Result, RunContext, load_checkpoint, run_experiment
from ..grouping import seed_group
from ..losses import FATHI_LAMBDA_MAX, SEED_POINTS_PER_INSTANCE, fathi_lambda, fathi_loss
from ..metrics import RecallEvaluator, SDSEvaluator
from ..metrics.masks import iou_from_counts
from ..models import FATHI_TAUS, FathiConfig, FathiNet
from ..models.embedding import pairwise_sq_distances
from ..papers.schema import Noise
from ..paths import data_source
from ..pretrain import initialise_backbone
from ..profiles import Profile, get_profile
from ..train import TrainConfig, progress_enabled, train
from . import wu2016 as wu
from .common import (TensorDataset, dataset_fingerprint_of, image_tensor, loss_record, pad_to_multiple,
                     recipe_settings, t_factor, to_tensors)

PAPER = "fathi2017"
#: Table 2's α values.
ALPHAS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
#: Table 1 uses Table 2's best α (its mean 62.1 is Table 2's α = 0.3 value).
TABLE1_ALPHA = 0.3
#: Table 3 is printed "with α = 0.2".
TABLE3_ALPHA = 0.2
#: Table 1's IoU thresholds.
TABLE1_IOUS: tuple[float, ...] = (0.5, 0.6, 0.7)
#: Table 3's numbers of sampled seeds.
TABLE3_SEEDS: tuple[int, ...] = (10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 200, 500, 1000)
#: Seeds per image for Tables 1-2 (the paper's value is unstated; see the module docstring).
NUM_SEEDS = 1000
#: Classes the paper and the issue call thin or "spindly" (§1, §4.3).
THIN_CLASSES: tuple[str, ...] = ("bicycle", "chair", "pottedplant")


# --------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class FathiTrainConfig:
    """One Fathi network trained on ``dataset`` from a COCO-twin semantic trunk (§3.5)."""

    trunk: wu.SemanticConfig
    dataset: str
    embedding_dim: int
    multiscale: bool
    profile: str
    crop_size: int
    steps: int
    batch_size: int
    lr: float
    optimizer: str
    warmup_steps: int
    k_embedding: int
    k_seed: int = SEED_POINTS_PER_INSTANCE
    trunk_lr_scale: float = 0.1
    lam_max: float = FATHI_LAMBDA_MAX
    #: λ = 0 for this fraction of the steps, then a linear ramp over ``ramp_fraction``.
    hold_fraction: float = 0.3
    ramp_fraction: float = 0.3
    seed: int = 0

    @property
    def name(self) -> str:
        ms = "-ms" if self.multiscale else ""
        seed = f"-seed{self.seed}" if self.seed else ""
        return f"fathi{self.trunk.depth}-{self.dataset}-d{self.embedding_dim}{ms}{seed}"

    def net(self, num_classes: int) -> FathiConfig:
        return FathiConfig(depth=self.trunk.depth, output_stride=self.trunk.output_stride, width=self.trunk.width,
                           num_classes=num_classes, embedding_dim=self.embedding_dim, taus=FATHI_TAUS,
                           multiscale=self.multiscale)

    @property
    def hold_steps(self) -> int:
        return int(round(self.hold_fraction * self.steps))

    @property
    def ramp_steps(self) -> int:
        return int(round(self.ramp_fraction * self.steps))

    def validate(self) -> "FathiTrainConfig":
        self.net(21).validate()
        if not 0 < self.trunk_lr_scale <= 1:
            raise ValueError(f"trunk_lr_scale must be in (0, 1]; got {self.trunk_lr_scale}")
        if self.hold_fraction < 0 or self.ramp_fraction < 0 or self.hold_fraction + self.ramp_fraction > 1:
            raise ValueError("hold_fraction and ramp_fraction must be >= 0 and sum to at most 1")
        return self


@dataclass(frozen=True)
class FathiEvalConfig:
    """The one evaluation behind Tables 1-3 of a trained net (all sweeps are test time)."""

    train: FathiTrainConfig
    dataset: str = "voc"
    n_eval: int | None = None
    num_seeds: int = NUM_SEEDS
    alphas: tuple[float, ...] = ALPHAS
    table1_alpha: float = TABLE1_ALPHA
    table3_alpha: float = TABLE3_ALPHA
    stride: int = 4
    n_bootstrap: int = 200

    @property
    def name(self) -> str:
        return f"eval-{self.train.name}-{self.dataset}"


def _fathi_sizes(p: Profile) -> dict[str, Any]:
    return {"depth": int(p.extra.get("fathi_depth", 101 if p.name == "gpu" else 50)),
            "steps": int(p.train_steps * float(p.extra.get("fathi_steps_factor", 1))),
            "trunk_steps": int(p.train_steps * float(p.extra.get("fathi_trunk_steps_factor", 1)))}


def trunk_config(profile: Profile | str) -> wu.SemanticConfig:
    """§3.5's pretraining: the semantic FCRN on the COCO twin (its classifier is chopped off)."""
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    sizes = _fathi_sizes(p)
    return wu.semantic_config(p, "coco", depth=sizes["depth"], output_stride=8, kernel=3, dilation=12,
                              steps=sizes["trunk_steps"])


def train_config(profile: Profile | str, *, embedding_dim: int = 64, multiscale: bool = False, seed: int = 0,
                 **overrides: Any) -> FathiTrainConfig:
    """The Fathi network of the tables: SBD twin train, d = 64, no pyramid, sizes from the profile."""
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    rs = recipe_settings(p)
    sizes = _fathi_sizes(p)
    cfg = FathiTrainConfig(trunk=trunk_config(p), dataset="sbd", embedding_dim=embedding_dim, multiscale=multiscale,
                           profile=p.name, crop_size=p.crop_size, steps=sizes["steps"], batch_size=p.batch_size,
                           lr=rs["lr"], optimizer=rs["optimizer"], warmup_steps=rs["warmup_steps"],
                           k_embedding=p.pixels_per_instance, seed=seed)
    return (replace(cfg, **overrides) if overrides else cfg).validate()


def eval_config(profile: Profile | str, seed: int = 0, **overrides: Any) -> FathiEvalConfig:
    """The tables' evaluation of the net trained with ``seed``; the bootstrap over images runs
    for seed 0 only (the other seeds enter the noise through their spread)."""
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    kw: dict[str, Any] = {"n_bootstrap": 200 if seed == 0 else 0, **overrides}
    return FathiEvalConfig(train=train_config(p, seed=seed), n_eval=p.eval_subset, **kw)


# --------------------------------------------------------------------------- training
def _fathi_tensors(sample) -> dict[str, Any]:
    out = to_tensors(sample)
    crowd = sample.crowd if sample.crowd is not None else np.zeros(sample.semantic.shape, bool)
    out["crowd"] = torch.from_numpy(np.ascontiguousarray(crowd, dtype=bool))
    out["instance_classes"] = torch.from_numpy(np.asarray(sample.instance_classes, dtype=np.int64))
    return out


def collate_fathi(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack the same-size tensors; ``instance_classes`` stays a per-image list (lengths differ)."""
    out = {k: torch.stack([it[k] for it in items]) for k in items[0] if k != "instance_classes"}
    out["instance_classes"] = [it["instance_classes"] for it in items]
    return out


def _loss(cfg: FathiTrainConfig, parts_log: list[tuple[int, float, float]]):
    def loss(model, batch, *, step: int):
        lam = fathi_lambda(step, cfg.hold_steps, cfg.ramp_steps, cfg.lam_max)
        total, parts = fathi_loss(model(batch["image"]), batch, lam, k_embedding=cfg.k_embedding,
                                  k_seed=cfg.k_seed)
        parts_log.append((step + 1, float(parts["embedding"]), float(parts["seediness"])))
        return total
    return loss


def _train(cfg: FathiTrainConfig, ctx: RunContext) -> dict[str, Any]:
    prof = get_profile(cfg.profile)
    train_ds = open_dataset(cfg.dataset, "train", profile=cfg.profile)
    ctx.dataset_fingerprint = dataset_fingerprint_of(train_ds)
    model = FathiNet(cfg.net(train_ds.num_classes))
    trunk_res = wu.run_semantic(cfg.trunk)
    model.load_trunk(load_checkpoint(trunk_res.path.with_suffix(".pt"), map_location="cpu")["model"])
    # names the COCO actually read (the twin's words stay "coco-twin")
    coco = "coco-twin" if data_source() == "twin" else dataset_label("coco")
    ctx.notes["init"] = {"init": f"{coco} semantic trunk", "trunk": cfg.trunk.name,
                         "trunk_miou_coco_val": round(float(trunk_res.metrics["miou"]), 2),
                         "trunk_init": (trunk_res.provenance.get("notes", {}).get("init") or {}).get("init", "")}
    tcfg = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed, optimizer=cfg.optimizer,
                       warmup_steps=cfg.warmup_steps, weight_decay=1e-4 if cfg.optimizer == "adam" else 5e-4,
                       checkpoint_every=prof.checkpoint_every, channels_last=not ctx.device.startswith("cuda"),
                       # λ's ramp adds L_cls (about 0.2 ln 21 at first) to a falling L_e: not a divergence
                       divergence_factor=0.0)
    parts: list[tuple[int, float, float]] = []
    data = TensorDataset(train_ds, train_transforms(prof), convert=_fathi_tensors)
    hist = train(model, data, _loss(cfg, parts), tcfg, checkpoint_path=ctx.checkpoint_path, device=ctx.device,
                 collate_fn=collate_fathi, desc=cfg.name,
                 param_groups=lambda m: m.param_groups(cfg.lr, cfg.trunk_lr_scale))
    rec = loss_record(hist["losses"])
    le = [(s, e) for s, e, _ in parts]
    lc = [(s, c) for s, _, c in parts if math.isfinite(c)]
    return {**rec, "num_classes": train_ds.num_classes, "class_names": list(train_ds.class_names),
            "embedding_loss_curve": _thin(le), "seediness_loss_curve": _thin(lc),
            "parts_from_step": parts[0][0] if parts else None}


def _thin(points: list[tuple[int, float]], n: int = 120) -> list[list[float]]:
    if not points:
        return []
    idx = np.unique(np.linspace(0, len(points) - 1, min(n, len(points))).round().astype(int))
    return [[int(points[i][0]), round(float(points[i][1]), 4)] for i in idx]


def run_train(cfg: FathiTrainConfig, force: bool | None = None) -> Result:
    """Train (or load from the cache) one Fathi network."""
    cfg.validate()
    return run_experiment(cfg, _train, paper=PAPER, name=cfg.name, profile=cfg.profile, seed=cfg.seed, force=force)


def load_model(cfg: FathiTrainConfig, device: str = "cpu") -> FathiNet:
    res = run_train(cfg)
    model = FathiNet(cfg.net(int(res.metrics["num_classes"])))
    model.load_state_dict(load_checkpoint(res.path.with_suffix(".pt"), map_location=device)["model"])
    return model.to(device).eval()


# --------------------------------------------------------------------------- inference
@torch.no_grad()
def predict(model: FathiNet, image: np.ndarray, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings (d, H, W) and mask-class probabilities (T, C + 1, H, W) of one image."""
    x, (h, w) = pad_to_multiple(image_tensor(image)[None].to(device), 8)
    out = model(x)
    return out.embedding[0, :, :h, :w].float().cpu(), out.class_probs()[0, :, :, :h, :w].cpu()


def _gt(sample) -> tuple[torch.Tensor, np.ndarray]:
    ids = torch.from_numpy(sample.instances.astype(np.int64))
    n = sample.num_instances
    masks = torch.stack([ids == k for k in range(1, n + 1)]) if n else torch.zeros(0, *ids.shape, dtype=torch.bool)
    return masks, np.asarray(sample.instance_classes, dtype=np.int64)


def mask_iou(pred: torch.Tensor, gt: torch.Tensor) -> np.ndarray:
    """IoU ``(M, N)`` of boolean masks ``pred`` (M, H, W) and ``gt`` (N, H, W), by one product."""
    m, n = pred.shape[0], gt.shape[0]
    if m == 0 or n == 0:
        return np.zeros((m, n))
    a = pred.reshape(m, -1).float()
    b = gt.reshape(n, -1).float()
    # counts are exact in float32 up to 2^24 pixels; the division is the metrics suite's
    return iou_from_counts((a @ b.T).double().numpy(), a.sum(1).double().numpy(), b.sum(1).double().numpy())


def embedding_distance_ratio(emb: torch.Tensor, instances: np.ndarray, k: int = 32, seed: int = 0
                             ) -> tuple[float, float] | None:
    """Mean squared embedding distance within instances and between different instances
    (background counts as one instance), over ``k`` sampled pixels per instance.

    Ours, not the paper's: Fig. 3 shows the embeddings qualitatively. ``None`` when the
    image has fewer than two instances (background included).
    """
    ids = torch.from_numpy(instances.reshape(-1).astype(np.int64))
    uniq = ids.unique()
    if uniq.numel() < 2:
        return None
    g = torch.Generator().manual_seed(seed)
    picks = []
    for u in uniq.tolist():
        pos = (ids == u).nonzero(as_tuple=True)[0]
        picks.append(pos[torch.randperm(pos.numel(), generator=g)[:k]])
    idx = torch.cat(picks)
    e = emb.reshape(emb.shape[0], -1)[:, idx].T
    d2 = pairwise_sq_distances(e, e)
    same = ids[idx][:, None] == ids[idx][None, :]
    off = ~torch.eye(idx.numel(), dtype=torch.bool)
    within = d2[same & off]
    return (float(within.mean()) if within.numel() else float("nan")), float(d2[~same].mean())


def image_tp_records(gc: np.ndarray, pc: np.ndarray, sc: np.ndarray, iou: np.ndarray, classes: Sequence[int],
                     threshold: float = 0.5) -> dict[int, tuple[np.ndarray, np.ndarray, int]]:
    """Per class of one image: its predictions' scores, their SDS true-positive flags at
    ``threshold`` and its ground-truth count. Under the SDS protocol a prediction's flag
    depends only on its own image, so AP over any multiset of images is the AP of the
    concatenated records: what makes a bootstrap over images cheap."""
    from ..metrics.ap import assign_sds

    out = {}
    for c in classes:
        gm, pm = gc == c, pc == c
        if not gm.any() and not pm.any():
            continue
        s = sc[pm]
        tp = assign_sds(iou[pm][:, gm], s, (threshold,))[0] if pm.any() else np.zeros(0, bool)
        out[int(c)] = (s, tp, int(gm.sum()))
    return out


def map_from_records(records: Sequence[dict[int, tuple[np.ndarray, np.ndarray, int]]], classes: Sequence[int]) -> float:
    """mAP^r (in [0, 1]) over classes with ground truth, from :func:`image_tp_records` of a
    multiset of images; the same area-under-PR rule as :class:`~instseg_lib.metrics.SDSEvaluator`."""
    from ..metrics.ap import voc_ap

    aps = []
    for c in classes:
        parts = [r[c] for r in records if c in r]
        n_gt = sum(p[2] for p in parts)
        if n_gt == 0:
            continue
        s = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0)
        if s.size == 0:
            aps.append(0.0)
            continue
        tp = np.concatenate([p[1] for p in parts])
        order = np.argsort(-s, kind="stable")
        ctp = np.cumsum(tp[order])
        aps.append(voc_ap(ctp / n_gt, ctp / np.arange(1, s.size + 1)))
    return float(np.mean(aps)) if aps else float("nan")


def _bootstrap(records: dict[float, list[dict]], n_boot: int, seed: int, classes: Sequence[int]) -> dict[str, Any]:
    """Paired bootstrap over images of mAP^r@0.5 for every α: the same resampled images for
    every α, so differences between α values keep their pairing."""
    alphas = sorted(records)
    if n_boot < 2 or not alphas:
        return {"n_boot": 0, "sd": {}, "sd_diff": {}}
    rng = np.random.default_rng(seed)
    n = len(records[alphas[0]])
    draws = np.zeros((n_boot, len(alphas)))
    for b in range(n_boot):
        pick = rng.integers(0, n, n)
        for j, a in enumerate(alphas):
            draws[b, j] = 100 * map_from_records([records[a][i] for i in pick], classes)
    sd = draws.std(0, ddof=1)
    diff = {f"{a:g}-{b:g}": float((draws[:, i] - draws[:, j]).std(ddof=1))
            for i, a in enumerate(alphas) for j, b in enumerate(alphas) if i < j}
    return {"n_boot": n_boot, "sd": {f"{a:g}": float(v) for a, v in zip(alphas, sd)}, "sd_diff": diff}


def _evaluate(cfg: FathiEvalConfig, ctx: RunContext) -> dict[str, Any]:
    from tqdm import tqdm

    tcfg = cfg.train
    val = open_dataset(cfg.dataset, "val", profile=tcfg.profile)
    ctx.dataset_fingerprint = dataset_fingerprint_of(val)
    n = len(val) if cfg.n_eval is None else min(cfg.n_eval, len(val))
    model = load_model(tcfg, ctx.device)
    classes = range(1, val.num_classes)
    alphas = tuple(sorted(set(cfg.alphas) | {cfg.table1_alpha, cfg.table3_alpha}))
    ev = {a: SDSEvaluator("sds", classes=classes) for a in alphas}
    ev_n = {k: SDSEvaluator("sds", classes=classes) for k in TABLE3_SEEDS}
    recall = RecallEvaluator(ks=TABLE3_SEEDS, iou_threshold=0.5)
    recall_aware = RecallEvaluator(ks=TABLE3_SEEDS, iou_threshold=0.5)
    records: dict[float, list[dict]] = {a: [] for a in cfg.alphas}
    ratios, n_pred = [], {a: 0 for a in alphas}
    for i in tqdm(range(n), desc=f"seeds {tcfg.name}", disable=not progress_enabled(), leave=False):
        s = val[i]
        emb, probs = predict(model, s.image, ctx.device)
        gt, gc = _gt(s)
        for a in alphas:
            inst = seed_group(emb, probs, FATHI_TAUS, cfg.num_seeds, a, stride=cfg.stride)
            iou = mask_iou(inst.masks, gt)
            pc, sc = inst.classes.numpy(), inst.scores.numpy()
            ev[a].add_iou(i, iou, gc, pc, sc)
            n_pred[a] += len(sc)
            if a in records:
                records[a].append(image_tp_records(gc, pc, sc, iou, classes))
            if a == cfg.table3_alpha:
                for k in TABLE3_SEEDS:
                    ev_n[k].add_iou(i, iou[:k], gc, pc[:k], sc[:k])
                # the selection rank as the score: "n proposals" are the first n seeds
                recall_aware.add_iou(i, iou, -np.arange(len(sc), dtype=float))
        agn = seed_group(emb, probs, FATHI_TAUS, cfg.num_seeds, cfg.table3_alpha, stride=cfg.stride,
                         mode="class_agnostic")
        recall.add_iou(i, mask_iou(agn.masks, gt), -np.arange(len(agn.scores), dtype=float))
        r = embedding_distance_ratio(emb, s.instances, seed=i)
        if r is not None:
            ratios.append(r)
    names = list(val.class_names)
    t1 = ev[cfg.table1_alpha].compute(TABLE1_IOUS)
    table1 = {f"{t:g}": {names[int(c)]: (None if not np.isfinite(v) else 100 * float(v))
                         for c, v in zip(t1.classes, t1.ap[:, k])} for k, t in enumerate(TABLE1_IOUS)}
    for k, t in enumerate(TABLE1_IOUS):
        table1[f"{t:g}"]["mean"] = 100 * float(t1.map_at(t))
    table2 = {f"{a:g}": 100 * ev[a].compute((0.5,)).map_at(0.5) for a in cfg.alphas}
    rec, rec_aware = recall.compute(), recall_aware.compute()
    ious = [round(0.5 + 0.05 * j, 2) for j in range(10)]
    curve = recall.recall_curve(ious)
    curve_ks = [k for k in (10, 100, 1000) if k in TABLE3_SEEDS]
    recall_vs_iou = {"ious": ious, "recall": {str(k): [100 * float(v) for v in curve[TABLE3_SEEDS.index(k)]]
                                              for k in curve_ks}}
    table3 = {str(k): {"ar_50": 100 * float(rec.recall[j]), "ar": 100 * float(rec.average_recall[j]),
                       "recall_50_class_aware": 100 * float(rec_aware.recall[j]),
                       "map_r": 100 * ev_n[k].compute((0.5,)).map_at(0.5)} for j, k in enumerate(TABLE3_SEEDS)}
    vol = ev[cfg.table1_alpha].compute()
    within = np.array([w for w, _ in ratios if np.isfinite(w)])
    between = np.array([b for _, b in ratios])
    return {"table1": table1, "table2": table2, "table3": table3,
            "map_r_vol": 100 * vol.ap_vol, "map_r_by_iou": {f"{t:g}": 100 * float(v) for t, v in
                                                             zip(vol.thresholds, vol.mean_ap())},
            "recall_vs_iou": recall_vs_iou,
            "n_gt_per_class": {names[int(c)]: int(g) for c, g in zip(t1.classes, t1.n_gt)},
            "bootstrap": _bootstrap(records, cfg.n_bootstrap, tcfg.seed, list(classes)),
            "embedding_within": float(within.mean()) if within.size else None,
            "embedding_between": float(between.mean()) if between.size else None,
            "n_images": n, "n_gt": int(rec.n_gt), "n_predictions": {f"{a:g}": v for a, v in n_pred.items()},
            "class_names": names}


def run_eval(cfg: FathiEvalConfig, force: bool | None = None) -> Result:
    """Evaluate (or load) one trained net for Tables 1-3 at once."""
    cfg.train.validate()
    return run_experiment(cfg, _evaluate, paper=PAPER, name=cfg.name, profile=cfg.train.profile,
                          seed=cfg.train.seed, force=force)


def evaluations(profile: Profile | str) -> list[Result]:
    """The table evaluation for each training seed ``0 .. profile.seeds_for(PAPER)-1`` (seed 0 fills the tables)."""
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    return [run_eval(eval_config(p, seed)) for seed in range(p.seeds_for(PAPER))]


# --------------------------------------------------------------------------- thin classes
def wu_per_class(profile: Profile | str, row: str = "r50-bs-wl") -> Result:
    """Wu 2016's Table 6 pipeline ``row`` (its nets from Wu's cache), whose result carries
    per-class AP^r. A result cached before per-class AP^r was recorded is recomputed once
    (grouping and evaluation only; the nets stay cached)."""
    cfg = wu.table6_configs(profile)[row]
    res = wu.run_instances(cfg)
    return res if "per_class" in res.metrics else wu.run_instances(cfg, force=True)


def thin_class_frame(runs: Sequence[Result], wu_result: Result | None = None, wu_row: str = "r50-bs-wl"):
    """AP^r of the thin classes and the mean, for every training seed of ours and for Wu 2016's
    pipeline on the same val images (PFN: not run yet)."""
    import pandas as pd

    recs = []
    for r in runs:
        for t in ("0.5", "0.7"):
            recs.append({"method": f"Fathi (ours), seed {r.provenance.get('seed', 0)}", "IoU": t,
                         **{c: _round(r.metrics["table1"][t].get(c)) for c in (*THIN_CLASSES, "mean")}})
    if wu_result is not None:
        for t in ("0.5", "0.7"):
            recs.append({"method": f"Wu 2016 (Table 6 row {wu_row})", "IoU": t,
                         **{c: _round(wu_result.metrics["per_class"][t].get(c)) for c in (*THIN_CLASSES, "mean")}})
    df = pd.DataFrame(recs).set_index(["method", "IoU"])
    counts = runs[0].metrics["n_gt_per_class"]
    df.columns = [f"{c} ({counts.get(c, 0)} instances)" if c in THIN_CLASSES else c for c in df.columns]
    return df


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 2)


# --------------------------------------------------------------------------- tables
T3_AR, T3_MAP = "AR at 50% IOU", "mAPr with α = 0.2"


def table1_ours(res: Result) -> dict[str, dict[str, float | None]]:
    return {f"ours@{t}": dict(v) for t, v in res.metrics["table1"].items()}


def table2_ours(res: Result) -> dict[str, dict[str, float]]:
    return {f"alpha-{a}": {"mAP^r": v} for a, v in res.metrics["table2"].items()}


def table3_ours(res: Result) -> dict[str, dict[str, float]]:
    return {f"n{k}": {T3_AR: v["ar_50"], T3_MAP: v["map_r"]} for k, v in res.metrics["table3"].items()}


def _spread(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def table1_noise(runs: Sequence[Result]) -> Noise:
    """Table 1's noise over training seeds.

    - The class columns (the bicycle claim compares classes): per class, the largest spread of
      its AP^r over the seeds at the three thresholds.
    - ``mean`` (the claims compare thresholds of one net's predictions, a paired comparison):
      σ such that the claim band ``z σ √2`` is ``z`` times the spread over seeds of the
      difference between consecutive thresholds (the larger of the two).
    """
    t1 = [r.metrics["table1"] for r in runs]
    ious = list(t1[0])
    cols = sorted({c for t in t1 for v in t.values() for c in v if c != "mean"})  # sorted: stable outputs
    sigma = {}
    for c in cols:
        per_t = [_spread([t[i][c] for t in t1]) for i in ious if all(t[i].get(c) is not None for t in t1)]
        if per_t:
            sigma[c] = max(per_t)
    diffs = [_spread([t[a]["mean"] - t[b]["mean"] for t in t1]) for a, b in zip(ious[:-1], ious[1:])]
    sigma["mean"] = max(diffs) / math.sqrt(2) if diffs else 0.0
    return Noise(sigma=sigma, chance={"mean": 0.0}, z=t_factor(len(runs)),
                 source=(f"over {len(runs)} trainings with different seeds: per class, the largest spread of its AP^r "
                         f"at the three thresholds; for the class mean, compared between thresholds of one net's "
                         f"predictions, the spread of the difference (largest {max(diffs) if diffs else 0:.2f} "
                         "points); a net that returns no instances scores 0."))


def paired_noise(runs: Sequence[Result], column: str, key: str, pairs: Sequence[tuple[str, str]],
                 extract) -> Noise:
    """One σ for comparisons between rows of one net: for each compared pair of settings, the
    standard deviation of their difference combines the bootstrap over images (of the seed-0
    net, when available) and the spread of the difference over trainings; the claim's band
    is ``z σ √2``, so σ is the largest pair's sd / √2."""
    sds = []
    for a, b in pairs:
        diff_seed = _spread([extract(r, a) - extract(r, b) for r in runs])
        boot = runs[0].metrics.get("bootstrap", {}).get("sd_diff", {})
        db = boot.get(f"{a}-{b}", boot.get(f"{b}-{a}", 0.0)) if key == "alpha" else 0.0
        sds.append(math.hypot(diff_seed, db))
    sigma = max(sds) / math.sqrt(2) if sds else 0.0
    return Noise(sigma={column: sigma}, chance={column: 0.0}, z=t_factor(len(runs)),
                 source=(f"the compared settings are test-time variants of one net, so their differences are "
                         f"paired: σ of a difference (largest {max(sds) if sds else 0:.2f} points) combines "
                         f"{'a bootstrap over the val images and ' if key == 'alpha' else ''}the spread of the "
                         f"difference over {len(runs)} trainings with different seeds."))


def table2_noise(runs: Sequence[Result]) -> Noise:
    alphas = list(runs[0].metrics["table2"])
    pairs = [(a, b) for i, a in enumerate(alphas) for b in alphas[i + 1:]]
    return paired_noise(runs, "mAP^r", "alpha", pairs, lambda r, a: r.metrics["table2"][a])


def table3_seed_counts(res: Result) -> list[str]:
    """Table 3's seed counts in numeric order: result files store keys sorted as strings
    ("10", "100", "1000", "20", ...)."""
    return sorted(res.metrics["table3"], key=int)


def table3_noise(runs: Sequence[Result]) -> dict[str, Noise]:
    """Per Table 3 column; every claim compares settings of one net (pairs of seed counts)."""
    ks = table3_seed_counts(runs[0])
    pairs = [(a, b) for a, b in zip(ks[:-1], ks[1:])] + [(ks[0], ks[-1]), ("100", "1000"), ("10", "100")]
    pairs = [p for p in pairs if p[0] in ks and p[1] in ks]
    out = {}
    for col, key in ((T3_AR, "ar_50"), (T3_MAP, "map_r")):
        out[col] = paired_noise(runs, col, "seeds", pairs, lambda r, k, key=key: r.metrics["table3"][k][key])
    merged = Noise(sigma={c: out[c].sigma[c] for c in out}, chance={c: 0.0 for c in out}, z=out[T3_AR].z,
                   source=out[T3_MAP].source)
    return {f"n{k}": merged for k in ks}


def seed_table(runs: Sequence[Result], rows: dict[str, Any]):
    """Every training seed's numbers side by side (what the noise is measured from)."""
    import pandas as pd

    recs = []
    for r in runs:
        rec = {"seed": r.provenance.get("seed", 0)}
        rec.update({k: round(float(f(r)), 2) for k, f in rows.items()})
        recs.append(rec)
    return pd.DataFrame(recs).set_index("seed")


def provenance_for(runs: Sequence[Result], note: str = ""):
    """Caption provenance: training and evaluation time of the seed-0 net (and its trunk)."""
    from ..papers.render import Provenance

    res = runs[0]
    cfg = eval_config(res.provenance.get("profile", "cpu"))
    tr = run_train(cfg.train)
    trunk = wu.run_semantic(cfg.train.trunk)
    wall = sum(float(x.provenance.get("wall_seconds", 0.0)) for x in (res, tr, trunk))
    return Provenance(dataset=f"{dataset_label('voc', 'val')} ({res.metrics['n_images']} images), "
                                            f"{dataset_label('sbd', 'train')}",
                      profile=cfg.train.profile, hardware=res.provenance.get("device", ""), wall_seconds=wall,
                      note=note)


# --------------------------------------------------------------------------- learning checks
def training_frame(profile: Profile | str):
    """Per training seed: the trunk's COCO-twin mean IoU, the loss at the start and the end,
    the final L_e and L_cls, and the within/between embedding distances on val."""
    import pandas as pd

    p = profile if isinstance(profile, Profile) else get_profile(profile)
    recs = []
    for seed in range(p.seeds_for(PAPER)):
        ecfg = eval_config(p, seed)
        tr, ev = run_train(ecfg.train), run_eval(ecfg)
        le = tr.metrics.get("embedding_loss_curve") or [[0, float("nan")]]
        lc = tr.metrics.get("seediness_loss_curve") or [[0, float("nan")]]
        w, b = ev.metrics.get("embedding_within"), ev.metrics.get("embedding_between")
        recs.append({"seed": seed, "trunk (COCO twin) mean IoU %": round(wu.run_semantic(ecfg.train.trunk).metrics["miou"], 2),
                     "steps": ecfg.train.steps, "first-steps loss": round(tr.metrics["initial_loss"], 3),
                     "final loss": round(tr.metrics["final_loss"], 3), "final L_e": round(le[-1][1], 3),
                     "final L_cls": round(lc[-1][1], 3),
                     "within-instance d²": None if w is None else round(w, 3),
                     "between-instance d²": None if b is None else round(b, 3),
                     "ratio between/within": None if not (w and b) else round(b / w, 2)})
    return pd.DataFrame(recs).set_index("seed")


def loss_figure(profile: Profile | str):
    """L_e and L_cls against the step for the seed-0 net, with λ's schedule."""
    import matplotlib.pyplot as plt

    from ..viz import add_caption

    p = profile if isinstance(profile, Profile) else get_profile(profile)
    cfg = train_config(p)
    tr = run_train(cfg)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for key, label, colour in (("embedding_loss_curve", "L_e (embedding, §3.2)", "tab:blue"),
                               ("seediness_loss_curve", "L_cls (seediness, §3.4)", "tab:orange")):
        c = np.asarray(tr.metrics.get(key) or [], dtype=float)
        if c.size:
            ax.plot(c[:, 0], c[:, 1], lw=1.2, color=colour, label=label)
    ax2 = ax.twinx()
    steps = np.arange(cfg.steps)
    ax2.plot(steps + 1, [fathi_lambda(s, cfg.hold_steps, cfg.ramp_steps, cfg.lam_max) for s in steps],
             color="grey", ls="--", lw=1, label="λ (right axis)")
    ax2.set_ylabel("λ")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (nats)")
    ax.set_title(f"Fathi net training ({cfg.name}, {p.name} profile)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper right")
    fig.tight_layout()
    add_caption(fig, (f"The two losses of L = L_e + λ L_cls (§3.5) during the training of {cfg.name}: λ is 0 for "
                      f"the first {cfg.hold_steps} steps (L_cls is not computed then), then ramps linearly to "
                      f"{cfg.lam_max} over {cfg.ramp_steps} steps (dashed, right axis). The trunk learns at "
                      f"{cfg.trunk_lr_scale}× the heads' rate. Curves are thinned to at most 120 points."))
    return fig


# --------------------------------------------------------------------------- figures
def random_projection_rgb(emb: torch.Tensor, seed: int = 0) -> np.ndarray:
    """Fig. 3: embeddings (d, H, W) projected to RGB by a fixed random matrix, each channel
    stretched to [0, 1] over the image."""
    g = torch.Generator().manual_seed(seed)
    proj = torch.randn(3, emb.shape[0], generator=g)
    rgb = torch.einsum("cd,dhw->hwc", proj, emb)
    lo = rgb.reshape(-1, 3).quantile(0.01, 0)
    hi = rgb.reshape(-1, 3).quantile(0.99, 0)
    return ((rgb - lo) / (hi - lo).clamp(min=1e-6)).clamp(0, 1).numpy()


def overview_figure(profile: Profile | str, index: int = 0, num_seeds: int = 10):
    """Figs. 3-7 on one VOC-twin val image: the image and its ground truth, the embeddings in
    random RGB (Fig. 3), the similarity to the first seed (Fig. 4), the first seeds
    (Fig. 5), the mask-classification map (Fig. 6) and the instances (Fig. 7)."""
    import matplotlib.pyplot as plt

    from ..grouping import instances_from_seeds, sample_seeds, seediness_from_probs
    from ..models.embedding import similarity
    from ..viz import VOC_PALETTE, add_caption, colorize_instances, colorize_labels, masks_to_id_map

    p = profile if isinstance(profile, Profile) else get_profile(profile)
    cfg = train_config(p)
    model = load_model(cfg)
    val = open_dataset("voc", "val", profile=p.name)
    s = val[index]
    emb, probs = predict(model, s.image)
    seeds = sample_seeds(emb, probs, FATHI_TAUS, num_seeds, TABLE1_ALPHA)
    inst = instances_from_seeds(emb, seeds)
    h, w = s.size
    first = emb.reshape(emb.shape[0], -1)[:, seeds.index[:1]].T if seeds.index.numel() else emb[:, 0, :1].T
    sim = similarity(pairwise_sq_distances(first, emb.reshape(emb.shape[0], -1).T))[0].reshape(h, w).numpy()
    sd = seediness_from_probs(probs)
    cls_rgb = VOC_PALETTE[sd.classes.numpy() % len(VOC_PALETTE)].astype(float) / 255
    score = sd.score.numpy()[..., None]
    bg = (probs[:, 0].max(0).values.numpy() > score[..., 0])[..., None]
    heat = np.where(bg, 1.0, cls_rgb * score)  # white: a background mask wins; darker: a poorer mask
    keep = inst.scores >= 0.5 if inst.scores.numel() else inst.scores.bool()
    inst_img = colorize_instances(masks_to_id_map(inst.masks[keep].numpy())) if keep.any() else \
        np.zeros((h, w, 3), np.uint8)
    yx = seeds.yx(w).numpy()
    fig, axes = plt.subplots(2, 4, figsize=(11, 5.6))
    panels = [(s.image, "image"), (colorize_instances(s.instances), "ground-truth instances"),
              (colorize_labels(s.semantic), "ground-truth classes"), (random_projection_rgb(emb), "Fig. 3: embeddings (random RGB)"),
              (sim, "Fig. 4: σ(seed 1, q)"), (s.image, f"Fig. 5: first {len(yx)} seeds (α = {TABLE1_ALPHA})"),
              (heat, "Fig. 6: mask classification"), (inst_img, "Fig. 7: instances with s_p ≥ 0.5")]
    for ax, (img, title) in zip(axes.ravel(), panels):
        ax.imshow(img, cmap="magma" if img is sim else None, vmin=0 if img is sim else None,
                  vmax=1 if img is sim else None)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    ax5 = axes.ravel()[5]
    ax5.scatter(yx[:, 1], yx[:, 0], s=40, facecolors="none", edgecolors="yellow", linewidths=1.2)
    for k, (y, x) in enumerate(yx):
        ax5.annotate(str(k + 1), (x, y), color="yellow", fontsize=7, xytext=(3, -3), textcoords="offset points")
    if len(yx):
        axes.ravel()[4].scatter(yx[:1, 1], yx[:1, 0], s=40, facecolors="none", edgecolors="cyan")
    fig.tight_layout()
    add_caption(fig, (f"Fathi et al. Figs. 3-7 on {dataset_label('voc', 'val')} image {index} ({cfg.name}, "
                      f"{p.name} profile). "
                      "Fig. 3: the 64-d embeddings through one fixed random 3 x 64 projection, each channel stretched "
                      "over the image; pixels of one instance should share a colour. Fig. 4: similarity σ (Eq. 1) of "
                      "every pixel to the first seed (cyan circle), 1 bright, 0 dark. Fig. 5: the first seeds in "
                      "selection order. Fig. 6: each pixel's best mask class c_p in the VOC palette, darker for a "
                      "lower seediness S_p, white where background wins. Fig. 7: masks grown from the first seeds, "
                      "those with confidence s_p ≥ 0.5."))
    return fig


def per_class_figure(res: Result, iou: str = "0.5"):
    """Our per-class AP^r beside the paper's "Ours" row, thin classes marked."""
    import matplotlib.pyplot as plt

    from ..papers import TABLES
    from ..viz import add_caption

    table = TABLES["fathi2017.table1"]
    paper = table.row(f"ours@{iou}").cells
    ours = res.metrics["table1"][iou]
    names = [c for c in table.value_columns if c != "mean"]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(9, 3.2))
    ax.bar(x - 0.2, [paper[c] for c in names], 0.4, label="paper (VOC 2012 val)", color="lightgrey")
    ax.bar(x + 0.2, [ours.get(c) or 0.0 for c in names], 0.4, label=f"ours ({dataset_label('voc', 'val')})",
           color="tab:blue")
    ax.set_xticks(x, names, rotation=60, fontsize=7)
    for lab in ax.get_xticklabels():
        if lab.get_text() in THIN_CLASSES:
            lab.set_color("crimson")
    ax.set_ylabel(f"AP^r at IoU {iou} (%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    add_caption(fig, (f"Per-class AP^r at IoU {iou}: the paper's Table 1 'Ours' row (grey) and ours on the "
                      f"{dataset_label('voc')} "
                      f"(blue, seed-0 net, α = {TABLE1_ALPHA}, {NUM_SEEDS} seeds). Classes in red are the thin "
                      "('spindly') ones of §1. A class absent from the val subset has no bar."))
    return fig


def recall_figure(runs: Sequence[Result]):
    """§4.1's two proposal plots: recall at IoU 0.5 against the number of proposals, and AR."""
    import matplotlib.pyplot as plt

    from ..papers import TABLES
    from ..viz import add_caption

    table = TABLES["fathi2017.table3"]
    ks = [int(k) for k in table3_seed_counts(runs[0])]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    axes[0].plot(ks, [table.row(f"n{k}").cells[T3_AR] for k in ks], "o--", color="grey", label="paper")
    for r in runs:
        seed = r.provenance.get("seed", 0)
        axes[0].plot(ks, [r.metrics["table3"][str(k)]["ar_50"] for k in ks], ".-", lw=1,
                     label=f"ours, seed {seed} (class agnostic)")
        axes[1].plot(ks, [r.metrics["table3"][str(k)]["ar"] for k in ks], ".-", lw=1, label=f"ours, seed {seed}")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("number of proposals (seeds)")
    axes[0].set_ylabel("recall at IoU 0.5 (%)")
    axes[1].set_ylabel("AR, IoU 0.5:0.95 (%)")
    axes[0].legend(fontsize=6)
    axes[1].legend(fontsize=6)
    fig.tight_layout()
    add_caption(fig, ("Left: class-agnostic recall at IoU 0.5 of the first n seeds' masks (α = 0.2), ours for every "
                      "training seed against the paper's Table 3 row. Right: the average recall over IoU 0.5:0.05:0.95 "
                      "(Hosang et al.), the area under recall-versus-IoU, which the paper describes (§4.1) but does not "
                      "print. Both are non-decreasing in n by construction: the first n seeds are a prefix of the "
                      "first n + 1."))
    return fig


def recall_iou_figure(runs: Sequence[Result]):
    """Recall against the IoU threshold for 10, 100 and 1,000 proposals (§4.1's second plot),
    from the seed-0 net's stored per-threshold recall."""
    import matplotlib.pyplot as plt

    from ..viz import add_caption

    curves = runs[0].metrics.get("recall_vs_iou")
    fig, ax = plt.subplots(figsize=(5, 3.2))
    if curves:
        for k, ys in curves["recall"].items():
            ax.plot(curves["ious"], ys, ".-", label=f"{k} proposals")
    ax.set_xlabel("IoU threshold")
    ax.set_ylabel("recall (%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    add_caption(fig, "Class-agnostic recall against the IoU threshold for a fixed number of proposals (first seeds, "
                     "α = 0.2), seed-0 net; the area under each curve over 0.5-0.95 is its AR.")
    return fig
