// A block of samples grouped by the cell of one input each falls in, for the
// kernels' groups_forward / groups_backward (cpu/kernel_table.h): a group's
// alpha and beta (forward) or its sums (backward) stay in registers across
// its rows, so a sample costs one pass over its own row of y or g rather than
// a gather of its cell's rows too. A counting sort, O(rows) whatever K is:
// groups come in the order their cells first appear, each group's rows in
// row order, so the sums they make are the same on any number of threads.
#pragma once

#include <cstdint>
#include <vector>

#include "../cpu/kernel_table.h"

namespace relu_ext::breakpoints {

class CellGrouper {
 public:
  explicit CellGrouper(int64_t cells) : count_(cells, 0) {}

  // cell[r] for r < rows; a negative cell leaves row r out of every group.
  // The groups point into this object, valid until the next call.
  cpu::CellGroups group(const int32_t* cell, int64_t rows) {
    used_.clear();
    for (int64_t r = 0; r < rows; ++r)
      if (cell[r] >= 0 && count_[cell[r]]++ == 0) used_.push_back(cell[r]);
    const int64_t groups = static_cast<int64_t>(used_.size());
    begin_.resize(groups + 1);
    begin_[0] = 0;
    // count_ becomes each used cell's next free place in rows_ ...
    for (int64_t u = 0; u < groups; ++u) {
      begin_[u + 1] = begin_[u] + count_[used_[u]];
      count_[used_[u]] = begin_[u];
    }
    rows_.resize(begin_[groups]);
    for (int64_t r = 0; r < rows; ++r)
      if (cell[r] >= 0) rows_[count_[cell[r]]++] = static_cast<int32_t>(r);
    // ... and zero again for the next block.
    for (const int32_t c : used_) count_[c] = 0;
    return {used_.data(), begin_.data(), rows_.data(), groups};
  }

 private:
  std::vector<int32_t> count_, used_, begin_, rows_;
};

}  // namespace relu_ext::breakpoints
