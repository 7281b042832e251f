"""data_scripts, tested offline: the fetch is replaced by a local copy of archives made
from the synthetic twin, checksums are verified on local files, missing roots explained."""

from __future__ import annotations

import hashlib
import tarfile
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest

from data_scripts import cityscapes as cs_script
from data_scripts import coco as coco_script
from data_scripts import context as ctx_script
from data_scripts import sbd as sbd_script
from data_scripts import voc as voc_script
from data_scripts.common import Resource, ensure, extract, md5sum, verify
from instseg_lib.data import ChecksumError, MissingDatasetError, open_dataset
from instseg_lib.data.synthetic import generate


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    base = tmp_path_factory.mktemp("tw")
    return {n: generate(n, "smoke", base / n, workers=1) for n in ("voc", "sbd", "coco", "cityscapes")}


def make_tar(path: Path, src: Path, arc_prefix: str, mode: str = "w") -> Path:
    with tarfile.open(path, mode) as t:
        t.add(src, arcname=arc_prefix, filter=lambda ti: None if ti.name.endswith(".instseg_complete.json") else ti)
    return path


def make_zip(path: Path, src: Path, arc_prefix: str) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                z.write(p, f"{arc_prefix}/{p.relative_to(src)}")
    return path


def local_fetch(files: dict[str, Path]):
    def fetch(url: str, dest: Path) -> None:
        dest.write_bytes(files[url].read_bytes())
    return fetch


def pin(monkeypatch, module, attr, res: Resource, path: Path, index=None):
    new = Resource(res.url, res.filename, md5sum(path))
    if index is None:
        monkeypatch.setattr(module, attr, new)
    else:
        getattr(module, attr)[index] = new  # list/dict entries: monkeypatch restores via setitem
    return new


def test_verify_checksum_on_local_files(tmp_path):
    f = tmp_path / "a.tar"
    f.write_bytes(b"hello")
    verify(f, Resource("u", "a.tar", hashlib.md5(b"hello").hexdigest()))
    with pytest.raises(ChecksumError, match=str(f)):
        verify(f, Resource("u", "a.tar", "0" * 32))
    with pytest.raises(ChecksumError, match="size"):
        verify(f, Resource("u", "a.tar", None, size=6))
    with pytest.raises(MissingDatasetError, match="download it from u"):
        verify(tmp_path / "missing.tar", Resource("u", "missing.tar", None))


def test_bad_download_is_deleted_and_reported(tmp_path):
    res = Resource("http://example/x.tgz", "x.tgz", "0" * 32)
    with pytest.raises(ChecksumError, match=r"x\.tgz\.part.*http://example/x\.tgz"):
        ensure(res, tmp_path, fetch=lambda url, dest: dest.write_bytes(b"corrupt"))
    assert not list(tmp_path.iterdir())


def test_no_network_message(tmp_path):
    def offline(url, dest):
        raise urllib.error.URLError("no route to host")
    with pytest.raises(MissingDatasetError, match="download it by hand"):
        ensure(Resource("http://example/x.tgz", "x.tgz", None), tmp_path, fetch=offline)


def test_published_checksums_are_well_formed():
    for r in [*voc_script.RESOURCES["2012"], *voc_script.RESOURCES["2007"], sbd_script.BENCHMARK, sbd_script.TRAIN_NOVAL,
              coco_script.ANNOTATIONS, *coco_script.IMAGES.values(), ctx_script.CONTEXT_TRAINVAL, *cs_script.PACKAGES]:
        assert len(r.md5) == 32 and int(r.md5, 16) >= 0 and r.url.startswith("http")
    assert voc_script.RESOURCES["2012"][0].md5 == "6cd6e144f989b92b3379bac3b3de84fd"
    assert sbd_script.BENCHMARK.md5 == "82b4d87ceb2ed10f6038a1cba92111cb"


def test_voc_script_offline(twins, tmp_path, monkeypatch, capsys):
    arc = make_tar(tmp_path / "VOCtrainval_11-May-2012.tar", twins["voc"] / "VOCdevkit", "VOCdevkit")
    res = voc_script.RESOURCES["2012"][0]
    monkeypatch.setitem(voc_script.RESOURCES, "2012", [Resource(res.url, res.filename, md5sum(arc))])
    root = tmp_path / "voc"
    assert voc_script.main(["--root", str(root)], fetch=local_fetch({res.url: arc})) == 0
    assert len(open_dataset("voc", "train", root=root)) == 8
    assert "open_dataset('voc', 'train'" in capsys.readouterr().out
    assert not (root / "downloads" / res.filename).exists()  # archives removed unless --keep-archives
    # a damaged archive already in the download folder is named
    (root / "downloads").mkdir(exist_ok=True)
    (root / "downloads" / res.filename).write_bytes(b"junk")
    with pytest.raises(ChecksumError, match="VOCtrainval_11-May-2012.tar"):
        voc_script.main(["--root", str(root), "--verify-only"])


def test_sbd_script_offline(twins, tmp_path, monkeypatch):
    arc = make_tar(tmp_path / "benchmark.tgz", twins["sbd"] / "benchmark_RELEASE", "benchmark_RELEASE", "w:gz")
    noval = tmp_path / "train_noval.txt"
    noval.write_text((twins["sbd"] / "benchmark_RELEASE/dataset/train.txt").read_text())
    b = pin(monkeypatch, sbd_script, "BENCHMARK", sbd_script.BENCHMARK, arc)
    n = pin(monkeypatch, sbd_script, "TRAIN_NOVAL", sbd_script.TRAIN_NOVAL, noval)
    root = tmp_path / "sbd"
    assert sbd_script.main(["--root", str(root)], fetch=local_fetch({b.url: arc, n.url: noval})) == 0
    assert len(open_dataset("sbd", "train_noval", root=root)) == 8


def test_coco_script_offline(twins, tmp_path, monkeypatch):
    ann = make_zip(tmp_path / "annotations_trainval2017.zip", twins["coco"] / "annotations", "annotations")
    val = make_zip(tmp_path / "val2017.zip", twins["coco"] / "val2017", "val2017")
    a = pin(monkeypatch, coco_script, "ANNOTATIONS", coco_script.ANNOTATIONS, ann)
    monkeypatch.setitem(coco_script.IMAGES, "val", Resource(coco_script.IMAGES["val"].url, "val2017.zip", md5sum(val)))
    root = tmp_path / "coco"
    assert coco_script.main(["--root", str(root), "--splits", "val"],
                            fetch=local_fetch({a.url: ann, coco_script.IMAGES["val"].url: val})) == 0
    assert len(open_dataset("coco", "val", root=root)) > 0


def test_context_script_converts_official_mat_labels(tmp_path, monkeypatch):
    from scipy import io as sio
    from PIL import Image

    voc = tmp_path / "src" / "VOCdevkit" / "VOC2010"
    (voc / "JPEGImages").mkdir(parents=True)
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    mats = tmp_path / "src_ctx" / "trainval"
    mats.mkdir(parents=True)
    ids = ["2008_000001", "2008_000002", "2008_000003"]
    for k, i in enumerate(ids):
        Image.fromarray(np.full((6, 8, 3), 40 * k, np.uint8)).save(voc / "JPEGImages" / f"{i}.jpg")
        lm = np.full((6, 8), 284, np.uint16)   # person in the 459-label space
        lm[0] = 360                             # sky
        lm[1, :2] = 7                           # not one of the 59 -> background
        sio.savemat(mats / f"{i}.mat", {"LabelMap": lm})
    (voc / "ImageSets/Main/train.txt").write_text("2008_000001\n2008_000002\n")
    (voc / "ImageSets/Main/val.txt").write_text("2008_000003\n2008_009999\n")
    vtar = make_tar(tmp_path / "VOCtrainval_03-May-2010.tar", tmp_path / "src" / "VOCdevkit", "VOCdevkit")
    ctar = make_tar(tmp_path / "trainval.tar.gz", mats, "trainval", "w:gz")
    v = voc_script.RESOURCES["2010"][0]
    monkeypatch.setitem(voc_script.RESOURCES, "2010", [Resource(v.url, v.filename, md5sum(vtar))])
    c = pin(monkeypatch, ctx_script, "CONTEXT_TRAINVAL", ctx_script.CONTEXT_TRAINVAL, ctar)
    monkeypatch.setattr(ctx_script, "VOC_RESOURCES", voc_script.RESOURCES)
    root = tmp_path / "ctx"
    assert ctx_script.main(["--root", str(root)], fetch=local_fetch({v.url: vtar, c.url: ctar})) == 0
    ds = open_dataset("context", "train", root=root)
    assert len(ds) == 2 and len(open_dataset("context", "val", root=root)) == 1
    s = ds[0]
    names = [s.class_names[v] for v in np.unique(s.semantic)]
    assert names == ["background", "person", "sky"]


def test_context_mapping_is_the_standard_one():
    from instseg_lib.data.classes import CONTEXT_CLASSES
    lut = ctx_script.label_lut()
    assert CONTEXT_CLASSES[lut[284]] == "person" and CONTEXT_CLASSES[lut[360]] == "sky"
    assert CONTEXT_CLASSES[lut[440]] == "wall" and CONTEXT_CLASSES[lut[2]] == "aeroplane"
    assert len(set(ctx_script.CONTEXT59_IDS)) == 60


def test_cityscapes_manual_step_and_arrange(twins, tmp_path, monkeypatch):
    with pytest.raises(MissingDatasetError, match=r"(?s)cityscapes-dataset\.com/login.*csDownload"):
        cs_script.main(["--root", str(tmp_path / "cs"), "--archives", str(tmp_path / "empty")])
    arch = tmp_path / "arch"
    arch.mkdir()
    gt = make_zip(arch / "gtFine_trainvaltest.zip", twins["cityscapes"] / "gtFine", "gtFine")
    left = make_zip(arch / "leftImg8bit_trainvaltest.zip", twins["cityscapes"] / "leftImg8bit", "leftImg8bit")
    monkeypatch.setattr(cs_script, "PACKAGES", [Resource(r.url, r.filename, md5sum(p)) for r, p in zip(cs_script.PACKAGES, (gt, left))])
    monkeypatch.setattr(cs_script, "EXPECTED", {"train": 8, "val": 4, "test": 0})
    root = tmp_path / "cs"
    assert cs_script.main(["--root", str(root), "--archives", str(arch), "--keep-archives"]) == 0
    assert len(open_dataset("cityscapes", "val", root=root)) == 4
    # a wrong archive is named
    gt.write_bytes(b"x")
    with pytest.raises(ChecksumError, match="gtFine_trainvaltest.zip"):
        cs_script.main(["--root", str(tmp_path / "cs2"), "--archives", str(arch)])


def test_extract_refuses_unsafe_paths(tmp_path):
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("../escape.txt", "x")
    with pytest.raises(ChecksumError, match="unsafe"):
        extract(z, tmp_path / "out")
