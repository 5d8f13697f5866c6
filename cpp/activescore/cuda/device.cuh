// Host-side CUDA plumbing for the driver: errors as C++ exceptions, owning handles for device memory, streams,
// events and graphs, and the device cell list (CUB radix sort by cell, in original-index order).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

#include "../dispatch.hpp"
#include "../system_spec.hpp"
#include "kernels.cuh"

namespace activescore {
namespace cuda {

// Any CUDA API error becomes a std::runtime_error carrying the CUDA error string (pybind11: RuntimeError). The
// error is cleared first where it is not sticky, so the next call does not see it again.
inline void check(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  cudaGetLastError();
  throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorName(status) + ": " +
                           cudaGetErrorString(status));
}

// Checks that the kernels just launched were launchable (bad configuration, no kernel image for this GPU).
inline void check_launch(const char* what) { check(cudaGetLastError(), what); }

inline unsigned blocks_for(std::size_t n) { return static_cast<unsigned>((n + kBlockThreads - 1) / kBlockThreads); }

template <class T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(std::size_t n) {
    if (n > 0) check(cudaMalloc(reinterpret_cast<void**>(&data_), n * sizeof(T)), "cudaMalloc");
    size_ = n;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  ~DeviceArray() { release(); }

  T* get() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
  void release() {
    if (data_ != nullptr) cudaFree(data_);  // errors cannot be reported from a destructor
    data_ = nullptr;
    size_ = 0;
  }
};

class Stream {
 public:
  Stream() { check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate"); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() {
    cudaStreamSynchronize(stream_);
    cudaStreamDestroy(stream_);
  }
  cudaStream_t get() const { return stream_; }
  void synchronize(const char* what) const { check(cudaStreamSynchronize(stream_), what); }

 private:
  cudaStream_t stream_ = nullptr;
};

class Event {
 public:
  Event() { check(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming), "cudaEventCreate"); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event() { cudaEventDestroy(event_); }
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

class GraphExec {
 public:
  GraphExec() = default;
  GraphExec(const GraphExec&) = delete;
  GraphExec& operator=(const GraphExec&) = delete;
  ~GraphExec() {
    if (exec_ != nullptr) cudaGraphExecDestroy(exec_);
  }
  explicit operator bool() const { return exec_ != nullptr; }
  cudaGraphExec_t get() const { return exec_; }

  // Captures what enqueue() puts on `stream` into a graph. The stream leaves capture mode even if enqueue throws.
  template <class Enqueue>
  void capture(cudaStream_t stream, Enqueue&& enqueue) {
    check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    cudaGraph_t graph = nullptr;
    try {
      enqueue();
    } catch (...) {
      cudaStreamEndCapture(stream, &graph);
      if (graph != nullptr) cudaGraphDestroy(graph);
      cudaGetLastError();
      throw;
    }
    check(cudaStreamEndCapture(stream, &graph), "cudaStreamEndCapture");
    const cudaError_t status = cudaGraphInstantiate(&exec_, graph, 0);
    cudaGraphDestroy(graph);
    if (status != cudaSuccess) exec_ = nullptr;
    check(status, "cudaGraphInstantiate");
  }

 private:
  cudaGraphExec_t exec_ = nullptr;
};

// Switches to `device` for the lifetime of the guard (the runtime's current device is per host thread).
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != device) check(cudaSetDevice(device), "cudaSetDevice");
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;
  ~DeviceGuard() {
    int current = previous_;
    cudaGetDevice(&current);
    if (current != previous_) cudaSetDevice(previous_);
  }

 private:
  int previous_ = 0;
};

// CUB radix sort of (key, value) pairs over key bits [0, end_bit): radix_sort.cu, so CUB is compiled once.
std::size_t radix_sort_temp_bytes(int n, int end_bit);
void radix_sort_pairs(void* temp, std::size_t temp_bytes, const unsigned* keys_in, unsigned* keys_out,
                      const unsigned* values_in, unsigned* values_out, int n, int end_bit, cudaStream_t stream);

// Bits needed for the keys 0 .. cells - 1.
inline int key_bits(unsigned cells) {
  int bits = 0;
  while (bits < 32 && (cells - 1u) >> bits) ++bits;
  return bits;
}

// The cell-list index of n particles: (cell, slot) scattered by original index, the sorted copy and the cell
// ranges. Everything is sized once; nothing allocates per step.
class DeviceCellList {
 public:
  // interacting = false: no cell ranges and no sort (original-index order). One cell: no sort either.
  DeviceCellList(std::size_t n, int side, bool interacting)
      : n_(n), cells_(static_cast<unsigned>(side) * static_cast<unsigned>(side)), sorted_(interacting && cells_ > 1),
        end_bit_(key_bits(cells_)), key_by_tag_(n), slot_by_tag_(n), cell_range_(interacting ? cells_ : 0) {
    if (sorted_) {
      sorted_key_ = DeviceArray<unsigned>(n);
      sorted_slot_ = DeviceArray<unsigned>(n);
      temp_bytes_ = radix_sort_temp_bytes(static_cast<int>(n), end_bit_);
      temp_ = DeviceArray<unsigned char>(temp_bytes_);
    }
  }

  // Empties every cell before the gather fills the occupied ones.
  void clear_ranges(cudaStream_t stream) {
    if (cell_range_.size() > 0)
      check(cudaMemsetAsync(cell_range_.get(), 0, cell_range_.size() * sizeof(CellRange), stream), "cudaMemsetAsync");
  }

  void sort(cudaStream_t stream) {
    if (!sorted_) return;
    radix_sort_pairs(temp_.get(), temp_bytes_, key_by_tag_.get(), sorted_key_.get(), slot_by_tag_.get(),
                     sorted_slot_.get(), static_cast<int>(n_), end_bit_, stream);
  }

  unsigned* key_by_tag() const { return key_by_tag_.get(); }
  unsigned* slot_by_tag() const { return slot_by_tag_.get(); }
  // After sort(): keys and source slots in (cell, original index) order. Unsorted: original-index order, which
  // is the same thing when every key is equal.
  const unsigned* sorted_key() const { return sorted_ ? sorted_key_.get() : key_by_tag_.get(); }
  const unsigned* sorted_slot() const { return sorted_ ? sorted_slot_.get() : slot_by_tag_.get(); }
  CellRange* cell_range() const { return cell_range_.get(); }
  unsigned cells() const { return cells_; }
  bool sorted() const { return sorted_; }

 private:
  std::size_t n_;
  unsigned cells_;
  bool sorted_;
  int end_bit_;
  DeviceArray<unsigned> key_by_tag_, slot_by_tag_, sorted_key_, sorted_slot_;
  DeviceArray<CellRange> cell_range_;
  DeviceArray<unsigned char> temp_;
  std::size_t temp_bytes_ = 0;
};

}  // namespace cuda
}  // namespace activescore
