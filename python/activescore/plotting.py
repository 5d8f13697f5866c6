"""Pictures of configurations and fields (matplotlib, saved as PNG by the callers)."""

from __future__ import annotations

import numpy as np


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        try:
            matplotlib.use("Agg")
        except Exception:  # an interactive session chose its backend already
            pass
    import matplotlib.pyplot as plt

    return plt


def plot_configuration(system, x, *, color=None, ax=None, cmap="viridis", label=None, title=None, colorbar=True,
                       arrows=None):
    """Draw the particles as disks of their true radius in the periodic box.

    ``color``: per-particle values (e.g. local EPR) mapped through ``cmap`` with a colour bar; default: one colour.
    ``arrows``: optional (N, 2) vectors (e.g. the propulsion g) drawn from each centre.
    Returns the matplotlib Axes.
    """
    from matplotlib.collections import EllipseCollection

    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6), dpi=150)
    x = np.asarray(x)
    d = 2.0 * np.asarray(system.radius)
    disks = EllipseCollection(d, d, np.zeros_like(d), units="xy", offsets=x, offset_transform=ax.transData,
                              linewidths=0.2, edgecolors="k")
    if color is None:
        disks.set_facecolor("tab:orange")
    else:
        disks.set_array(np.asarray(color, dtype=float))
        disks.set_cmap(cmap)
    ax.add_collection(disks)
    if arrows is not None:
        arrows = np.asarray(arrows)
        ax.quiver(x[:, 0], x[:, 1], arrows[:, 0], arrows[:, 1], angles="xy", scale_units="xy",
                  scale=1.0 / np.mean(system.radius), width=0.002, color="k")
    half = system.box_length / 2
    ax.set_xlim(-half, half)
    ax.set_ylim(-half, half)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    if color is not None and colorbar:
        ax.figure.colorbar(disks, ax=ax, shrink=0.8, label=label)
    return ax


def save(fig_or_ax, path) -> None:
    """Save a figure (or an Axes' figure) as PNG atomically."""
    from .io.files import atomic_file

    fig = getattr(fig_or_ax, "figure", fig_or_ax)
    with atomic_file(path) as f:
        fig.savefig(f, format="png", bbox_inches="tight")
    _pyplot().close(fig)


# ------------------------------------------------------------------ entropy production (activescore.estimate)
_EPR_LABELS = {
    "quadratic": "local EPR e_i (quadratic form)",
    "divergence": "local EPR c_i (divergence form)",
    "quadratic_x": "|v_x|²/ε", "quadratic_g": "|v_g|²/γ",
    "divergence_x": "v_x·b_x/ε + ∇_x·v_x", "divergence_g": "∇_g·v_g",
}


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


def plot_local_epr(system, x, values, *, form: str = "quadratic", sigma=None, ax=None, cmap=None, clip=(1, 99),
                   title=None, half_width=None):
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
    ax.figure.colorbar(disks, ax=ax, shrink=0.8, label=_EPR_LABELS.get(form, form) + _sigma_suffix(sigma))
    return ax


def plot_epr_map(field_map, quantity: str = "quadratic", kind: str = "density_weighted", *, ax=None, cmap=None,
                 clip=(1, 99), title=None):
    """A :class:`activescore.estimation.SpatialMap` as an image with a colour bar.

    ``kind``: "density_weighted" (EPR per unit area), "per_particle" (mean over the particles in a cell; empty
    cells blank) or "density" (particles per unit area; ``quantity`` ignored)."""
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5), dpi=150)
    if kind == "density":
        data, label = field_map.density(), "density (particles per unit area)"
    elif kind == "density_weighted":
        data, label = field_map.density_weighted(quantity), _EPR_LABELS.get(quantity, quantity) + " per unit area"
    elif kind == "per_particle":
        data, label = field_map.per_particle(quantity), _EPR_LABELS.get(quantity, quantity) + " per particle"
    else:
        raise ValueError(f"kind must be 'density_weighted', 'per_particle' or 'density', got {kind!r}")
    vmin, vmax, diverging = _color_limits(data, clip)
    h = field_map.half_width
    image = ax.imshow(np.asarray(data).T, origin="lower", extent=(-h, h, -h, h), vmin=vmin, vmax=vmax,
                      cmap=cmap or ("RdBu_r" if diverging else "magma"), interpolation="nearest")
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, shrink=0.8, label=label if kind == "density" else
                       label + _sigma_suffix(field_map.sigma))
    return ax


def plot_current(field_map, *, ax=None, stride: int = 1, cmap="Greys", title=None):
    """The position current ρ v_x of a :class:`SpatialMap` as arrows over the density (colour bar)."""
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5), dpi=150)
    plot_epr_map(field_map, kind="density", ax=ax, cmap=cmap, title=title)
    c = field_map.centers[::stride]
    j = field_map.current()[::stride, ::stride]
    xx, yy = np.meshgrid(c, c, indexing="ij")
    ax.quiver(xx, yy, j[..., 0], j[..., 1], color="tab:red", angles="xy", pivot="middle")
    return ax


def plot_radial_profile(profile, quantity: str = "quadratic", kind: str = "per_particle", *, exact=None, ax=None,
                        title=None):
    """A :class:`activescore.estimation.RadialProfile` against r = |x| (per-particle means with the naive
    standard error, or the density-weighted profile). ``exact``: optional callable r → values, drawn as a line."""
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4), dpi=150)
    r = profile.centers
    label = _EPR_LABELS.get(quantity, quantity) + _sigma_suffix(profile.sigma)
    if kind == "per_particle":
        err = profile.stderr(quantity) if quantity in ("quadratic", "divergence") else None
        ax.errorbar(r, profile.per_particle(quantity), yerr=err, fmt="o", ms=3, label="estimate")
        ax.set_ylabel(label + " per particle")
    elif kind == "density_weighted":
        ax.plot(r, profile.density_weighted(quantity), "o-", ms=3, label="estimate")
        ax.set_ylabel(label + " per unit area")
    else:
        raise ValueError(f"kind must be 'per_particle' or 'density_weighted', got {kind!r}")
    if exact is not None:
        rr = np.linspace(0.0, profile.edges[-1], 200)
        ax.plot(rr, exact(rr), "k-", lw=1, label="exact")
        ax.legend()
    ax.set_xlabel("distance from the trap centre |x|")
    if title:
        ax.set_title(title)
    return ax


def plot_epr_overview(result, path=None, *, index: int = -1, form: str = "quadratic"):
    """One figure from an :class:`activescore.estimation.EPRResult`: a configuration coloured by local EPR (if the
    per-particle fields were kept), the density-weighted and per-particle EPR maps, density with current and (for
    trapped systems) the radial profile. Saved as PNG when ``path`` is given; returns the figure."""
    plt = _pyplot()
    panels = ["config"] if result.local is not None else []
    panels += ["weighted", "per_particle", "current"] + (["radial"] if result.radial is not None else [])
    cols = 3 if len(panels) > 4 else 2
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 4.8 * rows), dpi=120, squeeze=False)
    axes = axes.ravel()
    tag = f"{form} form{_sigma_suffix(result.sigma)}"
    for ax, panel in zip(axes, panels):
        if panel == "config":
            plot_local_epr(result.system, result.positions(index), getattr(result.local, form)[index], form=form,
                           sigma=result.sigma, ax=ax, title=f"snapshot {int(result.frames[index])}",
                           half_width=result.map.half_width if result.system.trap > 0 else None)
        elif panel == "weighted":
            plot_epr_map(result.map, form, "density_weighted", ax=ax, title=f"EPR density ({tag})")
        elif panel == "per_particle":
            plot_epr_map(result.map, form, "per_particle", ax=ax, title=f"EPR per particle ({tag})")
        elif panel == "current":
            plot_current(result.map, ax=ax, stride=max(1, (len(result.map.edges) - 1) // 24),
                         title="density and current ρ v_x")
        else:
            plot_radial_profile(result.radial, form, ax=ax, title=f"radial profile ({tag})")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    ident = result.identity.per_particle
    fig.suptitle(f"EPR per particle: {result.epr_per_particle[form]:.4g} ({tag});   learning-free identity: "
                 f"{ident:.4g}")
    if path is not None:
        save(fig, path)
    return fig
