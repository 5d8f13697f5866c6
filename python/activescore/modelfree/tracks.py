"""Tracked particles as the model-free estimators read them: positions (and, where observed, propulsion vectors or
orientation angles) per frame, aligned by particle id, with the frame spacing, the units and the geometry.

Importers: :func:`tracks_from_dataframe` (trackpy's columns ``frame``, ``particle``, ``x``, ``y``, optional
``angle``), :func:`tracks_from_csv` (the same columns in a CSV file), :func:`tracks_from_arrays` (NumPy arrays) and
:func:`tracks_from_trajectory` (a simulated :class:`~activescore.Trajectory`). Tracks may start and end: a particle
absent from a frame is marked in ``present`` and its entries are NaN.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _validate as check

#: The columns a trackpy DataFrame of linked trajectories has (``angle`` is optional).
TRACKPY_COLUMNS = ("frame", "particle", "x", "y")


@dataclass(frozen=True, eq=False)
class Tracks:
    """Positions of tracked particles in consecutive frames, aligned by particle id.

    Attributes
    ----------
    x : ndarray, shape (F, M, 2)
        Positions in ``length_unit`` (pixels already converted); NaN where the particle is absent.
    present : ndarray of bool, shape (F, M)
        Whether particle m was tracked in frame f.
    frame_interval : float
        Time between consecutive frame numbers, in ``time_unit``.
    frames : ndarray of int, shape (F,)
        The frame numbers, strictly increasing (a gap means frames that were not recorded).
    ids : ndarray, shape (M,)
        The particle ids (trackpy's ``particle``), or 0 … M−1.
    propulsion : ndarray, shape (F, M, 2), optional
        An observed propulsion vector (AOUP-like g), NaN where absent.
    angle : ndarray, shape (F, M), optional
        An observed orientation in radians (ABP-like θ), NaN where absent.
    box_length : float, optional
        Side of a periodic square box (displacements by the minimum image); None: open space.
    field_of_view : tuple of float, optional
        ``(xmin, xmax, ymin, ymax)`` of an open field of view: particles closer to its edge than the interaction
        cutoff may have unseen neighbours, so the estimators leave them out of the fit (they still count as
        neighbours). None: every neighbour is in the data (a periodic box, or a cloud that never reaches the edge).
    length_unit, time_unit : str
        Units of ``x`` and ``frame_interval`` (the EPR comes out in k_B per ``time_unit``).
    pixel_size : float
        ``length_unit`` per pixel of the source data (1 when the source was already in ``length_unit``).
    """

    x: np.ndarray = field(repr=False)
    present: np.ndarray = field(repr=False)
    frame_interval: float
    frames: np.ndarray = field(repr=False)
    ids: np.ndarray = field(repr=False)
    propulsion: np.ndarray | None = field(default=None, repr=False)
    angle: np.ndarray | None = field(default=None, repr=False)
    box_length: float | None = None
    field_of_view: tuple[float, float, float, float] | None = None
    length_unit: str = ""
    time_unit: str = ""
    pixel_size: float = 1.0

    @property
    def n_frames(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_tracks(self) -> int:
        return int(self.x.shape[1])

    @property
    def kind(self) -> str:
        """``"vector"`` (observed propulsion vector), ``"angle"`` (observed orientation) or ``"positions"``."""
        if self.propulsion is not None:
            return "vector"
        return "angle" if self.angle is not None else "positions"

    def __repr__(self) -> str:
        geometry = "open" if self.box_length is None else f"periodic L={self.box_length:g}"
        if self.field_of_view is not None:
            geometry += " field of view " + "×".join(
                f"{hi - lo:g}" for lo, hi in zip(self.field_of_view[::2], self.field_of_view[1::2], strict=True)
            )
        unit = f" {self.length_unit}" if self.length_unit else ""
        tunit = f" {self.time_unit}" if self.time_unit else ""
        return (
            f"Tracks({self.n_frames} frames, {self.n_tracks} tracks, {self.kind}, Δt={self.frame_interval:g}{tunit}, "
            f"{geometry}{unit}, mean {self.present.sum(axis=1).mean():.1f} particles per frame)"
        )


def _geometry(box_length, field_of_view):
    if box_length is not None:
        box_length = check.real("box_length", box_length, low=0.0, low_open=True)
        if field_of_view is not None:
            raise ValueError("give box_length (a periodic box) or field_of_view (an open window), not both")
    if field_of_view is not None:
        fov = tuple(float(v) for v in np.asarray(field_of_view, dtype=np.float64).ravel())
        if len(fov) != 4 or not all(math.isfinite(v) for v in fov) or fov[1] <= fov[0] or fov[3] <= fov[2]:
            raise ValueError(
                f"field_of_view must be (xmin, xmax, ymin, ymax) with xmin < xmax, ymin < ymax, got {field_of_view!r}"
            )
        field_of_view = fov
    return box_length, field_of_view


def tracks_from_arrays(
    x,
    *,
    frame_interval: float,
    propulsion=None,
    angle=None,
    present=None,
    frames=None,
    ids=None,
    box_length: float | None = None,
    field_of_view=None,
    pixel_size: float = 1.0,
    length_unit: str = "",
    time_unit: str = "",
) -> Tracks:
    """Tracks from NumPy arrays.

    Parameters
    ----------
    x : array_like, shape (F, M, 2)
        Positions in pixels (times ``pixel_size`` gives ``length_unit``); entries where ``present`` is False are
        ignored and may be NaN; every other NaN is an error naming its frame and particle.
    frame_interval : float
        Time between consecutive frame numbers (> 0).
    propulsion : array_like, shape (F, M, 2), optional
        Observed propulsion vectors (AOUP-like).
    angle : array_like, shape (F, M), optional
        Observed orientations in radians (ABP-like). At most one of ``propulsion`` and ``angle``.
    present : array_like of bool, shape (F, M), optional
        Which particles were tracked in each frame (default: all).
    frames : array_like of int, shape (F,), optional
        Frame numbers, strictly increasing (default 0 … F−1).
    ids : array_like, shape (M,), optional
        Particle ids (default 0 … M−1).
    box_length : float, optional
        Periodic square box side in ``length_unit`` (None: open).
    field_of_view : (xmin, xmax, ymin, ymax), optional
        An open field of view in ``length_unit`` (particles near its edge are left out of the fits).
    pixel_size : float
        ``length_unit`` per pixel (> 0).
    length_unit, time_unit : str
        Labels carried into the reports.

    Returns
    -------
    Tracks
    """
    frame_interval = check.real("frame_interval", frame_interval, low=0.0, low_open=True)
    pixel_size = check.real("pixel_size", pixel_size, low=0.0, low_open=True)
    x = check.array("x", x, (None, None, 2), finite=False)
    n_frames, n_tracks = x.shape[:2]
    if n_frames < 2:
        raise ValueError(f"x must hold at least 2 frames (a pair a frame interval apart), got {n_frames}")
    if n_tracks < 1:
        raise ValueError("x must hold at least 1 particle")
    if propulsion is not None and angle is not None:
        raise ValueError("give propulsion (AOUP-like vectors) or angle (ABP-like orientations), not both")
    present = _present(present, n_frames, n_tracks)
    x = x * pixel_size
    _check_finite("x", x, present)
    x[~present] = np.nan
    if propulsion is not None:
        propulsion = check.array("propulsion", propulsion, (n_frames, n_tracks, 2), finite=False)
        _check_finite("propulsion", propulsion, present)
        propulsion[~present] = np.nan
    if angle is not None:
        angle = check.array("angle", angle, (n_frames, n_tracks), finite=False)
        _check_finite("angle", angle, present)
        angle[~present] = np.nan
    frames, ids = _frames_and_ids(frames, ids, n_frames, n_tracks)
    box_length, field_of_view = _geometry(box_length, field_of_view)
    if box_length is not None:
        # Periodic data are analysed by the minimum image: wrap into the centred box as the simulator does.
        x = x - box_length * np.floor(x / box_length + 0.5)
    return Tracks(
        x,
        present,
        frame_interval,
        frames,
        ids,
        propulsion,
        angle,
        box_length,
        field_of_view,
        length_unit,
        time_unit,
        pixel_size,
    )


def _present(present, n_frames: int, n_tracks: int) -> np.ndarray:
    """The (F, M) bool mask, checked (default: every particle in every frame)."""
    if present is None:
        return np.ones((n_frames, n_tracks), dtype=bool)
    present = np.asarray(present)
    if present.shape != (n_frames, n_tracks) or present.dtype != bool:
        raise ValueError(
            f"present must be a bool array of shape {(n_frames, n_tracks)}, got {present.dtype} {present.shape}"
        )
    return present.copy()


def _frames_and_ids(frames, ids, n_frames: int, n_tracks: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame numbers (strictly increasing integers, default 0 … F−1) and distinct particle ids (default 0 … M−1)."""
    if frames is None:
        frames = np.arange(n_frames, dtype=np.int64)
    else:
        frames = np.asarray(frames)
        if frames.shape != (n_frames,) or not np.issubdtype(frames.dtype, np.integer):
            raise ValueError(f"frames must be {n_frames} integer frame numbers, got {frames.dtype} {frames.shape}")
        if np.any(np.diff(frames) <= 0):
            raise ValueError("frames must be strictly increasing")
        frames = frames.astype(np.int64)
    ids = np.arange(n_tracks) if ids is None else np.asarray(ids)
    if ids.shape != (n_tracks,):
        raise ValueError(f"ids must have shape ({n_tracks},), got {ids.shape}")
    if len(np.unique(ids)) != n_tracks:
        raise ValueError("ids must be distinct")
    return frames, ids


def _check_finite(name: str, values: np.ndarray, present: np.ndarray) -> None:
    bad = ~np.isfinite(values)
    if bad.ndim == 3:
        bad = bad.any(axis=2)
    bad &= present
    if bad.any():
        f, m = np.argwhere(bad)[0]
        raise ValueError(f"{name} is NaN or infinite in frame {f} for particle {m} ({int(bad.sum())} entries in all)")


def tracks_from_table(
    columns: Mapping[str, np.ndarray],
    *,
    frame_interval: float,
    pixel_size: float = 1.0,
    angle_unit: str = "rad",
    box_length: float | None = None,
    field_of_view=None,
    length_unit: str = "",
    time_unit: str = "",
    source: str = "table",
) -> Tracks:
    """Tracks from columns ``frame``, ``particle``, ``x``, ``y`` (optional ``angle``): one row per particle and
    frame, as trackpy links them. ``source`` names the input in error messages."""
    missing = [c for c in TRACKPY_COLUMNS if c not in columns]
    if missing:
        raise ValueError(
            f"{source} lacks column(s) {', '.join(map(repr, missing))} (needs frame, particle, x, y; optional angle)"
        )
    check.choice("angle_unit", angle_unit, {"rad", "deg"})
    frame = np.asarray(columns["frame"])
    particle = np.asarray(columns["particle"])
    n_rows = len(frame)
    if n_rows == 0:
        raise ValueError(f"{source} has no rows")
    if not np.issubdtype(frame.dtype, np.number) or not np.all(np.asarray(frame, dtype=np.float64) % 1 == 0):
        raise ValueError(f"{source} column 'frame' must hold integer frame numbers")
    frame = frame.astype(np.int64)
    xy = np.stack([np.asarray(columns["x"], dtype=np.float64), np.asarray(columns["y"], dtype=np.float64)], axis=1)
    bad = ~np.isfinite(xy).all(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            f"{source} has a NaN position in row {row} (frame {frame[row]}, particle {particle[row]}; "
            f"{int(bad.sum())} rows in all)"
        )
    frame_numbers, frame_index = np.unique(frame, return_inverse=True)
    ids, track_index = np.unique(particle, return_inverse=True)
    slot = frame_index * len(ids) + track_index
    order = np.sort(slot)
    repeated = order[1:][order[1:] == order[:-1]]
    if len(repeated):
        f, m = divmod(int(repeated[0]), len(ids))
        raise ValueError(f"{source}: particle id {ids[m]} appears more than once in frame {frame_numbers[f]}")
    shape = (len(frame_numbers), len(ids))
    x = np.full((*shape, 2), np.nan)
    x[frame_index, track_index] = xy
    present = np.zeros(shape, dtype=bool)
    present[frame_index, track_index] = True
    angle = None
    if "angle" in columns:
        values = np.asarray(columns["angle"], dtype=np.float64)
        if angle_unit == "deg":
            values = np.deg2rad(values)
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"{source} has a NaN angle in row {row} (frame {frame[row]}, particle {particle[row]})")
        angle = np.full(shape, np.nan)
        angle[frame_index, track_index] = values
    if len(frame_numbers) < 2:
        raise ValueError(f"{source} holds a single frame ({frame_numbers[0]}): need at least 2, a frame interval apart")
    return tracks_from_arrays(
        x,
        frame_interval=frame_interval,
        angle=angle,
        present=present,
        frames=frame_numbers,
        ids=ids,
        box_length=box_length,
        field_of_view=field_of_view,
        pixel_size=pixel_size,
        length_unit=length_unit,
        time_unit=time_unit,
    )


def tracks_from_dataframe(dataframe, *, frame_interval: float, **options) -> Tracks:
    """Tracks from a trackpy DataFrame (``trackpy.link`` output: columns ``frame``, ``particle``, ``x``, ``y``,
    optional ``angle``; other columns are ignored).

    Parameters
    ----------
    dataframe : pandas.DataFrame
        One row per particle and frame.
    frame_interval : float
        Time between consecutive frame numbers (> 0), in ``time_unit``.
    **options
        ``pixel_size`` (``length_unit`` per pixel, default 1), ``angle_unit`` ("rad" or "deg"), ``box_length``,
        ``field_of_view``, ``length_unit``, ``time_unit``: as for :func:`tracks_from_arrays`.

    Returns
    -------
    Tracks
        Positions converted to ``length_unit``; a frame number missing from the table is a gap (no pairs across
        it); a particle missing from a frame is absent there.
    """
    if not hasattr(dataframe, "columns"):
        raise ValueError(f"dataframe must be a pandas DataFrame, got {type(dataframe).__name__}")
    columns = {c: dataframe[c].to_numpy() for c in (*TRACKPY_COLUMNS, "angle") if c in dataframe.columns}
    return tracks_from_table(columns, frame_interval=frame_interval, source="the DataFrame", **options)


def tracks_from_csv(path, *, frame_interval: float, **options) -> Tracks:
    """Tracks from a CSV file with a header naming the columns ``frame``, ``particle``, ``x``, ``y`` (optional
    ``angle``), e.g. ``trackpy``'s DataFrame written by ``DataFrame.to_csv``. Options as for
    :func:`tracks_from_dataframe`."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    table: Any = np.genfromtxt(path, delimiter=",", names=True, dtype=np.float64, encoding="utf-8")
    if table.dtype.names is None:
        raise ValueError(f"{path} is not a CSV file with a header line")
    table = np.atleast_1d(table)
    names: tuple[str, ...] = table.dtype.names or ()
    columns = {str(name): np.asarray(table[str(name)]) for name in names}
    return tracks_from_table(columns, frame_interval=frame_interval, source=path, **options)


def tracks_from_trajectory(trajectory) -> Tracks:
    """Tracks of a simulated :class:`~activescore.Trajectory`: positions, the propulsion (g for AOUPs, θ for ABPs),
    the periodic box and the frame spacing (``dt`` × the steps between saved frames, which must be uniform)."""
    steps = np.asarray(trajectory.step, dtype=np.int64)
    if len(steps) < 2:
        raise ValueError(f"trajectory must hold at least 2 frames, got {len(steps)}")
    spacing = np.diff(steps)
    if np.any(spacing != spacing[0]) or spacing[0] <= 0:
        raise ValueError("trajectory frames must be saved at a uniform step spacing")
    system = trajectory.system
    theta = trajectory.theta
    return tracks_from_arrays(
        trajectory.x,
        frame_interval=float(trajectory.dt) * int(spacing[0]),
        propulsion=None if theta is not None else trajectory.g,
        angle=theta,
        frames=(steps - steps[0]) // spacing[0],
        box_length=system.box_length,
    )


def as_tracks(data) -> Tracks:
    """``data`` as :class:`Tracks` (a :class:`Tracks` is returned as is; a Trajectory is converted)."""
    if isinstance(data, Tracks):
        return data
    if hasattr(data, "system") and hasattr(data, "step") and hasattr(data, "x"):
        return tracks_from_trajectory(data)
    raise ValueError(
        f"tracks must be activescore Tracks (tracks_from_dataframe, tracks_from_arrays, tracks_from_csv) or a "
        f"Trajectory, got {type(data).__name__}"
    )
