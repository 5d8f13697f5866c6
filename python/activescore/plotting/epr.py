"""Pictures of the entropy production and the current measured by :func:`activescore.estimate`: per-particle
EPR on a configuration, maps, the current with its arrow key, radial profiles, and the overview figure."""

from __future__ import annotations

import math

import numpy as np

from .common import (
    PARTICLES_PER_BIN,
    _colorbar,
    _pyplot,
    coarsen_map,
    length_unit,
    plot_configuration,
    save,
    system_title,
)

_EPR_LABELS = {
    "quadratic": "EPR e_i (quadratic form)",
    "divergence": "EPR c_i (divergence form)",
    "quadratic_x": "x part of e_i, |v_x|²/ε",
    "quadratic_g": "propulsion part of e_i, |v_g|²/γ (ABP: v_θ²/D_r)",
    "divergence_x": "x part of c_i, v_x·b_x/ε + ∇_x·v_x",
    "divergence_g": "propulsion part of c_i, ∇_g·v_g (ABP: ∂_θ v_θ)",
}

#: Cells of a per-particle map with fewer particle-snapshots than this are left blank: a mean of a few is noise.
MIN_PARTICLES_PER_CELL = 5


def _epr_label(quantity: str, kind: str, unit: str, sigma=None) -> str:
    """Colour-bar text: what the values are and their unit (EPR in k_B per unit time)."""
    what = _EPR_LABELS.get(quantity, quantity)
    if kind == "density_weighted":
        return f"{what} per area [1/(time·{unit}²)]{_sigma_suffix(sigma)}"
    return f"{what} per particle [1/time]{_sigma_suffix(sigma)}"


def _sigma_suffix(sigma) -> str:
    if sigma is None:
        return ""
    return ", σ=0" if sigma == 0 else f", σ={sigma:g}"


def _color_limits(values, clip):
    """(vmin, vmax, diverging): percentile limits, symmetric about 0 when the values take both signs."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 1.0, False
    lo, hi = np.percentile(v, clip) if clip is not None else (v.min(), v.max())
    if lo < 0 < hi and min(-lo, hi) > 0.05 * max(-lo, hi):  # both signs matter: symmetric, diverging
        m = max(-lo, hi)
        return -m, m, True
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return float(lo), float(hi), False


def plot_local_epr(
    system,
    x,
    values,
    *,
    form: str = "quadratic",
    sigma=None,
    ax=None,
    cmap=None,
    clip=(1, 99),
    title=None,
    half_width=None,
):
    """One configuration with every particle coloured by its local EPR (``values``, (N,), e.g.
    ``result.quadratic[k]`` at ``result.positions(k)``). Colour limits are the ``clip`` percentiles (None: full
    range), symmetric with a diverging map when values take both signs (the divergence form can).
    ``half_width``: zoom to [-h, h]² (e.g. a trapped cloud in a large box); default: the whole box."""
    vmin, vmax, diverging = _color_limits(values, clip)
    cmap = cmap or ("RdBu_r" if diverging else "viridis")
    ax = plot_configuration(system, x, color=values, ax=ax, cmap=cmap, colorbar=False, title=title)
    if half_width is not None:
        ax.set_xlim(-half_width, half_width)
        ax.set_ylim(-half_width, half_width)
    disks = ax.collections[0]
    disks.set_clim(vmin, vmax)
    _colorbar(ax, disks, _epr_label(form, "per_particle", length_unit(system), sigma))
    return ax


def _part(obj, attribute: str, needs: str, name: str, kind: str):
    """The map or profile to draw: ``obj`` itself, or its ``attribute`` when given the whole
    :class:`~activescore.estimation.EPRResult` (``result.map``, ``result.radial``); otherwise a ValueError naming
    the parameter and what it takes."""
    if not hasattr(obj, needs) and hasattr(obj, attribute):
        part = getattr(obj, attribute)
        if part is None:
            raise ValueError(f"{name}: this {type(obj).__name__} has no {kind} (result.{attribute} is None)")
        obj = part
    if not hasattr(obj, needs):
        raise ValueError(
            f"{name}: expected a {kind} (e.g. result.{attribute} of an estimate), got {type(obj).__name__}"
        )
    return obj


def plot_epr_map(
    field_map,
    quantity: str = "quadratic",
    kind: str = "density_weighted",
    *,
    ax=None,
    cmap=None,
    clip=(1, 99),
    title=None,
    unit: str = "R",
    min_count: int = MIN_PARTICLES_PER_CELL,
):
    """A :class:`activescore.estimation.SpatialMap` as an image with labelled axes and a colour bar saying what
    it shows and in which unit.

    ``kind``: "density_weighted" (EPR per unit area), "per_particle" (mean over the particles in a cell; cells
    with fewer than ``min_count`` particle-snapshots blank) or "density" (particles per unit area; ``quantity``
    ignored). ``unit``: the length unit of the axes (:func:`length_unit` of the system; "R" for the default
    radius 1). Choose the map's ``bins`` with :func:`bins_for` so that cells hold enough particles. Given the whole
    EPRResult, its ``map`` is drawn."""
    field_map = _part(field_map, "map", "centers", "field_map", "SpatialMap")
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5), dpi=150)
    if kind == "density":
        data, label = field_map.density(), f"particle density [1/{unit}²]"
    elif kind == "density_weighted":
        data = field_map.density_weighted(quantity)
        label = _epr_label(quantity, kind, unit, field_map.sigma)
    elif kind == "per_particle":
        data = np.where(field_map.count >= min_count, field_map.per_particle(quantity), np.nan)
        label = _epr_label(quantity, kind, unit, field_map.sigma)
    else:
        raise ValueError(f"kind must be 'density_weighted', 'per_particle' or 'density', got {kind!r}")
    vmin, vmax, diverging = _color_limits(data, clip)
    h = field_map.half_width
    image = ax.imshow(
        np.asarray(data).T,
        origin="lower",
        extent=(-h, h, -h, h),
        vmin=vmin,
        vmax=vmax,
        cmap=cmap or ("RdBu_r" if diverging else "magma"),
        interpolation="nearest",
    )
    ax.set_aspect("equal")
    ax.set_xlabel("x / R" if unit == "R" else f"x [{unit}]")
    ax.set_ylabel("y / R" if unit == "R" else f"y [{unit}]")
    if title:
        ax.set_title(title, fontsize="medium")
    _colorbar(ax, image, label)
    return ax


def _round_scale(value: float) -> float:
    """A round number (1, 2 or 5 × 10^k) not above ``value``, for an arrow key."""
    if not np.isfinite(value) or value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    mantissa = value / 10**exponent
    return (5 if mantissa >= 5 else 2 if mantissa >= 2 else 1) * 10**exponent


def plot_current(field_map, *, ax=None, stride: int = 1, cmap="Greys", title=None, unit: str = "R"):
    """The position current j_x = ρ v_x of a :class:`SpatialMap` as arrows over the density (colour bar), with
    a key giving the arrow scale in 1/(time·unit). Given the whole EPRResult, its ``map`` is drawn."""
    field_map = _part(field_map, "map", "centers", "field_map", "SpatialMap")
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5), dpi=150)
    plot_epr_map(field_map, kind="density", ax=ax, cmap=cmap, title=title, unit=unit)
    c = field_map.centers[::stride]
    # Cells with few particles give a current of noise: left without an arrow, as in the per-particle map.
    current = np.where((field_map.count >= MIN_PARTICLES_PER_CELL)[..., None], field_map.current(), np.nan)
    j = current[::stride, ::stride]
    xx, yy = np.meshgrid(c, c, indexing="ij")
    arrows = ax.quiver(xx, yy, j[..., 0], j[..., 1], color="tab:red", angles="xy", pivot="middle")
    magnitude = np.hypot(j[..., 0], j[..., 1])
    magnitude = magnitude[np.isfinite(magnitude)]
    key = _round_scale(float(np.percentile(magnitude, 90))) if magnitude.size else 1.0
    # The key sits in a white box at the top left, readable over any background density.
    arrow_key = ax.quiverkey(
        arrows,
        0.06,
        0.95,
        key,
        f"j = {key:g} [1/(time·{unit})]",
        labelpos="E",
        coordinates="axes",
        fontproperties={"size": "small"},
        color="tab:red",
    )
    arrow_key.set_zorder(3)
    ax.add_patch(
        _pyplot().Rectangle(
            (0.01, 0.90),
            0.52,
            0.09,
            transform=ax.transAxes,
            facecolor="white",
            edgecolor="0.5",
            linewidth=0.5,
            alpha=0.9,
            zorder=2.5,
        )
    )
    return ax


def plot_radial_profile(
    profile,
    quantity: str = "quadratic",
    kind: str = "per_particle",
    *,
    exact=None,
    ax=None,
    title=None,
    unit: str = "R",
):
    """A :class:`activescore.estimation.RadialProfile` against r = |x| (per-particle means with the naive
    standard error, or the density-weighted profile). ``exact``: optional callable r → values, drawn as a line.
    Given the whole EPRResult, its ``radial`` profile is drawn."""
    profile = _part(profile, "radial", "centers", "profile", "RadialProfile")
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4), dpi=150)
    r = profile.centers
    label = _EPR_LABELS.get(quantity, quantity) + _sigma_suffix(profile.sigma)
    if kind == "per_particle":
        err = profile.stderr(quantity) if quantity in ("quadratic", "divergence") else None
        ax.errorbar(r, profile.per_particle(quantity), yerr=err, fmt="o", ms=3, label="estimate")
        ax.set_ylabel(label + " per particle [1/time]", fontsize="small")
    elif kind == "density_weighted":
        ax.plot(r, profile.density_weighted(quantity), "o-", ms=3, label="estimate")
        ax.set_ylabel(label + f" per area [1/(time·{unit}²)]", fontsize="small")
    else:
        raise ValueError(f"kind must be 'per_particle' or 'density_weighted', got {kind!r}")
    if exact is not None:
        rr = np.linspace(0.0, profile.edges[-1], 200)
        ax.plot(rr, exact(rr), "k-", lw=1, label="exact")
        ax.legend()
    ax.set_xlabel(
        f"distance from the trap centre |x| / {unit}" if unit == "R" else f"distance from the trap centre |x| [{unit}]"
    )
    if title:
        ax.set_title(title, fontsize="medium")
    return ax


def plot_epr_overview(
    result, path=None, *, index: int = -1, form: str = "quadratic", per_bin: int | None = PARTICLES_PER_BIN
):
    """One figure from an :class:`activescore.estimation.EPRResult`: a configuration coloured by local EPR (if the
    per-particle fields were kept), the density-weighted and per-particle EPR maps, density with current and (for
    trapped systems) the radial profile, titled with the system's parameters and the global numbers. Saved as PNG
    when ``path`` is given; returns the figure.

    ``per_bin``: the map is drawn on a grid coarsened (:func:`coarsen_map`) to about this many particle-snapshots
    per cell, so that a map estimated on a fine grid at small N does not show noise; None draws it as estimated."""
    plt = _pyplot()
    system = result.system
    unit = length_unit(system)
    panels = ["config"] if result.local is not None else []
    panels += ["weighted", "per_particle", "current"] + (["radial"] if result.radial is not None else [])
    cols = 3 if len(panels) > 4 else 2
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(
        rows, cols, figsize=(6.0 * cols, 5.2 * rows), dpi=120, squeeze=False, layout="constrained"
    )  # room for every colour bar's label
    axes = axes.ravel()
    tag = f"{form} form{_sigma_suffix(result.sigma)}"
    field_map = result.map if per_bin is None else coarsen_map(result.map, per_bin)
    bins = len(field_map.edges) - 1
    per_cell = float(np.sum(field_map.count)) / bins**2
    grid = f"{bins}×{bins} cells, {per_cell:.3g} particle-snapshots per cell"
    for ax, panel in zip(axes, panels, strict=False):  # axes beyond the panels are hidden below
        if panel == "config":
            plot_local_epr(
                system,
                result.positions(index),
                getattr(result.local, form)[index],
                form=form,
                sigma=result.sigma,
                ax=ax,
                title=f"one snapshot (frame {int(result.frames[index])})",
                half_width=field_map.half_width if system.trap > 0 else None,
            )
        elif panel == "weighted":
            plot_epr_map(
                field_map,
                form,
                "density_weighted",
                ax=ax,
                unit=unit,
                title=f"EPR density over {field_map.n_frames} snapshots\n({grid})",
            )
        elif panel == "per_particle":
            plot_epr_map(
                field_map,
                form,
                "per_particle",
                ax=ax,
                unit=unit,
                title=f"EPR per particle, mean in each cell\n(blank: under {MIN_PARTICLES_PER_CELL} "
                "particle-snapshots)",
            )
        elif panel == "current":
            plot_current(
                field_map,
                ax=ax,
                stride=max(1, bins // 24),
                unit=unit,
                title="density and probability current j_x = ρ v_x",
            )
        else:
            plot_radial_profile(result.radial, form, ax=ax, title=f"radial profile ({tag})", unit=unit)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    ident = result.identity.per_particle
    ceiling = result.finite_dt
    of_ceiling = (
        ""
        if ceiling is None
        else f"\nlearned/ceiling {ceiling.of_ceiling[form]:.3g} (the time step dt = {ceiling.dt:g} allows "
        f"{ceiling.ceiling.value:.3g} of the identity; physics.md §5)"
    )
    fig.suptitle(
        f"{system_title(system)}\nEPR per particle: {result.epr_per_particle[form]:.4g} ({tag});   "
        f"learning-free identity: {ident:.4g}   [k_B per unit time]{of_ceiling}"
    )
    if path is not None:
        save(fig, path)
    return fig
