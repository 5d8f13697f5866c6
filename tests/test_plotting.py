"""Plots a physicist can read: labelled axes with units, colour bars saying what they show, an arrow key, titles
from the system's parameters, and map cells holding enough particles."""

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.quiver import QuiverKey

import activescore as a
from activescore import plotting
from activescore.exact import GaussianScore, gaussian_samples


@pytest.mark.parametrize("n, frames", [(256, 1), (256, 8), (4096, 64), (24, 1), (1, 1), (10**6, 100)])
def test_bins_for_gives_about_twenty_particles_per_cell(n, frames):
    bins = plotting.bins_for(n, frames)
    per_cell = n * frames / bins**2
    assert 1 <= bins <= 64
    if bins < 64 and n * frames >= plotting.PARTICLES_PER_BIN:
        # The finest grid with at least 20 per cell: one more cell a side would drop below 20.
        assert per_cell >= plotting.PARTICLES_PER_BIN > n * frames / (bins + 1) ** 2
    assert plotting.bins_for(256, 8) == 10  # where a fixed 48 x 48 grid holds under one particle per cell


def test_bins_for_rejects_empty_input():
    with pytest.raises(ValueError, match="n_particles"):
        plotting.bins_for(0, 5)


def _colorbar_labels(fig):
    return [ax.get_ylabel() for ax in fig.axes if hasattr(ax, "_colorbar")]


def test_configuration_has_axes_in_radii_a_colour_bar_and_a_title_from_the_system():
    system = a.AOUP(24, packing_fraction=0.3, v0=0.5, gamma=0.5)
    x = np.random.default_rng(0).uniform(-system.box_length / 2, system.box_length / 2, (24, 2))
    ax = plotting.plot_configuration(system, x, color=np.arange(24.0), label="|g|² (propulsion)")
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x / R", "y / R")
    assert len(ax.get_xticks()) > 2  # ticks give the scale
    assert ax.get_title() == "AOUP  N = 24, φ = 0.3\nv0 = 0.5, γ = 0.5, v0/γ = 1, ε = 0"
    assert "|g|² (propulsion)" in _colorbar_labels(ax.figure)
    matplotlib.pyplot.close(ax.figure)


def test_titles_and_units_follow_the_system():
    abp = a.ABP(40, packing_fraction=0.2, v0=1.0, rotational_diffusion=0.5, radius=2.0)
    assert plotting.system_title(abp, t=3.0).startswith("ABP  N = 40, φ = 0.2, v0 = 1, D_r = 0.5, v0/D_r = 2")
    assert plotting.system_title(abp, t=3.0).endswith("t = 3")
    assert "MIPS" not in plotting.system_title(a.mips(64))
    x = np.zeros((40, 2)) + np.linspace(-5, 5, 40)[:, None]
    ax = plotting.plot_configuration(abp, x)
    assert ax.get_xlabel() == "x [length unit]"  # radius 2: lengths are not in radii
    matplotlib.pyplot.close(ax.figure)


def test_epr_overview_labels_every_panel():
    system = a.AOUP(64, box_length=400.0, k=0.0, trap=1.0, eps=0.5, gamma=2.0, v0=1.5)
    x, g = gaussian_samples(system, 10, seed=1)
    result = a.estimate(GaussianScore(system), (x, g), system=system, bins=plotting.bins_for(64, 10))
    fig = plotting.plot_epr_overview(result)
    panels = [ax for ax in fig.axes if ax.get_visible() and not hasattr(ax, "_colorbar")]
    assert len(panels) == 5  # snapshot, EPR density, EPR per particle, current, radial profile
    for ax in panels:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    bars = _colorbar_labels(fig)
    assert len(bars) == 4
    assert any("per area [1/(time·R²)]" in label for label in bars)
    assert sum("per particle [1/time]" in label for label in bars) == 2
    assert "particle density [1/R²]" in bars
    keys = [artist for ax in panels for artist in ax.get_children() if isinstance(artist, QuiverKey)]
    assert len(keys) == 1 and "1/(time·R)" in keys[0].text.get_text()
    assert fig._suptitle.get_text().startswith(plotting.system_title(system))
    assert "5×5 cells" in panels[1].get_title()  # 64 particles × 10 snapshots / 20 = 32 ≥ 5²
    matplotlib.pyplot.close(fig)


def test_per_particle_map_leaves_sparse_cells_blank():
    system = a.AOUP(64, box_length=400.0, k=0.0, trap=1.0, eps=0.5, gamma=2.0, v0=1.5)
    x, g = gaussian_samples(system, 4, seed=2)
    result = a.estimate(GaussianScore(system), (x, g), system=system, bins=16)
    ax = plotting.plot_epr_map(result.map, kind="per_particle")
    shown = ax.images[0].get_array()
    sparse = (result.map.count < plotting.MIN_PARTICLES_PER_CELL).T
    assert np.all(np.ma.getmaskarray(shown)[sparse] | np.isnan(np.ma.getdata(shown)[sparse]))
    assert np.all(np.isfinite(np.ma.getdata(shown)[~sparse]))
    matplotlib.pyplot.close(ax.figure)


def test_round_scale_of_the_arrow_key():
    assert [plotting._round_scale(v) for v in (0.037, 1.0, 2.5, 7.9, 130.0)] == [0.02, 1.0, 2.0, 5.0, 100.0]
    assert plotting._round_scale(math.nan) == 1.0


def test_coarsen_map_merges_cells_and_keeps_every_total():
    system = a.AOUP(64, box_length=400.0, k=0.0, trap=1.0, eps=0.5, gamma=2.0, v0=1.5)
    x, g = gaussian_samples(system, 32, seed=3)
    fine = a.estimate(GaussianScore(system), (x, g), system=system, bins=64).map
    coarse = plotting.coarsen_map(fine)
    assert len(coarse.edges) - 1 == 8  # 64 × 32 = 2048 particle-snapshots: at most 10 cells a side, 64/8
    assert coarse.count.sum() == fine.count.sum() and coarse.half_width == fine.half_width
    for quantity in ("quadratic", "divergence", "j_x"):
        assert coarse.integral(quantity) == pytest.approx(fine.integral(quantity), rel=1e-12)
    block = fine.count[:8, :8]
    assert coarse.count[0, 0] == block.sum()
    with np.errstate(invalid="ignore"):
        expected = np.sum(fine._sum("quadratic")[:8, :8]) / block.sum() if block.sum() else np.nan
    np.testing.assert_allclose(coarse.per_particle("quadratic")[0, 0], expected)
    np.testing.assert_allclose(coarse.density(), fine.density().reshape(8, 8, 8, 8).mean(axis=(1, 3)))
    assert plotting.coarsen_map(coarse) is coarse  # already coarse enough
