"""Pieces every paper's recipe shares: tensors from samples, datasets of the twin, and the
semantic evaluation loop."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..data import Sample, open_dataset
from ..data.registry import dataset_label
from ..metrics import SemanticEvaluator
from ..profiles import Profile, get_profile
from ..train import progress_enabled

#: ImageNet statistics: torchvision's pretrained ResNets expect them.
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def image_tensor(image: np.ndarray) -> torch.Tensor:
    """``(H,W,3)`` uint8 RGB -> normalised ``(3,H,W)`` float32."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
    return (x - MEAN) / STD


def rgb_tensor(image: np.ndarray) -> torch.Tensor:
    """``(H,W,3)`` uint8 RGB -> ``(3,H,W)`` float in 0..255 (the dense CRF's colour units, as pydensecrf)."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()


def gt_instance_masks(sample: Sample) -> np.ndarray:
    """``(N, H, W)`` bool: the sample's ground-truth instances ``1..N`` (the AP^r evaluators' input)."""
    n = sample.num_instances
    return np.stack([sample.instances == k for k in range(1, n + 1)]) if n else np.zeros((0, *sample.size), bool)


def flip_boxes(boxes: np.ndarray, width: int) -> np.ndarray:
    """``(N, 4)`` ``x0, y0, x1, y1`` boxes of an image ``width`` px wide, mirrored left-right."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    b[:, [0, 2]] = width - b[:, [2, 0]]
    return b


def to_tensors(sample: Sample) -> dict[str, Any]:
    """The tensors a training step needs from one sample."""
    return {
        "image": image_tensor(sample.image),
        "semantic": torch.from_numpy(sample.semantic.astype(np.int64)),
        "instances": torch.from_numpy(sample.instances.astype(np.int64)),
    }


class TensorDataset(torch.utils.data.Dataset):
    """Wraps a dataset of :class:`Sample` with a joint transform and a tensor conversion."""

    def __init__(self, base, transform: Callable[[Sample], Sample] | None,
                 convert: Callable[[Sample], Any] = to_tensors) -> None:
        self.base, self.transform, self.convert = base, transform, convert

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        s = self.base[i]
        if self.transform is not None:
            s = self.transform(s)
        return self.convert(s)


def collate_dicts(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def dataset_fingerprint_of(ds) -> str | None:
    """The fingerprint of the folder a reader reads (recorded in provenance)."""
    from ..data import dataset_fingerprint

    base = ds.dataset if isinstance(ds, torch.utils.data.Subset) else ds
    root = getattr(base, "root", None)
    return dataset_fingerprint(root) if root is not None else None


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Zero-pad ``(B,3,H,W)`` on the bottom/right so H and W divide ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = nn.functional.pad(x, (0, pw, 0, ph))
    return x, (h, w)


@torch.no_grad()
def predict_probabilities(model: nn.Module, image: np.ndarray, device: str, multiple: int = 16) -> torch.Tensor:
    """Softmax probabilities ``(C,H,W)`` of one full image (padded to a stride multiple)."""
    x, (h, w) = pad_to_multiple(image_tensor(image)[None].to(device), multiple)
    return model(x)[0, :, :h, :w].softmax(0).float().cpu()


def _semantic_scores(dataset, num_classes: int, predict: Callable[[Sample], np.ndarray], desc: str) -> dict[str, Any]:
    ev = SemanticEvaluator(num_classes)
    for i in tqdm(range(len(dataset)), desc=desc, disable=not progress_enabled(), leave=False):
        s = dataset[i]
        ev.add(s.semantic, predict(s), s.image_id)
    scores = ev.compute()
    return {
        "pixel_acc": 100 * scores.pixel_acc,
        "mean_acc": 100 * scores.mean_acc,
        "miou": 100 * scores.mean_iou,
        "per_class_iou": [None if np.isnan(v) else 100 * float(v) for v in scores.per_class_iou],
    }


@torch.no_grad()
def evaluate_semantic(model: nn.Module, dataset, num_classes: int, device: str, desc: str = "eval") -> dict[str, Any]:
    """Pixel accuracy, mean accuracy, mean IoU and per-class IoU, in per cent (Wu §3.1)."""
    model.eval()
    return _semantic_scores(dataset, num_classes,
                            lambda s: predict_probabilities(model, s.image, device).argmax(0).numpy(), desc)


def evaluate_constant(dataset, num_classes: int, label: int = 0) -> dict[str, Any]:
    """The scores of the trivial predictor that outputs ``label`` everywhere (the chance
    level of :func:`evaluate_semantic`, on the same images and with the same evaluator)."""
    return _semantic_scores(dataset, num_classes, lambda s: np.full(s.semantic.shape, label, np.int64),
                            "chance level")


def t_factor(n_runs: int, level: float = 0.95) -> float:
    """Two-sided Student-t quantile for a spread estimated from ``n_runs`` seeds.

    With σ estimated from few runs, ``t * σ`` (``n_runs - 1`` degrees of freedom) is the
    honest half-width of a ``level`` band, where 2σ would assume σ is known: 4.30 for 3
    seeds, 12.7 for 2.
    """
    if n_runs < 2:
        raise ValueError(f"a spread needs at least 2 runs, got {n_runs}")
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, n_runs - 1))


def seed_spread(values: Sequence[Mapping[str, float | None]]) -> dict[str, float]:
    """Per key, the sample standard deviation (ddof=1) over runs that differ only in seed.

    Keys with a missing value in any run, or with fewer than two runs, are left out.
    """
    if len(values) < 2:
        return {}
    out = {}
    for key in values[0]:
        xs = [v.get(key) for v in values]
        if all(x is not None for x in xs):
            out[key] = float(np.std(np.asarray(xs, dtype=float), ddof=1))
    return out


def class_frequencies(dataset: str, profile: Profile | str) -> np.ndarray:
    """Pixel frequency of each class over the training split of a twin, void excluded.

    Cached per process by the twin's content fingerprint: a notebook asks for it once for the
    trivial predictor and once for the prior entropy, and re-reading the split is slow.
    """
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    ds = open_dataset(dataset, "train", profile=p.name)
    return _class_frequencies(dataset, p.name, dataset_fingerprint_of(ds)).copy()


@lru_cache(maxsize=16)
def _class_frequencies(dataset: str, profile: str, fingerprint: str | None) -> np.ndarray:
    ds = open_dataset(dataset, "train", profile=profile)
    counts = np.zeros(ds.num_classes, np.int64)
    for i in range(len(ds)):
        sem = ds[i].semantic
        counts += np.bincount(sem[sem != 255].ravel(), minlength=ds.num_classes)[: ds.num_classes]
    return counts / max(int(counts.sum()), 1)


def trivial_predictor_scores(dataset: str, profile: Profile | str) -> tuple[dict[str, Any], str, int]:
    """The chance level every recipe's noise uses: :func:`evaluate_constant` of the training
    set's most frequent class on the profile's val subset. Returns ``(scores, that class's
    name, number of images)``."""
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    val = open_dataset(dataset, "val", profile=p.name)
    names = list(val.class_names)
    if p.eval_subset is not None and p.eval_subset < len(val):
        val = torch.utils.data.Subset(val, range(p.eval_subset))
    label = int(np.argmax(class_frequencies(dataset, p)))
    return evaluate_constant(val, len(names), label), names[label], len(val)


def class_prior_entropy(dataset: str, profile: Profile | str) -> float:
    """Entropy (nats) of the training set's pixel class frequencies, void excluded.

    A net that knows only how common each class is, and nothing about the image, reaches a
    cross-entropy loss of about this value; a lower loss means it learned more.
    """
    f = class_frequencies(dataset, profile)
    f = f[f > 0]
    return float(-(f * np.log(f)).sum())


# --------------------------------------------------------------------------- the shared recipe
def recipe_settings(profile: Profile | str) -> dict[str, Any]:
    """Optimiser, learning rate and warm-up every paper's fine-tuning takes from the profile.

    Chosen from measured learning curves (``benchmarks/learnability.py``), not from the
    papers' SGD settings: SGD at lr 0.01 with momentum on the linear FCRN head took the
    loss from about 3 to 8-37 within ten steps at cpu scale, while Adam at 1e-3 with a
    short linear warm-up did not. The gpu profile keeps the papers' SGD.
    """
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    return {"optimizer": str(p.extra.get("optimizer", "adam")), "lr": float(p.extra.get("lr", 1e-3)),
            "warmup_steps": int(p.extra.get("warmup_steps", max(1, p.train_steps // 20)))}


def loss_record(losses: Sequence[float], points: int = 120) -> dict[str, Any]:
    """What a result keeps of its loss history: start, end, and a curve of at most ``points``.

    ``final_loss`` is the mean of the last tenth of the steps (at least 10), so one noisy
    batch does not decide whether a run learned.
    """
    xs = np.asarray(losses, dtype=float)
    if xs.size == 0:
        return {"initial_loss": None, "final_loss": None, "loss_curve": []}
    tail = max(10, xs.size // 10)
    idx = np.unique(np.linspace(0, xs.size - 1, min(points, xs.size)).round().astype(int))
    # Each curve point is the mean of the steps around it, so the plot shows the trend.
    half = max(1, xs.size // (2 * len(idx)))
    curve = [[int(i) + 1, round(float(xs[max(0, i - half):i + half + 1].mean()), 4)] for i in idx]
    return {"initial_loss": float(xs[:5].mean()), "final_loss": float(xs[-tail:].mean()), "loss_curve": curve}


class PlanResults(dict):
    """``{row_id: Result}`` of a table plan, plus ``diverged``: ``{row_id: message}`` of the rows
    whose training stopped as diverged (they have no numbers and are never cached)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.diverged: dict[str, str] = {}


def learning_status(final_loss: float | None, prior_entropy: float, at_chance: bool | None) -> str:
    """A one-phrase verdict on whether a run learned from the images.

    - ``diverged`` is set by the caller for runs that stopped;
    - ``not learning``: its final loss is at or above the class-prior entropy, so it knows no
      more than how common each class is;
    - ``at the trivial predictor's level``: its score is within the noise band of the
      trivial predictor's;
    - ``learned`` otherwise.
    """
    if final_loss is None or not np.isfinite(final_loss):
        return "diverged"
    if final_loss >= prior_entropy:
        return "not learning (loss at or above the class-prior entropy)"
    if at_chance:
        return "at the trivial predictor's level"
    return "learned"


def learning_frame(results: Mapping[str, Any], noise, dataset: str, profile: Profile | str,
                   column: str = "Mean IoU %", key: str = "miou"):
    """Did the nets learn beyond class frequencies? One row per run: its score next to the
    trivial predictor's, its final training loss next to the class-prior entropy, its
    initialisation, and a status flag (:func:`learning_status`). Diverged rows of a
    :class:`PlanResults` are listed too, flagged."""
    import pandas as pd

    h = class_prior_entropy(dataset, profile)
    recs = []
    for rid, r in results.items():
        n = noise.get(rid) if isinstance(noise, Mapping) else noise  # one estimate, or one per row
        chance = n.chance.get(column) if n is not None else None
        at_chance = None if chance is None else bool(n.at_chance(column, r.metrics[key]))
        init = (r.provenance.get("notes", {}).get("init") or {}).get("init", "")
        recs.append({"row": rid, f"{column}": round(r.metrics[key], 2),
                     f"trivial predictor {column}": None if chance is None else round(chance, 2),
                     "final training loss": round(r.metrics["final_loss"], 3),
                     "first-steps loss": None if r.metrics.get("initial_loss") is None else round(r.metrics["initial_loss"], 3),
                     "class-prior entropy": round(h, 3), "initialisation": init,
                     "status": learning_status(r.metrics["final_loss"], h, at_chance)})
    for rid, why in getattr(results, "diverged", {}).items():
        recs.append({"row": rid, "status": "diverged", "initialisation": why})
    return pd.DataFrame(recs)


def loss_curves_figure(results: Mapping[str, Any], dataset: str, profile: Profile | str, title: str = "",
                       prior_entropy: bool = True, ylabel: str = "training loss (nats)", caption: str | None = None):
    """Every run's training-loss curve on one axis, with the class-prior entropy as a line
    (for cross-entropy losses): a curve that ends above it learned nothing from the images.

    The figure carries a caption (``caption`` replaces the default one) and a legend of the runs."""
    import matplotlib.pyplot as plt

    from ..viz import add_caption

    p = profile if isinstance(profile, Profile) else get_profile(profile)
    h = class_prior_entropy(dataset, p) if prior_entropy else None
    fig, ax = plt.subplots(figsize=(7, 3.2))
    cmap = plt.get_cmap("viridis")
    items = [(rid, r) for rid, r in results.items() if r.metrics.get("loss_curve")]
    for k, (rid, r) in enumerate(items):
        c = np.asarray(r.metrics["loss_curve"], dtype=float)
        ax.plot(c[:, 0], c[:, 1], lw=1.2, color=cmap(k / max(1, len(items) - 1)), label=rid)
    if h is not None:
        ax.axhline(h, color="crimson", ls="--", lw=1, label="class-prior entropy")
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"Training loss of every run ({dataset_label(dataset)}, {p.name} profile)")
    if len(items) <= 16:
        ax.legend(fontsize=6, ncol=2, loc="upper right")
    fig.tight_layout()
    add_caption(fig, caption or loss_curves_caption([rid for rid, _ in items], len(results), dataset, p.name, h))
    return fig


def loss_curves_caption(runs: Sequence[str], n_results: int, dataset: str, profile: str,
                        prior_entropy: float | None) -> str:
    """The default caption of :func:`loss_curves_figure`."""
    if not runs:
        return (f"Training loss: none of the {n_results} runs ({dataset_label(dataset)}, {profile} profile) recorded a "
                "loss curve, so the axes are empty.")
    text = (f"Training loss of {len(runs)} run{'s' if len(runs) != 1 else ''} ({profile} profile) against the "
            "training step; each point is the mean of the steps around it. ")
    text += ("The legend names the runs (colours from dark to light in the order of the table). " if len(runs) <= 16
             else "Colours go from dark to light in the order of the table (no legend for so many runs). ")
    if n_results > len(runs):
        text += f"{n_results - len(runs)} run(s) without a recorded curve are left out. "
    if prior_entropy is not None:
        text += (f"The dashed red line is the class-prior entropy of the training labels of the "
                 f"{dataset_label(dataset)} "
                 f"({prior_entropy:.3f} nats), the loss of a net "
                 "that knows only how common each class is: a curve that ends above it learned nothing from "
                 "the images.")
    else:
        text += ("This loss has no class prior to compare with: a net that learned nothing ends about where it "
                 "started.")
    return text
