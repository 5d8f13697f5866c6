#include "neighbours.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "box.hpp"
#include "cell_list.hpp"

namespace activescore {

void knn(const double* x, std::size_t n, double box_length, int k, int n_threads, int64_t* index,
         double* displacement) {
  const Box<double> box = Box<double>::make(box_length);
  std::vector<double> wrapped(2 * n), radius(n, 0.0);
  for (std::size_t a = 0; a < 2 * n; ++a) wrapped[a] = box.wrap(x[a]);
  // Cells sized so a 3x3 block holds about k particles on average.
  const double width_target = box_length * std::sqrt(double(k) / (9.0 * double(n)));
  int side = std::max(1, int(std::floor(box_length / width_target)));
  side = std::min(side, 2048);
  CellList<double> cells;
  cells.build(wrapped.data(), radius.data(), n, CellGrid<double>::with_side(box, side));
  const double width = box_length / side;
  const long long count = static_cast<long long>(n);
  const int threads = n_threads > 0 ? n_threads : omp_get_max_threads();

#pragma omp parallel num_threads(threads)
  {
    std::vector<std::pair<double, int64_t>> candidates;
#pragma omp for schedule(dynamic, 64)
    for (long long slot = 0; slot < count; ++slot) {
      const int64_t i = cells.order[slot];
      const double xi = cells.xy[2 * slot], yi = cells.xy[2 * slot + 1];
      const int cx = cells.slot_cell[slot] % side, cy = cells.slot_cell[slot] / side;
      for (int ring = 1;; ++ring) {
        candidates.clear();
        const bool whole_box = 2 * ring + 1 >= side;
        const int lo = whole_box ? 0 : -ring, hi = whole_box ? side - 1 : ring;
        for (int dy = lo; dy <= hi; ++dy)
          for (int dx = lo; dx <= hi; ++dx) {
            const int c = whole_box ? dy * side + dx : ((cy + dy + side) % side) * side + (cx + dx + side) % side;
            for (int s = cells.cell_start[c]; s < cells.cell_start[c + 1]; ++s) {
              const double ddx = box.min_image(xi - cells.xy[2 * s]);
              const double ddy = box.min_image(yi - cells.xy[2 * s + 1]);
              const int64_t j = cells.order[s];
              // Self sorts first even if another particle sits on the same spot.
              candidates.emplace_back(j == i ? -1.0 : ddx * ddx + ddy * ddy, j);
            }
          }
        const double reach = ring * width;
        if (!whole_box && (long long)candidates.size() < k) continue;
        auto kth = candidates.begin() + (k - 1);
        std::nth_element(candidates.begin(), kth, candidates.end());
        if (!whole_box && kth->first > reach * reach) continue;
        std::sort(candidates.begin(), kth + 1);
        for (int a = 0; a < k; ++a) {
          const int64_t j = candidates[a].second;
          index[i * k + a] = j;
          displacement[2 * (i * k + a)] = box.min_image(wrapped[2 * i] - wrapped[2 * j]);
          displacement[2 * (i * k + a) + 1] = box.min_image(wrapped[2 * i + 1] - wrapped[2 * j + 1]);
        }
        break;
      }
    }
  }
}

}  // namespace activescore
