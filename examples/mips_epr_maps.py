"""The paper's MIPS study at small scale on a CPU: stationary snapshots, a denoising score, the local EPR maps,
and the learning-free check beside the learned total.

    python examples/mips_epr_maps.py            # about 10-20 minutes on 2 cores

The same as the command line:  activescore demo --set system.n_particles=1024 --set train.n_steps=5000
"""

from pathlib import Path

import activescore as a
from activescore import plotting
from activescore.learning import TrainConfig, train_score
from activescore.simulation.dataset import DatasetPlan, build_dataset

out = Path("mips_maps")
system = a.mips(1024, packing_fraction=0.5)
data = build_dataset(
    system, DatasetPlan(n_frames=64, spacing=2_000, burn_in=300_000, dt=a.MIPS_DT, seed=1), out / "dataset"
)
training = TrainConfig(loss="dsm", sigmas=(0.01,), n_steps=5_000)
score = train_score(system, data.load(), train=training, checkpoint=out / "checkpoint.msgpack")
score.save(out / "score.msgpack")
result = a.estimate(score, data.load(), system=system)
print(result)  # compare the learned total with the learning-free identity (physics.md §6: sigma-smoothing bias)
plotting.plot_epr_overview(result, out / "epr.png")
