"""FCRN family of Wu et al. 2016 §2.3 (tiny widths, small images)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torchvision

from instseg_lib.models import (
    FCRN,
    FCRNConfig,
    FCRNLocalization,
    ScaledResNet,
    field_of_view,
    predict_multiview,
    select_class_boxes,
)
from instseg_lib.models import backbones, weights

# Table 1 of the paper: (depth, resolution, kernel, dilation, printed FoV).
TABLE1 = [
    (50, 16, 3, 6, 208), (50, 8, 3, 6, 104), (50, 8, 3, 12, 200), (50, 8, 3, 18, 296),
    (50, 8, 5, 6, 200), (50, 8, 5, 12, 392), (50, 8, 7, 6, 296),
    (101, 16, 3, 6, 208), (101, 8, 3, 6, 104), (101, 8, 3, 12, 200), (101, 8, 3, 18, 296),
    (101, 8, 5, 6, 200), (101, 8, 5, 12, 392), (101, 8, 7, 6, 296),
]


@pytest.mark.parametrize("depth,stride,k,d,fov", TABLE1)
def test_field_of_view_matches_table1(depth, stride, k, d, fov):
    assert field_of_view(k, d, stride) == fov
    assert FCRNConfig(depth=depth, output_stride=stride, kernel=k, dilation=d).fov == fov


def test_field_of_view_table3_extra_rows():
    assert field_of_view(5, 18, 8) == 584 and field_of_view(7, 12, 8) == 584


def test_validate_rejects_bad_depth_and_large_fov():
    with pytest.raises(ValueError, match="depth"):
        FCRNConfig(depth=34).validate()
    with pytest.raises(ValueError, match="FoV 392"):
        FCRNConfig(kernel=5, dilation=12).validate(crop_size=321)
    assert FCRNConfig(kernel=3, dilation=6).validate(crop_size=321).fov == 104
    with pytest.raises(ValueError, match="depth"):
        FCRN(FCRNConfig(depth=18, width=4))


def test_width64_state_dict_matches_torchvision():
    ours = ScaledResNet(50, 64, 8).state_dict()
    ref = torchvision.models.resnet50().state_dict()
    ref = {k: v.shape for k, v in ref.items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in ours.items()} == ref


@pytest.mark.parametrize("depth,blocks", [(101, 23), (152, 36)])
def test_deeper_variants_keep_depth_at_small_width(depth, blocks):
    net = ScaledResNet(depth, width=4, output_stride=16)
    assert len(net.layer3) == blocks and net.out_channels == 128


@pytest.mark.parametrize("stride", [8, 16])
def test_forward_shapes_and_stride(stride):
    cfg = FCRNConfig(width=4, num_classes=3, output_stride=stride, kernel=3, dilation=1)
    model = FCRN(cfg).eval()
    x = torch.randn(2, 3, 32, 48)
    assert model.forward_features(x).shape[-2:] == (32 // stride, 48 // stride)
    assert model(x).shape == (2, 3, 32, 48)


def test_localization_head_channels_and_pixel_units():
    cfg = FCRNConfig(width=4, num_classes=4, kernel=3, dilation=1)
    model = FCRNLocalization(cfg).eval()
    x = torch.randn(1, 3, 32, 64)
    out = model(x)
    assert out.shape == (1, 12, 32, 64)  # 4 channels per foreground class (paper: 80 = 20x4)
    raw = torch.nn.functional.interpolate(model.forward_features(x), size=(32, 64), mode="bilinear")
    scale = torch.tensor([32.0, 64, 32, 64]).repeat(3).view(1, -1, 1, 1)
    torch.testing.assert_close(out, raw * scale)


def test_select_class_boxes():
    pred = torch.arange(2 * 12 * 2 * 2, dtype=torch.float).reshape(2, 12, 2, 2)
    labels = torch.tensor([[[1, 2], [3, 0]], [[3, 3], [2, 255]]])
    sel = select_class_boxes(pred, labels)
    assert sel.shape == (2, 4, 2, 2)
    torch.testing.assert_close(sel[0, :, 0, 1], pred[0, 4:8, 0, 1])
    torch.testing.assert_close(sel[1, :, 0, 0], pred[1, 8:12, 0, 0])


def test_mlp_classifier_and_dropout():
    cfg = FCRNConfig(width=4, num_classes=3, kernel=3, dilation=2, classifier="mlp", dropout=0.5)
    model = FCRN(cfg)
    x = torch.randn(1, 3, 32, 32)
    torch.manual_seed(0)
    a = model(x)
    b = model(x)
    assert not torch.allclose(a, b)  # dropout active in training
    model.eval()
    torch.testing.assert_close(model(x), model(x))


def test_channels_last_matches():
    model = FCRN(FCRNConfig(width=4, num_classes=3, dilation=2)).eval()
    x = torch.randn(2, 3, 32, 32)
    ref = model(x)
    model = model.to(memory_format=torch.channels_last)
    out = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


def test_training_step_backpropagates():
    model = FCRN(FCRNConfig(width=4, num_classes=3, dilation=2))
    x, y = torch.randn(2, 3, 32, 32), torch.randint(0, 3, (2, 32, 32))
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert model.backbone.conv1.weight.grad.abs().sum() > 0


def test_predict_multiview_averages_probabilities():
    model = FCRN(FCRNConfig(width=4, num_classes=3, dilation=2))
    model.train()
    x = torch.randn(1, 3, 32, 32)
    p = predict_multiview(model, x, scales=(0.75, 1.0), flip=True)
    assert p.shape == (1, 3, 32, 32)
    torch.testing.assert_close(p.sum(1), torch.ones(1, 32, 32))
    assert model.training  # mode restored
    single = predict_multiview(model, x, scales=(1.0,), flip=False)
    model.eval()
    torch.testing.assert_close(single, model(x).softmax(1))


def _fresh_weight_state(monkeypatch):
    monkeypatch.setattr(backbones, "_WARNED", set())
    monkeypatch.setattr(weights, "_FAILED", {})
    monkeypatch.delenv("INSTSEG_OFFLINE", raising=False)
    monkeypatch.delenv(weights.FALLBACK_ENV, raising=False)


def _unavailable(calls):
    def load(depth, timeout_s):
        calls.append(depth)
        e = weights.entry(f"resnet{depth}")
        raise weights.WeightsUnavailableError(e, weights.cache_dir() / e.filename, "network unreachable")

    return load


def test_pretrained_unavailable_stops_the_run(monkeypatch):
    """At width 64 weights that cannot be had are an error, not a silent random initialisation."""
    _fresh_weight_state(monkeypatch)
    monkeypatch.setattr(backbones, "_load_imagenet_state", _unavailable([]))
    with pytest.raises(weights.WeightsUnavailableError, match="network unreachable") as err:
        FCRN(FCRNConfig(width=64, num_classes=3, pretrained=True))
    assert weights.FALLBACK_ENV in str(err.value) and "resnet50-0676ba61.pth" in str(err.value)


def test_pretrained_unavailable_with_fallback_keeps_random_init_and_warns_once(monkeypatch):
    _fresh_weight_state(monkeypatch)
    monkeypatch.setenv(weights.FALLBACK_ENV, "standin")
    calls = []
    monkeypatch.setattr(backbones, "_load_imagenet_state", _unavailable(calls))
    cfg = FCRNConfig(width=64, num_classes=3, pretrained=True)
    with pytest.warns(RuntimeWarning, match="random initialisation"):
        model = FCRN(cfg)
    assert model.init_info["pretrained"] is False and "network unreachable" in model.init_info["reason"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second warning would raise
        again = FCRN(cfg)
    assert again.init_info["pretrained"] is False and calls == [50, 50]


def test_pretrained_loads_when_available(monkeypatch):
    _fresh_weight_state(monkeypatch)
    ref = torchvision.models.resnet50().state_dict()
    source = {"url": weights.entry("resnet50").url, "sha256": "0676ba61" + "0" * 56}
    monkeypatch.setattr(backbones, "_load_imagenet_state", lambda depth, timeout_s: (ref, source))
    model = FCRN(FCRNConfig(width=64, num_classes=3, pretrained=True))
    assert model.init_info["pretrained"] is True and model.init_info["url"] == source["url"]
    torch.testing.assert_close(model.backbone.conv1.weight, ref["conv1.weight"])


def test_pretrained_at_quarter_width_records_reason(monkeypatch):
    _fresh_weight_state(monkeypatch)
    with pytest.warns(RuntimeWarning, match="width 64 only"):
        model = FCRN(FCRNConfig(width=16, num_classes=3, pretrained=True))
    assert model.init_info["pretrained"] is False
