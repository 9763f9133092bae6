"""NFC: the provisioning file service (TCP 902) and its copy engine (docs/nfc.md).

    with NfcServer(dc, lab, "esx02", stores):       # or python -m vmknet.nfc.server
        report = copy_file(dc, lab, "esx01", "ds1", "vm/disk.vmdk",
                           "esx02", "ds1", "vm/disk.vmdk", stores=stores)

Cold migration, cloning, snapshots and replication build on copy_file/copy_tree.
"""

from typing import TYPE_CHECKING, Any

from .copy import copy_file, copy_tree
from .files import Datastores
from .protocol import PORT, Code, NfcError, Op
from .report import CopyReport, FlowUsed

if TYPE_CHECKING:
    from .server import NfcServer


def __getattr__(name: str) -> Any:
    # Imported on first use: `python -m vmknet.nfc.server` must not find its module
    # already loaded by this package (runpy warns, and the module would run twice).
    if name == "NfcServer":
        from .server import NfcServer

        return NfcServer
    raise AttributeError(name)


__all__ = ["PORT", "Code", "CopyReport", "Datastores", "FlowUsed", "NfcError", "NfcServer",
           "Op", "copy_file", "copy_tree"]
