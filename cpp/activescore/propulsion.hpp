// Propulsion models: how the self-propulsion state q_i evolves and which direction g_i it gives, one policy per
// model. Each policy names itself (kName, the Python model name), says how many numbers hold q (kComponents) and is
// made from the model's own parameter block (SystemSpec::propulsion, in the order its Python class writes it).
// A new model is a policy here and an entry in PropulsionModels.
#pragma once
#include <cmath>

#include "hostdevice.hpp"
#include "philox.hpp"
#include "special_functions.hpp"

namespace activescore {

// AOUP: q = g in R^2, dg = -gamma g dt + sqrt(2 gamma) dB, updated exactly. Parameters: (gamma).
template <class Real>
struct AOUPPropulsion {
  static constexpr const char* kName = "aoup";
  static constexpr int kComponents = 2;
  Real decay;  // exp(-gamma dt)
  Real kick;   // sqrt(1 - exp(-2 gamma dt))

  static AOUPPropulsion make(const double* parameters, double dt) {
    const double gamma = parameters[0];
    return AOUPPropulsion{Real(std::exp(-gamma * dt)), Real(std::sqrt(-std::expm1(-2.0 * gamma * dt)))};
  }
  AS_HD void direction(const Real* q, Real& gx, Real& gy) const {
    gx = q[0];
    gy = q[1];
  }
  AS_HD void update(const Real* q, Real* q_new, const Normal2& n) const {
    q_new[0] = decay * q[0] + kick * Real(n.a);
    q_new[1] = decay * q[1] + kick * Real(n.b);
  }
};

// ABP: q = theta, g = (cos theta, sin theta), dtheta = sqrt(2 D_r) dB. Parameters: (D_r).
template <class Real>
struct ABPPropulsion {
  static constexpr const char* kName = "abp";
  static constexpr int kComponents = 1;
  Real kick;  // sqrt(2 D_r dt)

  static ABPPropulsion make(const double* parameters, double dt) {
    return ABPPropulsion{Real(std::sqrt(2.0 * parameters[0] * dt))};
  }
  // cos_sin (special_functions.hpp) in float64 whatever Real is: it vectorises, unlike libm's sincos, and gives
  // the same numbers on every backend.
  AS_HD void direction(const Real* q, Real& gx, Real& gy) const {
    double c, s;
    cos_sin(double(q[0]), c, s);
    gx = Real(c);
    gy = Real(s);
  }
  AS_HD void update(const Real* q, Real* q_new, const Normal2& n) const { q_new[0] = q[0] + kick * Real(n.a); }
};

template <class... Policies>
struct ModelList {};

// The models the drivers are compiled for; a model's index here is SystemSpec::model.
template <class Real>
using PropulsionModels = ModelList<AOUPPropulsion<Real>, ABPPropulsion<Real>>;

}  // namespace activescore
