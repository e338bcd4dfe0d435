"""Loads relu_ext.ops._C, which registers the operators torch.ops.relu_ext.*.

A C++ extension only runs under the torch it was compiled against; under any
other it fails with an undefined symbol, or worse. So the torch version of the
build (written by setup.py) is compared first, and a mismatch says how to fix it.
"""

import torch

# Builds against the torch installed (relu_ext's build backend pins it, with or
# without build isolation). --no-deps: --force-reinstall alone would reinstall
# the dependencies too, torch included, and pick the newest torch again.
REBUILD = "pip install --force-reinstall --no-deps ."

try:
    from . import _build_meta
except ImportError:
    raise ImportError(
        "relu_ext's compiled extension is missing: this looks like the source tree, "
        f"not an installed copy. Install it first: {REBUILD}"
    ) from None

if torch.__version__ != _build_meta.TORCH_VERSION:
    raise ImportError(
        f"relu_ext was built against torch {_build_meta.TORCH_VERSION}, but torch "
        f"{torch.__version__} is installed. Rebuild it against this torch: "
        f"{REBUILD} (in relu_ext's source folder)"
    )

from . import _C  # noqa: E402  (registers torch.ops.relu_ext)


def build_info():
    """How this copy was built: version, torch, backends, CUDA archs, CPU
    instruction set in use and those available, intra-op threads."""
    return dict(_C.build_info())


__all__ = ["_C", "build_info"]
