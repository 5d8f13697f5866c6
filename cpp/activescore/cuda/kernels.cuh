// The per-thread bodies of the CUDA driver: the device cell list (keys, gather, cell bounds), the neighbour sum and
// the fused force + integrate step, plus the single-configuration observables.
//
// Every body is an AS_HD function of the thread's slot, so the same code also compiles for the host: host_replay.cpp
// runs it as serial loops over the slots, with std::stable_sort in place of CUB, and the tests compare that replay
// with the CPU driver bit for bit on every build, GPU or not. The __global__ wrappers at the end are nvcc's only.
//
// Layout. Particle data lives in two fixed buffer sets of structure-of-arrays, "cur" (sorted by cell, the order the
// cell list describes) and "next" (the step's output, in the same slot order as cur). tag = original particle index.
// A step is:
//   sort     (CUB, keys = cell of each particle in ORIGINAL-index order, values = its slot in next)
//   clear    cell ranges zeroed (a memset), so empty cells are empty
//   gather   next -> cur in the sorted order; each cell's [begin, end) from the sorted keys
//   step     per slot of cur: sum the pair forces over the 3x3 cells, integrate_particle, write next, and scatter
//            (cell, slot) of the new position to the particle's original index for the next sort.
// Because the sort input is in original-index order and the radix sort is stable, every cell lists its particles in
// ascending original index. The step merges the 3x3 cells' lists by that index, so each particle sums the CPU
// driver's terms (same pair maths, pair_potential.hpp) in the CPU driver's order, ascending original index: the two
// drivers agree bit for bit wherever their arithmetic does (the host replay; on a GPU, nvcc's fused multiply-adds
// and its libm softplus move the last bits). The observables sum in cell order, as the CPU's cpu_forces does.
#pragma once
#include <cstdint>
#include <type_traits>

#include "../box.hpp"
#include "../cell_grid.hpp"
#include "../hostdevice.hpp"
#include "../integrator.hpp"
#include "../pair_potential.hpp"
#include "../propulsion.hpp"

namespace activescore {
namespace cuda {

constexpr int kBlockThreads = 256;
constexpr unsigned long long kNoFailure = ~0ull;

template <class Real>
struct alignas(2 * sizeof(Real)) Vec2 {
  Real x, y;
};

// Read-only (texture-path) loads for data that no thread of the kernel writes.
AS_HD Vec2<float> load_ro(const Vec2<float>* p) {
#if defined(__CUDA_ARCH__)
  const float2 v = __ldg(reinterpret_cast<const float2*>(p));
  return Vec2<float>{v.x, v.y};
#else
  return *p;
#endif
}
AS_HD Vec2<double> load_ro(const Vec2<double>* p) {
#if defined(__CUDA_ARCH__)
  const double2 v = __ldg(reinterpret_cast<const double2*>(p));
  return Vec2<double>{v.x, v.y};
#else
  return *p;
#endif
}
// Slots [begin, end) of one cell of the sorted order; zeroed before every build, so an empty cell is {0, 0}.
struct alignas(8) CellRange {
  unsigned begin, end;
};

AS_HD CellRange load_ro(const CellRange* p) {
#if defined(__CUDA_ARCH__)
  const uint2 v = __ldg(reinterpret_cast<const uint2*>(p));
  return CellRange{v.x, v.y};
#else
  return *p;
#endif
}
template <class T>
AS_HD T load_ro(const T* p) {
#if defined(__CUDA_ARCH__)
  return __ldg(p);
#else
  return *p;
#endif
}

AS_HD void atomic_min(unsigned long long* p, unsigned long long v) {
#if defined(__CUDA_ARCH__)
  atomicMin(p, v);
#else
  if (v < *p) *p = v;
#endif
}
AS_HD void atomic_min(unsigned* p, unsigned v) {
#if defined(__CUDA_ARCH__)
  atomicMin(p, v);
#else
  if (v < *p) *p = v;
#endif
}

// Device-resident run control: the step counter (so a captured graph needs no per-launch arguments) and the first
// failure. Kernels of steps after a failure do nothing, so the last good state survives in cur.
struct Control {
  unsigned long long step;      // global step of the next step to run
  unsigned long long bad_step;  // first failing step, or kNoFailure
  unsigned bad_index;           // smallest original index that failed at bad_step
};

// One particle set in structure-of-arrays form; C propulsion components per particle (0: none).
template <class Real, int C>
struct Particles {
  Vec2<Real>* pos;
  Real* q;
  unsigned* tag;
  Real* radius;
};

// ------------------------------------------------------------------------------------------------ cell list bodies

// Records where the particle in `slot` of `set` will go: its cell, keyed by its original index.
template <class Real, int C>
AS_HD void scatter_key_body(unsigned slot, const CellGrid<Real>& grid, const Particles<Real, C>& set,
                            unsigned* key_by_tag, unsigned* slot_by_tag) {
  const Vec2<Real> p = set.pos[slot];
  const unsigned t = set.tag[slot];
  key_by_tag[t] = grid.cell_of(p.x, p.y);
  slot_by_tag[t] = slot;
}

// Wraps the positions of a configuration into the box (observables), then records the keys.
template <class Real, int C>
AS_HD void wrap_and_scatter_key_body(unsigned slot, const CellGrid<Real>& grid, const Particles<Real, C>& set,
                                     unsigned* key_by_tag, unsigned* slot_by_tag) {
  const Vec2<Real> p = set.pos[slot];
  set.pos[slot] = Vec2<Real>{grid.box.wrap(p.x), grid.box.wrap(p.y)};
  scatter_key_body(slot, grid, set, key_by_tag, slot_by_tag);
}

// cur[slot] = from[sorted_slot[slot]]; with fill_cells, also the cell ranges from the sorted keys: the first slot
// of a cell writes its begin, the last its end (the ranges were zeroed before, so empty cells stay {0, 0}).
template <class Real, int C>
AS_HD void gather_body(unsigned slot, unsigned n, const unsigned* sorted_key, const unsigned* sorted_slot,
                       const Particles<Real, C>& from, const Particles<Real, C>& to, CellRange* cell_range,
                       bool fill_cells) {
  const unsigned o = sorted_slot[slot];
  to.pos[slot] = from.pos[o];
  for (int c = 0; c < C; ++c) to.q[C * slot + c] = from.q[C * o + c];
  to.tag[slot] = from.tag[o];
  to.radius[slot] = from.radius[o];
  if (fill_cells) {
    const unsigned cell = sorted_key[slot];
    if (slot == 0 || sorted_key[slot - 1] != cell) cell_range[cell].begin = slot;
    if (slot + 1 == n || sorted_key[slot + 1] != cell) cell_range[cell].end = slot + 1;
  }
}

// ------------------------------------------------------------------------------------------------ neighbour sum

// Calls visit(j) for every slot j of the 3x3 cells around `cell` (itself included), cell by cell in the grid's
// order, each cell in slot order: the CPU cell list's order, which the observables sum in.
template <class Real, class Visit>
AS_HD void for_each_candidate(const CellGrid<Real>& grid, const CellRange* cell_range, unsigned cell, Visit& visit) {
  grid.for_each_neighbour_cell(cell, [&](unsigned c) {
    const CellRange range = load_ro(cell_range + c);
    for (unsigned j = range.begin; j < range.end; ++j) visit(j);
  });
}

// The same slots in ascending tag (original index), the order in which the CPU driver's Verlet lists sum a
// particle's pairs: every cell lists its particles in ascending tag (a stable sort of keys given in tag order), so
// this is a merge of the (at most nine) cells' ranges, each step taking the smallest head.
template <class Real, class Visit>
AS_HD void for_each_candidate_by_tag(const CellGrid<Real>& grid, const CellRange* cell_range, const unsigned* tag,
                                     unsigned cell, Visit& visit) {
  constexpr unsigned kDone = ~0u;  // above every tag (at most 2^31 - 1 particles)
  unsigned at[9], end[9], head[9];
  int cells = 0;
  grid.for_each_neighbour_cell(cell, [&](unsigned c) {
    const CellRange range = load_ro(cell_range + c);
    at[cells] = range.begin;
    end[cells] = range.end;
    head[cells] = range.begin < range.end ? load_ro(tag + range.begin) : kDone;
    ++cells;
  });
  for (;;) {
    int best = 0;
    for (int a = 1; a < cells; ++a) best = head[a] < head[best] ? a : best;
    if (head[best] == kDone) return;
    visit(at[best]);
    ++at[best];
    head[best] = at[best] < end[best] ? load_ro(tag + at[best]) : kDone;
  }
}

// Calls sum(dx, dy, rho_sq, sigma) for every pair of the particle at (xi, yi) (radius ri) with a candidate slot j
// that interacts (shared pair maths: pair_potential.hpp), with (dx, dy) = x_i - x_j under the minimum image.
template <class Real, class Pair, class Sum>
struct InteractingPairs {
  const Box<Real>& box;
  const Pair& pair;
  const Vec2<Real>* pos;
  const Real* radius;
  Real xi, yi, ri;
  Sum& sum;
  AS_HD void operator()(unsigned j) {
    const Vec2<Real> pj = load_ro(pos + j);
    const Real dx = box.min_image(xi - pj.x);
    const Real dy = box.min_image(yi - pj.y);
    const Real rho_sq = dx * dx + dy * dy;
    const Real sigma = ri + load_ro(radius + j);
    if (interacts(pair, rho_sq, sigma)) sum(dx, dy, rho_sq, sigma);
  }
};

template <class Real, class Pair>
struct ForceSum {
  const Pair& pair;
  Real fx = 0, fy = 0;
  AS_HD void operator()(Real dx, Real dy, Real rho_sq, Real sigma) {
    const Real scale = force_scale(pair, rho_sq, sigma);
    fx += scale * dx;
    fy += scale * dy;
  }
};

template <class Real, class Pair>
struct DivergenceSum {
  const Pair& pair;
  Real sum = 0;
  AS_HD void operator()(Real, Real, Real rho_sq, Real sigma) { sum += divergence_scale(pair, rho_sq, sigma); }
};

// ------------------------------------------------------------------------------------------------ the step

template <class Real, class Pair, class Propulsion>
struct StepArgs {
  static constexpr int C = Propulsion::kComponents;
  Particles<Real, C> cur;         // state at the step, sorted by cell
  Particles<Real, C> next;        // output, same slot order as cur
  const unsigned* cell_of_slot;   // cell of each slot of cur (the sorted keys)
  const CellRange* cell_range;    // [begin, end) of every cell
  unsigned* key_by_tag;           // out: cell of each particle's new position, by original index
  unsigned* slot_by_tag;          // out: its slot in next
  CellGrid<Real> grid;
  Pair pair;
  Propulsion propulsion;
  StepParams<Real> params;
  Control* control;
  unsigned n;
  bool interacting;
};

// One particle's step at global step control->step + offset. A failing particle records (step, original index);
// every kernel of a later step returns at once, which leaves the failing step's input in cur.
template <class Real, class Pair, class Propulsion>
AS_HD void step_body(unsigned slot, unsigned offset, const StepArgs<Real, Pair, Propulsion>& a) {
  constexpr int C = Propulsion::kComponents;
  const unsigned long long step = a.control->step + offset;
  if (a.control->bad_step < step) return;
  const Vec2<Real> p = a.cur.pos[slot];
  const unsigned tag = a.cur.tag[slot];
  const Real r = a.cur.radius[slot];
  Real q[C];
  for (int c = 0; c < C; ++c) q[c] = a.cur.q[C * slot + c];
  ForceSum<Real, Pair> force{a.pair};
  if (a.interacting) {
    InteractingPairs<Real, Pair, ForceSum<Real, Pair>> pairs{a.grid.box, a.pair, a.cur.pos, a.cur.radius,
                                                             p.x,        p.y,    r,         force};
    for_each_candidate_by_tag(a.grid, a.cell_range, a.cur.tag, a.cell_of_slot[slot], pairs);
  }
  const Real x[2] = {p.x, p.y};
  Real x_new[2], q_new[C];
  const bool ok =
      integrate_particle(a.params, a.propulsion, a.grid.box, step, tag, x, q, force.fx, force.fy, x_new, q_new);
  a.next.pos[slot] = Vec2<Real>{x_new[0], x_new[1]};
  for (int c = 0; c < C; ++c) a.next.q[C * slot + c] = q_new[c];
  a.next.tag[slot] = tag;
  a.next.radius[slot] = r;
  a.key_by_tag[tag] = a.grid.cell_of(x_new[0], x_new[1]);
  a.slot_by_tag[tag] = slot;
  if (!ok) {
    atomic_min(&a.control->bad_step, step);
    atomic_min(&a.control->bad_index, tag);
  }
}

// ------------------------------------------------------------------------------------------------ observables

template <class Pair>
struct ObservableArgs {
  Particles<double, 0> cur;  // wrapped positions, sorted by cell
  const unsigned* cell_of_slot;
  const CellRange* cell_range;
  CellGrid<double> grid;
  Pair pair;
  double k, trap;
  bool interacting;
  double* out;  // by original index: (n, 2) forces or (n,) divergence
};

// forces: k sum_j F_ij - A x_i; divergence: k sum_j [f/rho + f'] - A d (d = 2), as cpu_forces/cpu_drift_divergence.
template <class Pair, bool kDivergence>
AS_HD void observable_body(unsigned slot, const ObservableArgs<Pair>& a) {
  const Vec2<double> p = a.cur.pos[slot];
  const unsigned tag = a.cur.tag[slot];
  const double r = a.cur.radius[slot];
  const unsigned cell = a.cell_of_slot[slot];
  using Sum = std::conditional_t<kDivergence, DivergenceSum<double, Pair>, ForceSum<double, Pair>>;
  Sum sum{a.pair};
  if (a.interacting) {
    InteractingPairs<double, Pair, Sum> pairs{a.grid.box, a.pair, a.cur.pos, a.cur.radius, p.x, p.y, r, sum};
    for_each_candidate(a.grid, a.cell_range, cell, pairs);
  }
  if constexpr (kDivergence) {
    a.out[tag] = a.k * sum.sum - a.trap * 2.0;
  } else {
    a.out[2 * tag] = a.k * sum.fx - a.trap * p.x;
    a.out[2 * tag + 1] = a.k * sum.fy - a.trap * p.y;
  }
}

// ------------------------------------------------------------------------------------------------ kernels

#if defined(__CUDACC__)
__device__ __forceinline__ unsigned thread_slot() { return blockIdx.x * blockDim.x + threadIdx.x; }

template <class Real, int C>
__global__ void __launch_bounds__(kBlockThreads)
    scatter_keys_kernel(unsigned n, CellGrid<Real> grid, Particles<Real, C> set, unsigned* key_by_tag,
                        unsigned* slot_by_tag, bool wrap) {
  const unsigned slot = thread_slot();
  if (slot >= n) return;
  if (wrap)
    wrap_and_scatter_key_body(slot, grid, set, key_by_tag, slot_by_tag);
  else
    scatter_key_body(slot, grid, set, key_by_tag, slot_by_tag);
}

// control may be null (observables); otherwise nothing happens once a step has failed.
template <class Real, int C>
__global__ void __launch_bounds__(kBlockThreads)
    gather_kernel(unsigned n, const unsigned* sorted_key, const unsigned* sorted_slot, Particles<Real, C> from,
                  Particles<Real, C> to, CellRange* cell_range, bool fill_cells, const Control* control) {
  const unsigned slot = thread_slot();
  if (slot >= n) return;
  if (control != nullptr && control->bad_step != kNoFailure) return;
  gather_body(slot, n, sorted_key, sorted_slot, from, to, cell_range, fill_cells);
}

template <class Real, class Pair, class Propulsion>
__global__ void __launch_bounds__(kBlockThreads) step_kernel(StepArgs<Real, Pair, Propulsion> args, unsigned offset) {
  const unsigned slot = thread_slot();
  if (slot >= args.n) return;
  step_body(slot, offset, args);
}

template <class Pair, bool kDivergence>
__global__ void __launch_bounds__(kBlockThreads) observable_kernel(ObservableArgs<Pair> args, unsigned n) {
  const unsigned slot = thread_slot();
  if (slot >= n) return;
  observable_body<Pair, kDivergence>(slot, args);
}
#endif

}  // namespace cuda
}  // namespace activescore
