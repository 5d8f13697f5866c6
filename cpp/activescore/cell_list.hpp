// CPU cell list: particles binned by a counting sort into square cells no narrower than the interaction range,
// stored in cell order for locality. Boxes under 3 cells a side degenerate to one cell (all pairs under the
// minimum image), so the list is exact for any box.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "box.hpp"
#include "cell_grid.hpp"
#include "pair_potential.hpp"

namespace activescore {

template <class Real>
class CellList {
 public:
  CellGrid<Real> grid{Box<Real>::make(1.0), 1, Real(1)};
  std::vector<int> cell_start;  // slots of cell c: [cell_start[c], cell_start[c+1])
  std::vector<int> slot_cell;   // cell of each slot
  std::vector<int> order;       // slot -> particle index (stable: ascending index within a cell)
  std::vector<Real> xy;         // positions in slot order
  std::vector<Real> radius;     // radii in slot order

  void build(const Real* x, const Real* radii, std::size_t n, const Box<Real>& box, Real min_width) {
    build(x, radii, n, CellGrid<Real>::make(box, min_width));
  }

  // On any grid, side >= 1 (neighbour searches need side == 1 or side >= 3; other users walk the grid themselves).
  // Every thread of a team calls it (or one caller outside any parallel region): binning, counting and the scatter
  // are shared out (each thread counts its particles per cell; a cell's slots go to the threads in order), so the
  // result is the serial counting sort's whatever the team.
  void build(const Real* x, const Real* radii, std::size_t n, const CellGrid<Real>& cells_grid) {
    const int threads = omp_get_num_threads(), me = omp_get_thread_num();
    const long long count = static_cast<long long>(n);
#pragma omp single
    {
      grid = cells_grid;
      cell_start.resize(grid.cells() + 1);
      cell_index_.resize(n);
      order.resize(n);
      slot_cell.resize(n);
      xy.resize(2 * n);
      radius.resize(n);
      counts_.assign(std::size_t(threads) * grid.cells(), 0);
      range_total_.assign(threads + 1, 0);
    }
    const int cells = int(grid.cells());
    int* mine = &counts_[std::size_t(me) * cells];
#pragma omp for schedule(static)
    for (long long i = 0; i < count; ++i) {
      const int c = int(grid.cell_of(x[2 * i], x[2 * i + 1]));
      cell_index_[i] = c;
      ++mine[c];
    }
    // Slots by cell, then by thread within a cell: each thread turns its range of cells into running offsets, then
    // adds the slots of the ranges before it.
    const int range_begin = int(std::size_t(cells) * me / threads),
              range_end = int(std::size_t(cells) * (me + 1) / threads);
    int total = 0;
    for (int c = range_begin; c < range_end; ++c) {
      cell_start[c] = total;
      for (int t = 0; t < threads; ++t) {
        const int k = counts_[std::size_t(t) * cells + c];
        counts_[std::size_t(t) * cells + c] = total;
        total += k;
      }
    }
    range_total_[me + 1] = total;
#pragma omp barrier
    int before = 0;
    for (int t = 0; t < me; ++t) before += range_total_[t + 1];
    if (before != 0) {  // the first range (all of them, for one thread) is already final
      for (int c = range_begin; c < range_end; ++c) {
        cell_start[c] += before;
        for (int t = 0; t < threads; ++t) counts_[std::size_t(t) * cells + c] += before;
      }
    }
    if (me == threads - 1) cell_start[cells] = before + total;
#pragma omp barrier
#pragma omp for schedule(static)
    for (long long i = 0; i < count; ++i) {
      const int c = cell_index_[i];
      const int s = mine[c]++;
      order[s] = static_cast<int>(i);
      slot_cell[s] = c;
      xy[2 * s] = x[2 * i];
      xy[2 * s + 1] = x[2 * i + 1];
      radius[s] = radii[i];
    }
  }

  // The 3x3 cells around the particle in `slot` (its own included) as runs of slots [begin[a], end[a]), in the
  // grid's order, with their periodic images (CellGrid::for_each_neighbour_run); returns how many (at most 6).
  // Plain arrays, so that the callers' scans stay simple loops.
  int neighbour_runs(int slot, int begin[6], int end[6], int image_x[6], int image_y[6]) const {
    int m = 0;
    grid.for_each_neighbour_run(unsigned(slot_cell[slot]), [&](unsigned first, unsigned last, int ix, int iy) {
      begin[m] = cell_start[first];
      end[m] = cell_start[last];
      image_x[m] = ix;
      image_y[m] = iy;
      ++m;
    });
    return m;
  }

 private:
  std::vector<int> cell_index_;
  std::vector<int> counts_;       // per thread and cell: particles, then the next free slot
  std::vector<int> range_total_;  // slots of each thread's range of cells
};

// The interacting pairs of a block of particles. Gathering is a cheap scan of the 3x3 cells; evaluating the pair
// force dominates, and its polynomial chains are long, so it runs as one vectorised loop over the whole block
// (a dozen pairs per particle would leave the vector units waiting on latency). Each particle then sums its own
// pairs in a fixed order, so results are identical for any thread count.
template <class Real>
struct PairBlock {
  std::vector<Real> dx, dy, rho_sq, sigma, scale;
  std::vector<int> first;  // pairs of the block's b-th particle: [first[b], first[b+1])
  int size = 0;

  void clear() {
    size = 0;
    first.assign(1, 0);
  }
  void grow(std::size_t n) {
    if (dx.size() < n) {
      const std::size_t cap = std::max(n, 2 * dx.size());
      dx.resize(cap);
      dy.resize(cap);
      rho_sq.resize(cap);
      sigma.resize(cap);
      scale.resize(cap);
    }
  }
  int particles() const { return int(first.size()) - 1; }
};

// Appends to the block every other particle within the pair cutoff of the particle in `slot`, with
// (dx, dy) = x_i - x_j under the minimum image, in a fixed order.
template <class Real, class Pair>
inline void gather_interacting(const CellList<Real>& cl, const Box<Real>& box, const Pair& pair, int slot,
                               PairBlock<Real>& block) {
  int begin[6], end[6], image_x[6], image_y[6];
  const int m = cl.neighbour_runs(slot, begin, end, image_x, image_y);
  std::size_t candidates = 0;
  for (int a = 0; a < m; ++a) candidates += end[a] - begin[a];
  block.grow(block.size + candidates);
  const Real xi = cl.xy[2 * slot], yi = cl.xy[2 * slot + 1], ri = cl.radius[slot];
  int count = block.size;
  for (int a = 0; a < m; ++a) {
    for (int s = begin[a]; s < end[a]; ++s) {
      const Real dx = box.min_image(xi - cl.xy[2 * s]);
      const Real dy = box.min_image(yi - cl.xy[2 * s + 1]);
      const Real rho_sq = dx * dx + dy * dy;
      const Real sigma = ri + cl.radius[s];
      // Written unconditionally and kept only if interacting: branch-free, as about a third of the candidates are.
      block.dx[count] = dx;
      block.dy[count] = dy;
      block.rho_sq[count] = rho_sq;
      block.sigma[count] = sigma;
      count += interacts(pair, rho_sq, sigma);
    }
  }
  block.size = count;
  block.first.push_back(count);
}

// force_scale for every pair of the block: one vectorised loop.
template <class Real, class Pair>
inline void evaluate_force_scale(const Pair& pair, PairBlock<Real>& block) {
  const Real* __restrict rho_sq = block.rho_sq.data();
  const Real* __restrict sigma = block.sigma.data();
  Real* __restrict scale = block.scale.data();
#pragma omp simd
  for (int a = 0; a < block.size; ++a) scale[a] = force_scale(pair, rho_sq[a], sigma[a]);
}

// The force vectors (fx, fy) = s (dx', dy') of count pairs from their raw differences (dx, dy) = x_i - x_j and
// contact distances, where (dx', dy') is the minimum image and s = force_scale: one vectorised loop. The minimum
// image is odd, so the same pair seen from its other side gets exactly the negated vector. (box and pair by value:
// the stores cannot alias them, so they stay in registers.)
template <class Real, class Pair>
inline void pair_force_vectors(const Box<Real> box, const Pair pair, const Real* __restrict dx,
                               const Real* __restrict dy, const Real* __restrict sigma, int count, Real* __restrict fx,
                               Real* __restrict fy) {
#pragma omp simd
  for (int k = 0; k < count; ++k) {
    const Real ddx = box.min_image(dx[k]), ddy = box.min_image(dy[k]);
    const Real scale = force_scale(pair, ddx * ddx + ddy * ddy, sigma[k]);
    fx[k] = scale * ddx;
    fy[k] = scale * ddy;
  }
}

// divergence_scale for every pair of the block.
template <class Real, class Pair>
inline void evaluate_divergence_scale(const Pair& pair, PairBlock<Real>& block) {
  for (int a = 0; a < block.size; ++a) block.scale[a] = divergence_scale(pair, block.rho_sq[a], block.sigma[a]);
}

// sum_j scale_ij (dx, dy) over the pairs of the block's b-th particle.
template <class Real>
inline void sum_pair_vectors(const PairBlock<Real>& block, int b, Real& fx, Real& fy) {
  Real sx = 0, sy = 0;
  for (int a = block.first[b]; a < block.first[b + 1]; ++a) {
    sx += block.scale[a] * block.dx[a];
    sy += block.scale[a] * block.dy[a];
  }
  fx = sx;
  fy = sy;
}

// sum_j scale_ij over the pairs of the block's b-th particle.
template <class Real>
inline Real sum_pair_scalars(const PairBlock<Real>& block, int b) {
  Real sum = 0;
  for (int a = block.first[b]; a < block.first[b + 1]; ++a) sum += block.scale[a];
  return sum;
}

// Particles are processed in blocks of this many cell-list slots.
constexpr int kPairBlockParticles = 64;

}  // namespace activescore
