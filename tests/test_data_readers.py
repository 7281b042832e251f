"""Every reader on the synthetic twin (smoke profile) and on ../shared/realdata; bad input."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from instseg_lib.data import (CorruptFileError, DataError, LabelRangeError, MissingAnnotationError,
                              MissingAnnotationWarning, MissingDatasetError, MissingSplitError, SizeMismatchError,
                              UnknownCategoryWarning, open_dataset)
from instseg_lib.data.synthetic import generate
from instseg_lib.paths import realdata_root

NAMES = ("voc", "sbd", "cityscapes", "context", "boxes", "coco")


@pytest.fixture(scope="module")
def twins(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("twins")
    return {n: generate(n, "smoke", base / n, workers=1) for n in NAMES}


def copy_twin(twins, name, tmp_path) -> Path:
    dst = tmp_path / name
    shutil.copytree(twins[name], dst)
    return dst


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("split", ["train", "val"])
def test_reader_on_twin(twins, name, split):
    ds = open_dataset(name, split, root=twins[name])
    assert len(ds) > 0
    for i in range(len(ds)):
        s = ds[i].validate()
        assert s.image.dtype == np.uint8 and s.image.shape[:2] == s.semantic.shape
        if name == "context":
            assert not s.has_instances and s.num_instances == 0 and s.semantic.max() < 60
        elif name == "boxes":
            assert not s.has_masks and (s.semantic == 255).all() and (s.boxes[:, 2:] > s.boxes[:, :2]).all()
        else:
            # instances lie on non-void pixels of their own class
            for k, c in enumerate(s.instance_classes, start=1):
                m = s.instances == k
                assert m.any() and (s.semantic[m] == c).all()


def test_twin_voc_files_match_format(twins):
    root = twins["voc"] / "VOCdevkit" / "VOC2012"
    iid = (root / "ImageSets/Segmentation/train.txt").read_text().split()[0]
    cls, obj = Image.open(root / f"SegmentationClass/{iid}.png"), Image.open(root / f"SegmentationObject/{iid}.png")
    assert cls.mode == "P" and obj.mode == "P"
    assert np.asarray(cls.getpalette()[:6]).tolist() == [0, 0, 0, 128, 0, 0]
    c, o = np.asarray(cls), np.asarray(obj)
    assert ((c == 255) == (o == 255)).all(), "the void band must be identical in the two maps"
    assert (root / f"Annotations/{iid}.xml").read_text().count("<object>") >= 0


def test_twin_cityscapes_instance_ids(twins):
    f = sorted((twins["cityscapes"] / "gtFine" / "train").glob("*/*_instanceIds.png"))[0]
    im = Image.open(f)
    assert im.mode == "I;16"
    ids = np.asarray(im).astype(np.int64)
    lab = np.asarray(Image.open(str(f).replace("instanceIds", "labelIds")))
    inst = ids >= 1000
    assert inst.any()
    assert (ids[inst] // 1000 == lab[inst]).all() and (ids[~inst] == lab[~inst]).all()
    assert set(np.unique(ids[inst] // 1000)) <= set(range(24, 34))


def test_twin_sbd_mat_structs(twins):
    from scipy import io as sio
    root = twins["sbd"] / "benchmark_RELEASE" / "dataset"
    iid = (root / "train.txt").read_text().split()[0]
    cls = sio.loadmat(root / f"cls/{iid}.mat")["GTcls"][0, 0]
    inst = sio.loadmat(root / f"inst/{iid}.mat")["GTinst"][0, 0]
    assert cls.dtype.names == ("Boundaries", "Segmentation", "CategoriesPresent")
    assert inst.dtype.names == ("Segmentation", "Boundaries", "Categories")
    assert cls["Boundaries"].shape == (20, 1) and inst["Categories"].shape[1] == 1


def test_twin_coco_json_loads_with_pycocotools(twins, capsys):
    from pycocotools.coco import COCO
    c = COCO(str(twins["coco"] / "annotations" / "instances_val2017.json"))
    assert len(c.getCatIds()) == 80 and len(c.getImgIds()) > 0
    anns = c.loadAnns(c.getAnnIds())
    assert any(isinstance(a["segmentation"], list) for a in anns)


# ----------------------------------------------------------------------------- genuine files
REAL = realdata_root()
needs_real = pytest.mark.skipif(REAL is None, reason="../shared/realdata is absent (only on the team's machines and CI)")


@needs_real
def test_real_voc():
    ds = open_dataset("voc", "all", root=REAL / "voc2012")
    # only 2011_003066 has a SegmentationObject PNG in the fixture: the others are reported
    with pytest.warns(MissingAnnotationWarning) as rec:
        samples = {ds.ids[i]: ds[i].validate() for i in range(len(ds))}
    reported = {str(w.message).split("SegmentationObject/")[1][:11] for w in rec}
    assert reported == {"2011_000003", "2011_000006", "2011_000025"}
    s = samples["2011_003066"]
    assert s.num_instances == 19 and set(s.instance_classes.tolist()) == {5, 9, 11, 15}
    assert not samples["2011_000003"].has_instances
    assert (samples["2011_000003"].semantic == 255).mean() > 0.01


@needs_real
def test_real_sbd_mat():
    ds = open_dataset("sbd", "val", root=REAL / "sbd")
    s = ds[0].validate()
    assert s.image_id == "2008_000051" and s.instance_classes.tolist() == [5, 5, 9, 15, 15]
    assert (s.semantic != 255).all()
    assert len(open_dataset("sbd", "train", root=REAL / "sbd")) == 0


@needs_real
def test_real_cityscapes_16bit():
    s = open_dataset("cityscapes", "val", root=REAL / "cityscapes")[0].validate()
    assert s.image.shape == (128, 256, 3)
    assert s.num_instances == 7 and sorted(set(s.instance_classes.tolist())) == [11, 13]  # person, car
    assert s.semantic.max() == 255 and set(np.unique(s.semantic)) - {255} <= set(range(19))


@needs_real
def test_real_coco_voc_classes_only():
    ds = open_dataset("coco", "val", root=REAL / "coco")
    assert 0 < len(ds) <= 12
    for i in range(len(ds)):
        s = ds[i].validate()
        assert s.num_instances > 0 and s.instance_classes.max() <= 20


# ----------------------------------------------------------------------------- bad input
def test_missing_real_root_names_data_script(tmp_path):
    for name in NAMES:
        with pytest.raises(MissingDatasetError, match=r"python -m data_scripts\."):
            open_dataset(name, "train", root=tmp_path / "nothing")


def test_missing_twin_names_generator(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTSEG_DATA", str(tmp_path))
    with pytest.raises(MissingDatasetError, match=r"python -m instseg_lib\.data\.synthetic --preset voc --profile smoke"):
        open_dataset("voc", "train", profile="smoke")


def test_twin_from_data_root(twins, tmp_path, monkeypatch):
    monkeypatch.setenv("INSTSEG_DATA", str(tmp_path))
    shutil.copytree(twins["voc"], tmp_path / "smoke" / "voc")
    assert len(open_dataset("voc", "val", profile="smoke")) == 4


def test_missing_split_names_file(twins):
    with pytest.raises(MissingSplitError, match=r"ImageSets/Segmentation/test\.txt"):
        open_dataset("voc", "test", root=twins["voc"])
    with pytest.raises(MissingSplitError, match="leftImg8bit/test"):
        open_dataset("cityscapes", "test", root=twins["cityscapes"])
    with pytest.raises(MissingSplitError, match="instances_test2017.json"):
        open_dataset("coco", "test", root=twins["coco"])


def test_corrupt_jpeg_and_png_name_the_file(twins, tmp_path):
    root = copy_twin(twins, "voc", tmp_path)
    ds = open_dataset("voc", "train", root=root)
    jpg = ds.root / "JPEGImages" / f"{ds.ids[0]}.jpg"
    jpg.write_bytes(jpg.read_bytes()[:100])
    with pytest.raises(CorruptFileError, match=str(jpg)):
        ds[0]
    png = ds.root / "SegmentationClass" / f"{ds.ids[1]}.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(CorruptFileError, match=str(png)):
        ds[1]


def test_size_mismatch_names_the_file(twins, tmp_path):
    root = copy_twin(twins, "voc", tmp_path)
    ds = open_dataset("voc", "train", root=root)
    p = ds.root / "SegmentationObject" / f"{ds.ids[0]}.png"
    im = Image.open(p)
    im.resize((im.width + 3, im.height)).save(p)
    with pytest.raises(SizeMismatchError, match=str(p)):
        ds[0]


def test_label_out_of_range_names_the_file(twins, tmp_path):
    root = copy_twin(twins, "voc", tmp_path)
    ds = open_dataset("voc", "train", root=root)
    p = ds.root / "SegmentationClass" / f"{ds.ids[0]}.png"
    im = Image.open(p)
    a = np.array(im)
    a[0, 0] = 42
    out = Image.fromarray(a)
    out.putpalette(im.getpalette())
    out.save(p)
    with pytest.raises(LabelRangeError, match=rf"{p}.*\[42\]"):
        ds[0]


def test_cityscapes_label_out_of_range(twins, tmp_path):
    root = copy_twin(twins, "cityscapes", tmp_path)
    ds = open_dataset("cityscapes", "val", root=root)
    p = ds._gt(0, "labelIds")
    a = np.array(Image.open(p))
    a[0, 0] = 200
    Image.fromarray(a).save(p)
    with pytest.raises(LabelRangeError, match=str(p)):
        ds[0]


def test_missing_object_png_warns_or_raises(twins, tmp_path):
    root = copy_twin(twins, "voc", tmp_path)
    ds = open_dataset("voc", "train", root=root)
    p = ds.root / "SegmentationObject" / f"{ds.ids[0]}.png"
    p.unlink()
    with pytest.warns(MissingAnnotationWarning, match=str(p)):
        s = ds[0]
    assert not s.has_instances and s.num_instances == 0
    strict = open_dataset("voc", "train", root=root, missing_instances="error")
    with pytest.raises(MissingAnnotationError, match=str(p)):
        strict[0]
    assert strict[1].has_instances  # the others still read
    with pytest.raises(ValueError, match="missing_instances"):
        open_dataset("voc", "train", root=root, missing_instances="ignore")


@pytest.mark.parametrize("name, rel", [("voc", "JPEGImages/{id}.jpg"), ("voc", "SegmentationClass/{id}.png"),
                                       ("voc", "SegmentationObject/{id}.png"), ("sbd", "cls/{id}.mat"),
                                       ("context", "SegmentationClassContext/{id}.png")])
def test_zero_byte_file_is_a_data_error_naming_it(twins, tmp_path, name, rel):
    root = copy_twin(twins, name, tmp_path)
    ds = open_dataset(name, "train", root=root)
    p = ds.root / rel.format(id=ds.ids[0])
    p.write_bytes(b"")
    with pytest.raises(CorruptFileError, match=rf"{p}: .*empty \(0 bytes\).*re-extract"):
        ds[0]


def test_cityscapes_8bit_instance_ids_refused(twins, tmp_path):
    root = copy_twin(twins, "cityscapes", tmp_path)
    ds = open_dataset("cityscapes", "val", root=root)
    p = ds._gt(0, "instanceIds")
    ids = np.asarray(Image.open(p)).astype(np.int64)
    Image.fromarray((ids % 256).astype(np.uint8)).save(p)  # an image tool's 8-bit re-save
    with pytest.raises(CorruptFileError, match=rf"{p}: .*8-bit grey PNG, expected a 16-bit.*re-extract"):
        ds[0]


def test_cityscapes_instance_class_must_agree_with_label_ids(twins, tmp_path):
    root = copy_twin(twins, "cityscapes", tmp_path)
    ds = open_dataset("cityscapes", "val", root=root)
    p = ds._gt(0, "instanceIds")
    ids = np.asarray(Image.open(p)).astype(np.int64)
    inst = ids >= 1000
    assert inst.any()
    ids[inst] = 33000 + ids[inst] % 1000  # every instance relabelled "bicycle"
    if (np.asarray(Image.open(ds._gt(0, "labelIds")))[inst] == 33).all():
        ids[inst] = 32000 + ids[inst] % 1000
    Image.fromarray(ids.astype(np.uint16)).save(p)
    with pytest.raises(LabelRangeError, match=rf"{p}: instance ids disagree with .*labelIds\.png"):
        ds[0]


def test_corrupt_mat_names_the_file(twins, tmp_path):
    root = copy_twin(twins, "sbd", tmp_path)
    ds = open_dataset("sbd", "train", root=root)
    p = ds.root / "inst" / f"{ds.ids[0]}.mat"
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(CorruptFileError, match=str(p)):
        ds[0]


@pytest.mark.parametrize("name", ["voc", "cityscapes", "boxes"])
def test_export_coco_json_from_any_preset(twins, name, tmp_path):
    from pycocotools.coco import COCO
    from instseg_lib.data.coco import export_coco_json

    ds = open_dataset(name, "val", root=twins[name])
    p = tmp_path / "instances.json"
    p.write_bytes(export_coco_json(ds))
    c = COCO(str(p))
    assert len(c.getAnnIds()) == sum(ds[i].num_instances for i in range(len(ds)))
    assert (ds.root / c.loadImgs(1)[0]["file_name"]).is_file()


@needs_real
def test_coco_reads_categories_by_name_from_the_file(tmp_path):
    """export_coco_json numbers categories 1..20 in VOC order: read back by name, not as COCO-2017 ids."""
    from instseg_lib.data.coco import export_coco_json

    voc = open_dataset("voc", "all", root=REAL / "voc2012")
    with pytest.warns(MissingAnnotationWarning):
        doc = json.loads(export_coco_json(voc))
    want = voc[voc.ids.index("2011_003066")]
    (tmp_path / "annotations").mkdir()
    shutil.copytree(voc.root / "JPEGImages", tmp_path / "val2017" / "JPEGImages")
    (tmp_path / "annotations" / "instances_val2017.json").write_text(json.dumps(doc))
    got = open_dataset("coco", "val", root=tmp_path)
    assert got.ids == [str(voc.ids.index("2011_003066") + 1)]
    s = got[0]
    assert s.num_instances == 19 and sorted(s.instance_classes.tolist()) == sorted(want.instance_classes.tolist())
    for k in range(1, 20):  # each instance comes back with its own mask and class
        j = int(np.bincount(want.instances[s.instances == k]).argmax())
        assert (want.instances == j).sum() == (s.instances == k).sum() and want.instance_classes[j - 1] == s.instance_classes[k - 1]
    # an unknown name is dropped and counted, with a warning naming the file
    doc["categories"] = [dict(c, name="widget") if c["name"] == "chair" else c for c in doc["categories"]]
    (tmp_path / "annotations" / "instances_val2017.json").write_text(json.dumps(doc))
    with pytest.warns(UnknownCategoryWarning, match=r"instances_val2017\.json.*'widget' \(8\)"):
        ds = open_dataset("coco", "val", root=tmp_path)
    assert ds.dropped_categories == {"widget": 8} and ds[0].num_instances == 11
    assert 9 not in ds[0].instance_classes  # chair


def test_coco_without_categories_table_is_refused(twins, tmp_path):
    root = copy_twin(twins, "coco", tmp_path)
    p = root / "annotations" / "instances_val2017.json"
    doc = json.loads(p.read_text())
    del doc["categories"]
    p.write_text(json.dumps(doc))
    with pytest.raises(CorruptFileError, match=rf"{p}.*no 'categories' list"):
        open_dataset("coco", "val", root=root)


def test_coco_crowd_pixels_reach_the_training_targets(tmp_path):
    from dataclasses import replace as dc_replace

    from instseg_lib.data import collate, train_transforms
    from instseg_lib.profiles import get_profile
    from pycocotools.coco import COCO

    # A crowd is drawn in about one COCO-twin image in ten: 40 smoke-sized images hold some.
    prof = dc_replace(get_profile("smoke"), n_train=40, n_val=2)
    ds = open_dataset("coco", "train", root=generate("coco", prof, tmp_path / "coco", workers=1))
    ref = COCO(str(ds.annotation_file))
    seen = 0
    for i in range(len(ds)):
        s = ds[i].validate()
        crowd_anns = [a for a in ref.imgToAnns[int(s.image_id)] if a["iscrowd"] and a["category_id"] in ds.category_map]
        want = np.zeros(s.semantic.shape, bool)
        for a in crowd_anns:
            with warnings.catch_warnings():  # pycocotools' numpy-2 deprecation notice
                warnings.simplefilter("ignore", DeprecationWarning)
                want |= ref.annToMask(a).astype(bool)
        np.testing.assert_array_equal(s.crowd, want)  # every crowd pixel, also under instances
        assert (s.semantic[want & (s.instances == 0)] == 255).all()
        seen += bool(crowd_anns)
        if crowd_anns:
            t = train_transforms("smoke", scale=(1.0, 1.0), degrees=0, flip=False)(s).validate()
            assert t.crowd is not None and t.crowd.shape == t.semantic.shape
            assert collate([t, s])["crowd"].dtype == torch.bool
    assert seen, "40 COCO-twin images should hold crowd annotations"


def test_generator_coco_json_flag(tmp_path):
    out = generate("sbd", "smoke", tmp_path / "sbd", workers=1, export_coco=True)
    assert (out / "benchmark_RELEASE/dataset/annotations/instances_val.json").is_file()
