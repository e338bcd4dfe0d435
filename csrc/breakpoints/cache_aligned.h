// Buffers whose first element starts a cache line. The breakpoint tables'
// rows are whole vectors long, so each row then starts a line too and no
// vector load straddles two lines (which costs two of the core's load slots:
// malloc's 16-byte alignment made the forward's gathers ~2x slower).
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace relu_ext::breakpoints {

constexpr std::size_t kCacheLine = 64;

template <class T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kCacheLine}));
  }
  void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t{kCacheLine}); }
  friend bool operator==(CacheLineAllocator, CacheLineAllocator) { return true; }
  friend bool operator!=(CacheLineAllocator, CacheLineAllocator) { return false; }
};

template <class T>
using AlignedVector = std::vector<T, CacheLineAllocator<T>>;

}  // namespace relu_ext::breakpoints
