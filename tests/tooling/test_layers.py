"""relu_ext's folders are its layers, and its imports keep to them.

    relu_ext/           the public API and the front ends (cli, plot, data)   top
    relu_ext/curve/     fit_curve
    relu_ext/train/     fit and its torchrun part
    relu_ext/nn/        ReLUSum, ReLUSumLinear
    relu_ext/ops/       relu_sum and the custom operators                     bottom

Read from the source with ast (nothing is imported), every import of
relu_ext's own code must:
- run down or within its package, never up (LAYERS below);
- reach another package through what it exports: its public modules and the
  names of its ``__all__``, never one of its private (``_``) modules;
- stand at the top of its module, not inside a function (which only hides a
  cycle or an upward import; optional dependencies such as matplotlib may
  still be imported lazily, they are not relu_ext's);
- and no module may import itself back through others (no cycles).
The checker is tested on small made-up trees too, so each rule can be seen to
fail.
"""

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "relu_ext"

# Bottom to top; the root package (the public API and the front ends) is above all.
LAYERS = ("ops", "nn", "train", "curve")
ROOT_LAYER = len(LAYERS)
# Modules the build makes (setup.py): the compiled extension and what it was built
# against. They import nothing of relu_ext.
BUILT = ("ops._C", "ops._build_meta")


def module_names(root):
    """{dotted name: path} of every module under root (a package's is its
    __init__; the build's own, None)."""
    names = {f"{root.name}.{name}": None for name in BUILT}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def layer_of(name):
    parts = name.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else ROOT_LAYER


def package_of(name, modules):
    """The subpackage (relu_ext.ops, ...) a module belongs to, or the root."""
    parts = name.split(".")
    package = ".".join(parts[:2])
    if len(parts) > 1 and modules.get(package) and modules[package].name == "__init__.py":
        return package
    return parts[0]


def _imports(tree):
    """(node, inside a function) for every import statement."""
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append((child, in_function))
            visit(child, in_function or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return found


def _targets(node, name, path, modules):
    """The relu_ext paths an import names, each as (module, attribute or None)."""
    if isinstance(node, ast.Import):
        return [(alias.name, None) for alias in node.names]
    if node.level:
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        base = package[:len(package) - node.level + 1]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module
    found = []
    for alias in node.names:
        candidate = f"{module}.{alias.name}"
        found.append((candidate, None) if candidate in modules else (module, alias.name))
    return found


def _exports(path):
    """The names in a package's ``__all__``, read from its __init__."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return set()


def violations(root):
    """Every import under ``root`` (a package folder) that breaks a rule, as
    readable lines; and the cycles among its modules."""
    modules = module_names(root)
    top = root.name
    problems, edges = [], {name: set() for name in modules}
    for name, path in modules.items():
        if path is None:
            continue
        tree = ast.parse(path.read_text(), str(path))
        where = path.relative_to(root.parent)
        for node, in_function in _imports(tree):
            for module, attribute in _targets(node, name, path, modules):
                if module != top and not module.startswith(top + "."):
                    continue  # torch, matplotlib, ...: not ours
                line = f"{where}:{node.lineno}: imports {module}" + (
                    f".{attribute}" if attribute else "")
                if module not in modules:
                    problems.append(f"{line}, which is not a module of {top}")
                    continue
                if in_function:
                    problems.append(f"{line} inside a function; import at the top of the module")
                if layer_of(module) > layer_of(name):
                    problems.append(f"{line}, a layer above its own")
                own, theirs = package_of(name, modules), package_of(module, modules)
                if own != theirs:
                    inside = module[len(theirs) + 1:].split(".") if module != theirs else []
                    inside += [attribute] if attribute else []
                    exported = _exports(modules[theirs]) if theirs != top else set()
                    private = [part for part in inside
                               if part.startswith("_") and part not in exported]
                    if private:
                        problems.append(f"{line}: {'.'.join(private)} is private to {theirs}; "
                                        f"import what {theirs} exports")
                    edges[name].add(theirs)
                edges[name].add(module)
    return problems, _cycles(edges)


def _cycles(edges):
    """The strongly connected components of more than one module (or a module
    importing itself), each sorted (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def connect(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges.get(v, ()):
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return found


# -- relu_ext itself ---------------------------------------------------------------------------

def test_every_subpackage_has_a_layer():
    packages = {p.parent.name for p in SOURCE.glob("*/__init__.py")}
    assert packages == set(LAYERS), (
        f"relu_ext's subpackages are {sorted(packages)}; give each a place in LAYERS")


def test_imports_run_down_the_layers_through_public_names():
    problems, _ = violations(SOURCE)
    assert problems == []


def test_no_import_cycles():
    _, cycles = violations(SOURCE)
    assert cycles == []


def test_each_package_says_what_it_is_for_and_may_import():
    for init in sorted(SOURCE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and "Imports:" in doc, f"{init.relative_to(SOURCE.parent)}: no docstring " \
                                          f"saying what it is for and what it may import"


def test_public_names_are_where_they_were():
    import relu_ext
    import relu_ext.distributed
    import relu_ext.reference
    from relu_ext.distributed import restart_count
    from relu_ext.reference import relu_sum

    assert sorted(relu_ext.__all__) == sorted([
        "__version__", "build_info", "curve_summary", "fit", "fit_curve", "History", "reference", "relu_sum",
        "relu_sum_linear",
        "ReLUSum", "ReLUSumFunction", "ReLUSumLinear"])
    assert all(hasattr(relu_ext, name) for name in relu_ext.__all__)
    assert relu_ext.reference is relu_ext.ops.reference and relu_sum is relu_ext.ops.reference.relu_sum
    assert relu_ext.distributed is relu_ext.train.distributed
    assert restart_count is relu_ext.train.distributed.restart_count
    assert relu_ext.ReLUSum is relu_ext.nn.ReLUSum
    assert relu_ext.ReLUSumLinear is relu_ext.nn.ReLUSumLinear


@pytest.mark.parametrize("module", ["relu_ext.reference", "relu_ext.distributed",
                                    "relu_ext.data", "relu_ext.cli"])
def test_public_modules_import_on_their_own(module):
    """In a fresh interpreter, as a user's first line would."""
    done = subprocess.run([sys.executable, "-c", f"import {module}; print({module}.__name__)"],
                          capture_output=True, text=True, cwd=SOURCE.parent / "tests")
    assert done.returncode == 0, done.stderr


# -- the checker, on made-up trees ---------------------------------------------------------------

def make_tree(tmp_path, files):
    root = tmp_path / "relu_ext"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    for package in ["", *LAYERS]:
        init = root / package / "__init__.py"
        if not init.exists():
            init.parent.mkdir(parents=True, exist_ok=True)
            init.write_text('"""Imports: nothing."""\n__all__ = ["_C"]\n')
    return root


def test_a_clean_made_up_tree_passes(tmp_path):
    root = make_tree(tmp_path, {
        "ops/_kernels.py": "import torch\n",
        "nn/_module.py": "from ..ops import _C\nfrom ..ops import reference\n",
        "curve/_fit.py": "from ..nn import ReLUSum\nfrom . import _data\n"
                         "def f():\n    import matplotlib\n",
        "curve/_data.py": "import torch\n",
        "train/distributed.py": "def share():\n    pass\n",
        "cli.py": "from .curve import fit_curve\nfrom .train.distributed import share\n",
    })
    assert violations(root) == ([], [])


def test_an_upward_import_is_found(tmp_path):
    root = make_tree(tmp_path, {"ops/_kernels.py": "from ..nn import ReLUSum\n"})
    problems, _ = violations(root)
    assert problems == ["relu_ext/ops/_kernels.py:1: imports relu_ext.nn.ReLUSum, "
                        "a layer above its own"]


def test_an_import_inside_a_function_is_found(tmp_path):
    root = make_tree(tmp_path, {"nn/_module.py": "def f():\n    from ._piecewise import g\n",
                                "nn/_piecewise.py": "def g():\n    pass\n"})
    problems, _ = violations(root)
    assert problems == ["relu_ext/nn/_module.py:2: imports relu_ext.nn._piecewise.g inside "
                        "a function; import at the top of the module"]


def test_a_private_module_of_another_package_is_found(tmp_path):
    root = make_tree(tmp_path, {"ops/_validation.py": "CHECKS = 1\n",
                                "curve/_data.py": "from ..ops._validation import CHECKS\n"})
    problems, _ = violations(root)
    assert problems == ["relu_ext/curve/_data.py:1: imports relu_ext.ops._validation.CHECKS: "
                        "_validation is private to relu_ext.ops; import what relu_ext.ops exports"]


def test_a_cycle_is_found(tmp_path):
    root = make_tree(tmp_path, {"curve/_fit.py": "from . import _data\n",
                                "curve/_data.py": "from ._fit import LOSSES\n"})
    assert violations(root) == ([], [["relu_ext.curve._data", "relu_ext.curve._fit"]])


def test_a_module_importing_its_own_package_init_is_a_cycle(tmp_path):
    root = make_tree(tmp_path, {"curve/__init__.py": '"""Imports: x."""\nfrom ._fit import f\n',
                                "curve/_fit.py": "from . import LOSSES\n"})
    assert violations(root)[1] == [["relu_ext.curve", "relu_ext.curve._fit"]]
