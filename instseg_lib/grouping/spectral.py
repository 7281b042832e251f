"""Pixels -> instances by spectral clustering of PFN's predictions (Liang et al. 2015, §3.3).

Test stage of PFN:

1. refine the category-level map with the predicted instance-number vector
   (:func:`refine_category_map`, §3.3's two strategies, tau = 0.5);
2. per category c, take the pixels of its mask p_c, and cluster their predicted instance
   locations t_i with their coordinates q_i by "simple normalized spectral clustering"
   (:func:`spectral_cluster`): the fully connected affinity of Eq. 6
   (:func:`pfn_affinity`), the cluster number from the predicted instance number g_c
   (:func:`instance_count`), 20 k-means runs from random seeds of which "the clustering
   result with maximal average within-cluster similarities for all clusters is selected";
3. discard clusters with fewer pixels than 0.1% of the mask ("size constraint");
4. the instances of all categories together are the result (:func:`pfn_group`).

Choices the paper leaves open, ours:

- **Eq. 6's constants.** The extracted equation reads ``exp(-||t_i - t_j||^2 / |t_i| ...) +
  exp(-||q_i - q_j||^2 / |q_i| ...)`` with sigma = 0.5; the lost denominator is taken as the
  usual Gaussian ``2 sigma^2``: ``w_ij = exp(-||t_i - t_j||^2 / (|t| 2 sigma^2)) +
  exp(-||q_i - q_j||^2 / (|q| 2 sigma^2))``, ``|t| = D``, ``|q| = 2``.
- **"normalized by their corresponding maximum"**: every dimension of t and of q is divided by
  its largest absolute value over the category's mask (``normalize="mask_max"``, default).
  ``"image"`` keeps t as predicted (image-normalised already) and divides q by the image
  size; ``"none"`` uses both as given.
- **The spectral step** is Ng, Jordan & Weiss's: the k leading eigenvectors of
  ``D^-1/2 W D^-1/2``, rows scaled to unit length, k-means on them.
- **"maximal average within-cluster similarities"**: the pooled mean of w_ij over all
  within-cluster pairs i != j (a per-cluster mean would reward splitting off a few
  near-identical pixels as one of the k clusters). Not scikit-learn's inertia, which scores
  the embedding, not the affinities.
- **k** = g_c rounded half up, at least 1 (a category the map shows has at least one
  instance even when g_c < 0.5), at most the number of pixels.
- **Cost.** W is dense, n^2 entries, and the eigenproblem costs O(n^3) with n the mask's
  pixels (PFN runs at full resolution on a GPU-sized budget: "about one second" per image).
  Above ``max_pixels`` a uniform random subset of the mask is clustered and every other
  pixel joins the cluster of highest mean affinity to it (Eq. 6 again, the objective's
  own measure). ``benchmarks/bench_pfn.py`` prints the time and the agreement against the
  dense solution; ``tests/test_pfn.py`` checks the agreement on a small mask.
- **sigma = 0.5 is a wide kernel** on max-normalised features (in [0, 1]): Eq. 6 never
  falls below ``2 exp(-2)`` between two pixels of a mask, so the block structure of k
  instances is a weak contrast on top of the smooth spatial modes of the q term. Two
  instances, separated or touching, are split cleanly; three touching side by side are not
  (the leading eigenvectors follow the spatial modes: ~0.66 pixel agreement with the truth
  in ``benchmarks/bench_pfn.py --k 3``, 1.0 at ``--sigma 0.1``). The paper's 0.5 stays the
  default; ``sigma`` is a parameter.
- **Scores** (AP^r needs one per instance; the paper gives none): the mean category
  probability of the instance's pixels when ``probs`` is given, else 1.
- **Refinement with no category above tau**: the map is left as it is (the paper's two
  strategies cover one and several predicted categories only).
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import torch
from scipy.linalg import eigh

from ..data.targets import PFN_LOCATION_CHANNELS, pfn_channel_axis
from .hough import Instances, _empty

#: §3.3: "We simply set sigma = 0.5 for all images".
PFN_SIGMA = 0.5
#: §3.3: "the instance number of a specific category c is larger than tau" -> present.
PFN_TAU = 0.5
#: §3.3: "we randomly select the seeds twenty times".
PFN_KMEANS_RUNS = 20
#: §3.3: "discard those clusters, whose pixel numbers are less than 0.1% of the pixels in the
#: segmentation mask".
PFN_MIN_CLUSTER_FRACTION = 1e-3


def _np(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def instance_count(g: float) -> int:
    """k from a predicted instance number: ``floor(g + 0.5)`` (round half up), at least 1."""
    return max(1, int(np.floor(float(g) + 0.5)))


def refine_category_map(labels: torch.Tensor | np.ndarray, numbers: torch.Tensor | np.ndarray,
                        tau: float = PFN_TAU, background: int = 0, ignore_index: int = 255) -> np.ndarray:
    """§3.3: make the category map consistent with the instance-number vector.

    ``labels`` (H, W) ints (``background``, object classes ``1..C``, ``ignore_index``);
    ``numbers`` (C,) predicted instance numbers of classes ``1..C``. A class is predicted
    present when its number exceeds ``tau``. Then

    - several classes present: "any pixels assigned with all other categories ... will be
      re-labeled as the background";
    - one class present: "pixels labeled with other object categories (excluding background
      pixels) ... will be totally converted into the predicted ones";
    - none present: unchanged (our choice; the paper does not say).

    Returns a new (H, W) int64 array.
    """
    lab = _np(labels).astype(np.int64).copy()
    g = _np(numbers).astype(np.float64).ravel()
    present = np.flatnonzero(g > tau) + 1  # class ids
    obj = (lab != background) & (lab != ignore_index)
    if len(present) >= 2:
        lab[obj & ~np.isin(lab, present)] = background
    elif len(present) == 1:
        lab[obj] = present[0]
    return lab


def absolute_locations(locations: np.ndarray, variant: str = "pfn6",
                       frame: Literal["absolute", "relative", "instance", "pixels"] = "absolute") -> np.ndarray:
    """Location maps (D, H, W) in an absolute frame for clustering: offsets (``offsets2``,
    or any variant in the ``"relative"`` frame) get the pixel-centre position added back, so
    that pixels of one instance agree (the inverse of ``pfn_instance_targets``). Other frames
    are returned unchanged."""
    names = PFN_LOCATION_CHANNELS[variant]
    if len(names) != locations.shape[0]:
        raise ValueError(f"variant {variant!r} has {len(names)} channels; got {locations.shape[0]}")
    relative = [(c, n) for c, n in enumerate(names) if n in ("dx", "dy") or (frame == "relative" and n not in ("w", "h"))]
    if not relative or frame == "instance":
        return locations
    _, H, W = locations.shape
    out = locations.astype(np.float32, copy=True)
    scale = frame in ("absolute", "relative")
    px = (np.arange(W, dtype=np.float32) + 0.5) / (W if scale else 1)
    py = (np.arange(H, dtype=np.float32) + 0.5) / (H if scale else 1)
    for c, n in relative:
        out[c] += px[None, :] if pfn_channel_axis(n) == "x" else py[:, None]
    return out


def pfn_affinity(t: np.ndarray, q: np.ndarray | None, sigma: float = PFN_SIGMA,
                 t2: np.ndarray | None = None, q2: np.ndarray | None = None) -> np.ndarray:
    """Eq. 6: ``w_ij = exp(-||t_i - t_j||^2 / (|t| 2 sigma^2)) + exp(-||q_i - q_j||^2 / (|q| 2 sigma^2))``.

    ``t`` (n, D) locations, ``q`` (n, 2) coordinates (``None``: "PFN w/o coordinates", the
    first term only); ``t2``/``q2`` (m, .) give the (n, m) block against other pixels.
    """
    def gauss(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
        return np.exp(-np.maximum(d2, 0.0) / (a.shape[1] * 2.0 * sigma * sigma))

    w = gauss(t, t if t2 is None else t2)
    if q is not None:
        w += gauss(q, q if q2 is None else q2)
    return w


def within_cluster_similarity(w: np.ndarray, labels: np.ndarray) -> float:
    """Pooled mean of ``w_ij`` over within-cluster pairs ``i != j`` (the selection score of
    §3.3's 20 k-means runs); 0 when no cluster has two members."""
    k = int(labels.max()) + 1
    onehot = np.zeros((len(labels), k))
    onehot[np.arange(len(labels)), labels] = 1.0
    inside = float((onehot * (w @ onehot)).sum()) - float(np.trace(w))
    sizes = onehot.sum(0)
    pairs = float((sizes * (sizes - 1)).sum())
    return inside / pairs if pairs > 0 else 0.0


def _leading_eigenvectors(a: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The ``k`` eigenvectors of largest eigenvalue of the symmetric ``a`` (n, k): Lanczos
    (ARPACK) for large n, ~50x faster than a dense solve at n = 3600; LAPACK for small n or
    when ARPACK does not converge."""
    n = a.shape[0]
    if n > 300 and k < n // 4:
        from scipy.sparse.linalg import ArpackNoConvergence, eigsh

        v0 = np.random.default_rng(seed).uniform(0.5, 1.5, n)  # deterministic start vector
        try:
            return eigsh(a, k=k, which="LA", v0=v0)[1]
        except ArpackNoConvergence:
            pass
    return eigh(a, subset_by_index=[n - k, n - 1])[1]


def spectral_cluster(w: np.ndarray, k: int, n_init: int = PFN_KMEANS_RUNS, seed: int = 0) -> np.ndarray:
    """Normalised spectral clustering of an affinity matrix (Ng, Jordan & Weiss 2002) with
    PFN's restart rule; returns labels ``0..k'-1`` (n,), ``k' <= k``.

    The k leading eigenvectors of ``D^-1/2 W D^-1/2``, rows normalised; ``n_init`` single
    k-means runs (random initial seeds, seeds ``seed .. seed + n_init - 1``), keeping the run
    of largest :func:`within_cluster_similarity`.
    """
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    n = w.shape[0]
    k = max(1, min(int(k), n))
    if k == 1:
        return np.zeros(n, np.int64)
    d = w.sum(1)
    dm = 1.0 / np.sqrt(np.maximum(d, 1e-12))
    a = w * dm[:, None] * dm[None, :]
    vecs = _leading_eigenvectors(a, k, seed)
    u = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    best, best_score = None, -np.inf
    with warnings.catch_warnings():
        # identical rows (duplicate pixels) can leave fewer distinct points than k
        warnings.simplefilter("ignore", ConvergenceWarning)
        for r in range(max(1, n_init)):
            lab = KMeans(n_clusters=k, init="random", n_init=1, random_state=seed + r).fit_predict(u)
            score = within_cluster_similarity(w, lab)
            if score > best_score:
                best, best_score = lab, score
    assert best is not None
    _, best = np.unique(best, return_inverse=True)  # consecutive labels
    return best.astype(np.int64)


def _normalise(x: np.ndarray) -> np.ndarray:
    m = np.abs(x).max(0)
    return x / np.where(m > 0, m, 1.0)


def cluster_mask(t: np.ndarray, q: np.ndarray | None, k: int, *, sigma: float = PFN_SIGMA,
                 n_init: int = PFN_KMEANS_RUNS, max_pixels: int | None = 1000, seed: int = 0,
                 chunk: int = 1 << 22) -> np.ndarray:
    """Cluster one category mask's pixels, features ``t`` (n, D) and ``q`` (n, 2) already
    normalised; returns a label per pixel (n,).

    With more than ``max_pixels`` pixels (``None``: never), a uniform random subset of that
    size is clustered and each other pixel takes the cluster of highest mean Eq. 6 affinity
    to the subset's members (computed in blocks of ``chunk`` entries).
    """
    n = len(t)
    k = max(1, min(int(k), n))
    if k == 1:
        return np.zeros(n, np.int64)
    rng = np.random.default_rng(seed)
    if max_pixels is None or n <= max_pixels:
        return spectral_cluster(pfn_affinity(t, q, sigma), k, n_init, seed)
    sub = np.sort(rng.choice(n, size=max_pixels, replace=False))
    ts, qs = t[sub], None if q is None else q[sub]
    lab_s = spectral_cluster(pfn_affinity(ts, qs, sigma), k, n_init, seed)
    kk = int(lab_s.max()) + 1
    onehot = np.zeros((len(sub), kk))
    onehot[np.arange(len(sub)), lab_s] = 1.0 / np.bincount(lab_s, minlength=kk)[lab_s]
    out = np.empty(n, np.int64)
    step = max(1, chunk // len(sub))
    for s in range(0, n, step):
        blk = slice(s, min(n, s + step))
        w = pfn_affinity(t[blk], None if q is None else q[blk], sigma, ts, qs)
        out[blk] = (w @ onehot).argmax(1)
    out[sub] = lab_s  # the clustered pixels keep their own labels
    return out


@torch.no_grad()
def pfn_group(
    labels: torch.Tensor | np.ndarray,
    locations: torch.Tensor | np.ndarray,
    numbers: torch.Tensor | np.ndarray | None = None,
    probs: torch.Tensor | np.ndarray | None = None,
    *,
    refine: bool = True,
    tau: float = PFN_TAU,
    sigma: float = PFN_SIGMA,
    use_coordinates: bool = True,
    n_init: int = PFN_KMEANS_RUNS,
    min_cluster_fraction: float = PFN_MIN_CLUSTER_FRACTION,
    max_pixels: int | None = 1000,
    normalize: Literal["mask_max", "image", "none"] = "mask_max",
    location_variant: str = "pfn6",
    frame: Literal["absolute", "relative", "instance", "pixels"] = "absolute",
    background: int = 0,
    ignore_index: int = 255,
    seed: int = 0,
) -> Instances:
    """PFN's test stage (§3.3) for one image: category map + locations + numbers -> instances.

    - ``labels`` (H, W) category-level segmentation (argmax, or after the dense CRF);
      ``locations`` (D, H, W) predicted instance locations at image size
      (:meth:`instseg_lib.models.PFN.predict`); ``numbers`` (C,) predicted instance numbers of
      classes ``1..C`` (``None``: k = 1 for every class and no refinement -- pass the
      ground-truth vector for "PFN upperbound instnum", ground-truth locations for
      "upperbound instloc");
    - ``probs`` (C + 1, H, W) category probabilities, only for the instance scores;
    - ``refine=False``: "PFN w/o classify"; ``min_cluster_fraction=0``: "PFN w/o size";
      ``use_coordinates=False``: "PFN w/o coordinates" (Eq. 6 without its second term);
    - ``location_variant``/``frame``: what the location channels are
      (:func:`instseg_lib.data.targets.pfn_instance_targets`); offsets are made absolute first.

    Returns :class:`~instseg_lib.grouping.hough.Instances` (masks (M, H, W) bool, classes,
    scores), sorted by descending score; no foreground gives an empty result, not an error.
    """
    lab = _np(labels).astype(np.int64)
    H, W = lab.shape
    loc = absolute_locations(_np(locations).astype(np.float32), location_variant, frame)
    if loc.shape[1:] != (H, W):
        raise ValueError(f"locations {loc.shape[1:]} and labels {(H, W)} differ in size")
    g = None if numbers is None else _np(numbers).astype(np.float64).ravel()
    if refine and g is not None:
        lab = refine_category_map(lab, g, tau, background, ignore_index)
    pr = None if probs is None else _np(probs)
    classes = [c for c in np.unique(lab) if c not in (background, ignore_index)]
    masks, cls_out, scores = [], [], []
    for c in classes:
        ys, xs = np.nonzero(lab == c)
        n = len(ys)
        if g is not None and c - 1 >= len(g):
            raise ValueError(f"class {c} in the map but only {len(g)} instance numbers")
        k = 1 if g is None else instance_count(g[c - 1])
        t = loc[:, ys, xs].T.astype(np.float64)
        q = np.stack([xs + 0.5, ys + 0.5], 1).astype(np.float64)  # q_i = (i_x, i_y), pixel centres
        if normalize == "mask_max":
            t, q = _normalise(t), _normalise(q)
        elif normalize == "image":
            q = q / np.array([W, H], np.float64)
        elif normalize != "none":
            raise ValueError(f"unknown normalize {normalize!r}")
        lab_c = cluster_mask(t, q if use_coordinates else None, k, sigma=sigma, n_init=n_init,
                             max_pixels=max_pixels, seed=seed)
        sizes = np.bincount(lab_c)
        for j in np.flatnonzero(sizes):
            if sizes[j] < min_cluster_fraction * n:
                continue  # §3.3: noisy background pixels form very small clusters
            m = np.zeros((H, W), bool)
            sel = lab_c == j
            m[ys[sel], xs[sel]] = True
            masks.append(m)
            cls_out.append(int(c))
            scores.append(float(pr[c][m].mean()) if pr is not None else 1.0)
    if not masks:
        return _empty(H, W, torch.device("cpu"))
    order = np.argsort(-np.asarray(scores), kind="stable")
    return Instances(torch.from_numpy(np.stack(masks)[order]), torch.tensor(cls_out, dtype=torch.long)[order],
                     torch.tensor(scores, dtype=torch.float32)[order])
