// Plain description of a system and a run, filled from Python (activescore.AOUP / ABP) and validated there.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>

namespace activescore {

// The most numbers a model's propulsion parameter block holds.
constexpr int kMaxPropulsionParameters = 4;

struct SystemSpec {
  int model = 0;  // index in PropulsionModels (propulsion.hpp); models.hpp maps names and component counts
  double box_length = 1.0;
  double v0 = 0.0;
  double eps = 0.0;   // translational diffusion
  double k = 1.0;     // interaction strength
  double trap = 0.0;  // A
  double beta = 7.5;  // softplus sharpness; inf = harmonic soft disk
  double cutoff_tol = 1e-6;
  // The model's own parameters, read by its propulsion policy's make() (e.g. AOUP: gamma, omega).
  std::array<double, kMaxPropulsionParameters> propulsion{};

  bool harmonic() const { return std::isinf(beta); }
  // Cutoff beyond contact: the softplus force falls to cutoff_tol of its contact value (physics.md §1).
  double cutoff_delta() const { return harmonic() ? 0.0 : std::log(1.0 / (cutoff_tol * std::log(2.0))) / beta; }
};

struct RunSpec {
  double dt = 0.1;
  uint64_t seed = 0;
  int64_t step = 0;  // the global step counter, which keys the random stream
  int n_threads = 0;  // 0 = OpenMP default
};

}  // namespace activescore
