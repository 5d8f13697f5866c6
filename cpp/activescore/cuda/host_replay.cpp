// Host replay of the CUDA driver: the host side of simulator.cu and observables.cu with each kernel launch a loop
// over the slots and CUB's stable radix sort a stable sort, around the very bodies the kernels run (kernels.cuh).
#include "host_replay.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "../dispatch.hpp"
#include "kernels.cuh"

namespace activescore {
namespace cuda {
namespace {

// Host stand-in for DeviceCellList: the same keys, the same stable order, the same cell ranges.
class HostCellList {
 public:
  HostCellList(std::size_t n, unsigned cells, bool interacting)
      : sorted_(interacting && cells > 1), key_by_tag_(n), slot_by_tag_(n), sorted_key_(n), sorted_slot_(n), by_key_(n),
        cell_range_(interacting ? cells : 0) {}

  void sort() {
    if (!sorted_) return;
    std::iota(by_key_.begin(), by_key_.end(), 0u);
    std::stable_sort(by_key_.begin(), by_key_.end(),
                     [&](unsigned a, unsigned b) { return key_by_tag_[a] < key_by_tag_[b]; });
    for (std::size_t i = 0; i < by_key_.size(); ++i) {
      sorted_key_[i] = key_by_tag_[by_key_[i]];
      sorted_slot_[i] = slot_by_tag_[by_key_[i]];
    }
  }
  void clear_ranges() { std::fill(cell_range_.begin(), cell_range_.end(), CellRange{0, 0}); }

  unsigned* key_by_tag() { return key_by_tag_.data(); }
  unsigned* slot_by_tag() { return slot_by_tag_.data(); }
  const unsigned* sorted_key() const { return sorted_ ? sorted_key_.data() : key_by_tag_.data(); }
  const unsigned* sorted_slot() const { return sorted_ ? sorted_slot_.data() : slot_by_tag_.data(); }
  CellRange* cell_range() { return cell_range_.data(); }

 private:
  bool sorted_;
  std::vector<unsigned> key_by_tag_, slot_by_tag_, sorted_key_, sorted_slot_, by_key_;
  std::vector<CellRange> cell_range_;
};

// Particle buffers of one set, owned on the host.
template <class Real, int C>
struct HostParticles {
  std::vector<Vec2<Real>> pos;
  std::vector<Real> q, radius;
  std::vector<unsigned> tag;

  explicit HostParticles(std::size_t n) : pos(n), q(C * n), radius(n), tag(n) {}
  Particles<Real, C> view() { return Particles<Real, C>{pos.data(), q.data(), tag.data(), radius.data()}; }
};

template <class Real, class Pair, class Propulsion>
class HostReplaySimulator final : public Simulator {
  static constexpr int C = Propulsion::kComponents;

 public:
  HostReplaySimulator(const SystemSpec& system, const RunSpec& run, const Pair& pair, const Propulsion& propulsion,
                      const double* x, const double* q, const double* radius, std::size_t n)
      : interacting_(system.k != 0.0), min_width_(Real(max_cutoff(system, radius, n))),
        grid_(CellGrid<Real>::make(Box<Real>::make(system.box_length), min_width_)), cur_(n), next_(n),
        cells_(n, grid_.cells(), interacting_) {
    n_ = n;
    step_ = run.step;
    double_precision_ = sizeof(Real) == sizeof(double);
    args_ = StepArgs<Real, Pair, Propulsion>{cur_.view(),
                                             next_.view(),
                                             cells_.sorted_key(),
                                             cells_.cell_range(),
                                             cells_.key_by_tag(),
                                             cells_.slot_by_tag(),
                                             grid_,
                                             pair,
                                             propulsion,
                                             StepParams<Real>::make(system, run, min_width_),
                                             &control_,
                                             unsigned(n),
                                             interacting_};
    // The state starts in `next`, in original order, as if a step had just written it.
    for (std::size_t i = 0; i < n; ++i) {
      next_.pos[i] = Vec2<Real>{Real(x[2 * i]), Real(x[2 * i + 1])};
      next_.radius[i] = Real(radius[i]);
      next_.tag[i] = unsigned(i);
    }
    for (std::size_t a = 0; a < C * n; ++a) next_.q[a] = Real(q[a]);
    reset_control(static_cast<unsigned long long>(step_));
  }

  int64_t advance(int64_t n_steps) override {
    if (n_steps <= 0) return 0;
    const int64_t start = step_;
    const unsigned n = unsigned(n_);
    for (int64_t s = 0; s < n_steps; ++s) {
      cells_.sort();
      cells_.clear_ranges();
      for (unsigned slot = 0; slot < n; ++slot)
        gather_body(slot, n, cells_.sorted_key(), cells_.sorted_slot(), next_.view(), cur_.view(), cells_.cell_range(),
                    interacting_);
      for (unsigned slot = 0; slot < n; ++slot) step_body(slot, 0u, args_);
      if (control_.bad_step != kNoFailure) return recover(start);
      ++control_.step;
      ++step_;
    }
    return n_steps;
  }

  void read_state(void* x, void* q) const override {
    Real* xo = static_cast<Real*>(x);
    Real* qo = static_cast<Real*>(q);
    for (std::size_t s = 0; s < n_; ++s) {
      const std::size_t i = next_.tag[s];
      xo[2 * i] = next_.pos[s].x;
      xo[2 * i + 1] = next_.pos[s].y;
      for (int c = 0; c < C; ++c) qo[C * i + c] = next_.q[C * s + c];
    }
  }

 private:
  bool interacting_;
  Real min_width_;
  CellGrid<Real> grid_;
  HostParticles<Real, C> cur_, next_;
  HostCellList cells_;
  Control control_{};
  StepArgs<Real, Pair, Propulsion> args_{};

  void reset_control(unsigned long long step) {
    control_ = Control{step, kNoFailure, ~0u};
    for (unsigned slot = 0; slot < unsigned(n_); ++slot)
      scatter_key_body(slot, grid_, next_.view(), cells_.key_by_tag(), cells_.slot_by_tag());
  }

  // As CudaSimulator::recover: the error text, then the failing step's input (in cur) back as the state.
  int64_t recover(int64_t start) {
    const int64_t failed = static_cast<int64_t>(control_.bad_step);
    const auto found = std::find(cur_.tag.begin(), cur_.tag.end(), control_.bad_index);
    if (found == cur_.tag.end()) throw std::runtime_error("host replay: the failing particle was not found");
    const std::size_t slot = static_cast<std::size_t>(found - cur_.tag.begin());
    const double dx = double(next_.pos[slot].x) - double(cur_.pos[slot].x);
    const double dy = double(next_.pos[slot].y) - double(cur_.pos[slot].y);
    error_ = blow_up_message(failed, (long long)control_.bad_index, dx, dy, 0.5 * double(min_width_), interacting_);
    next_.pos = cur_.pos;
    next_.q = cur_.q;
    next_.tag = cur_.tag;
    next_.radius = cur_.radius;
    reset_control(static_cast<unsigned long long>(failed));
    step_ = failed;
    return failed - start;
  }
};

// As observables.cu: wrap into the box, bin, gather, then every slot writes its value at its original index.
template <bool kDivergence>
void observable(const SystemSpec& system, const double* x, const double* radius, std::size_t n, double* out) {
  if (n == 0) return;
  const CellGrid<double> grid =
      CellGrid<double>::make(Box<double>::make(system.box_length), max_cutoff(system, radius, n));
  const bool interacting = system.k != 0.0;
  const unsigned count = static_cast<unsigned>(n);
  HostCellList cells(n, grid.cells(), interacting);
  HostParticles<double, 0> raw(n), sorted(n);
  for (std::size_t i = 0; i < n; ++i) {
    raw.pos[i] = Vec2<double>{x[2 * i], x[2 * i + 1]};
    raw.radius[i] = radius[i];
    raw.tag[i] = unsigned(i);
  }
  for (unsigned slot = 0; slot < count; ++slot)
    wrap_and_scatter_key_body(slot, grid, raw.view(), cells.key_by_tag(), cells.slot_by_tag());
  cells.sort();
  cells.clear_ranges();
  for (unsigned slot = 0; slot < count; ++slot)
    gather_body(slot, count, cells.sorted_key(), cells.sorted_slot(), raw.view(), sorted.view(), cells.cell_range(),
                interacting);
  with_pair<double>(system, [&](auto pair) {
    using Pair = decltype(pair);
    const ObservableArgs<Pair> args{sorted.view(), cells.sorted_key(), cells.cell_range(), grid, pair,
                                    system.k,      system.trap,        interacting,        out};
    for (unsigned slot = 0; slot < count; ++slot) observable_body<Pair, kDivergence>(slot, args);
    return 0;
  });
}

}  // namespace
}  // namespace cuda

std::unique_ptr<Simulator> make_host_replay_simulator(const SystemSpec& system, const RunSpec& run,
                                                      bool double_precision, const double* x, const double* q,
                                                      const double* radius, std::size_t n) {
  if (n > static_cast<std::size_t>(INT32_MAX)) throw std::invalid_argument("the replay takes at most 2^31-1 particles");
  return double_precision ? make_driver<cuda::HostReplaySimulator, double>(system, run, x, q, radius, n)
                          : make_driver<cuda::HostReplaySimulator, float>(system, run, x, q, radius, n);
}

void host_replay_forces(const SystemSpec& system, const double* x, const double* radius, std::size_t n,
                        int /*n_threads*/, double* out) {
  cuda::observable<false>(system, x, radius, n, out);
}

void host_replay_drift_divergence(const SystemSpec& system, const double* x, const double* radius, std::size_t n,
                                  int /*n_threads*/, double* out) {
  cuda::observable<true>(system, x, radius, n, out);
}

}  // namespace activescore
