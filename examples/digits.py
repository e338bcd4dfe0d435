"""A learnable activation on real data: scikit-learn's handwritten digits.

An MLP 64 -> 128 -> 128 -> 10 on load_digits (1,797 8x8 images, bundled with
scikit-learn: no download), trained three times with everything equal but the
activation: nn.ReLU, nn.PReLU(128) and relu_ext.ReLUSum(8, channels=128), one
learnable piecewise-linear function per hidden unit that starts as exactly
ReLU. Prints test accuracy (mean ± std over seeds) and training time per
variant, and plots a few of the learned activations. docs/activation.md shows
a run.

    pip install ".[examples]"              # scikit-learn and matplotlib
    python examples/digits.py              # the settings of docs/activation.md
    python examples/digits.py --quick      # a smoke run, seconds
    python examples/digits.py --results-md docs/activation.md   # rewrites its table there
"""

import argparse
import json
import os
import platform
import re
import statistics
import time
from datetime import date
from pathlib import Path

import torch
from torch import nn

import relu_ext

HIDDEN = 128

# Each takes the number of channels (hidden units) of the layer it follows.
VARIANTS = {
    "ReLU": lambda channels: nn.ReLU(),
    "PReLU(128)": lambda channels: nn.PReLU(channels),
    "ReLUSum(8, channels=128)": lambda channels: relu_ext.ReLUSum(8, channels=channels),
}


def load_data(split_seed=0, test_size=0.25):
    """Standardised float32 features and labels: (x_train, y_train, x_test, y_test).

    One stratified split for every variant and seed, so only the training
    seed varies; the scaler sees the training set only."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, stratify=y, random_state=split_seed)
    scaler = StandardScaler().fit(x_train)
    x_train, x_test = (torch.tensor(scaler.transform(a), dtype=torch.float32)
                       for a in (x_train, x_test))
    return x_train, torch.tensor(y_train), x_test, torch.tensor(y_test)


def make_mlp(activation):
    # The Linear layers first: ReLUSum's initialisation draws random numbers
    # too, and this way a seed gives every variant the same weights.
    first, second, out = nn.Linear(64, HIDDEN), nn.Linear(HIDDEN, HIDDEN), nn.Linear(HIDDEN, 10)
    return nn.Sequential(first, activation(HIDDEN), second, activation(HIDDEN), out)


def train(model, x, y, *, epochs, batch_size, lr, seed):
    """Adam on cross-entropy, minibatches reshuffled each epoch by a seeded
    generator. Returns the wall time of the loop in seconds."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    shuffle = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=shuffle).split(batch_size):
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


@torch.no_grad()
def evaluate(model, x, y):
    """(cross-entropy, accuracy) on the whole of x."""
    logits = model(x)
    return (nn.functional.cross_entropy(logits, y).item(),
            (logits.argmax(1) == y).float().mean().item())


def run(data, *, epochs, seeds, batch_size, lr):
    """Trains every variant once per seed. Returns the per-variant results and
    the ReLUSum model of the first seed (for the plot)."""
    x_train, y_train, x_test, y_test = data
    results, relusum_model = {}, None
    for name, activation in VARIANTS.items():
        accuracies, train_losses, times = [], [], []
        for seed in seeds:
            torch.manual_seed(seed)
            model = make_mlp(activation)
            times.append(train(model, x_train, y_train, epochs=epochs, batch_size=batch_size,
                               lr=lr, seed=seed))
            train_losses.append(evaluate(model, x_train, y_train)[0])
            accuracies.append(evaluate(model, x_test, y_test)[1])
            if relusum_model is None and isinstance(model[1], relu_ext.ReLUSum):
                relusum_model = model
            print(f"  {name:26} seed {seed}: test accuracy {accuracies[-1]:.4f}, "
                  f"{times[-1]:.2f} s", flush=True)
        results[name] = {
            "parameters": sum(p.numel() for p in model.parameters()),
            "test_accuracy": accuracies,
            "final_train_loss": train_losses,
            "train_seconds": times,
        }
    return results, relusum_model


def table_markdown(results):
    rows = ["| activation | parameters | test accuracy (mean ± std) | final training loss (mean) "
            "| training time per run (mean) |", "|---|---|---|---|---|"]
    for name, r in results.items():
        acc = r["test_accuracy"]
        std = statistics.stdev(acc) if len(acc) > 1 else 0.0
        rows.append(f"| {name} | {r['parameters']:,} | {100 * statistics.mean(acc):.2f}% "
                    f"± {100 * std:.2f} | {statistics.mean(r['final_train_loss']):.2e} "
                    f"| {statistics.mean(r['train_seconds']):.2f} s |")
    return "\n".join(rows)


@torch.no_grad()
def plot_activations(model, x_train, path, per_layer=4):
    """The learned functions of a few channels of each ReLUSum layer, over the
    range of that channel's training inputs (drawn faintly underneath).

    Channels are ranked by how far they moved from ReLU (the largest
    |f(x) - relu(x)| over their inputs), and the panels show the largest and
    those at the 75th, 50th and 25th percentile: the typical channel as well
    as the extreme."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = [i for i, m in enumerate(model) if isinstance(m, relu_ext.ReLUSum)]
    fig, axes = plt.subplots(len(layers), per_layer, figsize=(3 * per_layer, 2.6 * len(layers)),
                             squeeze=False)
    for row, i in zip(axes, layers):
        act = model[i]
        inputs = model[:i](x_train)  # (N, C): what the activation sees
        low, high = inputs.quantile(0.005, dim=0), inputs.quantile(0.995, dim=0)
        # Each channel's function on a grid over its inputs: its row of (C, K)
        # units used as one shared function of a 1-D tensor.
        grids = [torch.linspace(lo, hi, 200) for lo, hi in zip(low.tolist(), high.tolist())]
        curves = [relu_ext.relu_sum(g, act.m[c], act.b[c], act.a[c]) for c, g in enumerate(grids)]
        change = torch.stack([(f - g.relu()).abs().max() for f, g in zip(curves, grids)])
        ranked = change.argsort(descending=True).tolist()
        picks = [ranked[round(q * (len(ranked) - 1))] for q in (0, 0.25, 0.5, 0.75)][:per_layer]
        for ax, c, label in zip(row, picks, ("largest change", "75th pct", "median", "25th pct")):
            ax.hist(inputs[:, c], bins=40, density=True, color="0.85",
                    range=(low[c].item(), high[c].item()))
            curve = ax.twinx()
            curve.plot(grids[c], grids[c].relu(), "--", color="0.5", lw=1, label="ReLU")
            curve.plot(grids[c], curves[c], color="C3", lw=2, label="learned")
            ax.set_yticks([])
            ax.set_title(f"layer {layers.index(i) + 1}, channel {c} ({label})", fontsize=9)
        row[0].set_ylabel("inputs (histogram)", fontsize=8)
    curve.legend(loc="upper left", fontsize=8)
    fig.suptitle("ReLUSum(8, channels=128) trained on digits (seed 0): the learned activation "
                 "(red), ReLU (dashed)\nand the channel's training inputs (grey); channels ranked "
                 "by their largest change from ReLU", fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_section(path, body):
    """Replaces the text between this script's markers in a markdown page (the
    doc's table is regenerated, never edited by hand)."""
    begin = "<!-- section digits: written by examples/digits.py; do not edit by hand -->"
    end = "<!-- end of section digits -->"
    path = Path(path)
    text = path.read_text()
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{path} has no '{begin}' ... '{end}' markers")
    path.write_text(pattern.sub(lambda _: f"{begin}\n{body.strip()}\n{end}", text))


def machine():
    """What the times were measured on (the machine is shared: the load too)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"date": date.today().isoformat(), "cpu": cpu, "logical_cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "load_average": os.getloadavg()[0],
            "torch": torch.__version__, "relu_ext": relu_ext.__version__,
            "cpu_isa": relu_ext.build_info()["cpu_isa"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=5, help="runs per variant (seeds 0, 1, ...)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    parser.add_argument("--json", help="write the settings, machine and per-seed results here")
    parser.add_argument("--plot", help="save the learned activations here (PNG)")
    parser.add_argument("--results-md", help="rewrite the marked table section of this page")
    parser.add_argument("--threads", type=int, help="torch's intra-op threads (default: torch's)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 epochs, 1 seed")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.seeds = 2, 1
    if args.threads:
        torch.set_num_threads(args.threads)

    settings = {k: getattr(args, k) for k in ("epochs", "seeds", "batch_size", "lr")}
    info = machine()
    print(f"digits: {settings}; {info['cpu']}, {info['torch_threads']} threads, "
          f"torch {info['torch']}", flush=True)
    data = load_data()
    results, relusum_model = run(data, epochs=args.epochs, seeds=range(args.seeds),
                                 batch_size=args.batch_size, lr=args.lr)
    table = table_markdown(results)
    print(table)

    if args.json:
        Path(args.json).write_text(json.dumps(
            {"settings": settings, "machine": info, "results": results}, indent=2) + "\n")
    if args.plot:
        plot_activations(relusum_model, data[0], args.plot)
    if args.results_md:
        split = len(data[0]), len(data[2])
        write_section(args.results_md, "\n".join([
            f"{info['date']}: {args.seeds} seeds, {args.epochs} epochs of Adam (lr {args.lr:g}, "
            f"batch {args.batch_size}) on {split[0]:,} training images, accuracy on the "
            f"{split[1]:,} test images; {info['cpu']}, {info['logical_cpus']} logical CPUs, "
            f"torch threads: {info['torch_threads']} (load average {info['load_average']:.1f} "
            f"at the start), torch {info['torch']}, relu_ext {info['relu_ext']} "
            f"({info['cpu_isa']} kernels).",
            "",
            table,
        ]))
    return results


if __name__ == "__main__":
    main()
