"""Label statistics (same definition as voc2012_label_statistics.json) and the comparison."""

from __future__ import annotations

import json

import numpy as np
import pytest

from instseg_lib.data.calibration import VOC2012_TARGETS
from instseg_lib.data.stats import compare_per_class, compare_summary, label_statistics, twin_statistics
from instseg_lib.paths import realdata_root


def test_label_statistics_on_a_known_map():
    lab = np.zeros((375, 500), np.uint8)
    lab[10:50, 10:50] = 15          # one person component (1600 px)
    lab[100:103, 100:103] = 15      # 9 px: below the 16 px threshold at this size
    lab[200:300, 200:300] = 9
    lab[0, :] = 255
    st = label_statistics([lab, np.zeros((375, 500), np.uint8)])
    assert st["n_images"] == 2
    assert st["classes_per_image_hist"] == {"2": 1}
    assert st["mean_components_per_image_given_class"]["person"] == 1.0
    assert st["images_with_class"]["chair"] == 1
    assert st["void_fraction"] == pytest.approx(500 / (2 * 375 * 500))
    assert st["median_component_area_fraction_by_class"]["chair"] == pytest.approx(1e4 / (375 * 500))


def test_embedded_targets_match_the_shared_json():
    root = realdata_root()
    if root is None:
        pytest.skip("../shared/realdata is absent")
    real = json.loads((root / "voc2012_label_statistics.json").read_text())
    for k in ("pixel_fraction", "images_with_class", "mean_components_per_image_given_class",
              "median_component_area_fraction_by_class", "classes_per_image_hist"):
        assert VOC2012_TARGETS[k] == real[k]


def test_comparison_tables():
    t = twin_statistics(6, 64)
    s, c = compare_summary(t), compare_per_class(t)
    assert list(s.columns) == ["VOC 2012", "twin"] and "void pixel fraction" in s.index
    assert len(c) == 20 and "median area, twin" in c.columns
