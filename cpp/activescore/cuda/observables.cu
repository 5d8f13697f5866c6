// The CUDA backend's one-off calls: forces and drift divergence of a configuration (float64, through the same cell
// list and evaluators as the simulator), Philox on the device, device discovery and description.
#include <cuda_runtime.h>

#include <vector>

#include "../cell_list.hpp"
#include "../simulator.hpp"
#include "cuda_api.cuh"
#include "device.cuh"
#include "kernels.cuh"

namespace activescore {
namespace cuda {
namespace {

__global__ void philox_kernel(uint32_t* out, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                              uint32_t k1) {
  const Philox4x32 r = philox4x32_10(c0, c1, c2, c3, k0, k1);
  for (int a = 0; a < 4; ++a) out[a] = r.v[a];
}

__global__ void normals_kernel(double* out, unsigned long long seed, unsigned long long step, uint32_t particle,
                               uint32_t purpose) {
  const Normal4 r = normals4(seed, step, particle, purpose);
  for (int a = 0; a < 4; ++a) out[a] = r.n[a];
}

// Wrap into the box, cell list, then one thread per particle writes its value at its original index.
template <bool kDivergence>
void observable(const SystemSpec& system, const double* x, const double* radius, std::size_t n, double* out) {
  if (n == 0) return;
  const Box<double> box = Box<double>::make(system.box_length);
  const CellGrid<double> grid = CellGrid<double>::make(box, max_cutoff(system, radius, n));
  const int side = grid.side;
  const bool interacting = system.k != 0.0;
  const unsigned count = static_cast<unsigned>(n);
  const std::size_t out_size = kDivergence ? n : 2 * n;

  Stream stream;
  cudaStream_t s = stream.get();
  DeviceCellList cells(n, side, interacting);
  DeviceArray<Vec2<double>> raw_pos(n), pos(n);
  DeviceArray<double> raw_radius(n), sorted_radius(n), result(out_size);
  DeviceArray<unsigned> raw_tag(n), tag(n);
  std::vector<unsigned> host_tag(n);
  for (std::size_t i = 0; i < n; ++i) host_tag[i] = static_cast<unsigned>(i);
  check(cudaMemcpyAsync(raw_pos.get(), x, 2 * n * sizeof(double), cudaMemcpyHostToDevice, s), "cudaMemcpyAsync");
  check(cudaMemcpyAsync(raw_radius.get(), radius, n * sizeof(double), cudaMemcpyHostToDevice, s), "cudaMemcpyAsync");
  check(cudaMemcpyAsync(raw_tag.get(), host_tag.data(), n * sizeof(unsigned), cudaMemcpyHostToDevice, s),
        "cudaMemcpyAsync");

  const Particles<double, 0> from{raw_pos.get(), nullptr, raw_tag.get(), raw_radius.get()};
  const Particles<double, 0> to{pos.get(), nullptr, tag.get(), sorted_radius.get()};
  scatter_keys_kernel<double, 0>
      <<<blocks_for(n), kBlockThreads, 0, s>>>(count, grid, from, cells.key_by_tag(), cells.slot_by_tag(), true);
  check_launch("scatter_keys_kernel");
  cells.sort(s);
  cells.clear_ranges(s);
  gather_kernel<double, 0><<<blocks_for(n), kBlockThreads, 0, s>>>(count, cells.sorted_key(), cells.sorted_slot(), from,
                                                                   to, cells.cell_range(), interacting, nullptr);
  check_launch("gather_kernel");
  with_pair<double>(system, [&](auto pair) {
    using Pair = decltype(pair);
    const ObservableArgs<Pair> args{to,       cells.sorted_key(), cells.cell_range(), grid,        pair,
                                    system.k, system.trap,        interacting,        result.get()};
    observable_kernel<Pair, kDivergence><<<blocks_for(n), kBlockThreads, 0, s>>>(args, count);
    return 0;
  });
  check_launch("observable_kernel");
  check(cudaMemcpyAsync(out, result.get(), out_size * sizeof(double), cudaMemcpyDeviceToHost, s), "cudaMemcpyAsync");
  stream.synchronize("CUDA observables");
}

}  // namespace
}  // namespace cuda

void cuda_forces(const SystemSpec& system, const double* x, const double* radius, std::size_t n, int /*n_threads*/,
                 double* out) {
  cuda::observable<false>(system, x, radius, n, out);
}

void cuda_drift_divergence(const SystemSpec& system, const double* x, const double* radius, std::size_t n,
                           int /*n_threads*/, double* out) {
  cuda::observable<true>(system, x, radius, n, out);
}

void cuda_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]) {
  cuda::Stream stream;
  cuda::DeviceArray<uint32_t> result(4);
  cuda::philox_kernel<<<1, 1, 0, stream.get()>>>(result.get(), counter[0], counter[1], counter[2], counter[3], key[0],
                                                 key[1]);
  cuda::check_launch("philox_kernel");
  cuda::check(cudaMemcpyAsync(out, result.get(), 4 * sizeof(uint32_t), cudaMemcpyDeviceToHost, stream.get()),
              "cudaMemcpyAsync");
  stream.synchronize("philox_kernel");
}

void cuda_normals4(uint64_t seed, uint64_t step, uint32_t particle, uint32_t purpose, double out[4]) {
  cuda::Stream stream;
  cuda::DeviceArray<double> result(4);
  cuda::normals_kernel<<<1, 1, 0, stream.get()>>>(result.get(), seed, step, particle, purpose);
  cuda::check_launch("normals_kernel");
  cuda::check(cudaMemcpyAsync(out, result.get(), 4 * sizeof(double), cudaMemcpyDeviceToHost, stream.get()),
              "cudaMemcpyAsync");
  stream.synchronize("normals_kernel");
}

CudaDeviceInfo cuda_device_info() {
  CudaDeviceInfo info;
  cuda::check(cudaGetDevice(&info.device), "cudaGetDevice");
  cudaDeviceProp prop{};
  cuda::check(cudaGetDeviceProperties(&prop, info.device), "cudaGetDeviceProperties");
  int clock_khz = 0, bus_bits = 0;
  cuda::check(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, info.device), "cudaDeviceGetAttribute");
  cuda::check(cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, info.device),
              "cudaDeviceGetAttribute");
  info.name = prop.name;
  info.compute_capability_major = prop.major;
  info.compute_capability_minor = prop.minor;
  info.sm_count = prop.multiProcessorCount;
  info.memory_clock_mhz = clock_khz / 1e3;
  info.memory_bus_width_bits = bus_bits;
  info.memory_bandwidth_gbs = 2.0 * double(clock_khz) * 1e3 * (double(bus_bits) / 8.0) / 1e9;
  info.total_memory_gib = double(prop.totalGlobalMem) / double(1ull << 30);
  info.l2_cache_mib = double(prop.l2CacheSize) / double(1 << 20);
  return info;
}

}  // namespace activescore

bool activescore_cuda_device_available() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // no driver, no device: clear the error and report "no"
    return false;
  }
  if (count <= 0) return false;
  int device = 0, major = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return major >= 8;  // the build carries sm_80 and sm_90 code (and compute_90 PTX)
}
