// The simulator interface shared by the CPU and GPU drivers: state lives inside, advance() runs many steps per
// call, and the state is read back only at save points.
#pragma once
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "system_spec.hpp"

namespace activescore {

class Simulator {
 public:
  virtual ~Simulator() = default;

  // Runs up to n_steps. Returns the number completed; fewer means a blow-up, described by error(), and the
  // state is the last good one (before the failing step).
  virtual int64_t advance(int64_t n_steps) = 0;
  // Copies the state out in the simulator's precision: x is (n, 2), q is (n, propulsion components).
  virtual void read_state(void* x, void* q) const = 0;

  int64_t step() const { return step_; }
  std::size_t size() const { return n_; }
  bool double_precision() const { return double_precision_; }
  const std::string& error() const { return error_; }
  // Neighbour search so far (CPU driver): Verlet lists built, and steps whose pairs came straight from the cell list.
  int64_t list_builds() const { return list_builds_; }
  int64_t direct_steps() const { return direct_steps_; }

 protected:
  std::size_t n_ = 0;
  int64_t step_ = 0;
  int64_t list_builds_ = 0, direct_steps_ = 0;
  bool double_precision_ = true;
  std::string error_;
};

// The error text of a blow-up, the same from every driver (Python code and tests match on it). Without
// interactions only a non-finite move is a blow-up (StepParams::make).
inline std::string blow_up_message(long long step, long long particle, double dx, double dy, double half_range,
                                   bool interacting) {
  char buf[256];
  if (!interacting) {
    std::snprintf(buf, sizeof buf, "blow-up at step %lld: particle %lld moved by (%g, %g) in one step, non-finite",
                  step, particle, dx, dy);
    return buf;
  }
  std::snprintf(buf, sizeof buf,
                "blow-up at step %lld: particle %lld moved by (%g, %g) in one step, non-finite or more than half the "
                "interaction range (%g)",
                step, particle, dx, dy, half_range);
  return buf;
}

// Factories. x (n,2), q (n, components) and radius (n) are float64; the simulator converts to its precision.
std::unique_ptr<Simulator> make_cpu_simulator(const SystemSpec& system, const RunSpec& run, bool double_precision,
                                              const double* x, const double* q, const double* radius, std::size_t n);
#ifdef ACTIVESCORE_HAVE_CUDA
std::unique_ptr<Simulator> make_cuda_simulator(const SystemSpec& system, const RunSpec& run, bool double_precision,
                                               const double* x, const double* q, const double* radius, std::size_t n);
#endif

// Observables of a configuration (float64, through the same cell list and pair evaluators).
// forces: (n,2) k sum_j F_ij - A x_i. divergence: (n,) k sum_j [f (d-1)/rho + f'] - A d.
void cpu_forces(const SystemSpec& system, const double* x, const double* radius, std::size_t n, int n_threads,
                double* out);
void cpu_drift_divergence(const SystemSpec& system, const double* x, const double* radius, std::size_t n, int n_threads,
                          double* out);

// Largest interaction range over all pairs: max_ij sigma_ij + delta.
double max_cutoff(const SystemSpec& system, const double* radius, std::size_t n);

}  // namespace activescore
