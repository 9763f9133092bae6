"""Fixtures for the kernel tests: a unique namespace prefix per test, and a leak check.

Run as root with plain pytest. Every test gets ``vmkl-t<pid>-<n>.`` and a
`LinuxBackend`; its namespaces are removed with ``cleanup(prefix)`` after the
test. At the end of the session the run FAILS if any ``vmkl-t<pid>-*``
namespace or /etc/netns dir of this process is left (per process, so it works
under pytest-xdist; leftovers of a dead earlier run are removed with a
warning), if the root namespace gained or lost a link, or if the test
process still holds a namespace open (which would keep a "deleted"
namespace and its links alive).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import warnings
from collections.abc import Iterator

import pytest

from vmknet.dataplane.linux import LinuxBackend
from vmknet.dataplane.linux.netns import ETC_NETNS, NETNS_DIR

TEST_PREFIX = "vmkl-t"
OWN_PREFIX = f"{TEST_PREFIX}{os.getpid()}-"  # this process (one xdist worker): its own leaks
_counter = itertools.count()

if os.geteuid() != 0:  # pragma: no cover - the kernel suite needs root
    pytest.skip("kernel tests need root", allow_module_level=True)


def _namespaces(start: str = OWN_PREFIX) -> set[str]:
    names = set(os.listdir(NETNS_DIR)) if os.path.isdir(NETNS_DIR) else set()
    return {n for n in names if n.startswith(start)}


def _etc_dirs(start: str = OWN_PREFIX) -> set[str]:
    names = set(os.listdir(ETC_NETNS)) if os.path.isdir(ETC_NETNS) else set()
    return {n for n in names if n.startswith(start)}


def _dead_leftovers() -> set[str]:
    """vmkl-t<pid>... of test processes that are gone (an earlier, killed run)."""
    out = set()
    for name in _namespaces(TEST_PREFIX) | _etc_dirs(TEST_PREFIX):
        pid = "".join(itertools.takewhile(str.isdigit, name[len(TEST_PREFIX):]))
        if not pid or not os.path.exists(f"/proc/{pid}"):
            out.add(name)
    return out


def _root_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                         check=True, timeout=10).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def _held_namespaces() -> set[str]:
    """Namespace inodes this process holds through open fds (sockets do not show here)."""
    held = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("net:["):
            held.add(target)
    return held


def leaks(root_before: set[str], held_before: set[str]) -> list[str]:
    found = [f"namespace {n}" for n in sorted(_namespaces())]
    found += [f"{ETC_NETNS}/{n}" for n in sorted(_etc_dirs())]
    root_now = _root_links()
    found += [f"root namespace link {n} appeared" for n in sorted(root_now - root_before)]
    found += [f"root namespace link {n} vanished" for n in sorted(root_before - root_now)]
    found += [f"open namespace fd {h}" for h in sorted(_held_namespaces() - held_before)]
    return found


@pytest.fixture(scope="session", autouse=True)
def leak_check() -> Iterator[None]:
    """Fails the session (an error at teardown) if the tests left anything behind."""
    stale = _dead_leftovers()
    if stale:  # a killed earlier run: remove, and say so
        for name in sorted({n.split(".")[0] + "." for n in stale}):
            LinuxBackend().cleanup(name)
        warnings.warn(f"removed leftovers of an earlier run: {sorted(stale)}", stacklevel=1)
    root_before, held_before = _root_links(), _held_namespaces()
    yield
    found = leaks(root_before, held_before)
    if found:
        LinuxBackend().cleanup(OWN_PREFIX)  # leave the machine clean, but still fail
        pytest.fail("kernel tests leaked: " + "; ".join(found))


@pytest.fixture
def prefix() -> str:
    return f"{OWN_PREFIX}{next(_counter)}."


@pytest.fixture
def backend(prefix: str) -> Iterator[LinuxBackend]:
    be = LinuxBackend()
    yield be
    be.cleanup(prefix)  # "no such namespace" races are ignored inside cleanup


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Backstop: a namespace that survived every fixture fails the run, too."""
    left = sorted(_namespaces() | _etc_dirs())
    if left:
        LinuxBackend().cleanup(OWN_PREFIX)
        print(f"\nkernel tests leaked (removed now): {left}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
