// The CUDA driver's per-thread bodies (kernels.cuh) replayed serially on the host: built by the host compiler into
// every build, CUDA or not, so that the tests check the GPU logic against the CPU driver bit for bit on every commit.
#pragma once
#include <cstddef>
#include <memory>

#include "../simulator.hpp"
#include "../system_spec.hpp"

namespace activescore {

// A Simulator that runs the CUDA step (sort, gather, step bodies, blow-up control) one slot after another.
std::unique_ptr<Simulator> make_host_replay_simulator(const SystemSpec& system, const RunSpec& run,
                                                      bool double_precision, const double* x, const double* q,
                                                      const double* radius, std::size_t n);

// cuda_forces / cuda_drift_divergence through the same bodies on the host (n_threads is ignored).
void host_replay_forces(const SystemSpec& system, const double* x, const double* radius, std::size_t n, int n_threads,
                        double* out);
void host_replay_drift_divergence(const SystemSpec& system, const double* x, const double* radius, std::size_t n,
                                  int n_threads, double* out);

}  // namespace activescore
