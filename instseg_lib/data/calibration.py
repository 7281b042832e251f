"""Calibration of the synthetic twin against the official VOC 2012 label statistics.

``VOC2012_TARGETS`` is a copy of the statistics in ``../shared/realdata/
voc2012_label_statistics.json`` (computed from the 2,913 official trainval class maps), so
that the library works where that folder is absent. The generative parameters below were
tuned with :func:`instseg_lib.data.stats.calibration_table` until the twin's statistics
matched the targets (see ``notebooks/data_twin.ipynb`` for the comparison).
"""

from __future__ import annotations

from .classes import VOC_CLASSES

VOC2012_TARGETS: dict = {
    "pixel_fraction": {
        "background": 0.6932, "aeroplane": 0.0071, "bicycle": 0.00301, "bird": 0.00841, "boat": 0.00549,
        "bottle": 0.00659, "bus": 0.01667, "car": 0.01359, "cat": 0.02391, "chair": 0.00954, "cow": 0.00964,
        "diningtable": 0.01198, "dog": 0.01798, "horse": 0.00944, "motorbike": 0.0105, "person": 0.04792,
        "pottedplant": 0.00557, "sheep": 0.00803, "sofa": 0.0136, "train": 0.01515, "tvmonitor": 0.0079,
    },
    "void_fraction": 0.05477,
    "classes_per_image_hist": {"1": 1860, "2": 757, "3": 246, "4": 44, "5": 6},
    "components_per_image_quantiles_5_25_50_75_95": [1.0, 1.0, 2.0, 5.0, 15.0],
    "component_area_fraction_quantiles_5_25_50_75_95": [0.000107, 0.000384, 0.004085, 0.0497, 0.3076],
    "images_with_class": {
        "aeroplane": 178, "bicycle": 144, "bird": 208, "boat": 150, "bottle": 183, "bus": 152, "car": 255,
        "cat": 250, "chair": 271, "cow": 135, "diningtable": 157, "dog": 249, "horse": 147, "motorbike": 157,
        "person": 888, "pottedplant": 167, "sheep": 120, "sofa": 183, "train": 167, "tvmonitor": 157,
    },
    "mean_components_per_image_given_class": {
        "aeroplane": 2.28, "bicycle": 7.9, "bird": 2.64, "boat": 3.56, "bottle": 2.18, "bus": 2.22, "car": 2.58,
        "cat": 1.54, "chair": 4.48, "cow": 3.96, "diningtable": 2.07, "dog": 1.73, "horse": 3.53,
        "motorbike": 3.09, "person": 2.85, "pottedplant": 7.25, "sheep": 4.63, "sofa": 1.96, "train": 2.32,
        "tvmonitor": 1.54,
    },
    "median_component_area_fraction_by_class": {
        "aeroplane": 0.0033, "bicycle": 0.0003, "bird": 0.0042, "boat": 0.0012, "bottle": 0.0068, "bus": 0.0368,
        "car": 0.0052, "cat": 0.1257, "chair": 0.0017, "cow": 0.0045, "diningtable": 0.0169, "dog": 0.0482,
        "horse": 0.005, "motorbike": 0.004, "person": 0.009, "pottedplant": 0.0005, "sheep": 0.006,
        "sofa": 0.0488, "train": 0.0149, "tvmonitor": 0.0438,
    },
    "n_images": 2913,
    "image_hw_median": [375, 500],
    "min_component_px": 16,
}

#: Images of one class per image (weights for choosing which classes appear).
CLASS_WEIGHT = {VOC_CLASSES.index(k): v for k, v in VOC2012_TARGETS["images_with_class"].items()}

#: P(number of distinct classes in an image = k), from ``classes_per_image_hist``.
CLASSES_PER_IMAGE = {int(k): v / 2913 for k, v in VOC2012_TARGETS["classes_per_image_hist"].items()}

#: Classes that co-occur in VOC (riders, dining scenes, living rooms), boosted when one is drawn.
COOCCUR = {
    "person": ("horse", "bicycle", "motorbike", "sofa", "chair", "diningtable", "boat", "dog", "car", "bus"),
    "chair": ("diningtable", "sofa", "tvmonitor", "pottedplant", "bottle", "person"),
    "diningtable": ("chair", "bottle", "person", "pottedplant"),
    "sofa": ("tvmonitor", "cat", "dog", "person", "chair", "pottedplant"),
    "car": ("bus", "person", "motorbike", "bicycle"),
    "bus": ("car", "person"),
    "horse": ("person",),
    "cow": ("sheep", "horse"),
    "sheep": ("cow",),
    "bicycle": ("person", "car"),
    "motorbike": ("person", "car"),
    "tvmonitor": ("sofa", "chair", "pottedplant"),
}

# ---- generative parameters (tuned; see module docstring) --------------------------------
#: Mean number of instances of a class in an image where it appears.
MEAN_INSTANCES = {
    "aeroplane": 1.98, "bicycle": 2.6, "bird": 2.39, "boat": 3.55, "bottle": 1.85, "bus": 1.77, "car": 2.76,
    "cat": 1.1, "chair": 2.13, "cow": 4.8, "diningtable": 1.02, "dog": 1.24, "horse": 2.38, "motorbike": 1.29,
    "person": 1.55, "pottedplant": 1.98, "sheep": 6.8, "sofa": 1.55, "train": 1.45, "tvmonitor": 1.12,
}
#: Median area of one instance as a fraction of the image, before occlusion and before the
#: 1/sqrt(group size) shrink of large groups (above 1: close-ups cut by the frame).
SIZE_MEDIAN = {
    "aeroplane": 0.025, "bicycle": 0.05, "bird": 0.019, "boat": 0.0015, "bottle": 0.028, "bus": 0.19, "car": 0.009,
    "cat": 0.95, "chair": 0.11, "cow": 0.066, "diningtable": 0.16, "dog": 0.28, "horse": 0.14, "motorbike": 0.165,
    "person": 0.126, "pottedplant": 0.007, "sheep": 0.036, "sofa": 0.36, "train": 0.043, "tvmonitor": 0.168,
}
#: Lower bound on the area of the first (subject) group's members.
MIN_SUBJECT_AREA = 0.01


def _size_sigma(name: str) -> float:
    """Log-normal spread of a class's instance areas, from VOC's mean/median area ratio.

    For a log-normal, mean / median = exp(sigma^2 / 2). VOC's mean component area of a
    class is pixel_fraction / (images_with_class * components_per_image); its median is
    given. Aeroplanes (sigma ~2.3) are specks or fill the frame; cats (~0.9) are always big.
    """
    import math

    t = VOC2012_TARGETS
    n = t["n_images"]
    mean = t["pixel_fraction"][name] / (t["images_with_class"][name] / n * t["mean_components_per_image_given_class"][name])
    ratio = max(mean / t["median_component_area_fraction_by_class"][name], 1.5)
    return float(min(max(math.sqrt(2 * math.log(ratio)), 0.9), 2.3))


#: Log-normal spread of instance areas per class (natural log units).
SIZE_SIGMA = {c: _size_sigma(c) for c in VOC_CLASSES[1:]}
# Thin classes: VOC's heavy tail of *components* comes from fragments, not from instance
# sizes, so the ratio above overstates their instance spread.
SIZE_SIGMA.update({"bicycle": 1.5, "pottedplant": 1.5, "chair": 1.6})
#: How a group of same-class instances is laid out: side by side in a row, or clustered.
ARRANGEMENT = {
    "car": "row", "bottle": "row", "chair": "row", "person": "row", "bus": "row", "motorbike": "row",
    "bicycle": "row", "cow": "cluster", "sheep": "cluster", "horse": "cluster", "bird": "cluster",
    "boat": "cluster", "aeroplane": "cluster", "pottedplant": "row", "tvmonitor": "row",
}
#: Classes placed anywhere (sky/water) rather than standing on the ground plane.
FLOATING = {"aeroplane", "bird"}
