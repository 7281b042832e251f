"""The data-source switch: ``INSTSEG_DATASETS=real`` makes ``open_dataset(name, split)`` read the
real datasets under ``INSTSEG_REAL_ROOT``; results of the two sources never share a cache
entry, provenance says which source a number came from, and captions name it."""

from __future__ import annotations

import dataclasses
import warnings

import pytest

from instseg_lib import experiments as ex
from instseg_lib.data import (MissingDatasetError, NAMES, data_source_summary, dataset_fingerprint, dataset_label,
                              open_dataset)
from instseg_lib.data.registry import real_image_size
from instseg_lib.paths import (data_identity, data_source, real_data_root, real_dataset_root, realdata_root,
                               results_dir)
from instseg_lib.profiles import get_profile


@dataclasses.dataclass(frozen=True)
class Cfg:
    lr: float = 0.1


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTSEG_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("INSTSEG_RESULTS", str(tmp_path / "results"))
    for var in ("INSTSEG_DATASETS", "INSTSEG_REAL_ROOT", "FORCE", *(f"INSTSEG_{n.upper()}_ROOT" for n in NAMES)):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def real(monkeypatch, root) -> None:
    monkeypatch.setenv("INSTSEG_DATASETS", "real")
    monkeypatch.setenv("INSTSEG_REAL_ROOT", str(root))


def test_the_twin_is_the_default_and_a_bad_value_is_refused(env, monkeypatch):
    assert data_source() == "twin"
    assert real_data_root() == env / "data" / "real"  # where data_scripts download by default
    monkeypatch.setenv("INSTSEG_DATASETS", "Real ")
    assert data_source() == "real"
    monkeypatch.setenv("INSTSEG_DATASETS", "imagenet")
    with pytest.raises(ValueError, match="'twin'.*'real'"):
        open_dataset("voc", "val")


def test_a_missing_real_dataset_names_its_data_script(env, monkeypatch):
    real(monkeypatch, env / "real")
    for name in NAMES:
        with pytest.raises(MissingDatasetError, match=r"python -m data_scripts\.\w+ .*--root .*" + name) as err:
            open_dataset(name, "val")
        assert "INSTSEG_DATASETS" in str(err.value)
    with pytest.raises(MissingDatasetError, match=r"data_scripts\.voc --year 2007"):
        open_dataset("boxes", "train")


def test_a_real_root_with_the_wrong_layout_names_what_was_expected(env, monkeypatch):
    real(monkeypatch, env / "real")
    (env / "real" / "voc" / "VOC2012").mkdir(parents=True)  # the devkit folder, but no JPEGImages
    with pytest.raises(MissingDatasetError, match=r"looked for .*VOCdevkit/VOC2012/JPEGImages") as err:
        open_dataset("voc", "val")
    assert "unset INSTSEG_DATASETS" in str(err.value)


def test_a_per_dataset_root_overrides_the_real_root(env, monkeypatch):
    real(monkeypatch, env / "real")
    monkeypatch.setenv("INSTSEG_COCO_ROOT", str(env / "elsewhere"))
    assert real_dataset_root("coco") == env / "elsewhere" and real_dataset_root("voc") == env / "real" / "voc"
    with pytest.raises(MissingDatasetError, match="elsewhere"):
        open_dataset("coco", "val")


@pytest.mark.skipif(realdata_root() is None, reason="../shared/realdata is absent (only on the team's machines and CI)")
def test_the_switch_reads_the_genuine_files_at_the_profiles_scale(env, monkeypatch):
    real(monkeypatch, realdata_root())  # its coco/ and cityscapes/ folders are in the expected layout
    assert open_dataset("coco", "val").root.resolve() == (realdata_root() / "coco").resolve()  # ../shared may be a link
    native = open_dataset("cityscapes", "val", root=realdata_root() / "cityscapes")[0]
    assert native.image.shape == (128, 256, 3)
    assert real_image_size("gpu") is None and real_image_size("smoke") == get_profile("smoke").image_size
    assert open_dataset("cityscapes", "val", profile="gpu")[0].image.shape == native.image.shape
    small = open_dataset("cityscapes", "val", profile="smoke", transform=lambda s: s.validate())[0]
    assert small.image.shape == (48, 96, 3) and small.semantic.shape == (48, 96)
    # nearest-neighbour label maps: no new classes, instances renumbered 1..n with their classes
    assert set(small.semantic.ravel()) <= set(native.semantic.ravel())
    assert 0 < small.num_instances <= native.num_instances


def test_in_process_caches_see_the_source_and_fingerprints_follow_links(env, monkeypatch, tmp_path):
    twin = data_identity()
    real(monkeypatch, env / "real")
    assert data_identity() != twin and data_identity()[0] == "real"
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "a.jpg").write_bytes(b"x")
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "JPEGImages").symlink_to(tmp_path / "store")
    f1 = dataset_fingerprint(tmp_path / "ds")
    (tmp_path / "store" / "b.jpg").write_bytes(b"y")
    assert dataset_fingerprint(tmp_path / "ds") != f1


def test_twin_paths_and_hashes_are_unchanged_and_real_ones_are_apart(env, monkeypatch):
    smoke = get_profile("smoke")
    twin_path, _ = ex.result_paths(Cfg(), paper="p", name="toy", profile=smoke)
    assert twin_path == env / "results" / "smoke" / "p" / f"toy-{ex.config_hash(Cfg())}.json"
    assert results_dir("smoke") == env / "results" / "smoke"
    real(monkeypatch, env / "real")
    real_path, _ = ex.result_paths(Cfg(), paper="p", name="toy", profile=smoke)
    assert real_path == env / "results" / "smoke-real" / "p" / twin_path.name
    assert results_dir("cpu") == env / "results" / "cpu-real"


def _counting():
    calls = []

    def fn(cfg, ctx):
        calls.append(ctx.result_path)
        return {"n": len(calls)}
    return fn, calls


def test_a_twin_result_is_never_served_to_a_real_run_nor_the_reverse(env, monkeypatch):
    fn, calls = _counting()
    twin = ex.run_experiment(Cfg(), fn, paper="p", name="toy", profile="smoke")
    assert twin.provenance["data_source"] == "twin"
    assert twin.provenance["data_root"] == str(env / "data" / "smoke")
    real(monkeypatch, env / "real")
    got = ex.run_experiment(Cfg(), fn, paper="p", name="toy", profile="smoke")
    assert not got.cached and len(calls) == 2 and got.path != twin.path
    assert got.provenance["data_source"] == "real" and got.provenance["data_root"] == str(env / "real")
    assert ex.run_experiment(Cfg(), fn, paper="p", name="toy", profile="smoke").cached
    monkeypatch.delenv("INSTSEG_DATASETS")
    again = ex.run_experiment(Cfg(), fn, paper="p", name="toy", profile="smoke")
    assert again.cached and again["n"] == 1


def test_a_real_result_of_another_real_root_is_recomputed(env, monkeypatch):
    fn, calls = _counting()
    real(monkeypatch, env / "real-a")
    ex.run_experiment(Cfg(), fn, paper="p", name="toy", profile="smoke")
    real(monkeypatch, env / "real-b")
    with pytest.warns(ex.StaleResultWarning, match="real-a"):
        r = ex.run_experiment(Cfg(), fn, paper="p", name="toy", profile="smoke")
    assert not r.cached and len(calls) == 2 and r.provenance["data_root"] == str(env / "real-b")
    monkeypatch.setenv("INSTSEG_VOC_ROOT", str(env / "voc-c"))  # one dataset moved: also other data
    with pytest.warns(ex.StaleResultWarning):
        r = ex.run_experiment(Cfg(), fn, paper="p", name="toy", profile="smoke")
    assert r.provenance["data_root_overrides"] == {"voc": str(env / "voc-c")}


def test_a_result_written_before_the_source_was_recorded_is_a_twin_result(env):
    fn, calls = _counting()
    r = ex.run_experiment(Cfg(), fn, paper="p", name="toy", profile="smoke")
    import json

    record = json.loads(r.path.read_text())
    for key in ("data_source", "data_root"):
        del record["provenance"][key]
    ex.write_result(r.path, {k: v for k, v in record.items() if k != "sha256"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ex.run_experiment(Cfg(), fn, paper="p", name="toy", profile="smoke").cached


def test_captions_name_the_dataset_of_the_active_source(env, monkeypatch):
    assert dataset_label("voc") == "VOC twin" and dataset_label("sbd", "train") == "SBD twin train"
    assert "synthetic twin" in data_source_summary("smoke") and str(env / "results" / "smoke") in \
        data_source_summary("smoke")
    real(monkeypatch, env / "real")
    assert dataset_label("voc", "val") == "PASCAL VOC 2012 val" and dataset_label("cityscapes") == "Cityscapes"
    assert "real" in data_source_summary("smoke") and "smoke-real" in data_source_summary("smoke")
    with pytest.raises(ValueError, match="unknown dataset"):
        dataset_label("imagenet")


def test_data_scripts_download_where_the_switch_reads(env, monkeypatch):
    from data_scripts import voc as voc_script
    from data_scripts.common import default_root

    monkeypatch.setenv("INSTSEG_REAL_ROOT", str(env / "real"))
    assert default_root("sbd") == real_dataset_root("sbd") == env / "real" / "sbd"
    # VOC 2007 is the box set: by default its archives are looked for under real/boxes
    with pytest.raises(MissingDatasetError, match=str(env / "real" / "boxes" / "downloads")):
        voc_script.main(["--year", "2007", "--verify-only"])
    with pytest.raises(MissingDatasetError, match=str(env / "real" / "voc" / "downloads")):
        voc_script.main(["--verify-only"])
