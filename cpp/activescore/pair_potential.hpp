// Pair force magnitudes f(rho) for F_ij = f(rho) r/rho (physics.md §1). Each evaluator gives f, f' and the
// cutoff for a pair of contact distance sigma = R_i + R_j; kernels are templated on the evaluator.
#pragma once
#include <cmath>

#include "hostdevice.hpp"
#include "special_functions.hpp"

namespace activescore {

// f(rho) = softplus_beta(sigma - rho) = log(1 + exp(beta (sigma - rho))) / beta, truncated at sigma + delta.
template <class Real>
struct SoftplusPair {
  Real beta;
  Real inv_beta;
  Real delta;  // cutoff beyond contact: ln(1/(tol ln 2))/beta, where f has fallen to tol of its contact value

  AS_HD Real cutoff(Real sigma) const { return sigma + delta; }

  AS_HD Real force(Real rho, Real sigma) const { return softplus(beta * (sigma - rho)) * inv_beta; }

  // df/drho = -sigmoid(beta (sigma - rho)).
  AS_HD Real dforce(Real rho, Real sigma) const {
    const Real z = beta * (sigma - rho);
    return z > Real(0) ? Real(-1) / (Real(1) + std::exp(-z)) : -std::exp(z) / (Real(1) + std::exp(z));
  }
};

// beta -> infinity: the harmonic soft disk f = max(sigma - rho, 0).
template <class Real>
struct HarmonicPair {
  AS_HD Real cutoff(Real sigma) const { return sigma; }
  AS_HD Real force(Real rho, Real sigma) const { return rho < sigma ? sigma - rho : Real(0); }
  AS_HD Real dforce(Real rho, Real sigma) const { return rho < sigma ? Real(-1) : Real(0); }
};

// The pair maths every driver builds on the evaluators (CPU pair loop, observables, CUDA kernels), in one place.

// Whether a pair interacts: inside its cutoff and not coincident (rho = 0 leaves r/rho undefined).
template <class Real, class Pair>
AS_HD bool interacts(const Pair& pair, Real rho_sq, Real sigma) {
  const Real rc = pair.cutoff(sigma);
  return (rho_sq < rc * rc) & (rho_sq > Real(0));
}

// f(rho)/rho for a pair at squared distance rho_sq, 0 unless it interacts, so that F_ij = scale (dx, dy). Branch
// free, for vectorised loops.
template <class Real, class Pair>
AS_HD Real force_scale(const Pair& pair, Real rho_sq, Real sigma) {
  const bool inside = interacts(pair, rho_sq, sigma);
  const Real rho = std::sqrt(inside ? rho_sq : Real(1));
  const Real value = pair.force(rho, sigma) / rho;
  return inside ? value : Real(0);
}

// f(rho)(d-1)/rho + f'(rho) (d = 2), 0 unless the pair interacts: the pair's share of div_{x_i} of the x-drift.
template <class Real, class Pair>
AS_HD Real divergence_scale(const Pair& pair, Real rho_sq, Real sigma) {
  const bool inside = interacts(pair, rho_sq, sigma);
  const Real rho = std::sqrt(inside ? rho_sq : Real(1));
  const Real value = pair.force(rho, sigma) / rho + pair.dforce(rho, sigma);
  return inside ? value : Real(0);
}

}  // namespace activescore
