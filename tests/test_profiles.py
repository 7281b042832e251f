"""The gpu profile without CUDA: read freely, refused where work starts, unless overridden."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from instseg_lib import book
from instseg_lib import experiments as ex
from instseg_lib import profiles
from instseg_lib.profiles import ALLOW_GPU_ON_CPU_ENV, ProfileDeviceError, check_can_start, get_profile


@dataclass(frozen=True)
class Cfg:
    steps: int = 1


@pytest.fixture(autouse=True)
def no_cuda(tmp_path, monkeypatch):
    """A machine without CUDA (also when the tests run on one with a GPU)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv(ALLOW_GPU_ON_CPU_ENV, raising=False)
    monkeypatch.delenv("INSTSEG_DEVICE", raising=False)
    monkeypatch.delenv("FORCE", raising=False)
    monkeypatch.setenv("INSTSEG_RESULTS", str(tmp_path / "results"))


def test_reading_the_gpu_profile_is_always_allowed():
    assert get_profile("gpu").train_steps == 20000 and get_profile("gpu").width == 64
    assert profiles.main(["gpu"]) == 0


def test_starting_at_the_gpu_profile_without_cuda_is_refused_naming_the_override():
    with pytest.raises(ProfileDeviceError, match=f"{ALLOW_GPU_ON_CPU_ENV}=1") as err:
        check_can_start("gpu")
    assert "torch.cuda.is_available() is False" in str(err.value) and "20,000" in str(err.value)
    for name in ("smoke", "cpu"):
        check_can_start(name)  # the cpu-sized profiles run anywhere


def test_the_override_lets_it_start(monkeypatch):
    monkeypatch.setenv(ALLOW_GPU_ON_CPU_ENV, "1")
    check_can_start("gpu")
    check_can_start(get_profile("gpu"), device="cpu")


def test_a_gpu_machine_starts_unless_the_device_is_forced_to_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    check_can_start("gpu")
    monkeypatch.setenv("INSTSEG_DEVICE", "cpu")
    with pytest.raises(ProfileDeviceError, match="INSTSEG_DEVICE"):
        check_can_start("gpu")


def test_an_experiment_at_the_gpu_profile_is_refused_but_its_cached_result_is_read(monkeypatch):
    calls = []

    def fn(cfg, ctx):
        calls.append(ctx.device)
        return {"x": 1.0}

    with pytest.raises(ProfileDeviceError, match=ALLOW_GPU_ON_CPU_ENV):
        ex.run_experiment(Cfg(), fn, paper="p", name="toy", profile="gpu")
    assert calls == []
    monkeypatch.setenv(ALLOW_GPU_ON_CPU_ENV, "1")
    assert not ex.run_experiment(Cfg(), fn, paper="p", name="toy", profile="gpu").cached and calls == ["cpu"]
    monkeypatch.delenv(ALLOW_GPU_ON_CPU_ENV)
    assert ex.run_experiment(Cfg(), fn, paper="p", name="toy", profile="gpu").cached  # reading starts no work
    assert ex.run_experiment(Cfg(), fn, paper="p", name="toy", profile="smoke")["x"] == 1.0


def test_the_book_refuses_the_gpu_profile_before_any_kernel_starts(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(book, "_kernel_check", lambda kernel: pytest.fail("a kernel was looked for"))
    with pytest.raises(ProfileDeviceError):
        book.execute("gpu", tmp_path / "book")
    assert book.main(["execute", "--profile", "gpu", "--book-dir", str(tmp_path / "book")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and ALLOW_GPU_ON_CPU_ENV in lines[0]
    assert not (tmp_path / "book").exists()
    assert profiles.main(["gpu", "--check"]) == 2  # what `make book` asks first


def test_noise_seeds_per_paper_fall_back_to_the_profile_count_and_refuse_fewer_than_two():
    from dataclasses import replace

    cpu, smoke = get_profile("cpu"), get_profile("smoke")
    for paper in ("wu2016", "arnab2017", "liang2015", "fathi2017"):
        assert cpu.seeds_for(paper) == 5  # references that cost minutes a run
    assert cpu.seeds_for("dai2015") == cpu.noise_seeds == 3
    assert smoke.seeds_for("wu2016") == smoke.noise_seeds == 2  # smoke sets no override
    bad = replace(cpu, extra={**cpu.extra, "noise_seeds": {"wu2016": 1}})
    with pytest.raises(ValueError, match="wu2016 needs at least 2 noise seeds"):
        bad.seeds_for("wu2016")
