"""What `lab up` says about issue 10's storage that it cannot realise (pure)."""

from __future__ import annotations

from pathlib import Path

from vmknet.lab.lifecycle import fcoe_note
from vmknet.model import FcoeAdapter
from vmknet.state import load_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "storage-lab.yaml"


def test_software_fcoe_is_named_in_one_line_as_modelled_not_realised() -> None:
    dc = load_file(EXAMPLE)
    assert fcoe_note(dc) is None  # no FCoE declared: nothing to say
    dc.hosts["esx01"].storage.fcoe.append(FcoeAdapter(vmknic="vmk5", vmnic="vmnic2"))
    dc.hosts["esx02"].storage.fcoe.append(FcoeAdapter(vmknic="vmk5", vmnic="vmnic3"))
    note = fcoe_note(dc)
    assert note is not None and "\n" not in note
    assert note.startswith("FCoE: esx01 vmk5/vmnic2, esx02 vmk5/vmnic3 modelled and linted "
                           "(STO-3), not realised")
