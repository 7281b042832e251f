"""pyproject.toml and environment.yml describe one environment."""

from __future__ import annotations

import tomllib

import yaml
from packaging.requirements import Requirement

from instseg_lib.paths import REPO_ROOT


def _norm(spec: str) -> tuple[str, str]:
    req = Requirement(spec)
    return req.name.lower().replace("_", "-"), str(req.specifier)


def pyproject_requirements() -> dict[str, str]:
    data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    specs = list(data["project"]["dependencies"])
    for extra in data["project"].get("optional-dependencies", {}).values():
        specs += extra
    return dict(_norm(s) for s in specs)


def environment_requirements() -> dict[str, str]:
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return dict(_norm(s) for s in pip if not s.startswith("-e"))


def test_pins_agree():
    py, env = pyproject_requirements(), environment_requirements()
    only_py = {k: v for k, v in py.items() if k not in env}
    only_env = {k: v for k, v in env.items() if k not in py}
    differ = {k: (py[k], env[k]) for k in py.keys() & env.keys() if py[k] != env[k]}
    assert not only_py and not only_env and not differ, (only_py, only_env, differ)


def test_required_pins_are_the_ones_the_issue_names():
    py = pyproject_requirements()
    assert py["torch"] == "==2.14.1"
    assert py["torchvision"] == "==0.29.*"
    assert "<2" in py["jupyter-book"]
    for name in ("jupyterlab", "matplotlib", "papermill", "numpy", "pycocotools", "nbval"):
        assert name in py, name


def test_environment_pins_python_311():
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
