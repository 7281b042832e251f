"""Every figure of the book carries a caption, and a legend where colours stand for classes.

The recipes' figures run on the smoke twin with stand-in nets (no training); a scan of the
library's source makes sure no figure-making function escapes these tests.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from instseg_lib.data import generate  # noqa: E402
from instseg_lib.data.classes import CITYSCAPES_CLASSES, VOC_CLASSES  # noqa: E402
from instseg_lib.paths import REPO_ROOT  # noqa: E402
from instseg_lib.viz import (add_caption, colorize_instances, colorize_labels, figure_caption,  # noqa: E402
                             figure_legend_labels, image_grid)

LIB = REPO_ROOT / "instseg_lib"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def smoke_twin(tmp_path_factory):
    root = tmp_path_factory.mktemp("figs")
    mp = pytest.MonkeyPatch()
    mp.setenv("INSTSEG_DATA", str(root / "data"))
    mp.setenv("INSTSEG_RESULTS", str(root / "results"))
    mp.setenv("INSTSEG_PROGRESS", "0")
    for preset in ("voc", "cityscapes"):
        generate(preset, "smoke", root / "data" / "smoke" / preset, workers=1)
    yield root
    mp.undo()


def _caption(fig) -> str:
    cap = figure_caption(fig)
    assert cap and len(cap) > 40, f"figure without a caption: {fig.axes[0].get_title() if fig.axes else fig}"
    return cap


# --------------------------------------------------------------------------- the mechanism
def test_add_caption_keeps_the_axes_in_inches_and_reads_back():
    fig, ax = plt.subplots(figsize=(4, 3))
    fig.suptitle("title")
    fig.tight_layout()
    w, h = fig.get_size_inches()
    before = ax.get_position().bounds
    text = "A caption long enough to wrap over more than one line of the figure, " * 3
    add_caption(fig, text.strip())
    W, H = fig.get_size_inches()
    after = ax.get_position().bounds
    assert W == w and H > h
    assert after[3] * H == pytest.approx(before[3] * h)  # same height in inches
    assert (1 - after[1] - after[3]) * H == pytest.approx((1 - before[1] - before[3]) * h)  # same top margin
    assert figure_caption(fig) == text.strip()
    assert figure_legend_labels(fig) == []
    with pytest.raises(ValueError):
        add_caption(fig, "  ")


def test_image_grid_names_the_classes_it_is_given_and_not_instance_colours():
    lab = np.zeros((20, 30), int)
    lab[2:8, 2:8], lab[10:18, 5:25] = 15, 12
    inst = np.zeros((20, 30), int)
    inst[2:8, 2:8] = 1
    img = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    fig = image_grid([[img, colorize_labels(lab), colorize_instances(inst)]], ["image", "ground truth", "instances"],
                     class_names=VOC_CLASSES)
    assert figure_legend_labels(fig) == ["background", "dog", "person"]
    assert "legend names the classes" in _caption(fig)
    # Without class names (and no twin named in the titles) ids are all the legend can say.
    fig = image_grid([[img, colorize_labels(lab)]], ["image", "prediction"])
    assert figure_legend_labels(fig) == ["class 0", "class 12", "class 15"]
    # An empty instance map is "no instance", not the class "background".
    fig = image_grid([[img, colorize_instances(np.zeros((20, 30), int))]], ["image", "instances"],
                     class_names=VOC_CLASSES)
    assert figure_legend_labels(fig) == []
    assert any("no instance" in t.get_text() for t in fig.axes[1].texts)


# --------------------------------------------------------------------------- the data and metrics pages
def test_data_twin_figures_are_captioned_and_the_class_map_has_a_legend(smoke_twin):
    from instseg_lib import figures
    from instseg_lib.data import open_dataset
    from instseg_lib.data.calibration import VOC2012_TARGETS
    from instseg_lib.data.stats import compare_per_class, twin_statistics

    for name, names in (("voc", VOC_CLASSES), ("cityscapes", CITYSCAPES_CLASSES)):
        fig = figures.preset_figure(name, "smoke", index=1)
        s = open_dataset(name, "train", profile="smoke")[1]
        assert s.image_id in _caption(fig) and name in _caption(fig)
        assert set(figure_legend_labels(fig)) == {"void" if k == 255 else names[k] for k in np.unique(s.semantic)}
        assert len(fig.axes[3].patches) == len(s.boxes)
    twin = twin_statistics(n=2, image_size=64, split="val")
    for fig in (figures.calibration_per_class_figure(compare_per_class(twin, VOC2012_TARGETS), n_images=2),
                figures.calibration_quantiles_figure(VOC2012_TARGETS, twin, twin, 64),
                figures.class_looks_figure(n=2)):
        _caption(fig)


def test_how_we_measure_figures_are_captioned_and_name_the_toy_classes():
    from instseg_lib import figures
    from instseg_lib.metrics.compare import protocol_report
    from instseg_lib.metrics.toy import make_toy_images

    images = make_toy_images(3, 32, n_classes=4, seed=0)
    fig = figures.toy_image_figure(images[0], 4)
    _caption(fig)
    shown = [int(k) for k in np.unique(images[0].semantic_gt)]
    names = figures.toy_class_names(4)
    assert figure_legend_labels(fig) == [names[k] if k != 255 else "void" for k in shown]
    report = protocol_report(images, 4)
    for fig in (figures.ap_variants_figure(report), figures.trimap_figure(report)):
        _caption(fig)


# --------------------------------------------------------------------------- the recipes
class _Result:
    def __init__(self, curve):
        self.metrics = {"loss_curve": curve}


def test_loss_curves_figure_is_captioned_with_the_entropy_line_or_without(monkeypatch):
    from instseg_lib.recipes import common

    monkeypatch.setattr(common, "class_prior_entropy", lambda dataset, profile: 1.234)
    results = {"a": _Result([[1, 3.0], [10, 1.0]]), "b": _Result([[1, 2.5], [10, 2.0]]), "c": _Result([])}
    fig = common.loss_curves_figure(results, "voc", "smoke")
    cap = _caption(fig)
    assert "1.234 nats" in cap and "2 runs" in cap and "1 run(s) without a recorded curve" in cap
    fig = common.loss_curves_figure(results, "voc", "smoke", prior_entropy=False)
    assert "no class prior" in _caption(fig)
    assert "my words" == figure_caption(common.loss_curves_figure(results, "voc", "smoke", caption="my words"))


class _StubSemantic(torch.nn.Module):
    """Class 15 (person) on the left half of every image, background elsewhere."""

    def __init__(self, num_classes: int = 21):
        super().__init__()
        self.num_classes = num_classes

    def forward(self, x):
        out = torch.zeros(x.shape[0], self.num_classes, *x.shape[-2:])
        out[:, 0] = 1.0
        out[:, 15, :, : x.shape[-1] // 2] = 5.0
        return out


class _StubLocalization(torch.nn.Module):
    """Every pixel votes for a 6x6 box centred on itself."""

    def forward(self, x):
        out = torch.zeros(x.shape[0], 4 * 20, *x.shape[-2:])
        out[:, 2::4] = 6.0
        out[:, 3::4] = 6.0
        return out


@pytest.fixture
def stub_nets(smoke_twin, monkeypatch):
    from instseg_lib.recipes import wu2016 as wu

    monkeypatch.setattr(wu, "load_semantic_model", lambda cfg, device="cpu": _StubSemantic().eval())
    monkeypatch.setattr(wu, "load_localization_model", lambda cfg, device="cpu": _StubLocalization().eval())
    return wu


def test_wu2016_figures_are_captioned_author_year_with_legends(stub_nets, monkeypatch):
    from instseg_lib import viz

    wu = stub_nets
    # The recipes pass the twin's class names: no guessing from the titles.
    monkeypatch.setattr(viz, "guess_class_names", lambda texts: None)
    sem = wu.semantic_config("smoke", "voc", 50, 16, 3, 6)
    fig = wu.semantic_examples(sem, n=2)
    cap = _caption(fig)
    assert cap.startswith("Wu et al. 2016, Figs. 2-4") and sem.name in cap and "wu2016" not in cap
    assert "person" in figure_legend_labels(fig)  # the stand-in net's prediction, named
    cs = wu.semantic_config("smoke", "cityscapes", 50, 16, 3, 6)
    labels = figure_legend_labels(wu.semantic_examples(cs, n=1))
    assert "bus" in labels and set(labels) <= set(CITYSCAPES_CLASSES) | {"void"}  # train id 15, by Cityscapes' name

    inst = wu.InstanceConfig(wu.localization_config("smoke", 50), sem, n_eval=1)
    fig = wu.instance_examples(inst, n=1)
    assert _caption(fig).startswith("Wu et al. 2016, Fig. 5")
    assert figure_legend_labels(fig) == []  # instance maps: random colours, no classes to name
    for cfg in (inst, wu.InstanceConfig(wu.localization_config("smoke", 50), None, n_eval=1)):
        fig = wu.pipeline_figure(cfg, index=0)
        cap = _caption(fig)
        assert cap.startswith("Wu et al. 2016, Fig. 1") and cfg.localization.name in cap
        assert ("§3.2 pilot" in cap) == (cfg.semantic is None)
        labels = figure_legend_labels(fig)
        assert labels[0] == "a pixel's voted box centre" and labels[1].startswith("box of a detected")


@pytest.fixture()
def default_smoke_paths(monkeypatch):
    """The repository's smoke twin and results (``make test`` generates the twin), not the
    module fixture's two-preset copy: these recipes read the SBD and COCO twins too."""
    monkeypatch.delenv("INSTSEG_DATA", raising=False)
    monkeypatch.delenv("INSTSEG_RESULTS", raising=False)
    monkeypatch.setenv("INSTSEG_PROGRESS", "0")


def _axes_legend(fig, k: int = 0) -> list[str]:
    lg = fig.axes[k].get_legend()
    return [t.get_text() for t in lg.get_texts()] if lg is not None else []


def _smoke_or_skip(fn):
    from instseg_lib.data.errors import MissingDatasetError

    try:
        return fn()
    except MissingDatasetError as exc:  # pragma: no cover - make test generates the smoke twin first
        pytest.skip(str(exc))


def test_fathi2017_figures_are_captioned_author_year(default_smoke_paths):
    from instseg_lib.recipes import fathi2017 as fathi

    runs = _smoke_or_skip(lambda: fathi.evaluations("smoke"))
    fig = fathi.overview_figure("smoke", index=0)
    cap = _caption(fig)
    assert cap.startswith("Fathi et al. Figs. 3-7") and "σ (Eq. 1)" in cap
    assert [a.get_title().split(":")[0] for a in fig.axes][3:] == ["Fig. 3", "Fig. 4", "Fig. 5", "Fig. 6", "Fig. 7"]
    assert "λ" in _caption(fathi.loss_figure("smoke"))
    assert _axes_legend(fathi.loss_figure("smoke"))[-1] == "λ (right axis)"
    fig = fathi.per_class_figure(runs[0], "0.5")
    assert "Table 1 'Ours' row" in _caption(fig) and "spindly" in _caption(fig)
    assert _axes_legend(fig) == ["paper (VOC 2012 val)", "ours (VOC twin val)"]
    fig = fathi.recall_figure(runs)
    assert "Table 3" in _caption(fig)
    assert _axes_legend(fig)[0] == "paper" and len(_axes_legend(fig)) == 1 + len(runs)
    assert "AR" in _caption(fathi.recall_iou_figure(runs))


def test_dai2015_figures_are_captioned_author_year(default_smoke_paths):
    from instseg_lib.recipes import dai2015 as boxsup

    t1 = _smoke_or_skip(lambda: boxsup.run_table(boxsup.table1_configs("smoke")))
    fig = boxsup.label_miou_figure(t1)
    assert _caption(fig).startswith("Dai et al. 2015, Fig. 3 as numbers")
    assert set(_axes_legend(fig)) <= set(t1) and "voc-box" in _axes_legend(fig)
    fig = boxsup.label_rounds_figure(boxsup.table1_configs("smoke")["voc-box"], items=(0,))
    assert _caption(fig).startswith("Dai et al. 2015, Fig. 3 on the VOC twin")
    fig = boxsup.trimap_figure(boxsup.trimap_results("smoke"))
    cap = _caption(fig)
    assert cap.startswith("Dai et al. 2015, Fig. 4 (bottom) on the VOC twin") and "void pixels" in cap
    assert _axes_legend(fig) == ["VOC masks only: interior", "VOC masks only: boundary",
                                 "VOC masks + COCO boxes: interior", "VOC masks + COCO boxes: boundary"]


def test_arnab2017_figures_are_captioned_author_year(default_smoke_paths):
    from instseg_lib.recipes import arnab2017 as arnab

    cfg = arnab.train_config("smoke", "voc", "box+global+shape", "e2e")
    _smoke_or_skip(lambda: arnab.run_train(cfg))
    fig = arnab.pipeline_figure(cfg)
    cap = _caption(fig)
    assert cap.startswith("Arnab & Torr 2017, Fig. 2") and cfg.name in cap
    assert [a.get_title() for a in fig.axes][2:5] == ["ψ_Box, label 1", "ψ_Global, label 1", "ψ_Shape, label 1"]
    assert figure_legend_labels(fig)[-1] == "detection box"
    fig = arnab.matched_gt_figure(cfg)
    assert _caption(fig).startswith("Arnab & Torr 2017, Fig. 6") and "box-IoU" in _caption(fig)
    fig = arnab.loss_figure({"box+global+shape-e2e": cfg})
    assert "matched ground truth" in _caption(fig) and _axes_legend(fig) == ["box+global+shape-e2e"]
    res = arnab.run_sweep(arnab.sweep_config("smoke"))
    fig = arnab.sweep_figure(res)
    assert "not in Arnab & Torr 2017" in _caption(fig)
    assert _axes_legend(fig) == ["dynamic instance CRF (end to end)", "paste the box"]
    for case, spec in arnab.FIGURE_CASES.items():
        for rid in spec["models"]:
            terms, regime = rid.rsplit("-", 1)
            arnab.run_train(arnab.train_config("smoke", "voc", terms, regime))
        fig = arnab.case_figure("smoke", case)
        assert _caption(fig).startswith(f"Arnab & Torr 2017, {spec['title']}")
        assert [a.get_title() for a in fig.axes][1:3] == ["ground truth", "paste the box"]
    with pytest.raises(ValueError, match="case must be one of"):
        arnab.case_figure("smoke", "fig9")
    from instseg_lib.data import open_dataset

    val = open_dataset("voc", "val", profile="smoke")
    picks = [arnab.case_index(val, c) for c in arnab.FIGURE_CASES]
    assert picks[0] != picks[1]
    overlapping = [i for i in range(len(val)) if arnab._overlapping_same_class(val[i])]
    # Fig. 5 takes an image with overlapping same-class boxes whenever the set has one
    assert (picks[2] in overlapping) == bool(overlapping)


def test_liang2015_pipeline_figure_is_captioned_with_a_class_legend(default_smoke_paths):
    from instseg_lib.recipes import liang2015 as pfn

    _smoke_or_skip(lambda: pfn.run_eval(pfn.eval_config("smoke")))
    fig = pfn.pipeline_figure("smoke", index=0)
    cap = _caption(fig)
    assert cap.startswith("Liang et al. 2015, Fig. 1 on VOC twin val image") and "dense CRF" in cap
    assert [a.get_title() for a in fig.axes][:3] == ["image", "category map (CRF)", "predicted centres"]
    labels = figure_legend_labels(fig)
    assert labels and set(labels) <= set(VOC_CLASSES)  # the classes of the category map


def test_liang2015_section33_and_failure_figures_are_captioned_with_class_legends(default_smoke_paths):
    """Figs. 4, 5 and 7 on the smoke twin: author-year captions, the images named by the rule's
    pick, numbers computed (the caption's counts match the figure's panels), class legends."""
    from instseg_lib.data import open_dataset
    from instseg_lib.recipes import liang2015 as pfn

    _smoke_or_skip(lambda: pfn.run_train(pfn.eval_config("smoke").train))
    cfg = pfn.eval_config("smoke")
    val, preds = pfn._eval_predictions(cfg)
    fig = pfn.refinement_figure("smoke")
    cap = _caption(fig)
    assert cap.startswith("Liang et al. 2015, Fig. 4 (§3.3) on the VOC twin") and "τ = 0.5" in cap
    cases = pfn.refinement_cases(val, preds)
    shown = [v for v in cases.values() if v is not None] or [(0, "predicted")]
    assert len(fig.axes) >= 5 * len(shown)
    for r, (i, _) in enumerate(shown):
        assert fig.axes[5 * r].get_title() == f"image {val[i].image_id}"
    for k, v in cases.items():
        assert (v is None) == ("No image is changed by" in cap and f"'{k}'" in cap.split("No image is changed by")[-1])
    labels = figure_legend_labels(fig)
    assert labels and set(labels) <= set(VOC_CLASSES)

    fig = pfn.size_constraint_figure("smoke")
    cap = _caption(fig)
    assert cap.startswith("Liang et al. 2015, Fig. 5 (§3.3)") and "0.1%" in cap
    sizes = pfn.cluster_sizes(cfg, val, preds)
    index, drops = pfn.size_constraint_case(sizes)
    assert fig.axes[0].get_title() == f"image {val[0 if index is None else index].image_id}"
    assert (f"drops none of the {len(sizes.image)} clusters" in cap) == (index is not None and not drops)
    assert fig.axes[4].get_xscale() == "log" and fig.axes[4].get_title().startswith(f"{len(sizes.image)} clusters")
    assert figure_legend_labels(fig) and set(figure_legend_labels(fig)) <= set(VOC_CLASSES)

    fig = pfn.failure_cases_figure("smoke")
    cap = _caption(fig)
    assert cap.startswith("Liang et al. 2015, Fig. 7 (failure cases) on the VOC twin")
    picks = pfn.failure_cases(open_dataset("voc", "val", profile="smoke"), len(preds))
    assert [fig.axes[k].get_title() for k in (0, 4)] == [f"image {val[i].image_id}" for i in picks.values()]
    for k in (1, 5):
        i = picks["occlusion" if k == 1 else "small"]
        assert fig.axes[k].get_title() == f"ground truth: {val[i].num_instances} instance" + \
            ("" if val[i].num_instances == 1 else "s")
    assert figure_legend_labels(fig) and set(figure_legend_labels(fig)) <= set(VOC_CLASSES)


# --------------------------------------------------------------------------- nothing escapes
#: Every library function that makes a figure, and the test above that checks its caption.
CAPTIONED = {
    "viz.image_grid", "figures.preset_figure", "figures.calibration_per_class_figure",
    "figures.calibration_quantiles_figure", "figures.class_looks_figure", "figures.toy_image_figure",
    "figures.ap_variants_figure", "figures.trimap_figure", "recipes.common.loss_curves_figure",
    "recipes.wu2016.semantic_examples", "recipes.wu2016.instance_examples", "recipes.wu2016.pipeline_figure",
    "recipes.fathi2017.overview_figure", "recipes.fathi2017.loss_figure", "recipes.fathi2017.per_class_figure",
    "recipes.fathi2017.recall_figure", "recipes.fathi2017.recall_iou_figure",
    "recipes.dai2015.label_miou_figure", "recipes.dai2015.label_rounds_figure", "recipes.dai2015.trimap_figure",
    "recipes.arnab2017.pipeline_figure", "recipes.arnab2017.matched_gt_figure", "recipes.arnab2017.loss_figure",
    "recipes.arnab2017.sweep_figure", "recipes.arnab2017.case_figure",
    "recipes.liang2015.pipeline_figure", "recipes.liang2015.refinement_figure",
    "recipes.liang2015.size_constraint_figure", "recipes.liang2015.failure_cases_figure",
}
#: Figures captioned another way, and how.
CAPTIONED_ELSEWHERE = {
    # show_comparison displays trend_caption's HTML paragraph (typeset math) right under it.
    "papers.render.trend_figure": "papers.render.trend_caption",
}
_MAKERS = {"subplots", "figure", "subplot_mosaic", "image_grid"}


def _figure_makers() -> set[str]:
    """``module.function`` of every library function that creates a figure (or an image grid)."""
    found = set()
    for path in LIB.rglob("*.py"):
        mod = ".".join(path.relative_to(LIB).with_suffix("").parts)
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Call):
                    f = node.func
                    name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                    base = getattr(f.value, "id", "") if isinstance(f, ast.Attribute) else ""
                    if (name in {"subplots", "figure", "subplot_mosaic"} and base == "plt") or name == "image_grid":
                        found.add(f"{mod}.{fn.name}")
    return found


def test_every_figure_making_function_is_covered_by_a_caption_test():
    makers = _figure_makers()
    assert "recipes.wu2016.pipeline_figure" in makers and "viz.image_grid" in makers  # the scan sees them
    missing = makers - CAPTIONED - set(CAPTIONED_ELSEWHERE)
    assert not missing, f"figure functions without a caption test here: {sorted(missing)}"
    from instseg_lib.papers import render

    assert all(hasattr(render, v.rsplit(".", 1)[1]) for v in CAPTIONED_ELSEWHERE.values())


def test_notebooks_draw_no_figures_themselves():
    """Figures come from the library (captioned there); a notebook only calls and shows them."""
    for nb_path in sorted((REPO_ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        for needle in ("plt.subplots", "plt.figure", ".imshow(", ".plot(", ".plot.", ".bar("):
            assert needle not in code, f"{nb_path.name} draws a figure itself ({needle})"


def test_trend_figure_is_titled_and_captioned_author_year():
    from instseg_lib.papers import TABLES
    from instseg_lib.papers.render import trend_caption, trend_data, trend_figure

    t = TABLES["wu2016.table1"]
    ours = {r.id: {"Mean IoU %": float(i)} for i, r in enumerate(t.rows) if r.ours}
    data = trend_data(t, ours)
    fig = trend_figure(t, data, "smoke")
    assert fig._suptitle.get_text().startswith("Wu et al. 2016, Table 1")
    assert trend_caption(t, data, None).text.startswith("Trend view of Wu et al. 2016, Table 1.")


def test_library_source_names_figures_and_tables_author_year():
    """No caption built from a paper key (``{table.paper} Table``)."""
    for path in LIB.rglob("*.py"):
        text = path.read_text()
        assert "{table.paper} Table" not in text and "{t.paper} Table" not in text, path
    assert Path(LIB / "papers" / "__init__.py").exists()
