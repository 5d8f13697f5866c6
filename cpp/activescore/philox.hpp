// Philox4x32-10 (Salmon et al., SC'11): counter-based, so the normals of particle i at step t depend only on
// (seed, t, i). Every backend (C++, CUDA, Numba) uses this layout, documented in physics.md §3:
//   key     = (seed & 0xffffffff, seed >> 32)
//   counter = (particle index, step & 0xffffffff, step >> 32, purpose)
//   uniform u = (w + 0.5) * 2^-32 in (0, 1); normals by Box-Muller in float64:
//   (n0, n1) from (u0, u1), (n2, n3) from (u2, u3).
#pragma once
#include <cmath>
#include <cstdint>

#include "hostdevice.hpp"
#include "special_functions.hpp"

namespace activescore {

enum RandomPurpose : uint32_t { kStepNoise = 0, kInitialCondition = 1 };

struct Philox4x32 {
  uint32_t v[4];
};

AS_HD void mulhilo32(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

AS_HD Philox4x32 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo32(kM0, c0, hi0, lo0);
    mulhilo32(kM1, c2, hi1, lo1);
    const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += kW0;
    k1 += kW1;
  }
  return Philox4x32{{c0, c1, c2, c3}};
}

AS_HD double uniform_open01(uint32_t w) { return (static_cast<double>(w) + 0.5) * 2.3283064365386963e-10; }

struct Normal2 {
  double a, b;
};

// Box-Muller: two standard normals from two uniform words, r (cos 2 pi u_b, sin 2 pi u_b) with r = sqrt(-2 ln u_a).
// log, cos and sin are our own (special_functions.hpp): they vectorise, and the Numba backend repeats them exactly.
AS_HD Normal2 box_muller(uint32_t w_radius, uint32_t w_angle) {
  const double r = sqrt(-2.0 * log_positive(uniform_open01(w_radius)));
  double c, s;
  cos_sin_turns(uniform_open01(w_angle), c, s);
  return Normal2{r * c, r * s};
}

AS_HD Philox4x32 random_block(uint64_t seed, uint64_t step, uint32_t particle, uint32_t purpose) {
  return philox4x32_10(particle, static_cast<uint32_t>(step), static_cast<uint32_t>(step >> 32), purpose,
                       static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// The normals of up to Count particles at one step, bit for bit box_muller of random_block's words: each stage is
// one loop over particles that the compiler vectorises (Philox rounds are 32-bit multiplies and xors, Box-Muller
// branch-free polynomials). The first pair (words 0, 1) is drawn only when asked for. Host only.
template <int Count>
struct NormalBlock {
  double n[4][Count];

  void fill(uint64_t seed, uint64_t step, const int* particle, int count, uint32_t purpose, bool first_pair) {
    uint32_t w[4][Count];
#pragma omp simd
    for (int b = 0; b < count; ++b) {
      const Philox4x32 r = random_block(seed, step, uint32_t(particle[b]), purpose);
      w[0][b] = r.v[0];
      w[1][b] = r.v[1];
      w[2][b] = r.v[2];
      w[3][b] = r.v[3];
    }
    if (first_pair) transform(w[0], w[1], n[0], n[1], count);
    transform(w[2], w[3], n[2], n[3], count);
  }
  Normal2 first(int b) const { return Normal2{n[0][b], n[1][b]}; }
  Normal2 second(int b) const { return Normal2{n[2][b], n[3][b]}; }

 private:
  static void transform(const uint32_t* w_radius, const uint32_t* w_angle, double* out_a, double* out_b, int count) {
#pragma omp simd
    for (int b = 0; b < count; ++b) {
      const Normal2 v = box_muller(w_radius[b], w_angle[b]);
      out_a[b] = v.a;
      out_b[b] = v.b;
    }
  }
};

struct Normal4 {
  double n[4];
};

// Four independent standard normals for (seed, step, particle, purpose): (n0, n1) from words (0, 1), (n2, n3)
// from words (2, 3). A caller that needs only one pair may skip the other's Box-Muller: the stream is the same.
AS_HD Normal4 normals4(uint64_t seed, uint64_t step, uint32_t particle, uint32_t purpose) {
  const Philox4x32 w = random_block(seed, step, particle, purpose);
  const Normal2 first = box_muller(w.v[0], w.v[1]), second = box_muller(w.v[2], w.v[3]);
  return Normal4{{first.a, first.b, second.a, second.b}};
}

}  // namespace activescore
