"""DeepLab-LargeFOV trunks of PFN §3.1 (VGG-16 and AlexNet), at tiny widths."""

from __future__ import annotations

import warnings

import pytest
import torch
import torchvision
from torch import nn

from instseg_lib.models import (
    DeepLabLargeFOV,
    VGGTrunk,
    field_of_view,
    largefov_dilation,
    receptive_field,
)
from instseg_lib.models import vgg, weights


@pytest.mark.parametrize("arch", ["vgg16", "alexnet"])
@pytest.mark.parametrize("width", [8, 16])
def test_output_stride_8_and_stream_shapes(arch, width):
    trunk = VGGTrunk(arch, width).eval()
    feats = trunk.forward_features(torch.randn(2, 3, 64, 48))
    assert tuple(feats) == trunk.streams
    for name, f in feats.items():
        s = trunk.stream_strides[name]
        assert f.shape == (2, trunk.stream_channels[name], 64 // s, 48 // s), name
    assert feats["fc7"].shape[1] == trunk.out_channels == 16 * width
    if arch == "vgg16":
        assert [trunk.stream_strides[n] for n in trunk.streams] == [1, 2, 4, 8, 8]
        assert [trunk.stream_channels[n] for n in trunk.streams] == [3, width, 2 * width, 4 * width, 16 * width]
    else:
        assert trunk.streams == ("input", "pool1", "pool2", "pool5", "fc7")
        assert [trunk.stream_strides[n] for n in trunk.streams] == [1, 8, 8, 8, 8]


def test_sizes_not_multiple_of_8_round_up():
    out = VGGTrunk("vgg16", 8).eval()(torch.randn(1, 3, 50, 33))
    assert out.shape[-2:] == (7, 5)  # ceil(50 / 8), ceil(33 / 8)


@pytest.mark.parametrize("arch", ["vgg16", "alexnet"])
def test_classification_form_shares_parameters(arch):
    """Stride 32 (stand-in pretraining) and stride 8 (DeepLab) are the same parameters."""
    a, b = VGGTrunk(arch, 8, output_stride=32), VGGTrunk(arch, 8, output_stride=8)
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}
    b.load_state_dict(a.state_dict(), strict=True)
    assert a(torch.randn(1, 3, 64, 64)).shape[-2:] == (2, 2)


def test_layout_is_deeplab_largefov():
    t = VGGTrunk("vgg16", 64)
    pools = [m for m in t.features if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride, p.padding) for p in pools] == [(3, 2, 1)] * 3 + [(3, 1, 1)] * 2
    convs = [m for m in t.features if isinstance(m, nn.Conv2d)]
    assert [c.dilation[0] for c in convs] == [1] * 10 + [2] * 3  # conv5 dilated 2
    assert (t.fc6.kernel_size, t.fc6.dilation, t.fc6.out_channels) == ((3, 3), (12, 12), 1024)
    assert (t.fc7.kernel_size, t.fc7.out_channels) == ((1, 1), 1024)
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    # torchvision's parameter names for the convolutions
    assert set(k for k in t.state_dict() if k.startswith("features.")) == \
        set(torchvision.models.vgg16().features.state_dict(prefix="features.").keys())


def test_field_of_view_and_receptive_field_numbers():
    t = VGGTrunk("vgg16", 8)
    # fc6 spans ((3-1)*12+1)*8 = 200 px (DeepLab's quoted 224 is VGG's 7x7 fc6 at stride 32)
    assert field_of_view(3, t.fc6_dilation, 8) == 200
    # 3x3 pools: pool3 = 51, pool5 = 227, fc6 adds 24 taps * 8 px
    assert receptive_field(t, "pool3") == 51 and receptive_field(t, "pool5") == 227
    assert receptive_field(t) == 227 + 24 * 8 == 419
    assert largefov_dilation(321) == 12 and largefov_dilation(112) == 4 and largefov_dilation(48) == 2
    assert largefov_dilation(5) == 1


@pytest.mark.parametrize("arch,size", [("vgg16", 272), ("alexnet", 256)])
def test_receptive_field_matches_gradient_support(arch, size):
    """The analytic receptive field equals the input support of one fc7 unit's gradient.

    Max pools route gradients to one input each, so for the measurement they are swapped for
    average pools of the same geometry (no parameters change), and all weights are positive
    so that every ReLU passes.
    """
    t = VGGTrunk(arch, 4, fc6_dilation=1, dropout=0.0).double()
    rf = receptive_field(t)
    for i, m in enumerate(t.features):
        if isinstance(m, nn.MaxPool2d):
            t.features[i] = nn.AvgPool2d(m.kernel_size, m.stride, m.padding, count_include_pad=True)
    with torch.no_grad():
        for p in t.parameters():
            p.fill_(0.05)
    x = torch.ones(1, 3, size, size, dtype=torch.float64, requires_grad=True)
    y = t(x)
    c = y.shape[-1] // 2
    y[0, 0, c, c].backward()
    rows = (x.grad[0].abs().sum((0, 2)) > 0).nonzero().flatten()
    cols = (x.grad[0].abs().sum((0, 1)) > 0).nonzero().flatten()
    assert 0 < rows[0] and rows[-1] < size - 1, "receptive field must lie inside the input"
    assert int(rows[-1] - rows[0] + 1) == rf == int(cols[-1] - cols[0] + 1)


def test_deeplab_largefov_logits():
    m = DeepLabLargeFOV(num_classes=5, width=8, fc6_dilation=2).eval()
    x = torch.randn(1, 3, 40, 56)
    assert m(x).shape == (1, 5, 40, 56) and m.forward_features(x).shape == (1, 5, 5, 7)
    assert m.init_info["pretrained"] is False
    with pytest.raises(ValueError):
        DeepLabLargeFOV(num_classes=1)


def test_invalid_arguments():
    for kw in ({"arch": "vgg19"}, {"output_stride": 4}, {"width": 0}, {"fc6_dilation": 0}, {"dropout": 1.0},
               {"arch": "alexnet", "batch_norm": True}):
        with pytest.raises(ValueError):
            VGGTrunk(**kw)
    with pytest.raises(KeyError):
        VGGTrunk("vgg16", 8).forward_features(torch.randn(1, 3, 16, 16), ("pool7",))


# --------------------------------------------------------------------------- ImageNet weights
def _fresh(monkeypatch):
    monkeypatch.setattr(vgg, "_WARNED", set())
    monkeypatch.setattr(weights, "_FAILED", {})
    monkeypatch.delenv("INSTSEG_OFFLINE", raising=False)
    monkeypatch.delenv(weights.FALLBACK_ENV, raising=False)


@pytest.mark.parametrize("arch,bn,ctor", [("vgg16", False, torchvision.models.vgg16),
                                          ("vgg16", True, torchvision.models.vgg16_bn),
                                          ("alexnet", False, torchvision.models.alexnet)])
def test_imagenet_mapping_decimates_fc_layers(monkeypatch, arch, bn, ctor):
    _fresh(monkeypatch)
    ref = ctor().state_dict()
    source = {"url": weights.entry(vgg._REGISTRY_ARCH[arch, bn]).url, "sha256": "0" * 64}
    monkeypatch.setattr(vgg, "_load_imagenet_state", lambda key, timeout_s: (ref, source))
    m = DeepLabLargeFOV(3, arch=arch, width=64, batch_norm=bn, pretrained=True)
    assert m.init_info["pretrained"] is True and "decimated" in m.init_info["weights"]
    assert m.init_info["url"] == source["url"]
    t = m.backbone
    torch.testing.assert_close(t.features[0].weight, ref["features.0.weight"])
    k6, k7 = vgg._TV_FC[arch]
    s = vgg._TV_FC6_SIZE[arch]
    w6 = ref[f"{k6}.weight"].reshape(4096, -1, s, s)
    last = s - 1
    torch.testing.assert_close(t.fc6.weight[1, :, 0, 2], w6[4, :, 0, last])  # unit 4, taps (0, last)
    torch.testing.assert_close(t.fc6.weight[2, :, 1, 1], w6[8, :, 3, 3])     # the centre tap
    torch.testing.assert_close(t.fc7.weight[3, 5, 0, 0], ref[f"{k7}.weight"][12, 20])
    torch.testing.assert_close(t.fc7.bias, ref[f"{k7}.bias"][::4])


def test_unavailable_stops_unless_the_fallback_is_asked_for(monkeypatch):
    _fresh(monkeypatch)
    calls = []

    def unavailable(key, timeout_s):
        calls.append(key)
        e = weights.entry(vgg._REGISTRY_ARCH[key])
        raise weights.WeightsUnavailableError(e, weights.cache_dir() / e.filename, "network unreachable")

    monkeypatch.setattr(vgg, "_load_imagenet_state", unavailable)
    with pytest.raises(weights.WeightsUnavailableError, match="network unreachable"):
        DeepLabLargeFOV(3, width=64, pretrained=True)
    monkeypatch.setenv(weights.FALLBACK_ENV, "standin")
    with pytest.warns(RuntimeWarning, match="random initialisation"):
        m = DeepLabLargeFOV(3, width=64, pretrained=True)
    assert m.init_info["pretrained"] is False and "network unreachable" in m.init_info["reason"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = DeepLabLargeFOV(3, width=64, pretrained=True)
    assert again.init_info["pretrained"] is False and calls == [("vgg16", False)] * 3


def test_offline_env_and_quarter_width_need_no_network(monkeypatch, tmp_path):
    _fresh(monkeypatch)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache
    monkeypatch.setattr(weights, "_download", lambda *a: pytest.fail("must not try to download"))
    monkeypatch.setenv("INSTSEG_OFFLINE", "1")
    with pytest.raises(weights.WeightsUnavailableError, match="INSTSEG_OFFLINE"):
        DeepLabLargeFOV(3, width=64, pretrained=True)
    with pytest.warns(RuntimeWarning, match="width 64 only"):
        assert DeepLabLargeFOV(3, width=16, pretrained=True).init_info["pretrained"] is False


# --------------------------------------------------------------------------- stand-in pretraining
def test_resnet_pretraining_hashes_unchanged_by_the_vgg_entries():
    """Adding the PFN trunks to ARCHS and the profiles must not rename cached ResNet stand-ins."""
    from instseg_lib.experiments import config_hash
    from instseg_lib.pretrain import ARCHS, init_key, pretrain_config

    assert {"vgg16", "alexnet"} <= set(ARCHS)
    assert {a: config_hash(pretrain_config("cpu", a)) for a in ("resnet50", "resnet101", "resnet152")} == {
        "resnet50": "1d12e1d6cb6d", "resnet101": "4fb25e155bec", "resnet152": "cabf737a71b3"}
    assert config_hash(pretrain_config("smoke", "resnet50")) == "3916916d149e"
    assert pretrain_config("cpu", "vgg16").steps == 1500 and pretrain_config("smoke", "vgg16").steps == 3
    assert init_key("cpu", "vgg16").startswith("standin-seg-vgg16-w16-")  # the stage that names its crop stage
    assert init_key("cpu", 50) == init_key("cpu", "resnet50")


@pytest.mark.slow
def test_standin_pretraining_of_vgg16_initialises_the_deeplab_trunk(tmp_path, monkeypatch):
    from instseg_lib import pretrain

    monkeypatch.setenv("INSTSEG_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("INSTSEG_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("INSTSEG_PROGRESS", "0")
    cfg = pretrain.pretrain_config("smoke", "vgg16")
    res = pretrain.run_pretraining(cfg)
    assert not res.cached and 0 <= res.metrics["val_accuracy"] <= 100 and len(res.metrics["losses"]) == 3
    trunk = VGGTrunk("vgg16", 8, output_stride=8, fc6_dilation=largefov_dilation(48))
    before = trunk.fc6.weight.clone()
    from dataclasses import replace as dc_replace

    from instseg_lib.profiles import get_profile

    p = get_profile("smoke")  # the crop stage alone (the segmentation stage has its own test)
    info = pretrain.initialise_backbone(trunk, dc_replace(p, extra={k: v for k, v in p.extra.items()
                                                                   if k != "pretrain_seg_steps"}))
    assert info["init"] == "stand-in" and res.path.stem in info["weights"]
    state, _ = pretrain.standin_state(cfg)
    assert torch.equal(trunk.fc6.weight, state["fc6.weight"]) and not torch.equal(before, trunk.fc6.weight)
