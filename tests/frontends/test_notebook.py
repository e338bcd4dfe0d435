"""examples/lesson4.ipynb: committed without outputs, and run top to bottom headless.

The run uses nbclient with a kernel named python3 that is this interpreter
(sys.executable, by a kernel spec written for the test), so the notebook
imports the same relu_ext the other tests do. ipywidgets' interact needs no
frontend: it renders its widget and calls the function once, into an Output
widget whose outputs nbclient keeps in the notebook's widget state; an error
there is checked for as well as one in a cell.
"""

import json
import math
import os
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from strip_notebook import unstripped

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "lesson4.ipynb"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
NUMBER = r"[0-9][0-9,]*(?:\.[0-9]+)?"


def read_notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


def test_committed_notebook_has_no_outputs():
    nb = read_notebook()
    nbformat.validate(nb)
    found = unstripped(nb)
    assert not found, (f"{NOTEBOOK.name} is committed with outputs ({'; '.join(found[:5])}"
                       f"{'; ...' if len(found) > 5 else ''}): run `make strip-notebook`")


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook run top to bottom in a fresh kernel, and the seconds it took."""
    tmp = tmp_path_factory.mktemp("notebook")
    spec_dir = tmp / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (the tests' interpreter)",
        "language": "python",
    }))
    specs = KernelSpecManager(kernel_dirs=[str(tmp / "kernels")])
    km = KernelManager(kernel_name="python3", kernel_spec_manager=specs)
    assert km.kernel_spec.argv[0] == sys.executable

    nb = read_notebook()
    assert nb.metadata.kernelspec.name == "python3"
    # The kernel runs in an empty directory (not the checkout, whose relu_ext/
    # has no compiled extension), with IPython's profile and matplotlib's
    # cache kept out of the user's home.
    work = tmp / "cwd"
    work.mkdir()
    env = dict(os.environ, IPYTHONDIR=str(tmp / "ipython"), MPLCONFIGDIR=str(tmp / "mpl"))
    client = NotebookClient(nb, km=km, kernel_name="python3", timeout=300,
                            resources={"metadata": {"path": str(work)}})
    start = time.perf_counter()
    client.execute(env=env)
    seconds = time.perf_counter() - start
    print(f"{NOTEBOOK.name} ran in {seconds:.1f} s")
    return nb, seconds


def widget_outputs(nb, output):
    """The outputs inside the Output widgets of a widget view (interact's
    function writes there), from the widget state nbclient stored."""
    states = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    found, todo, seen = [], [output["data"][WIDGET_VIEW]["model_id"]], set()
    while todo:
        model_id = todo.pop()
        if model_id in seen or model_id not in states:
            continue
        seen.add(model_id)
        state = states[model_id]["state"]
        found += state.get("outputs", [])
        todo += [child.removeprefix("IPY_MODEL_") for child in state.get("children", [])]
    return found


def all_outputs(nb, cell):
    outputs = []
    for output in cell.get("outputs", []):
        outputs.append(output)
        if WIDGET_VIEW in output.get("data", {}):
            outputs += widget_outputs(nb, output)
    return outputs


def tagged(nb, tag):
    cells = [cell for cell in nb.cells if tag in cell.metadata.get("tags", [])]
    assert cells, f"no cell tagged {tag!r}"
    return cells


def stdout(cell):
    return "".join(o.get("text", "") for o in cell.outputs
                   if o.output_type == "stream" and o.name == "stdout")


def has_image(nb, cell):
    return any("image/png" in o.get("data", {}) for o in all_outputs(nb, cell))


def numbers(pattern, text):
    match = re.search(pattern, text)
    assert match, f"no line matching {pattern!r} in:\n{text}"
    values = [float(g.replace(",", "")) for g in match.groups()]
    assert all(math.isfinite(v) for v in values), match.group(0)
    return values


def test_no_cell_errors(executed):
    nb, _ = executed
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.execution_count is not None, f"cell {i} did not run"
        errors = [o for o in all_outputs(nb, cell) if o.get("output_type") == "error"]
        assert not errors, f"cell {i}: {errors[0]['ename']}: {errors[0]['evalue']}"


def test_interact_renders_a_widget_and_draws_once(executed):
    nb, _ = executed
    cells = [cell for cell in nb.cells if cell.cell_type == "code" and "@interact" in cell.source]
    assert len(cells) == 4  # a, b, c; with the MAE; one ReLU; the double ReLU
    for cell in cells:
        assert any(WIDGET_VIEW in o.get("data", {}) for o in cell.outputs), cell.source
        assert has_image(nb, cell), cell.source


def test_sgd_and_fit_curve_plots_are_shown(executed):
    nb, _ = executed
    for tag in ("sgd-plot", "curve-plot"):
        for cell in tagged(nb, tag):
            assert has_image(nb, cell), f"no image from the cell tagged {tag!r}"


def test_gradient_descent_and_relu_sum_steps(executed):
    nb, _ = executed
    text = "".join(stdout(cell) for cell in nb.cells if cell.cell_type == "code")
    steps = [float(v) for v in re.findall(r"step=\d+; loss=([0-9.]+)", text)]
    assert len(steps) == 10 and steps[-1] < steps[0], steps
    same = re.findall(r"equal to the broadcast sum: (True|False)", text)
    assert same == ["True"] * 4, same


def test_the_three_answers_are_measured_numbers(executed):
    nb, _ = executed
    fast = stdout(tagged(nb, "answer-speed")[0])
    ext_ms, ref_ms, speedup = numbers(
        rf"relu_ext ({NUMBER}) ms, reference ({NUMBER}) ms .*relu_ext is ({NUMBER})x faster", fast)
    assert ext_ms > 0 and ref_ms > 0 and speedup == pytest.approx(ref_ms / ext_ms, rel=0.05)

    memory = stdout(tagged(nb, "answer-memory")[0])
    table, ref_saved, ext_saved = numbers(
        rf"the N×K table is ({NUMBER}) MiB; kept for backward: reference ({NUMBER}) MiB, "
        rf"relu_ext ({NUMBER}) MiB", memory)
    assert table == 256.0 and ref_saved >= table and ext_saved < 1
    if os.access("/proc/self/clear_refs", os.W_OK):  # Linux: the peak is measured too
        ref_peak, ext_peak = numbers(
            rf"peak above the inputs during forward \+ backward: reference ({NUMBER}) MiB, "
            rf"relu_ext ({NUMBER}) MiB", memory)
        assert ref_peak >= table > ext_peak

    accurate = stdout(tagged(nb, "answer-accuracy")[0])
    rows = re.findall(rf"How accurate: (.+): RMSE ({NUMBER}) on the points, ({NUMBER}) vs the "
                      rf"true function", accurate)
    assert [name for name, _, _ in rows] == ["SGD, 20 units (MAE)", "fit_curve, 20 units",
                                             "fit_curve, 3 units", "the true quadratic"]
    for name, on_points, vs_true in rows:
        assert math.isfinite(float(on_points)) and math.isfinite(float(vs_true)), name
    rmse = {name: (float(on_points), float(vs_true)) for name, on_points, vs_true in rows}
    assert rmse["the true quadratic"][1] == 0  # the truth against itself
    # 20 units through the 20 points interpolate them, and stray further from the
    # truth between them than 3 units do: they fit the noise.
    assert rmse["fit_curve, 20 units"][0] <= 0.001
    assert rmse["fit_curve, 20 units"][1] > rmse["fit_curve, 3 units"][1]
    # The least squares of 3 units come closer to the points than the truth does.
    assert rmse["fit_curve, 3 units"][0] < rmse["the true quadratic"][0]
