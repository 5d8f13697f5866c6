// The square grid of cells over the periodic box that every cell list (CPU, CUDA, host replay) bins into, and the
// one walk over the 3x3 block of cells around a cell that every neighbour search makes.
#pragma once
#include <algorithm>
#include <cmath>

#include "box.hpp"
#include "hostdevice.hpp"

namespace activescore {

// side x side cells over the box; side is 1 (one cell holding everything: all pairs under the minimum image) or at
// least 3 (so the 3x3 block around a cell holds nine distinct cells).
template <class Real>
struct CellGrid {
  Box<Real> box;
  int side;
  Real inv_width;  // side / L

  // Cells no narrower than min_width (under 3 a side: one cell), capped at 4096 a side.
  static int cells_per_side(double box_length, double min_width) {
    if (!(min_width > 0.0)) return 1;
    const int s = static_cast<int>(std::floor(box_length / min_width));
    return s >= 3 ? std::min(s, 4096) : 1;
  }
  static CellGrid with_side(const Box<Real>& box, int side) { return CellGrid{box, side, Real(side) * box.inv_L}; }
  static CellGrid make(const Box<Real>& box, double min_width) {
    return with_side(box, cells_per_side(double(box.L), min_width));
  }

  AS_HD unsigned cells() const { return static_cast<unsigned>(side) * static_cast<unsigned>(side); }

  // The cell of a position in the box. Out-of-range coordinates and NaN clamp to the edge (the clamp happens
  // before the float-to-int conversion, so nothing overflows). Branch free.
  AS_HD unsigned cell_of(Real px, Real py) const {
    const Real fx = (px + box.half) * inv_width, fy = (py + box.half) * inv_width;
    const Real top = Real(side);
    const int ix = fx >= top ? side - 1 : (fx > Real(0) ? static_cast<int>(fx) : 0);
    const int iy = fy >= top ? side - 1 : (fy > Real(0) ? static_cast<int>(fy) : 0);
    return static_cast<unsigned>(iy * side + ix);
  }

  // The 3x3 block of cells around `cell` (itself included), in one fixed order: rows dy = -1, 0, 1, each with
  // dx = -1, 0, 1. Calls visit(first, end, image_x, image_y) for each run of consecutive cells [first, end) of a row
  // (one run per row, two where the row wraps), where (image_x, image_y) in box lengths is the periodic image that
  // puts the run's particles next to `cell`: x_j + image L. With side == 1 it is one run, the whole box, image 0 (the
  // callers then take minimum images).
  template <class Visit>
  AS_HD void for_each_neighbour_run(unsigned cell, Visit&& visit) const {
    if (side == 1) {
      visit(0u, 1u, 0, 0);
      return;
    }
    const unsigned s = static_cast<unsigned>(side);
    const unsigned cx = cell % s, cy = cell / s;
    for (int dy = -1; dy <= 1; ++dy) {
      const int ny = static_cast<int>(cy) + dy;
      const int image_y = ny < 0 ? -1 : (ny >= side ? 1 : 0);
      const unsigned row = static_cast<unsigned>(ny - image_y * side) * s;
      if (cx == 0) {
        visit(row + s - 1, row + s, -1, image_y);
        visit(row, row + 2, 0, image_y);
      } else if (cx == s - 1) {
        visit(row + s - 2, row + s, 0, image_y);
        visit(row, row + 1, 1, image_y);
      } else {
        visit(row + cx - 1, row + cx + 2, 0, image_y);
      }
    }
  }

  // Calls visit(c) for every cell c of the 3x3 block around `cell`, in for_each_neighbour_run's order (nine
  // distinct cells, as side >= 3; just the one cell when side == 1).
  template <class Visit>
  AS_HD void for_each_neighbour_cell(unsigned cell, Visit&& visit) const {
    for_each_neighbour_run(cell, [&](unsigned first, unsigned end, int, int) {
      for (unsigned c = first; c < end; ++c) visit(c);
    });
  }
};

}  // namespace activescore
