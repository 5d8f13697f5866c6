// What the CUDA backend offers the bindings besides make_cuda_simulator (simulator.hpp). Plain C++ declarations,
// included by bindings.cpp (a host compiler translation unit) when ACTIVESCORE_HAVE_CUDA is set.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "../system_spec.hpp"

// True when the CUDA runtime finds a driver and a GPU this build can run on (compute capability >= 8.0). Never
// throws: no driver, no device or any other runtime error is false.
bool activescore_cuda_device_available();

namespace activescore {

// Same maths, signatures and output as cpu_forces / cpu_drift_divergence, on the current GPU in float64
// (n_threads is ignored).
void cuda_forces(const SystemSpec& system, const double* x, const double* radius, std::size_t n, int n_threads,
                 double* out);
void cuda_drift_divergence(const SystemSpec& system, const double* x, const double* radius, std::size_t n,
                           int n_threads, double* out);

// philox4x32_10 and normals4 (philox.hpp) evaluated by a one-thread kernel, for known-answer tests on the device.
void cuda_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);
void cuda_normals4(uint64_t seed, uint64_t step, uint32_t particle, uint32_t purpose, double out[4]);

struct CudaDeviceInfo {
  int device = 0;
  std::string name;
  int compute_capability_major = 0, compute_capability_minor = 0;
  int sm_count = 0;
  double memory_clock_mhz = 0.0;     // peak memory clock
  int memory_bus_width_bits = 0;
  double memory_bandwidth_gbs = 0.0;  // theoretical peak: 2 (double data rate) x clock x bus width / 8, in 1e9 B/s
  double total_memory_gib = 0.0;
  double l2_cache_mib = 0.0;
};

// The current device (throws std::runtime_error when there is none).
CudaDeviceInfo cuda_device_info();

}  // namespace activescore
