"""Per-image proposal cache: one ``.npz`` per (method + parameters, image).

BoxSup computes proposals once, "as a pre-processing" step (§4.2), and keeps them fixed for
all epochs; so do we. Layout::

    <cache_dir>/<method>-<hash of its parameters>/<image_id>.npz

Each file holds the candidates (:meth:`Candidates.to_bytes`) and the SHA-256 of the image
bytes they were computed from; a file whose image hash, format or method differs, or that
cannot be read, is recomputed and replaced. Writes are atomic (temporary file in the same
folder, then ``os.replace``), so an interrupted run leaves the old file or none, never half.
The full ranked list is cached; ``max_candidates`` is applied after loading.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .candidates import Candidates
from .selective_search import SelectiveSearchConfig, selective_search
from .superpixel_merging import SlicMergeConfig, slic_merge_proposals

#: name -> (config class, function(image, config) -> Candidates)
METHODS: dict[str, tuple[type, Callable[..., Candidates]]] = {
    "selective_search": (SelectiveSearchConfig, selective_search),
    "slic_merge": (SlicMergeConfig, slic_merge_proposals),
}


def image_hash(image: np.ndarray) -> str:
    a = np.ascontiguousarray(image)
    return hashlib.sha256(f"{a.shape}{a.dtype}".encode() + a.tobytes()).hexdigest()[:16]


def _config(method: str, config=None):
    if method not in METHODS:
        raise ValueError(f"unknown proposal method {method!r}; use one of {', '.join(METHODS)}")
    cls, _ = METHODS[method]
    if config is None:
        return cls()
    if not isinstance(config, cls):
        raise TypeError(f"method {method!r} takes a {cls.__name__}, got {type(config).__name__}")
    return config


def cache_path(cache_dir: str | Path, method: str, image_id: str, config=None) -> Path:
    cfg = _config(method, config)
    tag = hashlib.sha256(cfg.key().encode()).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", str(image_id))
    return Path(cache_dir) / f"{method}-{tag}" / f"{safe}.npz"


def compute_proposals(image: np.ndarray, method: str = "selective_search", config=None) -> Candidates:
    cfg = _config(method, config)
    return METHODS[method][1](image, cfg)


def cached_proposals(image: np.ndarray, image_id: str, method: str = "selective_search", config=None,
                     cache_dir: str | Path | None = None, max_candidates: int | None = None) -> Candidates:
    """Candidates of one image, from ``cache_dir`` when present and valid (``None``: no cache)."""
    cfg = _config(method, config)
    ihash = image_hash(image)
    path = cache_path(cache_dir, method, image_id, cfg) if cache_dir is not None else None
    cands = None
    if path is not None and path.is_file():
        try:
            got = Candidates.load(path)
            if got.meta.get("image_sha") == ihash and got.method == cfg.key() \
                    and got.shape == tuple(np.asarray(image).shape[:2]):
                cands = got
        except Exception:  # damaged or stale file: recompute below and replace it
            cands = None
    if cands is None:
        cands = compute_proposals(image, method, cfg)
        cands.meta["image_sha"] = ihash
        cands.meta["image_id"] = str(image_id)
        if path is not None:
            cands.save(path)
    return cands.top(max_candidates) if max_candidates is not None else cands
