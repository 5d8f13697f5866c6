// Propulsion models: how the self-propulsion state q_i evolves and which direction g_i it gives.
// AOUP: q = g in R^2, exact Ornstein-Uhlenbeck update. ABP: q = theta, g = (cos theta, sin theta).
#pragma once
#include <cmath>

#include "hostdevice.hpp"
#include "philox.hpp"
#include "special_functions.hpp"

namespace activescore {

template <class Real>
struct AOUPPropulsion {
  static constexpr int kComponents = 2;
  Real decay;  // exp(-gamma dt)
  Real kick;   // sqrt(1 - exp(-2 gamma dt))

  static AOUPPropulsion make(double gamma, double dt) {
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

template <class Real>
struct ABPPropulsion {
  static constexpr int kComponents = 1;
  Real kick;  // sqrt(2 D_r dt)

  static ABPPropulsion make(double rotational_diffusion, double dt) {
    return ABPPropulsion{Real(std::sqrt(2.0 * rotational_diffusion * dt))};
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

}  // namespace activescore
