"""Shared download / checksum / extraction helpers of the data scripts.

Every archive is verified against its published MD5 before it is extracted; a mismatch
raises :class:`instseg_lib.data.ChecksumError` naming the file. Downloads go to
``<file>.part`` and are renamed when complete, so an interrupted download is never
mistaken for a finished one. Extraction writes a ``.extracted-<archive>`` stamp last.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from instseg_lib.data.errors import ChecksumError, MissingDatasetError
from instseg_lib.paths import real_dataset_root


@dataclass(frozen=True)
class Resource:
    """One downloadable file and its published checksum."""

    url: str
    filename: str
    md5: str | None
    size: int | None = None   # bytes, when published (for a clearer error)
    note: str = ""


def default_root(name: str) -> Path:
    """``$INSTSEG_<NAME>_ROOT``, else ``$INSTSEG_REAL_ROOT/<name>`` (default ``data_root()/real/<name>``):
    the folder that ``INSTSEG_DATASETS=real`` reads (:func:`instseg_lib.paths.real_dataset_root`)."""
    return real_dataset_root(name)


def md5sum(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, res: Resource) -> None:
    """Raise :class:`ChecksumError` naming ``path`` unless it matches ``res``."""
    if not path.is_file():
        raise MissingDatasetError(f"{path} is missing: download it from {res.url}")
    if res.size is not None and path.stat().st_size != res.size:
        raise ChecksumError(f"{path}: size {path.stat().st_size} bytes, expected {res.size} (truncated or wrong "
                            f"file); delete it and download again from {res.url}")
    if res.md5 is None:
        return
    got = md5sum(path)
    if got != res.md5:
        raise ChecksumError(f"{path}: MD5 {got} does not match the published {res.md5}; the download is "
                            f"damaged or not the official file: delete it and download again from {res.url}")


def http_fetch(url: str, dest: Path) -> None:
    """Stream ``url`` to ``dest`` with a progress bar."""
    from tqdm import tqdm

    req = urllib.request.Request(url, headers={"User-Agent": "instseg-data-scripts/1.0"})
    with urllib.request.urlopen(req, timeout=60) as r, open(dest, "wb") as f:
        total = int(r.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name.removesuffix(".part")) as bar:
            for block in iter(lambda: r.read(1 << 20), b""):
                f.write(block)
                bar.update(len(block))


def ensure(res: Resource, download_dir: Path, fetch: Callable[[str, Path], None] = http_fetch) -> Path:
    """Return the verified archive in ``download_dir``, downloading it when absent."""
    download_dir.mkdir(parents=True, exist_ok=True)
    path = download_dir / res.filename
    if path.is_file():
        print(f"verifying {path} ...", flush=True)
        verify(path, res)
        return path
    part = path.with_name(path.name + ".part")
    print(f"downloading {res.url} -> {path}", flush=True)
    try:
        fetch(res.url, part)
    except OSError as err:
        part.unlink(missing_ok=True)
        raise MissingDatasetError(f"could not download {res.url} ({err}); download it by hand into {download_dir} "
                                  f"and run this command again") from err
    try:
        verify(part, res)
    except ChecksumError as err:
        part.unlink(missing_ok=True)  # never leave a bad download where a re-run would trust it
        raise ChecksumError(str(err).replace(str(part), f"{part} (downloaded from {res.url}, deleted)")) from None
    os.replace(part, path)
    return path


def extract(archive: Path, dest: Path) -> None:
    """Extract a .tar/.tgz/.tar.gz/.zip archive into ``dest`` (once: a stamp records it)."""
    stamp = dest / f".extracted-{archive.name}"
    if stamp.exists():
        print(f"{archive.name} already extracted into {dest}")
        return
    dest.mkdir(parents=True, exist_ok=True)
    print(f"extracting {archive} -> {dest} ...", flush=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():  # refuse paths escaping dest
                if Path(name).is_absolute() or ".." in Path(name).parts:
                    raise ChecksumError(f"{archive}: unsafe member path {name!r}; not an official archive")
            z.extractall(dest)
    else:
        with tarfile.open(archive) as t:
            t.extractall(dest, filter="data")
    stamp.write_text("ok\n")


def parser(name: str, description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=f"python -m data_scripts.{name}", description=description)
    ap.add_argument("--root", type=Path, default=default_root(name),
                    help=f"dataset root (default: $INSTSEG_{name.upper()}_ROOT, else $INSTSEG_REAL_ROOT/{name}, "
                         f"else data_root()/real/{name})")
    ap.add_argument("--downloads", type=Path, default=None, help="where archives go (default: ROOT/downloads)")
    ap.add_argument("--keep-archives", action="store_true", help="keep the archives after extraction")
    ap.add_argument("--verify-only", action="store_true", help="only check archives / layout, download nothing")
    return ap


def finish(archives: list[Path], keep: bool) -> None:
    if not keep:
        for a in archives:
            a.unlink(missing_ok=True)


def check_reader(name: str, root: Path, split: str) -> None:
    """Open the extracted dataset with the library's reader and read one sample."""
    from instseg_lib.data import open_dataset

    ds = open_dataset(name, split, root=root)
    s = ds[0]
    print(f"ok: {name} {split}: {len(ds)} images under {ds.root}; first {s.image_id} {s.image.shape[1]}x{s.image.shape[0]}, "
          f"{s.num_instances} instances")
    print(f"use it with: open_dataset({name!r}, {split!r}, root={str(root)!r})")


def run(main: Callable[[list[str] | None], int]) -> None:
    try:
        sys.exit(main(None))
    except (ChecksumError, MissingDatasetError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


