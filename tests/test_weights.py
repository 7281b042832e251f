"""The ImageNet weights registry: verified, cached downloads, offline use and the stand-in fallback.

No test touches the network: ``urlopen`` fails every test that reaches it, and the download
function is replaced by one that writes a fake weights file (a state dict with torchvision's
keys and shapes) and counts its calls.
"""

from __future__ import annotations

import hashlib
import io
import re
import urllib.error
import urllib.request
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torchvision

from instseg_lib import pretrain
from instseg_lib.experiments import Result
from instseg_lib.models import backbones, vgg, weights
from instseg_lib.models.backbones import ScaledResNet, load_imagenet_weights
from instseg_lib.models.vgg import VGGTrunk, load_vgg_imagenet_weights


_REAL_DOWNLOAD = weights._download


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """An empty torchvision cache, fresh per-process memos, no network, no fallback."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(weights.OFFLINE_ENV, raising=False)
    monkeypatch.delenv(weights.FALLBACK_ENV, raising=False)
    monkeypatch.setattr(weights, "_FAILED", {})
    monkeypatch.setattr(weights, "_HASHED", {})
    monkeypatch.setattr(backbones, "_WARNED", set())
    monkeypatch.setattr(vgg, "_WARNED", set())
    monkeypatch.setattr(pretrain, "_WARNED_FALLBACK", set())

    def no_network(*args, **kwargs):
        pytest.fail("a test tried to reach the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)


def _fake_weights(ctor) -> bytes:
    """A ``torch.save``d state dict with ``ctor()``'s keys and shapes, small on disk: small
    tensors random, large ones one number viewed at the full shape (stride 0)."""
    with torch.device("meta"):  # the shapes without allocating (VGG-16 has 138 M parameters)
        shapes = {k: (v.shape, v.dtype) for k, v in ctor().state_dict().items()}
    g = torch.Generator().manual_seed(0)
    state = {}
    for i, (k, (shape, dtype)) in enumerate(shapes.items()):
        if not dtype.is_floating_point:
            state[k] = torch.zeros(shape, dtype=dtype)
        elif shape.numel() < 1 << 20:
            state[k] = torch.randn(shape, generator=g)
        else:
            state[k] = torch.full((), float(i)).expand(shape)
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


class FakeServer:
    """Stands in for ``weights._download``: writes ``payload`` and counts the calls."""

    def __init__(self, payload: bytes) -> None:
        self.payload, self.calls = payload, []

    def __call__(self, url, out, timeout_s) -> None:
        self.calls.append(url)
        out.write(self.payload)


def _serve(monkeypatch, arch: str, ctor, payload: bytes | None = None) -> FakeServer:
    """Serve a fake file for ``arch`` and make the registry expect its hash."""
    payload = _fake_weights(ctor) if payload is None else payload
    prefix = hashlib.sha256(payload).hexdigest()[:8]
    monkeypatch.setitem(weights.IMAGENET_WEIGHTS, arch, replace(weights.IMAGENET_WEIGHTS[arch], sha256_prefix=prefix))
    server = FakeServer(payload)
    monkeypatch.setattr(weights, "_download", server)
    return server


def _no_partials(path: Path) -> bool:
    return not list(path.parent.glob("*.partial"))


# --------------------------------------------------------------------------- the registry
def test_registry_is_torchvision_s_urls_and_published_hash_prefixes():
    tv = {"resnet50": torchvision.models.ResNet50_Weights, "resnet101": torchvision.models.ResNet101_Weights,
          "resnet152": torchvision.models.ResNet152_Weights, "vgg16": torchvision.models.VGG16_Weights,
          "vgg16_bn": torchvision.models.VGG16_BN_Weights, "alexnet": torchvision.models.AlexNet_Weights}
    assert set(weights.IMAGENET_WEIGHTS) == set(tv) and set(pretrain.ARCHS) <= set(tv)
    for arch, enum in tv.items():
        e = weights.IMAGENET_WEIGHTS[arch]
        assert e.url == enum.IMAGENET1K_V1.url and e.torchvision == str(enum.IMAGENET1K_V1)
        # torch.hub's check_hash reads the prefix from the file name the same way
        assert e.sha256_prefix == torch.hub.HASH_REGEX.search(e.filename).group(1)
        assert re.fullmatch(r"[0-9a-f]{8}", e.sha256_prefix)


def test_cache_is_torchvision_s(tmp_path):
    path = weights.cache_path("resnet50")
    assert path == Path(torch.hub.get_dir()) / "checkpoints" / "resnet50-0676ba61.pth"
    assert path.is_relative_to(tmp_path / "torch")
    with pytest.raises(KeyError, match="vgg19"):
        weights.cache_path("vgg19")


# --------------------------------------------------------------------------- downloads
def test_a_good_download_is_verified_cached_and_loads_into_resnet50(monkeypatch):
    server = _serve(monkeypatch, "resnet50", torchvision.models.resnet50)
    net = ScaledResNet(50, 64)
    info = load_imagenet_weights(net, True)
    path = weights.cache_path("resnet50")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert server.calls == [weights.IMAGENET_WEIGHTS["resnet50"].url] and path.is_file() and _no_partials(path)
    assert info == {"pretrained": True, "weights": "ResNet50_Weights.IMAGENET1K_V1", "reason": "loaded",
                    "url": weights.IMAGENET_WEIGHTS["resnet50"].url, "sha256": digest}
    state = torch.load(path, weights_only=True)
    torch.testing.assert_close(net.conv1.weight, state["conv1.weight"])
    torch.testing.assert_close(net.layer4[0].conv2.weight, state["layer4.0.conv2.weight"])
    monkeypatch.setattr(weights, "_HASHED", {})  # a new process: the file is hashed again, not fetched
    assert load_imagenet_weights(ScaledResNet(50, 64), True)["sha256"] == digest and len(server.calls) == 1


def test_a_good_download_loads_into_vgg16(monkeypatch):
    server = _serve(monkeypatch, "vgg16", torchvision.models.vgg16)
    trunk = VGGTrunk("vgg16", 64)
    info = load_vgg_imagenet_weights(trunk, True)
    state = torch.load(weights.cache_path("vgg16"), weights_only=True)
    assert len(server.calls) == 1 and info["pretrained"] and info["url"].endswith("vgg16-397923af.pth")
    torch.testing.assert_close(trunk.features[0].weight, state["features.0.weight"])
    assert torch.all(trunk.fc6.weight == state["classifier.0.weight"][0, 0])  # the decimated fc6


def test_the_real_download_streams_the_response_into_the_cache(monkeypatch):
    payload = _fake_weights(torchvision.models.alexnet)
    _serve(monkeypatch, "alexnet", torchvision.models.alexnet, payload)
    monkeypatch.setattr(weights, "_download", _REAL_DOWNLOAD)  # the real one, on a mocked urlopen
    seen = []

    def urlopen(req, timeout):
        seen.append((req.full_url, timeout))
        return io.BytesIO(payload)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    w = weights.fetch("alexnet", timeout_s=3.0)
    assert seen == [(weights.IMAGENET_WEIGHTS["alexnet"].url, 3.0)] and w.path.read_bytes() == payload


def test_an_existing_torchvision_cache_is_used_offline(monkeypatch):
    """A file torchvision downloaded before (same path) is used, and INSTSEG_OFFLINE does not stop it."""
    server = _serve(monkeypatch, "resnet50", torchvision.models.resnet50)
    path = weights.cache_path("resnet50")
    path.parent.mkdir(parents=True)
    path.write_bytes(server.payload)
    monkeypatch.setenv(weights.OFFLINE_ENV, "1")
    assert load_imagenet_weights(ScaledResNet(50, 64), True)["pretrained"] is True and server.calls == []


def test_a_corrupt_cached_file_is_reported_and_fetched_again(monkeypatch):
    server = _serve(monkeypatch, "resnet50", torchvision.models.resnet50)
    path = weights.cache_path("resnet50")
    path.parent.mkdir(parents=True)
    path.write_bytes(server.payload[: len(server.payload) // 2])  # an interrupted copy
    with pytest.warns(weights.CorruptWeightsWarning, match=re.escape(str(path))):
        w = weights.fetch("resnet50")
    assert len(server.calls) == 1 and path.read_bytes() == server.payload and _no_partials(path)
    assert w.sha256 == hashlib.sha256(server.payload).hexdigest()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        weights.fetch("resnet50")  # now verified: no warning, no download
    assert len(server.calls) == 1


def test_a_download_with_the_wrong_hash_is_never_moved_into_place(monkeypatch):
    server = _serve(monkeypatch, "resnet50", torchvision.models.resnet50)
    server.payload = b"an error page, not weights"
    with pytest.raises(weights.WeightsUnavailableError, match="sha256"):
        weights.fetch("resnet50")
    path = weights.cache_path("resnet50")
    assert not path.exists() and _no_partials(path)


def test_a_failing_download_names_the_url_the_cache_path_and_the_ways_out(monkeypatch):
    calls = []

    def refused(req, timeout):
        calls.append(req.full_url)
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", refused)  # the real _download, a failing network
    e, path = weights.IMAGENET_WEIGHTS["resnet101"], weights.cache_path("resnet101")
    with pytest.raises(weights.WeightsUnavailableError) as err:
        load_imagenet_weights(ScaledResNet(101, 64), True)
    msg = str(err.value)
    assert e.url in msg and str(path) in msg and "Name or service not known" in msg
    assert "by hand" in msg and e.sha256_prefix in msg and f"{weights.FALLBACK_ENV}=standin" in msg
    assert err.value.url == e.url and err.value.path == path and calls == [e.url] and _no_partials(path)
    with pytest.raises(weights.WeightsUnavailableError, match="not retried"):
        weights.fetch("resnet101")
    assert calls == [e.url]  # a second model does not wait for the network again


def test_a_file_placed_by_hand_after_a_failure_is_picked_up(monkeypatch):
    server = _serve(monkeypatch, "resnet50", torchvision.models.resnet50)
    monkeypatch.setitem(weights._FAILED, "resnet50", "the download failed (URLError: offline)")
    path = weights.cache_path("resnet50")
    path.parent.mkdir(parents=True)
    path.write_bytes(server.payload)
    assert weights.fetch("resnet50").path == path and server.calls == []


def test_offline_with_nothing_cached_raises_without_calling_the_network(monkeypatch):
    server = _serve(monkeypatch, "vgg16", torchvision.models.vgg16, payload=b"unused")
    monkeypatch.setenv(weights.OFFLINE_ENV, "1")
    with pytest.raises(weights.WeightsUnavailableError, match="INSTSEG_OFFLINE") as err:
        load_vgg_imagenet_weights(VGGTrunk("vgg16", 64), True)
    assert str(weights.cache_path("vgg16")) in str(err.value) and server.calls == []
    monkeypatch.setenv(weights.OFFLINE_ENV, "0")  # "0" is not offline
    assert not weights.offline()


# --------------------------------------------------------------------------- initialise_backbone
def _fake_standin(monkeypatch) -> list:
    """``standin_state`` without a pretraining run: the backbone's own state and a made-up result."""
    calls = []

    def standin_state(cfg, device="cpu"):
        calls.append(cfg)
        net = ScaledResNet(cfg.depth, cfg.width)
        res = Result({"n_train": 10, "val_accuracy": 50.0, "n_classes": 3}, {}, {},
                     Path(f"{cfg.name}-000000000000.json"), True)
        return net.state_dict(), res

    def seg_standin_state(cfg, device="cpu"):  # the ResNets' segmentation stage, from its crop stage
        state, _ = standin_state(cfg.base, device)
        res = Result({"n_train": 10, "val_miou": 20.0, "base_val_accuracy": 50.0}, {}, {},
                     Path(f"{cfg.name}-000000000000.json"), True)
        return state, res

    monkeypatch.setattr(pretrain, "standin_state", standin_state)
    monkeypatch.setattr(pretrain, "seg_standin_state", seg_standin_state)
    return calls


def test_initialise_backbone_records_the_imagenet_file(monkeypatch):
    server = _serve(monkeypatch, "resnet50", torchvision.models.resnet50)
    standin = _fake_standin(monkeypatch)
    info = pretrain.initialise_backbone(ScaledResNet(50, 64), "smoke")
    assert info["init"] == "imagenet" and info["url"] == server.calls[0] and standin == []
    assert info["sha256"] == hashlib.sha256(server.payload).hexdigest()


def test_width_64_without_weights_stops_unless_the_fallback_is_asked_for(monkeypatch):
    standin = _fake_standin(monkeypatch)
    monkeypatch.setenv(weights.OFFLINE_ENV, "1")
    with pytest.raises(weights.WeightsUnavailableError, match="INSTSEG_INIT_FALLBACK=standin"):
        pretrain.initialise_backbone(ScaledResNet(50, 64), "smoke")
    assert standin == []
    monkeypatch.setenv(weights.FALLBACK_ENV, "standin")
    with pytest.warns(RuntimeWarning, match="stand-in pretraining instead"):
        info = pretrain.initialise_backbone(ScaledResNet(50, 64), "smoke")
    assert info["init"] == "stand-in" and info["weights"] == "standin-resnet50-w64-000000000000"
    assert "INSTSEG_OFFLINE" in info["imagenet_unavailable"] and weights.FALLBACK_ENV in info["reason"]
    assert [c.width for c in standin] == [64]


def test_an_unknown_fallback_value_is_refused(monkeypatch):
    monkeypatch.setenv(weights.FALLBACK_ENV, "yes")
    with pytest.raises(ValueError, match="standin"):
        weights.fallback_requested()


def test_width_16_never_touches_the_network(monkeypatch):
    standin = _fake_standin(monkeypatch)
    monkeypatch.setattr(weights, "fetch", lambda *a, **k: pytest.fail("width 16 looked for ImageNet weights"))
    info = pretrain.initialise_backbone(ScaledResNet(50, 16), "cpu")
    assert info["init"] == "stand-in" and "imagenet_unavailable" not in info and len(standin) == 1
    with pytest.warns(RuntimeWarning, match="width 64 only"):
        assert load_imagenet_weights(ScaledResNet(50, 16), True)["pretrained"] is False
    assert load_imagenet_weights(ScaledResNet(50, 64), False) == {"pretrained": False, "weights": None,
                                                                  "reason": "pretrained=False"}
