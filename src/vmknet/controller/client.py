"""The CLI's side of the controller's local door (`api.sock`)."""

from __future__ import annotations

import socket
from typing import Any

from ..errors import VmknetError
from ..mgmt import paths, wire

TIMEOUT = 30.0


class ControllerClient:
    def __init__(self, lab: str, timeout: float = TIMEOUT) -> None:
        self.lab = lab
        self.timeout = timeout
        self._next = 0

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        path = paths.api_socket(self.lab)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            try:
                sock.connect(str(path))
            except OSError as err:
                raise VmknetError(f"The controller of lab {self.lab} is not running ({path}: "
                                  f"{err.strerror}): run 'vmknet lab up' or 'vmknet lab "
                                  "status --repair'", code="ControllerNotRunning") from err
            self._next += 1
            try:
                return wire.call(sock, method, params, self._next)
            except OSError as err:  # the controller died or closed mid-call
                raise VmknetError(f"Lost the controller of lab {self.lab} during {method}: "
                                  f"{err.strerror or err}", code="ControllerNotRunning") from err
        finally:
            sock.close()

    def running(self) -> bool:
        try:
            self.call("ping")
        except VmknetError:
            return False
        return True

    def host_status(self) -> list[dict[str, Any]]:
        rows = self.call("hosts")
        return list(rows) if isinstance(rows, list) else []
