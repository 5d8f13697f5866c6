// Picks the compiled variant a system asks for, for every driver (CPU and CUDA): kernels are templated on the
// precision, the pair evaluator and the propulsion model, and compiled once per combination.
#pragma once
#include <cstddef>
#include <memory>

#include "pair_potential.hpp"
#include "propulsion.hpp"
#include "simulator.hpp"
#include "system_spec.hpp"

namespace activescore {

// Calls f with the pair evaluator the system asks for.
template <class Real, class F>
auto with_pair(const SystemSpec& s, F&& f) {
  if (s.harmonic()) return f(HarmonicPair<Real>{});
  return f(SoftplusPair<Real>{Real(s.beta), Real(1.0 / s.beta), Real(s.cutoff_delta())});
}

// Driver<Real, Pair, Propulsion> for the system's pair potential and propulsion model.
template <template <class, class, class> class Driver, class Real>
std::unique_ptr<Simulator> make_driver(const SystemSpec& system, const RunSpec& run, const double* x, const double* q,
                                       const double* radius, std::size_t n) {
  return with_pair<Real>(system, [&](auto pair) -> std::unique_ptr<Simulator> {
    using Pair = decltype(pair);
    if (system.model == Model::AOUP) {
      const auto prop = AOUPPropulsion<Real>::make(system.gamma, run.dt);
      return std::make_unique<Driver<Real, Pair, AOUPPropulsion<Real>>>(system, run, pair, prop, x, q, radius, n);
    }
    const auto prop = ABPPropulsion<Real>::make(system.rotational_diffusion, run.dt);
    return std::make_unique<Driver<Real, Pair, ABPPropulsion<Real>>>(system, run, pair, prop, x, q, radius, n);
  });
}

}  // namespace activescore
