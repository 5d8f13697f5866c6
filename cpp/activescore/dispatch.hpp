// Picks the compiled variant a system asks for, for every driver (CPU and CUDA): kernels are templated on the
// precision, the pair evaluator and the propulsion model, and compiled once per combination.
#pragma once
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

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

namespace detail {
template <class F, class Policy, class... Rest>
auto with_model(int index, F&& f, ModelList<Policy, Rest...>) {
  if constexpr (sizeof...(Rest) == 0) {
    if (index != 0) throw std::invalid_argument("unknown propulsion model index");
    return f(static_cast<Policy*>(nullptr));
  } else {
    if (index == 0) return f(static_cast<Policy*>(nullptr));
    return with_model(index - 1, f, ModelList<Rest...>{});
  }
}
}  // namespace detail

// Calls f with a null pointer typed as the system's propulsion policy (a tag: f reads the type only).
template <class Real, class F>
auto with_model(int model, F&& f) {
  if (model < 0) throw std::invalid_argument("unknown propulsion model index");
  return detail::with_model(model, f, PropulsionModels<Real>{});
}

// The number of propulsion components of a model.
inline int propulsion_components(const SystemSpec& s) {
  return with_model<double>(s.model, [](auto tag) { return std::remove_pointer_t<decltype(tag)>::kComponents; });
}

// The model names in index order (the Python side maps a model's name to its index with them).
template <class... Policies>
std::vector<std::string> model_names(ModelList<Policies...>) {
  return {Policies::kName...};
}
inline std::vector<std::string> model_names() { return model_names(PropulsionModels<double>{}); }

// Driver<Real, Pair, Propulsion> for the system's pair potential and propulsion model.
template <template <class, class, class> class Driver, class Real>
std::unique_ptr<Simulator> make_driver(const SystemSpec& system, const RunSpec& run, const double* x, const double* q,
                                       const double* radius, std::size_t n) {
  return with_pair<Real>(system, [&](auto pair) -> std::unique_ptr<Simulator> {
    using Pair = decltype(pair);
    return with_model<Real>(system.model, [&](auto tag) -> std::unique_ptr<Simulator> {
      using Propulsion = std::remove_pointer_t<decltype(tag)>;
      const Propulsion prop = Propulsion::make(system.propulsion.data(), run.dt);
      return std::make_unique<Driver<Real, Pair, Propulsion>>(system, run, pair, prop, x, q, radius, n);
    });
  });
}

}  // namespace activescore
