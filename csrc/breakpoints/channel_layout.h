// x as the breakpoint passes walk it. Per-channel units take x as
// (outer, C, inner) (checks.h), x[o, c, i] using channel c's table. The
// passes visit x in *channel order*: position p = c·E + e, where E =
// outer·inner is the number of elements per channel and e = o·inner + i, so
// that every block of inputs is located in one channel's table, with the
// searches in lockstep (interval_index.h), whatever inner is. Shared units
// are the one-channel case, E = N, where channel order is memory order and
// every block is read in place, as before channels existed.
//
// A block of a channel's elements is contiguous in memory when it lies in
// one run of `inner` elements: always for shared units, mostly for NCHW.
// Otherwise it is gathered run by run into a buffer (element by element,
// stride C, when channels are innermost) and its results scattered back.
#pragma once

#include <algorithm>
#include <cstdint>

#include <ATen/core/Tensor.h>

namespace relu_ext::breakpoints {

// Channel c's elements [e, e + size), e = row·inner + i.
struct Block {
  int64_t channel, row, i, size;
  bool contiguous;  // within one run: in memory from `offset` on
  int64_t offset;
};

struct ChannelLayout {
  int64_t channels;     // C (1 for shared units)
  int64_t inner;        // elements per run
  int64_t per_channel;  // E = outer·inner

  static ChannelLayout of(const at::Tensor& x, const at::Tensor& m) {
    if (m.dim() == 2) return {m.size(0), x.size(2), x.size(0) * x.size(2)};
    return {1, x.numel(), x.numel()};
  }

  // Calls f(block) for the blocks of positions [begin, end) in order: at
  // most `most` elements of one channel each, cut where a channel ends.
  // (No divisions for one channel: a few per block are a measurable part of
  // the shared forward, docs/breakpoints.md.)
  template <class F>
  void for_each_block(int64_t begin, int64_t end, int64_t most, F&& f) const {
    for (int64_t p = begin; p < end;) {
      Block block;
      if (channels == 1) {
        block = {0, 0, p, std::min(most, end - p), true, p};
      } else {
        const int64_t c = p / per_channel, e = p - c * per_channel, row = e / inner;
        const int64_t i = e - row * inner, size = std::min({most, end - p, per_channel - e});
        block = {c, row, i, size, i + size <= inner, (row * channels + c) * inner + i};
      }
      f(block);
      p += block.size;
    }
  }

  // The block's elements: in place, or copied into `stage` when they are not
  // contiguous.
  template <class S>
  const S* read(const S* base, const Block& block, S* stage) const {
    if (block.contiguous) return base + block.offset;
    for_each_run(block, [&](int64_t at, int64_t count, int64_t done) {
      std::copy_n(base + at, count, stage + done);
    });
    return stage;
  }

  // Where a block's results are written: in place, or into `stage`, which
  // finish_write then scatters.
  template <class S>
  S* write_to(S* base, const Block& block, S* stage) const {
    return block.contiguous ? base + block.offset : stage;
  }
  template <class S>
  void finish_write(const S* written, S* base, const Block& block) const {
    if (block.contiguous) return;
    for_each_run(block, [&](int64_t at, int64_t count, int64_t done) {
      std::copy_n(written + done, count, base + at);
    });
  }

 private:
  // f(memory offset, count, elements before it in the block) for each run
  // the block touches, in order.
  template <class F>
  void for_each_run(const Block& block, F&& f) const {
    int64_t row = block.row, i = block.i;
    for (int64_t done = 0; done < block.size; ++row, i = 0) {
      const int64_t count = std::min(inner - i, block.size - done);
      f((row * channels + block.channel) * inner + i, count, done);
      done += count;
    }
  }
};

}  // namespace relu_ext::breakpoints
