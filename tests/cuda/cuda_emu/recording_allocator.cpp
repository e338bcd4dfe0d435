// The allocation registry's source (cuda_emulator.h, checked_ptr): a CPU
// allocator that records every live allocation and otherwise is torch's own,
// except that new memory is filled with 0xFF bytes (a NaN in float and
// double), so a kernel that reads an output it never wrote (at::empty's
// memory is often fresh zeros) poisons its result instead of passing.
// Installed when the emulated ops' library is loaded, for the rest of the
// process, so every CPU tensor created from then on (the tests' inputs, the
// launchers' outputs and buffers) has its exact extent known to the
// emulated kernels' checked pointers. A tensor created before that is
// unknown to the registry and any kernel access to it fails, saying so.
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <cstring>

#include "cuda_emulator.h"

namespace {

class RecordingAllocator final : public c10::Allocator {
 public:
  explicit RecordingAllocator(c10::Allocator* inner) : inner_(inner) {}

  c10::DataPtr allocate(size_t bytes) override {
    c10::DataPtr inner = inner_->allocate(bytes);
    void* data = inner.get();
    if (data) {
      std::memset(data, 0xFF, bytes);
      relu_ext_emu::allocations().add(data, bytes);
    }
    // The inner DataPtr (and with it the inner deleter) lives in the context.
    auto* context = new c10::DataPtr(std::move(inner));
    return {data, context, &release, context->device()};
  }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

 private:
  static void release(void* context) {
    auto* inner = static_cast<c10::DataPtr*>(context);
    if (inner->get()) relu_ext_emu::allocations().remove(inner->get());
    delete inner;
  }

  c10::Allocator* inner_;
};

// Priority above torch's default CPU allocator's (0), so it takes over.
const bool installed = [] {
  static RecordingAllocator recording(c10::GetCPUAllocator());
  c10::SetCPUAllocator(&recording, /*priority=*/1);
  return true;
}();

}  // namespace
