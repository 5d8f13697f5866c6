// Verlet neighbour list for the CPU driver: built from the cell list with a skin, so it stays valid until some
// particle has moved more than half the skin, which in dense active matter is tens to hundreds of steps. The
// forces still apply the exact pair cutoff (pairs inside the skin only get a zero force): the same maths as a
// fresh cell-list search, with a fixed summation order, so results do not depend on the thread count.
//
// The driver keeps its particles in cell order (slots), each with a tag, its original index: neighbours then lie
// close in memory. Lists hold slots but are sorted by tag, and each pair is evaluated once (Newton's third law)
// by the member with the lower tag; its owned pairs take consecutive slots of a pair table in processing order.
// Every list entry knows its pair's slot, so a particle's force is a sum over its own tag-sorted list that reads
// the table; the pair value is symmetric bit for bit, so this gives exactly the numbers of evaluating every pair
// from both sides in original-index order, whatever the slot order.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "box.hpp"
#include "cell_list.hpp"

namespace activescore {

template <class Real>
class VerletList {
 public:
  std::vector<int> start;       // neighbours of slot p: index[start[p] .. start[p+1])
  std::vector<int> index;       // neighbour slots, in ascending tag
  std::vector<Real> reference;  // positions at the last build, by slot
  std::vector<int> pair_start;  // pairs owned by slot p (neighbours of higher tag): table slots [pair_start[p], ..[p+1])
  std::vector<int> owned_first; // index[owned_first[p]] is p's first neighbour of higher tag
  std::vector<int> pair_of;     // for each list entry: its pair's slot in the table

  int pairs() const { return pair_start.empty() ? 0 : pair_start.back(); }

  // Lists of the cell list's slots, which must be the driver's slots (tag[s]: original index of slot s). Both
  // phases run inside a parallel region: every thread calls them.
  template <class Pair>
  void build(const CellList<Real>& cells, const Box<Real>& box, const Pair& pair, Real skin, const int* tag,
             std::size_t n) {
    const long long count = static_cast<long long>(n);
#pragma omp single
    {
      start.assign(n + 1, 0);
      reference = cells.xy;
    }
#pragma omp for schedule(static)
    for (long long slot = 0; slot < count; ++slot)
      start[slot + 1] = visit(cells, box, pair, skin, tag, int(slot), nullptr);
#pragma omp single
    {
      for (std::size_t p = 0; p < n; ++p) start[p + 1] += start[p];
      index.resize(start[n]);
      key_.resize(start[n]);
    }
#pragma omp for schedule(static)
    for (long long slot = 0; slot < count; ++slot) {
      uint64_t* first = &key_[start[slot]];
      uint64_t* last = &key_[start[slot + 1]];
      visit(cells, box, pair, skin, tag, int(slot), first);
      // Ascending tag, so each particle's force sum has one order whenever the list was built: a resumed run
      // then matches an unbroken one bit for bit (pairs inside the skin add exactly zero).
      std::sort(first, last);
      for (uint64_t* k = first; k != last; ++k) index[k - key_.data()] = int(uint32_t(*k));
    }
    index_pairs(tag, n);
  }

  // True once some particle has moved more than half the skin since the last build (then a pair can have
  // crossed from outside cutoff + skin to inside the cutoff).
  static bool stale(Real max_move_sq, Real skin) { return max_move_sq > Real(0.25) * skin * skin; }

 private:
  std::vector<uint64_t> key_;  // each list entry as (tag << 32 | slot): sorts by tag, and finds a tag by bisection

  static uint64_t key(int tag, int slot) { return uint64_t(uint32_t(tag)) << 32 | uint32_t(slot); }

  // Fills pair_start, owned_first and pair_of from the sorted lists (inside the parallel region).
  void index_pairs(const int* tag, std::size_t n) {
    const long long count = static_cast<long long>(n);
#pragma omp single
    {
      pair_start.assign(n + 1, 0);
      owned_first.resize(n);
    }
#pragma omp for schedule(static)
    for (long long p = 0; p < count; ++p) {
      owned_first[p] = int(std::upper_bound(key_.begin() + start[p], key_.begin() + start[p + 1], key(tag[p], INT32_MAX)) -
                           key_.begin());
      pair_start[p + 1] = start[p + 1] - owned_first[p];
    }
#pragma omp single
    {
      for (std::size_t p = 0; p < n; ++p) pair_start[p + 1] += pair_start[p];
      pair_of.resize(index.size());
    }
#pragma omp for schedule(static)
    for (long long p = 0; p < count; ++p) {
      for (int a = start[p]; a < owned_first[p]; ++a) {  // owned by q: find p among q's owned neighbours
        const int q = index[a];
        const int at = int(std::lower_bound(key_.begin() + owned_first[q], key_.begin() + start[q + 1],
                                            key(tag[p], 0)) - key_.begin());
        pair_of[a] = pair_start[q] + (at - owned_first[q]);
      }
      for (int a = owned_first[p]; a < start[p + 1]; ++a) pair_of[a] = pair_start[p] + (a - owned_first[p]);
    }
  }

  // Neighbours of the particle in `slot` within cutoff + skin, in cell order; written to out as keys when given.
  template <class Pair>
  static int visit(const CellList<Real>& cl, const Box<Real>& box, const Pair& pair, Real skin, const int* tag, int slot,
                   uint64_t* out) {
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
          if (out) out[count] = key(tag[s], s);
          ++count;
        }
      }
    }
    return count;
  }
};

}  // namespace activescore
