// One particle's Euler-Maruyama step in x and propulsion step in q (physics.md §2), shared by every driver.
#pragma once
#include <cmath>
#include <limits>

#include "box.hpp"
#include "hostdevice.hpp"
#include "philox.hpp"
#include "system_spec.hpp"

namespace activescore {

template <class Real>
struct StepParams {
  Real dt;
  Real v0;
  Real k;             // interaction strength
  Real trap;          // A: harmonic trap toward the box centre (the origin)
  Real x_noise;       // sqrt(2 eps dt)
  Real max_step_sq;   // (half the minimum cell width)^2: a larger single-step move is a blow-up (see make)
  unsigned long long seed;

  // The parameters of a run, for every driver: min_width is the largest interaction range in the run's precision
  // (the cell width). Half of it bounds a single step's move, because a longer move can carry a particle past a
  // contact that the explicit step never resolves. Without interactions there is no contact to protect, and a
  // stiff but stable trap relaxation may move far: only a non-finite move stops such a run.
  static StepParams make(const SystemSpec& system, const RunSpec& run, Real min_width) {
    const Real limit =
        system.k != 0.0 ? Real(0.25 * double(min_width) * double(min_width)) : std::numeric_limits<Real>::max();
    return StepParams{
        Real(run.dt), Real(system.v0), Real(system.k), Real(system.trap), Real(std::sqrt(2.0 * system.eps * run.dt)),
        limit,        run.seed};
  }
};

// Advances a particle from (x, q) to (x_new, q_new) given its summed pair force (fx, fy) at the old state and
// the normals of its random block of this step (random_block(seed, step, i, kStepNoise)): words (0, 1) drive x
// (x_normals, unused when eps = 0), words (2, 3) the propulsion (physics.md §3). Returns false if the move is
// non-finite or longer than half a cell. (gx, gy) is the propulsion direction prop.direction(q): a CPU block
// computes those of its particles in one vectorised loop first.
template <class Real, class Propulsion>
AS_HD bool integrate_particle(const StepParams<Real>& p, const Propulsion& prop, const Box<Real>& box,
                              const Normal2& x_normals, const Normal2& q_normals, const Real* x, const Real* q, Real gx,
                              Real gy, Real fx, Real fy, Real* x_new, Real* q_new) {
  Real dx = p.dt * (p.v0 * gx + p.k * fx - p.trap * x[0]);
  Real dy = p.dt * (p.v0 * gy + p.k * fy - p.trap * x[1]);
  if (p.x_noise != Real(0)) {
    dx += p.x_noise * Real(x_normals.a);
    dy += p.x_noise * Real(x_normals.b);
  }
  x_new[0] = box.wrap(x[0] + dx);
  x_new[1] = box.wrap(x[1] + dy);
  prop.update(q, q_new, q_normals);
  const Real move_sq = dx * dx + dy * dy;
  return move_sq <= p.max_step_sq;  // false for NaN too
}

// The same for particle i at `step`, drawing its block.
template <class Real, class Propulsion>
AS_HD bool integrate_particle(const StepParams<Real>& p, const Propulsion& prop, const Box<Real>& box,
                              unsigned long long step, unsigned i, const Real* x, const Real* q, Real fx, Real fy,
                              Real* x_new, Real* q_new) {
  const Philox4x32 w = random_block(p.seed, step, i, kStepNoise);
  // eps = 0 (the MIPS case) skips a Box-Muller it would multiply by zero.
  const Normal2 x_normals = p.x_noise != Real(0) ? box_muller(w.v[0], w.v[1]) : Normal2{0.0, 0.0};
  Real gx, gy;
  prop.direction(q, gx, gy);
  return integrate_particle(p, prop, box, x_normals, box_muller(w.v[2], w.v[3]), x, q, gx, gy, fx, fy, x_new, q_new);
}

}  // namespace activescore
