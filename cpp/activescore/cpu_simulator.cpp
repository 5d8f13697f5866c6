// CPU driver: cell list + fused force/integrate pass, OpenMP over particles. Each particle sums its own
// neighbours in a fixed order (no shared accumulators), so any thread count gives bit-identical results. Pairs come
// from a Verlet list, or, where lists would last a single step, straight from the cell list (direct forces).
// Particles are stored in cell order (slots), re-sorted at every cell-list build so that neighbours lie close
// in memory; each keeps its tag (original index), which keys its random stream and orders its neighbours, so the
// slot order never shows in the results.
#include <omp.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <string>
#include <vector>

#include "cell_list.hpp"
#include "dispatch.hpp"
#include "integrator.hpp"
#include "neighbour_list.hpp"
#include "pair_potential.hpp"
#include "propulsion.hpp"
#include "simulator.hpp"

namespace activescore {

namespace {

// Threads for n particles: as asked, or by default one per kParticlesPerThread particles up to all cores, since
// below that the per-step barriers cost more than a thread gains. Results do not depend on the count.
constexpr std::size_t kParticlesPerThread = 2048;
int thread_count(int requested, std::size_t n) {
  if (requested > 0) return requested;
  return int(std::max<std::size_t>(1, std::min<std::size_t>(omp_get_max_threads(), n / kParticlesPerThread)));
}

// Verlet skin as a fraction of the interaction range: wide enough that dense active systems rebuild every few
// tens of steps, narrow enough that few listed pairs lie outside the cutoff. Where the particles move so far per
// step that a list lasts a single step anyway (hot systems: rebuilt every step whatever the skin), the skin only
// costs candidates, so it shrinks, down to kMinSkinFraction, and grows back once lists last longer. Lists that last
// one step even then are not built at all: each step takes its pairs straight from the cell list (direct forces)
// until a step's moves are small enough for a list to last. The forces do not depend on the skin (pairs listed
// beyond the cutoff add exactly zero) nor on the mode, so neither do the results.
constexpr double kSkinFraction = 0.1;
constexpr double kMinSkinFraction = 0.0125;

template <class Real, class Pair, class Propulsion>
class CpuSimulator final : public Simulator {
  static constexpr int C = Propulsion::kComponents;

  // A thread's scratch for direct forces: the pairs of a block of particles, each particle's in ascending tag of
  // the other.
  struct DirectBlock {
    std::vector<uint64_t> found, sorted;  // neighbour keys as found, and sorted
    std::vector<int> first;               // the block's b-th particle's pairs: [first[b], first[b + 1])
    std::vector<Real> dx, dy, sigma;      // raw differences x_i - x_j, contact distances
    std::vector<Real> fx, fy;             // force on the particle of the pair
  };

 public:
  CpuSimulator(const SystemSpec& system, const RunSpec& run, const Pair& pair, const Propulsion& propulsion,
               const double* x, const double* q, const double* radius, std::size_t n)
      : pair_(pair), propulsion_(propulsion), box_(Box<Real>::make(system.box_length)), interacting_(system.k != 0.0),
        n_threads_(thread_count(run.n_threads, n)) {
    n_ = n;
    step_ = run.step;
    double_precision_ = sizeof(Real) == sizeof(double);
    min_width_ = Real(max_cutoff(system, radius, n));
    skin_ = Real(kSkinFraction) * min_width_;
    params_ = StepParams<Real>::make(system, run, min_width_);
    x_.assign(x, x + 2 * n);
    q_.assign(q, q + C * n);
    radius_.assign(radius, radius + n);
    tag_.resize(n);
    for (std::size_t i = 0; i < n; ++i) tag_[i] = int(i);
    x_new_.resize(x_.size());
    q_new_.resize(q_.size());
    tag_new_.resize(n);
  }

  // One parallel region for all the steps: a thread team forked per step lets idle threads fall asleep between
  // steps, and waking them can cost more than a small step. Two barriers a step (after phase 1 and after phase 2):
  // each thread reduces the step's outcome itself from per-thread slots and flips its own copy of which buffer holds
  // the current state, so no `single` (and its barrier) is needed to swap buffers or publish the outcome.
  int64_t advance(int64_t n_steps) override {
    if (n_steps <= 0) return 0;
    const int team = n_threads_;
    // Per-thread outcome slots, one cache line each, doubled by step parity: a thread may write step s+1's slot
    // while a slower one still reads step s's (nothing else separates them when there is no pair phase).
    struct alignas(64) Outcome {
      long long bad;
      Real move_sq;
    };
    std::vector<Outcome> outcome(2 * std::size_t(team));
    int64_t done = 0;
    long long bad = LLONG_MAX;
    bool flipped = false, stale = list_stale_;  // written after the loop by thread 0 (every thread agrees)
    int age = list_age_;
    Real last_move_sq = last_move_sq_;
#pragma omp parallel num_threads(team)
    {
      PairBlock<Real> block;  // this thread's scratch for phase 1
      DirectBlock direct_block;  // and for direct forces
      const int me = omp_get_thread_num(), threads = omp_get_num_threads();  // the team may be smaller than asked
      bool my_flipped = false;  // the current state is in x_new_/q_new_ (the same on every thread)
      bool my_stale = list_stale_;
      int my_age = list_age_;  // steps since the list was built
      Real my_last_move_sq = last_move_sq_;  // the last step's largest move since the last build
      long long my_bad = LLONG_MAX;
      int64_t s = 0;
      for (; s < n_steps; ++s) {
        if (interacting_ && my_stale) {
#pragma omp single
          {
            if (my_flipped) {
              x_.swap(x_new_);
              q_.swap(q_new_);
            }
            adapt_neighbour_search(my_age, my_last_move_sq);
            ++(direct_ ? direct_steps_ : list_builds_);
          }
          my_flipped = false;
          cells_.build(x_.data(), radius_.data(), n_, box_, min_width_ + skin_);
          sort_into_cell_order();
          if (!direct_) {
            neighbours_.build(cells_, box_, pair_, skin_, tag_.data(), n_);
#pragma omp single
            {
              pair_fx_.resize(neighbours_.pairs());
              pair_fy_.resize(neighbours_.pairs());
            }
          }
          my_stale = false;
          my_age = 0;
        }
        // Read before the barrier below: a thread that is a step ahead may already be in the next rebuild, where
        // adapt_neighbour_search changes skin_ and direct_; deciding staleness on those would split the team's
        // control flow.
        const Real skin = skin_;
        const bool direct = interacting_ && direct_;
        const Real* x = my_flipped ? x_new_.data() : x_.data();
        const Real* q = my_flipped ? q_new_.data() : q_.data();
        Real* x_next = my_flipped ? x_.data() : x_new_.data();
        Real* q_next = my_flipped ? q_.data() : q_new_.data();
        if (interacting_ && !direct) evaluate_pairs(block, x);
        Real my_move_sq = 0;
        Outcome* slots = &outcome[std::size_t(s & 1) * team];
        slots[me].bad = step_particles(x, q, x_next, q_next, step_ + s, direct ? &direct_block : nullptr, my_move_sq);
        slots[me].move_sq = my_move_sq;
#pragma omp barrier
        Real max_move_sq = 0;
        for (int t = 0; t < threads; ++t) {  // max and min are exact: every thread reaches the same outcome
          my_bad = std::min(my_bad, slots[t].bad);
          max_move_sq = std::max(max_move_sq, slots[t].move_sq);
        }
        if (my_bad != LLONG_MAX) break;
        my_flipped = !my_flipped;
        my_stale = direct || VerletList<Real>::stale(max_move_sq, skin);
        my_last_move_sq = max_move_sq;
        ++my_age;
      }
      if (me == 0) {
        done = s;
        bad = my_bad;
        flipped = my_flipped;
        stale = my_stale;
        age = my_age;
        last_move_sq = my_last_move_sq;
      }
    }
    if (flipped) {
      x_.swap(x_new_);
      q_.swap(q_new_);
    }
    step_ += done;
    list_stale_ = stale;
    list_age_ = age;
    last_move_sq_ = last_move_sq;
    if (bad != LLONG_MAX) report_blow_up(bad);
    return done;
  }

  void read_state(void* x, void* q) const override {  // in original order
    Real* x_out = static_cast<Real*>(x);
    Real* q_out = static_cast<Real*>(q);
    for (std::size_t p = 0; p < n_; ++p) {
      std::copy_n(&x_[2 * p], 2, x_out + 2 * std::size_t(tag_[p]));
      std::copy_n(&q_[C * p], C, q_out + C * std::size_t(tag_[p]));
    }
  }

 private:
  Pair pair_;
  Propulsion propulsion_;
  Box<Real> box_;
  bool interacting_;
  int n_threads_;
  Real min_width_;
  StepParams<Real> params_;
  std::vector<Real> x_, q_, radius_, x_new_, q_new_;  // by slot
  std::vector<int> tag_, tag_new_;                     // original index of each slot
  CellList<Real> cells_;
  VerletList<Real> neighbours_;
  std::vector<Real> pair_fx_, pair_fy_;  // force on the owner (lower tag) of every listed pair, in its pair slot
  Real skin_;
  bool direct_ = false;  // pairs straight from the cell list, rebuilt every step, instead of a Verlet list
  bool list_stale_ = true;
  int list_age_ = 0;
  Real last_move_sq_ = 0;

  // Before a rebuild, from how many steps the last list lasted (age) and the largest move since it was built: a list
  // that lasted one step halves the skin (to kMinSkinFraction of the range at least), and at that skin goes direct;
  // one that lasted more than four steps doubles it back (to kSkinFraction at most). Direct forces end once a
  // step's moves are small enough for a list of the smallest skin to last more than that step.
  void adapt_neighbour_search(int age, Real last_move_sq) {
    const Real min_skin = Real(kMinSkinFraction) * min_width_;
    if (direct_) {
      direct_ = VerletList<Real>::stale(last_move_sq, skin_);
      return;
    }
    if (age == 1 && skin_ == min_skin) direct_ = true;
    if (age == 1) skin_ = std::max(Real(0.5) * skin_, min_skin);
    if (age > 4) skin_ = std::min(Real(2) * skin_, Real(kSkinFraction) * min_width_);
  }

  // Moves every particle into the slot the cell list just gave it (which makes the cell list's slots ours). Every
  // thread of the team calls it.
  void sort_into_cell_order() {
    const int* from = cells_.order.data();
    const long long n = static_cast<long long>(n_);
#pragma omp for schedule(static)
    for (long long s = 0; s < n; ++s) {
      std::copy_n(&q_[C * std::size_t(from[s])], C, &q_new_[C * s]);
      tag_new_[s] = tag_[from[s]];
      x_[2 * s] = cells_.xy[2 * s];
      x_[2 * s + 1] = cells_.xy[2 * s + 1];
      radius_[s] = cells_.radius[s];
    }
#pragma omp single
    {
      q_.swap(q_new_);
      tag_.swap(tag_new_);
    }
  }

  // Phase 1 of a step (inside the parallel region, ends in a barrier): every owned pair of the neighbour list
  // evaluated once, in blocks of owners, into the pair table: the force s * (dx, dy) on the owner, s = f(rho)/rho.
  // The other particle reads it negated: the minimum image is odd and s * (-d) == -(s * d) in IEEE arithmetic, so
  // its summands are bit for bit those of recomputing its own displacement (products rounded: -ffp-contract=off).
  // A block first gathers its pairs' raw differences in one loop over the table's slots (one loop, not one per
  // particle: a particle's few pairs would end each short loop in an unpredictable branch), then one vectorised loop
  // applies the minimum image, the cutoff and the force.
  void evaluate_pairs(PairBlock<Real>& block, const Real* x) {
    const VerletList<Real>& nl = neighbours_;
    const Real* radius = radius_.data();
    const int* owner = nl.pair_owner.data();
    const int* partner = nl.pair_partner.data();
    const long long n = static_cast<long long>(n_);
    const long long blocks = (n + kPairBlockParticles - 1) / kPairBlockParticles;
#pragma omp for schedule(static)
    for (long long b = 0; b < blocks; ++b) {
      const long long begin = b * kPairBlockParticles, end = std::min(n, begin + kPairBlockParticles);
      const int first = nl.pair_start[begin], count = nl.pair_start[end] - first;
      block.grow(count);
      Real* __restrict dx = block.dx.data();
      Real* __restrict dy = block.dy.data();
      Real* __restrict sigma = block.sigma.data();
      for (int k = 0; k < count; ++k) {
        const int i = owner[first + k], j = partner[first + k];
        dx[k] = x[2 * i] - x[2 * j];
        dy[k] = x[2 * i + 1] - x[2 * j + 1];
        sigma[k] = radius[i] + radius[j];
      }
      pair_force_vectors(box_, pair_, dx, dy, sigma, count, &pair_fx_[first], &pair_fy_[first]);
    }
  }

  // Phase 2: this thread's particles summed from the pair table (or, given direct scratch, each block's pairs
  // straight from the cell list) and integrated; returns its smallest failing tag and raises max_move_sq to its
  // largest displacement since the neighbour list was built (this step's, for direct forces). Blocks of particles
  // draw their normals in vectorised loops first.
  long long step_particles(const Real* x, const Real* q, Real* x_new, Real* q_new, int64_t step_index,
                           DirectBlock* direct, Real& max_move_sq) {
    const long long n = static_cast<long long>(n_);
    const long long blocks = (n + kPairBlockParticles - 1) / kPairBlockParticles;
    const unsigned long long step = static_cast<unsigned long long>(step_index);
    NormalBlock<kPairBlockParticles> noise;
    const Real* reference = direct ? x : neighbours_.reference.data();
    long long bad = LLONG_MAX;
#pragma omp for schedule(static) nowait
    for (long long b = 0; b < blocks; ++b) {
      const long long begin = b * kPairBlockParticles, end = std::min(n, begin + kPairBlockParticles);
      const int count = int(end - begin);
      noise.fill(params_.seed, step, &tag_[begin], count, kStepNoise, params_.x_noise != Real(0));
      Real gx[kPairBlockParticles], gy[kPairBlockParticles], fx[kPairBlockParticles], fy[kPairBlockParticles];
      const Propulsion propulsion = propulsion_;
      const Real* q_block = &q[C * begin];
#pragma omp simd
      for (int a = 0; a < count; ++a) propulsion.direction(&q_block[C * a], gx[a], gy[a]);
      if (direct) {
        gather_direct_pairs(*direct, x, begin, end);
        for (int a = 0; a < count; ++a) sum_direct_pairs(*direct, a, fx[a], fy[a]);
      } else if (interacting_) {
        for (int a = 0; a < count; ++a) sum_pair_forces(begin + a, fx[a], fy[a]);
      } else {
        std::fill_n(fx, count, Real(0));
        std::fill_n(fy, count, Real(0));
      }
      bad = std::min(bad, integrate_block(x + 2 * begin, q_block, &tag_[begin], noise, gx, gy, fx, fy, count,
                                          x_new + 2 * begin, q_new + C * begin));
      if (interacting_)
        max_move_sq = std::max(max_move_sq, largest_move_sq(x_new + 2 * begin, reference + 2 * begin, count));
    }
    return bad;
  }

  // integrate_particle for the count particles of a block, in one SIMD loop; returns the smallest tag whose
  // move failed (LLONG_MAX if none). min is exact, so the vector lanes' order does not matter.
  long long integrate_block(const Real* x, const Real* q, const int* tag, const NormalBlock<kPairBlockParticles>& noise,
                            const Real* gx, const Real* gy, const Real* fx, const Real* fy, int count, Real* x_new,
                            Real* q_new) const {
    const StepParams<Real> params = params_;
    const Propulsion propulsion = propulsion_;
    const Box<Real> box = box_;
    long long bad = LLONG_MAX;
#pragma omp simd reduction(min : bad)
    for (int a = 0; a < count; ++a) {
      const bool ok = integrate_particle(params, propulsion, box, noise.first(a), noise.second(a), &x[2 * a], &q[C * a],
                                         gx[a], gy[a], fx[a], fy[a], &x_new[2 * a], &q_new[C * a]);
      bad = ok ? bad : std::min(bad, (long long)tag[a]);
    }
    return bad;
  }

  // The largest squared minimum-image distance of count new positions from their references (max is exact).
  Real largest_move_sq(const Real* x_new, const Real* reference, int count) const {
    const Box<Real> box = box_;
    Real largest = 0;
#pragma omp simd reduction(max : largest)
    for (int a = 0; a < count; ++a) {
      const Real mx = box.min_image(x_new[2 * a] - reference[2 * a]);
      const Real my = box.min_image(x_new[2 * a + 1] - reference[2 * a + 1]);
      largest = std::max(largest, mx * mx + my * my);
    }
    return largest;
  }

  // The pair force on slot p: its listed pairs from the table, in ascending tag (one order, whenever built):
  // first its neighbours of lower tag (pairs they own, negated), then its own pairs (contiguous in the table).
  void sum_pair_forces(long long p, Real& fx, Real& fy) const {
    const VerletList<Real>& nl = neighbours_;
    const Real* tx = pair_fx_.data();
    const Real* ty = pair_fy_.data();
    Real sx = 0, sy = 0;
    const int owned = nl.owned_first[p];
    for (int a = nl.start[p]; a < owned; ++a) {
      const int k = nl.pair_of[a];
      sx += -tx[k];
      sy += -ty[k];
    }
    const int k0 = nl.pair_start[p], m = nl.start[p + 1] - owned;
    for (int k = 0; k < m; ++k) {
      sx += tx[k0 + k];
      sy += ty[k0 + k];
    }
    fx = sx;
    fy = sy;
  }

  // Direct forces for the slots [begin, end) (the cell list's slots, rebuilt this step): each particle's neighbours
  // found as for a list (skin_ covers the rounding of the cheap distance test), in ascending tag, then every pair
  // evaluated in one vectorised loop, from both of its sides. The summands are those of the pair table bit for bit:
  // the minimum image is odd, so the other side's s * (-d) is -(s * d).
  void gather_direct_pairs(DirectBlock& direct, const Real* x, long long begin, long long end) const {
    const int particles = int(end - begin);
    direct.first.resize(particles + 1);
    direct.first[0] = 0;
    std::size_t used = 0;
    for (int b = 0; b < particles; ++b) {
      used += find_neighbours(cells_, box_, pair_, skin_, tag_.data(), int(begin + b), direct.found, used);
      direct.first[b + 1] = int(used);
    }
    const int count = int(used);
    if (direct.sorted.size() < used) {
      const std::size_t cap = std::max(used, 2 * direct.sorted.size());
      for (auto* v : {&direct.dx, &direct.dy, &direct.sigma, &direct.fx, &direct.fy}) v->resize(cap);
      direct.sorted.resize(cap);
    }
    const Real* radius = radius_.data();
    for (int b = 0; b < particles; ++b) {
      const int first = direct.first[b], m = direct.first[b + 1] - first;
      rank_sort(&direct.found[first], m, &direct.sorted[first]);
      const long long i = begin + b;
      for (int a = first; a < first + m; ++a) {
        const int j = key_slot(direct.sorted[a]);
        direct.dx[a] = x[2 * i] - x[2 * j];
        direct.dy[a] = x[2 * i + 1] - x[2 * j + 1];
        direct.sigma[a] = radius[i] + radius[j];
      }
    }
    pair_force_vectors(box_, pair_, direct.dx.data(), direct.dy.data(), direct.sigma.data(), count, direct.fx.data(),
                       direct.fy.data());
  }

  // The pair force on the block's b-th particle from gather_direct_pairs, in ascending tag.
  static void sum_direct_pairs(const DirectBlock& direct, int b, Real& fx, Real& fy) {
    Real sx = 0, sy = 0;
    for (int a = direct.first[b]; a < direct.first[b + 1]; ++a) {
      sx += direct.fx[a];
      sy += direct.fy[a];
    }
    fx = sx;
    fy = sy;
  }

  void report_blow_up(long long bad) {  // bad: a tag
    const std::size_t p = std::find(tag_.begin(), tag_.end(), int(bad)) - tag_.begin();
    const double dx = double(x_new_[2 * p]) - double(x_[2 * p]);
    const double dy = double(x_new_[2 * p + 1]) - double(x_[2 * p + 1]);
    error_ = blow_up_message(step_, bad, dx, dy, 0.5 * double(min_width_), interacting_);
  }
};

// Calls per_particle(i, x_i, block, b) for every particle of a configuration (b: its place in the pair block,
// whose scales evaluate_scale has filled), over a float64 cell list.
template <class Pair, class EvaluateScale, class Body>
void over_particles(const SystemSpec& system, const Pair& pair, const double* x, const double* radius, std::size_t n,
                    int n_threads, EvaluateScale&& evaluate_scale, Body&& per_particle) {
  const Box<double> box = Box<double>::make(system.box_length);
  std::vector<double> wrapped(2 * n);
  for (std::size_t a = 0; a < 2 * n; ++a) wrapped[a] = box.wrap(x[a]);
  CellList<double> cells;
  cells.build(wrapped.data(), radius, n, box, max_cutoff(system, radius, n));
  const long long count = static_cast<long long>(n);
  const long long blocks = (count + kPairBlockParticles - 1) / kPairBlockParticles;
#pragma omp parallel num_threads(thread_count(n_threads, n))
  {
    PairBlock<double> pairs;
#pragma omp for schedule(static)
    for (long long block = 0; block < blocks; ++block) {
      const long long begin = block * kPairBlockParticles, end = std::min(count, begin + kPairBlockParticles);
      pairs.clear();
      for (long long slot = begin; slot < end; ++slot) {
        if (system.k != 0.0)
          gather_interacting(cells, box, pair, int(slot), pairs);
        else
          pairs.first.push_back(0);
      }
      evaluate_scale(pair, pairs);
      for (long long slot = begin; slot < end; ++slot) {
        const int i = cells.order[slot];
        per_particle(i, wrapped.data() + 2 * i, pairs, int(slot - begin));
      }
    }
  }
}

}  // namespace

double max_cutoff(const SystemSpec& system, const double* radius, std::size_t n) {
  const double r_max = n ? *std::max_element(radius, radius + n) : 0.0;
  return 2.0 * r_max + system.cutoff_delta();
}

std::unique_ptr<Simulator> make_cpu_simulator(const SystemSpec& system, const RunSpec& run, bool double_precision,
                                              const double* x, const double* q, const double* radius, std::size_t n) {
  return double_precision ? make_driver<CpuSimulator, double>(system, run, x, q, radius, n)
                          : make_driver<CpuSimulator, float>(system, run, x, q, radius, n);
}

void cpu_forces(const SystemSpec& system, const double* x, const double* radius, std::size_t n, int n_threads,
                double* out) {
  with_pair<double>(system, [&](auto pair) {
    over_particles(
        system, pair, x, radius, n, n_threads,
        [](const auto& p, PairBlock<double>& pairs) { evaluate_force_scale(p, pairs); },
        [&](int i, const double* xi, const PairBlock<double>& pairs, int b) {
          double fx, fy;
          sum_pair_vectors(pairs, b, fx, fy);
          out[2 * i] = system.k * fx - system.trap * xi[0];
          out[2 * i + 1] = system.k * fy - system.trap * xi[1];
        });
    return 0;
  });
}

void cpu_drift_divergence(const SystemSpec& system, const double* x, const double* radius, std::size_t n, int n_threads,
                          double* out) {
  constexpr double kDim = 2.0;
  with_pair<double>(system, [&](auto pair) {
    over_particles(
        system, pair, x, radius, n, n_threads,
        [](const auto& p, PairBlock<double>& pairs) { evaluate_divergence_scale(p, pairs); },
        [&](int i, const double*, const PairBlock<double>& pairs, int b) {
          out[i] = system.k * sum_pair_scalars(pairs, b) - system.trap * kDim;
        });
    return 0;
  });
}

}  // namespace activescore
