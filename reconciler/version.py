"""mscsctl's version, as the installed package's metadata says (pyproject.toml's `version`).

One place for it: `mscsctl --version` prints it, and anything else that names the version
reads it from here.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

PACKAGE = "mscsctl"


def mscsctl_version() -> str:
    """The installed version, or `unknown` when run from a tree that was never installed."""
    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return "unknown"
