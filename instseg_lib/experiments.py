"""Config -> cached, provenance-stamped result.

An experiment is a frozen dataclass. Its content hash names its artifacts::

    results/<profile>/<paper>/<name>-<hash>.json    the result (metrics + provenance)
    results/<profile>/<paper>/<name>-<hash>.pt      its checkpoint (written by train.py)

On the real datasets (``INSTSEG_DATASETS=real``) the folder is ``results/<profile>-real``
(:func:`instseg_lib.paths.results_dir`), so twin and real results never meet; a real result
computed under another real root is recomputed, not served.

``run_experiment`` loads the JSON when it exists and is intact, and otherwise runs the
experiment function. ``FORCE=1`` (or ``force=True``) recomputes. Every JSON carries a
SHA-256 of its own content: a truncated or edited file is reported and recomputed, never
used. Writes go through a temporary file and ``os.replace`` so an interruption never
leaves a half-written result behind.

Many experiments run in one process (importing torch costs seconds); the training loop
in :mod:`instseg_lib.train` resumes from the checkpoint after an interruption.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from .paths import REPO_ROOT, data_root, data_source, real_data_root, real_root_overrides, results_dir
from .profiles import Profile, check_can_start, default_device, get_profile

RESULT_SCHEMA = 1


class CorruptResultWarning(UserWarning):
    """A cached result failed its checksum or did not parse; it is recomputed."""


class StaleResultWarning(UserWarning):
    """A cached result was computed on other data (another source or real root); it is recomputed."""


# --------------------------------------------------------------------------- hashing
def _canonical(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _canonical(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, float) and obj != obj:  # NaN is not valid JSON
        return "NaN"
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot hash config field of type {type(obj).__name__}: {obj!r}")


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, dataclasses expanded."""
    return json.dumps(_canonical(obj), sort_keys=True, separators=(",", ":"))


def config_hash(config: Any) -> str:
    """A 12-hex-digit content hash of a frozen config (its class name included)."""
    if not (dataclasses.is_dataclass(config) and not isinstance(config, type)):
        raise TypeError(f"an experiment config must be a dataclass instance, got {type(config).__name__}")
    if not config.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise TypeError(f"{type(config).__name__} must be a frozen dataclass (its hash names its results)")
    payload = canonical_json({"class": type(config).__name__, "fields": config})
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------- atomic I/O
def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` through a temporary file and ``os.replace``."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be loaded safely: damaged, or holding more than tensors and
    plain Python types (a pickle payload could run code when loaded)."""


def load_checkpoint(path: Path | str, map_location: Any = None) -> dict[str, Any]:
    """``torch.load`` with ``weights_only=True``: only tensors and plain Python types.

    Checkpoints live in the results cache, which is meant to be shared; a ``.pt`` file from
    someone else's cache must not be able to run code on load. Everything this project
    stores in a checkpoint (state dicts, step, loss history, the training config as a dict)
    is of those types. A refused or damaged file raises :class:`CheckpointError` naming it.
    """
    import pickle

    import torch

    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as err:
        reason = next((ln.strip() for ln in str(err).splitlines() if ln.strip().startswith("WeightsUnpickler")),
                      str(err).splitlines()[0] if str(err) else type(err).__name__)
        raise CheckpointError(
            f"{path}: refused to load this checkpoint: it holds objects other than tensors and plain Python "
            f"types ({reason[:300]}), and unpickling them could run code. Delete the file (training then starts "
            f"again; FORCE=1 recomputes a cached result), or take checkpoints only from caches you trust."
        ) from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        why = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise CheckpointError(f"{path}: cannot read this checkpoint ({why}); the file is damaged or truncated: "
                              f"delete it (training then starts again)") from err
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a checkpoint of this project (a {type(state).__name__}, not a dict); "
                              f"delete it")
    return state


def _with_checksum(record: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in record.items() if k != "sha256"}
    return {**body, "sha256": hashlib.sha256(canonical_json(body).encode()).hexdigest()}


def write_result(path: Path, record: dict[str, Any]) -> None:
    """Atomically write a result JSON with its embedded SHA-256."""
    text = json.dumps(_with_checksum(record), indent=1, sort_keys=True)
    atomic_write_bytes(Path(path), (text + "\n").encode())


def read_result(path: Path) -> dict[str, Any] | None:
    """Load a result JSON and verify its checksum.

    Returns ``None`` for a missing file. A file that does not parse or whose checksum does
    not match raises :class:`CorruptResultWarning` as a warning and returns ``None``.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        stored = record.get("sha256")
        expected = _with_checksum(record)["sha256"]
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError) as exc:
        warnings.warn(f"corrupt cached result {path}: {exc}; recomputing", CorruptResultWarning, stacklevel=2)
        return None
    if stored != expected:
        warnings.warn(f"corrupt cached result {path}: checksum mismatch; recomputing",
                      CorruptResultWarning, stacklevel=2)
        return None
    return record


# --------------------------------------------------------------------------- provenance
def git_commit() -> str:
    """The checkout's commit, with ``+dirty`` when tracked files differ; ``unknown`` outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("torch", "torchvision", "numpy", "scipy", "pycocotools", "instseg-lib"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def device_description(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads, {platform.machine()})"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices); cuDNN picks deterministic kernels.

    On CPU the kernels we use are deterministic already; ``use_deterministic_algorithms``
    would only add warning overhead (it cost a third of the step time here).
    """
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


# --------------------------------------------------------------------------- runner
@dataclass
class RunContext:
    """What an experiment function gets besides its config."""

    config: Any
    profile: Profile
    paper: str
    name: str
    hash: str
    seed: int
    device: str
    result_path: Path
    checkpoint_path: Path
    #: Set by the experiment function: the fingerprint of the dataset it read.
    dataset_fingerprint: str | None = None
    #: Anything else worth recording (e.g. whether weights were pretrained).
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    """A loaded or freshly computed experiment result."""

    metrics: dict[str, Any]
    provenance: dict[str, Any]
    config: dict[str, Any]
    path: Path
    cached: bool

    def __getitem__(self, key: str) -> Any:
        return self.metrics[key]


def result_paths(config: Any, *, paper: str, name: str, profile: Profile) -> tuple[Path, Path]:
    """The result JSON and checkpoint of ``config``: ``results_dir(profile)/<paper>/<name>-<hash>``."""
    h = config_hash(config)
    base = results_dir(profile.name) / paper
    return base / f"{name}-{h}.json", base / f"{name}-{h}.pt"


def data_provenance(profile: Profile) -> dict[str, Any]:
    """Which data a run reads: ``data_source`` (``twin`` or ``real``) and its root (and any
    ``INSTSEG_<NAME>_ROOT`` overrides of a real root, and the short side real images are read
    at, ``None`` for native: :func:`~instseg_lib.data.registry.real_image_size`)."""
    if data_source() == "twin":
        return {"data_source": "twin", "data_root": str(data_root() / profile.name)}
    from .data.registry import real_image_size

    overrides = real_root_overrides()
    return {"data_source": "real", "data_root": str(real_data_root()),
            **({"data_root_overrides": overrides} if overrides else {}),
            "real_image_size": real_image_size(profile)}


def _stale(provenance: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    """Why a cached result's data differ from the current run's (empty when they do not).

    Results written before the data source was recorded are twin results. The twin's root is
    not compared (a twin is a pure function of its preset, wherever it lies); a real one is.
    """
    source = provenance.get("data_source", "twin")
    if source != current["data_source"]:
        return f"computed on the {source} datasets, this run reads the {current['data_source']} ones"
    if source == "real":
        keys = ("data_root", "data_root_overrides")
        if any(provenance.get(k) != current.get(k) for k in keys):
            return (f"computed on the real datasets at {provenance.get('data_root')} "
                    f"{provenance.get('data_root_overrides') or ''}, this run reads {current['data_root']} "
                    f"{current.get('data_root_overrides') or ''}")
    return ""


def _rank() -> int:
    if "torch.distributed" in sys.modules:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank()
    return 0


def _force_from_env() -> bool:
    return os.environ.get("FORCE", "").strip().lower() in {"1", "true", "yes"}


def run_experiment(
    config: Any,
    fn: Callable[[Any, RunContext], Mapping[str, Any]],
    *,
    paper: str,
    name: str,
    profile: Profile | str | None = None,
    seed: int | None = None,
    force: bool | None = None,
    device: str | None = None,
) -> Result:
    """Run ``fn(config, ctx)`` once and cache its metrics with provenance.

    ``seed`` defaults to ``config.seed`` when the config has one, else 0. ``force``
    defaults to ``$FORCE``. The function must return a JSON-serialisable mapping. A run that
    is not cached refuses to start at the gpu profile without CUDA
    (:func:`~instseg_lib.profiles.check_can_start`); reading a cached one never does.
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"experiment name {name!r} must be letters, digits, '-' or '_'")
    result_path, ckpt_path = result_paths(config, paper=paper, name=name, profile=prof)
    force = _force_from_env() if force is None else force
    data = data_provenance(prof)
    if not force:
        record = read_result(result_path)
        why = _stale(record["provenance"], data) if record is not None else ""
        if record is not None and not why:
            return Result(record["metrics"], record["provenance"], record["config"], result_path, True)
        if why:
            warnings.warn(f"cached result {result_path}: {why}; recomputing", StaleResultWarning, stacklevel=2)
            force = True
    if force and ckpt_path.exists():
        ckpt_path.unlink()  # a forced run retrains from scratch

    seed = int(getattr(config, "seed", 0) if seed is None else seed)
    device = device or default_device()
    # Work starts here (a cached result above is only read): the gpu profile needs a GPU.
    check_can_start(prof, device)
    ctx = RunContext(config=config, profile=prof, paper=paper, name=name, hash=config_hash(config),
                     seed=seed, device=device, result_path=result_path, checkpoint_path=ckpt_path)
    seed_everything(seed)
    t0 = time.perf_counter()
    metrics = dict(fn(config, ctx))
    wall = time.perf_counter() - t0
    provenance = {
        "git_commit": git_commit(),
        "packages": package_versions(),
        "device": device_description(device),
        "wall_seconds": round(wall, 3),
        "dataset_fingerprint": ctx.dataset_fingerprint,
        **data,
        "seed": seed,
        "profile": prof.name,
        "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "argv0": Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "",
        **({"notes": ctx.notes} if ctx.notes else {}),
    }
    record = {
        "schema": RESULT_SCHEMA,
        "paper": paper,
        "name": name,
        "hash": ctx.hash,
        "config_class": type(config).__name__,
        "config": _canonical(config),
        "metrics": _canonical(metrics),
        "provenance": provenance,
    }
    if _rank() == 0:
        write_result(result_path, record)
    return Result(record["metrics"], provenance, record["config"], result_path, False)
