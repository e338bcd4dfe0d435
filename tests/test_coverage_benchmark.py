"""benchmarks/coverage.py --quick and benchmarks/selection.py --quick end to
end: they run, their JSON has every figure in its layout, coverages and
fractions are in [0, 1], and each writes its own RESULTS.md section, leaving
the rest of the page alone. The values themselves are noise at the quick
sizes (ten replications a cell) or machine-dependent (times): not checked."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
PAGE = "# Results\n\nwritten by someone else\n"


def _run(script, out, *args):
    """The script's --quick run into ``out``: its JSON and the page it wrote to."""
    page = out / "RESULTS.md"
    page.write_text(PAGE)
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", "--json", str(out / "run.json"),
         "--results-md", str(page), *args],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((out / "run.json").read_text()), page.read_text()


@pytest.fixture(scope="module")
def coverage_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("coverage")
    return (out, *_run("coverage.py", out, "--plot", str(out / "coverage.png")))


@pytest.fixture(scope="module")
def selection_run(tmp_path_factory):
    return _run("selection.py", tmp_path_factory.mktemp("selection"))


def _fraction(value):
    return 0.0 <= value <= 1.0


def _check_section(text, name):
    assert text.startswith(PAGE)
    assert (f"<!-- section {name}: written by benchmarks/{name}.py; do not edit by hand -->"
            in text)
    assert text.rstrip().endswith(f"<!-- end of section {name} -->")


@pytest.mark.benchmarks
def test_coverage_json_has_every_cell_in_range(coverage_run):
    _, doc, _ = coverage_run
    assert doc["schema_version"] == 1 and doc["quick"] is True and doc["reps"] == 10
    assert doc["code"]
    assert {"cpu_model", "threads", "relu_ext", "load_average_at_end"} <= set(doc["machine"])
    cells = doc["cells"]
    assert {(c["truth"], c["n"], c["sigma"]) for c in cells} == {
        (truth, 200, sigma) for truth in ("two_segment", "three_segment") for sigma in (0.1, 2.0)}
    for cell in cells:
        breakpoints = 1 if cell["truth"] == "two_segment" else 2
        assert cell["xi"] == pytest.approx(2 / cell["sigma"] * 200 ** 0.5)
        assert _fraction(cell["f_test"]["breakpoints"]["coverage"])
        for method in ("wald", "ours"):
            for field, count in (("breakpoints", breakpoints), ("slopes", breakpoints + 1)):
                figure = cell[method][field]
                assert figure["count"] == 10 * count, (cell, method, field)
                assert _fraction(figure["coverage"]) and figure["mc_se"] >= 0
            assert len(cell[method]["per_breakpoint"]) == breakpoints
            assert len(cell[method]["per_slope"]) == breakpoints + 1
            assert all(map(_fraction, cell[method]["per_breakpoint"] + cell[method]["per_slope"]))
        assert _fraction(cell["bootstrapped"]) and _fraction(cell["lost_breakpoint"])
        assert _fraction(cell["singular"])
        for field, count in (("breakpoints", breakpoints), ("slopes", breakpoints + 1)):
            regular = cell["ours_regular"][field]
            assert regular["count"] == round(10 * (1 - cell["singular"])) * count
            assert regular["count"] == 0 or _fraction(regular["coverage"])
        assert all(w is None or w > 0 for w in cell["width_ratio"].values())
        assert cell["fit_seconds"] > 0 and cell["summary_seconds"] > 0
    # calibrate="auto" bootstraps the small kinks (σ = 2, ξ ≈ 14).
    assert all(c["bootstrapped"] > 0.5 for c in cells if c["sigma"] == 2.0)
    pwlf = doc["pwlf"]
    if "skipped" not in pwlf:
        for method in ("linear", "non-linear"):
            assert all(map(_fraction, pwlf[method].values()))


@pytest.mark.benchmarks
def test_coverage_writes_plot_and_section(coverage_run):
    out, _, text = coverage_run
    assert (out / "coverage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    _check_section(text, "coverage")
    assert ("| truth | N | σ | ξ | breakpoints Wald, % | breakpoints F test, % | breakpoints "
            "ours, % |") in text
    assert "| two-segment | 200 | 0.1 | 283" in text
    assert "| three-segment | 200 | 2 | 14.1 |" in text
    assert "**Target: 92–98% coverage wherever ξ ≥ 20**" in text
    assert "](coverage.png)" in text


def _load(script):
    """A benchmark script as a module (under a name of its own: ``coverage``
    is also coverage.py's package)."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{Path(script).stem}",
                                                  BENCHMARKS / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.benchmarks
def test_coverage_report_only_redraws_from_the_json(coverage_run, tmp_path, monkeypatch):
    out, _, text = coverage_run
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts benchmarks/ on it
    page = tmp_path / "RESULTS.md"
    _load("coverage.py").main(["--report-only", "--json", str(out / "run.json"), "--plot",
                               str(tmp_path / "coverage.png"), "--results-md", str(page)])
    assert (tmp_path / "coverage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.read_text().strip() == text[len(PAGE):].strip()


@pytest.mark.benchmarks
def test_selection_json_and_section(selection_run):
    doc, text = selection_run
    assert doc["schema_version"] == 1 and doc["quick"] is True
    parts = doc["parts"]
    selection = parts["selection"]["cases"]
    assert [c["data"] for c in selection] == ["sine", "three_segment", "line"]
    for case in selection:
        assert set(case["times"]) == {"fixed", "bic", "cv"}
        assert all(t["median_s"] >= t["min_s"] > 0 for t in case["times"].values())
        assert case["ratio"]["bic"] > 0 and case["ratio"]["cv"] > 0
        assert 1 <= case["chosen"]["bic"] <= case["max_units"] == 3
    for case in parts["summary"]["cases"]:
        assert set(case["times"]) == {"auto", "f", "bootstrap"}
        assert isinstance(case["auto_bootstrapped"], bool) and case["breakpoints"] <= 2
    if "skipped" not in parts["pwlf"]:
        for case in parts["pwlf"]["cases"]:
            assert case["relu_ext"]["seconds"] > 0
            assert {"seconds", "capped", "failed"} & set(case["pwlf"])
    _check_section(text, "selection")
    for heading in ("### Choosing K:", "### `str(curve_summary(model, x, y))`",
                    "### pwlf for context"):
        assert heading in text, heading
    assert "(target < 10×: " in text and "(target < 0.1 s: " in text
