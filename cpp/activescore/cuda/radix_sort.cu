// The one CUB instantiation of the package: a stable LSD radix sort of (cell, slot) pairs over the key bits the
// cell count needs (log2(cells), so 2-3 passes of 8 bits at the sizes that matter). Kept in its own translation
// unit so CUB is compiled once for every simulator.
#include <cub/device/device_radix_sort.cuh>

#include "device.cuh"

namespace activescore {
namespace cuda {

std::size_t radix_sort_temp_bytes(int n, int end_bit) {
  std::size_t bytes = 0;
  check(cub::DeviceRadixSort::SortPairs(nullptr, bytes, static_cast<const unsigned*>(nullptr),
                                        static_cast<unsigned*>(nullptr), static_cast<const unsigned*>(nullptr),
                                        static_cast<unsigned*>(nullptr), n, 0, end_bit),
        "cub::DeviceRadixSort::SortPairs (temporary storage size)");
  return bytes;
}

void radix_sort_pairs(void* temp, std::size_t temp_bytes, const unsigned* keys_in, unsigned* keys_out,
                      const unsigned* values_in, unsigned* values_out, int n, int end_bit, cudaStream_t stream) {
  check(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys_in, keys_out, values_in, values_out, n, 0, end_bit,
                                        stream),
        "cub::DeviceRadixSort::SortPairs");
}

}  // namespace cuda
}  // namespace activescore
