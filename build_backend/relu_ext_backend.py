"""relu_ext's PEP 517 build backend: setuptools', except that the build
requirements ask for the torch already installed where relu_ext is going.

Why: a C++ extension only loads under the exact torch it was compiled against.
`pip install .` builds in an isolated environment, and a plain `torch` build
requirement gets pip's newest torch there, whatever the user has: the wheel then
refuses to import next to the user's torch 2.13. Pinning `torch==<installed>`
makes the isolated build compile against a copy of the user's own torch.

Where the target's torch is learnt: pip runs this backend with the target
environment's interpreter (sys.executable) but hides that environment's
site-packages from it (PYTHONPATH to a sitecustomize that drops them, and
PYTHONNOUSERSITE). A fresh `python -E` ignores those variables and sees the
environment as `import torch` will after the install. Frontends that run the
backend in an interpreter of their own (uv, `python -m build`) show it an
environment without torch: then the requirement stays unpinned, as before, and
the wheel's metadata pins whichever torch it was built with (setup.py).
"""

import os
import subprocess
import sys

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403  (the hooks not overridden here)

# When the target has no torch: the newest torch, like the runtime dependency's floor.
UNPINNED_TORCH = "torch>=2.4"

# The version as pip knows it (the wheel's metadata, e.g. "2.14.1" or "2.13.0+cpu"),
# not torch.__version__, which may carry a local label the index does not ("2.14.1+cu130").
_PRINT_TORCH_VERSION = """\
import importlib.metadata as metadata
try:
    print(metadata.version("torch"))
except metadata.PackageNotFoundError:
    pass
"""


def installed_torch_version(python=None):
    """The version of the torch distribution that `python` (default: the
    interpreter running this backend) imports outside the build's isolation,
    or None when it has none."""
    python = python or sys.executable
    try:
        # -E: without the PYTHON* variables of the isolated build; cwd: not the
        # source tree, whose folders would shadow installed packages.
        found = subprocess.run([python, "-E", "-c", _PRINT_TORCH_VERSION], cwd=os.path.abspath(os.sep),
                               capture_output=True, text=True, timeout=120, check=True)
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", None) or error
        raise RuntimeError(f"relu_ext's build could not ask {python} which torch it has: "
                           f"{detail}") from error
    return found.stdout.strip() or None


def torch_requirement(version):
    """The build requirement for torch, given the target's torch version (or None)."""
    return f"torch=={version}" if version else UNPINNED_TORCH


def _build_requires():
    requirement = torch_requirement(installed_torch_version())
    # Shown by pip -v: which torch the extension is compiled against, and why.
    print(f"relu_ext: building against {requirement} (the torch installed for {sys.executable})"
          if "==" in requirement else
          f"relu_ext: {sys.executable} has no torch; building against {requirement}",
          file=sys.stderr)
    return [requirement]


# Not setuptools' own hooks, which add to these the setup_requires that they learn
# by running setup.py: setup.py imports torch, which is what these hooks provide.
def get_requires_for_build_wheel(config_settings=None):
    return _build_requires()


def get_requires_for_build_editable(config_settings=None):
    return _build_requires()


def get_requires_for_build_sdist(config_settings=None):
    return _build_requires()

