"""The op benchmark (benchmarks/run.py, what `make bench` runs) end to end on
its quick grid: it runs, prints one table row per case it wrote to its result
file, every case timed and measured, and draws its two plots. The KAN-layer
scripts (layer.py, kan_accuracy.py) on theirs, with pykan only if installed
(their --quick skips it otherwise). The figures themselves depend on the
machine and its load: not checked."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"


@pytest.mark.benchmarks
def test_quick_run_prints_its_table_and_writes_its_results(tmp_path):
    done = subprocess.run([sys.executable, str(RUN), "--quick", "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]

    doc = json.loads((tmp_path / "results.json").read_text())
    cases = doc["results"]
    # Three sizes × three phases × every implementation.
    assert len(cases) == 9 * len(doc["implementations"])
    for case in cases:
        assert case["status"] == "ok", case
        assert case["time"] is not None and case["time"]["median_s"] > 0, case
        assert case["memory"] is not None, case

    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| phase | N | K | implementation | median")
    assert len(rows) == 1 + len(cases)
    for label in doc["implementations"].values():
        assert sum(f"| {label} |" in row for row in rows) == 9, label

    for plot in ("time_vs_k.png", "memory_vs_n.png"):
        assert (tmp_path / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot


LAYER = RUN.parent / "layer.py"
KAN_ACCURACY = RUN.parent / "kan_accuracy.py"


def _has_pykan():
    try:
        import kan  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.benchmarks
def test_layer_quick_run_measures_every_case_and_checks_efficient_kan(tmp_path):
    """benchmarks/layer.py --quick: every case timed (and, but the copies,
    measured), the ratios printed, the efficient-kan re-implementation's
    parameter counts equal to the published ones; pykan only when installed."""
    out = tmp_path / "layer.json"
    done = subprocess.run([sys.executable, str(LAYER), "--quick", "--rounds", "1",
                           "--min-run-time", "0.01", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    doc = json.loads(out.read_text())
    assert ("pykan" in doc["cases"]) == _has_pykan()
    for name, case in doc["cases"].items():
        assert case["status"] == "ok", (name, case)
        assert case["time_s"] > 0, name
        if name != "clone8_k1024":
            assert case["peak_extra_bytes"] >= 0, name
    for name in ("relu_ext_k8", "relu_ext_k64", "relu_ext_k1024"):
        assert doc["cases"][name]["algorithm"] in ("dense", "breakpoints"), name
    checks = doc["efficient_kan_checks"]
    for key in ("params_mnist_kan", "params_jm_kan", "params_jm_mlp"):
        assert checks[key] == checks["published"][key], key
    assert "| ratio | value | target | met |" in done.stdout


@pytest.mark.benchmarks
def test_kan_accuracy_quick_run_traces_error_against_time(tmp_path):
    """benchmarks/kan_accuracy.py --quick: relu_ext's trace of (time, test
    RMSE), pykan's when installed, and the digits runs of both models."""
    out = tmp_path / "kan_accuracy.json"
    done = subprocess.run([sys.executable, str(KAN_ACCURACY), "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    doc = json.loads(out.read_text())
    function = doc["function"]
    assert (function["pykan"] is not None) == _has_pykan()
    for run in function["relu_ext"] + ([function["pykan"]] if function["pykan"] else []):
        times = [t for t, _ in run["trace"]]
        assert times == sorted(times) and all(rmse > 0 for _, rmse in run["trace"]), run["label"]
    runs = doc["digits"]["runs"]
    assert {"mlp", "rsl_linear_k4", "kan_k4"} <= set(runs)
    for kind in runs:
        assert 0 <= runs[kind][0]["accuracy"] <= 1, kind
    assert "### (b) digits" in done.stdout
