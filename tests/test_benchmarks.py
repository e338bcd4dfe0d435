"""benchmarks/run.py --quick end to end: it runs, and its JSON, table, plots
and markdown report have every implementation's figures in the documented
layout. The figures' values are machine- and load-dependent: not checked."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
IMPLEMENTATIONS = {"fused", "breakpoints", "eager", "compiled"}
PHASES = {"forward", "forward_backward", "train_step"}


def _run(*args, timeout=600):
    return subprocess.run([sys.executable, str(RUN), *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    done = _run("--quick", "--out-dir", str(out), "--results-md", str(out / "RESULTS.md"))
    assert done.returncode == 0, done.stderr[-4000:]
    return out, done.stdout


@pytest.mark.benchmarks
def test_json_layout_and_every_case_measured(quick_run):
    out, _ = quick_run
    doc = json.loads((out / "results.json").read_text())
    assert doc["schema_version"] == 1
    machine = doc["machine"]
    for key in ("cpu_model", "logical_cpus", "threads", "torch", "date_utc", "load_average_at_start",
                "load_average_at_end"):
        assert key in machine, key
    assert {"version", "torch", "cpu_isa", "backends"} <= set(machine["relu_ext"])
    assert doc["fma_peak_gflops"] > 0 and doc["fma_peak_source"].startswith("measured")
    assert set(doc["implementations"]) == IMPLEMENTATIONS
    assert set(doc["flops_per_pair"]) == PHASES

    cases = {(r["impl"], r["phase"], r["n"], r["k"]): r for r in doc["results"]}
    sizes = {(n, k) for _, _, n, k in cases}
    assert len(sizes) >= 3
    assert set(cases) == {(i, p, n, k) for i in IMPLEMENTATIONS for p in PHASES for n, k in sizes}
    for key, record in cases.items():
        assert record["status"] == "ok", (key, record)
        timing = record["time"]
        assert timing is not None, (key, record.get("time_error"))
        assert 0 < timing["min_s"] <= timing["median_s"], key
        assert timing["iqr_s"] >= 0 and timing["runs"] >= timing["blocks"] >= 1, key
        assert record["g_pairs_per_s"] > 0 and record["fma_peak_fraction"] > 0, key
        memory = record["memory"]
        assert memory is not None, (key, record.get("memory_error"))
        assert memory["peak_extra_bytes"] >= 0 and memory["baseline_bytes"] > 0, key


@pytest.mark.benchmarks
def test_table_plots_and_report(quick_run):
    out, stdout = quick_run
    rows = [line for line in stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| phase | N | K | implementation | median")
    for label in ("relu_ext (fused)", "relu_ext (breakpoints)", "reference, eager",
                  "reference, torch.compile"):
        assert sum(label in row for row in rows[1:]) == 9, label  # 3 sizes × 3 phases
    for plot in ("time_vs_k.png", "memory_vs_n.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot
    results_md = (out / "RESULTS.md").read_text()
    assert "](time_vs_k.png)" in results_md and "](memory_vs_n.png)" in results_md
    assert rows[0] in results_md


@pytest.mark.benchmarks
def test_bad_option_names_it():
    done = _run("--impls", "fused,nonsense", timeout=120)
    assert done.returncode == 2
    assert "--impls" in done.stderr and "nonsense" in done.stderr


@pytest.mark.benchmarks
def test_cases_over_the_memory_budget_are_skipped_and_say_so(tmp_path):
    # Eager's forward holds two N×K float32 tensors: 2 MiB at 4096×64, 512 KiB at 1024×64.
    done = _run("--quick", "--out-dir", str(tmp_path), "--phases", "forward",
                "--impls", "fused,eager", "--memory-budget-gib", str(1 / 1024), "--fma-peak", "100")
    assert done.returncode == 0, done.stderr[-4000:]
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["fma_peak_gflops"] == 100 and doc["fma_peak_source"] == "--fma-peak"
    status = {(r["impl"], r["n"], r["k"]): r for r in doc["results"]}
    skipped = status[("eager", 4096, 64)]
    assert skipped["status"] == "skipped" and skipped["time"] is None and skipped["memory"] is None
    assert skipped["reason"] == "skipped (predicted 2 MiB)"
    assert status[("eager", 1024, 64)]["status"] == "ok"
    assert all(r["status"] == "ok" for r in doc["results"] if r["impl"] == "fused")
    assert "| reference, eager | skipped (predicted 2 MiB) |" in done.stdout


def test_half_precision_script_writes_its_section(tmp_path):
    # A tiny size: the script's tables, not its figures, are under test here.
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n")
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "half_precision.py"
    out = subprocess.run([sys.executable, str(script), "--log2-n", "12", "--k", "4", "--rounds", "1",
                          "--min-run-time", "0.01", "--results-md", str(results)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    text = results.read_text()
    assert text.startswith("# Results\n")
    assert "<!-- section half_precision: written by benchmarks/half_precision.py" in text
    for alg in ("dense", "breakpoints"):
        for phase in ("forward", "forward + backward"):
            assert f"| {alg} | {phase} | 4 |" in text
    assert "Peak memory above the inputs" in text


def test_per_channel_script_writes_its_section(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n")
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "per_channel.py"
    out = subprocess.run([sys.executable, str(script), "--quick", "--rounds", "1",
                          "--min-run-time", "0.01", "--results-md", str(results)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    text = results.read_text()
    assert "<!-- section per_channel: written by benchmarks/per_channel.py" in text
    for shape in ("MLP: x (64, 32), dim=-1", "CNN: x (2, 8, 6, 6), dim=1"):
        assert shape in text
    for impl in ("relu_ext", "torch.compile", "eager", "nn.ReLU", "nn.PReLU"):
        assert text.count(f"| {impl} | ") == 2
    assert "| relu_ext | " in text and "1.00× |" in text
