"""The synthetic twin: determinism, completion marker, interruption safety, realism."""

from __future__ import annotations

import hashlib
import json
import time

import numpy as np
import pytest
from scipy import ndimage

from instseg_lib.data import dataset_fingerprint, open_dataset
from instseg_lib.data import synthetic as syn
from instseg_lib.data.classes import CS_ID, VOC_CLASSES
from instseg_lib.data.writers import voc_void, write_voc

EIGHT = np.ones((3, 3), bool)


def digest(files: dict[str, bytes]) -> str:
    return hashlib.sha256(b"".join(k.encode() + v for k, v in sorted(files.items()))).hexdigest()


def test_render_is_a_pure_function():
    a = write_voc(syn.render("voc", "train", 3, seed=7, image_size=64), "x")
    b = write_voc(syn.render("voc", "train", 3, seed=7, image_size=64), "x")
    c = write_voc(syn.render("voc", "train", 4, seed=7, image_size=64), "x")
    assert digest(a) == digest(b) != digest(c)
    assert digest(write_voc(syn.render("voc", "train", 3, seed=8, image_size=64), "x")) != digest(a)


def test_generation_deterministic_and_independent_of_workers(tmp_path):
    a = syn.generate("sbd", "smoke", tmp_path / "a", workers=1)
    b = syn.generate("sbd", "smoke", tmp_path / "b", workers=2)
    assert dataset_fingerprint(a) == dataset_fingerprint(b)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files_a:
        if rel.name != syn.MARKER:  # the marker also records the wall time
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_complete_twin_is_a_fast_noop_and_config_change_regenerates(tmp_path):
    out = syn.generate("voc", "smoke", tmp_path / "voc", workers=1)
    marker = json.loads((out / syn.MARKER).read_text())
    t0 = time.perf_counter()
    syn.generate("voc", "smoke", out, workers=1)
    assert time.perf_counter() - t0 < 0.2
    assert json.loads((out / syn.MARKER).read_text()) == marker
    syn.generate("voc", "smoke", out, workers=1, seed=1)  # another configuration: regenerated
    assert json.loads((out / syn.MARKER).read_text())["fingerprint"] != marker["fingerprint"]


def test_generate_all_noop_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INSTSEG_DATA", str(tmp_path))
    syn.main(["--all", "--profile", "smoke", "--workers", "1"])
    for p in syn.PRESETS:
        assert syn.is_complete(tmp_path / "smoke" / p)
    t0 = time.perf_counter()
    syn.main(["--all", "--profile", "smoke", "--workers", "1"])
    assert time.perf_counter() - t0 < 1.0
    assert "fingerprint" in capsys.readouterr().out


def test_interrupted_generation_leaves_nothing_trusted(tmp_path, monkeypatch):
    out = tmp_path / "voc"
    real = syn._write_image
    calls = {"n": 0}

    def dying(*args):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("simulated kill")
        return real(*args)

    monkeypatch.setattr(syn, "_write_image", dying)
    with pytest.raises(KeyboardInterrupt):
        syn.generate("voc", "smoke", out, workers=1)
    assert not out.exists() and not list(tmp_path.glob(".voc.partial-*"))
    # a hard kill leaves a .partial folder: it is never read, and the next run cleans it
    (tmp_path / ".voc.partial-999999999-dead").mkdir()
    with pytest.raises(Exception, match="does not exist|incomplete|no dataset"):
        open_dataset("voc", "train", root=out)
    monkeypatch.setattr(syn, "_write_image", real)
    syn.generate("voc", "smoke", out, workers=1)
    assert syn.is_complete(out) and not list(tmp_path.glob(".voc.partial-*"))


# ----------------------------------------------------------------------------- realism
@pytest.fixture(scope="module")
def voc_scenes():
    return [syn.render("voc", "train", i, 0, 96) for i in range(60)]


def test_touching_and_occluding_same_class_instances(voc_scenes):
    touching = occluded = 0
    for sc in voc_scenes:
        for i, c in enumerate(sc.instance_classes, start=1):
            grown = ndimage.binary_dilation(sc.instances == i)
            others = np.unique(sc.instances[grown & (sc.instances != i) & (sc.instances > 0)])
            touching += any(sc.instance_classes[j - 1] == c for j in others)
        occluded += int(sc.occluded.sum())
    assert touching >= 15 and occluded >= 30


def test_instances_split_into_parts_by_an_occluder(voc_scenes):
    split = 0
    for sc in voc_scenes:
        for i in range(1, len(sc.instance_classes) + 1):
            lab, n = ndimage.label(sc.instances == i, EIGHT)
            sizes = np.sort(np.bincount(lab.ravel())[1:])[::-1]
            if n >= 2 and sizes[1] >= 0.15 * sizes[0] and sc.occluded[i - 1]:
                split += 1
    assert split >= 5


def test_scale_range_and_thin_fragmented_classes():
    scenes = [syn.render("voc", "train", i, 0, 200) for i in range(60)]
    fr, comps = [], {}
    for sc in scenes:
        lab = sc.semantic.copy()
        lab[voc_void(sc)] = 255
        for i, c in enumerate(sc.instance_classes, start=1):
            fr.append((sc.instances == i).mean())
        for c in np.unique(lab[(lab > 0) & (lab < 255)]):
            comps.setdefault(int(c), []).append(ndimage.label(lab == c, EIGHT)[1])
    fr = np.array(fr)
    assert fr.min() * 200 * 267 < 30 and fr.max() > 0.3      # a few pixels .. most of the image
    thin = [np.mean(comps[c]) for c in (2, 16) if c in comps]  # bicycle, pottedplant
    solid = [np.mean(comps[c]) for c in (6, 8, 12, 18, 20) if c in comps]  # bus, cat, dog, sofa, tv
    assert thin and min(thin) > 2 * np.mean(solid)


def test_class_imbalance_and_background_dominance(voc_scenes):
    counts = np.bincount(np.concatenate([sc.instance_classes for sc in voc_scenes]), minlength=21)
    assert counts[15] == counts.max()                        # person dominates
    bg = np.mean([(sc.semantic == 0).mean() for sc in voc_scenes])
    assert 0.5 < bg < 0.95


def test_colour_informs_but_does_not_decide_the_class(voc_scenes):
    """Twin v2: classes have characteristic looks (well above chance from colour alone), but
    confusable pairs, per-instance variation and off-palette instances keep colour far from
    decisive, so shape, parts and context still matter."""
    from instseg_lib.data.stats import colour_separability
    from instseg_lib.data.sample import Sample

    scenes = voc_scenes + [syn.render("voc", "val", i, 0, 96) for i in range(60)]
    samples = [Sample(sc.image, sc.semantic, sc.instances, sc.instance_classes, sc.boxes, "", 21, VOC_CLASSES)
               for sc in scenes]
    r = colour_separability(samples, 21)
    assert 4 * r["chance"] < r["balanced_accuracy"] < 0.75, r


def test_distractors_paint_background_shapes():
    """Class-less clutter: background pixels are far from uniform in colour."""
    sc = syn.render("voc", "train", 0, 0, 96)
    bg = sc.image[sc.semantic == 0].astype(float)
    assert bg.std(axis=0).mean() > 20


def test_cityscapes_imbalance_and_small_far_objects():
    scenes = [syn.render("cityscapes", "train", i, 0, 128) for i in range(25)]
    cls = np.concatenate([sc.instance_classes for sc in scenes])
    n = {k: int((cls == CS_ID[k]).sum()) for k in ("car", "person", "train", "bus")}
    assert n["car"] > 5 * max(n["train"], 1) and n["car"] > n["bus"]
    areas = np.concatenate([np.bincount(sc.instances.ravel())[1:] for sc in scenes])
    assert np.median(areas) < 60 and areas.max() > 1000
    sc = scenes[0]
    assert sc.image.shape[1] == 2 * sc.image.shape[0]
    for k in ("road", "sky", "building"):
        assert np.mean([(s.semantic == CS_ID[k]).any() for s in scenes]) > 0.9


def test_context_stuff_covers_most_pixels():
    from instseg_lib.data.classes import CONTEXT_CLASSES
    stuff = {CONTEXT_CLASSES.index(n) for n in ("sky", "wall", "floor", "grass", "ground", "road", "tree", "building",
                                                 "ceiling", "water", "mountain", "sidewalk", "snow", "rock", "platform",
                                                 "track", "window", "door", "curtain", "cabinet", "shelves", "fence",
                                                 "bed", "bedclothes", "table", "wood", "sign", "light")}
    fr = [np.isin(syn.render("context", "train", i, 0, 96).semantic, list(stuff)).mean() for i in range(20)]
    assert np.mean(fr) > 0.5


def test_fingerprint_of_a_real_folder(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"123")
    f1 = dataset_fingerprint(tmp_path)
    assert f1 == dataset_fingerprint(tmp_path) and len(f1) == 16
    (tmp_path / "a" / "y.png").write_bytes(b"4")
    assert dataset_fingerprint(tmp_path) != f1
