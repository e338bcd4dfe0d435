// Chooses which instruction set's kernels run: the best one that was compiled
// in and that this CPU supports, unless RELU_EXT_CPU_ISA names another (for
// comparing or debugging the builds). Tests switch it with set_isa().
#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "kernel_table.h"

namespace relu_ext::cpu {
namespace {

bool cpu_supports(const KernelTable* t) {
  if (t == nullptr) return false;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  const std::string isa = t->isa;
  if (isa == "avx512")
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("fma");
  if (isa == "avx2")
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
#endif
  return true;  // baseline
}

// Best first.
const KernelTable* const* candidates() {
  static const KernelTable* const all[] = {avx512_kernels(), avx2_kernels(),
                                           baseline_kernels()};
  return all;
}

const KernelTable* find(const std::string& name) {
  for (int i = 0; i < 3; ++i) {
    const KernelTable* t = candidates()[i];
    if (t != nullptr && name == t->isa) return t;
  }
  return nullptr;
}

const KernelTable* choose_at_startup() {
  if (const char* env = std::getenv("RELU_EXT_CPU_ISA"); env != nullptr && *env) {
    const KernelTable* t = find(env);
    if (cpu_supports(t)) return t;
    // An unusable override must not crash the process at import: fall back.
  }
  for (int i = 0; i < 3; ++i)
    if (cpu_supports(candidates()[i])) return candidates()[i];
  return baseline_kernels();
}

std::atomic<const KernelTable*>& current() {
  static std::atomic<const KernelTable*> table{choose_at_startup()};
  return table;
}

}  // namespace

const KernelTable& kernels() { return *current().load(std::memory_order_relaxed); }

const char* set_isa(const char* name) {
  const KernelTable* t = find(name);
  if (!cpu_supports(t)) {
    std::string names;
    const char* avail[3];
    for (int i = 0, n = available_isas(avail); i < n; ++i)
      names += (i ? ", " : "") + std::string(avail[i]);
    throw std::invalid_argument("set_cpu_isa(): expected one of " + names +
                                " (compiled in and supported by this CPU), but got '" +
                                name + "'");
  }
  return current().exchange(t)->isa;
}

int available_isas(const char* names[3]) {
  int n = 0;
  for (int i = 0; i < 3; ++i)
    if (cpu_supports(candidates()[i])) names[n++] = candidates()[i]->isa;
  return n;
}

}  // namespace relu_ext::cpu
