"""Bounded parsing: a hostile desired-state file is refused quickly and in little memory;
sizes on the command line are checked against maxima before anything is allocated."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from vmknet.errors import FileFormatError, InvalidArgument
from vmknet.state import limits, load_file, loads
from vmknet.vm.units import MAX_DISK, MAX_MEMORY, parse_rate, parse_size

EXAMPLES = Path(__file__).parents[2] / "examples"


def bomb(levels: int = 9, width: int = 10, field: str = "dnsServers") -> str:
    """Nested aliases under an address field: width**levels addresses once expanded."""
    lines = ["x-bomb:", f"  a0: &a0 [{', '.join(['198.18.0.1'] * width)}]"]
    for i in range(1, levels + 1):
        lines.append(f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    lines += ["hosts:", "  esx01:", "    netstacks:", "      defaultTcpipStack:",
              f"        {field}: *a{levels}"]
    return "\n".join(lines) + "\n"


def refused_quickly(load: Callable[[], object]) -> FileFormatError:
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(FileFormatError) as err:
            load()
    finally:
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert seconds < 1.0 and peak < 100 * 2**20, (seconds, peak)
    assert err.value.code == "InvalidArgument" and "\n" not in str(err.value)
    return err.value


@pytest.mark.parametrize("field", ["dnsServers", "searchDomains", "routes"])
def test_alias_bomb_is_refused_at_its_line(field: str) -> None:
    err = refused_quickly(lambda: loads(bomb(field=field), "bomb.yaml"))
    assert "aliases expand to more than" in str(err) and err.details["line"] is not None


def test_a_bomb_with_a_duplicate_key_first_is_refused_too() -> None:
    text = "hosts:\n  esx01: {}\n  esx01: {}\n" + bomb().replace("hosts:", "other:")
    refused_quickly(lambda: loads(text))


@pytest.mark.parametrize("text", [
    "hosts: " + "[" * 5000 + "]" * 5000,
    "hosts:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(300)),
    "hosts: &a " + "{a: " * 200 + "1" + "}" * 200,
    "hosts:\n  esx01: {}\n  esx01: {}\nx: " + "[" * 3000 + "]" * 3000,
], ids=["flow", "block", "anchored", "after-a-duplicate"])
def test_deep_nesting_is_refused(text: str) -> None:
    err = refused_quickly(lambda: loads(text))
    assert "nest" in str(err)


def test_too_large_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"hosts: {}\n" + b"#" * limits.MAX_BYTES)
    err = refused_quickly(lambda: load_file(big))
    assert "file too large" in str(err)
    refused_quickly(lambda: loads("#" * (limits.MAX_BYTES + 1)))


def test_endless_device_is_refused() -> None:
    refused_quickly(lambda: load_file("/dev/zero"))


def test_ordinary_anchors_and_nesting_still_load() -> None:
    dc = load_file(EXAMPLES / "datacenter.yaml")  # shares `nics: &nics` between hosts
    assert len(dc.hosts) == 3
    small = bomb(levels=2, width=10)  # 1,000 addresses: far below the limit
    with pytest.raises(FileFormatError) as err:  # refused by the schema, not by the limit
        loads(small)
    assert "aliases" not in str(err.value)
    nested = "hosts:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(40))
    with pytest.raises(FileFormatError, match=r"Invalid host name|unknown field"):
        loads(nested)


@pytest.mark.parametrize(("text", "kwargs", "message"), [
    ("1000000000TiB", {"maximum": MAX_DISK, "what": "--disk"}, "--disk '1000000000TiB': at most"),
    ("9" * 60 + "GiB", {"maximum": MAX_MEMORY}, "at most"),
    ("9" * 400 + "GiB", {"maximum": MAX_MEMORY}, "use a number"),
    ("65GiB", {"maximum": MAX_MEMORY, "what": "--memory"}, "at most 64.0 GiB"),
    ("0", {"minimum": 4096}, "at least"),
    ("x" * 10000, {}, "use a number"),
    ("-1GiB", {}, "use a number"),
    ("1e9GiB", {}, "use a number"),
])
def test_sizes_have_maxima(text: str, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(")) as err:
        parse_size(text, **kwargs)  # type: ignore[arg-type]
    assert len(str(err.value)) < 200


def test_rates_have_maxima_and_zero_only_where_allowed() -> None:
    assert parse_rate("0", minimum=0) == 0 and parse_rate("50MB/s") == 50_000_000
    for bad in ("0", "1000000TB/s", "inf"):
        with pytest.raises(InvalidArgument):
            parse_rate(bad)
