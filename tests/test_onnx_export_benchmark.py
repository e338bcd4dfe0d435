"""benchmarks/onnx_export.py end to end at a tiny size: it exports, runs all
three implementations and writes its own RESULTS.md section, leaving the rest
of the page alone. The figures are machine- and load-dependent: not checked."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "onnx_export.py"


@pytest.mark.benchmarks
def test_writes_its_section_with_every_implementation(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\nwritten by someone else\n")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--n", "1000", "--k", "4", "--rounds", "1",
         "--min-run-time", "0.01", "--results-md", str(results)],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    text = results.read_text()
    assert text.startswith("# Results\n\nwritten by someone else\n")
    assert "<!-- section onnx_export: written by benchmarks/onnx_export.py" in text
    assert "<!-- end of section onnx_export -->" in text
    for name in ("relu_ext.relu_sum (fused)", "onnxruntime, exported graph", "reference, eager"):
        assert f"| 4 | {name} | " in text
