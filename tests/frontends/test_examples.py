"""examples/digits.py: the MLP variants start as the same network, and the
script's --quick run writes its table, JSON, plot and doc section. The
accuracies and times of a 2-epoch run are not checked beyond sanity."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import torch

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits.py"


def load_example():
    spec = importlib.util.spec_from_file_location("digits_example", DIGITS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_variant_is_the_relu_network_at_step_0():
    # What the comparison rests on: a seed gives every variant the same
    # Linear weights, and ReLUSum(8, channels=C) starts as exactly ReLU.
    digits = load_example()
    x = torch.randn(32, 64) * 3
    outputs = {}
    for name, activation in digits.VARIANTS.items():
        torch.manual_seed(0)
        outputs[name] = digits.make_mlp(activation)(x)
    relu = outputs.pop("ReLU")
    assert torch.equal(outputs.pop("ReLUSum(8, channels=128)"), relu)
    # PReLU starts at slope 0.25, as torch initialises it: same weights, other function.
    assert not torch.equal(outputs.pop("PReLU(128)"), relu)


def test_quick_run_writes_table_json_plot_and_doc_section(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Before\n\n<!-- section digits: written by examples/digits.py; do not edit "
                    "by hand -->\nold table\n<!-- end of section digits -->\n\nAfter.\n")
    out = tmp_path / "digits.json", tmp_path / "digits.png"
    done = subprocess.run(
        [sys.executable, str(DIGITS), "--quick", "--threads", "1", "--json", str(out[0]),
         "--plot", str(out[1]), "--results-md", str(page)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]

    doc = json.loads(out[0].read_text())
    assert doc["settings"] == {"epochs": 2, "seeds": 1, "batch_size": 64, "lr": 1e-3}
    assert {"cpu", "logical_cpus", "torch_threads", "torch", "cpu_isa"} <= set(doc["machine"])
    assert list(doc["results"]) == ["ReLU", "PReLU(128)", "ReLUSum(8, channels=128)"]
    for name, result in doc["results"].items():
        assert len(result["test_accuracy"]) == len(result["train_seconds"]) == 1, name
        assert result["test_accuracy"][0] > 0.5, name  # 10 classes: chance is 0.1
        assert result["train_seconds"][0] > 0, name
        assert f"| {name} |" in done.stdout, name
    assert out[1].read_bytes().startswith(b"\x89PNG")

    text = page.read_text()
    assert text.startswith("# Before\n") and text.endswith("\n\nAfter.\n")
    assert "old table" not in text and "| ReLUSum(8, channels=128) |" in text
