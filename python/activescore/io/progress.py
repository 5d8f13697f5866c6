"""The one progress bar of the package: tqdm when shown and there is work to show, else a silent stand-in."""

from __future__ import annotations


class SilentBar:
    """Accepts what a tqdm bar accepts and prints nothing."""

    def __init__(self, total: int = 0, initial: int = 0):
        self.total, self.n = total, initial

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def progress_bar(show: bool, total: int, *, desc: str, unit: str, initial: int = 0):
    """A bar counting ``unit`` from ``initial`` to ``total`` (use as a context manager or close it).

    Nothing is printed when ``show`` is false or nothing is left to do (``initial >= total``).
    """
    if not show or initial >= total:
        return SilentBar(total, initial)
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True)
