"""Presents a run's results: the markdown table, the JSON file, the plots and
benchmarks/RESULTS.md. Everything here reads the JSON document run.py builds
(see run.py for its layout), so a saved JSON can be re-rendered."""

import json

from cases import BASELINE, FLOPS_PER_PAIR, PHASE_LABELS

# The sizes DESIGN.md §6 states its targets at, and the lesson's.
HEADLINE_SIZE = (262_144, 1024)
LESSON_SIZE = (20, 8)


def format_time(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_bytes(count):
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count} B"


def find(doc, impl, phase, n, k):
    for record in doc["results"]:
        if (record["impl"], record["phase"], record["n"], record["k"]) == (impl, phase, n, k):
            return record
    return None


def _median(record):
    if record is None or record["time"] is None:
        return None
    return record["time"]["median_s"]


def _time_cells(record):
    if record["status"] == "skipped":
        return [record["reason"], "", "", "", ""]
    if record["time"] is None:
        return [record.get("time_error") or "not timed", "", "", "", ""]
    t = record["time"]
    fraction = record["fma_peak_fraction"]
    return [
        format_time(t["median_s"]),
        format_time(t["iqr_s"]),
        format_time(t["min_s"]),
        f"{record['g_pairs_per_s']:.3g}",
        "" if fraction is None else f"{100 * fraction:.3g}%",
    ]


def _memory_cell(record, resolution):
    if record["status"] == "skipped":
        return "skipped"
    if record["memory"] is not None:
        peak = record["memory"]["peak_extra_bytes"]
        return format_bytes(peak) if peak >= resolution else f"< {format_bytes(resolution)}"
    return record.get("memory_error") or "not measured"


def _speedup_cell(doc, record):
    """How many times faster the baseline implementation is on this case."""
    if record["impl"] == BASELINE:
        return "1"
    ours = _median(find(doc, BASELINE, record["phase"], record["n"], record["k"]))
    theirs = _median(record)
    if ours is None or theirs is None:
        return ""
    return f"{theirs / ours:.3g}×"


def table_markdown(doc):
    labels = doc["implementations"]
    header = [
        "phase", "N", "K", "implementation", "median", "IQR", "best", "G pairs/s",
        "of FMA peak", "peak extra memory", f"{labels[BASELINE]} speedup",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for record in doc["results"]:
        cells = [
            PHASE_LABELS[record["phase"]], f"{record['n']:,}", f"{record['k']:,}",
            labels[record["impl"]], *_time_cells(record),
            _memory_cell(record, doc["settings"]["memory_resolution_bytes"]),
            _speedup_cell(doc, record),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_json(doc, path):
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


# --------------------------------------------------------------------- plots



def _sweep(doc, impl, phase, vary, fixed_name, fixed_value, value):
    points = []
    for record in doc["results"]:
        if (record["impl"], record["phase"], record[fixed_name]) != (impl, phase, fixed_value):
            continue
        y = value(record)
        if y is not None:
            points.append((record[vary], y))
    return sorted(points)


def _plot(doc, path, vary, fixed_name, fixed_value, value, ylabel, title, floor=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phases = doc["settings"]["phases"]
    figure, axes = plt.subplots(1, len(phases), figsize=(5 * len(phases), 4), squeeze=False)
    for axis, phase in zip(axes[0], phases):
        for impl, label in doc["implementations"].items():
            points = _sweep(doc, impl, phase, vary, fixed_name, fixed_value, value)
            if points:
                xs, ys = zip(*points)
                axis.plot(xs, ys, marker="o", label=label)
        if floor is not None:
            axis.axhline(floor, color="gray", linestyle="--", linewidth=1,
                         label="resolution (smaller values drawn here)")
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel(vary.upper())
        axis.set_ylabel(ylabel)
        axis.set_title(PHASE_LABELS[phase])
        axis.grid(True, which="both", alpha=0.3)
    # One legend below the panels, where it hides no data.
    handles, names = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, names, loc="lower center", ncol=len(names), frameon=False)
    machine = doc["machine"]
    figure.suptitle(
        f"{title}, {fixed_name.upper()} = {fixed_value:,}, {doc['settings']['dtype']}, "
        f"{machine['threads']} threads, {machine.get('gpu', machine['cpu_model'])}"
    )
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_time_vs_k(doc, path):
    _plot(doc, path, "k", "n", doc["settings"]["at_n"], _median, "median time per call (s)",
          "Time vs K")


def plot_memory_vs_n(doc, path):
    # A log axis cannot show the zeros of measurements below the resolution
    # (or of exact ones, on CUDA): they are drawn at the resolution, or 1 KiB.
    floor = max(doc["settings"]["memory_resolution_bytes"], 1024)

    def peak(record):
        if record["memory"] is None:
            return None
        return max(record["memory"]["peak_extra_bytes"], floor) / 2**20

    _plot(doc, path, "n", "k", doc["settings"]["at_k"], peak,
          "peak memory above inputs (MiB)", "Peak memory vs N", floor / 2**20)


# ---------------------------------------------------------------- RESULTS.md


def headline_lines(doc):
    """The figures DESIGN.md §6 sets targets for, as markdown bullets; empty
    when the run did not cover the headline sizes."""
    labels = doc["implementations"]
    others = [impl for impl in labels if impl != BASELINE]
    n, k = HEADLINE_SIZE
    lines = []

    def ratios(phase, at_n, at_k):
        """The baseline's median and, per other implementation, how many times
        faster the baseline is: by medians and by best blocks."""
        own = find(doc, BASELINE, phase, at_n, at_k)
        ours = _median(own)
        parts = []
        for impl in others:
            record = find(doc, impl, phase, at_n, at_k)
            theirs = _median(record)
            if ours is not None and theirs is not None:
                best = record["time"]["min_s"] / own["time"]["min_s"]
                faster = theirs >= ours  # relu_ext's own breakpoint algorithm may win
                parts.append(f"**{(theirs / ours if faster else ours / theirs):.3g}×** "
                             f"{'faster' if faster else 'slower'} than {labels[impl]} "
                             f"(medians {format_time(ours)} vs {format_time(theirs)}; "
                             f"{(best if faster else 1 / best):.3g}× by best blocks)")
            elif record is not None and record["status"] == "skipped":
                parts.append(f"{labels[impl]} {record['reason']}")
        return ours, parts

    for phase in doc["settings"]["phases"]:
        ours, parts = ratios(phase, n, k)
        if ours is None:
            continue
        record = find(doc, BASELINE, phase, n, k)
        rate = f"{record['g_pairs_per_s']:.3g} G pairs/s"
        if record["fma_peak_fraction"] is not None:
            rate += (f", {100 * record['fma_peak_fraction']:.3g}% of the FP32 FMA peak at "
                     f"{FLOPS_PER_PAIR[phase]} FLOPs per pair")
        lines.append(f"- {PHASE_LABELS[phase]}, N = {n:,}, K = {k:,}: {labels[BASELINE]} "
                     f"{rate}; " + "; ".join(parts) + ".")

    memory = []
    for impl, label in labels.items():
        record = find(doc, impl, "forward_backward", n, k)
        if record is None:
            continue
        memory.append(f"{label} {_memory_cell(record, doc['settings']['memory_resolution_bytes'])}")
    if memory:
        lines.append(f"- Forward + backward peak memory above the inputs, N = {n:,}, K = {k:,}: "
                     + ", ".join(memory) + ".")

    ln, lk = LESSON_SIZE
    ours, parts = ratios("forward_backward", ln, lk)
    if ours is not None:
        lines.append(f"- The lesson's size (N = {ln}, K = {lk}), forward + backward: "
                     f"{labels[BASELINE]} " + "; ".join(parts) + ".")
    return lines


def results_markdown(doc, time_plot, memory_plot, json_path, note):
    machine, settings = doc["machine"], doc["settings"]
    build = machine["relu_ext"]
    flops = ", ".join(f"{PHASE_LABELS[p]} {c}" for p, c in FLOPS_PER_PAIR.items())
    peak = doc["fma_peak_gflops"]
    peak_text = ("not known" if peak is None else
                 f"{peak:.4g} GFLOP/s ({doc['fma_peak_source']})")
    sections = [
        "# Benchmarks: relu_ext against eager PyTorch and torch.compile",
        "",
        "Generated by `make bench` (`python benchmarks/run.py`); regenerate after changing the "
        f"kernels. The raw figures are in [{json_path}]({json_path}).",
        "",
        f"- Date: {machine['date_utc']}",
        f"- Machine: {machine['cpu_model']}, {machine['logical_cpus']} logical CPUs, "
        f"{machine['threads']} threads; {machine['platform']}"
        + (f"; GPU {machine['gpu']}" if "gpu" in machine else ""),
        f"- Software: Python {machine['python']}, torch {machine['torch']}, relu_ext "
        f"{build['version']} ({build['cpu_isa']} kernels)",
        f"- Device {machine['device']}, dtype {settings['dtype']}; load average "
        f"{machine['load_average_at_start'][0]:.2f} at the start, "
        f"{machine['load_average_at_end'][0]:.2f} at the end (1 min)",
    ]
    if note:
        sections.append(f"- Conditions: {note}")
    headline = headline_lines(doc)
    if headline:
        sections += ["", "## Headline", "", *headline]
    sections += [
        "",
        "## How it is measured",
        "",
        "- Implementations: " + "; ".join(
            f"**{label}**" for label in doc["implementations"].values()) + ". torch.compile "
        "(Inductor) compiles each case's shapes separately (`dynamic=False`); compilation happens "
        "in the warm-up and is not timed (its first-call time is in the JSON).",
        "- Phases: forward (no autograd); forward + backward (gradients of x, m, b and a); one SGD "
        "step of `ReLUSum` (zero_grad, MSE loss, backward for m, b, a, `optimizer.step()`), the "
        "reference implementations in a module holding the same parameters.",
        "- Time: `torch.utils.benchmark.Timer.blocked_autorange`, median, interquartile range "
        f"and best of blocks: at least {settings['min_run_time_s']} s per case, taken in "
        f"{settings['rounds']} round(s) over all the cases of one size, so that a spell of "
        "interference from other processes does not decide a case alone. Throughput is N·K "
        "pairs per second.",
        f"- FMA peak: {peak_text}. The fraction of peak counts FLOPs per (input, unit) pair as "
        f"the fused kernels perform them ({flops}; a multiply or add is one FLOP, an FMA two, "
        "max/compare/select none). The kernels also spend vector slots on max and select, so "
        "100% is out of reach by construction.",
        "- Memory: each case in a fresh process; after the inputs are allocated and one warm-up "
        "call, the peak counter is reset (`/proc/self/clear_refs`, with glibc's mmap threshold "
        "fixed so freed tensors leave the resident set), the case runs once, and the table gives "
        "the peak resident set (VmHWM) above the level at the reset"
        + (". The kernel counts resident pages per CPU in batches, so figures below "
           f"{format_bytes(settings['memory_resolution_bytes'])} read as \"<\" that"
           if settings["memory_resolution_bytes"] else
           " (on CUDA: torch.cuda.max_memory_allocated above the allocation at the reset)")
        + ". Cases whose predicted peak exceeds the memory budget "
        f"({format_bytes(settings['memory_budget_bytes'])} here; by default a third of the memory "
        "available at the start) are neither timed nor measured.",
        "",
        "## Plots",
        "",
        f"![time vs K]({time_plot})",
        "",
        f"![peak memory vs N]({memory_plot})",
        "",
        "## All cases",
        "",
        table_markdown(doc),
        "",
    ]
    return "\n".join(sections)
