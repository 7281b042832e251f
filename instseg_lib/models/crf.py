"""The book's one dense CRF: mean-field inference as a differentiable layer ("CRF as RNN").

Reused by Arnab & Torr 2017 (§3.1 semantic CRF, §3.2.4 pairwise term of the dynamic
instance CRF), PFN (test-time CRF on the category maps, Liang et al. 2015 use
DeepLab-CRF) and BoxSup (CRF post-processing, Dai et al. 2015 §3 after [Chen et al.]).

Model (Krähenbühl & Koltun 2011, Eq. 1-3). Labels ``l`` per pixel ``i``, energy
``E(x) = sum_i U_i(x_i) + sum_{i<j} mu(x_i, x_j) sum_k w_k k_k(f_i, f_j)`` with

- unary ``U_i(l) = -log P_i(l)`` (negative log-probability of the unary classifier);
- bilateral (appearance) kernel ``k_1 = exp(-|p_i - p_j|^2 / 2 theta_alpha^2
  - |I_i - I_j|^2 / 2 theta_beta^2)``, i.e. a unit Gaussian on the features
  ``(x / theta_alpha, y / theta_alpha, r / theta_beta, g / theta_beta, b / theta_beta)``;
- spatial (smoothness) kernel ``k_2 = exp(-|p_i - p_j|^2 / 2 theta_gamma^2)``, a unit
  Gaussian on ``(x / theta_gamma, y / theta_gamma)``;
- label compatibility ``mu``: Potts ``mu(l, l') = [l != l']`` times one scalar (Arnab
  §3.2.4, §3.3: no class-specific weights, so any number of labels {0..D} per image), or
  a learnable ``L x L`` matrix initialised to Potts (Zheng et al. 2015, CRF-RNN §4).

Mean field (Krähenbühl & Koltun Alg. 1; Zheng et al. §4, one iteration = one RNN step),
``Q^0 = softmax(-U)`` and for ``t = 1..T``::

    Q^t = softmax(-U - mu (sum_k w_k Kn_k Q^{t-1}))

where ``Kn_k = D_k^{-1/2} K_k D_k^{-1/2}``, ``D_k = diag(K_k 1)``, is the symmetrically
normalised kernel matrix (pydensecrf's default ``NORMALIZE_SYMMETRIC``).

Conventions follow pydensecrf (``pydensecrf2`` 1.1, read from its C++ source) so the two
agree: features are divided by the widths as above; Potts with weight ``w`` there is
``exp(... + w Kn Q)``, here ``w_k = w`` with ``potts = 1``; the initial ``Q`` is
``softmax(-U)``. **Self term.** Krähenbühl & Koltun's Alg. 1 sums over ``j != i``, but
pydensecrf's code does not subtract the ``j = i`` term: its ``K`` (and ``D = K 1``)
includes the (lattice-approximated) self-weight. We follow the code by default
(``include_self=True``; measured on a 6x7 image: exact filter with the self term is
4e-2 from pydensecrf after one iteration, without it 0.55); ``include_self=False`` uses
``K - I`` (exactly the paper's ``j != i``).

**Algorithm choice (measured with ``benchmarks/bench_crf.py``: 320x480 VOC-twin image,
21 labels, one thread, median process CPU time on a shared 2-core machine).**

- *Bilateral kernel: permutohedral lattice* (Adams, Baek & Davis 2010) in tensor ops:
  13 ms per normalised filtering ``Kn Q`` plus 92 ms to build the lattice once per
  image. The exact ``N x N`` filter takes ~37 s per ``Kn Q`` (O(N^2), 2.4e10 kernel
  entries; timed on a 1/16-size crop and scaled by 256); a windowed exact filter needs
  a window of ~3 theta_alpha = 240 px, nearly the whole image, so it saves little; a
  downsampled one changes the result at object edges, where the CRF matters. So the
  lattice wins by three orders of magnitude at the accuracy that matters here
  (agreement with pydensecrf, below). Construction: each pixel's ``d+1`` enclosing
  simplex vertices and barycentric weights (elevation, rounding to the remainder-0
  point, rank sort); each integer vertex key becomes one int64 code, and one stable
  sort of the codes both hashes them and gives the splat matrix's layout; blur
  neighbours are found by ``searchsorted``, since a neighbour's code is the vertex's
  code plus a constant. Splat, the ``[1/2, 1, 1/2]`` blurs along the ``d+1``
  directions and slice are sparse CSR matrices, so a filtering is ``d+3`` sparse
  products (MKL / cuSPARSE); written instead with ``index_add_`` / ``index_select`` the
  same steps were 2.7x slower on CPU (development measurement, wall time, random-colour
  image: 283 vs 104 ms). It is the construction of Krähenbühl's ``permutohedral.cpp``,
  so it agrees with pydensecrf to float rounding (max ``|Q - Q_ref|`` ~1e-5 after 5
  iterations, labels 100 % equal on the benchmark image and on random colours).
- *Spatial kernel: permutohedral lattice too* (d = 2): 12 ms per ``Kn Q`` (build 54 ms,
  cached per image size, as it does not depend on the image: :func:`spatial_kernel`).
  The exact kernel is separable, ``K = G_y (x) G_x``, and is kept as ``"exact"`` (two
  dense matmuls, no truncation): 97 ms per ``Kn Q`` at theta_gamma = 3. pydensecrf
  also uses a lattice here, so the lattice is also the closer match (exact spatial:
  max ``|Q - Q_ref|`` 2e-2, labels still 100 % equal on the benchmark image).
- Against pydensecrf2 (C++/SSE, one thread) the whole CRF took 1.2-1.8x its CPU time
  at 320x480 over several contended runs (1.16x with the spatial kernel cached, 1.41x
  cold, in the least contended run): the sparse products run at MKL's ~2.7 GMAC/s per
  thread and the lattice is rebuilt in tensor ops. ``exact`` is for tests and tiny
  images (the hand-computed cases and gradcheck).

Gradients flow to the unary and to the kernel weights and compatibility (every filter
is linear in ``Q``); not to the image or the widths (the lattice is built from them
without gradient, as in CRF-RNN).

Twin images are ~128 px where the papers used ~500 px: position widths are in pixels, so
scale them with :func:`scale_position_widths` (the colour width is unchanged).
"""

from __future__ import annotations

import functools
import math
import numbers
import warnings
from typing import Literal

import torch
from torch import nn

#: pydensecrf's README example parameters (bilateral ``sxy=80, srgb=13, compat=10``,
#: Gaussian ``sxy=3, compat=3``); DeepLab-CRF and CRF-RNN use similar magnitudes.
DEFAULT_THETA_ALPHA = 80.0
DEFAULT_THETA_BETA = 13.0
DEFAULT_THETA_GAMMA = 3.0
DEFAULT_W_BILATERAL = 10.0
DEFAULT_W_SPATIAL = 3.0
#: Image size (longer side, px) the default position widths were set for (VOC ~500 px).
REFERENCE_SIZE = 500.0
#: pydensecrf's ``unary_from_softmax`` clips probabilities to this before the log.
PROB_CLIP = 1e-5

FilterKind = Literal["permutohedral", "exact"]
UnaryKind = Literal["logits", "probs", "energy"]


# ----------------------------------------------------------------------------- validation


def _check_positive(name: str, value: float) -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number (a kernel width in "
                         f"pixels or colour levels), got {value!r}")


def _check_iterations(iterations: int) -> None:
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be a positive int (mean-field steps), got {iterations!r}")


def scale_position_widths(
    theta_alpha: float = DEFAULT_THETA_ALPHA,
    theta_gamma: float = DEFAULT_THETA_GAMMA,
    image_size: float = 128.0,
    reference_size: float = REFERENCE_SIZE,
) -> tuple[float, float]:
    """Position widths ``(theta_alpha, theta_gamma)`` for images of ``image_size`` px.

    Widths in pixels were chosen for ``reference_size`` px images (VOC ~500 px); on a
    smaller image the same *relative* reach needs proportionally smaller widths. The
    colour width ``theta_beta`` is in intensity levels and does not scale. Below
    ~1 px, theta_gamma barely reaches the neighbouring pixels (the default 3 px scaled
    to 128 px is 0.77 px); clamp it if the smoothness term should still act.
    """
    _check_positive("image_size", image_size)
    _check_positive("reference_size", reference_size)
    s = image_size / reference_size
    return theta_alpha * s, theta_gamma * s


# ----------------------------------------------------------------------------- lattice


class PermutohedralLattice:
    """Gaussian filtering with a permutohedral lattice (Adams, Baek & Davis 2010).

    Built once from features ``(N, d)`` (already divided by the kernel widths); then
    :meth:`filter` computes ``out_i ~= sum_j exp(-|f_i - f_j|^2 / 2) v_j`` for values
    ``(N, C)`` in ``O(N d^2 C)``. Same construction as Krähenbühl's ``permutohedral.cpp``
    (elevation, rounding to the nearest remainder-0 point, rank sort, barycentric
    weights, blur order, the ``1 / (1 + 2^-d)`` scale), so results match pydensecrf's
    up to float rounding.

    Splat, the ``d + 1`` blurs and slice are sparse CSR matrices over the ``M`` lattice
    vertices, so each is one sparse matmul (MKL on CPU, cuSPARSE on GPU). :meth:`filter`
    is differentiable in the values: its transpose (the backward pass) is the same
    filter with the blur directions in reverse order (each blur matrix is symmetric,
    their product is not).
    """

    def __init__(self, features: torch.Tensor) -> None:
        if features.dim() != 2 or features.shape[0] < 1:
            raise ValueError(f"features must be (N, d) with N >= 1, got shape {tuple(features.shape)}")
        f = features.detach()
        if not f.is_floating_point():
            f = f.float()
        self.n, self.d = f.shape
        weights, rem0, rank = _simplex_vertices(f)
        vertex_codes, radix = _vertex_codes(rem0, rank)
        offsets, codes, splat_order = _hash_vertices(vertex_codes)
        self.m = codes.numel()
        self.alpha = 1.0 / (1.0 + 2.0 ** (-self.d))  # pydensecrf's (Adams') scale of the blur
        self.blurs = _blur_matrices(codes, self.d, radix, f.dtype)
        n, d, m = self.n, self.d, self.m
        itype = _index_dtype(n * (d + 1), max(n, m))
        # Slice: row i holds point i's d+1 vertices (columns sorted per row).
        cols, self._slice_order = offsets.sort(1)
        self._slice_cols = cols.reshape(-1).to(itype)
        self._slice_crow = torch.arange(0, n * (d + 1) + 1, d + 1, device=f.device, dtype=itype)
        # Splat: row v holds the points whose simplices have vertex v (sorted by point).
        self._splat_order = splat_order
        self._splat_cols = (splat_order // (d + 1)).to(itype)
        counts = torch.bincount(offsets.reshape(-1), minlength=m)
        self._splat_crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)]).to(itype)
        self._weights, self._offsets = weights, offsets
        self.splat = self.slice = None  # built on first use or by :meth:`rescale`

    def rescale(self, scale: torch.Tensor | None) -> None:
        """(Re)build splat and slice with a per-point ``scale`` (N,) folded in: ``diag(s) A diag(s)``.

        Used for the symmetric normalisation ``D^-1/2 K D^-1/2``. Its transpose is
        ``diag(s) A^T diag(s)``, so the backward pass stays the reverse-order filter.
        """
        w = self._weights if scale is None else self._weights * scale[:, None].to(self._weights.dtype)
        sl = (w.gather(1, self._slice_order) * self.alpha).reshape(-1)
        self.slice = _csr(self._slice_crow, self._slice_cols, sl, (self.n, self.m))
        sp = w.reshape(-1)[self._splat_order]
        self.splat = _csr(self._splat_crow, self._splat_cols, sp, (self.m, self.n))

    def ones_response(self) -> torch.Tensor:
        """``A 1`` (N,), the unnormalised degree, without building splat and slice."""
        w = self._weights
        x = torch.zeros(self.m, dtype=w.dtype, device=w.device)
        x = x.index_add_(0, self._offsets.reshape(-1), w.reshape(-1))[:, None]
        for b in self.blurs:
            x = b @ x
        return self.alpha * (w * x[self._offsets, 0]).sum(1)

    def filter(self, values: torch.Tensor) -> torch.Tensor:
        """``(N, C) -> (N, C)``: splat, blur along the ``d + 1`` directions, slice."""
        if values.shape[0] != self.n:
            raise ValueError(f"values have {values.shape[0]} rows, lattice has {self.n} points")
        return _LatticeFilter.apply(values, self)

    def _apply(self, values: torch.Tensor, reverse: bool) -> torch.Tensor:
        if self.splat is None:
            self.rescale(None)
        dt = self.splat.dtype
        x = self.splat @ values.to(dt)
        for b in (reversed(self.blurs) if reverse else self.blurs):
            x = b @ x
        return (self.slice @ x).to(values.dtype)


class _LatticeFilter(torch.autograd.Function):
    """``A v`` for the (symmetrically scaled) lattice operator; backward ``A^T g``.

    ``A = Slice B_d .. B_0 Splat`` with ``Slice = alpha Splat^T`` and symmetric blurs, so
    ``A^T = Slice B_0 .. B_d Splat``: the same filter with the blur order reversed.
    """

    @staticmethod
    def forward(ctx, values: torch.Tensor, lattice: PermutohedralLattice) -> torch.Tensor:
        ctx.lattice = lattice
        return lattice._apply(values, reverse=False)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return ctx.lattice._apply(grad, reverse=True), None


def _index_dtype(nnz: int, size: int) -> torch.dtype:
    """int32 CSR indices when they fit: MKL's sparse products take them without a
    conversion on every call (measured ~20 % faster per product on CPU)."""
    return torch.int32 if max(nnz, size) < 2**31 - 1 else torch.int64


def _csr(crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A CSR matrix, without torch's one-time "CSR support is in beta" warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        return torch.sparse_csr_tensor(crow, col, val, shape, check_invariants=False)


def _simplex_vertices(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per point: barycentric weights, remainder-0 point and rank, each ``(N, d+1)``.

    Adams et al. 2010 §3 (elevation onto the hyperplane ``sum = 0`` of ``Z^{d+1}``, p. 5;
    closest remainder-0 point and the permutation sorting the residual, p. 6; barycentric
    coordinates, p. 10). Vertex ``r`` of the enclosing simplex is
    ``rem0 + canonical_r[rank]`` (see :func:`_vertex_codes`).
    """
    n, d = f.shape
    dev, dt = f.device, f.dtype
    elevated = f @ _elevation_matrix(d, dev, dt)  # (N, d+1)

    rem0 = torch.round(elevated / (d + 1)) * (d + 1)  # nearest remainder-0 point
    total = torch.round(rem0.sum(1) / (d + 1)).long()
    # Rank = position in descending order of the residual; ties: the lower index first.
    order = torch.sort(elevated - rem0, dim=1, descending=True, stable=True).indices
    r = torch.arange(d + 1, device=dev)
    rank = torch.empty_like(order).scatter_(1, order, r.expand(n, -1))
    rank = rank + total[:, None]
    wrap = (rank < 0).long() - (rank > d).long()  # bring the point back onto the plane
    rank = rank + wrap * (d + 1)
    rem0 = rem0 + wrap.to(dt) * (d + 1)

    v = (elevated - rem0) / (d + 1)
    bary = f.new_zeros(n, d + 2)
    bary.scatter_add_(1, d - rank, v)
    bary.scatter_add_(1, d - rank + 1, -v)
    bary[:, 0] += 1.0 + bary[:, d + 1]
    return bary[:, : d + 1], rem0.long(), rank


@functools.lru_cache(maxsize=16)
def _elevation_matrix(d: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``(d, d+1)`` matrix ``E`` with ``f E`` = the point on the hyperplane (Adams et al. p. 5).

    Features are scaled by ``sqrt(2/3) (d+1) / sqrt((i+1)(i+2))`` so the lattice blur has
    unit standard deviation in feature space (p. 6); then coordinate 0 is the sum of the
    scaled features and coordinate ``j >= 1`` is ``sum_{k >= j} c_k - j c_{j-1}``.
    """
    i = torch.arange(d, dtype=torch.float64)
    scale = math.sqrt(2.0 / 3.0) * (d + 1) / torch.sqrt((i + 1) * (i + 2))
    e = torch.zeros(d, d + 1, dtype=torch.float64)
    e[:, 0] = 1.0
    for j in range(1, d + 1):
        e[j:, j] = 1.0
        e[j - 1, j] = -j
    return (e * scale[:, None]).to(device=device, dtype=dtype)


def _vertex_codes(rem0: torch.Tensor, rank: torch.Tensor) -> tuple[torch.Tensor, int]:
    """One int64 code per simplex vertex, ``(N, d+1)``, and the radix of its digits.

    Vertex ``r``'s key (first ``d`` coordinates; the last follows from ``sum = 0``) is
    ``rem0_i + r - (d+1) [rank_i > d - r]`` (Adams et al.'s canonical simplex). Its code
    has digits ``key_i - lo`` in base ``radix``, with a margin of ``2 (d+1)`` so that blur
    neighbours' digits stay in range too and a neighbour's code is the vertex's code
    plus a constant (:func:`_blur_matrices`). Computed without materialising the
    ``(N, d+1, d)`` keys: the ``[rank_i > d - r]`` term is a cumulative sum of the
    digits' powers taken in descending rank order.
    """
    n, d = rem0.shape[0], rem0.shape[1] - 1
    lo = int(rem0[:, :d].min()) - 2 * (d + 1)
    radix = int(rem0[:, :d].max()) + 2 * (d + 1) - lo + 1
    if d * math.log2(radix) >= 62:
        raise ValueError(
            f"lattice keys span {radix} values in {d} dimensions and do not fit int64 codes; "
            "the kernel widths are far too small for these features"
        )
    powers = radix ** torch.arange(d + 1, device=rem0.device, dtype=torch.long)
    powers[d] = 0  # the last coordinate is not part of the key
    base = ((rem0 - lo) * powers).sum(1)
    by_rank = torch.zeros_like(rank).scatter_(1, d - rank, powers.expand(n, -1))
    high = torch.cat([rank.new_zeros(n, 1), by_rank[:, :d].cumsum(1)], 1)  # (N, d+1)
    r = torch.arange(d + 1, device=rem0.device)
    return base[:, None] + r * powers.sum() - (d + 1) * high, radix


def _hash_vertices(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Distinct lattice vertices: ``(offsets (N, d+1), sorted codes (M,), order)``.

    One stable sort of the codes gives the vertices (sorted), each point's vertex index,
    and ``order``: the flat (point, remainder) entries grouped by vertex and by point
    within a vertex, the splat matrix's layout.
    """
    flat = codes.reshape(-1)
    sorted_codes, order = torch.sort(flat, stable=True)
    new = torch.ones_like(sorted_codes, dtype=torch.bool)
    new[1:] = sorted_codes[1:] != sorted_codes[:-1]
    offsets = torch.empty_like(flat).scatter_(0, order, new.cumsum(0) - 1)
    return offsets.view_as(codes), sorted_codes[new], order


def _blur_matrices(codes: torch.Tensor, d: int, radix: int, dtype: torch.dtype) -> list[torch.Tensor]:
    """The ``d+1`` blur matrices ``I + (P_j + P_j^T) / 2``, CSR ``(M, M)``.

    Along axis ``j`` a vertex's neighbours are ``key +- (-1, .., d, .., -1)`` (``d`` at
    position ``j``; for ``j = d`` every stored coordinate moves by 1), found by
    ``searchsorted`` in the sorted codes. Missing neighbours contribute 0 (pydensecrf
    reads a zero padding vertex); here they are simply absent from the matrix.
    """
    m, dev = codes.numel(), codes.device
    powers = radix ** torch.arange(d, device=dev, dtype=torch.long)
    step = torch.cat([(d + 1) * powers, powers.new_zeros(1)]) - powers.sum()  # (d+1,)
    own = torch.arange(m, device=dev)
    weight = torch.tensor([0.5, 1.0, 0.5], dtype=dtype, device=dev).expand(m, 3)
    mats = []
    for s in step.tolist():
        cand = codes[:, None] + torch.tensor([-s, s], device=dev)  # (M, 2)
        pos = torch.searchsorted(codes, cand).clamp_(max=m - 1)
        found = codes[pos] == cand
        cols = torch.stack([pos[:, 0], own, pos[:, 1]], 1)
        keep = torch.stack([found[:, 0], torch.ones_like(found[:, 0]), found[:, 1]], 1)
        if s < 0:  # codes are sorted, so the "-s" neighbour has the larger index
            cols, keep = cols.flip(1), keep.flip(1)
        crow = torch.cat([own.new_zeros(1), keep.sum(1).cumsum(0)])
        itype = _index_dtype(3 * m, m)
        mats.append(_csr(crow.to(itype), cols[keep].to(itype), weight[keep], (m, m)))
    return mats


# ----------------------------------------------------------------------------- kernels


def _position_grid(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``(H*W, 2)`` pixel coordinates ``(x, y)``, row-major (pydensecrf's order)."""
    ys, xs = torch.meshgrid(
        torch.arange(h, device=device, dtype=dtype), torch.arange(w, device=device, dtype=dtype),
        indexing="ij",
    )
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], 1)


class _GaussianKernel:
    """One normalised kernel ``Kn = D^-1/2 K D^-1/2`` bound to one image (N = H*W pixels).

    ``apply(q)`` maps ``(N, C)`` to ``(N, C)``. ``kind``: ``"permutohedral"`` (lattice
    approximation) or ``"exact"``. Exact is a dense ``N x N`` matrix, except for a kernel
    on the pixel grid alone (``grid=(H, W, sigma)``, the spatial kernel): it factorises,
    ``K = G_y (x) G_x``, so ``K q`` is two small dense matmuls, ``O(N (H + W))``.
    """

    def __init__(
        self,
        kind: FilterKind,
        features: torch.Tensor,
        include_self: bool,
        grid: tuple[int, int, float] | None = None,
    ) -> None:
        self.kind, self.grid = kind, grid
        f = features.detach()
        if kind == "permutohedral":
            self.lattice = PermutohedralLattice(f)
            degree = self.lattice.ones_response()[:, None]
        elif kind == "exact":
            if grid is not None:
                h, w, sigma = grid
                self.gy, self.gx = (_gauss_matrix(k, sigma, f.device, f.dtype) for k in (h, w))
            else:
                self.matrix = torch.exp(-0.5 * torch.cdist(f, f).square())
            degree = self._exact(f.new_ones(f.shape[0], 1))
        else:
            raise ValueError(f"unknown filter kind {kind!r}; use 'permutohedral' or 'exact'")
        degree = degree - (0.0 if include_self else 1.0)
        self.norm = degree.clamp_min(1e-20).rsqrt()  # pydensecrf: 1 / sqrt(norm + 1e-20)
        self._self_weight = None if include_self else self.norm.square()
        if kind == "permutohedral":  # fold D^-1/2 into splat and slice, once
            self.lattice.rescale(self.norm[:, 0])

    def _exact(self, q: torch.Tensor) -> torch.Tensor:
        """Unnormalised exact ``K q`` (self term included)."""
        if self.grid is None:
            return self.matrix.to(q.dtype) @ q
        h, w, _ = self.grid
        c = q.shape[1]
        x = (self.gy.to(q.dtype) @ q.reshape(h, w * c)).view(h, w, c)
        return (self.gx.to(q.dtype) @ x).reshape(h * w, c)

    def apply(self, q: torch.Tensor) -> torch.Tensor:
        """``Kn q`` for ``q`` (N, C); ``K - I`` in place of ``K`` when the self term is excluded."""
        if self.kind == "permutohedral":
            out = self.lattice.filter(q)
        else:
            n = self.norm.to(q.dtype)
            out = n * self._exact(q * n)
        if self._self_weight is not None:
            out = out - self._self_weight.to(q.dtype) * q
        return out


def _gauss_matrix(size: int, sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``(size, size)`` matrix ``exp(-(a - b)^2 / 2 sigma^2)``: one axis of the spatial kernel."""
    t = torch.arange(size, device=device, dtype=dtype)
    return torch.exp(-0.5 * ((t[:, None] - t[None, :]) / sigma) ** 2)


# ----------------------------------------------------------------------------- inference


def unary_energy(unary: torch.Tensor, kind: UnaryKind = "logits") -> torch.Tensor:
    """Unary energies ``U = -log P`` from logits, probabilities or energies (same shape).

    Logits: ``-logits`` (``-log softmax`` differs by a per-pixel constant, which mean
    field ignores). Probabilities: ``-log clip(p, 1e-5, 1)`` as pydensecrf's
    ``unary_from_softmax``.
    """
    if kind == "logits":
        return -unary
    if kind == "probs":
        return -torch.log(unary.clamp(PROB_CLIP, 1.0))
    if kind == "energy":
        return unary
    raise ValueError(f"unknown unary kind {kind!r}; use 'logits', 'probs' or 'energy'")


def _check_inputs(unary: torch.Tensor, image: torch.Tensor, compat: torch.Tensor) -> None:
    if unary.dim() != 4 or image.dim() != 4:
        raise ValueError(
            f"unary must be (B, L, H, W) and image (B, C, H, W); got {tuple(unary.shape)} "
            f"and {tuple(image.shape)}"
        )
    if unary.shape[0] != image.shape[0] or unary.shape[-2:] != image.shape[-2:]:
        raise ValueError(
            f"unary {tuple(unary.shape)} and image {tuple(image.shape)} differ in batch or size"
        )
    if compat.dim() not in (0, 2) or (
        compat.dim() == 2 and tuple(compat.shape) != (unary.shape[1],) * 2
    ):
        raise ValueError(
            f"compatibility must be a scalar (Potts) or ({unary.shape[1]}, {unary.shape[1]}) "
            f"for {unary.shape[1]} labels, got shape {tuple(compat.shape)}"
        )


def _image_kernels(
    image: torch.Tensor,
    theta_alpha: float,
    theta_beta: float,
    theta_gamma: float,
    bilateral_filter: FilterKind,
    spatial_filter: FilterKind,
    include_self: bool,
) -> tuple[_GaussianKernel, _GaussianKernel]:
    """Bilateral and spatial kernels of one image ``(C, H, W)`` (Krähenbühl & Koltun Eq. 3)."""
    c, h, w = image.shape
    dt = image.dtype if image.is_floating_point() else torch.float32
    pos = _position_grid(h, w, image.device, dt)
    colour = image.to(dt).reshape(c, h * w).T
    bilateral = _GaussianKernel(
        bilateral_filter, torch.cat([pos / theta_alpha, colour / theta_beta], 1), include_self
    )
    spatial = spatial_kernel(h, w, float(theta_gamma), spatial_filter, include_self, image.device, dt)
    return bilateral, spatial


@functools.lru_cache(maxsize=8)
def spatial_kernel(
    h: int,
    w: int,
    theta_gamma: float,
    kind: FilterKind,
    include_self: bool,
    device: torch.device,
    dtype: torch.dtype,
) -> _GaussianKernel:
    """The spatial kernel of an ``H x W`` image; cached, as it does not depend on the image.

    Every call with one crop size (training) reuses it; ``spatial_kernel.cache_clear()``
    empties the cache (the benchmark times both).
    """
    pos = _position_grid(h, w, device, dtype)
    return _GaussianKernel(kind, pos / theta_gamma, include_self, (h, w, theta_gamma))


def dense_crf(
    unary: torch.Tensor,
    image: torch.Tensor,
    *,
    iterations: int = 5,
    theta_alpha: float = DEFAULT_THETA_ALPHA,
    theta_beta: float = DEFAULT_THETA_BETA,
    theta_gamma: float = DEFAULT_THETA_GAMMA,
    w_bilateral: float | torch.Tensor = DEFAULT_W_BILATERAL,
    w_spatial: float | torch.Tensor = DEFAULT_W_SPATIAL,
    compatibility: float | torch.Tensor = 1.0,
    unary_kind: UnaryKind = "logits",
    bilateral_filter: FilterKind = "permutohedral",
    spatial_filter: FilterKind = "permutohedral",
    include_self: bool = True,
    higher_order: "HigherOrder | None" = None,
) -> torch.Tensor:
    """Mean-field marginals ``Q`` (B, L, H, W) of the fully connected CRF.

    ``unary`` (B, L, H, W) or (L, H, W): logits, probabilities or energies
    (``unary_kind``); ``image`` (B, C, H, W) or (C, H, W), any number of channels, in the
    units of ``theta_beta`` (0..255 for RGB, as pydensecrf). ``compatibility``: a scalar
    Potts weight (any number of labels) or an ``(L, L)`` matrix ``mu`` (energy: larger =
    more penalised); Potts 1 is ``1 - eye(L)``. Each iteration is
    ``Q = softmax(-U - mu (w_bilateral Kn_1 Q + w_spatial Kn_2 Q))`` (module docstring).
    Differentiable in ``unary``, the weights and ``compatibility``.

    ``higher_order`` (one image only): a term with its own latent variables, updated once
    per iteration beside the pairwise message (:class:`HigherOrder`, e.g. Arnab & Torr's
    detection potential, :class:`~instseg_lib.models.detection_potential.DetectionPotential`).
    """
    _check_iterations(iterations)
    for name, v in (("theta_alpha", theta_alpha), ("theta_beta", theta_beta),
                    ("theta_gamma", theta_gamma)):
        _check_positive(name, v)
    squeeze = unary.dim() == 3
    if squeeze:
        unary = unary[None]
        image = image[None] if image.dim() == 3 else image
    compat = torch.as_tensor(compatibility, dtype=unary.dtype, device=unary.device)
    _check_inputs(unary, image, compat)
    energy = unary_energy(unary, unary_kind)
    if higher_order is not None and energy.shape[0] != 1:
        raise ValueError(f"a higher-order term belongs to one image; got a batch of {energy.shape[0]}")
    out = []
    for u, img in zip(energy, image):
        kb, ks = _image_kernels(img, theta_alpha, theta_beta, theta_gamma,
                                bilateral_filter, spatial_filter, include_self)
        out.append(_mean_field(u, kb, ks, w_bilateral, w_spatial, compat, iterations, higher_order))
    q = torch.stack(out)
    return q[0] if squeeze else q


def _mean_field(
    energy: torch.Tensor,
    bilateral: _GaussianKernel,
    spatial: _GaussianKernel,
    w_bilateral: float | torch.Tensor,
    w_spatial: float | torch.Tensor,
    compat: torch.Tensor,
    iterations: int,
    higher_order: "HigherOrder | None" = None,
) -> torch.Tensor:
    """Zheng et al. 2015 §4 (Krähenbühl & Koltun Alg. 1) on one image; ``energy`` (L, H, W)."""
    l, h, w = energy.shape
    # (N, L) row-major: rows are pixels, as the sparse products want; a transposed view
    # would make every elementwise op, softmax and product run strided.
    neg_u = -energy.reshape(l, h * w).T.contiguous()
    as_t = lambda v: torch.as_tensor(v, dtype=neg_u.dtype, device=neg_u.device)  # noqa: E731
    wb, ws = as_t(w_bilateral), as_t(w_spatial)
    potts = compat.dim() == 0
    if potts:  # -U - (-p) (wb Kb Q + ws Ks Q), as two fused multiply-adds
        wb, ws = wb * compat, ws * compat
    q = _softmax_rows(neg_u)
    if higher_order is not None:
        higher_order.start(h, w)
    for _ in range(iterations):
        if potts:
            logits = torch.addcmul(torch.addcmul(neg_u, bilateral.apply(q), wb), spatial.apply(q), ws)
        else:
            msg = torch.addcmul(wb * bilateral.apply(q), spatial.apply(q), ws)
            logits = torch.addmm(neg_u, msg, compat.T, alpha=-1)
        if higher_order is not None:
            logits = logits + higher_order.step(q)
        q = _softmax_rows(logits)
    return q.T.reshape(l, h, w)


class HigherOrder:
    """A term of the CRF with latent variables of its own, updated by mean field beside the
    pixels (Arnab et al. 2016's higher-order potentials).

    ``start(h, w)`` resets the latent marginals for an ``h x w`` image; ``step(q)`` takes the
    pixel marginals ``(N, L)`` of the previous iteration (rows = pixels, row-major), updates
    the latent marginals from them and returns the ``(N, L)`` log-potential message they
    send to the pixels, added to the next iteration's logits.
    """

    def start(self, h: int, w: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def step(self, q: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


def _softmax_rows(x: torch.Tensor) -> torch.Tensor:
    """``softmax(x, 1)`` for ``(N, L)``; as ``exp(log_softmax)``, which measured ~1.6x
    faster on CPU for L = 21 (torch's softmax kernel vectorises short rows poorly)."""
    y = torch.log_softmax(x, 1)
    return y.exp_() if not y.requires_grad else y.exp()


class DenseCRF(nn.Module):
    """Fully connected CRF with mean-field inference as a recurrent layer (CRF-RNN).

    Zheng et al. 2015 §4-5: ``iterations`` unrolled mean-field steps with learnable
    kernel weights ``w_bilateral``, ``w_spatial`` and compatibility. ``num_labels=None``
    (or ``compatibility="potts"``) learns one Potts scalar and accepts any number of
    labels per call (Arnab & Torr §3.3's dynamic instance CRF, labels {0..D}); with
    ``num_labels`` and ``compatibility="matrix"`` it learns an ``L x L`` matrix
    initialised to Potts ``1 - eye(L)`` (not symmetrised, as CRF-RNN; pydensecrf
    symmetrises its matrices). Zheng et al. unroll 5 iterations for training and 10 at
    test; Arnab & Torr's released model uses 3 (as noted in the issue). ``learnable=False`` registers the weights as buffers (post-processing
    as in BoxSup / PFN). Widths are fixed; for small images use
    :func:`scale_position_widths`.
    """

    def __init__(
        self,
        num_labels: int | None = None,
        iterations: int = 5,
        theta_alpha: float = DEFAULT_THETA_ALPHA,
        theta_beta: float = DEFAULT_THETA_BETA,
        theta_gamma: float = DEFAULT_THETA_GAMMA,
        w_bilateral: float = DEFAULT_W_BILATERAL,
        w_spatial: float = DEFAULT_W_SPATIAL,
        compatibility: Literal["potts", "matrix"] = "potts",
        potts_weight: float = 1.0,
        learnable: bool = True,
        unary_kind: UnaryKind = "logits",
        bilateral_filter: FilterKind = "permutohedral",
        spatial_filter: FilterKind = "permutohedral",
        include_self: bool = True,
    ) -> None:
        super().__init__()
        _check_iterations(iterations)
        for name, v in (("theta_alpha", theta_alpha), ("theta_beta", theta_beta),
                        ("theta_gamma", theta_gamma)):
            _check_positive(name, v)
        if compatibility not in ("potts", "matrix"):
            raise ValueError(f"compatibility must be 'potts' or 'matrix', got {compatibility!r}")
        if compatibility == "matrix" and (num_labels is None or num_labels < 1):
            raise ValueError("compatibility='matrix' needs num_labels (a positive int)")
        self.iterations = iterations
        self.theta_alpha, self.theta_beta, self.theta_gamma = theta_alpha, theta_beta, theta_gamma
        self.unary_kind, self.include_self = unary_kind, include_self
        self.bilateral_filter, self.spatial_filter = bilateral_filter, spatial_filter
        if compatibility == "matrix":
            mu = 1.0 - torch.eye(num_labels)
        else:
            mu = torch.tensor(float(potts_weight))
        tensors = {
            "w_bilateral": torch.tensor(float(w_bilateral)),
            "w_spatial": torch.tensor(float(w_spatial)),
            "compatibility": mu,
        }
        for name, t in tensors.items():
            if learnable:
                self.register_parameter(name, nn.Parameter(t))
            else:
                self.register_buffer(name, t)

    def forward(self, unary: torch.Tensor, image: torch.Tensor, higher_order: HigherOrder | None = None
                ) -> torch.Tensor:
        """``Q`` (B, L, H, W) from unary (B, L, H, W) and image (B, C, H, W); see :func:`dense_crf`."""
        return dense_crf(
            unary, image,
            iterations=self.iterations,
            theta_alpha=self.theta_alpha, theta_beta=self.theta_beta, theta_gamma=self.theta_gamma,
            w_bilateral=self.w_bilateral, w_spatial=self.w_spatial,
            compatibility=self.compatibility,
            unary_kind=self.unary_kind,
            bilateral_filter=self.bilateral_filter, spatial_filter=self.spatial_filter,
            include_self=self.include_self,
            higher_order=higher_order,
        )

    def extra_repr(self) -> str:
        return (f"iterations={self.iterations}, theta_alpha={self.theta_alpha}, "
                f"theta_beta={self.theta_beta}, theta_gamma={self.theta_gamma}, "
                f"filters=({self.bilateral_filter}, {self.spatial_filter})")
