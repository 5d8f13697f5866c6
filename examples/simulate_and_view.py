"""Simulate a MIPS system, stream it to GSD, and open it in OVITO or freud.

    python examples/simulate_and_view.py            # writes mips.gsd and mips.png

OVITO: File > Load File > mips.gsd (the propulsion appears as the particle property `propulsion`, the orientation
along g). freud:

    import freud, gsd.hoomd
    with gsd.hoomd.open("mips.gsd") as f:
        frame = f[-1]
        box = freud.box.Box.from_box(frame.configuration.box, dimensions=2)
        rdf = freud.density.RDF(bins=100, r_max=10).compute((box, frame.particles.position))
"""

import activescore as a
from activescore import plotting

system = a.mips(2048, packing_fraction=0.5)
traj = a.simulate(system, 30_000, a.MIPS_DT, seed=1, save_every=1_000, out="mips.gsd", overwrite=True)
print(f"{len(traj)} frames, t = {traj.t[-1]:g}; resume with a.simulate(system, n, dt, init=a.load_state('mips.gsd'))")
plotting.save(plotting.plot_configuration(system, traj.x[-1], arrows=traj.g[-1], title="MIPS"), "mips.png")
