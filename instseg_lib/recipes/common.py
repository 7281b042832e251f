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


def class_prior_entropy(dataset: str, profile: Profile | str) -> float:
    """Entropy (nats) of the training set's pixel class frequencies, void excluded.

    A net that knows only how common each class is, and nothing about the image, reaches a
    cross-entropy loss of about this value; a lower loss means it learned more.
    """
    f = class_frequencies(dataset, profile)
    f = f[f > 0]
    return float(-(f * np.log(f)).sum())
