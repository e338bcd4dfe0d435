"""benchmarks/curves.py --quick end to end: it runs, its JSON has relu_ext's
figures for every section, and it writes its own RESULTS.md section, leaving
the rest of the page alone. pwlf, scipy and scikit-learn are optional for it:
with them hidden it still runs, and says what it skipped. The figures'
values are machine- and load-dependent: not checked, beyond the ones the
script must get right (through-points met, shapes held, never worse than the
uniform-knot optimum)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "curves.py"
PAGE = "# Results\n\nwritten by someone else\n"


def _run(out, *args, env=None, timeout=900):
    results = out / "RESULTS.md"
    results.write_text(PAGE)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", str(out / "curves.json"),
         "--results-md", str(results), *args],
        capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((out / "curves.json").read_text()), results.read_text()


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("curves"))


def _check_relu_ext_figures(doc):
    assert doc["schema_version"] == 1 and doc["quick"] is True
    for key in ("cpu_model", "threads", "torch", "load_average_at_start"):
        assert key in doc["machine"], key
    parts = doc["sections"]
    assert set(parts) == {"many_curves", "weights_through", "shapes"}

    many = parts["many_curves"]
    assert many["conditions"] == {**many["conditions"], "curves": 50, "points": 300, "units": 5}
    ours = many["relu_ext"]
    assert ours["seconds"] > 0 and ours["rmse_median_all"] > 0
    assert ours["sample_alone_same_as_batch"] is True
    assert many["sample"]
    for row in many["sample"]:
        assert row["relu_ext_rmse"] == pytest.approx(row["relu_ext_rmse_piecewise"], rel=1e-9)

    cases = parts["weights_through"]["cases"]
    assert {c["kind"] for c in cases} == {"weights", "through"}
    for case in cases:
        assert case["units"] == 5 and case["points"] == 300
        assert case["relu_ext"]["seconds"] > 0 and case["relu_ext"]["error"] > 0, case
        if case["kind"] == "through":
            assert case["relu_ext"]["through_error"] <= 1e-9 * case["range"], case

    shapes = parts["shapes"]["cases"]
    assert {c["shape"] for c in shapes} == {"increasing", "convex", "increasing + concave"}
    for case in shapes:
        for entry in case["by_k"]:
            ours = entry["relu_ext"]
            assert ours["rmse"] > 0 and ours["pieces"] >= 1 and ours["shape_holds"] is True, case
    return parts


@pytest.mark.benchmarks
def test_json_has_relu_ext_figures_for_every_section(quick_run):
    doc, _ = quick_run
    parts = _check_relu_ext_figures(doc)
    missing = doc["missing"]
    if "pwlf" not in missing:
        pwlf = parts["many_curves"]["pwlf"]
        assert pwlf["finished"] + pwlf["capped"] >= 1
    if "scipy" not in missing:
        for case in parts["shapes"]["cases"]:
            for entry in case["by_k"]:
                assert entry["uniform_knots"]["rmse"] > 0
                assert entry["relu_ext"]["not_worse_than_uniform"] is True, case
    if "sklearn" not in missing:
        for case in parts["shapes"]["cases"]:
            assert ("isotonic" in case) == bool(case["monotone"])
            if case["monotone"]:
                assert case["isotonic"]["pieces"] >= 1


@pytest.mark.benchmarks
def test_writes_its_section_and_leaves_the_page_alone(quick_run):
    _, text = quick_run
    assert text.startswith(PAGE)
    assert "<!-- section curves: written by benchmarks/curves.py; do not edit by hand -->" in text
    assert text.rstrip().endswith("<!-- end of section curves -->")
    for heading in ("### Many curves", "### Weights and points to pass through",
                    "### Shape constraints", "**Verdicts.**"):
        assert heading in text, heading
    assert "| relu_ext, all 50 curves in one call | " in text
    assert "| growing_noise | weights | 5 | " in text and "| sin_ends | through | 5 | " in text
    for target in ("logistic", "exp", "log1p"):
        assert f"| {target} | " in text and "| relu_ext (constrained) | " in text


@pytest.mark.benchmarks
def test_runs_without_pwlf_scipy_and_sklearn(tmp_path):
    # Packages that raise ImportError, first on the path, stand for missing ones.
    hidden = tmp_path / "hidden"
    for name in ("pwlf", "scipy", "sklearn"):
        (hidden / name).mkdir(parents=True)
        (hidden / name / "__init__.py").write_text(
            f"raise ImportError('{name} hidden by the test')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(hidden), env.get("PYTHONPATH")) if p)
    out = tmp_path / "out"
    out.mkdir()
    doc, text = _run(out, env=env)
    parts = _check_relu_ext_figures(doc)
    assert set(doc["missing"]) == {"pwlf", "scipy", "sklearn"}
    assert "pwlf" not in parts["many_curves"]
    assert all(c["pwlf"] == {"skipped": "pwlf not installed"}
               for c in parts["weights_through"]["cases"])
    for case in parts["shapes"]["cases"]:
        assert all("skipped" in e["uniform_knots"] for e in case["by_k"])
    assert "Not installed, so skipped: pwlf" in text
    assert "| pwlf | not installed: skipped |" in text


@pytest.mark.benchmarks
def test_bad_section_name_is_refused(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--sections", "shapes,nonsense"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "--sections" in done.stderr and "nonsense" in done.stderr
