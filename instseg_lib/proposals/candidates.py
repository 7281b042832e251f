"""Candidate segments stored as unions of superpixels.

BoxSup (Dai et al. 2015, §4.2) fixes the proposal masks "throughout the training procedure"
and only relabels them, so every image keeps a few hundred candidate masks for the whole
run. Stored densely that is ``N x H x W`` booleans per image; stored as unions of the cells
of one base partition it is a label map plus a sparse ``(N, R)`` incidence matrix. Every
quantity the objective needs then reduces to small matrix products over superpixels:

- areas and tight boxes (Eq. 2's "tight bounding box of the segment S") from per-cell
  areas and per-cell boxes;
- overlaps with ground-truth masks (proposal quality) from per-cell counts;
- per-pixel sums of log-probabilities over a segment (Eq. 3) from per-cell sums.

Proposal methods whose hierarchies live on different base partitions (Selective Search in
two colour spaces, SLIC at three scales) are joined by overlaying the partitions: the base
of the joint set is the common refinement, whose cells are the non-empty intersections.

Boxes are ``x0, y0, x1, y1`` in pixels, inclusive-exclusive, as :class:`instseg_lib.data.Sample`.
The order of the candidates is their rank (first = best): quality curves "against the
number of proposals" take prefixes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import sparse

#: Bump when the stored layout changes; older cache files are then recomputed.
FORMAT_VERSION = 1


def relabel_sequential(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(labels', old_ids)``: ids renumbered ``0..R-1`` in increasing order of the old ids."""
    old, inv = np.unique(np.asarray(labels).ravel(), return_inverse=True)
    return inv.reshape(labels.shape).astype(np.int32), old


def overlay(label_maps: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Common refinement of partitions: ``(base, cell_to_region)``.

    ``base`` numbers the non-empty intersections ``0..R-1``; ``cell_to_region[k][c]`` is
    the region of ``label_maps[k]`` that contains cell ``c``.
    """
    if not label_maps:
        raise ValueError("overlay needs at least one label map")
    shape = np.asarray(label_maps[0]).shape
    code = np.zeros(int(np.prod(shape)), dtype=np.int64)
    for lm in label_maps:
        lm = np.asarray(lm)
        if lm.shape != shape:
            raise ValueError(f"label maps differ in size: {lm.shape} vs {shape}")
        flat = lm.ravel().astype(np.int64)
        # renumber after every step so the mixed code never overflows int64
        _, code = np.unique(code * (int(flat.max(initial=0)) + 1) + flat, return_inverse=True)
    n_cells = int(code.max(initial=-1)) + 1
    first = np.full(n_cells, -1, dtype=np.int64)
    first[code[::-1]] = np.arange(code.size - 1, -1, -1)  # first pixel of every cell
    maps = [np.asarray(lm).ravel()[first].astype(np.int64) for lm in label_maps]
    return code.reshape(shape).astype(np.int32), maps


@dataclass
class Candidates:
    """Ranked candidate segments of one image, as unions of base cells ("superpixels").

    - ``superpixels``: ``(H, W)`` int32, cell ids ``0..R-1`` (every id present).
    - ``members``: ``(N, R)`` boolean CSR matrix; row ``i`` lists the cells of segment ``i``.
    - ``method``: the proposal method and its parameters, for provenance and cache keys.
    """

    superpixels: np.ndarray
    members: sparse.csr_matrix
    method: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.superpixels = np.asarray(self.superpixels, dtype=np.int32)
        self.members = sparse.csr_matrix(self.members, dtype=bool)
        r = int(self.superpixels.max(initial=-1)) + 1
        if self.members.shape[1] != r:
            raise ValueError(f"members has {self.members.shape[1]} columns but the base map has {r} cells")
        self._cache: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ sizes
    def __len__(self) -> int:
        return int(self.members.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.superpixels.shape[0]), int(self.superpixels.shape[1])

    @property
    def n_superpixels(self) -> int:
        return int(self.members.shape[1])

    def superpixel_areas(self) -> np.ndarray:
        """``(R,)`` int64 pixel count of every cell."""
        if "sp_area" not in self._cache:
            self._cache["sp_area"] = np.bincount(self.superpixels.ravel(), minlength=self.n_superpixels)
        return self._cache["sp_area"]

    def superpixel_boxes(self) -> np.ndarray:
        """``(R, 4)`` int64 tight boxes of the cells (inclusive-exclusive)."""
        if "sp_box" not in self._cache:
            # unbuffered min/max per cell: ~5x faster than ndimage.find_objects with ~1,000 cells
            h, w = self.shape
            r, flat = self.n_superpixels, self.superpixels.ravel()
            rows, cols = np.repeat(np.arange(h), w), np.tile(np.arange(w), h)
            box = np.empty((4, r), dtype=np.int64)
            box[0], box[1], box[2], box[3] = w, h, -1, -1
            np.minimum.at(box[0], flat, cols)
            np.minimum.at(box[1], flat, rows)
            np.maximum.at(box[2], flat, cols)
            np.maximum.at(box[3], flat, rows)
            box[2:] += 1
            self._cache["sp_box"] = np.ascontiguousarray(box.T)
        return self._cache["sp_box"]

    def areas(self) -> np.ndarray:
        """``(N,)`` int64 pixel count of every segment."""
        return np.asarray(self.members.astype(np.int64) @ self.superpixel_areas()).ravel()

    def boxes(self) -> np.ndarray:
        """``(N, 4)`` float32 tight boxes of the segments (the S of Eq. 2's IoU(B, S)).

        Computed once per object (a label update asks for them twice per image and round)."""
        if "boxes" not in self._cache:
            self._cache["boxes"] = self._boxes()
        return self._cache["boxes"].copy()

    def _boxes(self) -> np.ndarray:
        n = len(self)
        out = np.zeros((n, 4), dtype=np.float32)
        m = self.members
        nonempty = np.diff(m.indptr) > 0
        if not nonempty.any():
            return out
        sp = np.ascontiguousarray(self.superpixel_boxes().T)  # (4, R): contiguous gathers
        starts = m.indptr[:-1][nonempty]
        # min/max over each row's cells with one reduceat per coordinate
        for j, reduce in enumerate((np.minimum, np.minimum, np.maximum, np.maximum)):
            out[nonempty, j] = reduce.reduceat(sp[j][m.indices], starts)
        return out

    # ------------------------------------------------------------------ masks
    def mask(self, i: int) -> np.ndarray:
        """``(H, W)`` bool mask of segment ``i``."""
        lut = np.zeros(self.n_superpixels, dtype=bool)
        lut[self.members.indices[self.members.indptr[i]:self.members.indptr[i + 1]]] = True
        return lut[self.superpixels]

    def masks(self, idx: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """``(n, H, W)`` bool masks of segments ``idx`` (all when ``None``)."""
        idx = np.arange(len(self)) if idx is None else np.asarray(idx, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            return np.zeros((0, *self.shape), dtype=bool)
        dense = self.members[idx].toarray()  # (n, R)
        return dense[:, self.superpixels]

    # ------------------------------------------------------------------ selection
    def take(self, idx: Sequence[int] | np.ndarray) -> "Candidates":
        """The candidates ``idx`` in that order, on the same base."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        return Candidates(self.superpixels, self.members[idx], self.method, dict(self.meta))

    def top(self, n: int) -> "Candidates":
        """The ``n`` best-ranked candidates."""
        return self.take(np.arange(min(int(n), len(self))))

    def unique(self) -> "Candidates":
        """Drop repeated segments (same cells), keeping the best-ranked copy; drop empty rows."""
        m = self.members
        seen: set[bytes] = set()
        keep = []
        for i in range(len(self)):
            row = m.indices[m.indptr[i]:m.indptr[i + 1]]
            if row.size == 0:
                continue
            key = np.sort(row).astype(np.int32).tobytes()
            if key not in seen:
                seen.add(key)
                keep.append(i)
        return self.take(keep)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_partitions(cls, partitions: Sequence[tuple[np.ndarray, Sequence[np.ndarray]]],
                        order: np.ndarray | None = None, method: str = "",
                        meta: dict | None = None) -> "Candidates":
        """Join segments defined on several partitions into one set on their overlay.

        ``partitions[k] = (label_map_k, segments_k)``: each segment is an array of region ids
        of ``label_map_k``. ``order`` (optional) ranks the concatenated segments (indices
        into them, best first). Repeated segments are removed (first copy kept).
        """
        base, cell_maps = overlay([p[0] for p in partitions])
        r = int(base.max(initial=-1)) + 1
        blocks = []
        for (lm, segs), cell_to_region in zip(partitions, cell_maps):
            n_regions = int(np.asarray(lm).max(initial=0)) + 1
            # region -> cells incidence, then segment -> regions incidence
            region_cells = sparse.csr_matrix(
                (np.ones(r, dtype=bool), (cell_to_region, np.arange(r))), shape=(n_regions, r))
            rows = np.repeat(np.arange(len(segs)), [len(s) for s in segs])
            cols = np.concatenate([np.asarray(s, dtype=np.int64) for s in segs]) if segs else np.zeros(0, np.int64)
            seg_regions = sparse.csr_matrix((np.ones(cols.size, dtype=bool), (rows, cols)),
                                            shape=(len(segs), n_regions))
            blocks.append((seg_regions.astype(np.int32) @ region_cells.astype(np.int32)) > 0)
        members = sparse.vstack(blocks, format="csr") if blocks else sparse.csr_matrix((0, r), dtype=bool)
        members.sort_indices()
        out = cls(base, members, method, dict(meta or {}))
        if order is not None:
            out = out.take(order)
        return out.unique()

    @classmethod
    def from_masks(cls, masks: np.ndarray, method: str = "masks") -> "Candidates":
        """Candidates from dense ``(N, H, W)`` masks (the base is their overlay; tests, baselines)."""
        masks = np.asarray(masks, dtype=bool)
        if masks.ndim != 3:
            raise ValueError(f"masks must be (N, H, W), got shape {masks.shape}")
        n = masks.shape[0]
        if n == 0:
            return cls(np.zeros(masks.shape[1:], np.int32), sparse.csr_matrix((0, 1), dtype=bool), method)
        base, maps = overlay([m.astype(np.int32) for m in masks])
        members = np.stack([mp == 1 for mp in maps])  # (N, R)
        return cls(base, sparse.csr_matrix(members), method)

    @classmethod
    def pool(cls, sets: Sequence["Candidates"], method: str = "pool") -> "Candidates":
        """One set from several candidate sets of the same image, on the overlay of their bases.

        Ranks interleave (the first of every set, then the second of every set, ...), so a
        prefix takes about as many from each set; a segment that several sets share is kept
        once, at its best rank. Pooling never loses a segment, so every best-overlap measure
        of the pool (:mod:`.quality`, all proposals) is at least that of each set.
        """
        sets = list(sets)
        if not sets:
            raise ValueError("pool needs at least one candidate set")
        shape = sets[0].shape
        if any(c.shape != shape for c in sets):
            raise ValueError(f"candidate sets of different image sizes: {[c.shape for c in sets]}")
        parts = [(c.superpixels, np.split(c.members.indices, c.members.indptr[1:-1]) if len(c) else [])
                 for c in sets]
        rank = np.concatenate([np.arange(len(c)) * len(sets) + k for k, c in enumerate(sets)]).astype(np.float64)
        meta = {"pooled": [c.method for c in sets]}
        return cls.from_partitions(parts, order=np.argsort(rank, kind="stable"), method=method, meta=meta)

    # ------------------------------------------------------------------ storage
    def to_bytes(self) -> bytes:
        """The compressed ``.npz`` payload (see :func:`instseg_lib.proposals.cache`)."""
        buf = io.BytesIO()
        r = self.n_superpixels
        sp_dtype = np.uint16 if r <= np.iinfo(np.uint16).max else np.int32
        np.savez_compressed(
            buf, superpixels=self.superpixels.astype(sp_dtype), indptr=self.members.indptr.astype(np.int64),
            indices=self.members.indices.astype(np.int32), n_cells=np.int64(r),
            header=np.frombuffer(json.dumps({"format": FORMAT_VERSION, "method": self.method,
                                              "meta": self.meta}, default=str).encode(), dtype=np.uint8),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Candidates":
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            header = json.loads(bytes(z["header"]).decode())
            if header.get("format") != FORMAT_VERSION:
                raise ValueError(f"candidate file format {header.get('format')} != {FORMAT_VERSION}")
            indptr, indices, r = z["indptr"], z["indices"], int(z["n_cells"])
            members = sparse.csr_matrix((np.ones(indices.size, dtype=bool), indices, indptr),
                                        shape=(indptr.size - 1, r))
            return cls(z["superpixels"].astype(np.int32), members, header["method"], header.get("meta", {}))

    def save(self, path: str | Path) -> Path:
        """Write atomically (temporary file, then ``os.replace``)."""
        from ..experiments import atomic_write_bytes

        path = Path(path)
        atomic_write_bytes(path, self.to_bytes())
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Candidates":
        return cls.from_bytes(Path(path).read_bytes())
