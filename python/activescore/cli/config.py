"""The command line's configuration is :mod:`activescore.config` (the schema, TOML reading, coercion and
validation of every section): its names, kept here for code that imports them from ``activescore.cli.config``."""

from ..config import *  # noqa: F403
from ..config import __all__  # noqa: F401
