"""Low-level reading and writing of the on-disk formats (JPEG/PNG, ``.mat``, VOC XML).

Readers go through these functions so that a damaged file always raises a
:class:`~instseg_lib.data.errors.DataError` naming the file, never a bare PIL/scipy trace.
Writers are deterministic to the byte (fixed JPEG quality, no PNG timestamps, a fixed
``.mat`` header), which the generator's fingerprint relies on.
"""

from __future__ import annotations

import io
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .errors import LabelRangeError, MissingSplitError, SizeMismatchError, corrupt

JPEG_QUALITY = 90


# ----------------------------------------------------------------------------- reading
def _open(path: Path) -> Image.Image:
    """``Image.open`` trying the format its suffix names first (skips probing every plugin)."""
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}.get(Path(path).suffix.lower())
    if fmt:
        try:
            return Image.open(path, formats=[fmt])
        except Image.UnidentifiedImageError:
            pass
    return Image.open(path)


def _fast_decode(path: Path | str, rgb: bool):
    """Decode a JPEG/PNG with ``torchvision.io`` (libjpeg-turbo/libpng, no PIL plugin probing):
    2-3x less overhead per small image than PIL. Returns a CHW uint8 tensor, or ``None`` when
    the file is of another kind. A damaged file raises :class:`CorruptFileError`."""
    suffix = str(path)[-4:].lower()
    if suffix not in (".jpg", "jpeg", ".png"):
        return None
    try:
        import torch
        from torchvision.io import ImageReadMode, decode_jpeg, decode_png
    except ImportError:  # a torchvision without image decoders: PIL does it
        return None
    with open(path, "rb") as f:  # FileNotFoundError propagates unchanged
        data = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8)
    mode = ImageReadMode.RGB if rgb else ImageReadMode.UNCHANGED
    try:
        # torchvision 0.29 deprecates its decoders (for TorchCodec) with a warning on every
        # call: silence exactly that one. A torchvision without them falls back to PIL above.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision",
                                    category=DeprecationWarning)
            if suffix == ".png":
                return decode_png(data, mode)
            return decode_jpeg(data, mode=mode)
    except RuntimeError as err:
        raise corrupt(path, "image" if rgb else "label PNG", str(err).splitlines()[-1][:200]) from err


def read_rgb(path: Path) -> np.ndarray:
    """Decode an image file to ``(H, W, 3)`` uint8 RGB."""
    t = _fast_decode(path, rgb=True)
    if t is not None:
        return t.permute(1, 2, 0).contiguous().numpy()
    try:
        with _open(path) as im:
            im.load()
            return np.array(im if im.mode == "RGB" else im.convert("RGB"))
    except FileNotFoundError:
        raise
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError ... on bad bytes
        raise corrupt(path, "image", err) from err


def read_label_png(path: Path, palette: np.ndarray | None = None) -> np.ndarray:
    """Decode a label PNG to ``(H, W)`` uint8 indices.

    Palette (``P``) and grey (``L``) PNGs give their indices. An RGB PNG (a label map
    re-saved by an image editor) is mapped back through ``palette`` when one is given.
    """
    t = _fast_decode(path, rgb=False)
    if t is not None and t.shape[0] == 1 and t.dtype == __import__("torch").uint8:
        return t[0].numpy()
    try:
        with _open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("P", "L"):
                return np.array(im)
            if mode in ("RGB", "RGBA") and palette is not None:
                return _unpalette(path, np.asarray(im.convert("RGB")), palette)
            if mode in ("I", "I;16"):
                arr = np.asarray(im)
                if arr.max(initial=0) > 255:
                    raise LabelRangeError(f"{path}: 16-bit label values above 255; expected an 8-bit label PNG")
                return arr.astype(np.uint8)
    except FileNotFoundError:
        raise
    except LabelRangeError:
        raise
    except Exception as err:
        raise corrupt(path, "label PNG", err) from err
    raise corrupt(path, "label PNG", f"unsupported PNG mode {mode!r}; expected a palette (P) or grey (L) PNG")


def _unpalette(path: Path, rgb: np.ndarray, palette: np.ndarray) -> np.ndarray:
    code = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    pal = (palette[:, 0].astype(np.int32) << 16) | (palette[:, 1].astype(np.int32) << 8) | palette[:, 2]
    # First palette index wins for duplicate colours (the VOC map has none below 256).
    order = np.argsort(pal, kind="stable")
    pos = np.searchsorted(pal[order], code)
    pos = np.clip(pos, 0, len(pal) - 1)
    found = pal[order][pos] == code
    if not found.all():
        bad = np.unique(rgb.reshape(-1, 3)[~found.ravel()], axis=0)[:5].tolist()
        raise LabelRangeError(f"{path}: RGB label PNG has colours outside the palette, e.g. {bad}; "
                              f"re-save it as a palette PNG with the dataset's colour map")
    return order[pos].astype(np.uint8)


def read_png16(path: Path) -> np.ndarray:
    """Decode a 16-bit PNG (Cityscapes ``instanceIds``) to ``(H, W)`` int32."""
    try:
        with _open(path) as im:
            im.load()
            if im.mode not in ("I;16", "I;16B", "I", "L"):
                raise ValueError(f"PNG mode {im.mode!r}, expected a 16-bit grey PNG")
            return np.asarray(im).astype(np.int32)
    except FileNotFoundError:
        raise
    except Exception as err:
        raise corrupt(path, "16-bit PNG", err) from err


def load_mat_struct(path: Path, key: str) -> np.void:
    """The MATLAB struct ``key`` of a ``.mat`` file (SBD ``GTcls``/``GTinst``)."""
    from scipy import io as sio

    try:
        mat = sio.loadmat(str(path))
    except FileNotFoundError:
        raise
    except Exception as err:
        raise corrupt(path, ".mat file", err) from err
    if key not in mat:
        found = [k for k in mat if not k.startswith("__")]
        raise corrupt(path, ".mat file", f"no variable {key!r} (found {found})")
    return mat[key][0, 0]


def check_same_size(image_path: Path, image_hw: tuple[int, int], label_path: Path, label_hw: tuple[int, ...]) -> None:
    if tuple(label_hw[:2]) != tuple(image_hw[:2]):
        raise SizeMismatchError(
            f"{label_path}: label map is {label_hw[1]}x{label_hw[0]} (WxH) but its image "
            f"{image_path} is {image_hw[1]}x{image_hw[0]}; the pair does not belong together: "
            f"re-extract the dataset or regenerate the synthetic twin"
        )


def check_label_range(path: Path, labels: np.ndarray, num_classes: int, void: int | None = 255) -> None:
    bad = labels >= num_classes
    if void is not None:
        bad &= labels != void
    if bad.any():
        vals = np.unique(labels[bad])[:8].tolist()
        allowed = f"0..{num_classes - 1}" + (f" and {void}" if void is not None else "")
        raise LabelRangeError(f"{path}: label values {vals} outside {allowed}; the file is not a "
                              f"label map of this dataset (wrong folder or damaged)")


def read_split(path: Path, fix: str = "") -> list[str]:
    """Image ids of a split file, one per line (blank lines and extra columns ignored)."""
    if not path.is_file():
        others = sorted(p.name for p in path.parent.glob("*.txt")) if path.parent.is_dir() else []
        hint = f" (this folder has: {', '.join(others[:8])})" if others else ""
        raise MissingSplitError(f"split file {path} is missing{hint}. {fix}".strip())
    ids = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts:
            ids.append(parts[0])
    return ids


def read_voc_xml(path: Path) -> dict[str, Any]:
    """Parse a VOC ``Annotations/*.xml``: size and objects with 0-based incl-excl boxes."""
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise
    except Exception as err:
        raise corrupt(path, "VOC XML annotation", err) from err
    try:
        size = root.find("size")
        w, h = int(size.findtext("width")), int(size.findtext("height"))
        objects = []
        for obj in root.iter("object"):
            bb = obj.find("bndbox")
            # VOC boxes are 1-based and inclusive: pixel columns xmin..xmax.
            x0, y0 = float(bb.findtext("xmin")) - 1, float(bb.findtext("ymin")) - 1
            x1, y1 = float(bb.findtext("xmax")), float(bb.findtext("ymax"))
            objects.append({
                "name": obj.findtext("name").strip(),
                "box": (x0, y0, x1, y1),
                "difficult": int(obj.findtext("difficult") or 0),
                "truncated": int(obj.findtext("truncated") or 0),
            })
    except (AttributeError, TypeError, ValueError) as err:
        raise corrupt(path, "VOC XML annotation", f"missing or malformed field: {err}") from err
    return {"width": w, "height": h, "objects": objects}


# ----------------------------------------------------------------------------- writing
def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="JPEG", quality=quality, subsampling=2)
    return buf.getvalue()


def encode_png(arr: np.ndarray, palette: np.ndarray | None = None) -> bytes:
    """Encode uint8 (``L`` or palette ``P``), uint16 (``I;16``) or RGB uint8 arrays."""
    buf = io.BytesIO()
    if arr.dtype == np.uint16 or arr.ndim == 3:
        im = Image.fromarray(np.ascontiguousarray(arr))  # I;16 or RGB
    else:
        im = Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8))
        if palette is not None:
            im.putpalette(palette.astype(np.uint8).ravel().tolist())  # L -> P
    im.save(buf, format="PNG", compress_level=1)  # fast zlib level: same format, bigger files
    return buf.getvalue()


#: A fixed 116-byte MAT-file header text, so that ``.mat`` bytes do not depend on the clock.
_MAT_HEADER = b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Sun Jan  8 03:40:24 2012"


def encode_mat(variables: dict[str, Any]) -> bytes:
    """``scipy.io.savemat`` bytes with the creation-time header replaced by a fixed one."""
    from scipy import io as sio

    buf = io.BytesIO()
    sio.savemat(buf, variables, do_compression=True, oned_as="column")
    data = bytearray(buf.getvalue())
    data[:116] = _MAT_HEADER.ljust(116, b" ")
    return bytes(data)


def voc_xml(image_id: str, folder: str, width: int, height: int, objects: list[dict], segmented: bool) -> bytes:
    """A VOC ``Annotations/*.xml``; object boxes are given 0-based incl-excl and written 1-based inclusive."""
    ann = ET.Element("annotation")
    ET.SubElement(ann, "folder").text = folder
    ET.SubElement(ann, "filename").text = f"{image_id}.jpg"
    src = ET.SubElement(ann, "source")
    ET.SubElement(src, "database").text = "The VOC2007 Database" if folder == "VOC2007" else f"The {folder} Database"
    ET.SubElement(src, "annotation").text = f"PASCAL {folder} (instseg synthetic twin)"
    ET.SubElement(src, "image").text = "synthetic"
    size = ET.SubElement(ann, "size")
    ET.SubElement(size, "width").text = str(width)
    ET.SubElement(size, "height").text = str(height)
    ET.SubElement(size, "depth").text = "3"
    ET.SubElement(ann, "segmented").text = "1" if segmented else "0"
    for obj in objects:
        o = ET.SubElement(ann, "object")
        ET.SubElement(o, "name").text = obj["name"]
        ET.SubElement(o, "pose").text = obj.get("pose", "Unspecified")
        ET.SubElement(o, "truncated").text = str(int(obj.get("truncated", 0)))
        ET.SubElement(o, "occluded").text = str(int(obj.get("occluded", 0)))
        ET.SubElement(o, "difficult").text = str(int(obj.get("difficult", 0)))
        bb = ET.SubElement(o, "bndbox")
        x0, y0, x1, y1 = obj["box"]
        ET.SubElement(bb, "xmin").text = str(int(x0) + 1)
        ET.SubElement(bb, "ymin").text = str(int(y0) + 1)
        ET.SubElement(bb, "xmax").text = str(int(x1))
        ET.SubElement(bb, "ymax").text = str(int(y1))
    ET.indent(ann, space="\t")
    return ET.tostring(ann, encoding="utf-8") + b"\n"
