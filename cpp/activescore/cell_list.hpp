// CPU cell list: particles binned by a counting sort into square cells no narrower than the interaction range,
// stored in cell order for locality. Boxes under 3 cells a side degenerate to one cell (all pairs under the
// minimum image), so the list is exact for any box.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "box.hpp"

namespace activescore {

template <class Real>
class CellList {
 public:
  int side = 1;                 // cells per box side
  std::vector<int> cell_start;  // slots of cell c: [cell_start[c], cell_start[c+1])
  std::vector<int> slot_cell;   // cell of each slot
  std::vector<int> order;       // slot -> particle index (stable: ascending index within a cell)
  std::vector<Real> xy;         // positions in slot order
  std::vector<Real> radius;     // radii in slot order

  static int cells_per_side(double box_length, double min_width) {
    const int s = static_cast<int>(std::floor(box_length / min_width));
    return s >= 3 ? std::min(s, 4096) : 1;
  }

  void build(const Real* x, const Real* radii, std::size_t n, const Box<Real>& box, Real min_width) {
    build_with_side(x, radii, n, box, cells_per_side(box.L, min_width));
  }

  // Any side >= 1 (neighbour_cells needs side == 1 or side >= 3; other users walk the grid themselves).
  void build_with_side(const Real* x, const Real* radii, std::size_t n, const Box<Real>& box, int cells_side) {
    side = cells_side;
    const int cells = side * side;
    const Real inv_width = Real(side) * box.inv_L;
    cell_start.assign(cells + 1, 0);
    cell_index_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const int c = cell_of(x[2 * i], x[2 * i + 1], box, inv_width);
      cell_index_[i] = c;
      ++cell_start[c + 1];
    }
    for (int c = 0; c < cells; ++c) cell_start[c + 1] += cell_start[c];
    fill_.assign(cell_start.begin(), cell_start.end() - 1);
    order.resize(n);
    slot_cell.resize(n);
    xy.resize(2 * n);
    radius.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const int c = cell_index_[i];
      const int s = fill_[c]++;
      order[s] = static_cast<int>(i);
      slot_cell[s] = c;
      xy[2 * s] = x[2 * i];
      xy[2 * s + 1] = x[2 * i + 1];
      radius[s] = radii[i];
    }
  }

  // The distinct cells around cell c (itself included), in a fixed order; returns how many.
  int neighbour_cells(int c, int out[9]) const {
    if (side == 1) {
      out[0] = 0;
      return 1;
    }
    const int cx = c % side, cy = c / side;
    int m = 0;
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) out[m++] = ((cy + dy + side) % side) * side + (cx + dx + side) % side;
    return m;
  }

 private:
  std::vector<int> cell_index_;
  std::vector<int> fill_;

  int cell_of(Real px, Real py, const Box<Real>& box, Real inv_width) const {
    int ix = static_cast<int>((px + box.half) * inv_width);
    int iy = static_cast<int>((py + box.half) * inv_width);
    ix = std::min(std::max(ix, 0), side - 1);
    iy = std::min(std::max(iy, 0), side - 1);
    return iy * side + ix;
  }
};

// Calls visit(slot_j, dx, dy, rho, sigma) for every other particle within the pair cutoff of the particle in
// `slot`, with (dx, dy) = x_i - x_j under the minimum image. The order is fixed, so sums are reproducible.
template <class Real, class Pair, class Visit>
inline void for_each_interacting(const CellList<Real>& cl, const Box<Real>& box, const Pair& pair, int slot,
                                 Visit&& visit) {
  int cells[9];
  const int m = cl.neighbour_cells(cl.slot_cell[slot], cells);
  const Real xi = cl.xy[2 * slot], yi = cl.xy[2 * slot + 1], ri = cl.radius[slot];
  for (int a = 0; a < m; ++a) {
    const int end = cl.cell_start[cells[a] + 1];
    for (int s = cl.cell_start[cells[a]]; s < end; ++s) {
      if (s == slot) continue;
      const Real dx = box.min_image(xi - cl.xy[2 * s]);
      const Real dy = box.min_image(yi - cl.xy[2 * s + 1]);
      const Real rho_sq = dx * dx + dy * dy;
      const Real sigma = ri + cl.radius[s];
      const Real rc = pair.cutoff(sigma);
      // Coincident particles (rho = 0) exert no force: the direction r/rho is undefined.
      if (rho_sq < rc * rc && rho_sq > Real(0)) visit(s, dx, dy, std::sqrt(rho_sq), sigma);
    }
  }
}

}  // namespace activescore
