"""`vm create --disk` refusals: one line with a code, before any lab is looked at."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from vmknet.cli.main import main


@pytest.mark.parametrize(("args", "expected"), [
    (["--disk", "[nfs01] ../../etc/passwd.vmdk", "--disk-size", "1GiB"],
     "Error [InvalidArgument]: Disk '[nfs01] ../../etc/passwd.vmdk': the path is DIR/FILE.vmdk"),
    (["--disk", "[nfs01]"], "Error [InvalidArgument]: Disk '[nfs01]': give --disk-size"),
    (["--disk", "/vmfs/devices/disks/naa.6zz"],
     "Error [InvalidArgument]: Disk '/vmfs/devices/disks/naa.6zz': a raw LUN is"),
    (["--disk", "[nfs01]", "--disk-size", "1000000000TiB"],
     "Error [InvalidArgument]: --disk-size '1000000000TiB': at most"),
])
def test_bad_disks_are_refused_in_one_line(tmp_path: Path, args: list[str],
                                           expected: str) -> None:
    result = CliRunner().invoke(main, ["--store", str(tmp_path / "s.db"), "vm", "create",
                                       "web01", "-H", "esx01", *args])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), result.output
    assert "Traceback" not in result.output


def test_disk_size_needs_a_disk_path(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--store", str(tmp_path / "s.db"), "vm", "create",
                                       "web01", "-H", "esx01", "--disk-size", "1GiB"])
    assert result.exit_code == 2 and "--disk-size goes with --disk" in result.output
