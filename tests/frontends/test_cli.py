"""The relu-ext command line: end to end in a subprocess, and every bad input."""

import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import relu_ext
from relu_ext.cli import main
from relu_ext.data import lesson_data

# relu_ext.plot.FIGSIZE at its DPI: 10 x 4 inches at 100 dpi.
PLOT_SIZE = (1000, 400)
FINAL_LOSS = re.compile(r"^final mae loss: (\S+) after (\d+) epochs", re.MULTILINE)


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "relu_ext", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def png_size(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_fit_method_sgd_reproduces_the_lesson(tmp_path):
    result = run_cli("fit", "--method", "sgd", "--save", "model.pt", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bar without a terminal
    assert png_size(tmp_path / "fit.png") == PLOT_SIZE

    printed = FINAL_LOSS.search(result.stdout)
    assert printed and printed.group(2) == "1000", result.stdout
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    model = relu_ext.ReLUSum(saved["units"], out_weights=saved["out_weights"])
    model.load_state_dict(saved["state_dict"])
    x, y = lesson_data(seed=42)
    with torch.no_grad():
        loss = F.l1_loss(model(x), y).item()
    assert float(printed.group(1)) == pytest.approx(loss, rel=1e-5)
    assert saved["out_weights"] is False  # the lesson's plain sum for the quadratic
    assert loss < 1.5  # about the noise level (1.43 for seed 42)


def test_fit_options_end_to_end(tmp_path):
    (tmp_path / "plots").mkdir()
    result = run_cli("fit", "--method", "sgd", "--target", "sin", "--units", "8", "--epochs", "50",
                     "--lr", "0.05",
                     "--batch-size", "5", "--loss", "mse", "--schedule", "onecycle",
                     "--momentum", "0.5", "--seed", "1", "--device", "cpu",
                     "--out", "plots/sin.png", "--checkpoint", "ck.pt", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "final mse loss:" in result.stdout and "output weights on" in result.stdout
    assert png_size(tmp_path / "plots" / "sin.png") == PLOT_SIZE
    assert torch.load(tmp_path / "ck.pt", weights_only=True)["epoch"] == 50


def test_fit_csv_and_resume_in_process(tmp_path, capsys):
    csv = tmp_path / "data.csv"
    csv.write_text("x,y\n" + "".join(f"{i / 10},{abs(i / 10 - 1)}\n" for i in range(21)))
    args = ["fit", "--method", "sgd", "--data", str(csv), "--epochs", "40", "--batch-size", "4", "--quiet",
            "--out", str(tmp_path / "fit.png"), "--checkpoint", str(tmp_path / "ck.pt"),
            "--checkpoint-every", "10"]
    assert main(args) == 0
    first = FINAL_LOSS.search(capsys.readouterr().out).group(1)
    assert main(args + ["--resume"]) == 0
    assert FINAL_LOSS.search(capsys.readouterr().out).group(1) == first
    assert png_size(tmp_path / "fit.png") == PLOT_SIZE

    assert main(args + ["--resume", "--lr", "0.2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "different run; differing: lr=0.2 (checkpoint: 0.1)" in err


def test_fit_with_no_arguments_uses_fit_curve(tmp_path):
    result = run_cli("fit", "--units", "5", "--save", "model.pt", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("method: fit_curve")
    assert png_size(tmp_path / "fit.png") == PLOT_SIZE
    printed = re.search(r"^final mae loss: (\S+) from fit_curve", result.stdout, re.MULTILINE)
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    model = relu_ext.ReLUSum(saved["units"], out_weights=saved["out_weights"],
                             bias=saved["bias"])
    model.load_state_dict(saved["state_dict"])
    x, y = lesson_data(seed=42)
    with torch.no_grad():
        loss = F.l1_loss(model(x), y).item()
    assert float(printed.group(1)) == pytest.approx(loss, rel=1e-5)
    assert loss < 1.2  # below the noise level (1.43): 5 segments through 20 points


def test_fit_curve_notes_the_sgd_options_it_does_not_use(tmp_path, capsys):
    args = ["fit", "--target", "sin", "--points", "100", "--units", "6", "--epochs", "30",
            "--lr", "0.3", "--batch-size", "10", "--quiet", "--out", str(tmp_path / "f.png")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "note: not used by fit_curve (options of --method sgd): --lr, --batch-size" in out
    assert main(args + ["--no-out-weights"]) == 2
    assert "--no-out-weights: fit_curve fits with output weights" in capsys.readouterr().err
    assert main(["fit", "--units", "30", "--out", str(tmp_path / "f.png")]) == 2
    assert "at least as many points as units, but got 20 points for units=30" in (
        capsys.readouterr().err)


def test_fit_curve_options_from_the_command_line(tmp_path, capsys):
    rows = [(i / 20, (i / 20) ** 0.5 + 0.05 * ((-1) ** i), 1 + i % 3) for i in range(61)]
    csv = write(tmp_path, "w.csv", "x,y,w\n" + "".join(f"{x},{y},{w}\n" for x, y, w in rows))
    out = str(tmp_path / "f.png")
    save = str(tmp_path / "m.pt")
    assert main(["fit", "--data", csv, "--weights-column", "w", "--units", "4", "--monotone",
                 "--concave", "--loss", "mse", "--out", out, "--save", save]) == 0
    printed = float(re.search(r"final mse loss: (\S+)", capsys.readouterr().out).group(1))
    saved = torch.load(save, weights_only=True)
    model = relu_ext.ReLUSum(saved["units"], bias=True)
    model.load_state_dict(saved["state_dict"])
    x, y, w = (torch.tensor(c, dtype=torch.float32) for c in zip(*rows))
    with torch.no_grad():
        assert printed == pytest.approx(((w * (model(x) - y) ** 2).sum() / w.sum()).item(),
                                        rel=1e-5)
    slopes = model.to_piecewise().slopes
    assert (slopes >= 0).all() and (torch.diff(slopes) <= 0).all()
    # The same by column number; fixed breakpoints imply the units.
    assert main(["fit", "--data", csv, "--weights-column", "3", "--breakpoints", "0.5,1.5",
                 "--out", out, "--save", save]) == 0
    saved = torch.load(save, weights_only=True)
    assert saved["units"] == 3
    model = relu_ext.ReLUSum(3, bias=True)
    model.load_state_dict(saved["state_dict"])
    torch.testing.assert_close(model.to_piecewise().breakpoints, torch.tensor([0.5, 1.5]))


def three_segments_csv(tmp_path, weights=False):
    """A CSV of 150 noisy points of a function of three segments (kinks at 0.3
    and 0.65), with a column w of weights 1 to 3 when asked."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(150, generator=g, dtype=torch.float64)
    y = x - 3 * torch.relu(x - 0.3) + 4 * torch.relu(x - 0.65)
    y = y + 0.02 * torch.randn(150, generator=g, dtype=torch.float64)
    rows = [(a, b, 1 + i % 3) for i, (a, b) in enumerate(zip(x.tolist(), y.tolist()))]
    text = "x,y,w\n" + "".join(f"{a!r},{b!r},{w}\n" for a, b, w in rows) if weights else \
        "x,y\n" + "".join(f"{a!r},{b!r}\n" for a, b, _ in rows)
    return write(tmp_path, "three.csv", text), [torch.tensor(c) for c in zip(*rows)]


def load_saved(path):
    saved = torch.load(path, weights_only=True)
    model = relu_ext.ReLUSum(saved["units"], bias=True)
    model.load_state_dict(saved["state_dict"])
    return model


@pytest.mark.parametrize("select, options, said", [
    ("bic", [], "units chosen by BIC: 3 of K = 1 to 20"),
    ("cv", ["--select", "cv", "--folds", "4", "--max-units", "6"],
     "units chosen by cross-validation: 3 of K = 1 to 6"),
])
def test_units_auto_prints_and_saves_the_units_chosen(select, options, said, tmp_path, capsys):
    csv, _ = three_segments_csv(tmp_path)
    save = str(tmp_path / "m.pt")
    assert main(["fit", "--data", csv, "--units", "auto", *options, "--save", save,
                 "--out", str(tmp_path / "f.png")]) == 0
    out = capsys.readouterr().out
    assert said in out.splitlines()
    assert "from fit_curve (150 points, 3 units, output weights on)" in out
    model = load_saved(save)  # the saved units are the ones chosen
    torch.testing.assert_close(model.to_piecewise().breakpoints, torch.tensor([0.3, 0.65]),
                               atol=0.02, rtol=0)


def test_summary_prints_curve_summary_of_the_weighted_fit_and_plots_it(tmp_path, capsys,
                                                                       monkeypatch):
    csv, (x, y, w) = three_segments_csv(tmp_path, weights=True)
    drawn = {}
    monkeypatch.setattr("relu_ext.cli.save_fit_plot",
                        lambda path, *args, **kwargs: drawn.update(kwargs))
    save = str(tmp_path / "m.pt")
    assert main(["fit", "--data", csv, "--weights-column", "w", "--units", "3", "--loss", "mse",
                 "--summary", "--save", save, "--out", str(tmp_path / "f.png")]) == 0
    out = capsys.readouterr().out
    # The model saved is float32, as the CSV's points are; the summary computes in float64.
    expected = relu_ext.curve_summary(load_saved(save), x.float(), y.float(), weights=w.float())
    assert str(expected) in out
    assert str(relu_ext.curve_summary(load_saved(save), x.float(), y.float())) not in out
    assert str(drawn["summary"]) == str(expected)  # the plot shades its intervals


def test_summary_of_fixed_breakpoints_treats_them_as_known(tmp_path, capsys):
    csv, _ = three_segments_csv(tmp_path)
    assert main(["fit", "--data", csv, "--breakpoints", "0.3,0.65", "--loss", "mse",
                 "--summary", "--out", str(tmp_path / "f.png")]) == 0
    out = capsys.readouterr().out
    assert "Piecewise-linear curve: 3 segments, breakpoints fixed (treated as known)" in out


def test_summary_in_a_subprocess_draws_the_plot(tmp_path):
    csv, _ = three_segments_csv(tmp_path)
    result = run_cli("fit", "--data", csv, "--units", "auto", "--loss", "mse", "--summary",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "units chosen by BIC: 3" in result.stdout
    assert re.search(r"^breakpoint +estimate +std err .* profile, (F test|bootstrap)$",
                     result.stdout,
                     re.MULTILINE), result.stdout
    assert png_size(tmp_path / "fit.png") == PLOT_SIZE


def test_info(tmp_path):
    result = run_cli("info", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    info = relu_ext.build_info()
    assert f"version: {info['version']}" in result.stdout
    assert f"torch: {info['torch']}" in result.stdout
    assert "backends: cpu" in result.stdout and "cpu_isa: " in result.stdout


def test_console_script_is_installed(tmp_path):
    script = Path(sys.executable).with_name("relu-ext")
    assert script.exists(), "pip did not install the relu-ext console script"
    result = subprocess.run([str(script), "info"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and "version:" in result.stdout


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


BAD_INPUTS = {
    "missing file": (lambda d: ["--data", str(d / "nope.csv")], "nope.csv: no such file"),
    "directory": (lambda d: ["--data", str(d)], "is a directory"),
    "non-numeric": (lambda d: ["--data", write(d, "a.csv", "x,y\n1,2\n3,abc\n")],
                    "line 3: 'abc' is not a number"),
    "non-finite": (lambda d: ["--data", write(d, "n.csv", "1,2\n3,nan\n")],
                   "line 2: 'nan' is not a finite number"),
    "one column": (lambda d: ["--data", write(d, "one.csv", "x\n1\n2\n")],
                   "line 2: expected two columns x,y, but got 1"),
    "empty file": (lambda d: ["--data", write(d, "empty.csv", "")], "no data rows"),
    "header only": (lambda d: ["--data", write(d, "h.csv", "x,y\n")], "no data rows"),
    "unknown option": (lambda d: ["--colour", "red"], "unrecognized arguments: --colour red"),
    "unknown target": (lambda d: ["--target", "cubic"], "invalid choice: 'cubic'"),
    "bad number": (lambda d: ["--epochs", "many"], "invalid int value: 'many'"),
    "zero epochs": (lambda d: ["--epochs", "0"], "--epochs must be at least 1, but got 0"),
    "negative lr": (lambda d: ["--lr", "-1"], "--lr must be a positive number"),
    "both sources": (lambda d: ["--target", "sin", "--data", "x.csv"], "not allowed with"),
    "points with data": (lambda d: ["--data", write(d, "ok.csv", "1,2\n"), "--points", "5"],
                         "--points applies to --target"),
    "resume without checkpoint": (lambda d: ["--resume"], "--resume needs --checkpoint"),
    "resume missing": (lambda d: ["--resume", "--checkpoint", str(d / "none.pt")],
                       "no checkpoint at"),
    "no out directory": (lambda d: ["--out", str(d / "no" / "f.png")],
                         "f.png: directory"),
    "not a device": (lambda d: ["--device", "gpu0"], "'gpu0' is not a device"),
    "other device": (lambda d: ["--device", "mps"], "kernels for cpu and cuda only"),
    "weights without data": (lambda d: ["--weights-column", "w"],
                             "--weights-column applies to --data FILE.csv"),
    "unknown weights column": (lambda d: ["--data", write(d, "w.csv", "x,y,w\n1,2,1\n"),
                                          "--weights-column", "weight"],
                               "no column named 'weight' for the weights"),
    "weights column x": (lambda d: ["--data", write(d, "w.csv", "x,y,w\n1,2,1\n"),
                                    "--weights-column", "1"],
                         "must not be x's or y's (columns 1 and 2), but got column 1"),
    "negative weight": (lambda d: ["--data", write(d, "w.csv", "x,y,w\n1,2,1\n2,3,-1\n"),
                                   "--weights-column", "w"], "line 3: the weight -1 must be >= 0"),
    "short weights row": (lambda d: ["--data", write(d, "w.csv", "x,y,w\n1,2,1\n2,3\n"),
                                     "--weights-column", "w"],
                          "line 3: expected 3 columns, but got 2"),
    "bad breakpoints": (lambda d: ["--breakpoints", "0.5,x"], "expected numbers separated by commas"),
    "units and breakpoints": (lambda d: ["--units", "5", "--breakpoints", "0.5"],
                              "--units 5 needs 4 breakpoints, but --breakpoints has 1"),
    "unsorted breakpoints": (lambda d: ["--breakpoints", "0.5,0.1"],
                             "breakpoints must be strictly increasing"),
    "monotone with sgd": (lambda d: ["--method", "sgd", "--monotone"],
                          "--monotone: options of --method curve"),
    "convex and concave": (lambda d: ["--convex", "--concave"], "not allowed with argument"),
    "monotone direction": (lambda d: ["--monotone", "sideways"], "invalid choice: 'sideways'"),
    "units neither number nor auto": (lambda d: ["--units", "many"],
                                      "argument --units: expected a whole number or auto, but "
                                      "got 'many'"),
    "auto with sgd": (lambda d: ["--method", "sgd", "--units", "auto"],
                      "--units auto: choosing the number of units is fit_curve's"),
    "auto and breakpoints": (lambda d: ["--units", "auto", "--breakpoints", "0.5"],
                             "--units auto: --breakpoints fix the units at one more than their "
                             "count (2)"),
    "max units without auto": (lambda d: ["--units", "4", "--max-units", "6"],
                               "--max-units: for --units auto (choosing the number of units), "
                               "but --units is 4"),
    "select without auto": (lambda d: ["--select", "cv", "--folds", "3"],
                            "--select, --folds: for --units auto"),
    "zero max units": (lambda d: ["--units", "auto", "--max-units", "0"],
                       "--max-units must be at least 1, but got 0"),
    "unknown criterion": (lambda d: ["--units", "auto", "--select", "aic"],
                          "argument --select: invalid choice: 'aic'"),
    "folds without cv": (lambda d: ["--units", "auto", "--folds", "3"],
                         "--folds: for --select cv (cross-validation), but got --select bic"),
    "one fold": (lambda d: ["--units", "auto", "--select", "cv", "--folds", "1"],
                 "--folds must be at least 2, but got 1"),
    "summary with sgd": (lambda d: ["--method", "sgd", "--summary"],
                         "--summary: curve_summary needs a curve with an intercept"),
    "summary of mae": (lambda d: ["--summary"],
                       "--summary: curve_summary's standard errors and intervals are least "
                       "squares', so the fit must be too: add --loss mse (got --loss mae)"),
    "summary without dof": (lambda d: ["--units", "15", "--loss", "mse", "--summary"],
                            "--summary: needs more points than parameters"),
}
CUDA_USABLE = "cuda" in relu_ext.build_info()["backends"] and torch.cuda.is_available()
if not CUDA_USABLE:
    BAD_INPUTS["cuda"] = (lambda d: ["--device", "cuda"],
                          "has no CUDA kernels" if "cuda" not in
                          relu_ext.build_info()["backends"] else "no CUDA GPU")


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_exits_2_with_one_line(case, tmp_path, capsys):
    make_args, message = BAD_INPUTS[case]
    # The case's options come last, so its own --epochs wins.
    args = ["fit", "--epochs", "5", "--out", str(tmp_path / "f.png"), *make_args(tmp_path)]
    try:
        status = main(args)
    except SystemExit as e:  # argparse's own errors
        status = e.code
    captured = capsys.readouterr()
    assert status == 2
    assert captured.err.count("\n") == 1, captured.err
    assert message in captured.err
    assert captured.err.startswith("relu-ext")
    assert not (tmp_path / "f.png").exists()


@pytest.mark.parametrize("args, message", [
    (["fit", "--data", "nope.csv"], "relu-ext fit: error: nope.csv: no such file\n"),
    (["fit", "--bogus"], "relu-ext: error: unrecognized arguments: --bogus"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_input_in_a_subprocess_has_no_traceback(args, message, tmp_path):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_divergence_exits_1_with_one_line(capsys, tmp_path):
    status = main(["fit", "--method", "sgd", "--lr", "10", "--loss", "mse", "--schedule", "none", "--quiet",
                   "--out", str(tmp_path / "f.png")])
    err = capsys.readouterr().err
    assert status == 1
    assert err.count("\n") == 1 and re.search(r"loss became (inf|nan) at epoch \d+", err)
