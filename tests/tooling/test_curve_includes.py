"""csrc/curve's files by job, in layers: each file includes only files of
lower layers (a .cpp also its own header), so a newcomer reads it bottom-up
and no change to a lower file needs a higher one (docs/how-it-works.md)."""

import re
from pathlib import Path

import pytest

CURVE = Path(__file__).resolve().parents[2] / "csrc" / "curve"

# Lowest first; a file's layer is its header's.
LAYERS = [
    {"options", "random", "linalg", "exact_sum"},
    {"lbfgs", "constrained_lstsq", "hinge_lstsq"},
    {"points"},
    {"fit", "criteria", "lines"},
    {"select", "profile"},
    {"fit_curve", "bootstrap"},
    {"intervals"},
    {"bindings"},
]
INCLUDE = re.compile(r'^\s*#include\s+"([^"]+)"', re.M)


def layer_of(stem):
    for depth, layer in enumerate(LAYERS):
        if stem in layer:
            return depth
    raise AssertionError(f"csrc/curve/{stem}: in no layer of {__name__}.LAYERS")


def upward_includes(folder):
    """(file, included) pairs where a file includes one of its own layer or above."""
    found = []
    for path in sorted(folder.glob("*.[ch]*")):
        mine = layer_of(path.stem)
        for included in INCLUDE.findall(path.read_text()):
            stem = Path(included).stem
            if stem == path.stem and path.suffix == ".cpp":
                continue  # a .cpp's own header
            if layer_of(stem) >= mine:
                found.append((path.name, included))
    return found


def test_every_curve_file_has_a_layer():
    for path in CURVE.glob("*.[ch]*"):
        layer_of(path.stem)


def test_curve_includes_run_down_the_layers():
    assert upward_includes(CURVE) == []


def test_an_upward_include_is_found(tmp_path):
    (tmp_path / "points.h").write_text('#pragma once\n#include "fit.h"\n')
    (tmp_path / "fit.h").write_text('#pragma once\n#include "points.h"\n')
    assert upward_includes(tmp_path) == [("points.h", "fit.h")]
    (tmp_path / "mystery.h").write_text("#pragma once\n")
    with pytest.raises(AssertionError, match="mystery"):
        upward_includes(tmp_path)
