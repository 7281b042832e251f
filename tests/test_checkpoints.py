"""Checkpoints load with weights_only=True: a pickle payload in a shared cache is refused."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from instseg_lib.experiments import CheckpointError, atomic_torch_save, load_checkpoint
from instseg_lib.train import TrainConfig, train


class _Payload:
    """Unpickling this calls ``_ran`` (a stand-in for os.system): it must never happen."""

    def __reduce__(self):
        return (_ran, ("payload executed",))


RAN: list[str] = []


def _ran(msg: str) -> str:
    RAN.append(msg)
    return msg


def _toy():
    torch.manual_seed(0)
    model = nn.Conv2d(3, 2, 1)
    data = [(torch.rand(3, 4, 4), torch.randint(0, 2, (4, 4))) for _ in range(4)]

    def loss_fn(net, batch):
        x, y = batch
        return nn.functional.cross_entropy(net(x), y)

    return model, data, loss_fn


def test_train_checkpoint_loads_with_weights_only(tmp_path):
    """What train() stores (state dicts, step, loss floats, the config as a dict) is all plain."""
    model, data, loss_fn = _toy()
    ckpt = tmp_path / "run.pt"
    cfg = TrainConfig(steps=3, batch_size=2, checkpoint_every=2)
    train(model, data, loss_fn, cfg, checkpoint_path=ckpt, progress=False)
    state = load_checkpoint(ckpt)
    assert state["step"] == 3 and len(state["history"]) == 3 and state["train_config"]["steps"] == 3
    # a finished run's checkpoint resumes (returns at once) through the same safe loader
    assert train(model, data, loss_fn, cfg, checkpoint_path=ckpt, progress=False)["resumed_from"] == 3


def test_pickle_payload_is_refused_and_never_runs(tmp_path):
    model, data, loss_fn = _toy()
    evil = tmp_path / "evil.pt"
    atomic_torch_save({"model": model.state_dict(), "optimizer": {}, "scheduler": {}, "step": 1,
                       "history": [0.5], "train_config": _Payload()}, evil)
    RAN.clear()
    with pytest.raises(CheckpointError, match=rf"{evil}: refused to load this checkpoint.*Delete the file"):
        load_checkpoint(evil)
    with pytest.raises(CheckpointError, match=str(evil)):  # resuming from it is refused too
        train(model, data, loss_fn, TrainConfig(steps=3, batch_size=2), checkpoint_path=evil, progress=False)
    assert RAN == []
    # the payload is real: the unsafe load would have run it
    torch.load(evil, weights_only=False)
    assert RAN == ["payload executed"]


def test_damaged_checkpoint_names_the_file(tmp_path):
    model, _, _ = _toy()
    p = tmp_path / "cut.pt"
    buf = io.BytesIO()
    torch.save({"model": model.state_dict()}, buf)
    p.write_bytes(buf.getvalue()[:100])
    with pytest.raises(CheckpointError, match=rf"{p}: cannot read this checkpoint.*delete it"):
        load_checkpoint(p)
    p.write_bytes(b"")
    with pytest.raises(CheckpointError, match=str(p)):
        load_checkpoint(p)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "absent.pt")
