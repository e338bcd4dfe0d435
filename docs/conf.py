"""Sphinx configuration of relu_ext's documentation: `make docs` builds it into
docs/_build/html, every warning an error.

The pages are Markdown (MyST) and api.rst. The API reference imports relu_ext
as installed: nothing is put on sys.path, since the source tree has no compiled
extension (run sphinx-build, not `python -m sphinx` from the repository's root,
which would put the source tree first).
"""

import importlib

import relu_ext

project = "relu_ext"
release = relu_ext.__version__
version = release

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Anchors for links such as curves.md#how-it-works.
myst_heading_anchors = 3

# The docstrings are Google style (Args:, Returns:, Raises:).
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# One field list of parameters, so that "m, b: ..." stays one entry.
napoleon_use_param = False
autodoc_member_order = "bysource"

html_theme = "furo"
html_title = f"relu_ext {release}"

# Public names that not every version of relu_ext has: api.rst gets a section
# for those that import, and none for the others.
OPTIONAL_API = [
    # fit, predict and summary: the rest is scikit-learn's own (set_fit_request, ...), whose
    # docstrings are not Sphinx-clean.
    ("relu_ext.sklearn", "PiecewiseLinearRegressor", "autoclass",
     ["   :members: fit, predict, summary"]),
    ("relu_ext", "curve_summary", "autofunction", []),
    ("relu_ext.curve", "CurveSummary", "autoclass", ["   :members: conf_int"]),
]
_OPTIONAL_MARKER = ".. optional-api (filled in by conf.py)"


def _optional_api():
    lines = []
    for module, name, directive, options in OPTIONAL_API:
        try:
            getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
        lines += [f".. {directive}:: {module}.{name}", *options, ""]
    if not lines:
        return ""
    return "\n".join(["Curve tools", "-----------", ""] + lines)


def _fill_api(app, docname, source):
    if docname == "api":
        source[0] = source[0].replace(_OPTIONAL_MARKER, _optional_api())


def _always_reread_api(app, env, added, changed, removed):
    # Which optional names import depends on the installed relu_ext, not on api.rst.
    return ["api"]


def setup(app):
    app.connect("source-read", _fill_api)
    app.connect("env-get-outdated", _always_reread_api)
