"""NFC: the provisioning file service (TCP 902) and its copy engine (docs/nfc.md).

    with NfcServer(dc, lab, "esx02", stores):       # or python -m vmknet.nfc.server
        report = copy_file(dc, lab, "esx01", "ds1", "vm/disk.vmdk",
                           "esx02", "ds1", "vm/disk.vmdk", stores=stores)

Cold migration, cloning, snapshots and replication build on copy_file/copy_tree.
"""

from .copy import copy_file, copy_tree
from .files import Datastores
from .protocol import Code, NfcError, Op
from .report import CopyReport, FlowUsed
from .server import PORT, NfcServer

__all__ = ["PORT", "Code", "CopyReport", "Datastores", "FlowUsed", "NfcError", "NfcServer",
           "Op", "copy_file", "copy_tree"]
