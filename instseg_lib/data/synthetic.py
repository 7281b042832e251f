"""The synthetic twin: procedural scenes written in the real datasets' on-disk formats.

Usage::

    python -m instseg_lib.data.synthetic --preset voc --profile cpu --out DIR
    python -m instseg_lib.data.synthetic --all --profile cpu      # every preset under data_root()/cpu/

Every image is a pure function of ``(preset, split, index, seed)`` (and the profile's
image size): its random stream is ``SeedSequence([seed, preset, split, index])``, so the
bytes do not depend on the number of workers or on generation order. A preset is written
into a private temporary folder and renamed into place only when complete, together with
a completion marker that holds a configuration hash and a content fingerprint; a run that
finds a complete marker with the same configuration returns at once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ..paths import data_root
from ..profiles import Profile, get_profile
from .classes import COCO_CATEGORIES, VOC_CLASSES
from .scene import Scene

#: Bump when the generator's output changes: existing twins are then regenerated.
GENERATOR_VERSION = "2"
MARKER = ".instseg_complete.json"
PRESETS = ("voc", "sbd", "cityscapes", "context", "boxes", "coco")
SPLIT_CODE = {"train": 0, "val": 1}
CS_CITIES = {
    "train": ("aachen", "bochum", "bremen", "cologne", "darmstadt", "dusseldorf", "erfurt", "hamburg",
              "hanover", "jena", "krefeld", "monchengladbach", "strasbourg", "stuttgart", "tubingen",
              "ulm", "weimar", "zurich"),
    "val": ("frankfurt", "lindau", "munster"),
}


# ----------------------------------------------------------------------------- presets
@dataclass(frozen=True)
class Preset:
    name: str
    code: int
    subdir: str  # where the dataset root lies inside the preset folder (the archive layout)

    def counts(self, prof: Profile) -> dict[str, int]:
        n_train = prof.n_boxes if self.name == "boxes" else prof.n_train
        return {"train": n_train, "val": prof.n_val}

    def image_id(self, split: str, index: int) -> str:
        s = SPLIT_CODE[split]
        if self.name in ("voc", "sbd", "context"):
            year = {"voc": 2012, "sbd": 2008, "context": 2010}[self.name]
            return f"{year + s}_{index:06d}"
        if self.name == "boxes":
            return f"{index + 500000 * s:06d}"
        if self.name == "coco":
            return f"{index + 1 + 1000000 * s:012d}"
        city = CS_CITIES[split][index % len(CS_CITIES[split])]
        return f"{city}_{index:06d}_000019"


PRESET_SPECS = {p.name: p for p in (
    Preset("voc", 1, "VOCdevkit/VOC2012"),
    Preset("sbd", 2, "benchmark_RELEASE/dataset"),
    Preset("cityscapes", 3, ""),
    Preset("context", 4, "VOCdevkit/VOC2010"),
    Preset("boxes", 5, "VOCdevkit/VOC2007"),
    Preset("coco", 6, ""),
)}


def scene_rng(preset: str, split: str, index: int, seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, PRESET_SPECS[preset].code, SPLIT_CODE[split], index]))


def image_shape(rng: np.random.Generator, preset: str, short: int) -> tuple[int, int]:
    """Image height and width: 2:1 for Cityscapes; VOC/COCO mix 4:3 / 3:2 landscapes and portraits."""
    if preset == "cityscapes":
        return short, 2 * short
    long = int(round(short * (4 / 3 if rng.random() < 0.75 else 3 / 2)))
    return (short, long) if rng.random() < 0.72 else (long, short)


def render(preset: str, split: str, index: int, seed: int = 0, image_size: int = 96) -> Scene:
    """The scene of one image: a pure function of its arguments."""
    from .scene_context import context_scene
    from .scene_street import street_scene
    from .scene_voc import COCO_STYLE, voc_scene

    if preset not in PRESET_SPECS:
        raise ValueError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    rng = scene_rng(preset, split, index, seed)
    H, W = image_shape(rng, preset, image_size)
    if preset == "cityscapes":
        return street_scene(rng, H, W)
    if preset == "context":
        return context_scene(rng, H, W)
    if preset == "coco":
        return voc_scene(rng, H, W, COCO_STYLE)
    return voc_scene(rng, H, W)


# ----------------------------------------------------------------------------- per-image work
def _write_image(preset: str, split: str, index: int, seed: int, image_size: int, root: str) -> tuple[str, list[tuple[str, str]], list[dict]]:
    from . import writers as w

    spec = PRESET_SPECS[preset]
    scene = render(preset, split, index, seed, image_size)
    iid = spec.image_id(split, index)
    records: list[dict] = []
    if preset == "voc":
        files = w.write_voc(scene, iid)
    elif preset == "sbd":
        files = w.write_sbd(scene, iid)
    elif preset == "cityscapes":
        files = w.write_cityscapes(scene, split, iid.split("_")[0], iid)
    elif preset == "context":
        files = w.write_context(scene, iid)
    elif preset == "boxes":
        files = w.write_boxes(scene, iid)
        records = [{"classes": sorted({VOC_CLASSES[int(c)] for c in scene.instance_classes}),
                    "difficult": sorted({VOC_CLASSES[int(c)] for c, d in zip(scene.instance_classes, scene.difficult) if d})}]
    else:  # coco
        fname = f"{split}2017/{iid}.jpg"
        files = w.write_coco_image(scene, fname)
        h, wd = scene.semantic.shape
        records = [{"image": {"id": int(iid), "file_name": f"{iid}.jpg", "height": h, "width": wd, "license": 1,
                              "date_captured": "2017-01-01 00:00:00"},
                    "annotations": w.coco_records(scene, int(iid), polygons=True)}]
    digests = []
    for rel, data in files.items():
        path = Path(root) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        digests.append((rel, hashlib.sha256(data).hexdigest()))
    return iid, digests, records


def _write_chunk(args: tuple) -> list:
    preset, split, start, stop, seed, image_size, root = args
    return [_write_image(preset, split, i, seed, image_size, root) for i in range(start, stop)]


# ----------------------------------------------------------------------------- dataset-level files
def _split_files(preset: str, ids: dict[str, list[str]], records: dict[str, list[dict]]) -> dict[str, bytes]:
    lines = lambda xs: ("\n".join(xs) + "\n").encode()  # noqa: E731
    out: dict[str, bytes] = {}
    if preset == "voc":
        for s, xs in ids.items():
            out[f"ImageSets/Segmentation/{s}.txt"] = lines(xs)
        out["ImageSets/Segmentation/trainval.txt"] = lines(sorted(ids["train"] + ids["val"]))
    elif preset == "sbd":
        for s, xs in ids.items():
            out[f"{s}.txt"] = lines(xs)
    elif preset == "context":
        for s, xs in ids.items():
            out[f"ImageSets/SegmentationContext/{s}.txt"] = lines(xs)
    elif preset == "boxes":
        for s in ("train", "val", "trainval"):
            xs = ids[s] if s != "trainval" else sorted(ids["train"] + ids["val"])
            recs = records[s] if s != "trainval" else None
            out[f"ImageSets/Main/{s}.txt"] = lines(xs)
            if recs is None:
                recs = [r for r, _ in sorted(zip(records["train"] + records["val"], ids["train"] + ids["val"]), key=lambda t: t[1])]
            for cname in VOC_CLASSES[1:]:
                rows = []
                for iid, r in zip(xs, recs):
                    flag = 0 if cname in r["difficult"] else (1 if cname in r["classes"] else -1)
                    rows.append(f"{iid} {flag:2d}")
                out[f"ImageSets/Main/{cname}_{s}.txt"] = lines(rows)
    elif preset == "coco":
        for s in ids:
            images, anns = [], []
            for r in records[s]:
                images.append(r["image"])
                for a in r["annotations"]:
                    anns.append({**a, "id": len(anns) + 1 + (0 if s == "train" else 10_000_000)})
            doc = {
                "info": {"description": "instseg synthetic twin in COCO 2017 instances format", "version": "1.0",
                         "year": 2017, "contributor": "instseg_lib", "date_created": "2017/09/01"},
                "licenses": [{"id": 1, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}],
                "images": images, "annotations": anns,
                "categories": [{"supercategory": sc, "id": i, "name": n} for i, n, sc in COCO_CATEGORIES],
            }
            out[f"annotations/instances_{s}2017.json"] = json.dumps(doc, separators=(",", ":")).encode()
    return out


# ----------------------------------------------------------------------------- driver
def config_for(preset: str, prof: Profile, seed: int) -> dict:
    spec = PRESET_SPECS[preset]
    return {"preset": preset, "profile": prof.name, "image_size": prof.image_size, "counts": spec.counts(prof),
            "seed": seed, "generator_version": GENERATOR_VERSION}


def config_hash(cfg: dict) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def read_marker(out: Path) -> dict | None:
    try:
        return json.loads((Path(out) / MARKER).read_text())
    except (OSError, ValueError):
        return None


def is_complete(out: Path, cfg: dict | None = None) -> bool:
    m = read_marker(out)
    return m is not None and (cfg is None or m.get("config_hash") == config_hash(cfg))


def _clean_stale(out: Path) -> None:
    """Remove temporary folders left by interrupted runs whose process is gone."""
    for tmp in out.parent.glob(f".{out.name}.partial-*"):
        try:
            pid = int(tmp.name.split("-")[1])
            os.kill(pid, 0)
            if pid != os.getpid():
                continue  # another live generator owns it
        except PermissionError:
            continue      # alive, owned by another user
        except (ValueError, IndexError, ProcessLookupError):
            pass          # its writer is gone: the folder can never complete
        shutil.rmtree(tmp, ignore_errors=True)


def generate(preset: str, profile: str | Profile, out: str | Path, *, seed: int = 0, workers: int | None = None,
             force: bool = False, export_coco: bool = False, progress: bool = False,
             executor: ProcessPoolExecutor | None = None) -> Path:
    """Write one preset of the twin into ``out``; a no-op when ``out`` is already complete.

    ``workers``: processes (default: all CPUs; 1 renders in this process).
    ``export_coco``: also write ``annotations/instances_<split>.json`` (RLE masks) for
    presets that are not COCO themselves.
    """
    prof = get_profile(profile) if isinstance(profile, str) else profile
    if preset not in PRESET_SPECS:
        raise ValueError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    out = Path(out).expanduser().resolve()
    cfg = config_for(preset, prof, seed)
    cfg["export_coco"] = bool(export_coco)
    if not force and is_complete(out, cfg):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(out)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    spec = PRESET_SPECS[preset]
    root = tmp / spec.subdir if spec.subdir else tmp
    root.mkdir(parents=True)
    t0 = time.time()
    try:
        tasks = []
        for split, n in spec.counts(prof).items():
            step = max(1, min(32, n // max(1, 4 * (workers or os.cpu_count() or 1))))
            tasks += [(preset, split, a, min(n, a + step), seed, prof.image_size, str(root)) for a in range(0, n, step)]
        results = _run(tasks, workers, executor, progress, f"{preset}/{prof.name}")
        ids: dict[str, list[str]] = {"train": [], "val": []}
        records: dict[str, list[dict]] = {"train": [], "val": []}
        digests: list[tuple[str, str]] = []
        for task, chunk in zip(tasks, results):
            for iid, dg, recs in chunk:
                ids[task[1]].append(iid)
                records[task[1]] += recs
                digests += dg
        for rel, data in _split_files(preset, ids, records).items():
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            digests.append((rel, hashlib.sha256(data).hexdigest()))
        if export_coco and preset not in ("coco", "context"):
            from .coco import export_coco_json
            from .registry import _reader_class
            for split in ids:
                rel = f"annotations/instances_{split}.json"
                data = export_coco_json(_reader_class(preset)(root, split))
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes(data)
                digests.append((rel, hashlib.sha256(data).hexdigest()))
        fp = hashlib.sha256("\n".join(f"{r} {h}" for r, h in sorted(digests)).encode()).hexdigest()[:16]
        marker = {**cfg, "config_hash": config_hash(cfg), "fingerprint": fp, "n_files": len(digests),
                  "dataset_root": spec.subdir or ".", "seconds": round(time.time() - t0, 2)}
        (tmp / MARKER).write_text(json.dumps(marker, indent=1, sort_keys=True) + "\n")
        # Swap into place: the old copy (if any) is renamed away first, then deleted.
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _run(tasks: list, workers: int | None, executor, progress: bool, desc: str) -> list:
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=sum(t[3] - t[2] for t in tasks), desc=desc, unit="img", leave=False)
    results = []
    if executor is None and (workers == 1 or (workers is None and (os.cpu_count() or 1) == 1)):
        it: Iterable = map(_write_chunk, tasks)
        for r in it:
            results.append(r)
            bar and bar.update(len(r))
    else:
        ex = executor or ProcessPoolExecutor(max_workers=workers)
        try:
            for r in ex.map(_write_chunk, tasks):
                results.append(r)
                bar and bar.update(len(r))
        finally:
            if executor is None:
                ex.shutdown()
    bar and bar.close()
    return results


def twin_root(preset: str, profile: str | Profile | None = None) -> Path:
    """``data_root()/<profile>/<preset>``: where ``--all`` writes and ``open_dataset`` reads."""
    prof = get_profile(profile) if not isinstance(profile, Profile) else profile
    return data_root() / prof.name / preset


def generate_all(profile: str | Profile, *, seed: int = 0, workers: int | None = None, force: bool = False,
                 progress: bool = True, presets: Iterable[str] = PRESETS) -> dict[str, Path]:
    """Every preset into ``data_root()/<profile>/<preset>``; fast no-op for complete ones."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    todo = [p for p in presets if force or not is_complete(twin_root(p, prof), {**config_for(p, prof, seed), "export_coco": False})]
    out = {p: twin_root(p, prof) for p in presets}
    if not todo:
        return out
    ex = None if workers == 1 else ProcessPoolExecutor(max_workers=workers)
    try:
        for p in todo:
            generate(p, prof, out[p], seed=seed, workers=workers, force=force, progress=progress, executor=ex)
    finally:
        if ex is not None:
            ex.shutdown()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m instseg_lib.data.synthetic", description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--preset", choices=PRESETS, help="which dataset format to write")
    g.add_argument("--all", action="store_true", help="every preset into data_root()/<profile>/<preset>")
    ap.add_argument("--profile", default=None, help="smoke | cpu | gpu (default: $PROFILE, else cpu)")
    ap.add_argument("--out", type=Path, help="output folder (default: data_root()/<profile>/<preset>)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    ap.add_argument("--force", action="store_true", help="regenerate even when complete")
    ap.add_argument("--coco-json", action="store_true", help="also export COCO instance JSON (RLE) for the preset")
    a = ap.parse_args(argv)
    prof = get_profile(a.profile)
    t0 = time.time()
    if a.all:
        if a.out:
            ap.error("--out cannot be combined with --all (set INSTSEG_DATA to move data_root())")
        roots = generate_all(prof, seed=a.seed, workers=a.workers, force=a.force)
        for p, r in roots.items():
            print(f"{p:>10}: {r}  fingerprint {read_marker(r)['fingerprint']}")
    else:
        out = a.out or twin_root(a.preset, prof)
        r = generate(a.preset, prof, out, seed=a.seed, workers=a.workers, force=a.force, export_coco=a.coco_json,
                     progress=sys.stderr.isatty())
        print(f"{a.preset}: {r}  fingerprint {read_marker(r)['fingerprint']}")
    print(f"done in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


