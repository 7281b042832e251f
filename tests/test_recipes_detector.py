"""The trained detector (the stand-in for Arnab & Torr's R-FCN): its training set, its COCO
results file read back through the checked reader, and its use by the instance network."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from instseg_lib.data.errors import MissingDatasetError
from instseg_lib.detections import DetectionFileError
from instseg_lib.recipes import arnab2017 as arnab
from instseg_lib.recipes import detector as det


def test_box_set_flips_boxes_with_the_image():
    img = np.zeros((6, 10, 3), np.uint8)
    img[1:3, 2:5] = 255  # a white block where the box is
    s = SimpleNamespace(image=img, boxes=np.array([[2, 1, 5, 3], [0, 0, 0, 0]], float),
                        instance_classes=np.array([4, 7]))
    flipped = None
    for seed in range(20):  # find a draw that flips and one that does not
        torch.manual_seed(seed)
        im, tgt = det._BoxSet([s])[0]
        assert tgt["labels"].tolist() == [4]  # the zero-area box is dropped
        x0, y0, x1, y1 = (int(v) for v in tgt["boxes"][0])
        assert bool((im[:, y0:y1, x0:x1] == 1.0).all())  # the box covers the white block either way
        if x0 != 2:
            flipped = (x0, x1)
    assert flipped == (5, 8)


def test_the_detector_keeps_batch_norm_statistics_frozen_in_training():
    m = det.TwinDetector(det.detector_config("smoke"), 21).train()
    bns = [x for x in m.modules() if isinstance(x, nn.modules.batchnorm._BatchNorm)]
    assert bns and not any(b.training for b in bns)
    assert m.net.training


@pytest.fixture(scope="module")
def smoke_detections():
    try:
        cfg = det.detections_config(det.detector_config("smoke"), "voc", "val")
        return cfg, det.run_detections(cfg)
    except MissingDatasetError as exc:  # pragma: no cover - make test generates the smoke twin first
        pytest.skip(str(exc))


def test_detections_are_a_coco_results_file_read_back_through_the_checked_reader(smoke_detections):
    cfg, res = smoke_detections
    path = det.results_file(res)
    records = json.loads(path.read_text())
    assert isinstance(records, list) and len(records) == res.metrics["n_detections"]
    dets = det.load_detections(cfg)
    assert len(dets) == res.metrics["n_images"]
    assert sum(len(v) for v in dets.values()) == len(records)
    # a damaged file is refused, naming it
    backup = path.read_bytes()
    try:
        path.write_text('{"not": "a list"}')
        with pytest.raises(DetectionFileError, match=str(path.name)):
            det.load_detections(cfg)
    finally:
        path.write_bytes(backup)


def test_a_missing_results_file_is_recomputed(smoke_detections):
    cfg, res = smoke_detections
    path = det.results_file(res)
    path.unlink()
    again = det.run_detections(cfg)
    assert det.results_file(again).is_file()
    assert again.metrics["n_detections"] == res.metrics["n_detections"]


def test_the_instance_network_and_the_baseline_run_on_the_trained_detectors_boxes(smoke_detections):
    cfg = arnab.train_config("smoke", "voc", "box+global+shape", "e2e")
    ours = arnab.run_trained_detector_eval(arnab.trained_detector_eval_config(cfg, "smoke"))
    base = arnab.run_trained_detector_eval(arnab.trained_detector_eval_config(None, "smoke"))
    assert ours.metrics["detector"] == base.metrics["detector"]
    assert ours.metrics["n_detections"] == base.metrics["n_detections"] <= ours.metrics["detector"]["n_detections"]
    assert ours.config["base"]["paste_box"] is False and base.config["base"]["paste_box"] is True
