"""Round trip and fuzz of the inputs of ``python -m instseg_lib.evaluate``.

COCO results JSON and Cityscapes results (txt + mask PNGs) and ground truth (16-bit
``instanceIds`` PNGs) are written from random masks and read back exactly; damaged files
(truncated, emptied, flipped bytes, another format) either read as the file says or raise a
:class:`MetricsInputError` naming the file, never a silently different input.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools import mask as mask_utils

from instseg_lib.evaluate import (evaluate, read_cityscapes_instance_ids, read_cityscapes_results, read_results,
                                  validate_results)
from instseg_lib.metrics import MetricsInputError
from instseg_lib.metrics.masks import encode

SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
FRAME = "frankfurt_000000_000294"
H, W = 12, 16


def decode(rle) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle).astype(bool)


masks_st = st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4).map(
    lambda seeds: [np.random.default_rng(s).random((H, W)) < np.random.default_rng(s + 1).random() for s in seeds])


def write_mask_png(path: Path, mask: np.ndarray, mode: str) -> None:
    if mode == "1":
        im = Image.fromarray(mask)
    elif mode == "L255":
        im = Image.fromarray(mask.astype(np.uint8) * 255)
    elif mode == "L1":
        im = Image.fromarray(mask.astype(np.uint8))
    elif mode == "P2":
        im = Image.fromarray(mask.astype(np.uint8), "P")
        im.putpalette([0, 0, 0, 255, 255, 255])
    else:  # I;16
        im = Image.fromarray(mask.astype(np.uint16) * 7)
    im.save(path)


def write_cityscapes(root: Path, ids: np.ndarray, preds: list[tuple[np.ndarray, int, float]], mode: str) -> tuple[Path, Path]:
    gt, pred = root / "gt" / "frankfurt", root / "pred"
    gt.mkdir(parents=True)
    pred.mkdir()
    Image.fromarray(ids.astype(np.uint16)).save(gt / f"{FRAME}_gtFine_instanceIds.png")
    lines = []
    for k, (m, label, score) in enumerate(preds):
        write_mask_png(pred / f"{FRAME}_{k}.png", m, mode)
        lines.append(f"{FRAME}_{k}.png {label} {score!r}")
    (pred / f"{FRAME}_leftImg8bit.txt").write_text("\n".join(lines) + "\n")
    return root / "gt", pred


# ----------------------------------------------------------------------------- round trips
@SETTINGS
@given(masks=masks_st, compressed=st.booleans(), data=st.data())
def test_coco_results_json_round_trip(masks, compressed, data, tmp_path_factory):
    scores = data.draw(st.lists(st.floats(0, 1), min_size=len(masks), max_size=len(masks)))
    recs = []
    for m, s in zip(masks, scores):
        r = encode(m)[0]
        if compressed:
            seg = {"size": r["size"], "counts": r["counts"].decode()}
        else:  # uncompressed counts (column-major runs, zeros first), as COCO stores crowds
            runs, v, n = [], False, 0
            for x in m.T.ravel():
                if x == v:
                    n += 1
                else:
                    runs.append(n)
                    v, n = x, 1
            seg = {"size": [H, W], "counts": runs + [n]}
        recs.append({"image_id": 7, "category_id": 1, "segmentation": seg, "score": s})
    p = tmp_path_factory.mktemp("res") / "results.json"
    p.write_text(json.dumps(recs))
    per = validate_results(read_results(p), {7: (H, W)}, {1}, str(p))
    rles, cls, sc = per[7]
    for r, m in zip(rles, masks):
        np.testing.assert_array_equal(decode(r), m)
    np.testing.assert_array_equal(sc, scores)


@SETTINGS
@given(masks=masks_st, mode=st.sampled_from(["1", "L255", "L1", "P2", "I;16"]), data=st.data())
def test_cityscapes_txt_png_round_trip(masks, mode, data, tmp_path_factory):
    labels = data.draw(st.lists(st.sampled_from([24, 26, 33]), min_size=len(masks), max_size=len(masks)))
    k = np.asarray(data.draw(st.lists(st.integers(0, 3), min_size=H * W, max_size=H * W))).reshape(H, W)
    ids = np.where(k > 0, 26000 + k, 7)
    preds = [(m, lab, 0.5 + j / 10) for j, (m, lab) in enumerate(zip(masks, labels))]
    gt, pred = write_cityscapes(tmp_path_factory.mktemp("cs"), ids, preds, mode)
    np.testing.assert_array_equal(read_cityscapes_instance_ids(gt / "frankfurt" / f"{FRAME}_gtFine_instanceIds.png"), ids)
    got = read_cityscapes_results(pred, {FRAME: gt / "frankfurt" / f"{FRAME}_gtFine_instanceIds.png"})
    assert len(got) == len(masks)
    for r, (m, lab, score) in zip(got, preds):
        assert r["image_id"] == FRAME and r["category_id"] == lab and r["score"] == score
        np.testing.assert_array_equal(decode(r["segmentation"]), m)


def test_cityscapes_folder_predictions_equal_to_gt_score_one(tmp_path):
    ids = np.full((40, 60), 7)  # instances of at least 100 px: the benchmark ignores smaller ones
    ids[2:14, 2:17], ids[20:35, 30:50] = 26001, 24001
    preds = [(ids == 26001, 26, 0.9), (ids == 24001, 24, 0.8)]
    gt, pred = write_cityscapes(tmp_path, ids, preds, "L255")
    out = evaluate(gt, pred, "cityscapes")
    assert out["AP"] == pytest.approx(1.0) and out["AP50"] == pytest.approx(1.0)


def test_eight_bit_instance_ids_are_refused(tmp_path):
    ids = np.full((H, W), 7)
    ids[2:6, 2:7] = 26001
    gt, pred = write_cityscapes(tmp_path, ids, [(ids == 26001, 26, 0.9)], "L255")
    f = gt / "frankfurt" / f"{FRAME}_gtFine_instanceIds.png"
    Image.fromarray((ids % 256).astype(np.uint8)).save(f)  # what an image editor's "save" does
    with pytest.raises(MetricsInputError, match=rf"{f}.*8-bit grey"):
        evaluate(gt, pred, "cityscapes")


# ----------------------------------------------------------------------------- fuzz
@st.composite
def damages(draw):
    kind = draw(st.sampled_from(["truncate", "empty", "flip", "flip", "wrong"]))
    if kind == "truncate":
        return kind, draw(st.floats(0.0, 1.0, exclude_max=True))
    if kind == "flip":
        return kind, draw(st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(1, 255)),
                                   min_size=1, max_size=3))
    return kind, draw(st.sampled_from(["png", "json", "text", "jpeg"]))


def _other(fmt: str) -> bytes:
    import io

    buf = io.BytesIO()
    if fmt == "png":
        Image.fromarray(np.zeros((H, W), np.uint8)).save(buf, format="PNG")
    elif fmt == "jpeg":
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(buf, format="JPEG")
    elif fmt == "json":
        buf.write(b'{"images": [], "annotations": []}')
    else:
        buf.write(b"hello\n")
    return buf.getvalue()


def damage(data: bytes, spec, same: str) -> bytes:
    kind, arg = spec
    assume(not (kind == "wrong" and arg == same))
    if kind == "truncate":
        return data[: int(arg * len(data))]
    if kind == "empty":
        return b""
    if kind == "flip":
        out = bytearray(data)
        for where, mask in arg:
            out[int(where * len(out))] ^= mask
        return bytes(out)
    return _other(arg)


def _results_oracle(bad: bytes):
    """Independent decode of a results file: [(image_id, category_id, score, mask)] or None."""
    try:
        recs = json.loads(bad)
        out = []
        for r in recs:
            seg = r["segmentation"]
            rle = mask_utils.frPyObjects(seg, H, W) if isinstance(seg["counts"], list) else seg
            out.append((r["image_id"], r["category_id"], float(r["score"]), rle))
        return out
    except Exception:
        return None


@SETTINGS
@given(spec=damages(), masks=masks_st)
def test_fuzz_coco_results_json(spec, masks, tmp_path_factory):
    recs = [{"image_id": 7, "category_id": 1 + k % 2, "segmentation": {"size": [H, W], "counts": encode(m)[0]["counts"].decode()},
             "score": 0.25 + k / 8} for k, m in enumerate(masks)]
    p = tmp_path_factory.mktemp("fz") / "results.json"
    bad = damage(json.dumps(recs).encode(), spec, "json")
    p.write_bytes(bad)
    try:
        per = validate_results(read_results(p), {7: (H, W)}, {1, 2}, str(p))
    except MetricsInputError as err:
        assert str(p) in str(err)
        return
    want = _results_oracle(bad)
    assert want is not None, f"{spec}: accepted a file that does not decode"
    got = [(7, int(c), float(s), r) for r, c, s in zip(*per[7])] if per else []
    assert len(got) == len(want)
    for (gi, gc, gs, gr), (wi, wc, ws, wr) in zip(got, want):
        assert (gi, gc, gs) == (wi, wc, ws)
        np.testing.assert_array_equal(decode(gr), decode(wr))


@SETTINGS
@given(spec=damages(), which=st.sampled_from(["gt", "mask", "txt"]), masks=masks_st)
def test_fuzz_cityscapes_inputs(spec, which, masks, tmp_path_factory):
    ids = np.full((H, W), 7)
    ids[2:6, 2:7], ids[7:11, 9:15] = 26001, 24001
    preds = [(m, 26, 0.5) for m in masks]
    gt, pred = write_cityscapes(tmp_path_factory.mktemp("fz"), ids, preds, "L255")
    frames = {FRAME: gt / "frankfurt" / f"{FRAME}_gtFine_instanceIds.png"}
    path = {"gt": frames[FRAME], "mask": pred / f"{FRAME}_0.png", "txt": pred / f"{FRAME}_leftImg8bit.txt"}[which]
    bad = damage(path.read_bytes(), spec, "text" if which == "txt" else "png")
    path.write_bytes(bad)
    try:
        got_ids = read_cityscapes_instance_ids(frames[FRAME])
        got = read_cityscapes_results(pred, frames)
    except MetricsInputError as err:
        assert str(path) in str(err), err
        return
    np.testing.assert_array_equal(got_ids, ids)  # a PNG that still reads is the original (CRCs)
    if which != "txt":
        assert [(r["category_id"], r["score"]) for r in got] == [(26, 0.5)] * len(masks)
        for r, m in zip(got, masks):
            np.testing.assert_array_equal(decode(r["segmentation"]), m)
        return
    # a damaged txt that still parses: what its lines say (independent parse)
    want = []
    for line in bad.decode("utf-8").splitlines():
        parts = line.split()
        if parts:
            k = int(parts[0][len(FRAME) + 1:-4])
            want.append((int(parts[1]), float(parts[2]), masks[k]))
    assert len(got) == len(want)
    for r, (lab, score, m) in zip(got, want):
        assert (r["category_id"], r["score"]) == (lab, score)
        np.testing.assert_array_equal(decode(r["segmentation"]), m)


@SETTINGS
@given(masks=masks_st)
def test_rle_counts_decoder_equals_the_runs_of_the_mask(masks):
    """The validator's own decoder of pycocotools' compressed counts (it must agree before it can guard)."""
    from instseg_lib.data.formats import check_coco_rle, coco_rle_counts

    for m in masks:
        flat = m.T.ravel()
        edges = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
        runs = np.diff(np.concatenate([[0], edges, [flat.size]]))
        if flat[0]:
            runs = np.concatenate([[0], runs])
        r = encode(m)[0]
        np.testing.assert_array_equal(coco_rle_counts(r["counts"]), runs)
        check_coco_rle(r, H, W)
        with pytest.raises(ValueError, match="add up"):
            check_coco_rle({"size": [H, W + 1], "counts": r["counts"]}, H, W + 1)
