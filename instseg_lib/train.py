"""The one training loop: CPU, one GPU, or several processes under ``torchrun`` (DDP).

Kept flat in the manner of torchvision's ``references/segmentation``: a checkpoint dict
holds model, optimizer, scheduler and step, and is written atomically every
``checkpoint_every`` steps, so a run killed at any moment (even SIGKILL) resumes from its
last checkpoint and, on CPU, ends with the same weights as an uninterrupted run.

Determinism does not depend on carried RNG state: the data order of step ``s`` and the
random state of every sample's augmentation and of the forward pass are derived from
``(seed, s)`` alone. Under DDP each of the W ranks takes every W-th sample of the same
global batch and DDP averages the gradients, so W processes reproduce the 1-process run
of the same global batch (up to floating-point summation order).
"""

from __future__ import annotations

import inspect
import os
import signal
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, default_collate
from tqdm import tqdm

from .experiments import atomic_torch_save, load_checkpoint

#: Test hook: SIGKILL this process right after optimizer step N (proves resumption).
FAULT_ENV = "INSTSEG_FAULT_AFTER_STEP"


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; the paper configs embed one of these."""

    steps: int
    batch_size: int
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    #: "poly" learning-rate decay, (1 - step/steps)^power, as in DeepLab and Wu §3.
    poly_power: float = 0.9
    optimizer: str = "sgd"
    checkpoint_every: int = 100
    seed: int = 0
    channels_last: bool = False
    #: Linear warm-up from 10% of ``lr`` over this many steps, then the poly decay.
    warmup_steps: int = 0
    #: The run is stopped as diverged when the mean loss of the last 10 steps exceeds this
    #: multiple of the mean of its first 5 (0 disables the check; a non-finite loss always stops it).
    divergence_factor: float = 4.0
    #: Stop after this many steps without changing the schedule (a learning curve evaluates
    #: one run part way, then resumes it); ``None`` trains all ``steps``.
    stop_after: int | None = None
    #: Clip the gradient's global l2 norm to this (Arnab & Torr §3.5 clip their two CRFs'
    #: gradients, "a technique common in training RNNs"); ``None`` does not clip.
    max_grad_norm: float | None = None

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch_size must be positive: {self}")
        if self.warmup_steps < 0 or self.divergence_factor < 0:
            raise ValueError(f"warmup_steps and divergence_factor must be >= 0: {self}")
        if self.optimizer not in {"sgd", "adam"}:
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be positive or None, got {self.max_grad_norm!r}")


def progress_enabled() -> bool:
    """Progress bars are on unless ``INSTSEG_PROGRESS=0``.

    The headless executors (papermill for the book, nbval for the tests) set it to 0 so
    that notebook outputs are deterministic; interactive users see the bars.
    """
    return os.environ.get("INSTSEG_PROGRESS", "1") != "0"


# --------------------------------------------------------------------------- distributed
def world() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` outside ``torchrun``."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: str) -> tuple[int, int]:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    gloo on CPU, nccl on GPU. Returns ``(rank, world_size)``.
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size > 1 and dist.is_available() and not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend=backend)
        if device.startswith("cuda"):
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return world()


def is_main_process() -> bool:
    return world()[0] == 0


# --------------------------------------------------------------------------- sampling
def _mix(*xs: int) -> int:
    """A 63-bit seed from integers (splitmix-style), so nearby steps get unrelated seeds."""
    h = 0x9E3779B97F4A7C15
    for x in xs:
        h ^= (x + 0x9E3779B97F4A7C15 + (h << 6) + (h >> 2)) & 0xFFFFFFFFFFFFFFFF
        h = (h * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    return h & 0x7FFFFFFFFFFFFFFF


@lru_cache(maxsize=4)
def _epoch_order(seed: int, epoch: int, n: int) -> list[int]:
    g = torch.Generator().manual_seed(_mix(seed, epoch))
    return torch.randperm(n, generator=g).tolist()


def batch_indices(step: int, batch_size: int, n: int, seed: int) -> list[int]:
    """Dataset indices of global batch ``step``: epochs are seeded permutations of ``n``."""
    out = []
    for pos in range(step * batch_size, (step + 1) * batch_size):
        epoch, offset = divmod(pos, n)
        out.append(_epoch_order(seed, epoch, n)[offset])
    return out


def poly_lr_lambda(steps: int, power: float, warmup: int = 0) -> Callable[[int], float]:
    """Learning-rate factor of step ``s``: linear warm-up from 0.1 over ``warmup`` steps,
    then DeepLab's poly decay ``(1 - s/steps)^power``."""
    def factor(s: int) -> float:
        poly = max(0.0, 1.0 - s / steps) ** power
        if s < warmup:
            return poly * (0.1 + 0.9 * s / warmup)
        return poly
    return factor


class DivergedError(FloatingPointError):
    """Training stopped: the loss went non-finite or rose far above its start.

    The run's checkpoint is deleted and no result is cached; the message names the run.
    """


def check_divergence(history: Sequence[float], factor: float) -> str | None:
    """Why ``history`` counts as diverged, or ``None``.

    Diverged: the mean of the last 10 losses exceeds ``factor`` times the mean of the first
    5 (checked once 15 steps exist). SGD at lr 0.01 on the linear FCRN head took the loss
    from about 3 to 8-37 within 10 steps; this catches that, not ordinary noise.
    """
    if factor <= 0 or len(history) < 15:
        return None
    start = sum(history[:5]) / 5
    recent = sum(history[-10:]) / 10
    if recent > factor * max(start, 1e-8):
        return f"mean loss of the last 10 steps {recent:.3g} exceeds {factor:g} x the first 5 steps' {start:.3g}"
    return None


def make_optimizer(model: nn.Module, cfg: TrainConfig,
                   param_groups: Callable[[nn.Module], list[dict[str, Any]]] | None = None) -> torch.optim.Optimizer:
    """Adam or SGD over the trainable parameters, or over ``param_groups(model)``: groups with
    their own ``lr`` (Fathi §3.5 trains the shared trunk slower than the heads). The poly
    schedule scales every group's lr by the same factor."""
    if param_groups is None:
        params: Any = [p for p in model.parameters() if p.requires_grad]
    else:
        params = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in param_groups(model)]
        grouped = {id(p) for g in params for p in g["params"]}
        missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in grouped]
        if missing:
            raise ValueError(f"param_groups leaves {len(missing)} trainable parameters out of the optimiser "
                             f"(first: {missing[0]}); every trainable parameter needs a group")
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


#: ``INSTSEG_AMP=0`` turns bf16 autocast off on CUDA (a numerics check against fp32).
AMP_ENV = "INSTSEG_AMP"


def autocast_dtype(device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype of a training step on ``device``: bf16 on CUDA, none elsewhere.

    bf16 keeps fp32's exponent range, so unlike fp16 it needs no loss scaling, and it is what
    the gpu profile's throughput (and MFU) targets assume. It is a property of the device,
    not of the experiment: configs (and their cache hashes) do not change, and provenance
    records the device. CPU runs stay fp32, so the cpu book's numbers are unaffected.
    """
    dev = torch.device(device)
    if dev.type != "cuda" or os.environ.get(AMP_ENV, "1").strip() == "0":
        return None
    return torch.bfloat16


def _to_device(batch: Any, device: torch.device, channels_last: bool) -> Any:
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        if channels_last and batch.dim() == 4 and batch.is_floating_point():
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, dict):
        return {k: _to_device(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device, channels_last) for v in batch)
    return batch


# --------------------------------------------------------------------------- the loop
def _diverged(ckpt: Path | None, why: str) -> None:
    if ckpt is not None and ckpt.exists():
        ckpt.unlink()  # a resumed run would start from the diverged weights
    raise DivergedError(f"training diverged, config {why}. Nothing was cached; lower the learning rate "
                        "or lengthen the warm-up (TrainConfig.warmup_steps) and run again.")


def train(
    model: nn.Module,
    dataset: Dataset | Sequence[Any],
    loss_fn: Callable[[nn.Module, Any], torch.Tensor],
    cfg: TrainConfig,
    *,
    checkpoint_path: Path | str | None,
    device: str = "cpu",
    collate_fn: Callable[[list[Any]], Any] = default_collate,
    progress: bool | None = None,
    desc: str = "train",
    param_groups: Callable[[nn.Module], list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Train ``model`` in place for ``cfg.steps`` steps; return the loss history.

    ``loss_fn(model, batch)`` returns the mean loss of the (local) batch; a loss whose
    weights follow a schedule (Fathi's λ ramp) declares a keyword ``step`` and is called as
    ``loss_fn(model, batch, step=step)`` with the 0-based optimiser step, so a resumed run
    continues the schedule where it stopped. ``param_groups`` (see :func:`make_optimizer`)
    gives parameter groups their own learning rates. When
    ``checkpoint_path`` holds a checkpoint of this run, training resumes from it; a
    finished run's checkpoint makes this call return at once.
    """
    progress = progress_enabled() if progress is None else progress
    rank, size = init_distributed(device)
    if cfg.batch_size % size:
        raise ValueError(f"global batch {cfg.batch_size} does not split over {size} processes")
    dev = torch.device(device)
    model.to(dev)
    # channels_last on CUDA always (tensor cores want NHWC convolutions); on CPU as configured.
    channels_last = cfg.channels_last or dev.type == "cuda"
    if channels_last:
        model.to(memory_format=torch.channels_last)
    amp = autocast_dtype(dev)
    optimizer = make_optimizer(model, cfg, param_groups)
    takes_step = "step" in inspect.signature(loss_fn).parameters
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, poly_lr_lambda(cfg.steps, cfg.poly_power, cfg.warmup_steps))
    history: list[float] = []
    clipped = 0  # steps whose gradient norm was clipped (this call's steps)
    start = 0
    ckpt = Path(checkpoint_path) if checkpoint_path else None
    if ckpt is not None and ckpt.exists():
        state = load_checkpoint(ckpt, map_location=dev)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, history = int(state["step"]), list(state["history"])
    end = cfg.steps if cfg.stop_after is None else min(cfg.steps, cfg.stop_after)
    if start >= end:
        return {"losses": history, "resumed_from": start, "clipped_steps": 0,
                "amp": str(amp).removeprefix("torch.") if amp is not None else None}

    net: nn.Module = model
    if size > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)

    def save(step: int) -> None:
        if ckpt is not None and rank == 0:
            atomic_torch_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                               "scheduler": scheduler.state_dict(), "step": step,
                               "history": history, "train_config": cfg.__dict__}, ckpt)

    fault_at = int(os.environ.get(FAULT_ENV, "-1"))
    n = len(dataset)
    net.train()
    bar = tqdm(total=cfg.steps, initial=start, desc=desc, disable=not progress or rank != 0,
               dynamic_ncols=True, leave=False)
    for step in range(start, end):
        global_idx = batch_indices(step, cfg.batch_size, n, cfg.seed)
        samples = []
        for j in range(rank, cfg.batch_size, size):
            torch.manual_seed(_mix(cfg.seed, step, j, 1))  # this sample's augmentation
            samples.append(dataset[global_idx[j]])
        batch = _to_device(collate_fn(samples), dev, channels_last)
        torch.manual_seed(_mix(cfg.seed, step, rank, 2))  # dropout etc. in the forward pass
        with torch.autocast(dev.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
            loss = loss_fn(net, batch, step=step) if takes_step else loss_fn(net, batch)
        loss = loss.float()
        if not torch.isfinite(loss):
            _diverged(ckpt, f"{desc}: loss is {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.max_grad_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            clipped += int(float(norm) > cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        value = loss.detach()
        if size > 1:
            dist.all_reduce(value)
            value /= size
        history.append(float(value))
        why = check_divergence(history, cfg.divergence_factor)
        if why:
            _diverged(ckpt, f"{desc}: {why} at step {step}")
        bar.update(1)
        bar.set_postfix(loss=f"{history[-1]:.4f}", refresh=False)
        done = step + 1
        if done % cfg.checkpoint_every == 0 or done == end:
            save(done)
        if done == fault_at:
            os.kill(os.getpid(), signal.SIGKILL)
    bar.close()
    if size > 1:
        dist.barrier()
    return {"losses": history, "resumed_from": start, "clipped_steps": clipped,
            "amp": str(amp).removeprefix("torch.") if amp is not None else None}

