"""Property tests: every label PNG that PIL can write reads back as PIL itself decodes it.

Random label maps are written with PIL in every mode and bit depth it writes for labels:
palette (P) with 2-, 4-, 16- and 256-entry palettes (PIL stores 1-, 2-, 4- and 8-bit files),
grey L, 1-bit, and 16-bit I;16, with and without transparency and with ``optimize``. Each is
read through ``read_label_png`` and through every reader that takes that kind of file (VOC
class and object maps, PASCAL-Context, Cityscapes labelIds), and compared with PIL's decode.
torchvision, the fast path, returned 1/2/4-bit palettes with their indices still packed.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from instseg_lib.data import LabelRangeError, open_dataset
from instseg_lib.data.classes import cityscapes_id_to_train_id
from instseg_lib.data.formats import read_label_png

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_counter = itertools.count()

#: (PIL mode, palette entries or None): the label encodings PIL writes.
ENCODINGS = [("P", 2), ("P", 4), ("P", 16), ("P", 256), ("L", None), ("1", None), ("I;16", None)]


def pil_decode(path) -> np.ndarray:
    """PIL's own decode of a label PNG, as label values."""
    with Image.open(path) as im:
        arr = np.asarray(im)
    return arr.astype(np.uint8) if arr.dtype == bool else arr.astype(np.int64)


def max_value(mode: str, entries: int | None) -> int:
    return {"P": (entries or 256) - 1, "L": 255, "1": 1, "I;16": 255}[mode]


def write_label(path, arr: np.ndarray, mode: str, entries: int | None, transparency: bool, optimize: bool,
                seed: int) -> None:
    rng = np.random.default_rng(seed)
    if mode == "P":
        im = Image.fromarray(arr.astype(np.uint8), "P")
        im.putpalette(rng.integers(0, 256, 3 * entries).astype(np.uint8).tobytes())
    elif mode == "1":
        im = Image.fromarray(arr.astype(bool))
    elif mode == "I;16":
        im = Image.fromarray(arr.astype(np.uint16))
    else:
        im = Image.fromarray(arr.astype(np.uint8))
    kw = {"optimize": optimize}
    if transparency and mode != "1":
        kw["transparency"] = int(arr.flat[0])
    im.save(path, **kw)


@st.composite
def label_files(draw, max_label: int = 255, void: bool = True):
    """(encoding, array, transparency, optimize, seed) with values a label map of that encoding can hold."""
    mode, entries = draw(st.sampled_from(ENCODINGS))
    top = min(max_value(mode, entries), max_label)
    h, w = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    values = draw(st.lists(st.integers(0, top), min_size=1, max_size=4, unique=True))
    if void and max_value(mode, entries) >= 255 and draw(st.booleans()):
        values.append(255)
    idx = draw(st.lists(st.integers(0, len(values) - 1), min_size=h * w, max_size=h * w))
    arr = np.asarray(values, np.int64)[np.asarray(idx)].reshape(h, w)
    return mode, entries, arr, draw(st.booleans()), draw(st.booleans()), draw(st.integers(0, 2**31))


@SETTINGS
@given(spec=label_files())
def test_read_label_png_equals_pil_decode(spec, tmp_path_factory):
    mode, entries, arr, trns, opt, seed = spec
    p = tmp_path_factory.mktemp("lab") / f"{next(_counter)}.png"
    write_label(p, arr, mode, entries, trns, opt, seed)
    got = read_label_png(p)
    assert got.dtype == np.uint8 and got.shape == arr.shape
    np.testing.assert_array_equal(got, pil_decode(p))
    np.testing.assert_array_equal(got, arr)


def test_four_bit_palette_regression(tmp_path):
    """The issue's case: classes {0, 1} in a 16-entry palette are a 4-bit file; they came back as {0, 1, 16, 17}."""
    arr = np.zeros((13, 13), np.uint8)
    arr[::2] = 1
    arr[:, 3] = 1
    p = tmp_path / "x.png"
    write_label(p, arr, "P", 16, False, False, 0)
    assert open(p, "rb").read()[24] == 4  # PIL chose a 4-bit file (IHDR bit depth)
    np.testing.assert_array_equal(read_label_png(p), arr)


def test_sixteen_bit_values_above_255_are_refused(tmp_path):
    p = tmp_path / "x.png"
    Image.fromarray(np.array([[0, 300]], np.uint16)).save(p)
    with pytest.raises(LabelRangeError, match=str(p)):
        read_label_png(p)


# ----------------------------------------------------------------------------- through the readers
def _jpeg(path, h, w):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(path, quality=90)


@SETTINGS
@given(cls=label_files(max_label=20), obj_spec=st.tuples(st.sampled_from(ENCODINGS), st.booleans(), st.booleans()),
       data=st.data())
def test_voc_reader_class_and_object_maps(cls, obj_spec, data, tmp_path_factory):
    mode, entries, sem, trns, opt, seed = cls
    h, w = sem.shape
    (omode, oentries), otrns, oopt = obj_spec
    # the object map: an instance is a set of pixels of one non-void, non-background class
    top = min(max_value(omode, oentries), 254)
    k = data.draw(st.integers(0, min(top, 6)))
    obj = np.zeros((h, w), np.int64)
    fg = (sem > 0) & (sem != 255)
    if k and fg.any():
        ids = np.asarray(data.draw(st.lists(st.integers(0, k), min_size=h * w, max_size=h * w))).reshape(h, w)
        obj = np.where(fg, ids, 0)
    if max_value(omode, oentries) >= 255:
        obj[sem == 255] = 255  # the void band is shared by the two maps
    elif (sem == 255).any():
        omode, oentries = "P", 256
        obj[sem == 255] = 255
    root = tmp_path_factory.mktemp("voc")
    iid = "2011_000001"
    _jpeg(root / "JPEGImages" / f"{iid}.jpg", h, w)
    for sub, arr, spec in (("SegmentationClass", sem, (mode, entries, trns, opt)),
                           ("SegmentationObject", obj, (omode, oentries, otrns, oopt))):
        (root / sub).mkdir()
        write_label(root / sub / f"{iid}.png", arr, *spec, seed)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text(iid + "\n")
    s = open_dataset("voc", "train", root=root)[0].validate()
    np.testing.assert_array_equal(s.semantic, pil_decode(root / "SegmentationClass" / f"{iid}.png"))
    o = pil_decode(root / "SegmentationObject" / f"{iid}.png")
    np.testing.assert_array_equal(o, obj)
    o = np.where(o == 255, 0, o)
    present = [v for v in range(1, int(o.max(initial=0)) + 1) if (o == v).any()]
    assert s.num_instances == len(present)
    for new, old in enumerate(present, start=1):
        np.testing.assert_array_equal(s.instances == new, o == old)
        assert s.instance_classes[new - 1] == np.bincount(sem[o == old]).argmax()


@SETTINGS
@given(lab=label_files(max_label=59, void=False))
def test_context_reader(lab, tmp_path_factory):
    mode, entries, arr, trns, opt, seed = lab
    root = tmp_path_factory.mktemp("ctx")
    _jpeg(root / "JPEGImages" / "a.jpg", *arr.shape)
    (root / "SegmentationClassContext").mkdir()
    write_label(root / "SegmentationClassContext" / "a.png", arr, mode, entries, trns, opt, seed)
    (root / "ImageSets" / "SegmentationContext").mkdir(parents=True)
    (root / "ImageSets" / "SegmentationContext" / "val.txt").write_text("a\n")
    s = open_dataset("context", "val", root=root)[0].validate()
    np.testing.assert_array_equal(s.semantic, pil_decode(root / "SegmentationClassContext" / "a.png"))


@SETTINGS
@given(lab=label_files(max_label=33, void=False), data=st.data())
def test_cityscapes_reader_label_ids(lab, data, tmp_path_factory):
    mode, entries, arr, trns, opt, seed = lab
    h, w = arr.shape
    root = tmp_path_factory.mktemp("cs")
    frame = "aachen_000000_000019"
    img_dir, gt_dir = root / "leftImg8bit" / "val" / "aachen", root / "gtFine" / "val" / "aachen"
    img_dir.mkdir(parents=True)
    gt_dir.mkdir(parents=True)
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(img_dir / f"{frame}_leftImg8bit.png")
    write_label(gt_dir / f"{frame}_gtFine_labelIds.png", arr, mode, entries, trns, opt, seed)
    # instanceIds consistent with labelIds: thing pixels get labelId*1000 + k, or stay a group
    k = np.asarray(data.draw(st.lists(st.integers(0, 3), min_size=h * w, max_size=h * w))).reshape(h, w)
    ids = np.where((arr >= 24) & (k > 0), arr * 1000 + k, arr)
    Image.fromarray(ids.astype(np.uint16)).save(gt_dir / f"{frame}_gtFine_instanceIds.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = open_dataset("cityscapes", "val", root=root)[0].validate()
    lab_pil = pil_decode(gt_dir / f"{frame}_gtFine_labelIds.png")
    np.testing.assert_array_equal(s.semantic, cityscapes_id_to_train_id()[lab_pil])
    things = [v for v in np.unique(ids[ids >= 1000]) if v // 1000 not in (29, 30)]  # caravan, trailer: no train id
    assert s.num_instances == len(things)
    for j, v in enumerate(things, start=1):
        np.testing.assert_array_equal(s.instances == j, ids == v)


IMAGE_MODES = ["P2", "P4", "P16", "P256", "L", "1", "I;16", "LA", "RGB", "RGBA"]


@SETTINGS
@given(mode=st.sampled_from(IMAGE_MODES), trns=st.booleans(), opt=st.booleans(),
       shape=st.tuples(st.integers(1, 20), st.integers(1, 20)), seed=st.integers(0, 2**31))
def test_read_rgb_of_any_png_equals_pil_convert(mode, trns, opt, shape, seed, tmp_path_factory):
    """Images go through the same PNG path (torchvision for 8-bit, PIL otherwise): same check."""
    from instseg_lib.data.formats import read_rgb

    rng = np.random.default_rng(seed)
    if mode.startswith("P"):
        n = int(mode[1:])
        im = Image.fromarray(rng.integers(0, n, shape).astype(np.uint8), "P")
        im.putpalette(rng.integers(0, 256, 3 * n).astype(np.uint8).tobytes())
    elif mode in ("RGB", "RGBA"):
        im = Image.fromarray(rng.integers(0, 256, shape + (len(mode),)).astype(np.uint8))
    elif mode == "I;16":
        im = Image.fromarray(rng.integers(0, 65536, shape).astype(np.uint16))
    else:
        im = Image.fromarray(rng.integers(0, 256, shape).astype(np.uint8)).convert(mode)
    kw = {"optimize": opt}
    if trns and mode in ("P2", "P4", "P16", "P256", "L", "I;16"):
        kw["transparency"] = 0
    p = tmp_path_factory.mktemp("img") / f"{next(_counter)}.png"
    im.save(p, **kw)
    with Image.open(p) as ref:
        want = np.asarray(ref.convert("RGB"))
    got = read_rgb(p)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, want)


def _handmade_grey_png(arr: np.ndarray, depth: int) -> bytes:
    """A 1/2/4-bit grey PNG (other tools write these; PIL cannot), built chunk by chunk."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    per = 8 // depth
    rows = b""
    for r in arr:
        vals = list(r) + [0] * ((-len(r)) % per)
        packed = bytearray()
        for i in range(0, len(vals), per):
            b = 0
            for v in vals[i:i + per]:
                b = (b << depth) | int(v)
            packed.append(b)
        rows += b"\x00" + bytes(packed)
    h, w = arr.shape
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@SETTINGS
@given(depth=st.sampled_from([1, 2, 4]), shape=st.tuples(st.integers(1, 20), st.integers(1, 20)),
       seed=st.integers(0, 2**31))
def test_low_bit_grey_png_gives_raw_values(depth, shape, seed, tmp_path_factory):
    """PIL scales 2/4-bit grey to 0..255 for display; a label map's values are the raw samples."""
    arr = np.random.default_rng(seed).integers(0, 2 ** depth, shape)
    p = tmp_path_factory.mktemp("grey") / f"{next(_counter)}.png"
    p.write_bytes(_handmade_grey_png(arr, depth))
    np.testing.assert_array_equal(read_label_png(p), arr)


def test_cityscapes_train_ids_map_back_to_the_label_ids_the_benchmark_scores():
    from instseg_lib.data.classes import CITYSCAPES_CLASSES, CS_ID, cityscapes_train_id_to_id

    back = cityscapes_train_id_to_id()
    assert sorted(back) == list(range(19)) and len(set(back.values())) == 19
    lut = cityscapes_id_to_train_id()
    assert all(int(lut[label_id]) == train_id for train_id, label_id in back.items())  # a round trip
    assert back[CITYSCAPES_CLASSES.index("car")] == CS_ID["car"] == 26  # cityscapesScripts' labels.py
