"""The package as installed: imported from outside the source tree, so a file
missing from the wheel cannot hide behind the source folder; and its build
metadata."""

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import torch

import relu_ext

SOURCE_TREE = Path(__file__).resolve().parents[2]


def run_python(code, cwd):
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_imports_and_runs_from_outside_the_source_tree(tmp_path):
    code = (
        "import torch, relu_ext\n"
        "x = torch.randn(50, dtype=torch.float64, requires_grad=True)\n"
        "m, b, a = torch.randn(3, 8, dtype=torch.float64, requires_grad=True).unbind()\n"
        "y, y_ref = relu_ext.relu_sum(x, m, b, a), relu_ext.reference.relu_sum(x, m, b, a)\n"
        "torch.testing.assert_close(y, y_ref)\n"
        "grads = torch.autograd.grad(y.sum(), (x, m, b, a))\n"
        "grads_ref = torch.autograd.grad(y_ref.sum(), (x, m, b, a))\n"
        "torch.testing.assert_close(grads, grads_ref)\n"
        "relu_ext.ReLUSum(3)(x.float()).sum().backward()\n"
        "print(relu_ext.__file__)\n"
        "print(sorted(relu_ext.build_info()))\n"
    )
    result = run_python(code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    location = Path(result.stdout.splitlines()[0]).resolve().parent
    assert location != SOURCE_TREE / "relu_ext", "imported the source folder, not the installed copy"
    assert (location / "ops" / "_build_meta.py").is_file()
    assert any(p.name.startswith("_C.") for p in (location / "ops").iterdir())


def test_build_info_describes_this_build():
    info = relu_ext.build_info()
    assert info["version"] == relu_ext.__version__
    assert info["torch"] == torch.__version__
    assert "cpu" in info["backends"]
    assert info["cpu_isa"] in info["cpu_isas"]
    assert info["cpu_isas"][-1] == "baseline"
    assert info["threads"] == torch.get_num_threads()
    assert isinstance(info["cuda_archs"], list)
    assert ("cuda" in info["backends"]) == bool(info["cuda_archs"])


def test_requires_exactly_the_torch_it_was_built_against():
    # As pip knows torch's version ("2.14.1"), not torch.__version__ ("2.14.1+cu130").
    torch_pin = f"torch=={importlib.metadata.version('torch')}"
    assert torch_pin in importlib.metadata.requires("relu_ext")


def test_another_torch_version_is_refused_with_instructions(tmp_path):
    code = "import torch\ntorch.__version__ = '1.0.0'\nimport relu_ext\n"
    result = run_python(code, cwd=tmp_path)
    assert result.returncode != 0
    assert "ImportError: relu_ext was built against torch " in result.stderr
    assert "but torch 1.0.0 is installed. Rebuild it against this torch: pip install " in result.stderr
    # --force-reinstall alone would reinstall torch too, and the newest one.
    assert "--force-reinstall --no-deps ." in result.stderr


def test_cpu_isa_can_be_chosen_by_environment(tmp_path):
    code = "import relu_ext\nprint(relu_ext.build_info()['cpu_isa'])\n"
    env_result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                                text=True, timeout=300,
                                env={**__import__("os").environ, "RELU_EXT_CPU_ISA": "baseline"})
    assert env_result.stdout.strip() == "baseline", env_result.stderr
