"""Low-level reading and writing of the on-disk formats (JPEG/PNG, ``.mat``, VOC XML).

Readers go through these functions so that a damaged file always raises a
:class:`~instseg_lib.data.errors.DataError` naming the file, never a bare PIL/scipy trace.
Writers are deterministic to the byte (fixed JPEG quality, no PNG timestamps, a fixed
``.mat`` header), which the generator's fingerprint relies on.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .errors import CorruptFileError, LabelRangeError, MissingFileError, MissingSplitError, SizeMismatchError, corrupt

JPEG_QUALITY = 90


# ----------------------------------------------------------------------------- reading
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOR_TYPES = {0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"}


def _read_bytes(path: Path | str, what: str) -> bytes:
    """The whole file. An absent one raises :class:`MissingFileError` (a ``FileNotFoundError``),
    an empty one :class:`CorruptFileError`."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError as err:
        raise MissingFileError(f"{path}: no such {what}; the dataset is incomplete: re-extract it (or re-run "
                               f"its data_scripts command / the synthetic generator)") from err
    if not data:
        raise corrupt(path, what, "the file is empty (0 bytes)")
    return data


def _sniff(data: bytes) -> str:
    """What a file's first bytes say it is, for error messages."""
    kinds = ((_PNG_SIGNATURE, "a PNG file"), (b"\xff\xd8\xff", "a JPEG file"), (b"GIF8", "a GIF file"),
             (b"BM", "a BMP file"), (b"II*\x00", "a TIFF file"), (b"MM\x00*", "a TIFF file"),
             (b"MATLAB", "a MATLAB .mat file"), (b"\x89HDF", "an HDF5 (MATLAB v7.3) file"),
             (b"RIFF", "a RIFF/WebP file"), (b"<?xml", "an XML file"), (b"<", "an XML/HTML file"),
             (b"{", "a JSON/text file"), (b"[", "a JSON/text file"))
    for magic, kind in kinds:
        if data.startswith(magic):
            return f"it is {kind}"
    return f"it starts with the bytes {data[:8]!r}"


def png_header(path: Path | str, data: bytes, what: str = "PNG") -> tuple[int, int, int, int]:
    """Check a PNG's structure and every chunk's CRC; return ``(width, height, bit_depth, color_type)``.

    A PNG protects every chunk with a CRC-32, so checking them turns any flipped byte and any
    truncation into a :class:`CorruptFileError` instead of a silently different decode (a
    decoder that stops reading once it has its rows never looks at the rest).
    """
    if not data.startswith(_PNG_SIGNATURE):
        raise corrupt(path, what, f"not a PNG file: {_sniff(data)}")
    n = len(data)
    view = memoryview(data)
    pos, header, crc32, unpack = 8, None, zlib.crc32, struct.unpack_from
    while True:
        if pos + 12 > n:
            raise corrupt(path, what, f"truncated: the file ends at byte {n} before its IEND chunk")
        length, kind = unpack(">I4s", data, pos)
        end = pos + 12 + length
        if end > n:
            raise corrupt(path, what, f"truncated: chunk {kind!r} at byte {pos} needs {length} bytes "
                                      f"but the file ends at byte {n}")
        if crc32(view[pos + 4:end - 4]) != unpack(">I", data, end - 4)[0]:
            raise corrupt(path, what, f"chunk {kind!r} at byte {pos} fails its CRC check")
        if header is None:
            if kind != b"IHDR" or length != 13:
                raise corrupt(path, what, f"the first chunk is {kind!r}, not a 13-byte IHDR")
            header = unpack(">IIBB", data, pos + 8)
        if kind == b"IEND":
            return header
        pos = end


def jpeg_header(path: Path | str, data: bytes, what: str = "JPEG image") -> None:
    """Check a JPEG's marker segments from SOI to the start of scan (lengths, order, SOF first).

    libjpeg resynchronises over damage that PIL and the JPEG standard reject (a flipped byte
    after SOI is only a "Corrupt JPEG data" message on stderr), so the structure is checked
    here; damage inside the entropy-coded data decodes as the file says, as in every decoder.
    """
    n = len(data)
    pos, frame = 2, False
    while True:
        while pos < n and data[pos] == 0xFF and pos + 1 < n and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes
        if pos + 2 > n:
            raise corrupt(path, what, f"truncated: the file ends at byte {n} before its image data")
        if data[pos] != 0xFF:
            raise corrupt(path, what, f"byte {pos} should start a JPEG marker (0xFF), it is 0x{data[pos]:02X}")
        marker = data[pos + 1]
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # standalone markers
            pos += 2
            continue
        if marker in (0x00, 0xD8, 0xD9):
            raise corrupt(path, what, f"unexpected marker 0xFF{marker:02X} at byte {pos} before the image data")
        if pos + 4 > n:
            raise corrupt(path, what, f"truncated: the file ends at byte {n} inside a marker")
        length = (data[pos + 2] << 8) | data[pos + 3]
        if length < 2 or pos + 2 + length > n:
            raise corrupt(path, what, f"marker 0xFF{marker:02X} at byte {pos} has length {length}, "
                                      f"{'too short' if length < 2 else 'past the end of the file'}")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            frame = True
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            if not frame:
                raise corrupt(path, what, f"start of scan at byte {pos} before any frame header (SOF)")
            return
        pos += 2 + length


_DECODERS: tuple | None = None


def _torchvision_decoders():
    """``(torch, ImageReadMode, decode_jpeg, decode_png)``, imported once, or ``None``."""
    global _DECODERS
    if _DECODERS is None:
        try:
            import torch
            from torchvision.io import ImageReadMode, decode_jpeg, decode_png
        except ImportError:  # a torchvision without image decoders: PIL does it
            _DECODERS = ()
        else:
            _DECODERS = (torch, ImageReadMode, decode_jpeg, decode_png)
    return _DECODERS or None


def _tv_decode(path: Path | str, data: bytes, kind: str, rgb: bool, what: str):
    """Decode PNG/JPEG bytes with ``torchvision.io`` (libjpeg-turbo/libpng, no PIL plugin probing):
    2-3x less overhead per small image than PIL. Returns a CHW tensor, or ``None`` without
    torchvision's decoders. A damaged file raises :class:`CorruptFileError`."""
    dec = _torchvision_decoders()
    if dec is None:
        return None
    torch, ImageReadMode, decode_jpeg, decode_png = dec
    buf = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    mode = ImageReadMode.RGB if rgb else ImageReadMode.UNCHANGED
    try:
        # torchvision 0.29 deprecates its decoders (for TorchCodec) with a warning on every
        # call: silence exactly that one. A torchvision without them falls back to PIL above.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision",
                                    category=DeprecationWarning)
            if kind == "png":
                return decode_png(buf, mode)
            return decode_jpeg(buf, mode=mode)
    except RuntimeError as err:
        raise corrupt(path, what, str(err).splitlines()[-1][:200]) from err


def _pil_decode(path: Path | str, data: bytes, what: str) -> Image.Image:
    try:
        im = Image.open(io.BytesIO(data))
        im.load()
        return im
    except Image.UnidentifiedImageError as err:
        raise corrupt(path, what, f"not an image file PIL can read: {_sniff(data)}") from err
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError ... on bad bytes
        raise corrupt(path, what, err) from err


def read_rgb(path: Path | str) -> np.ndarray:
    """Decode an image file to ``(H, W, 3)`` uint8 RGB.

    The format is taken from the bytes, not the suffix: 8-bit PNGs (every chunk's CRC
    checked) and JPEGs go through ``torchvision.io``, anything else through PIL.
    """
    data = _read_bytes(path, "image")
    if data.startswith(_PNG_SIGNATURE):
        w, h, depth, _ = png_header(path, data, "image PNG")
        t = _tv_decode(path, data, "png", True, "image PNG") if depth == 8 else None
    elif data.startswith(b"\xff\xd8"):
        jpeg_header(path, data)
        t = _tv_decode(path, data, "jpeg", True, "JPEG image")
    else:
        t = None
    if t is not None and t.dtype == _torch_uint8():
        return t.permute(1, 2, 0).contiguous().numpy()
    im = _pil_decode(path, data, "image")
    return np.array(im if im.mode == "RGB" else im.convert("RGB"))


def _torch_uint8():
    dec = _torchvision_decoders()
    return dec[0].uint8 if dec else None


def read_label_png(path: Path | str, palette: np.ndarray | None = None) -> np.ndarray:
    """Decode a label PNG to ``(H, W)`` uint8 label values.

    Palette (``P``, any bit depth) PNGs give their indices; grey PNGs (``1``, ``L`` at 1, 2, 4
    or 8 bits, 16-bit ``I;16`` holding values up to 255) give their sample values. An RGB PNG
    (a label map re-saved by an image editor) is mapped back through ``palette`` when one is
    given. Anything else, a damaged file included, raises a :class:`DataError` naming the file.
    """
    data = _read_bytes(path, "label PNG")
    w, h, depth, color = png_header(path, data, "label PNG")
    if depth == 8 and color in (0, 3):  # the common case: one 8-bit sample per pixel
        t = _tv_decode(path, data, "png", False, "label PNG")
        if t is not None and t.shape == (1, h, w) and t.dtype == _torch_uint8():
            return t[0].numpy()
    kind = f"{depth}-bit {_PNG_COLOR_TYPES.get(color, f'colour type {color}')}"
    if color == 4 or (color in (2, 6) and (palette is None or depth != 8)):
        hint = ("re-save it as a palette PNG with the dataset's colour map" if color in (2, 6)
                else "re-save it without the alpha channel (mode L or P)")
        raise LabelRangeError(f"{path}: a {kind} PNG is not a label map of this dataset; {hint}")
    im = _pil_decode(path, data, "label PNG")
    if color in (2, 6):
        return _unpalette(path, np.asarray(im.convert("RGB")), palette)
    arr = np.asarray(im)
    if color == 0 and depth in (2, 4):
        arr = arr // (255 // (2 ** depth - 1))  # PIL scales 2/4-bit grey to 0..255; labels are the raw values
    if arr.shape != (h, w):
        raise corrupt(path, "label PNG", f"decoded to shape {arr.shape}, expected {h}x{w} (HxW)")
    if depth == 16:
        if arr.max(initial=0) > 255:
            raise LabelRangeError(f"{path}: 16-bit label values above 255 (max {int(arr.max())}); expected an "
                                  f"8-bit label PNG (is this an instanceIds file in a labels folder?)")
        return arr.astype(np.uint8)
    return arr.astype(np.uint8, copy=False)


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


def read_png16(path: Path | str, what: str = "16-bit PNG", fix: str = "") -> np.ndarray:
    """Decode a 16-bit grey PNG (Cityscapes ``instanceIds``) to ``(H, W)`` int32.

    Any other kind of PNG raises :class:`CorruptFileError`: an 8-bit file cannot hold the
    values (ids ``>= 1000``) such a file exists for, so reading it would lose them silently.
    """
    data = _read_bytes(path, what)
    w, h, depth, color = png_header(path, data, what)
    if depth != 16 or color != 0:
        kind = f"{depth}-bit {_PNG_COLOR_TYPES.get(color, f'colour type {color}')}"
        raise CorruptFileError(f"{path}: this {what} is a {kind} PNG, expected a 16-bit grey PNG; an 8-bit "
                               f"file cannot hold its values (it was probably re-saved by an image tool). "
                               f"{fix or 'Re-extract the original file.'}")
    arr = np.asarray(_pil_decode(path, data, what))
    if arr.shape != (h, w):
        raise corrupt(path, what, f"decoded to shape {arr.shape}, expected {h}x{w} (HxW)")
    return arr.astype(np.int32)


#: MAT-file v5 data type of a zlib-compressed element (MATLAB "MAT-File Format", Table 1-1).
_MI_COMPRESSED = 15


def _check_mat_v5(path: Path, data: bytes) -> None:
    """Refuse a v5 ``.mat`` file whose element tags overrun the file or whose compressed
    elements fail zlib's checksum, before scipy parses it.

    scipy reads ``miCOMPRESSED`` elements through a lazy zlib stream and parses the inflated
    bytes before the stream's Adler-32 is checked, so a flipped byte near the end of a
    compressed element can crash the interpreter inside scipy's C reader (measured:
    scipy 1.17.1, a segmentation fault on 2 of 3,800 single-byte flips of a twin SBD file).
    Inflating each compressed element in full first verifies its checksum. Files that are not
    v5 (v4 has no text header) are left to scipy.
    """
    if len(data) < 128 or not data.startswith(b"MATLAB 5.0"):
        return
    order = {b"IM": "<", b"MI": ">"}.get(data[126:128])
    if order is None:
        raise corrupt(path, ".mat file", f"bad endian indicator {data[126:128]!r} in the v5 header")
    pos = 128
    while pos < len(data):
        if pos + 8 > len(data):
            raise corrupt(path, ".mat file", f"truncated element tag at byte {pos}")
        dtype, nbytes = struct.unpack(order + "II", data[pos:pos + 8])
        if dtype >> 16:  # small data element: type and size share the first 4 bytes, 8 bytes in all
            pos += 8
            continue
        end = pos + 8 + nbytes
        if end > len(data):
            raise corrupt(path, ".mat file", f"element at byte {pos} claims {nbytes} bytes, "
                                             f"past the end of the file ({len(data)} bytes)")
        if dtype == _MI_COMPRESSED:
            try:
                zlib.decompress(data[pos + 8:end])
            except zlib.error as err:
                raise corrupt(path, ".mat file", f"compressed element at byte {pos}: {err}") from err
            pos = end
        else:
            pos = end + (-nbytes % 8)  # uncompressed elements are padded to 8 bytes


def load_mat_struct(path: Path, key: str) -> np.void:
    """The MATLAB struct ``key`` of a ``.mat`` file (SBD ``GTcls``/``GTinst``)."""
    from scipy import io as sio

    data = _read_bytes(path, ".mat file")
    _check_mat_v5(path, data)
    try:
        mat = sio.loadmat(io.BytesIO(data))
    except Exception as err:
        raise corrupt(path, ".mat file", f"{type(err).__name__}: {err}" if str(err) else type(err).__name__) from err
    if key not in mat:
        found = [k for k in mat if not k.startswith("__")]
        raise corrupt(path, ".mat file", f"no variable {key!r} (found {found})")
    try:
        struct_ = mat[key][0, 0]
    except (IndexError, TypeError, ValueError) as err:
        raise corrupt(path, ".mat file", f"variable {key!r} is not a MATLAB struct ({err})") from err
    if not isinstance(struct_, np.void) or struct_.dtype.names is None:
        raise corrupt(path, ".mat file", f"variable {key!r} is not a MATLAB struct")
    return struct_


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
    data = _read_bytes(path, "VOC XML annotation")
    try:
        root = ET.fromstring(data)
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


# ----------------------------------------------------------------------------- COCO RLE
def coco_rle_counts(counts: str | bytes) -> np.ndarray:
    """The run lengths (int64) of a compressed COCO RLE ``counts`` string.

    pycocotools' encoding: characters from ``'0'`` carry 5 bits of a value each, least
    significant first, with ``0x20`` meaning "more characters follow" and ``0x10`` in the last
    one the sign; runs after the second are stored as differences to the run two before.
    Raises ``ValueError`` on a character outside the alphabet, a cut-off value or a value too
    long to be a run. pycocotools' C decoder checks none of this, nor that the runs add up to
    the mask size, and writes past its buffer when they do not: validate first
    (:func:`check_coco_rle`). Vectorised with numpy (tens of microseconds per mask).
    """
    s = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
    c = np.frombuffer(s, np.uint8).astype(np.int64) - 48
    if len(c) == 0:
        return np.zeros(0, np.int64)
    if ((c < 0) | (c >= 64)).any():
        p = int(np.flatnonzero((c < 0) | (c >= 64))[0])
        raise ValueError(f"character {chr(s[p])!r} at position {p} is not an RLE character")
    last = (c & 0x20) == 0  # the last character of each value
    if not last[-1]:
        raise ValueError("the last run length is cut off")
    ends = np.flatnonzero(last)
    starts = np.concatenate([[0], ends[:-1] + 1])
    value_of = np.repeat(np.arange(len(ends)), ends - starts + 1)
    k = np.arange(len(c)) - starts[value_of]  # position of each character in its value
    if k.max() > 7:  # 40 bits: far more than any mask's pixel count, and exact in float64 below
        raise ValueError("a run length of more than 8 characters")
    x = np.bincount(value_of, weights=(c & 0x1F) << (5 * k), minlength=len(ends)).astype(np.int64)
    neg = (c[ends] & 0x10) != 0
    x[neg] -= np.left_shift(np.int64(1), 5 * (k[ends][neg] + 1))
    # x[m] += x[m - 2] for m > 2: running sums over the odd and the even positions from 3 and 4 on
    for first in (3, 4):
        if len(x) > first:
            x[first::2] = x[first - 2] + np.cumsum(x[first::2])
    return x


def check_coco_rle(segmentation: dict, height: int, width: int) -> None:
    """Raise ``ValueError`` unless ``segmentation`` is a well-formed RLE of a ``height x width`` mask."""
    size = segmentation.get("size")
    if not isinstance(size, (list, tuple)) or len(size) != 2 or [int(v) for v in size] != [height, width]:
        raise ValueError(f"RLE size {size!r} is not the image size [{height}, {width}]")
    counts = segmentation.get("counts")
    if isinstance(counts, list):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in counts):
            raise ValueError("uncompressed RLE counts must be integers")
        runs = np.asarray(counts, dtype=object if any(abs(v) >= 2**62 for v in counts) else np.int64)
    elif isinstance(counts, (str, bytes)):
        runs = coco_rle_counts(counts)
    else:
        raise ValueError(f"RLE counts must be a string or a list, got {type(counts).__name__}")
    if (runs < 0).any():
        raise ValueError("RLE has negative run lengths")
    if int(runs.sum()) != height * width:
        raise ValueError(f"RLE runs add up to {int(runs.sum())} pixels, not {height} x {width} = {height * width}")
