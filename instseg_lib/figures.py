"""The figures of the book's pages outside the paper recipes: the synthetic twin
(``notebooks/data_twin``) and the metrics chapter (``notebooks/how_we_measure``).

Every function returns a matplotlib figure that carries its caption, and a legend where
colours stand for classes or series, through :func:`instseg_lib.viz.add_caption`, as the
recipes' figures do; the notebooks call them and ``plt.show()``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .profiles import Profile, get_profile
from .viz import add_caption, class_handles, colorize_instances, colorize_labels, draw_boxes, image_grid

# --------------------------------------------------------------------------- the twin
#: What each preset of the twin is, for the caption of its example.
PRESET_NOTES = {
    "voc": "VOC's 255 void band runs around every object outline",
    "sbd": "SBD has no void label",
    "cityscapes": "2:1 street scenes with many small distant objects; the class ids are Cityscapes' train ids",
    "context": "stuff is labelled everywhere and there are no instances",
    "boxes": "boxes are the only supervision (BoxSup's)",
    "coco": "more crowded, and crowds are void",
}


def preset_figure(name: str, profile: Profile | str, index: int = 1, split: str = "train"):
    """One image of a twin preset as its reader returns it: image, class map, instances, boxes."""
    from .data import open_dataset

    p = profile if isinstance(profile, Profile) else get_profile(profile)
    s = open_dataset(name, split, profile=p)[index]
    row = [s.image, colorize_labels(s.semantic), colorize_instances(s.instances), s.image]
    titles = ["image", "class map", "instances", f"image with boxes ({len(s.boxes)})"]
    caption = (f"The {name} preset ({p.name} profile): {split} image {s.image_id} "
               f"({s.image.shape[1]}x{s.image.shape[0]} px) as the {name} reader returns it; "
               f"{PRESET_NOTES.get(name, 'a preset of the twin')}. From left: the image; its class map in the VOC "
               "palette (void in cream; the legend names the classes shown); its instance map, one random colour "
               "per instance (black: no instance); its boxes, in yellow.")
    fig = image_grid([row], titles, size=2.2, caption=caption, class_names=s.class_names)
    draw_boxes(fig.axes[3], s.boxes)
    return fig


def calibration_per_class_figure(per_class, n_images: int | None = None):
    """Per-class label statistics of VOC 2012 and of the twin side by side (``compare_per_class``)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 2, figsize=(13, 8))
    x = np.arange(len(per_class))
    panels = [("images with class", "fraction of images containing the class", False),
              ("components/image", "components per image, given the class", False),
              ("median area", "median component area (fraction of image)", True),
              ("pixel fraction", "fraction of all pixels", True)]
    for a, (col, title, log) in zip(ax.ravel(), panels):
        a.bar(x - 0.2, per_class[f"{col}, VOC"], 0.4, label="VOC 2012")
        a.bar(x + 0.2, per_class[f"{col}, twin"], 0.4, label="twin (375 px)")
        a.set_xticks(x, per_class.index, rotation=70)
        a.set_title(title)
        if log:
            a.set_yscale("log")
    ax[0, 0].legend()
    fig.tight_layout()
    images = f"{n_images} images" if n_images else "its images"
    add_caption(fig, "Per-class label statistics of the 2,913 official VOC 2012 trainval class maps (blue) and of "
                     f"the twin's generator rendered at VOC's 375 px ({images}, orange): how often each class occurs, "
                     "how many 8-connected components it has per image where it occurs, their median area and the "
                     "class's share of all pixels (the lower two on a log scale).")
    return fig


def calibration_quantiles_figure(real: Mapping[str, Any], twin_375: Mapping[str, Any],
                                 twin_disk: Mapping[str, Any], image_size: int):
    """Component-area quantiles and classes per image: VOC 2012, the twin at 375 px, the twin on disk."""
    import matplotlib.pyplot as plt

    q = [5, 25, 50, 75, 95]
    key = "component_area_fraction_quantiles_5_25_50_75_95"
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.5))
    ax[0].semilogy(q, real[key], "o-", label="VOC 2012")
    ax[0].semilogy(q, twin_375[key], "s-", label="twin (375 px)")
    ax[0].semilogy(q, twin_disk[key], "^-", label=f"twin on disk ({image_size} px)")
    ax[0].set_title("component area quantiles")
    ax[0].set_xlabel("quantile (%)")
    ax[0].set_ylabel("fraction of the image")
    ax[0].legend()
    rh, th = real["classes_per_image_hist"], twin_375["classes_per_image_hist"]
    k = [str(i) for i in range(1, 6)]
    ax[1].bar(np.arange(5) - 0.2, [rh.get(i, 0) / sum(rh.values()) for i in k], 0.4, label="VOC 2012")
    ax[1].bar(np.arange(5) + 0.2, [th.get(i, 0) / max(sum(th.values()), 1) for i in k], 0.4, label="twin (375 px)")
    ax[1].set_xticks(range(5), k)
    ax[1].set_title("classes per image")
    ax[1].set_ylabel("fraction of images")
    ax[1].legend()
    fig.tight_layout()
    add_caption(fig, "Left: the 5th to 95th percentiles of the area of a component (an 8-connected region of one "
                     "class), as a fraction of the image, in VOC 2012, in the twin rendered at 375 px and in the twin "
                     f"as written to disk at the profile's {image_size} px (small images merge or drop the tiniest "
                     "components). Right: the share of images with 1 to 5 object classes.")
    return fig


def class_looks_figure(n: int = 12, seed: int = 0):
    """Each VOC class's look in twin version 2: body, secondary and accent colours of ``n`` instances."""
    import matplotlib.pyplot as plt

    from .data.classes import VOC_CLASSES
    from .data.looks import appearance_of

    rng = np.random.default_rng(seed)
    names = VOC_CLASSES[1:]
    swatch = np.stack([np.concatenate([np.stack(appearance_of(rng, name, off_palette=0.0).colors[:3])[:, None]
                                       for _ in range(n)], 1) for name in names])
    fig, ax = plt.subplots(figsize=(9, 6))
    ax.imshow(swatch.transpose(0, 2, 1, 3).reshape(len(names), 3 * n, 3), aspect="auto", interpolation="nearest")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xticks([])
    ax.set_xlabel(f"{n} instances x (body, secondary, accent)")
    ax.set_title("Twin v2 class looks")
    fig.tight_layout()
    add_caption(fig, f"One row per VOC object class: the body, secondary and accent colours of {n} instances drawn "
                     f"from the class's look (seed {seed}, the 8% off-palette draw turned off). Rows that look alike "
                     "(cow, sheep and horse; cat and dog; bus and train) overlap on purpose, as in VOC.")
    return fig


# --------------------------------------------------------------------------- how we measure
def toy_class_names(n_classes: int) -> tuple[str, ...]:
    """The toy benchmark's class names: ``background``, ``class 1`` ... ``class n``."""
    return ("background", *(f"class {k}" for k in range(1, n_classes + 1)))


def toy_image_figure(im, n_classes: int):
    """One toy image (``metrics.toy``): its class map, its ground-truth instances and how many
    predictions cover each pixel."""
    import matplotlib.pyplot as plt

    gt_inst = np.zeros(im.gt_masks.shape[1:], int)
    for k, m in enumerate(im.gt_masks):
        gt_inst[m] = k + 1
    names = toy_class_names(n_classes)
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    axes[0].imshow(colorize_labels(im.semantic_gt), interpolation="nearest")
    axes[0].set_title("ground-truth classes")
    axes[1].imshow(colorize_instances(gt_inst), interpolation="nearest")
    axes[1].set_title(f"{len(im.gt_classes)} ground-truth instances")
    count = im.pred_masks.sum(0) if len(im.pred_masks) else np.zeros(im.semantic_gt.shape, int)
    overlap = axes[2].imshow(count, cmap="viridis", interpolation="nearest", vmin=0, vmax=max(1, int(count.max())))
    axes[2].set_title(f"{len(im.pred_classes)} predictions (overlap count)")
    bar = fig.colorbar(overlap, ax=axes[2], fraction=0.046, pad=0.04, ticks=range(max(1, int(count.max())) + 1))
    bar.ax.tick_params(labelsize=7)
    for a in axes:
        a.set_axis_off()
    fig.tight_layout()
    shown = sorted(int(c) for c in np.unique(im.semantic_gt))
    add_caption(fig, f"Toy image {im.image_id}. Left: its class map (VOC palette; the 1-px void band around "
                     "objects in cream). Middle: its ground-truth instances, one random colour each (black: none). "
                     "Right: the number of scored predictions covering each pixel (colour bar).",
                class_handles(shown, names), legend_title="classes", ncol=len(shown))
    return fig


def ap_variants_figure(report):
    """The same predictions scored by every AP^r protocol (``ProtocolReport.ap_variants``)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    report.ap_variants.T.plot.bar(ax=ax, rot=0, width=0.8)
    ax.set_ylabel("AP (%)")
    ax.set_title("The same predictions, four AP$^r$ protocols")
    ax.legend(fontsize=8, loc="upper right", title="protocol", title_fontsize=8)
    fig.tight_layout()
    add_caption(fig, "AP (%) of one set of toy predictions at IoU 0.5 and 0.7 and averaged over 0.1 to 0.9 (vol), "
                     "under each protocol of the legend: the bars differ only in the matching rule and the "
                     "interpolation of the precision envelope, not in the predictions.")
    return fig


def trimap_figure(report):
    """Boundary and interior mean IoU against the width of the band (``ProtocolReport.trimap``)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    report.trimap.plot(ax=ax, marker="o")
    ax.set_xlabel("band width (px)")
    ax.set_ylabel("mean IoU (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    add_caption(fig, "Trimap evaluation of the toy's semantic prediction: mean IoU within a band of the given width "
                     "around the ground-truth boundaries (boundary) and outside it (interior).")
    return fig


__all__ = ["preset_figure", "calibration_per_class_figure", "calibration_quantiles_figure", "class_looks_figure",
           "toy_class_names", "toy_image_figure", "ap_variants_figure", "trimap_figure", "PRESET_NOTES"]

