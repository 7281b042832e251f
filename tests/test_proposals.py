"""instseg_lib.proposals: candidate storage, Selective Search, the SLIC-merging stand-in,
proposal quality by hand, the cache, and the OpenCV reference."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from instseg_lib.proposals import (
    Candidates,
    QualityEvaluator,
    SelectiveSearchConfig,
    SlicMergeConfig,
    best_overlap_at,
    box_best_overlap,
    box_iou_matrix,
    cache_path,
    cached_proposals,
    mask_best_overlap,
    mask_iou_matrix,
    overlay,
    selective_search,
    slic_merge_proposals,
)


def two_rectangles(h: int = 64, w: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """A grey background with a red and a blue rectangle (mild noise); the instance map."""
    rng = np.random.default_rng(0)
    img = np.full((h, w, 3), 128.0)
    inst = np.zeros((h, w), np.int32)
    img[8:30, 6:34] = (220, 30, 30)
    inst[8:30, 6:34] = 1
    img[34:58, 40:74] = (30, 40, 210)
    inst[34:58, 40:74] = 2
    img += rng.normal(0, 4, img.shape)
    return img.clip(0, 255).astype(np.uint8), inst


# --------------------------------------------------------------------------- candidates
def test_candidates_masks_boxes_areas_by_hand():
    sp = np.array([[0, 0, 1, 1],
                   [0, 0, 1, 1],
                   [2, 2, 3, 3]], np.int32)
    members = sparse.csr_matrix(np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0]], bool))
    c = Candidates(sp, members)
    assert len(c) == 4 and c.n_superpixels == 4 and c.shape == (3, 4)
    np.testing.assert_array_equal(c.areas(), [4, 8, 6, 0])
    np.testing.assert_array_equal(c.boxes(), [[0, 0, 2, 2], [0, 0, 4, 2], [2, 0, 4, 3], [0, 0, 0, 0]])
    np.testing.assert_array_equal(c.mask(2), (sp == 1) | (sp == 3))
    np.testing.assert_array_equal(c.masks([1, 0]), np.stack([sp <= 1, sp == 0]))
    assert c.masks([]).shape == (0, 3, 4)
    u = c.unique()  # the empty row goes
    assert len(u) == 3
    np.testing.assert_array_equal(c.top(2).areas(), [4, 8])


def test_overlay_is_the_common_refinement():
    a = np.array([[0, 0, 1], [0, 0, 1]])
    b = np.array([[5, 6, 6], [5, 6, 6]])
    base, maps = overlay([a, b])
    assert base.max() + 1 == 3  # cells (0,5), (0,6), (1,6)
    for lm, mp in zip((a, b), maps):
        np.testing.assert_array_equal(mp[base], lm)


def test_from_partitions_ranks_and_dedups():
    a = np.array([[0, 0, 1], [0, 0, 1]])
    b = np.array([[0, 1, 1], [0, 1, 1]])
    # a's region 1 = columns 2; b's region 1 = columns 1..2; a's {0,1} == b's {0,1} (whole image)
    c = Candidates.from_partitions([(a, [np.array([1]), np.array([0, 1])]), (b, [np.array([1]), np.array([0, 1])])],
                                   order=np.array([3, 2, 1, 0]))
    assert len(c) == 3  # the whole image appears once, at the rank of its best copy
    np.testing.assert_array_equal(c.areas(), [6, 4, 2])


def test_pool_interleaves_ranks_and_keeps_shared_segments_once():
    h, w = 4, 6
    sq = lambda y0, x0, y1, x1: np.pad(np.ones((y1 - y0, x1 - x0), bool), ((y0, h - y1), (x0, w - x1)))  # noqa: E731
    a = Candidates.from_masks(np.stack([sq(0, 0, 2, 2), sq(0, 0, 4, 6), sq(2, 2, 4, 4)]), method="a")
    b = Candidates.from_masks(np.stack([sq(0, 3, 4, 6), sq(0, 0, 2, 2)]), method="b")
    pooled = Candidates.pool([a, b], method="ab")
    # ranks a0, b0, a1, b1 (= a0, dropped), a2
    expected = np.stack([sq(0, 0, 2, 2), sq(0, 3, 4, 6), sq(0, 0, 4, 6), sq(2, 2, 4, 4)])
    np.testing.assert_array_equal(pooled.masks(), expected)
    assert pooled.method == "ab" and pooled.meta["pooled"] == ["a", "b"]
    with pytest.raises(ValueError, match="different image sizes"):
        Candidates.pool([a, Candidates.from_masks(np.ones((1, 3, 3), bool))])


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 8), st.integers(2, 8), st.integers(1, 5), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_pool_never_loses_a_segment(h, w, na, nb, seed):
    """Every segment of every set is in the pool, so no best overlap can drop."""
    rng = np.random.default_rng(seed)
    sets = [Candidates.from_masks(rng.random((n, h, w)) < 0.5) for n in (na, nb)]
    pooled = Candidates.pool(sets)
    have = {m.tobytes() for m in pooled.masks()}
    for c in sets:
        assert {m.tobytes() for m in c.masks() if m.any()} <= have
    gt = (rng.random((h, w)) < 0.5).astype(np.int32)
    if gt.any():
        best = mask_best_overlap(gt, pooled, (1000,))
        assert all(best[0, 0] >= mask_best_overlap(gt, c, (1000,))[0, 0] - 1e-12 for c in sets)
    np.testing.assert_array_equal(pooled.boxes(), pooled.boxes())  # cached copy, not a shared array
    b = pooled.boxes()
    b[:] = -1
    assert (pooled.boxes() >= 0).all()


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 9), st.integers(2, 9), st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_candidates_agree_with_dense_masks(h, w, n, seed):
    rng = np.random.default_rng(seed)
    masks = rng.random((n, h, w)) < 0.4
    c = Candidates.from_masks(masks)
    np.testing.assert_array_equal(c.masks(), masks)
    np.testing.assert_array_equal(c.areas(), masks.sum(axis=(1, 2)))
    for i, m in enumerate(masks):
        if m.any():
            ys, xs = np.nonzero(m)
            np.testing.assert_array_equal(c.boxes()[i], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        else:
            np.testing.assert_array_equal(c.boxes()[i], [0, 0, 0, 0])
    back = Candidates.from_bytes(c.to_bytes())
    np.testing.assert_array_equal(back.masks(), masks)


# --------------------------------------------------------------------------- methods
@pytest.mark.parametrize("method", ["selective_search", "slic_merge"])
def test_two_rectangles_are_found(method):
    img, inst = two_rectangles()
    c = selective_search(img) if method == "selective_search" else slic_merge_proposals(img)
    iou = mask_iou_matrix(inst, c)
    assert iou.shape == (2, len(c))
    assert (iou.max(axis=1) > 0.9).all(), iou.max(axis=1)
    assert c.shape == inst.shape and len(c) > 2


def test_selective_search_is_deterministic_and_respects_strategies():
    img, _ = two_rectangles()
    a = selective_search(img)
    b = selective_search(img)
    assert (a.members != b.members).nnz == 0
    one = selective_search(img, SelectiveSearchConfig(colour_spaces=("rgb",), similarities=(("colour", "size"),)))
    # one hierarchy over R base regions has at most 2R - 1 regions
    assert 0 < len(one) <= 2 * one.n_superpixels - 1
    with pytest.raises(ValueError, match="colour space"):
        SelectiveSearchConfig(colour_spaces=("xyz",))
    with pytest.raises(ValueError, match="similarity"):
        SelectiveSearchConfig(similarities=(("shape",),))
    with pytest.raises(ValueError, match="RGB"):
        selective_search(img[..., 0])


@pytest.mark.parametrize("shape", [(1, 1), (3, 40), (20, 30)])
def test_blank_and_tiny_images(shape):
    img = np.full((*shape, 3), 100, np.uint8)
    for c in (selective_search(img), slic_merge_proposals(img)):
        assert len(c) >= 1 and c.shape == shape
        assert (c.areas() == shape[0] * shape[1]).any()  # the whole image is among them


def test_slic_merge_whole_image_is_a_candidate():
    img, _ = two_rectangles()
    c = slic_merge_proposals(img, SlicMergeConfig(n_segments=(20,)))
    assert (c.areas() == img.shape[0] * img.shape[1]).any()


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 14), st.integers(1, 14), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_vectorised_rag_is_skimages_graph(h, w, n, seed):
    """Same nodes, edges, insertion order (merge_hierarchical breaks weight ties by it), sums and weights."""
    from skimage.graph import rag_mean_color as reference

    from instseg_lib.proposals.superpixel_merging import rag_mean_color

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n, (h, w))
    labels = np.unique(labels, return_inverse=True)[1].reshape(h, w)  # ids 0..R-1, as slic_merge relabels
    if labels.max() == 0:
        return  # one region: slic_merge builds no graph
    lab = rng.normal(50.0, 20.0, (h, w, 3))
    a, b = reference(lab, labels, connectivity=2, mode="distance"), rag_mean_color(lab, labels)
    assert list(a.nodes) == list(b.nodes)
    ea, eb = list(a.edges(data="weight")), list(b.edges(data="weight"))
    assert ea == eb and a.max_id == b.max_id
    for node in a:
        x, y = a.nodes[node], b.nodes[node]
        assert x["labels"] == y["labels"] and x["pixel count"] == y["pixel count"]
        assert np.array_equal(x["total color"], y["total color"]) and np.array_equal(x["mean color"], y["mean color"])


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(1, 20), st.integers(0, 2**31 - 1))
def test_adjacent_pairs_are_the_unique_4_neighbour_pairs(h, w, n, seed):
    from instseg_lib.proposals.selective_search import adjacent_pairs

    labels = np.random.default_rng(seed).integers(0, n, (h, w))
    want = sorted({(min(int(labels[y, x]), int(labels[y2, x2])), max(int(labels[y, x]), int(labels[y2, x2])))
                   for y in range(h) for x in range(w) for y2, x2 in ((y + 1, x), (y, x + 1))
                   if y2 < h and x2 < w and labels[y, x] != labels[y2, x2]})
    got = adjacent_pairs(labels)
    assert got.shape == (len(want), 2) and [tuple(r) for r in got.tolist()] == want


# --------------------------------------------------------------------------- quality
def test_quality_by_hand():
    # object 1 = left half (4 px), object 2 = pixel (1, 3)
    inst = np.array([[1, 1, 0, 0],
                     [1, 1, 0, 2]])
    masks = np.array([
        [[1, 1, 1, 1], [1, 1, 1, 1]],  # whole image: IoU 4/8 with obj 1, 1/8 with obj 2
        [[1, 1, 0, 0], [1, 0, 0, 0]],  # 3 of obj 1: IoU 3/4
        [[0, 0, 0, 0], [0, 0, 1, 1]],  # contains obj 2: IoU 1/2
    ], bool)
    c = Candidates.from_masks(masks)
    iou = mask_iou_matrix(inst, c)
    np.testing.assert_allclose(iou, [[0.5, 0.75, 0.0], [0.125, 0.0, 0.5]])
    best = best_overlap_at(iou, (1, 2, 3, 10))
    np.testing.assert_allclose(best, [[0.5, 0.75, 0.75, 0.75], [0.125, 0.125, 0.5, 0.5]])
    ev = QualityEvaluator(ks=(1, 2, 3, 10))
    ev.add(best, classes=np.array([7, 9]), n_proposals=3)
    r = ev.compute()
    np.testing.assert_allclose(r.abo, [0.3125, 0.4375, 0.625, 0.625])
    np.testing.assert_allclose(r.mabo, r.abo)  # one object per class
    np.testing.assert_allclose(r.recall[0.5], [0.5, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(r.recall[0.7], [0.0, 0.5, 0.5, 0.5])
    assert r.n_objects == 2 and r.mean_proposals == 3
    assert list(r.to_frame().columns) == ["ABO", "MABO", "recall@0.5", "recall@0.7"]


def test_void_pixels_count_for_neither_set():
    inst = np.array([[1, 1, 0, 0]])
    void = np.array([[False, False, True, False]])
    c = Candidates.from_masks(np.array([[[1, 1, 1, 0]]], bool))
    assert mask_iou_matrix(inst, c)[0, 0] == pytest.approx(2 / 3)
    assert mask_iou_matrix(inst, c, void=void)[0, 0] == pytest.approx(1.0)


def test_box_iou_and_empty_cases():
    np.testing.assert_allclose(box_iou_matrix([[0, 0, 2, 2]], [[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 5, 5]]),
                               [[1 / 7, 1.0, 0.0]])
    assert box_best_overlap(np.zeros((2, 4)), np.zeros((0, 4)), (1, 5)).shape == (2, 2)
    r = QualityEvaluator(ks=(1,)).compute()
    assert r.n_objects == 0 and np.isnan(r.abo).all()
    with pytest.raises(ValueError):
        QualityEvaluator(ks=(0,))


# --------------------------------------------------------------------------- cache
def test_cache_round_trip_and_reuse(tmp_path, monkeypatch):
    img, _ = two_rectangles(32, 40)
    cfg = SlicMergeConfig(n_segments=(10, 20))
    a = cached_proposals(img, "2008_000001", "slic_merge", cfg, cache_dir=tmp_path)
    path = cache_path(tmp_path, "slic_merge", "2008_000001", cfg)
    assert path.is_file() and not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    calls = []
    import instseg_lib.proposals.cache as cache_mod

    monkeypatch.setitem(cache_mod.METHODS, "slic_merge",
                        (SlicMergeConfig, lambda *a, **k: calls.append(1) or slic_merge_proposals(*a, **k)))
    b = cached_proposals(img, "2008_000001", "slic_merge", cfg, cache_dir=tmp_path)
    assert not calls  # loaded, not recomputed
    assert (a.members != b.members).nnz == 0 and np.array_equal(a.superpixels, b.superpixels)
    assert len(cached_proposals(img, "2008_000001", "slic_merge", cfg, cache_dir=tmp_path, max_candidates=3)) == 3
    # another image under the same id: the stored image hash differs, so it is recomputed
    cached_proposals(255 - img, "2008_000001", "slic_merge", cfg, cache_dir=tmp_path)
    assert calls == [1]
    # a damaged file is recomputed and replaced
    path.write_bytes(b"not an npz")
    cached_proposals(img, "2008_000001", "slic_merge", cfg, cache_dir=tmp_path)
    assert calls == [1, 1] and Candidates.load(path).meta["image_id"] == "2008_000001"
    # other parameters live in another folder
    assert cache_path(tmp_path, "slic_merge", "x", SlicMergeConfig(n_segments=(5,))).parent != path.parent
    with pytest.raises(ValueError, match="unknown proposal method"):
        cached_proposals(img, "x", "mcg")
    with pytest.raises(TypeError):
        cached_proposals(img, "x", "slic_merge", SelectiveSearchConfig())


def test_cache_write_is_atomic(tmp_path, monkeypatch):
    img, _ = two_rectangles(32, 40)
    cfg = SlicMergeConfig(n_segments=(10,))
    path = cache_path(tmp_path, "slic_merge", "a/b", cfg)
    assert path.name == "a_b.npz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        cached_proposals(img, "a/b", "slic_merge", cfg, cache_dir=tmp_path)
    assert path.read_bytes() == b"old"  # the old file survives
    assert [p.name for p in path.parent.iterdir()] == ["a_b.npz"]  # no temporary left behind


# --------------------------------------------------------------------------- twin + reference
@pytest.fixture(scope="module")
def twin(tmp_path_factory) -> dict[str, Path]:
    from instseg_lib.data.synthetic import generate

    base = tmp_path_factory.mktemp("twin")
    return {n: generate(n, "smoke", base / n, workers=1) for n in ("voc", "boxes", "coco")}


@pytest.mark.parametrize("preset", ["voc", "boxes", "coco"])
def test_proposals_on_smoke_twin(twin, preset):
    from instseg_lib.data import open_dataset

    ds = open_dataset(preset, "train", root=twin[preset])
    for i in range(min(3, len(ds))):
        s = ds[i]
        for c in (selective_search(s.image), slic_merge_proposals(s.image)):
            assert c.shape == s.size and len(c) > 0
            b = c.boxes()
            assert (b[:, 0] >= 0).all() and (b[:, 2] <= s.size[1]).all() and (b[:, 3] <= s.size[0]).all()
            if s.has_masks and s.num_instances:
                best = mask_best_overlap(s.instances, c, (len(c),), void=s.semantic == 255,
                                         n_objects=s.num_instances)
                assert best.shape == (s.num_instances, 1) and (best > 0).all()


def test_box_recall_close_to_opencv_selective_search(twin):
    """Reference check: our SS boxes recall the twin's objects about as well as OpenCV's."""
    pytest.importorskip("cv2")
    from instseg_lib.data import open_dataset
    from instseg_lib.proposals import opencv_selective_search_boxes

    img, inst = two_rectangles()
    gt = np.array([[6, 8, 34, 30], [40, 34, 74, 58]], np.float32)
    ref = opencv_selective_search_boxes(img)
    assert (box_iou_matrix(gt, ref).max(axis=1) > 0.9).all()  # the wrapper's x, y, w, h -> x0, y0, x1, y1
    ours_ev, ref_ev = QualityEvaluator(ks=(100,)), QualityEvaluator(ks=(100,))
    ds = open_dataset("voc", "train", root=twin["voc"])
    for i in range(len(ds)):
        s = ds[i]
        ours_ev.add(box_best_overlap(s.boxes, selective_search(s.image).boxes(), (100,)))
        ref_ev.add(box_best_overlap(s.boxes, opencv_selective_search_boxes(s.image), (100,)))
    ours, ref = ours_ev.compute(), ref_ev.compute()
    print("box ABO@100 ours", ours.abo, "opencv", ref.abo)
    assert ours.abo[0] >= ref.abo[0] - 0.1, (ours.abo, ref.abo)
