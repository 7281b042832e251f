"""ImageNet weights: one registry of (URL, hash), a verified and cached download.

Every backbone the papers fine-tune has torchvision's ImageNet-1k weights at standard width
(64). :data:`IMAGENET_WEIGHTS` is the one table of where they come from (d2l's ``DATA_HUB``
style): for each architecture the ``IMAGENET1K_V1`` URL of torchvision 0.29's weights enums
(``torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url`` etc.; a test checks that they still
agree) and the hash the file must have.

The hash. torchvision publishes no full SHA-256 of its weight files; it puts the first hex
digits of it in the file name (``resnet50-0676ba61.pth``), and ``torch.hub``'s
``check_hash`` compares the file's SHA-256 with that prefix. The registry checks the same
prefix (8 hex digits, 32 bits: it catches truncated, damaged and wrong files, it is no
defence against a forged one). The full SHA-256 of the file actually loaded goes into the
provenance record.

The cache is torchvision's own, ``torch.hub.get_dir()/checkpoints/<file name>``
(``$TORCH_HOME/hub/checkpoints``; ``~/.cache/torch/hub/checkpoints`` by default), so weights
torchvision downloaded before are reused and vice versa. A cached file whose hash does not
match is reported (:class:`CorruptWeightsWarning`, naming the file) and fetched again. A
download streams into a temporary file in the cache directory, is verified, and only then is
renamed into place: an interrupted or corrupt download never leaves a file that looks cached.

Environment:

- ``INSTSEG_OFFLINE=1``: never touch the network. A file already cached and verified is
  still used; anything else raises :class:`WeightsUnavailableError`.
- ``INSTSEG_INIT_FALLBACK=standin`` (:data:`FALLBACK_ENV`): when the weights cannot be had,
  :func:`instseg_lib.pretrain.initialise_backbone` uses the twin's stand-in pretraining
  instead of stopping, and its provenance record says why; a model built directly with
  ``pretrained=True`` keeps its random initialisation (with one warning), as it has no
  stand-in to turn to. Without it, a width-64 run whose weights cannot be had stops with
  :class:`WeightsUnavailableError` (URL, cache path and both ways out in its message).
- ``TORCH_HOME``: moves the cache, as for torchvision.

Only width 64 looks here; narrower backbones (the smoke and cpu profiles) never do.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch

#: The environment variable that asks for the stand-in when ImageNet weights cannot be had.
FALLBACK_ENV = "INSTSEG_INIT_FALLBACK"
#: Its one accepted value (``stand-in`` is read the same way).
FALLBACK_STANDIN = "standin"
#: The environment variable that forbids any network access.
OFFLINE_ENV = "INSTSEG_OFFLINE"


@dataclass(frozen=True)
class WeightsEntry:
    """Where one architecture's ImageNet weights come from and what they hash to."""

    arch: str
    #: torchvision's name of the weights (``ResNet50_Weights.IMAGENET1K_V1``).
    torchvision: str
    url: str
    #: Leading hex digits of the file's SHA-256, as published in torchvision's file name.
    sha256_prefix: str

    @property
    def filename(self) -> str:
        """The file name in the cache (torch.hub's: the URL's last component)."""
        return self.url.rsplit("/", 1)[-1]


#: The registry: torchvision 0.29's ``IMAGENET1K_V1`` weights of every backbone of the book.
IMAGENET_WEIGHTS: dict[str, WeightsEntry] = {e.arch: e for e in (
    WeightsEntry("resnet50", "ResNet50_Weights.IMAGENET1K_V1",
                 "https://download.pytorch.org/models/resnet50-0676ba61.pth", "0676ba61"),
    WeightsEntry("resnet101", "ResNet101_Weights.IMAGENET1K_V1",
                 "https://download.pytorch.org/models/resnet101-63fe2227.pth", "63fe2227"),
    WeightsEntry("resnet152", "ResNet152_Weights.IMAGENET1K_V1",
                 "https://download.pytorch.org/models/resnet152-394f9c45.pth", "394f9c45"),
    WeightsEntry("vgg16", "VGG16_Weights.IMAGENET1K_V1",
                 "https://download.pytorch.org/models/vgg16-397923af.pth", "397923af"),
    # VGGTrunk(batch_norm=True) is torchvision's vgg16_bn layout (not DeepLab's net).
    WeightsEntry("vgg16_bn", "VGG16_BN_Weights.IMAGENET1K_V1",
                 "https://download.pytorch.org/models/vgg16_bn-6c64b313.pth", "6c64b313"),
    WeightsEntry("alexnet", "AlexNet_Weights.IMAGENET1K_V1",
                 "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "7be5be79"),
)}


class CorruptWeightsWarning(UserWarning):
    """A cached weights file failed its hash check; it is fetched again."""


class WeightsUnavailableError(RuntimeError):
    """ImageNet weights that could not be had; the message says how to get them or go without."""

    def __init__(self, entry: WeightsEntry, path: Path, cause: str) -> None:
        self.entry, self.url, self.path, self.cause = entry, entry.url, Path(path), cause
        super().__init__(
            f"ImageNet weights for {entry.arch} ({entry.torchvision}) could not be had: {cause}.\n"
            f"  URL:        {entry.url}\n"
            f"  cache path: {self.path}\n"
            f"To place the file by hand, download the URL on a machine with network access and copy it to the "
            f"cache path (its sha256 must start with {entry.sha256_prefix}; TORCH_HOME moves the cache). "
            f"To run from the twin's stand-in pretraining instead of ImageNet, set "
            f"{FALLBACK_ENV}={FALLBACK_STANDIN}."
        )


@dataclass(frozen=True)
class VerifiedWeights:
    """A cached weights file whose hash matched its registry entry."""

    entry: WeightsEntry
    path: Path
    #: The full SHA-256 of the file (its first digits are the published prefix).
    sha256: str

    def record(self) -> dict[str, str]:
        """What provenance records of the file: its URL and hash."""
        return {"url": self.entry.url, "sha256": self.sha256}


# Network failures of this process, per arch: later models do not wait for the timeout again
# (a file placed in the cache by hand is still picked up, the cache is looked at first).
_FAILED: dict[str, str] = {}
# Hashes already computed, by (path, size, mtime): a 500 MB file is hashed once per process.
_HASHED: dict[tuple[str, int, int], str] = {}


def entry(arch: str) -> WeightsEntry:
    """The registry entry of ``arch`` (a :data:`IMAGENET_WEIGHTS` key)."""
    try:
        return IMAGENET_WEIGHTS[arch]
    except KeyError:
        raise KeyError(f"no ImageNet weights registered for {arch!r}; known: {', '.join(IMAGENET_WEIGHTS)}") from None


def cache_dir() -> Path:
    """torchvision's weight cache: ``torch.hub.get_dir()/checkpoints`` (follows ``$TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def cache_path(arch: str) -> Path:
    """Where the weights of ``arch`` are cached (the same file torchvision would use)."""
    return cache_dir() / entry(arch).filename


def offline() -> bool:
    """``$INSTSEG_OFFLINE`` set (any value but empty, ``0``, ``false`` or ``no``)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in {"", "0", "false", "no"}


def fallback_requested() -> bool:
    """Whether ``$INSTSEG_INIT_FALLBACK`` asks for the stand-in when ImageNet weights cannot be had.

    An unknown value raises ``ValueError`` rather than being read as yes or no.
    """
    value = os.environ.get(FALLBACK_ENV, "").strip().lower()
    if not value:
        return False
    if value in {FALLBACK_STANDIN, "stand-in"}:
        return True
    raise ValueError(f"{FALLBACK_ENV}={value!r} is not understood: set it to {FALLBACK_STANDIN!r} (use the "
                     f"stand-in pretraining when ImageNet weights cannot be had) or leave it unset (stop instead)")


def sha256_of(path: Path | str) -> str:
    """The hex SHA-256 of a file, read in 1 MiB chunks (memoised by path, size and mtime)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHED:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _HASHED[key] = h.hexdigest()
    return _HASHED[key]


def _download(url: str, out: BinaryIO, timeout_s: float) -> None:
    """Stream ``url`` into ``out``: the one place that touches the network.

    ``timeout_s`` bounds each socket operation, so an offline machine fails fast, never hangs.
    """
    req = urllib.request.Request(url, headers={"User-Agent": "instseg_lib"})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:
        shutil.copyfileobj(resp, out, 1 << 20)


def _download_verified(e: WeightsEntry, path: Path, timeout_s: float) -> str:
    """Download ``e`` to a temporary file next to ``path``, verify it, rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            _download(e.url, fh, timeout_s)
            fh.flush()
            os.fsync(fh.fileno())
        digest = sha256_of(tmp)  # the bytes on disk, the ones that will be loaded
        if not digest.startswith(e.sha256_prefix):
            raise ValueError(f"the downloaded file's sha256 is {digest}, expected one starting with "
                             f"{e.sha256_prefix}")
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a shared cache must stay readable
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest


def fetch(arch: str, timeout_s: float = 10.0) -> VerifiedWeights:
    """The verified cached file of ``arch``'s ImageNet weights, downloaded first if need be.

    A cached file that fails its hash check is reported (:class:`CorruptWeightsWarning`) and
    fetched again. With ``$INSTSEG_OFFLINE`` the network is never tried. Anything that keeps
    the weights out of reach raises :class:`WeightsUnavailableError`; a network failure is not
    retried in this process.
    """
    e, path = entry(arch), cache_path(arch)
    corrupt = False
    if path.is_file():
        digest = sha256_of(path)
        if digest.startswith(e.sha256_prefix):
            return VerifiedWeights(e, path, digest)
        corrupt = True
        warnings.warn(f"cached ImageNet weights {path} fail their hash check (sha256 {digest}, expected one "
                      f"starting with {e.sha256_prefix}): fetching them again", CorruptWeightsWarning, stacklevel=2)
    state = "the cached file fails its hash check" if corrupt else "the file is not in the cache"
    if offline():
        raise WeightsUnavailableError(e, path, f"{OFFLINE_ENV} is set (no network) and {state}")
    if arch in _FAILED:
        raise WeightsUnavailableError(e, path, f"{_FAILED[arch]} (earlier in this process; not retried)")
    try:
        digest = _download_verified(e, path, timeout_s)
    except Exception as err:  # noqa: BLE001 - offline, refused, truncated, wrong file: all mean "not had"
        _FAILED[arch] = f"{state} and the download failed ({type(err).__name__}: {err})"
        raise WeightsUnavailableError(e, path, _FAILED[arch]) from err
    return VerifiedWeights(e, path, digest)


def load_imagenet_state(arch: str, timeout_s: float = 10.0) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """torchvision's ImageNet state dict of ``arch`` and its provenance (``url``, ``sha256``).

    Loaded with ``weights_only=True`` (tensors only, as every checkpoint of the project).
    Raises :class:`WeightsUnavailableError` when the file cannot be had or read.
    """
    w = fetch(arch, timeout_s)
    try:
        state = torch.load(w.path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - a verified file that does not load is still "not had"
        raise WeightsUnavailableError(w.entry, w.path, f"the cached file passed its hash check but does not "
                                      f"load ({type(err).__name__}: {str(err)[:200]})") from err
    return state, w.record()
