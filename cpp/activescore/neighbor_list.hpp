// Verlet neighbour list for the CPU driver: built from the cell list with a skin, so it stays valid until some
// particle has moved more than half the skin, which in dense active matter is tens to hundreds of steps. The
// forces still apply the exact pair cutoff (pairs inside the skin only get a zero force): the same maths as a
// fresh cell-list search, with a fixed summation order, so results do not depend on the thread count.
//
// Each pair is evaluated once (Newton's third law): the lower index owns it, and its owned pairs take consecutive
// slots of a pair table in processing order. Every list entry knows its pair's slot, so a particle's force is a
// sum over its own index-sorted list that reads the table; the pair value is symmetric bit for bit, so this gives
// exactly the numbers of evaluating every pair from both sides.
#pragma once
#include <algorithm>
#include <vector>

#include "box.hpp"
#include "cell_list.hpp"

namespace activescore {

template <class Real>
class VerletList {
 public:
  std::vector<int> order;   // particles in cell order at the last build: the processing order, for locality
  std::vector<int> start;   // neighbours of order[p]: index[start[p] .. start[p+1])
  std::vector<int> index;   // original particle indices
  std::vector<Real> reference;  // positions at the last build
  std::vector<int> pair_start;  // pairs owned by order[p] (its neighbours j > i): table slots [pair_start[p], ..[p+1])
  std::vector<int> owned_first; // index[owned_first[p]] is order[p]'s first neighbour j > i
  std::vector<int> pair_of;     // for each list entry: its pair's slot in the table

  int pairs() const { return pair_start.empty() ? 0 : pair_start.back(); }

  // Both phases run inside a parallel region: every thread calls them.
  template <class Pair>
  void build(const CellList<Real>& cells, const Box<Real>& box, const Pair& pair, Real skin, const Real* x,
             std::size_t n) {
    const long long count = static_cast<long long>(n);
#pragma omp single
    {
      order = cells.order;
      start.assign(n + 1, 0);
      reference.assign(x, x + 2 * n);
    }
#pragma omp for schedule(static)
    for (long long slot = 0; slot < count; ++slot)
      start[slot + 1] = visit(cells, box, pair, skin, int(slot), nullptr);
#pragma omp single
    {
      for (std::size_t p = 0; p < n; ++p) start[p + 1] += start[p];
      index.resize(start[n]);
    }
#pragma omp for schedule(static)
    for (long long slot = 0; slot < count; ++slot) {
      int* first = &index[start[slot]];
      visit(cells, box, pair, skin, int(slot), first);
      // Ascending index, so each particle's force sum has one order whenever the list was built: a resumed run
      // then matches an unbroken one bit for bit (pairs inside the skin add exactly zero).
      std::sort(first, &index[start[slot + 1]]);
    }
    index_pairs(n);
  }

  // Fills pair_start, owned_first and pair_of from the sorted lists (inside the parallel region).
  void index_pairs(std::size_t n) {
    const long long count = static_cast<long long>(n);
#pragma omp single
    {
      position_.resize(n);
      for (std::size_t p = 0; p < n; ++p) position_[order[p]] = int(p);
      pair_start.assign(n + 1, 0);
      owned_first.resize(n);
    }
#pragma omp for schedule(static)
    for (long long p = 0; p < count; ++p) {
      const int i = order[p];
      owned_first[p] = int(std::upper_bound(index.begin() + start[p], index.begin() + start[p + 1], i) - index.begin());
      pair_start[p + 1] = start[p + 1] - owned_first[p];
    }
#pragma omp single
    {
      for (std::size_t p = 0; p < n; ++p) pair_start[p + 1] += pair_start[p];
      pair_of.resize(index.size());
    }
#pragma omp for schedule(static)
    for (long long p = 0; p < count; ++p) {
      const int i = order[p];
      for (int a = start[p]; a < start[p + 1]; ++a) {
        const int j = index[a];
        if (j > i) {
          pair_of[a] = pair_start[p] + (a - owned_first[p]);
        } else {  // owned by j: find i among j's neighbours (lists are symmetric and sorted)
          const int q = position_[j];
          const int at = int(std::lower_bound(index.begin() + owned_first[q], index.begin() + start[q + 1], i) -
                             index.begin());
          pair_of[a] = pair_start[q] + (at - owned_first[q]);
        }
      }
    }
  }

  // True once some particle has moved more than half the skin since the last build (then a pair can have
  // crossed from outside cutoff + skin to inside the cutoff).
  static bool stale(Real max_move_sq, Real skin) { return max_move_sq > Real(0.25) * skin * skin; }

 private:
  std::vector<int> position_;  // position_[i] = p with order[p] == i

  // Neighbours of the particle in `slot` within cutoff + skin, in cell order; written to out when given.
  template <class Pair>
  static int visit(const CellList<Real>& cl, const Box<Real>& box, const Pair& pair, Real skin, int slot, int* out) {
    int cells[9];
    const int m = cl.neighbour_cells(cl.slot_cell[slot], cells);
    const Real xi = cl.xy[2 * slot], yi = cl.xy[2 * slot + 1], ri = cl.radius[slot];
    int count = 0;
    for (int a = 0; a < m; ++a) {
      const int end = cl.cell_start[cells[a] + 1];
      for (int s = cl.cell_start[cells[a]]; s < end; ++s) {
        if (s == slot) continue;
        const Real dx = box.min_image(xi - cl.xy[2 * s]);
        const Real dy = box.min_image(yi - cl.xy[2 * s + 1]);
        const Real reach = pair.cutoff(ri + cl.radius[s]) + skin;
        if (dx * dx + dy * dy < reach * reach) {
          if (out) out[count] = cl.order[s];
          ++count;
        }
      }
    }
    return count;
  }
};

}  // namespace activescore
