"""Mutation testing of the emulator suite: does `pytest -m cuda_emu` catch
real CUDA bugs?

Each mutation is one textual edit of csrc/cuda/ (a bug a CUDA kernel can
plausibly have). For each, this script copies csrc/, tests/ and
pyproject.toml to a temporary folder (the repository's files are never
edited), applies the edit there, and runs the emulator suite on the copy
with the copy's own emulator build, as `make test-cuda-emu` runs it (without the
install step: the copy uses the installed relu_ext, whose CPU ops are the
reference and which a CUDA-source edit does not change). A mutant is killed
when a test fails; a mutant that does not compile is an error of this
script, not a kill.

    python tests/cuda/cuda_emu/mutate.py                 # all, table into docs/cuda.md
    python tests/cuda/cuda_emu/mutate.py --only shuffle_tree_start_8 --keep

The table goes into docs/cuda.md, between markers owned by this script.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
KERNELS = "csrc/cuda/relu_sum_kernels.cuh"
LAUNCHER = "csrc/cuda/relu_sum_cuda.cu"
LINEAR_KERNELS = "csrc/cuda/relu_sum_linear_kernels.cuh"
LINEAR_LAUNCHER = "csrc/cuda/relu_sum_linear_cuda.cu"


@dataclass(frozen=True)
class Mutation:
    name: str
    kind: str  # what the issue calls it
    path: str
    old: str  # must occur exactly once in path
    new: str
    what: str


# The list first (an interrupted run still covers it), then more.
MUTATIONS = [
    Mutation("drop_sync_tile_reuse", "drop a barrier", KERNELS,
             "    __syncthreads();  // every thread is done reading the previous tile\n", "",
             "per_input_kernel: the next tile overwrites one still being read"),
    Mutation("drop_sync_tile_ready", "drop a barrier", KERNELS,
             "    __syncthreads();  // the tile is complete before anyone reads it\n", "",
             "per_input_kernel: a tile is read before it is complete"),
    Mutation("drop_sync_chunk_reuse", "drop a barrier", KERNELS,
             "    __syncthreads();  // every thread is done with the previous chunk\n", "",
             "param_grad_kernel: the next chunk overwrites one still being read"),
    Mutation("drop_sync_chunk_ready", "drop a barrier", KERNELS,
             "    __syncthreads();  // the chunk is complete before anyone reads it\n", "",
             "param_grad_kernel: a chunk is read before it is complete"),
    Mutation("tile_tail_off_by_one", "tail off-by-one", KERNELS,
             "u.count - k0 < kTileK ? u.count - k0 : kTileK",
             "u.count - k0 < kTileK ? u.count - k0 - 1 : kTileK",
             "per_input_kernel: the last unit of a partial tile is dropped"),
    Mutation("chunk_tail_off_by_one", "tail off-by-one", KERNELS,
             "n - begin < kChunk ? n - begin : kChunk",
             "n - begin < kChunk ? n - begin - 1 : kChunk",
             "param_grad_kernel: the last input of a partial chunk is dropped"),
    Mutation("shuffle_tree_start_8", "shuffle tree start", KERNELS,
             "for (int offset = 16; offset > 0; offset /= 2)",
             "for (int offset = 8; offset > 0; offset /= 2)",
             "reduce_blocks_kernel: lanes 16-31 of the warp are never added"),
    Mutation("read_past_end_40", "read past the end", KERNELS,
             "xv[r] = i < n ? load_acc(x, walk.index()) : A(0);",
             "xv[r] = i < n + 40 ? load_acc(x, walk.index()) : A(0);",
             "per_input_kernel: reads up to 40 inputs past x's end (values unused)"),
    Mutation("write_past_end", "write past the end", KERNELS,
             "if (i < n) out[walk.index()] = static_cast<T>(sum[r]);",
             "if (i <= n) out[walk.index()] = static_cast<T>(sum[r]);",
             "per_input_kernel: stores one element past the output's end"),
    Mutation("tile_stride", "wrong tile stride", KERNELS,
             "for (int64_t k0 = 0; k0 < u.count; k0 += kTileK) {",
             "for (int64_t k0 = 0; k0 < u.count; k0 += kTileK + 1) {",
             "per_input_kernel: one unit between tiles is skipped"),
    Mutation("grid_stride", "wrong tile stride", KERNELS,
             "for (int64_t c = slot; c * span < n; c += slots) {",
             "for (int64_t c = slot; c * span < n; c += slots + 1) {",
             "param_grad_kernel: the grid-stride loop skips chunk 512 (needs N > 512 chunks)"),
    Mutation("skip_last_partial_block", "skip the last partial block", LAUNCHER,
             "channel_grid(layout, ceil_div(layout.positions, kThreads * kItems));",
             "channel_grid(layout, std::max<int64_t>(layout.positions / (kThreads * kItems), 1));",
             "launch_per_input: a partial last block is not launched"),
    Mutation("reverse_chunk_order", "wrong reduction order", KERNELS,
             "for (int i = 0; i < len; ++i)",
             "for (int i = len - 1; i >= 0; --i)",
             "param_grad_kernel: a chunk's inputs summed last to first"),
    Mutation("reverse_unit_order", "wrong reduction order", KERNELS,
             "for (int j = 0; j < tile_len; ++j) {",
             "for (int j = tile_len - 1; j >= 0; --j) {",
             "per_input_kernel: a tile's units summed last to first"),
    Mutation("reduce_blocks_reversed", "wrong reduction order", KERNELS,
             "for (int64_t blk = threadIdx.x; blk < blocks; blk += 32) s += partial[blk * cols + col];",
             "for (int64_t blk = threadIdx.x + (blocks - 1 - threadIdx.x) / 32 * 32; blk >= 0 && "
             "blk < blocks; blk -= 32) s += partial[blk * cols + col];",
             "reduce_blocks_kernel: a lane sums its blocks last to first"),
    Mutation("first_chunk_accumulates", "wrong reduction order", KERNELS,
             "    first_chunk = false;\n", "",
             "param_grad_kernel: the first chunk adds to the (uninitialised) row"),
    Mutation("reduce_write_past_end", "write past the end", KERNELS,
             "if (col >= cols) return;  // the whole warp leaves together",
             "if (col > cols) return;  // the whole warp leaves together",
             "reduce_blocks_kernel: the warp of column `cols` reads and writes past the end"),
    Mutation("item_stride", "wrong tile stride", KERNELS,
             "    if (i < n) out[walk.index()] = static_cast<T>(sum[r]);",
             "    if (i < n) out[first + static_cast<int64_t>(r) * (kThreads - 1)] ="
             " static_cast<T>(sum[r]);",
             "per_input_kernel: results stored with another stride than inputs were loaded"),
    Mutation("skip_last_partial_chunk", "skip the last partial block", KERNELS,
             "for (int64_t c = slot; c * span < n; c += slots) {",
             "for (int64_t c = slot; (c + 1) * span <= n; c += slots) {",
             "param_grad_kernel: a partial last chunk is not summed"),
    Mutation("skip_last_reduce_block", "skip the last partial block", LAUNCHER,
             "const dim3 reduce_grid(static_cast<unsigned>(ceil_div(cols, kReduceWarps)));",
             "const dim3 reduce_grid(static_cast<unsigned>(std::max<int64_t>(cols / kReduceWarps, 1)));",
             "param_grads: the reduction's partial last block is not launched"),
    Mutation("walk_skips_no_channels", "wrong tile stride", "csrc/cuda/channel_layout.h",
             "      index_ += skip_;\n", "",
             "ChannelWalk: a step into the next run lands in another channel's inputs"),
    Mutation("units_of_channel_0", "wrong offset", "csrc/cuda/channel_layout.h",
             "const int64_t at = c * u.count;", "const int64_t at = 0 * c;",
             "channel_units: every channel reads channel 0's units"),
    Mutation("columns_read_lane_0_units", "wrong offset", KERNELS,
             "const A m = tile_m[j * kLanes + lane], b = tile_b[j * kLanes + lane];",
             "const A m = tile_m[j * kLanes], b = tile_b[j * kLanes];",
             "per_input_kernel by columns: every lane sums lane 0's channel's m and b"),
    Mutation("columns_lane_unclamped", "read past the end", "csrc/cuda/channel_layout.h",
             "return {column < l.width ? column : l.width - 1, lane / l.tile_width, active};",
             "return {column, lane / l.tile_width, active};",
             "column_lane: lanes past the row's end take channels past C (their units)"),
    Mutation("columns_skip_last_partial_block", "skip the last partial block", LAUNCHER,
             "column_grid(layout, ceil_div(layout.rows, block_rows));",
             "column_grid(layout, std::max<int64_t>(layout.rows / block_rows, 1));",
             "launch_per_input by columns: a partial last slice of rows is not launched"),
    Mutation("columns_slot_ignores_warp_row", "wrong offset", KERNELS,
             "(slot * layout.tile_rows + me.row) * layout.inner",
             "(slot * layout.tile_rows) * layout.inner",
             "param_grad_kernel by columns: a warp's rows write one slot's sums (a race)"),
    Mutation("grads_of_channel_0", "wrong offset", KERNELS,
             "out_row * Rows::count * row_len + channel * u.count;",
             "out_row * Rows::count * row_len;",
             "param_grad_kernel: every channel's sums go to channel 0's columns"),
]

# relu_sum_linear's kernels (test_cuda_emulator_linear.py): run them alone with
# `mutate.py --only $(python mutate.py --list-linear) -k linear --doc ''`.
LINEAR_MUTATIONS = [
    Mutation("lin_drop_sync_hinge_reuse", "drop a barrier", LINEAR_KERNELS,
             "    __syncthreads();  // every thread is done reading the previous hinge step\n", "",
             "linear_forward_kernel: the next hinge step overwrites one still being read"),
    Mutation("lin_drop_sync_hinge_ready", "drop a barrier", LINEAR_KERNELS,
             "    __syncthreads();  // the hinge step is complete before anyone reads it\n", "",
             "linear_forward_kernel: a hinge step is read before it is complete"),
    Mutation("lin_drop_sync_output_reuse", "drop a barrier", LINEAR_KERNELS,
             "        __syncthreads();  // every thread is done reading the previous output step\n",
             "", "linear_grad_t_kernel: the next step of g, a overwrites one still being read"),
    Mutation("lin_drop_sync_output_ready", "drop a barrier", LINEAR_KERNELS,
             "        __syncthreads();  // the output step is complete before anyone reads it\n", "",
             "linear_grad_t_kernel: a step of g, a is read before it is complete"),
    Mutation("lin_drop_sync_sums_ready", "drop a barrier", LINEAR_KERNELS,
             "        __syncthreads();  // the sums are complete before anyone reads them\n", "",
             "linear_grad_t_kernel: dm, db column sums read before every row wrote them"),
    Mutation("lin_drop_sync_chunk_ready", "drop a barrier", LINEAR_KERNELS,
             "    __syncthreads();  // the chunk is complete before anyone reads it\n", "",
             "linear_grad_a_kernel: a chunk is read before it is complete"),
    Mutation("lin_hinge_tail_off_by_one", "tail off-by-one", LINEAR_KERNELS,
             "      if (j < width) {\n", "      if (j < width - 1) {\n",
             "linear_forward_kernel: the last hinge is dropped"),
    Mutation("lin_skip_last_partial_n_tile", "skip the last partial block", LINEAR_LAUNCHER,
             "linear_ceil_div(s.n, kLinearTile) * linear_ceil_div(s.outputs, kLinearTile), \"y\");",
             "std::max<int64_t>(s.n / kLinearTile, 1) * linear_ceil_div(s.outputs, kLinearTile), "
             "\"y\");",
             "relu_sum_linear: a partial last n tile is not launched"),
    Mutation("lin_write_past_end", "write past the end", LINEAR_KERNELS,
             "      if (o < s.outputs)\n        y[", "      if (o <= s.outputs)\n        y[",
             "linear_forward_kernel: stores one output past the row's end"),
    Mutation("lin_bias_dropped", "wrong result", LINEAR_KERNELS,
             "bias ? acc[r][c] + bias[o] : acc[r][c]", "acc[r][c]",
             "linear_forward_kernel: bias not added"),
    Mutation("lin_dx_shuffle_tree_start", "shuffle tree start", LINEAR_KERNELS,
             "for (int offset = kSide / 2; offset > 0; offset /= 2)",
             "for (int offset = kSide / 4; offset > 0; offset /= 2)",
             "linear_grad_t_kernel: lanes 8-15 of a row never reach dx"),
    Mutation("lin_dx_last_unit_tile_only", "wrong reduction order", LINEAR_KERNELS,
             "dxv[r] += v;", "dxv[r] = v;",
             "linear_grad_t_kernel: dx keeps only the last tile of units"),
    Mutation("lin_t_slot_stride", "wrong tile stride", LINEAR_KERNELS,
             "for (int64_t tile = slot; tile * kTile < s.n; tile += slots) {",
             "for (int64_t tile = slot; tile * kTile < s.n; tile += slots + 1) {",
             "linear_grad_t_kernel: a slot skips n tiles"),
    Mutation("lin_first_tile_accumulates", "wrong reduction order", LINEAR_KERNELS,
             "          if (tile == slot) {", "          if (false) {",
             "linear_grad_t_kernel: the slot's first n tile adds to the (uninitialised) row"),
    Mutation("lin_sums_reversed", "wrong reduction order", LINEAR_KERNELS,
             "for (int row = 0; row < kSide; ++row) {", "for (int row = kSide - 1; row >= 0; --row) {",
             "linear_grad_t_kernel: dm, db column sums over rows last to first"),
    Mutation("lin_relu_mask_dropped", "wrong result", LINEAR_KERNELS,
             "valid ? relu_backward(u[r][c], preact(xv[r], mk, bk)) : A(0)", "valid ? u[r][c] : A(0)",
             "linear_grad_t_kernel: t ignores the relu mask"),
    Mutation("lin_unit_tail_unchecked", "read past the end", LINEAR_KERNELS,
             "const bool unit = k < s.units;", "const bool unit = k < s.units + 1;",
             "linear_grad_t_kernel: a unit past K (the next input's, or past m's end)"),
    Mutation("lin_da_chunk_stride", "wrong tile stride", LINEAR_KERNELS,
             "chunk * kStep < s.n; chunk += slots) {", "chunk * kStep < s.n; chunk += slots + 1) {",
             "linear_grad_a_kernel: a slot skips chunks"),
    Mutation("lin_da_rows_reversed", "wrong reduction order", LINEAR_KERNELS,
             "    for (int q = 0; q < kStep; ++q) {\n      A gv[kMicro], hv[kMicro];",
             "    for (int q = kStep - 1; q >= 0; --q) {\n      A gv[kMicro], hv[kMicro];",
             "linear_grad_a_kernel: a chunk's rows summed last to first"),
    Mutation("lin_da_rows_unchecked", "read past the end", LINEAR_KERNELS,
             "      tile_h[row][col] = n < s.n && j < width", "      tile_h[row][col] = j < width",
             "linear_grad_a_kernel: hinges of rows past N (x read past its end)"),
    Mutation("lin_reduce_drops_last_slot", "skip the last partial block", LINEAR_LAUNCHER,
             "partial.const_data_ptr<A>(), slots, cols, total.mutable_data_ptr<A>());",
             "partial.const_data_ptr<A>(), slots - 1, cols, total.mutable_data_ptr<A>());",
             "sum_slots: the last slot's row is not summed"),
    Mutation("lin_dx_wrong_lane", "wrong offset", LINEAR_KERNELS,
             "      if (tx == 0) {\n", "      if (tx == 1) {\n",
             "linear_grad_t_kernel: dx stored from a lane that does not hold the row's sum"),
]
MUTATIONS += LINEAR_MUTATIONS


def copy_tree(dest, edited):
    """A fresh copy of the sources in dest, keeping dest/build: the emulator's
    sources keep their times, so ninja reuses their objects; the files in
    `edited` (the previous mutant's, restored, and this one's) are touched, so
    what includes them is rebuilt (a restored file has an old time, and would
    not be). Touching only those keeps a mutant of one launcher from
    rebuilding the other's translation unit."""
    # build_backend, docs, README.md: tests/tooling reads them when collected,
    # and a collection error would "kill" every mutant.
    for name in ("csrc", "tests", "build_backend", "docs"):
        shutil.rmtree(dest / name, ignore_errors=True)
        shutil.copytree(REPO / name, dest / name,
                        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "build"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    for path in edited:
        (dest / path).touch()


def apply(root, mutation):
    path = root / mutation.path
    text = path.read_text()
    count = text.count(mutation.old)
    if count != 1:
        raise SystemExit(f"mutation {mutation.name}: its text occurs {count} times in "
                         f"{mutation.path}, expected once (update the mutation)")
    path.write_text(text.replace(mutation.old, mutation.new))


def run_suite(root, pytest_args):
    """(killed, seconds, the first failing test or the output's tail)."""
    env = dict(os.environ, RELU_EXT_EMU_BUILD_DIR=str(root / "build"))
    command = [sys.executable, "-m", "pytest", "tests", "-m", "cuda_emu", "-x", "-q",
               "-p", "no:cacheprovider", *pytest_args]
    start = time.monotonic()
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    out = done.stdout + done.stderr
    if "Error building extension" in out or "error:" in out and "ninja" in out:
        raise SystemExit(f"the mutant in {root} does not compile:\n{out[-4000:]}")
    failed = re.search(r"^(?:FAILED|ERROR) (\S+)", out, re.M)
    if done.returncode not in (0, 1):
        raise SystemExit(f"pytest exited {done.returncode} in {root}:\n{out[-4000:]}")
    return done.returncode == 1, seconds, failed.group(1) if failed else out[-300:]


_BEGIN = "<!-- section mutations: written by tests/cuda/cuda_emu/mutate.py; do not edit by hand -->"
_END = "<!-- end of section mutations -->"


def write_section(path, body):
    block = f"{_BEGIN}\n{body.rstrip()}\n{_END}"
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(_BEGIN) + ".*?" + re.escape(_END), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="run these mutations (names) only")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    parser.add_argument("--list-linear", action="store_true",
                        help="print the names of relu_sum_linear's mutations and exit")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the run of the unmutated copy")
    parser.add_argument("--doc", default=str(REPO / "docs" / "cuda.md"),
                        help="page to write the table into ('' for none)")
    args, pytest_args = parser.parse_known_args()
    if args.list_linear:
        print(" ".join(m.name for m in LINEAR_MUTATIONS))
        return
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    if args.only and len(chosen) != len(args.only):
        raise SystemExit(f"unknown mutations in {args.only}")

    root = Path(tempfile.mkdtemp(prefix="relu_ext_mutants_"))

    previous = []  # the files the last mutant edited

    def in_copy(mutation):
        edited = previous + ([mutation.path] if mutation else [])
        copy_tree(root, set(edited))
        previous[:] = [mutation.path] if mutation else []
        if mutation:
            apply(root, mutation)
        return run_suite(root, pytest_args)

    if not args.no_baseline:
        killed, seconds, detail = in_copy(None)
        if killed:
            raise SystemExit(f"the unmutated suite fails ({detail}): fix that first")
        print(f"baseline: passes in {seconds:.0f} s", flush=True)
    rows = []
    for mutation in chosen:
        killed, seconds, detail = in_copy(mutation)
        print(f"{mutation.name}: {'killed by ' + detail if killed else 'SURVIVED'} "
              f"({seconds:.0f} s)", flush=True)
        rows.append((mutation, killed, seconds, detail))
        # After each mutant, so that an interrupted run still records its part.
        if args.doc and not args.only:
            write_section(Path(args.doc), table(rows, len(chosen)))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    print(table(rows, len(chosen)))


def table(rows, planned):
    kills = sum(killed for _, killed, _, _ in rows)
    lines = [f"{kills} of {len(rows)} mutants killed ({100 * kills / len(rows):.0f} %)"
             + (f"; {planned - len(rows)} more were not run (interrupted)" if planned > len(rows) else "")
             + ", each by `pytest -m cuda_emu -x` on a copy of the sources (seconds include "
             "rebuilding the emulated kernels).", "",
             "| mutation | kind | the bug | result | first failing test | s |",
             "|---|---|---|---|---|---|"]
    for m, killed, seconds, detail in rows:
        test = detail.split("::", 1)[-1] if killed else "—"
        lines.append(f"| `{m.name}` | {m.kind} | {m.what} | {'killed' if killed else '**survived**'} "
                     f"| `{test}` | {seconds:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
