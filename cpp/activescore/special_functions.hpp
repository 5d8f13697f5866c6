// Branch-free exp and log1p for the softplus pair force. Written as plain arithmetic so the compiler can
// vectorise the pair loop (libm calls block that); accurate to a few ulp in float64. On the GPU and in float32
// the library functions are already fast and are used instead.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "hostdevice.hpp"

namespace activescore {

#if !defined(__CUDA_ARCH__)
// exp(x) for x <= 0 (clamped at -700, where it is ~1e-304): x = n ln2 + r, |r| <= ln2/2, Taylor to r^13.
inline double exp_nonpositive(double x) {
  constexpr double kLog2e = 1.4426950408889634, kLn2Hi = 6.93147180369123816490e-01,
                   kLn2Lo = 1.90821492927058770002e-10, kRound = 6755399441055744.0;  // 1.5 * 2^52
  x = x < -700.0 ? -700.0 : x;
  const double t = x * kLog2e + kRound;  // rounds x log2(e) to the nearest integer n, held in t's low bits
  const double n = t - kRound;
  const double r = (x - n * kLn2Hi) - n * kLn2Lo;
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  int64_t t_bits, round_bits;
  std::memcpy(&t_bits, &t, sizeof t);
  std::memcpy(&round_bits, &kRound, sizeof kRound);
  const int64_t scale_bits = (t_bits - round_bits + 1023) << 52;  // 2^n
  double scale;
  std::memcpy(&scale, &scale_bits, sizeof scale);
  return p * scale;
}

// log1p(e) for e in [0, 1] as 2 atanh(u), u = e/(2+e). Above 1/2, log1p(e) = log(3/2) + log1p((e - 1/2)/(3/2))
// keeps u <= 1/7, so the series in u^2 reaches 1e-17 in 10 terms. Written out (no loop) so loops vectorise.
inline double log1p_unit(double e) {
  constexpr double kLogThreeHalves = 0.40546510810816438198;
  const bool high = e > 0.5;
  const double r = high ? (e - 0.5) * (2.0 / 3.0) : e;
  const double u = r / (2.0 + r);
  const double u2 = u * u;
  double s = 1.0 / 21.0;
  s = s * u2 + 1.0 / 19.0;
  s = s * u2 + 1.0 / 17.0;
  s = s * u2 + 1.0 / 15.0;
  s = s * u2 + 1.0 / 13.0;
  s = s * u2 + 1.0 / 11.0;
  s = s * u2 + 1.0 / 9.0;
  s = s * u2 + 1.0 / 7.0;
  s = s * u2 + 1.0 / 5.0;
  s = s * u2 + 1.0 / 3.0;
  s = s * u2 + 1.0 / 1.0;
  return (high ? kLogThreeHalves : 0.0) + 2.0 * u * s;
}

// softplus(z) = log(1 + e^z) = max(z, 0) + log1p(e^{-|z|}).
inline double softplus(double z) {
  const double a = z > 0.0 ? -z : z;
  return (z > 0.0 ? z : 0.0) + log1p_unit(exp_nonpositive(a));
}
inline float softplus(float z) { return (z > 0.0f ? z : 0.0f) + std::log1p(std::exp(z > 0.0f ? -z : z)); }
#else
template <class Real>
__device__ __forceinline__ Real softplus(Real z) {
  return (z > Real(0) ? z : Real(0)) + log1p(exp(z > Real(0) ? -z : z));
}
#endif

}  // namespace activescore
