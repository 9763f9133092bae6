"""The target host's replication NFC endpoint: NFC sessions on its vSphereReplicationNFC adapters.

The host's NfcServer (nfc/server.py) listens on the *provisioning* adapters
(PATH-2). Replication writes must arrive on the *vSphereReplicationNFC* adapters
(else management, PATH-4), so this second endpoint listens with
traffic.sockets.listen(dc, lab, host, REPLICATION_NFC, 902) and serves the same
NFC protocol: it is an NfcServer with the REPLICATION_NFC service. When an
address is already bound on 902 (both services fell back to vmk0 and the host's
NfcServer runs there), that server speaks the same protocol on the same adapter,
so the endpoint shares it instead of failing (`shared`).
"""

from __future__ import annotations

import errno

from ..errors import DataplaneError
from ..model import Datacenter, Service
from ..nfc.files import Datastores
from ..nfc.protocol import PORT
from ..nfc.server import NfcServer
from ..traffic.place import LabRef


class ReplicaNfc(NfcServer):
    def __init__(self, dc: Datacenter, lab: LabRef, host: str, stores: Datastores,
                 port: int = PORT) -> None:
        super().__init__(dc, lab, host, stores, port, service=Service.REPLICATION_NFC)
        self.shared = False

    def start(self) -> ReplicaNfc:
        try:
            super().start()
        except DataplaneError as err:
            if err.details.get("errno") != errno.EADDRINUSE:
                raise
            self.shared = True  # the host's NfcServer already serves this adapter on 902
        return self

    def __enter__(self) -> ReplicaNfc:
        return self.start()
