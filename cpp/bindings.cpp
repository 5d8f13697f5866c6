// The one binding file: exposes the compiled core to python/activescore as the module activescore._core.
// Arrays cross as NumPy; heavy calls release the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "activescore/cuda/host_replay.hpp"
#include "activescore/dispatch.hpp"
#include "activescore/neighbours.hpp"
#include "activescore/philox.hpp"
#include "activescore/simulator.hpp"
#ifdef ACTIVESCORE_HAVE_CUDA
#include "activescore/cuda/cuda_api.cuh"
#endif

namespace py = pybind11;
using namespace activescore;

namespace {

using F64Array = py::array_t<double, py::array::c_style | py::array::forcecast>;

const double* checked(const F64Array& a, std::size_t n, std::size_t cols, const char* name) {
  const std::size_t expected = n * cols;
  if (static_cast<std::size_t>(a.size()) != expected)
    throw std::invalid_argument(std::string(name) + ": expected " + std::to_string(expected) + " values, got " +
                                std::to_string(a.size()));
  return a.data();
}

using Observable = void (*)(const SystemSpec&, const double*, const double*, std::size_t, int, double*);

// Binds an observable of one configuration: (system, x (n, 2), radius (n,), n_threads) -> float64 (n, columns),
// or (n,) for one column; the GIL is released while it runs.
void def_observable(py::module_& m, const char* name, Observable compute, int columns, const char* doc) {
  m.def(
      name,
      [compute, columns](const SystemSpec& system, const F64Array& x, const F64Array& radius, int n_threads) {
        const std::size_t n = static_cast<std::size_t>(radius.size());
        const double* px = checked(x, n, 2, "x");
        py::array_t<double> out = columns == 1 ? py::array_t<double>(py::ssize_t(n))
                                               : py::array_t<double>({py::ssize_t(n), py::ssize_t(columns)});
        double* po = out.mutable_data();
        {
          py::gil_scoped_release release;
          compute(system, px, radius.data(), n, n_threads, po);
        }
        return out;
      },
      py::arg("system"), py::arg("x"), py::arg("radius"), py::arg("n_threads") = 0, doc);
}

py::tuple read_state(const Simulator& sim, int q_components) {
  const auto n = static_cast<py::ssize_t>(sim.size());
  auto read = [&](auto tag) {
    using Real = decltype(tag);
    py::array_t<Real> x({n, py::ssize_t(2)}), q({n, py::ssize_t(q_components)});
    sim.read_state(x.mutable_data(), q.mutable_data());
    return py::tuple(py::make_tuple(x, q));
  };
  return sim.double_precision() ? read(double{}) : read(float{});
}

}  // namespace

#ifdef ACTIVESCORE_HAVE_CUDA
bool activescore_cuda_device_available();  // defined in cuda/
namespace {
bool cuda_device_available() { return activescore_cuda_device_available(); }
}  // namespace
#else
namespace {
bool cuda_device_available() { return false; }
}  // namespace
#endif

PYBIND11_MODULE(_core, m) {
  m.doc() = "activescore compiled core: cell lists, pair evaluators, Philox stream, CPU and CUDA drivers";

  m.attr("models") = py::tuple(py::cast(model_names()));  // SystemSpec.model is an index into these names

  py::class_<SystemSpec>(m, "SystemSpec")
      .def(py::init<>())
      .def_readwrite("model", &SystemSpec::model)
      .def_readwrite("box_length", &SystemSpec::box_length)
      .def_readwrite("v0", &SystemSpec::v0)
      .def_readwrite("eps", &SystemSpec::eps)
      .def_readwrite("k", &SystemSpec::k)
      .def_readwrite("trap", &SystemSpec::trap)
      .def_readwrite("beta", &SystemSpec::beta)
      .def_readwrite("cutoff_tol", &SystemSpec::cutoff_tol)
      .def_property(
          "propulsion",
          [](const SystemSpec& s) { return std::vector<double>(s.propulsion.begin(), s.propulsion.end()); },
          [](SystemSpec& s, const std::vector<double>& values) {
            if (values.size() > s.propulsion.size())
              throw std::invalid_argument("propulsion: at most " + std::to_string(s.propulsion.size()) + " parameters");
            s.propulsion.fill(0.0);
            std::copy(values.begin(), values.end(), s.propulsion.begin());
          })
      .def("cutoff_delta", &SystemSpec::cutoff_delta);

  py::class_<RunSpec>(m, "RunSpec")
      .def(py::init<>())
      .def_readwrite("dt", &RunSpec::dt)
      .def_readwrite("seed", &RunSpec::seed)
      .def_readwrite("step", &RunSpec::step)
      .def_readwrite("n_threads", &RunSpec::n_threads);

  py::class_<Simulator>(m, "Simulator")
      .def("advance", &Simulator::advance, py::arg("n_steps"), py::call_guard<py::gil_scoped_release>(),
           "Run up to n_steps; returns how many completed (fewer on a blow-up, see error).")
      .def_property_readonly("step", &Simulator::step)
      .def_property_readonly("size", &Simulator::size)
      .def_property_readonly("double_precision", &Simulator::double_precision)
      .def_property_readonly("error", &Simulator::error)
      .def_property_readonly("list_builds", &Simulator::list_builds)
      .def_property_readonly("direct_steps", &Simulator::direct_steps);

  m.def(
      "make_simulator",
      [](const SystemSpec& system, const RunSpec& run, bool double_precision, const F64Array& x, const F64Array& q,
         const F64Array& radius, const std::string& device) {
        const std::size_t n = static_cast<std::size_t>(radius.size());
        const double* px = checked(x, n, 2, "x");
        const double* pq = checked(q, n, propulsion_components(system), "q");
        if (device == "cpu") return make_cpu_simulator(system, run, double_precision, px, pq, radius.data(), n);
#ifdef ACTIVESCORE_HAVE_CUDA
        if (device == "cuda") return make_cuda_simulator(system, run, double_precision, px, pq, radius.data(), n);
#endif
        throw std::invalid_argument("device must be 'cpu'" + std::string(cuda_device_available() ? " or 'cuda'" : "") +
                                    ", got '" + device + "'");
      },
      py::arg("system"), py::arg("run"), py::arg("double_precision"), py::arg("x"), py::arg("q"), py::arg("radius"),
      py::arg("device") = "cpu");

  m.def(
      "make_host_replay_simulator",
      [](const SystemSpec& system, const RunSpec& run, bool double_precision, const F64Array& x, const F64Array& q,
         const F64Array& radius) {
        const std::size_t n = static_cast<std::size_t>(radius.size());
        const double* px = checked(x, n, 2, "x");
        const double* pq = checked(q, n, propulsion_components(system), "q");
        return make_host_replay_simulator(system, run, double_precision, px, pq, radius.data(), n);
      },
      py::arg("system"), py::arg("run"), py::arg("double_precision"), py::arg("x"), py::arg("q"), py::arg("radius"),
      "The CUDA driver's kernel bodies run serially on the host (for tests: no GPU needed).");

  m.def(
      "read_state", [](const Simulator& sim, int q_components) { return read_state(sim, q_components); },
      py::arg("simulator"), py::arg("q_components"), "(x, q) of the simulator's current state, in its precision.");

  def_observable(m, "forces", &cpu_forces, 2, "(n, 2) k sum_j F_ij - A x_i of a configuration (float64).");

  def_observable(m, "drift_divergence", &cpu_drift_divergence, 1,
                 "(n,) per-particle divergence of the x-drift (float64).");

  def_observable(m, "host_replay_forces", &host_replay_forces, 2,
                 "forces() through the CUDA kernel bodies run on the host (for tests).");
  def_observable(m, "host_replay_drift_divergence", &host_replay_drift_divergence, 1,
                 "drift_divergence() through the CUDA kernel bodies run on the host (for tests).");

  m.def(
      "knn",
      [](const F64Array& x, double box_length, int k, int n_threads) {
        if (x.ndim() != 2 || x.shape(1) != 2) throw std::invalid_argument("x: expected shape (n, 2)");
        const std::size_t n = static_cast<std::size_t>(x.shape(0));
        if (k < 1 || static_cast<std::size_t>(k) > n)
          throw std::invalid_argument("k: expected 1 <= k <= n = " + std::to_string(n) + ", got " + std::to_string(k));
        py::array_t<int64_t> index({py::ssize_t(n), py::ssize_t(k)});
        py::array_t<double> disp({py::ssize_t(n), py::ssize_t(k), py::ssize_t(2)});
        int64_t* pi = index.mutable_data();
        double* pd = disp.mutable_data();
        const double* px = x.data();
        {
          py::gil_scoped_release release;
          knn(px, n, box_length, k, n_threads, pi, pd);
        }
        return py::make_tuple(index, disp);
      },
      py::arg("x"), py::arg("box_length"), py::arg("k"), py::arg("n_threads") = 0);

  m.def(
      "philox4x32_10",
      [](uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
        const Philox4x32 r = philox4x32_10(c0, c1, c2, c3, k0, k1);
        return py::make_tuple(r.v[0], r.v[1], r.v[2], r.v[3]);
      },
      "Philox4x32-10 block (for known-answer tests).");
  m.def(
      "normals4",
      [](uint64_t seed, uint64_t step, uint32_t particle, uint32_t purpose) {
        const Normal4 r = normals4(seed, step, particle, purpose);
        return py::make_tuple(r.n[0], r.n[1], r.n[2], r.n[3]);
      },
      py::arg("seed"), py::arg("step"), py::arg("particle"), py::arg("purpose"));

  m.def("cuda_available", &cuda_device_available, "True when the CUDA backend is compiled in and a GPU is visible.");
#ifdef ACTIVESCORE_HAVE_CUDA
  def_observable(m, "cuda_forces", &cuda_forces, 2, "forces() on the GPU (float64; n_threads is ignored).");
  def_observable(m, "cuda_drift_divergence", &cuda_drift_divergence, 1,
                 "drift_divergence() on the GPU (float64; n_threads is ignored).");
  m.def(
      "cuda_philox4x32_10",
      [](uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
        const uint32_t counter[4] = {c0, c1, c2, c3}, key[2] = {k0, k1};
        uint32_t r[4];
        cuda_philox4x32_10(counter, key, r);
        return py::make_tuple(r[0], r[1], r[2], r[3]);
      },
      "Philox4x32-10 block computed by a GPU kernel (for known-answer tests).");
  m.def(
      "cuda_normals4",
      [](uint64_t seed, uint64_t step, uint32_t particle, uint32_t purpose) {
        double r[4];
        cuda_normals4(seed, step, particle, purpose, r);
        return py::make_tuple(r[0], r[1], r[2], r[3]);
      },
      py::arg("seed"), py::arg("step"), py::arg("particle"), py::arg("purpose"),
      "normals4 computed by a GPU kernel (the same functions; nvcc's fused multiply-adds make it agree "
      "with normals4 to about an ulp).");
  m.def(
      "cuda_device_info",
      []() {
        const CudaDeviceInfo d = cuda_device_info();
        py::dict info;
        info["device"] = d.device;
        info["name"] = d.name;
        info["compute_capability"] =
            std::to_string(d.compute_capability_major) + "." + std::to_string(d.compute_capability_minor);
        info["sm_count"] = d.sm_count;
        info["memory_clock_mhz"] = d.memory_clock_mhz;
        info["memory_bus_width_bits"] = d.memory_bus_width_bits;
        info["memory_bandwidth_gbs"] = d.memory_bandwidth_gbs;
        info["total_memory_gib"] = d.total_memory_gib;
        info["l2_cache_mib"] = d.l2_cache_mib;
        return info;
      },
      "The current GPU: name, compute capability, SM count, memory clock and bus width, theoretical peak memory "
      "bandwidth (GB/s = 1e9 B/s), memory and L2 sizes.");
#endif
#ifdef ACTIVESCORE_HAVE_CUDA
  m.attr("built_with_cuda") = true;
#else
  m.attr("built_with_cuda") = false;
#endif
}
