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

// A neighbour as a key that orders by tag (original index), then slot.
inline uint64_t neighbour_key(int tag, int slot) { return uint64_t(uint32_t(tag)) << 32 | uint32_t(slot); }
inline int key_slot(uint64_t key) { return int(uint32_t(key)); }

// How many of the m keys are below v: branch free, so it vectorises (lists are one or two dozen long).
inline int count_below(const uint64_t* k, int m, uint64_t v) {
  int below = 0;
  for (int a = 0; a < m; ++a) below += k[a] < v;
  return below;
}

// The m distinct keys in ascending order, by rank (branch free, and cheap at these lengths).
inline void rank_sort(const uint64_t* keys, int m, uint64_t* sorted) {
  for (int a = 0; a < m; ++a) sorted[count_below(keys, m, keys[a])] = keys[a];
}

// Keys of the neighbours of the particle in `slot` within cutoff + skin (for a list, or for one step's direct pairs),
// in cell order, written to out from out[at] (grown to hold every candidate: each is written, and kept only if in
// range); returns how many. The distance test uses each run's periodic image instead of minimum images (a select per
// coordinate and candidate): the two differ by a rounding, and the list only has to hold every pair inside the cutoff,
// which the skin guarantees many times over; pairs listed beyond it add exactly zero to the forces.
template <class Real, class Pair>
int find_neighbours(const CellList<Real>& cl, const Box<Real>& box, const Pair& pair, Real skin, const int* tag,
                    int slot, std::vector<uint64_t>& out, std::size_t at) {
  int begin[6], end[6], image_x[6], image_y[6];
  const int m = cl.neighbour_runs(slot, begin, end, image_x, image_y);
  std::size_t candidates = 0;
  for (int a = 0; a < m; ++a) candidates += end[a] - begin[a];
  if (out.size() < at + candidates) out.resize(std::max(at + candidates, 2 * out.size()));
  uint64_t* found = out.data() + at;
  const Real* xy = cl.xy.data();
  const Real* radius = cl.radius.data();
  const Real xi = xy[2 * slot], yi = xy[2 * slot + 1], ri = radius[slot];
  int count = 0;
  if (cl.grid.side == 1) {  // one cell: minimum images
    for (int s = 0; s < end[0]; ++s) {
      const Real dx = box.min_image(xi - xy[2 * s]);
      const Real dy = box.min_image(yi - xy[2 * s + 1]);
      const Real reach = pair.cutoff(ri + radius[s]) + skin;
      found[count] = neighbour_key(tag[s], s);
      count += (s != slot) & (dx * dx + dy * dy < reach * reach);
    }
    return count;
  }
  for (int a = 0; a < m; ++a) {
    const Real x_image = xi - Real(image_x[a]) * box.L, y_image = yi - Real(image_y[a]) * box.L;
    for (int s = begin[a]; s < end[a]; ++s) {
      const Real dx = x_image - xy[2 * s];
      const Real dy = y_image - xy[2 * s + 1];
      const Real reach = pair.cutoff(ri + radius[s]) + skin;
      found[count] = neighbour_key(tag[s], s);
      count += (s != slot) & (dx * dx + dy * dy < reach * reach);
    }
  }
  return count;
}

template <class Real>
class VerletList {
 public:
  std::vector<int> start;       // neighbours of slot p: index[start[p] .. start[p+1])
  std::vector<int> index;       // neighbour slots, in ascending tag
  std::vector<Real> reference;  // positions at the last build, by slot
  std::vector<int>
      pair_start;  // pairs owned by slot p (neighbours of higher tag): table slots [pair_start[p], ..[p+1])
  std::vector<int> owned_first; // index[owned_first[p]] is p's first neighbour of higher tag
  std::vector<int> pair_of;     // for each list entry: its pair's slot in the table
  std::vector<int> pair_owner, pair_partner;  // for each table slot: its pair's owner and other particle

  int pairs() const { return pair_start.empty() ? 0 : pair_start.back(); }

  // Lists of the cell list's slots, which must be the driver's slots (tag[s]: original index of slot s). Every
  // step is branch free where it can be (which neighbour is in range, a list's order, where a tag sits in a list
  // are all unpredictable), so the build costs a few steps, not tens. Runs inside a parallel region: every
  // thread calls it.
  template <class Pair>
  void build(const CellList<Real>& cells, const Box<Real>& box, const Pair& pair, Real skin, const int* tag,
             std::size_t n) {
    const long long count = static_cast<long long>(n);
#pragma omp single
    {
      start.assign(n + 1, 0);
      pair_start.assign(n + 1, 0);
      owned_first.resize(n);
      reference = cells.xy;
    }
    // Each thread finds its slots' neighbours once, into its own buffer; the static schedule gives it the same
    // slots in the same order in the loop that files them.
    std::vector<uint64_t> found;
    std::size_t used = 0;
#pragma omp for schedule(static)
    for (long long slot = 0; slot < count; ++slot) {
      const int m = find_neighbours(cells, box, pair, skin, tag, int(slot), found, used);
      start[slot + 1] = m;
      used += m;
    }
#pragma omp single
    {
      for (std::size_t p = 0; p < n; ++p) start[p + 1] += start[p];
      index.resize(start[n]);
      key_.resize(start[n]);
    }
    used = 0;
#pragma omp for schedule(static)
    for (long long slot = 0; slot < count; ++slot) {
      const uint64_t* mine = found.data() + used;
      const int m = start[slot + 1] - start[slot];
      used += m;
      // Ascending tag (a rank sort), so each particle's force sum has one order whenever the list was built: a
      // resumed run then matches an unbroken one bit for bit (pairs inside the skin add exactly zero).
      uint64_t* sorted = &key_[start[slot]];
      rank_sort(mine, m, sorted);
      for (int a = 0; a < m; ++a) index[start[slot] + a] = key_slot(sorted[a]);
      owned_first[slot] = start[slot] + count_below(mine, m, neighbour_key(tag[slot], 0));
      pair_start[slot + 1] = start[slot + 1] - owned_first[slot];
    }
#pragma omp single
    {
      for (std::size_t p = 0; p < n; ++p) pair_start[p + 1] += pair_start[p];
      pair_of.resize(index.size());
      pair_owner.resize(pairs());
      pair_partner.resize(pairs());
    }
#pragma omp for schedule(static)
    for (long long p = 0; p < count; ++p) {
      const uint64_t me = neighbour_key(tag[p], 0);
      for (int a = start[p]; a < owned_first[p]; ++a) {  // owned by q: p's place among q's owned neighbours
        const int q = index[a];
        pair_of[a] = pair_start[q] + count_below(&key_[owned_first[q]], start[q + 1] - owned_first[q], me);
      }
      for (int a = owned_first[p]; a < start[p + 1]; ++a) {
        const int k = pair_start[p] + (a - owned_first[p]);
        pair_of[a] = k;
        pair_owner[k] = int(p);
        pair_partner[k] = index[a];
      }
    }
  }

  // True once some particle has moved more than half the skin since the last build (then a pair can have
  // crossed from outside cutoff + skin to inside the cutoff).
  static bool stale(Real max_move_sq, Real skin) { return max_move_sq > Real(0.25) * skin * skin; }

 private:
  std::vector<uint64_t> key_;  // each list entry as neighbour_key(tag, slot), sorted: keys order by tag
};

}  // namespace activescore
