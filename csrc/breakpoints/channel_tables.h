// The K-level half of the breakpoint algorithm for C channels of units: a
// table (breakpoint_table.h) and its index (interval_index.h) per channel,
// O(C·K log K). Shared units are one channel.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/Parallel.h>

#include "breakpoint_table.h"
#include "interval_index.h"

namespace relu_ext::breakpoints {

template <class T>
struct ChannelTable {
  BreakpointTable<T> table;
  IntervalIndex<T> index;
};

// Channel c's K units among all C·K (channel-major, as m's rows).
inline UnitParams channel_units(const UnitParams& all, int64_t c, int64_t k) {
  return {all.m + c * k, all.b + c * k, all.a ? all.a + c * k : nullptr, k};
}

// Channels are built in parallel, each on one thread; a single table is
// built on the calling thread outside a parallel region, where ATen's sort
// may still use threads of its own.
template <class T>
std::vector<ChannelTable<T>> make_channel_tables(const UnitParams& all, int64_t channels) {
  const int64_t k = all.count / channels;
  std::vector<ChannelTable<T>> tables(channels);
  const auto build = [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      tables[c].table = make_breakpoint_table<T>(channel_units(all, c, k));
      tables[c].index = IntervalIndex<T>(tables[c].table.events);
    }
  };
  if (channels == 1) {
    build(0, 1);
  } else {
    at::parallel_for(0, channels, 1, build);
  }
  return tables;
}

}  // namespace relu_ext::breakpoints
