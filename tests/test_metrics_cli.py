"""The ``python -m instseg_lib.evaluate`` CLI: outputs, agreement with COCOeval, bad input."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from instseg_lib.evaluate import evaluate, main
from instseg_lib.metrics import (
    VOL_THRESHOLDS,
    COCOEvaluator,
    EmptyPredictionsWarning,
    MaskSizeError,
    MissingScoreError,
    SDSEvaluator,
    UnknownCategoryError,
    UnknownImageError,
)
from instseg_lib.metrics.masks import encode
from instseg_lib.metrics.toy import make_toy_images
from instseg_lib.paths import realdata_root

CATS = {1: "cat", 2: "dog", 3: "cow", 4: "owl"}


def _rle_json(mask: np.ndarray) -> dict:
    r = encode(mask)[0]
    return {"size": r["size"], "counts": r["counts"].decode()}


def write_toy(tmp: Path, n=5, size=40, seed=0):
    ims = make_toy_images(n, size, seed=seed)
    images, anns, results = [], [], []
    for im in ims:
        images.append({"id": im.image_id, "height": size, "width": size,
                       "file_name": f"{im.image_id}.png"})
        for m, c in zip(im.gt_masks, im.gt_classes):
            anns.append({"id": len(anns) + 1, "image_id": im.image_id, "category_id": int(c),
                         "segmentation": _rle_json(m), "area": float(m.sum()),
                         "bbox": [0, 0, 1, 1], "iscrowd": 0})
        for m, c, s in zip(im.pred_masks, im.pred_classes, im.pred_scores):
            results.append({"image_id": im.image_id, "category_id": int(c),
                            "segmentation": _rle_json(m), "score": float(s)})
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": k, "name": v} for k, v in CATS.items()]}
    (tmp / "gt.json").write_text(json.dumps(gt))
    (tmp / "pred.json").write_text(json.dumps(results))
    return ims, gt, results


def cocoeval_stats(gt: dict, results: list) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        c = COCO()
        c.dataset = copy.deepcopy(gt)
        c.createIndex()
        e = COCOeval(c, c.loadRes(copy.deepcopy(results)), "segm")
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e.stats


def test_cli_subprocess_prints_one_json_object(tmp_path):
    write_toy(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "instseg_lib.evaluate", "--gt", str(tmp_path / "gt.json"),
         "--pred", str(tmp_path / "pred.json"), "--protocol", "sds"],
        capture_output=True, text=True, check=True,
    )
    res = json.loads(out.stdout)  # nothing else on stdout
    for key in ("mAP_r@0.5", "mAP_r@0.7", "mAP_r_vol"):
        assert 0 <= res[key] <= 1
    assert {f"mAP_r@{t:g}" for t in VOL_THRESHOLDS} <= set(res)


def test_sds_and_fcis_cli_equal_the_library(tmp_path):
    ims, _, _ = write_toy(tmp_path)
    for proto, cli_name in (("sds", "sds"), ("fcis", "sds-fcis")):
        ev = SDSEvaluator(proto, classes=CATS)
        for im in ims:
            ev.add(im.image_id, im.gt_masks, im.gt_classes, im.pred_masks, im.pred_classes,
                   im.pred_scores)
        expected = ev.compute().summary()
        got = evaluate(tmp_path / "gt.json", tmp_path / "pred.json", cli_name, per_class=True)
        for k, v in expected.items():
            assert got[k] == pytest.approx(v, abs=1e-12)
        assert set(got["per_class"]) == set(CATS.values())


def test_every_protocol_and_per_class(tmp_path, capsys):
    ims, gt, results = write_toy(tmp_path)
    assert main(["--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "pred.json"),
                 "--protocol", "coco", "--per-class"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert {"AP", "AP50", "AP75", "per_class"} <= set(res)
    assert main(["--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "pred.json"),
                 "--protocol", "cityscapes"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert {"AP", "AP50"} <= set(res)
    # semantic: folders of label PNGs with the same names
    (tmp_path / "sg").mkdir()
    (tmp_path / "sp").mkdir()
    for im in ims:
        name = f"{im.image_id}.png"
        Image.fromarray(im.semantic_gt.astype(np.uint8)).save(tmp_path / "sg" / name)
        Image.fromarray(im.semantic_pred.astype(np.uint8)).save(tmp_path / "sp" / name)
    assert main(["--gt", str(tmp_path / "sg"), "--pred", str(tmp_path / "sp"),
                 "--protocol", "semantic", "--per-class"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert {"pixel_acc", "mean_acc", "mIoU", "per_class_IoU"} <= set(res)


def test_coco_evaluator_from_numpy_equals_cocoeval(tmp_path):
    ims, gt, results = write_toy(tmp_path, n=4)
    ev = COCOEvaluator(CATS)
    for im in ims:
        ev.add(im.image_id, im.gt_masks, im.gt_classes, im.pred_masks, im.pred_classes,
               im.pred_scores)
    ours = ev.compute()
    ref = cocoeval_stats(gt, results)
    assert [ours["AP"], ours["AP50"], ours["AP75"]] == pytest.approx(list(ref[:3]), abs=1e-9)


masks_st = st.integers(0, 2**32 - 1)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=masks_st, n_img=st.integers(1, 3), crowd=st.booleans())
def test_property_coco_protocol_agrees_with_cocoeval(seed, n_img, crowd):
    """Random masks, classes, scores and crowd regions: the CLI's ``coco`` protocol and a
    direct ``COCOeval`` on the same files agree to 1e-9."""
    rng = np.random.default_rng(seed)
    images, anns, results = [], [], []
    for i in range(n_img):
        h, w = (int(v) for v in rng.integers(6, 24, 2))
        images.append({"id": i + 1, "height": h, "width": w})
        for _ in range(int(rng.integers(1, 5))):
            m = np.zeros((h, w), bool)
            y0, x0 = rng.integers(0, h - 2), rng.integers(0, w - 2)
            m[y0: y0 + rng.integers(2, h), x0: x0 + rng.integers(2, w)] = True
            m &= rng.random((h, w)) < 0.9
            if not m.any():
                continue
            is_crowd = int(crowd and rng.random() < 0.2)
            anns.append({"id": len(anns) + 1, "image_id": i + 1,
                         "category_id": int(rng.integers(1, 3)), "segmentation": _rle_json(m),
                         "area": float(m.sum()), "bbox": [0.0, 0.0, float(w), float(h)],
                         "iscrowd": is_crowd})
        for _ in range(int(rng.integers(0, 8))):
            m = rng.random((h, w)) < rng.uniform(0.05, 0.8)
            results.append({"image_id": i + 1, "category_id": int(rng.integers(1, 3)),
                            "segmentation": _rle_json(m),
                            "score": float(np.round(rng.random(), 2))})
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    if not anns or not results:
        return
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "gt.json").write_text(json.dumps(gt))
        (Path(d) / "pred.json").write_text(json.dumps(results))
        got = evaluate(Path(d) / "gt.json", Path(d) / "pred.json", "coco")
    ref = cocoeval_stats(gt, results)
    assert [got["AP"], got["AP50"], got["AP75"]] == pytest.approx(list(ref[:3]), abs=1e-9,
                                                                   rel=0)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools' decode on numpy 2
def test_real_coco_fixture(tmp_path):
    root = realdata_root()
    if root is None:
        pytest.skip("real-data fixtures (../shared/realdata) are absent")
    gt_path = root / "coco" / "annotations" / "instances_val2017.json"
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(gt_path))
    rng = np.random.default_rng(0)
    results = []
    for a in coco.dataset["annotations"]:
        if a["iscrowd"] or rng.random() < 0.2:
            continue
        m = np.roll(coco.annToMask(a).astype(bool), tuple(rng.integers(-4, 5, 2)), axis=(0, 1))
        results.append({"image_id": a["image_id"], "category_id": a["category_id"],
                        "segmentation": _rle_json(m), "score": float(rng.random())})
    (tmp_path / "pred.json").write_text(json.dumps(results))
    got = evaluate(gt_path, tmp_path / "pred.json", "coco")
    ref = cocoeval_stats(json.loads(gt_path.read_text()), results)
    assert [got["AP"], got["AP50"], got["AP75"]] == pytest.approx(list(ref[:3]), abs=1e-9)
    sds = evaluate(gt_path, tmp_path / "pred.json", "sds")
    fcis = evaluate(gt_path, tmp_path / "pred.json", "sds-fcis")
    assert 0.3 < sds["mAP_r@0.5"] <= 1 and 0 <= sds["mAP_r@0.9"] < sds["mAP_r@0.5"]
    assert 0 <= fcis["mAP_r_vol"] <= 1


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def toy_files(tmp_path):
    _, gt, results = write_toy(tmp_path, n=2)
    return tmp_path, gt, results


def _run_bad(tmp_path, results, protocol="sds"):
    (tmp_path / "bad.json").write_text(json.dumps(results))
    return evaluate(tmp_path / "gt.json", tmp_path / "bad.json", protocol)


@pytest.mark.parametrize("protocol", ["sds", "coco", "cityscapes"])
def test_prediction_for_an_image_not_in_gt(toy_files, protocol):
    tmp, _, results = toy_files
    bad = copy.deepcopy(results)
    bad[1]["image_id"] = 999
    with pytest.raises(UnknownImageError, match="result #1 is for image_id 999"):
        _run_bad(tmp, bad, protocol)


def test_unknown_category(toy_files):
    tmp, _, results = toy_files
    bad = copy.deepcopy(results)
    bad[0]["category_id"] = 42
    with pytest.raises(UnknownCategoryError, match="result #0 .*category_id 42"):
        _run_bad(tmp, bad)


def test_mask_size_differs_from_image(toy_files):
    tmp, _, results = toy_files
    bad = copy.deepcopy(results)
    bad[2]["segmentation"] = _rle_json(np.ones((41, 40), bool))
    with pytest.raises(MaskSizeError, match="result #2 .*41x40 differs from image size 40x40"):
        _run_bad(tmp, bad, "coco")


def test_missing_score(toy_files):
    tmp, _, results = toy_files
    bad = copy.deepcopy(results)
    del bad[3]["score"]
    with pytest.raises(MissingScoreError, match="result #3 .*no valid 'score'"):
        _run_bad(tmp, bad)


def test_bad_input_exits_2_with_message(toy_files, capsys):
    tmp, _, results = toy_files
    bad = copy.deepcopy(results)
    bad[0]["image_id"] = 12345
    (tmp / "bad.json").write_text(json.dumps(bad))
    code = main(["--gt", str(tmp / "gt.json"), "--pred", str(tmp / "bad.json"),
                 "--protocol", "sds"])
    cap = capsys.readouterr()
    assert code == 2 and cap.out == "" and "image_id 12345" in cap.err


@pytest.mark.parametrize("protocol,key", [("sds", "mAP_r_vol"), ("sds-fcis", "mAP_r@0.5"),
                                          ("coco", "AP"), ("cityscapes", "AP")])
def test_empty_prediction_file_gives_zero_with_a_warning(toy_files, protocol, key):
    tmp, _, _ = toy_files
    with pytest.warns(EmptyPredictionsWarning, match="empty"):
        res = _run_bad(tmp, [], protocol)
    assert res[key] == 0.0


def test_cli_empty_file_warns_on_stderr(toy_files, capsys):
    tmp, _, _ = toy_files
    (tmp / "empty.json").write_text("[]")
    assert main(["--gt", str(tmp / "gt.json"), "--pred", str(tmp / "empty.json"),
                 "--protocol", "sds"]) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out)["mAP_r@0.5"] == 0.0
    assert "warning:" in cap.err and "empty" in cap.err
