// k nearest neighbours under the minimum image, for the score network (physics.md §7).
#pragma once
#include <cstddef>
#include <cstdint>

namespace activescore {

// For each particle i: its k nearest particles (self first, then by distance, ties by index), written to
// index (n, k) and displacement (n, k, 2) = x_i - x_j. A cell list whose search ring grows until the k-th
// neighbour is provably inside it keeps the cost O(n k).
void knn(const double* x, std::size_t n, double box_length, int k, int n_threads, int64_t* index, double* displacement);

}  // namespace activescore
