// Branch-free elementary functions written as plain arithmetic, so the compiler can vectorise the loops that call
// them (libm calls block that).
// - log and sin/cos for Box-Muller and the ABP direction (host and device): exactly rounded operations in a fixed
// order, so the Numba
//   backend (backends/special_functions.py) repeats them bit for bit; within about an ulp of the true values.
// - exp and log1p for the softplus pair force, accurate to a few ulp in float64. On the GPU and in float32 the
//   library functions are already fast and are used instead.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "hostdevice.hpp"

namespace activescore {

// ln 2 split so that n * kLn2Hi is exact for |n| < 2^20 (kLn2Hi has 32 trailing zero bits).
constexpr double kLn2Hi = 6.93147180369123816490e-01, kLn2Lo = 1.90821492927058770002e-10;
// Adding and removing 1.5 * 2^52 rounds a double of magnitude below 2^51 to the nearest integer, which is then also
// held in the low bits of the sum.
constexpr double kRoundToInteger = 6755399441055744.0;

// R(z) = sum_{k=1..11} 2 z^k/(2k+1), the tail of 2 atanh(s)/s - 2 at z = s^2 (z <= 0.04 here, where the
// omitted terms are below 1e-17 of the result). Estrin's scheme: independent pairs of terms joined by z^2, z^4,
// z^8, a dependency chain of 4 multiply-adds instead of Horner's 11, which would latency-bound vectorised loops.
AS_HD double atanh_series_tail(double z) {
  const double z2 = z * z, z4 = z2 * z2, z8 = z4 * z4;
  const double a0 = 2.0 / 3.0 + z * (2.0 / 5.0), a1 = 2.0 / 7.0 + z * (2.0 / 9.0), a2 = 2.0 / 11.0 + z * (2.0 / 13.0),
               a3 = 2.0 / 15.0 + z * (2.0 / 17.0), a4 = 2.0 / 19.0 + z * (2.0 / 21.0);
  return z * (((a0 + a1 * z2) + (a2 + a3 * z2) * z4) + (a4 + z2 * (2.0 / 23.0)) * z8);
}

// log u for a positive normal u: u = m 2^e with m in [sqrt(1/2), sqrt(2)), f = m - 1 (exact), and
// log(1 + f) = 2 atanh(s), s = f/(2 + f), |s| <= 0.1716, summed so that f's leading term stays exact:
// log(1 + f) = f - (f^2/2 - s (f^2/2 + R(s^2))).
AS_HD double log_positive(double u) {
  constexpr uint64_t kSqrt2Mantissa = 0x0006a09e667f3bcdull;  // mantissa field of 1.4142135623730951
  constexpr uint64_t kOne = 0x3ff0000000000000ull, kTwoPow52 = 0x4330000000000000ull, kUnitExponent = 1ull << 52;
  constexpr double kExponentBias = 4503599627371519.0;  // 2^52 + 1023
  // Integer arithmetic only, so that AVX2 vectorises it too (GCC will not if-convert a floating-point operation
  // that may trap): high is all ones when m > sqrt(2), and then m is halved and e raised by one, both exactly.
  uint64_t bits;
  memcpy(&bits, &u, sizeof bits);
  const uint64_t mantissa = bits & 0x000fffffffffffffull;
  const uint64_t high = uint64_t((int64_t(kSqrt2Mantissa) - int64_t(mantissa)) >> 63);
  const uint64_t m_bits = (mantissa | kOne) - (high & kUnitExponent);
  const uint64_t e_bits = ((bits >> 52) + (high & 1u)) | kTwoPow52;  // 2^52 + biased exponent, as a double
  double e, m;
  memcpy(&e, &e_bits, sizeof e);
  memcpy(&m, &m_bits, sizeof m);
  e = e - kExponentBias;
  const double f = m - 1.0;
  const double half_f_sq = (0.5 * f) * f;
  const double s = f / (2.0 + f);
  const double r = atanh_series_tail(s * s);
  return e * kLn2Hi - ((half_f_sq - (s * (half_f_sq + r) + e * kLn2Lo)) - f);
}

// (cos, sin) of theta + q pi/2 for |theta| <= pi/4 and a quadrant q: Taylor polynomials to theta^17 and theta^16
// (tails below 1e-18), then the quadrant q mod 4 rotates the result.
AS_HD void cos_sin_quadrant(double theta, uint64_t q, double& cos_out, double& sin_out) {
  const double z = theta * theta;
  double ps = 1.0 / 355687428096000.0;  // 1/17!
  ps = ps * z - 1.0 / 1307674368000.0;
  ps = ps * z + 1.0 / 6227020800.0;
  ps = ps * z - 1.0 / 39916800.0;
  ps = ps * z + 1.0 / 362880.0;
  ps = ps * z - 1.0 / 5040.0;
  ps = ps * z + 1.0 / 120.0;
  ps = ps * z - 1.0 / 6.0;
  const double sin_theta = theta + (theta * z) * ps;
  double pc = 1.0 / 20922789888000.0;  // 1/16!
  pc = pc * z - 1.0 / 87178291200.0;
  pc = pc * z + 1.0 / 479001600.0;
  pc = pc * z - 1.0 / 3628800.0;
  pc = pc * z + 1.0 / 40320.0;
  pc = pc * z - 1.0 / 720.0;
  pc = pc * z + 1.0 / 24.0;
  const double cos_theta = 1.0 - (0.5 * z - (z * z) * pc);
  // (cos, sin) of theta + q pi/2 is (c, s), (-s, c), (-c, -s), (s, -c) for q = 0, 1, 2, 3.
  const bool swap = (q & 1u) != 0, negate_cos = ((q + 1u) & 2u) != 0, negate_sin = (q & 2u) != 0;
  const double a = swap ? sin_theta : cos_theta;
  const double b = swap ? cos_theta : sin_theta;
  cos_out = negate_cos ? -a : a;
  sin_out = negate_sin ? -b : b;
}

// (cos, sin) of 2 pi t for t in [0, 1]: t = j/4 + d exactly (j the nearest quarter, |d| <= 1/8), so only
// theta = 2 pi d, |theta| <= pi/4, goes through the polynomials, and the quadrant is j mod 4.
AS_HD void cos_sin_turns(double t, double& cos_out, double& sin_out) {
  constexpr double kTwoPi = 6.283185307179586;
  // Rounds 4t to the nearest integer j with kRoundToInteger (floor does not vectorise without -fno-trapping-math);
  // j mod 4 is then the low bits of the sum.
  const double shifted = 4.0 * t + kRoundToInteger;
  const double j = shifted - kRoundToInteger;
  uint64_t shifted_bits;
  memcpy(&shifted_bits, &shifted, sizeof shifted_bits);
  cos_sin_quadrant(kTwoPi * (t - 0.25 * j), shifted_bits & 3u, cos_out, sin_out);
}

// (cos, sin) of an angle, within about an ulp for |theta| < 2^20 pi/2 (ABP angles diffuse: sqrt(2 D_r t) stays far
// below that): theta = j pi/2 + r with j the nearest integer to theta 2/pi and |r| <= pi/4 by Cody-Waite reduction
// (pi/2 in three parts; j times either of the first two is exact), then cos_sin_quadrant. Plain arithmetic, so
// loops over particles vectorise, and the Numba backend repeats it bit for bit.
AS_HD void cos_sin(double theta, double& cos_out, double& sin_out) {
  constexpr double kTwoOverPi = 6.36619772367581382433e-01;
  constexpr double kHalfPi1 = 1.57079632673412561417e+00;  // first 33 bits of pi/2
  constexpr double kHalfPi2 = 6.07710050630396597660e-11;  // next 33 bits
  constexpr double kHalfPi3 = 2.02226624879595063154e-21;  // pi/2 - kHalfPi1 - kHalfPi2
  const double shifted = theta * kTwoOverPi + kRoundToInteger;
  const double j = shifted - kRoundToInteger;
  uint64_t shifted_bits;
  memcpy(&shifted_bits, &shifted, sizeof shifted_bits);  // j mod 4 in the low bits, negative j included
  const double r = ((theta - j * kHalfPi1) - j * kHalfPi2) - j * kHalfPi3;
  cos_sin_quadrant(r, shifted_bits & 3u, cos_out, sin_out);
}

#if !defined(__CUDA_ARCH__)
// exp(x) for x <= 0 (clamped at -700, where it is ~1e-304): x = n ln2 + r, |r| <= ln2/2, Taylor to r^13.
inline double exp_nonpositive(double x) {
  constexpr double kLog2e = 1.4426950408889634;
  x = x < -700.0 ? -700.0 : x;
  const double t = x * kLog2e + kRoundToInteger;  // x log2(e) rounded to the nearest integer n, in t's low bits
  const double n = t - kRoundToInteger;
  const double r = (x - n * kLn2Hi) - n * kLn2Lo;
  // 1 + (r + r^2 Q(r)), Q(r) = sum_{k=2..13} r^{k-2}/k! by Estrin's scheme (see atanh_series_tail); the 1 is
  // added last, so only one rounding happens at its magnitude.
  const double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
  const double a0 = 0.5 + r * (1.0 / 6.0), a1 = 1.0 / 24.0 + r * (1.0 / 120.0), a2 = 1.0 / 720.0 + r * (1.0 / 5040.0),
               a3 = 1.0 / 40320.0 + r * (1.0 / 362880.0), a4 = 1.0 / 3628800.0 + r * (1.0 / 39916800.0),
               a5 = 1.0 / 479001600.0 + r * (1.0 / 6227020800.0);
  const double q = ((a0 + a1 * r2) + (a2 + a3 * r2) * r4) + (a4 + a5 * r2) * r8;
  const double p = 1.0 + (r + r2 * q);
  int64_t t_bits, round_bits;
  std::memcpy(&t_bits, &t, sizeof t);
  std::memcpy(&round_bits, &kRoundToInteger, sizeof kRoundToInteger);
  const int64_t scale_bits = (t_bits - round_bits + 1023) << 52;  // 2^n
  double scale;
  std::memcpy(&scale, &scale_bits, sizeof scale);
  return p * scale;
}

// log1p(e) for e in [0, 1]: f = e, or above 1/2 log(3/2) + log1p(f) with f = (e - 1/2)/(3/2) <= 1/3, then
// log1p(f) = f - (f^2/2 - s (f^2/2 + R(s^2))), s = f/(2 + f) <= 1/5, as in log_positive. Branch free.
inline double log1p_unit(double e) {
  constexpr double kLogThreeHalves = 0.40546510810816438198;
  const bool high = e > 0.5;
  const double f = high ? (e - 0.5) * (2.0 / 3.0) : e;
  const double half_f_sq = (0.5 * f) * f;
  const double s = f / (2.0 + f);
  const double r = atanh_series_tail(s * s);
  return (high ? kLogThreeHalves : 0.0) + (f - (half_f_sq - s * (half_f_sq + r)));
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
