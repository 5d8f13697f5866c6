// Plain description of a system and a run, filled from Python (activescore.AOUP / ABP) and validated there.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>

namespace activescore {

enum class Model { AOUP, ABP };

struct SystemSpec {
  Model model = Model::AOUP;
  double box_length = 1.0;
  double v0 = 0.0;
  double gamma = 1.0;                 // AOUP propulsion relaxation rate
  double rotational_diffusion = 0.0;  // ABP D_r
  double eps = 0.0;                   // translational diffusion
  double k = 1.0;                     // interaction strength
  double trap = 0.0;                  // A
  double beta = 7.5;                  // softplus sharpness; inf = harmonic soft disk
  double cutoff_tol = 1e-6;

  bool harmonic() const { return std::isinf(beta); }
  // Cutoff beyond contact: the softplus force falls to cutoff_tol of its contact value (physics.md §1).
  double cutoff_delta() const { return harmonic() ? 0.0 : std::log(1.0 / (cutoff_tol * std::log(2.0))) / beta; }
  int propulsion_components() const { return model == Model::AOUP ? 2 : 1; }
};

struct RunSpec {
  double dt = 0.1;
  uint64_t seed = 0;
  int64_t step = 0;  // the global step counter, which keys the random stream
  int n_threads = 0;  // 0 = OpenMP default
};

}  // namespace activescore
