"""The estimators against exact answers, without learning: trapped non-interacting AOUPs have a Gaussian
stationary density, so their score, probability-flow velocity and EPR are known in closed form (physics.md §5).

    python examples/exact_gaussian_checks.py
"""

import activescore as a
from activescore.exact import GaussianScore, gaussian_epr, gaussian_samples

for eps in (0.5, 0.0):
    system = a.AOUP(256, box_length=400.0, k=0.0, trap=1.0, eps=eps, gamma=2.0, v0=1.5)
    x, g = gaussian_samples(system, 300, seed=1)
    result = a.estimate(GaussianScore(system), (x, g), system=system)
    print(result)
    print(f"exact EPR per particle: {gaussian_epr(system):.6g}\n")

# A sigma-smoothed (denoising) score is biased; the exactly smoothed Gaussian score shows by how much.
system = a.AOUP(256, box_length=400.0, k=0.0, trap=1.0, eps=0.0, gamma=2.0, v0=1.5)
x, g = gaussian_samples(system, 300, seed=2)
for sigma in (0.01, 0.1, 0.5):
    r = a.estimate(GaussianScore(system, sigma=sigma), (x, g), system=system)
    print(
        f"sigma={sigma}: quadratic {r.epr_per_particle['quadratic'].value:.4g} per particle, exact (sigma->0) "
        f"{gaussian_epr(system):.4g}, learning-free identity {r.identity.per_particle.value:.4g}"
    )
