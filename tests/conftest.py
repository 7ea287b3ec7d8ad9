"""Shared fixtures: the simulated vCenter lab (tests/lab, see tests/lab/README.md).

Fixtures
--------
``lab``            a fresh server on the default lab (tests/lab/labs/default.yaml), per test.
``lab_factory``    ``lab_factory(lab=None, *, faults=(), fleet=None, extra_args=())`` starts a server on a
                   lab file path, on YAML text (written to tmp_path), on a dict, or on the
                   default lab (``None``); ``fleet=N`` adds N generated clusters; ``extra_args``
                   more lab flags (``("--wine", "off")``). Per test.
``lab_readonly``   one default-lab server per test module, for tests that only read.
``lab_wine_cache`` the directory every lab of this test session keeps its guests' template
                   Wine prefix in (built once, at the first guest operation of the session);
                   $MSCSCTL_LAB_WINE_CACHE instead, when set, is kept after the session.
``lab_wine``       the Wine the lab runs guest programs with; tests that need it skip
                   without Wine, except under ``CI=true`` where they fail.

Each returns a ``labctl.Lab``: ``url``, ``host``, ``port``, ``ca_file``, ``username``,
``password``, ``run_dir``, ``env()``, ``connect()``, ``inject_fault(...)``,
``end_sessions()``, ``calls()``, ``faults()``, ``clear_faults()``, and for the guests
``guest()``, ``guest_reg()``, ``guest_disk_timeout()``, ``guest_temp_files()``. Servers stop
with SIGTERM at teardown (their Wine processes with them).

Tests that use them are marked ``lab`` automatically. Without Go the lab tests
skip, except under ``CI=true`` where a missing Go (or any failed build) fails them.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import labctl

LAB_FIXTURES = {"lab", "lab_factory", "lab_readonly", "lab_binary"}
# Where the lab looks for Wine (tests/lab/wine.go): on PATH, then the library directories.
WINE_CANDIDATES = ("wine64", "wine", "/usr/lib/wine/wine64", "/usr/lib64/wine/wine64")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if LAB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session")
def lab_binary() -> Path:
    """The lab server binary, built once per test session (cached in tests/lab/bin/)."""
    try:
        return labctl.build()
    except labctl.LabUnavailable as e:
        if _in_ci():
            pytest.fail(f"{e} (CI=true: the lab is required)", pytrace=False)
        pytest.skip(str(e))
    except labctl.LabBuildError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def lab_wine_cache() -> Iterator[Path]:
    """One template Wine prefix for every lab of the session (about 700 MB, removed at the end)."""
    kept = os.environ.get("MSCSCTL_LAB_WINE_CACHE")
    if kept:
        yield Path(kept)
        return
    cache = Path(tempfile.mkdtemp(prefix="mscsctl-wine-cache-"))
    try:
        yield cache
    finally:
        shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture(scope="session")
def lab_wine() -> str:
    """The wine64 the lab will find, for tests of guest operations that need it."""
    chosen = os.environ.get("MSCSCTL_LAB_WINE")  # the lab's own default for --wine
    for candidate in (chosen,) if chosen else WINE_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    message = "Wine not found (wine64/wine on PATH, /usr/lib/wine/wine64): the lab cannot play guests"
    if _in_ci():
        pytest.fail(f"{message} (CI=true: Wine is required)", pytrace=False)
    pytest.skip(message)


def _lab_file(spec: str | os.PathLike[str] | Mapping[str, Any] | None, tmp: Path, n: int) -> Path | None:
    if spec is None:
        return labctl.DEFAULT_LAB
    if isinstance(spec, Mapping):
        import yaml

        path = tmp / f"lab-{n}.yaml"
        path.write_text(yaml.safe_dump(dict(spec), sort_keys=False))
        return path
    if isinstance(spec, os.PathLike) or ("\n" not in spec and Path(spec).is_file()):
        return Path(spec)
    path = tmp / f"lab-{n}.yaml"
    path.write_text(str(spec))
    return path


LabFactory = Callable[..., labctl.Lab]


@pytest.fixture
def lab_factory(lab_binary: Path, tmp_path: Path, lab_wine_cache: Path) -> Iterator[LabFactory]:
    started: list[labctl.Lab] = []

    def make(
        lab: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        *,
        faults: tuple[str | Mapping[str, Any], ...] | list[str | Mapping[str, Any]] = (),
        fleet: int | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> labctl.Lab:
        n = len(started) + 1
        lab_file = None if (lab is None and fleet) else _lab_file(lab, tmp_path, n)
        server = labctl.start(
            lab_file,
            tmp_path / f"run-{n}",
            fleet=fleet,
            faults=faults,
            binary=lab_binary,
            wine_cache=lab_wine_cache,
            extra_args=extra_args,
        )
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def lab(lab_factory: LabFactory) -> labctl.Lab:
    """A fresh default lab server for this test."""
    return lab_factory()


@pytest.fixture(scope="module")
def lab_readonly(
    lab_binary: Path, tmp_path_factory: pytest.TempPathFactory, lab_wine_cache: Path
) -> Iterator[labctl.Lab]:
    """One default lab server shared by the tests of a module: do not change it."""
    server = labctl.start(
        labctl.DEFAULT_LAB, tmp_path_factory.mktemp("lab-ro"), binary=lab_binary, wine_cache=lab_wine_cache
    )
    try:
        yield server
    finally:
        server.stop()
