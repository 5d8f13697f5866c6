// Periodic square box centred on the origin: positions live in [-L/2, L/2), as in GSD, freud and OVITO.
#pragma once
#include <cmath>

#include "hostdevice.hpp"

namespace activescore {

template <class Real>
struct Box {
  Real L;
  Real half;
  Real inv_L;

  static Box make(double side) { return Box{Real(side), Real(0.5 * side), Real(1.0 / side)}; }

  // Minimum image of a difference of two wrapped coordinates (|d| < L by construction).
  AS_HD Real min_image(Real d) const {
    if (d > half) return d - L;
    if (d < -half) return d + L;
    return d;
  }

  // Any coordinate back into [-L/2, L/2).
  AS_HD Real wrap(Real x) const {
    Real w = x - L * std::floor(x * inv_L + Real(0.5));
    return w >= half ? w - L : w;  // rounding can land exactly on +L/2
  }
};

}  // namespace activescore
