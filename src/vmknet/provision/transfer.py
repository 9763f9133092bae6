"""Copy a VM's files to another host's datastore over NFC (the provisioning adapters).

The files land in a staging directory `.<vm>.incoming/` beside their final place and
are renamed into `<vm>/` only once every file is verified (nfc.copy_file verifies each
block): a failed copy leaves nothing but a removed staging directory, and the source is
only ever opened read-only. An NFC server runs on the target for the duration, on its
provisioning adapters, unless the host already runs one: in a lab with a controller the
target host's agent starts it as its child (`process.start` kind `nfc`) and stops it at
the end; a lab without one (or a caller that wants the server object: `hook`, fault
drills) runs it in this process, as threads.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from ..controller.client import ControllerClient
from ..errors import AlreadyExists, DataplaneError, InvalidArgument, VmknetError
from ..model import Datacenter, Service
from ..nfc import CopyReport, Datastores, NfcServer, copy_file
from ..nfc import registry as nfc_registry
from ..nfc.files import data_ranges
from ..processes import alive
from ..resolve import resolve
from ..supervise.records import read_json
from ..supervise.scan import find
from ..supervise.start import stop
from ..vm.manage import START_TIMEOUT, via_controller
from .layout import Vmx
from .placement import Placement

Progress = Callable[[int, int, str], None]  # (data bytes done, data bytes in all, file)
ServerHook = Callable[[NfcServer], None]  # sees the target's server (fault drills, tests)


def staging_name(vm: str) -> str:
    return f".{vm}.incoming"


def _running_server(lab: str, host: str) -> bool:
    """Whether `host` runs an NFC server process (its record names a live pid)."""
    pid = read_json(nfc_registry.record_path(lab, host)).get("pid")
    return isinstance(pid, int) and alive(pid)


@contextlib.contextmanager
def target_server(dc: Datacenter, lab: str, host: str, stores: Datastores,
                  hook: ServerHook | None = None) -> Iterator[None]:
    """An NFC server on `host` for the time of the copy (SPEC 10: TCP 902, provisioning)."""
    if hook is None and via_controller(dc, lab):
        with _agent_server(lab, host, stores):
            yield
        return
    server = NfcServer(dc, lab, host, stores)
    try:
        server.start()
    except (OSError, DataplaneError):
        # The host runs its own server process (python -m vmknet.nfc.server): use it.
        if not nfc_registry.record_path(lab, host).exists():
            raise
        yield
        return
    try:
        if hook is not None:
            hook(server)
        yield
    finally:
        server.stop()


@contextlib.contextmanager
def _agent_server(lab: str, host: str, stores: Datastores) -> Iterator[None]:
    """The target host's agent runs the NFC server as its child for the copy's duration."""
    if _running_server(lab, host):
        yield  # the host runs one already (started by its agent or by hand): use it
        return
    client = ControllerClient(lab, START_TIMEOUT)
    got = client.call("process.start", {"host": host, "kind": "nfc", "name": host,
                                        "args": {"base": str(Path(stores.base).resolve())}})
    try:
        yield
    finally:
        # The copy is over, or failed: the server goes. An agent killed meanwhile cannot
        # stop it; it was started for this copy alone, so the copy ends it itself rather
        # than leave it to outlive the copy (a restarted agent would adopt it for good).
        try:
            client.call("process.stop", {"host": host, "kind": "nfc", "name": host})
        except VmknetError:
            stop([r for r in find(lab, host, "nfc") if r.pid == got.get("pid")])


def _data_sizes(folder: Path, files: list[str]) -> dict[str, int]:
    out = {}
    for name in files:
        fd = os.open(folder / name, os.O_RDONLY)
        try:
            out[name] = sum(n for _, n in data_ranges(fd, os.fstat(fd).st_size))
        finally:
            os.close(fd)
    return out


def copy_vm(dc: Datacenter, src: Placement, vmx: Vmx, target: str, datastore: str, *,
            mapping: dict[str, str] | None = None, progress: Progress | None = None,
            resume: bool = True, bandwidth_limit: float | None = None,
            server_hook: ServerHook | None = None) -> tuple[list[CopyReport], Path, Path]:
    """Every file of the VM into `<target>:[datastore] .<new>.incoming/`.

    Returns the copy reports, the staging directory and the final directory (not yet
    there: the caller renames when the rest of its operation succeeded). NoPath before
    anything is created; on any failure the staging directory is removed."""
    if target not in dc.hosts:
        raise InvalidArgument(f"Host {target} is not in the inventory", host=target)
    resolve(dc, Service.PROVISIONING, src.host, target)  # PATH-2: NoPath, nothing made yet
    mapping = mapping or {f: f for f in vmx.files()}
    new = mapping[vmx.vmx_file][: -len(".vmx")]
    stores = Datastores(Path(src.base))
    src_dir = stores.root(src.lab, src.host, src.datastore) / src.vm
    dst_root = stores.create(src.lab, target, datastore)
    final, staging = dst_root / new, dst_root / staging_name(new)
    if final.exists():
        raise AlreadyExists(f"{target}:[{datastore}] {new}/ already exists", vm=new)
    shutil.rmtree(staging, ignore_errors=True)  # a crashed earlier attempt's leftovers
    files = vmx.files()
    sizes = _data_sizes(src_dir, files)
    total, done = sum(sizes.values()), 0
    reports: list[CopyReport] = []
    try:
        with target_server(dc, src.lab, target, stores, server_hook):
            for name in files:
                def each(d: int, _t: int, name: str = name, base: int = done) -> None:
                    if progress is not None:
                        progress(base + d, total, name)

                reports.append(copy_file(
                    dc, src.lab, src.host, src.datastore, f"{src.vm}/{name}", target,
                    datastore, f"{staging.name}/{mapping[name]}", progress=each,
                    resume=resume, bandwidth_limit=bandwidth_limit, stores=stores))
                done += sizes[name]
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return reports, staging, final


def commit(staging: Path, final: Path) -> None:
    """The VM appears at the target in one step (rename of its directory)."""
    os.rename(staging, final)
