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

// AOUP: q = g in R^2. dg = (-gamma g + omega J g) dt + sqrt(2 gamma) dB (J the quarter turn; omega = 0 is the
// paper's model), updated exactly: the mean turns by omega dt and decays by exp(-gamma dt); the kick is isotropic.
// Parameters: (gamma, omega).
template <class Real>
struct AOUPPropulsion {
  static constexpr const char* kName = "aoup";
  static constexpr int kComponents = 2;
  Real decay_cos;        // exp(-gamma dt) cos(omega dt)
  Real decay_sin;        // exp(-gamma dt) sin(omega dt); 0 without chirality, which then skips the rotation
  Real minus_decay_sin;  // its negative, so the rotation is two sums (see update)
  Real kick;             // sqrt(1 - exp(-2 gamma dt))

  static AOUPPropulsion make(const double* parameters, double dt) {
    const double gamma = parameters[0], omega = parameters[1];
    const double decay = std::exp(-gamma * dt);
    const double turned_sin = omega != 0.0 ? decay * std::sin(omega * dt) : 0.0;
    return AOUPPropulsion{Real(omega != 0.0 ? decay * std::cos(omega * dt) : decay), Real(turned_sin),
                          Real(-turned_sin), Real(std::sqrt(-std::expm1(-2.0 * gamma * dt)))};
  }
  AS_HD void direction(const Real* q, Real& gx, Real& gy) const {
    gx = q[0];
    gy = q[1];
  }
  AS_HD void update(const Real* q, Real* q_new, const Normal2& n) const {
    if (decay_sin == Real(0)) {
      q_new[0] = decay_cos * q[0] + kick * Real(n.a);
      q_new[1] = decay_cos * q[1] + kick * Real(n.b);
      return;
    }
    // Two sums, not a difference and a sum: GCC's vectoriser turns the pair (a b - c d, a d + c b) into a fused
    // multiply-add-subtract (a complex product) even with -ffp-contract=off, which would round differently from the
    // Numba backend. a + (-c) d equals a - c d exactly. q is read first: a driver may update in place.
    const Real q0 = q[0], q1 = q[1];
    q_new[0] = decay_cos * q0 + minus_decay_sin * q1 + kick * Real(n.a);
    q_new[1] = decay_sin * q0 + decay_cos * q1 + kick * Real(n.b);
  }
};

// ABP: q = theta, g = (cos theta, sin theta), dtheta = omega dt + sqrt(2 D_r) dB. Parameters: (D_r, omega).
template <class Real>
struct ABPPropulsion {
  static constexpr const char* kName = "abp";
  static constexpr int kComponents = 1;
  Real kick;  // sqrt(2 D_r dt)
  Real turn;  // omega dt; 0 without chirality, which then adds nothing

  static ABPPropulsion make(const double* parameters, double dt) {
    return ABPPropulsion{Real(std::sqrt(2.0 * parameters[0] * dt)), Real(parameters[1] * dt)};
  }
  // cos_sin (special_functions.hpp) in float64 whatever Real is: it vectorises, unlike libm's sincos, and gives
  // the same numbers on every backend.
  AS_HD void direction(const Real* q, Real& gx, Real& gy) const {
    double c, s;
    cos_sin(double(q[0]), c, s);
    gx = Real(c);
    gy = Real(s);
  }
  AS_HD void update(const Real* q, Real* q_new, const Normal2& n) const {
    q_new[0] = q[0] + kick * Real(n.a);
    if (turn != Real(0)) q_new[0] += turn;
  }
};

template <class... Policies>
struct ModelList {};

// The models the drivers are compiled for; a model's index here is SystemSpec::model.
template <class Real>
using PropulsionModels = ModelList<AOUPPropulsion<Real>, ABPPropulsion<Real>>;

}  // namespace activescore
