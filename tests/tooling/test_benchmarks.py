"""The op benchmark (benchmarks/run.py, what `make bench` runs) end to end on
its quick grid: it runs, prints one table row per case it wrote to its result
file, every case timed and measured, and draws its two plots. The figures
themselves depend on the machine and its load: not checked."""

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
