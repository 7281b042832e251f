"""Cityscapes instance AP against cityscapesScripts' own evaluator on generated frames.

Frames are written in the Cityscapes formats (16-bit ``*_gtFine_instanceIds.png``; one
prediction ``.txt`` per frame listing binary mask PNGs, label ids and confidences) and
scored by ``cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling``. The frames
contain what the protocol treats specially: void regions, ``cargroup``-style group ids
(< 1000), instances under 100 px, duplicates, predictions on void or on groups, tied
scores, empty masks and predictions of non-evaluated labels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from instseg_lib.evaluate import evaluate
from instseg_lib.metrics import CityscapesEvaluator, UnknownCategoryError
from instseg_lib.metrics.cityscapes import INSTANCE_CLASSES, _step_ap
from instseg_lib.metrics.masks import encode
from instseg_lib.paths import realdata_root

H, W = 64, 128


def _blob(rng, lo=4, hi=14):
    cy, cx = rng.integers(4, H - 4), rng.integers(4, W - 4)
    ry, rx = rng.integers(lo, hi, 2)
    yy, xx = np.mgrid[0:H, 0:W]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1


def make_frame(rng: np.random.Generator):
    """An instanceIds map and a list of (mask, label id, score) predictions."""
    ids = np.full((H, W), 7, np.int64)  # road
    ids[:10] = 23  # sky
    ids[rng.integers(10, 50):, : rng.integers(5, 30)] = 0  # void (unlabeled) corner
    ids[_blob(rng, 3, 8)] = 4  # void (static) blob
    n_inst = {c: 0 for c in INSTANCE_CLASSES}
    classes = [26, 26, 26, 24, 24, 25, 33, 27]
    for _ in range(rng.integers(3, 8)):
        c = int(rng.choice(classes))
        m = _blob(rng, 3, 12)
        ids[m] = c * 1000 + n_inst[c]
        n_inst[c] += 1
    if rng.random() < 0.7:
        ids[_blob(rng, 4, 10)] = 26  # car group
    if rng.random() < 0.5:
        ids[_blob(rng, 2, 4)] = 26000 + 900  # a tiny car (< 100 px)
    if rng.random() < 0.3:
        ids[_blob(rng, 4, 8)] = 29001  # caravan: an instance of a void label
    preds = []
    for u in np.unique(ids):
        label = u // 1000 if u >= 1000 else u
        if label not in (24, 25, 26, 27, 33, 29):
            continue
        m = ids == u
        if rng.random() < 0.15:
            continue  # missed
        p = np.roll(m, tuple(rng.integers(-2, 3, 2)), axis=(0, 1))
        score = float(np.round(rng.uniform(0.1, 1.0), 2))  # rounded: ties happen
        lab = int(label) if rng.random() > 0.1 else int(rng.choice(classes))
        preds.append((p, lab, score))
        if rng.random() < 0.35:  # duplicate
            preds.append((np.roll(p, (1, -1), axis=(0, 1)), lab, float(np.round(score * 0.8, 2))))
    for _ in range(rng.integers(1, 4)):  # false positives, some on void / group
        preds.append((_blob(rng, 3, 10), int(rng.choice(classes)), float(rng.uniform(0, 1))))
    void = np.isin(ids, [0, 4])
    if void.any() and rng.random() < 0.8:  # a prediction lying on void
        ys, xs = np.nonzero(void)
        k = rng.integers(len(ys))
        yy, xx = np.mgrid[0:H, 0:W]
        preds.append((((yy - ys[k]) ** 2 + (xx - xs[k]) ** 2 <= 16) & void | (
            (yy - ys[k]) ** 2 + (xx - xs[k]) ** 2 <= 2), 26, float(rng.uniform(0, 1))))
    preds.append((np.zeros((H, W), bool), 26, 0.5))  # empty: skipped by the reference
    preds.append((_blob(rng), 7, 0.9))  # road: not an instance class, skipped
    return ids, preds


def write_frames(root: Path, frames):
    gt_files, pred_files = [], []
    gt_dir = root / "gtFine" / "val" / "testcity"
    pred_dir = root / "results"
    gt_dir.mkdir(parents=True)
    pred_dir.mkdir(parents=True)
    for k, (ids, preds) in enumerate(frames):
        name = f"testcity_000000_{k:06d}"
        g = gt_dir / f"{name}_gtFine_instanceIds.png"
        Image.fromarray(ids.astype(np.uint16)).save(g)
        lines = []
        for j, (m, lab, sc) in enumerate(preds):
            mp = pred_dir / f"{name}_{j:03d}.png"
            Image.fromarray((m * 255).astype(np.uint8)).save(mp)
            lines.append(f"{mp.name} {lab} {sc!r}")
        t = pred_dir / f"{name}_pred.txt"
        t.write_text("\n".join(lines) + "\n")
        gt_files.append(str(g))
        pred_files.append(str(t))
    return gt_files, pred_files


def reference_result(root: Path, gt_files, pred_files, monkeypatch):
    ev = pytest.importorskip("cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling")
    args = ev.args
    if not hasattr(np, "in1d"):  # removed in numpy 2.4; cityscapesScripts 2.3.0 still calls it
        monkeypatch.setattr(np, "in1d", lambda a, b: np.isin(a, b).ravel(), raising=False)

    def write_json(data, path):  # the reference's writer chokes on numpy 2 integer scalars
        Path(path).write_text(json.dumps(data, default=lambda o: o.item()
                                         if isinstance(o, np.generic) else o.__dict__))

    monkeypatch.setattr(ev, "writeDict2JSON", write_json)
    monkeypatch.chdir(root)  # the reference writes matches.json into the cwd
    for field, value in {
        "gtInstancesFile": str(root / "gtInstances.json"),
        "predictionPath": str((root / "results").resolve()),
        "predictionWalk": None, "JSONOutput": False, "quiet": True, "colorized": False,
        "exportFile": str(root / "result.json"),
    }.items():
        monkeypatch.setattr(args, field, value, raising=False)
    return ev.evaluateImgLists(pred_files, gt_files, args)


def ours_from_frames(frames) -> CityscapesEvaluator:
    ev = CityscapesEvaluator()
    for k, (ids, preds) in enumerate(frames):
        masks = np.stack([m for m, _, _ in preds])
        ev.add_id_map(k, ids, masks, [lab for _, lab, _ in preds],
                      [float(repr(sc)) for _, _, sc in preds])
    return ev


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_cityscapes_scripts(tmp_path, monkeypatch, seed):
    rng = np.random.default_rng(seed)
    frames = [make_frame(rng) for _ in range(4)]
    gt_files, pred_files = write_frames(tmp_path, frames)
    ref = reference_result(tmp_path, gt_files, pred_files, monkeypatch)
    ours = ours_from_frames(frames).compute()
    ref_ap = np.asarray(ref["resultApMatrix"])[0]  # (classes, overlaps)
    assert list(ref["instLabels"]) == list(ours.names)
    np.testing.assert_allclose(ours.ap, ref_ap, rtol=0, atol=1e-12, equal_nan=True)
    assert ours.AP == pytest.approx(ref["averages"]["allAp"], abs=1e-12)
    assert ours.AP50 == pytest.approx(ref["averages"]["allAp50%"], abs=1e-12)

    # the CLI on a gtFine folder + COCO results JSON gives the same numbers
    results = []
    for k, (_, preds) in enumerate(frames):
        for m, lab, sc in preds:
            rle = encode(m)[0]
            results.append({"image_id": f"testcity_000000_{k:06d}", "category_id": lab,
                            "segmentation": {"size": rle["size"],
                                             "counts": rle["counts"].decode()},
                            "score": sc})
    pj = tmp_path / "results.json"
    pj.write_text(json.dumps(results))
    cli = evaluate(tmp_path / "gtFine", pj, "cityscapes")
    assert cli["AP"] == pytest.approx(ref["averages"]["allAp"], abs=1e-12)
    assert cli["AP50"] == pytest.approx(ref["averages"]["allAp50%"], abs=1e-12)


def test_real_cityscapes_frame(tmp_path, monkeypatch):
    root = realdata_root()
    if root is None:
        pytest.skip("real-data fixtures (../shared/realdata) are absent")
    src = root / "cityscapes" / "gtFine" / "val" / "frankfurt" / \
        "frankfurt_000000_000294_gtFine_instanceIds.png"
    ids = np.asarray(Image.open(src)).astype(np.int64)
    rng = np.random.default_rng(7)
    preds = []
    for u in np.unique(ids[ids >= 1000]):
        m = np.roll(ids == u, tuple(rng.integers(-2, 3, 2)), axis=(0, 1))
        preds.append((m, int(u // 1000), float(np.round(rng.uniform(0.2, 1), 3))))
        preds.append((np.roll(m, (0, 3), axis=(0, 1)), int(u // 1000), 0.1))
    frames = [(ids, preds)]
    gt_files, pred_files = write_frames(tmp_path, frames)
    ref = reference_result(tmp_path, gt_files, pred_files, monkeypatch)
    ours = ours_from_frames(frames).compute()
    np.testing.assert_allclose(ours.ap, np.asarray(ref["resultApMatrix"])[0], atol=1e-12,
                               equal_nan=True)


def test_hand_case_void_group_and_small():
    """One car, one car group, one small car, and void: only the first is counted."""
    ids = np.full((20, 40), 7)
    ids[:, :10] = 26001  # 200 px car
    ids[:, 10:20] = 26  # group
    ids[:3, 20:23] = 26002  # 9 px car: too small
    ids[:, 30:] = 0  # void
    m = np.zeros((5, 20, 40), bool)
    m[0, :, :10] = True  # TP
    m[1, :, 10:20] = True  # on the group: ignored
    m[2, :3, 20:23] = True  # matches the small car: ignored
    m[3, :, 30:] = True  # on void: ignored
    m[4, :, 24:30] = True  # on road: a false positive
    ev = CityscapesEvaluator()
    ev.add_id_map(0, ids, m, [26] * 5, [0.9, 0.8, 0.7, 0.6, 0.95])
    res = ev.compute()
    car = res.to_frame().loc["car"]
    # ranked: FP (0.95), TP (0.9). Curve points (r, p): (1, 1/2), (0, 0) and the artificial
    # (0, 1); the reference's step widths are half the recall gaps to the neighbours, so
    # AP = 1/2 * 1/2 = 0.25 (not the 0.5 of a VOC-style area)
    assert car["AP"] == pytest.approx(0.25)
    assert np.isnan(res.to_frame().loc["person", "AP"])  # no gt, no prediction
    with pytest.raises(UnknownCategoryError, match="category 99"):
        ev.add_id_map(1, ids, m[:1], [99], [0.5])


def test_step_ap_matches_reference_arithmetic():
    # two TPs at 0.9 and 0.5, one FP at 0.7, one hard FN
    ap = _step_ap(np.array([1.0, 0.0, 1.0]), np.array([0.9, 0.7, 0.5]), hard_fns=1)
    # curve points (p, r): (2/3, 2/3) @0.5, (1/2, 1/3) @0.7, (1, 1/3) @0.9, (1, 0)
    # step widths from the reference's convolution: 1/6, 1/6, 1/6, 1/6 -> mean-ish
    r = np.array([2 / 3, 1 / 3, 1 / 3, 0.0])
    p = np.array([2 / 3, 1 / 2, 1.0, 1.0])
    rc = np.concatenate(([r[0]], r, [0.0]))
    widths = np.convolve(rc, [-0.5, 0, 0.5], "valid")
    assert ap == pytest.approx(float(p @ widths))
