"""The experiment runner: content hash, cache, FORCE, provenance, checksums, atomic writes."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import pytest

from instseg_lib import experiments as ex
from instseg_lib.profiles import UnknownProfileError, get_profile


@dataclass(frozen=True)
class Cfg:
    lr: float = 0.1
    depth: int = 50
    tags: tuple[str, ...] = ("a",)
    seed: int = 5


@dataclass(frozen=True)
class OtherCfg:
    lr: float = 0.1
    depth: int = 50
    tags: tuple[str, ...] = ("a",)
    seed: int = 5


@dataclass
class Mutable:
    x: int = 1


@pytest.fixture(autouse=True)
def _isolated_results(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTSEG_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv("FORCE", raising=False)


def counting_fn():
    calls = []

    def fn(cfg, ctx):
        calls.append(ctx.seed)
        ctx.dataset_fingerprint = "fp-123"
        return {"miou": 0.25 + cfg.lr, "seed": ctx.seed}

    return fn, calls


def test_hash_depends_on_content_and_class_only():
    assert ex.config_hash(Cfg()) == ex.config_hash(Cfg())
    assert ex.config_hash(Cfg()) != ex.config_hash(Cfg(lr=0.2))
    assert ex.config_hash(Cfg()) != ex.config_hash(OtherCfg())
    assert len(ex.config_hash(Cfg())) == 12
    with pytest.raises(TypeError, match="frozen"):
        ex.config_hash(Mutable())
    with pytest.raises(TypeError, match="dataclass"):
        ex.config_hash({"lr": 1})


def test_result_is_cached_named_by_hash_and_stamped(tmp_path):
    fn, calls = counting_fn()
    r1 = ex.run_experiment(Cfg(), fn, paper="wu2016", name="toy", profile="smoke")
    assert not r1.cached and calls == [5]
    assert r1.path == tmp_path / "results" / "smoke" / "wu2016" / f"toy-{ex.config_hash(Cfg())}.json"
    prov = r1.provenance
    for key in ("git_commit", "packages", "device", "wall_seconds", "dataset_fingerprint", "seed"):
        assert key in prov, key
    assert prov["dataset_fingerprint"] == "fp-123" and prov["seed"] == 5
    assert prov["packages"]["torch"].startswith("2.14.1")
    r2 = ex.run_experiment(Cfg(), fn, paper="wu2016", name="toy", profile="smoke")
    assert r2.cached and calls == [5] and r2["miou"] == pytest.approx(0.35)
    ex.run_experiment(Cfg(lr=0.2), fn, paper="wu2016", name="toy", profile="smoke")
    assert calls == [5, 5]  # a different config is a different experiment


def test_force_env_recomputes(monkeypatch):
    fn, calls = counting_fn()
    ex.run_experiment(Cfg(), fn, paper="p", name="toy", profile="smoke")
    monkeypatch.setenv("FORCE", "1")
    r = ex.run_experiment(Cfg(), fn, paper="p", name="toy", profile="smoke")
    assert not r.cached and len(calls) == 2


@pytest.mark.parametrize("damage", ["truncate", "edit"])
def test_corrupt_result_is_reported_and_recomputed(damage):
    fn, calls = counting_fn()
    r = ex.run_experiment(Cfg(), fn, paper="p", name="toy", profile="smoke")
    text = r.path.read_text()
    if damage == "truncate":
        r.path.write_text(text[: len(text) // 2])
    else:  # valid JSON, wrong number: only the checksum can tell
        rec = json.loads(text)
        rec["metrics"]["miou"] = 0.99
        r.path.write_text(json.dumps(rec))
    with pytest.warns(ex.CorruptResultWarning, match="corrupt cached result"):
        r2 = ex.run_experiment(Cfg(), fn, paper="p", name="toy", profile="smoke")
    assert not r2.cached and len(calls) == 2 and r2["miou"] == pytest.approx(0.35)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ex.run_experiment(Cfg(), fn, paper="p", name="toy", profile="smoke").cached


def test_atomic_write_leaves_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    ex.atomic_write_bytes(path, b"old")

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ex.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        ex.atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left behind


def test_failed_experiment_writes_nothing():
    def fn(cfg, ctx):
        raise RuntimeError("diverged")

    with pytest.raises(RuntimeError):
        ex.run_experiment(Cfg(), fn, paper="p", name="toy", profile="smoke")
    path, _ = ex.result_paths(Cfg(), paper="p", name="toy", profile=get_profile("smoke"))
    assert not path.exists()


def test_unknown_profile_and_bad_name_are_refused():
    fn, _ = counting_fn()
    with pytest.raises(UnknownProfileError, match="smoke, cpu, gpu"):
        ex.run_experiment(Cfg(), fn, paper="p", name="toy", profile="laptop")
    with pytest.raises(ValueError, match="name"):
        ex.run_experiment(Cfg(), fn, paper="p", name="../escape", profile="smoke")
