"""Label statistics of a dataset, computed exactly as ``voc2012_label_statistics.json``.

The same function runs on the real VOC statistics' definition and on the twin, so the
comparison in ``notebooks/data_twin.ipynb`` is like for like: components are 8-connected
regions of one class of at least 16 px *at 500 x 375*, i.e. a minimum area fraction of
16 / 187,500 of the image (at least one pixel on small twin images).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd
from scipy import ndimage

from .calibration import VOC2012_TARGETS
from .classes import VOC_CLASSES

MIN_COMPONENT_FRACTION = 16 / (375 * 500)
QUANTILES = (5, 25, 50, 75, 95)
_EIGHT = np.ones((3, 3), bool)


def label_statistics(label_maps: Iterable[np.ndarray], class_names: tuple[str, ...] = VOC_CLASSES,
                     min_component_fraction: float = MIN_COMPONENT_FRACTION, void: int = 255) -> dict:
    """Statistics of class maps (0 = background, ``void`` ignored), VOC JSON schema."""
    K = len(class_names)
    pix = np.zeros(K, np.float64)
    void_px = total_px = 0.0
    classes_per_image: list[int] = []
    comps_per_image: list[int] = []
    comp_fracs: list[float] = []
    comp_fracs_by_class: list[list[float]] = [[] for _ in range(K)]
    comps_given_class: list[list[int]] = [[] for _ in range(K)]
    n = 0
    for lab in label_maps:
        n += 1
        area = lab.size
        total_px += area
        hist = np.bincount(lab.ravel(), minlength=256)
        pix += hist[:K]
        void_px += hist[void]
        present = [c for c in range(1, K) if hist[c] > 0]
        classes_per_image.append(len(present))
        thr = max(1, int(round(min_component_fraction * area)))
        total = 0
        for c in present:
            lab_c, m = ndimage.label(lab == c, _EIGHT)
            sizes = np.bincount(lab_c.ravel())[1:]
            sizes = sizes[sizes >= thr]
            comps_given_class[c].append(len(sizes))
            fr = (sizes / area).tolist()
            comp_fracs += fr
            comp_fracs_by_class[c] += fr
            total += len(sizes)
        comps_per_image.append(total)
    q = lambda xs: [float(v) for v in np.percentile(xs, QUANTILES)] if len(xs) else [float("nan")] * 5  # noqa: E731
    hist_k = np.bincount(classes_per_image, minlength=6)
    return {
        "n_images": n,
        "pixel_fraction": {class_names[c]: float(pix[c] / max(total_px, 1)) for c in range(K)},
        "void_fraction": float(void_px / max(total_px, 1)),
        "classes_per_image_hist": {str(k): int(hist_k[k]) for k in range(len(hist_k)) if k > 0 and hist_k[k] > 0},
        "components_per_image_quantiles_5_25_50_75_95": q(comps_per_image),
        "component_area_fraction_quantiles_5_25_50_75_95": q(comp_fracs),
        "images_with_class": {class_names[c]: len(comps_given_class[c]) for c in range(1, K)},
        "mean_components_per_image_given_class": {
            class_names[c]: float(np.mean(comps_given_class[c])) if comps_given_class[c] else float("nan") for c in range(1, K)},
        "median_component_area_fraction_by_class": {
            class_names[c]: float(np.median(comp_fracs_by_class[c])) if comp_fracs_by_class[c] else float("nan") for c in range(1, K)},
    }


def dataset_statistics(dataset, limit: int | None = None) -> dict:
    """:func:`label_statistics` of a reader's class maps (first ``limit`` images)."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    return label_statistics((dataset.load(i).semantic for i in range(n)), dataset.class_names)


def twin_statistics(n: int = 300, image_size: int = 375, split: str = "train", seed: int = 0) -> dict:
    """Statistics of ``n`` VOC-twin class maps rendered in memory (void band included).

    Rendering at VOC's own resolution (375 px short side) compares the generator's
    calibration with VOC without the low-resolution effects of the cpu profile.
    """
    from .synthetic import render
    from .writers import voc_void

    def maps():
        for i in range(n):
            sc = render("voc", split, i, seed, image_size)
            lab = sc.semantic.copy()
            lab[voc_void(sc)] = 255
            yield lab

    return label_statistics(maps())


def compare_summary(twin: dict, real: dict = VOC2012_TARGETS) -> pd.DataFrame:
    """Scalar statistics side by side (rows: statistic, columns: VOC 2012, twin)."""
    rows = []

    def add(name, r, t):
        rows.append({"statistic": name, "VOC 2012": r, "twin": t})

    add("background pixel fraction", real["pixel_fraction"]["background"], twin["pixel_fraction"]["background"])
    add("void pixel fraction", real["void_fraction"], twin["void_fraction"])
    rh, th = real["classes_per_image_hist"], twin["classes_per_image_hist"]
    rn, tn = sum(rh.values()), max(sum(th.values()), 1)
    for k in ("1", "2", "3", "4", "5"):
        add(f"P({k} classes in an image)", rh.get(k, 0) / rn, th.get(k, 0) / tn)
    for name, key in (("components per image", "components_per_image_quantiles_5_25_50_75_95"),
                      ("component area fraction", "component_area_fraction_quantiles_5_25_50_75_95")):
        for qq, r, t in zip(QUANTILES, real[key], twin[key]):
            add(f"{name}, {qq}% quantile", r, t)
    return pd.DataFrame(rows).set_index("statistic")


def compare_per_class(twin: dict, real: dict = VOC2012_TARGETS) -> pd.DataFrame:
    """Per-class statistics side by side: image frequency, components per image, median size."""
    rn = real.get("n_images", 2913)
    tn = max(twin.get("n_images", 1), 1)
    rows = []
    for c in VOC_CLASSES[1:]:
        rows.append({
            "class": c,
            "images with class, VOC": real["images_with_class"][c] / rn,
            "images with class, twin": twin["images_with_class"].get(c, 0) / tn,
            "components/image, VOC": real["mean_components_per_image_given_class"][c],
            "components/image, twin": twin["mean_components_per_image_given_class"].get(c, float("nan")),
            "median area, VOC": real["median_component_area_fraction_by_class"][c],
            "median area, twin": twin["median_component_area_fraction_by_class"].get(c, float("nan")),
            "pixel fraction, VOC": real["pixel_fraction"][c],
            "pixel fraction, twin": twin["pixel_fraction"].get(c, float("nan")),
        })
    return pd.DataFrame(rows).set_index("class")


def colour_separability(samples: Iterable, num_classes: int, seed: int = 0) -> dict:
    """How well an instance's mean colour predicts its class (nearest class-mean colour).

    Returns balanced accuracy on a held-out half and the chance level ``1/K_present``. The
    twin's per-instance appearance is drawn from class-independent distributions, so this
    should sit near chance: class must be learned from shape, not colour.
    """
    feats, labels = [], []
    for s in samples:
        img = s.image.reshape(-1, 3).astype(np.float32)
        for i, c in enumerate(s.instance_classes, start=1):
            m = (s.instances == i).ravel()
            if m.sum() >= 4:
                feats.append(np.concatenate([img[m].mean(0), img[m].std(0)]))
                labels.append(int(c))
    X, y = np.array(feats), np.array(labels)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(y))
    tr, te = perm[: len(y) // 2], perm[len(y) // 2:]
    classes = [c for c in range(num_classes) if (y[tr] == c).any() and (y[te] == c).any()]
    means = np.stack([X[tr][y[tr] == c].mean(0) for c in classes])
    pred = np.array(classes)[np.argmin(((X[te][:, None, :] - means[None]) ** 2).sum(-1), axis=1)]
    recalls = [float((pred[y[te] == c] == c).mean()) for c in classes]
    return {"balanced_accuracy": float(np.mean(recalls)), "chance": 1.0 / len(classes), "n_instances": int(len(y)),
            "n_classes": len(classes)}
