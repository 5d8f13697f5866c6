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

  // Minimum image of a difference of two wrapped coordinates (|d| < L by construction). A select of the shift,
  // not branches, so that pair loops vectorise (d + (-L) is d - L exactly).
  AS_HD Real min_image(Real d) const { return d + (d > half ? -L : (d < -half ? L : Real(0))); }

  // Any coordinate back into [-L/2, L/2).
  AS_HD Real wrap(Real x) const {
    Real w = x - L * std::floor(x * inv_L + Real(0.5));
    return w >= half ? w - L : w;  // rounding can land exactly on +L/2
  }
};

}  // namespace activescore
