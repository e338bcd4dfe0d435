"""The build backend's choice of torch (build_backend/relu_ext_backend.py): the
isolated build must compile against the torch of the environment installed into."""

import importlib.metadata
import subprocess
import sys
import venv
from pathlib import Path

import pytest

SOURCE_TREE = Path(__file__).resolve().parents[2]
BACKEND_PATH = SOURCE_TREE / "build_backend"

sys.path.insert(0, str(BACKEND_PATH))
import relu_ext_backend as backend  # noqa: E402

sys.path.remove(str(BACKEND_PATH))

TORCH_VERSION = importlib.metadata.version("torch")

# What pip does to the interpreter that runs the backend in an isolated build:
# the environment's site-packages dropped by a sitecustomize on PYTHONPATH, no user site.
PIP_ISOLATION_SITECUSTOMIZE = """\
import sys
sys.path[:] = [p for p in sys.path if "site-packages" not in p]
"""


def test_finds_this_interpreters_torch_as_pip_versions_it():
    assert backend.installed_torch_version(sys.executable) == TORCH_VERSION


def test_finds_the_target_torch_through_pips_isolation(tmp_path, monkeypatch):
    (tmp_path / "sitecustomize.py").write_text(PIP_ISOLATION_SITECUSTOMIZE)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("PYTHONNOUSERSITE", "1")
    hidden = subprocess.run([sys.executable, "-c", "import torch"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert "No module named 'torch'" in hidden.stderr, "the isolation should hide torch"
    assert backend.installed_torch_version(sys.executable) == TORCH_VERSION


def test_an_environment_without_torch_has_none(tmp_path):
    venv.create(tmp_path / "empty", with_pip=False)
    python = tmp_path / "empty" / "bin" / "python"
    assert backend.installed_torch_version(str(python)) is None


def test_an_interpreter_that_cannot_run_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="could not ask .*no-python.* which torch it has"):
        backend.installed_torch_version(str(tmp_path / "no-python"))


@pytest.mark.parametrize("version, requirement", [
    ("2.13.0+cpu", "torch==2.13.0+cpu"),
    ("2.14.1", "torch==2.14.1"),
    (None, backend.UNPINNED_TORCH),
])
def test_the_requirement_pins_the_version_found(version, requirement):
    assert backend.torch_requirement(version) == requirement


@pytest.mark.parametrize("hook", ["get_requires_for_build_wheel", "get_requires_for_build_editable",
                                  "get_requires_for_build_sdist"])
def test_every_build_asks_for_this_torch(hook):
    assert getattr(backend, hook)() == [f"torch=={TORCH_VERSION}"]


def test_the_other_hooks_are_setuptools():
    from setuptools import build_meta
    assert backend.build_wheel is build_meta.build_wheel
    assert backend.prepare_metadata_for_build_wheel is build_meta.prepare_metadata_for_build_wheel


def test_pyproject_names_this_backend_and_leaves_torch_to_it():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    build_system = tomllib.loads((SOURCE_TREE / "pyproject.toml").read_text())["build-system"]
    assert build_system["build-backend"] == "relu_ext_backend"
    assert build_system["backend-path"] == ["build_backend"]
    # A torch here would be installed first, the newest one, besides the pinned one.
    assert not any(r.startswith("torch") for r in build_system["requires"])
