"""The one process model's pure parts: records, the atomic writer, the kinds table, parsing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmknet.controller import processes as relay
from vmknet.errors import InvalidArgument
from vmknet.lab.registry import RUN_DIR_ENV
from vmknet.model import Datacenter, Service
from vmknet.state import load_file
from vmknet.supervise import kinds, records, scan
from vmknet.supervise.records import ProcessRecord

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"
TICKET = "0123456789abcdef" * 2
VMOTION = [{"stack": "vmotion", "address": "198.18.4.12"},
           {"stack": "vmotion", "address": "198.18.4.22"}]
MGMT = [{"stack": "defaultTcpipStack", "address": "2001:db8:0:10::12"}]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path))
    return tmp_path


def test_record_round_trip_and_remove_only_own_pid(run: Path) -> None:
    rec = ProcessRecord("vm", "web01", "esx01", "h10", 4242, 1.5, records.VMX, "/x.log")
    path = records.save(rec)
    assert path == run / "labs" / "h10" / "processes" / "vm-web01.json"
    assert records.load("h10", "vm", "web01") == rec
    assert records.saved("h10") == [rec]
    other = ProcessRecord("vm", "web01", "esx02", "h10", 4343, 2.0, records.VMX)
    records.remove(other)  # the file names 4242: not this one's to remove
    assert records.load("h10", "vm", "web01") == rec
    records.remove(rec)
    assert records.load("h10", "vm", "web01") is None and records.saved("h10") == []


def test_record_names_stay_inside(run: Path) -> None:
    with pytest.raises(InvalidArgument):
        records.record_path("h10", "vm", "../../etc")
    with pytest.raises(InvalidArgument):
        records.registry_dir("..")


def test_write_json_is_atomic_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b.json"
    records.write_json(path, {"x": 1})
    records.write_json(path, {"x": 2}, indent=1, mode=0o600)
    assert records.read_json(path) == {"x": 2}
    assert os.stat(path).st_mode & 0o777 == 0o600 & ~_umask()
    assert [p.name for p in path.parent.iterdir()] == ["b.json"]
    with pytest.raises(TypeError):
        records.write_json(path, {"x": object()})  # a failed dump keeps the old file
    assert records.read_json(path) == {"x": 2}
    assert [p.name for p in path.parent.iterdir()] == ["b.json"]
    assert records.read_json(tmp_path / "missing.json") == {}


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_vm_command_from_the_table() -> None:
    module, argv = kinds.command("vm", "web01", {"memory": 4096, "dirtyRate": 10}, "h10",
                                 "esx01")
    assert module == "vmknet.vm.vmx"
    assert argv == ["run", "--lab=h10", "--name=web01", "--host=esx01", "--memory=4096",
                    "--dirty-rate=10", "--seed=1"]
    module, argv = kinds.command("nfc", "esx02", {"base": "/tmp/ds"}, "h10", "esx02")
    assert (module, argv) == ("vmknet.nfc.server", ["--lab=h10", "--host=esx02",
                                                    "--base=/tmp/ds"])


def test_incoming_command_and_its_sockets() -> None:
    args = {"ticket": TICKET, "vmotion": VMOTION, "management": MGMT, "vmotionPort": 8100}
    module, argv = kinds.command("incoming", "web01", args, "h10", "esx02")
    # The listeners never become argv: the agent opens them and passes their fds.
    assert (module, argv) == ("vmknet.vm.vmx", ["incoming", "--lab=h10", "--name=web01",
                                                "--host=esx02", f"--ticket={TICKET}"])
    assert kinds.sockets("incoming", args) == [
        kinds.Listen("vm-fds", "vmotion", "198.18.4.12", 8100),
        kinds.Listen("vm-fds", "vmotion", "198.18.4.22", 8100),
        kinds.Listen("mgmt-fds", "defaultTcpipStack", "2001:db8:0:10::12", 8001)]
    assert kinds.sockets("vm", {"memory": 1}) == []


def _incoming(**change: object) -> dict[str, object]:
    return {"ticket": TICKET, "vmotion": VMOTION, "management": MGMT} | change


@pytest.mark.parametrize(("kind", "name", "args"), [
    ("shell", "x", {}),  # not a kind of the table
    ("incoming", "web01", {}),  # the ticket and the listeners are required
    ("incoming", "web01", _incoming(ticket="0123")),  # not a ticket id
    ("incoming", "web01", _incoming(ticket=TICKET.upper())),
    ("incoming", "web01", _incoming(ticket=TICKET + " --lab=x")),
    ("incoming", "web01", _incoming(vmotion=[])),
    ("incoming", "web01", _incoming(vmotion=VMOTION * 9)),  # more than 16 listeners
    ("incoming", "web01", _incoming(vmotion=[{"stack": "vmotion"}])),
    ("incoming", "web01", _incoming(vmotion=[{"stack": "../x", "address": "198.18.4.12"}])),
    ("incoming", "web01", _incoming(vmotion=[{"stack": "vmotion", "address": "esx01"}])),
    ("incoming", "web01", _incoming(vmotion=[{"stack": "vmotion", "address": "198.18.4.12",
                                              "ns": "vmkl-other.esx01.vmotion"}])),
    ("incoming", "web01", _incoming(management="198.18.0.12")),
    ("incoming", "web01", _incoming(vmotionPort=0)),
    ("incoming", "web01", _incoming(controlPort=65536)),
    ("incoming", "web01", _incoming(argv=["--vm-fds=0"])),
    ("incoming", "-x", _incoming()),
    ("replication", "web01", {}),
    ("vm", "web01", {}),  # memory is required
    ("vm", "web01", {"memory": 0}),
    ("vm", "web01", {"memory": True}),
    ("vm", "web01", {"memory": "4096"}),
    ("vm", "web01", {"memory": 4096, "argv": ["sh"]}),
    ("vm", "web01", {"memory": 4096, "dirtyRate": -1}),
    ("vm", "../x", {"memory": 4096}),
    ("vm", "--lab=other", {"memory": 4096}),
    ("vm", "web01", ["--memory=1"]),
    ("nfc", "esx01", {}),  # another host's server
    ("nfc", "esx02", {"base": "relative"}),
    ("nfc", "esx02", {"base": "/a/../etc"}),
    ("nfc", "esx02", {"port": 70000}),
    (None, "web01", {}),
])
def test_refused_outside_the_table(kind: object, name: object, args: object) -> None:
    with pytest.raises(InvalidArgument):
        kinds.command(kind, name, args, "h10", "esx02")


@given(st.dictionaries(st.text(max_size=12), st.integers() | st.text(max_size=12),
                       max_size=4))
def test_any_argv_is_flags_of_the_table(args: dict[str, object]) -> None:
    """Whatever a request carries, the argv holds only the table's flags with checked values."""
    try:
        _, argv = kinds.command("vm", "web01", {"memory": 1, **args}, "h10", "esx01")
    except InvalidArgument:
        return
    flags = {a.split("=", 1)[0] for a in argv[1:]}
    assert argv[0] == "run" and flags <= {"--lab", "--name", "--host", "--memory",
                                          "--dirty-rate", "--seed"}
    assert all(a.split("=", 1)[1].lstrip("-").isdigit() for a in argv if a.startswith(
        ("--memory", "--dirty-rate", "--seed")))


def test_parse_command_lines() -> None:
    vm = ["python", "-m", "vmknet.vm.vmx", "run", "--lab=h10", "--name=web01", "--host=esx01"]
    assert scan.parse(7, vm, "h10") is not None
    rec = scan.parse(7, vm, "h10")
    assert rec is not None and (rec.kind, rec.name, rec.host) == ("vm", "web01", "esx01")
    inc = [*vm[:3], "incoming", *vm[4:]]
    rec = scan.parse(7, inc, "h10")
    assert rec is not None and rec.kind == "incoming"
    nfc = ["python", "-m", "vmknet.nfc.server", "--lab=h10", "--host=esx02"]
    rec = scan.parse(8, nfc, "h10")
    assert rec is not None and (rec.kind, rec.name, rec.host) == ("nfc", "esx02", "esx02")
    rep = ["python", "-m", "vmknet.replication.daemon", "--lab=h10", "--vm=db", "--server=esx03"]
    rec = scan.parse(9, rep, "h10")
    assert rec is not None and (rec.kind, rec.name, rec.host) == ("replication", "db", "esx03")
    assert scan.parse(7, vm, "h1") is None  # --lab=h10 is not lab h1
    assert scan.parse(7, ["python", "-m", "vmknet.agent", "--lab=h10"], "h10") is None


def test_find_from_proc_alone(run: Path) -> None:
    """A process is found by its command line with no record at all (a crash lost them)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)",
                             "vmknet.nfc.server", "--lab=h10unit", "--host=esx09"])
    try:
        deadline = time.monotonic() + 5
        while not (found := scan.find("h10unit")) and time.monotonic() < deadline:
            time.sleep(0.01)  # until the child has exec'd its command line
        assert [(r.kind, r.name, r.pid) for r in found] == [("nfc", "esx09", proc.pid)]
        assert found[0].started > 0 and scan.find("h10unit", host="esx01") == []
        assert scan.find("h10unit", kind="vm") == []
    finally:
        proc.kill()
        proc.wait()
    assert scan.find("h10unit") == []


@given(st.dictionaries(st.sampled_from(["ticket", "vmotion", "management", "vmotionPort",
                                        "controlPort", "argv"]),
                       st.integers() | st.text(max_size=40)
                       | st.lists(st.dictionaries(st.sampled_from(["stack", "address", "x"]),
                                                  st.text(max_size=20), max_size=3),
                                  max_size=3), max_size=6))
def test_any_incoming_request_is_the_tables_flags(args: dict[str, object]) -> None:
    """Whatever an incoming request carries, its argv holds the ticket id at most."""
    try:
        _, argv = kinds.command("incoming", "web01", args, "h10", "esx02")
    except InvalidArgument:
        return
    assert argv[:4] == ["incoming", "--lab=h10", "--name=web01", "--host=esx02"]
    (ticket,) = argv[4:]
    assert kinds.TICKET.fullmatch(ticket.removeprefix("--ticket="))


@pytest.fixture(scope="module")
def example() -> Datacenter:
    return load_file(EXAMPLE)


def test_controller_listeners_are_the_adapters_resolve_picks(example: Datacenter) -> None:
    assert relay.receivers(example, "esx02", Service.VMOTION) == {
        ("vmotion", "198.18.4.12"), ("vmotion", "198.18.4.22")}
    assert relay.receivers(example, "esx02", Service.MANAGEMENT) == {
        ("defaultTcpipStack", "198.18.0.12"), ("defaultTcpipStack", "2001:db8:0:10::12")}


class _Ctl:
    def __init__(self, dc: Datacenter) -> None:
        self.dc, self.calls = dc, 0

    def inventory(self) -> Datacenter:
        return self.dc

    def call_agent(self, host: str, method: str, params: dict[str, object],
                   timeout: float = 0.0) -> object:
        self.calls += 1
        return {"host": host}


@pytest.mark.parametrize(("vmotion", "management"), [
    ([{"stack": "vmotion", "address": "198.18.4.11"}], MGMT),  # esx01's vMotion adapter
    ([{"stack": "defaultTcpipStack", "address": "198.18.0.12"}], MGMT),  # not vMotion
    ([{"stack": "vmotion", "address": "198.18.0.12"}], MGMT),  # wrong stack for it
    (VMOTION, [{"stack": "defaultTcpipStack", "address": "198.18.8.12"}]),  # provisioning
])
def test_controller_refuses_listeners_off_the_hosts_adapters(
        example: Datacenter, vmotion: object, management: object) -> None:
    ctl = _Ctl(example)
    with pytest.raises(InvalidArgument) as err:
        relay.start(ctl, {"host": "esx02", "kind": "incoming", "name": "web01",
                          "args": _incoming(vmotion=vmotion, management=management)})
    assert err.value.code == "SEC-2" and ctl.calls == 0
    relay.start(ctl, {"host": "esx02", "kind": "incoming", "name": "web01",
                      "args": _incoming()})
    assert ctl.calls == 1


REPL = {"server": "vr01", "target": "esx04", "disk": "/ds/web01/web01.vmdk",
        "datastore": "ds1", "path": "web01/web01.vmdk", "rpo": 2.5}


def test_replication_parts_from_the_table() -> None:
    module, argv = kinds.command("replication", "web01", REPL | {"verify": 1}, "h10", "esx01")
    assert module == "vmknet.replication.daemon"
    assert argv == ["source", "--lab=h10", "--vm=web01", "--host=esx01", "--server=vr01",
                    "--target=esx04", "--disk=/ds/web01/web01.vmdk", "--datastore=ds1",
                    "--path=web01/web01.vmdk", "--rpo=2.5", "--write-rate=0", "--verify=1"]
    assert kinds.command("replication-server", "vr01", {}, "h10", "vr01") == (
        "vmknet.replication.endpoint", ["server", "--lab=h10", "--host=vr01"])
    assert kinds.command("replica-nfc", "esx04", {"base": "/ds"}, "h10", "esx04") == (
        "vmknet.replication.endpoint", ["replica", "--lab=h10", "--host=esx04", "--base=/ds"])


@pytest.mark.parametrize(("kind", "name", "args"), [
    ("replication", "web01", REPL | {"rpo": 0}),
    ("replication", "web01", REPL | {"rpo": 86401}),
    ("replication", "web01", REPL | {"rpo": True}),
    ("replication", "web01", REPL | {"server": "vr01 --lab=x"}),
    ("replication", "web01", REPL | {"disk": "ds/web01.vmdk"}),
    ("replication", "web01", REPL | {"path": "/etc/passwd"}),
    ("replication", "web01", REPL | {"path": "../web01/x"}),
    ("replication", "web01", REPL | {"datastore": "../ds"}),
    ("replication", "web01", REPL | {"verify": 2}),
    ("replication", "web01", {k: v for k, v in REPL.items() if k != "target"}),
    ("replication-server", "vr02", {}),  # another host's server
    ("replication-server", "esx02", {"port": 1}),
    ("replica-nfc", "esx02", {}),  # base is required
    ("replica-nfc", "esx02", {"base": "rel"}),
])
def test_replication_refused_outside_the_table(kind: str, name: str, args: object) -> None:
    with pytest.raises(InvalidArgument):
        kinds.command(kind, name, args, "h10", "esx02")


def test_parse_replication_parts() -> None:
    src = ["python", "-m", "vmknet.replication.daemon", "source", "--lab=h10", "--vm=db",
           "--host=esx01", "--server=vr01"]
    rec = scan.parse(9, src, "h10")
    assert rec is not None and (rec.kind, rec.name, rec.host) == ("replication", "db", "esx01")
    for mode, kind in (("server", "replication-server"), ("replica", "replica-nfc")):
        argv = ["python", "-m", "vmknet.replication.endpoint", mode, "--lab=h10",
                "--host=vr01"]
        rec = scan.parse(9, argv, "h10")
        assert rec is not None and (rec.kind, rec.name, rec.host) == (kind, "vr01", "vr01")
    bad = ["python", "-m", "vmknet.replication.endpoint", "shell", "--lab=h10", "--host=x"]
    assert scan.parse(9, bad, "h10") is None


FT_OUT = ('{"ns": "vmkl-h10.esx02.defaultTcpipStack", "address": "198.18.0.12", '
          '"port": 9100, "rate": 200}')


def _secondary(**change: object) -> dict[str, object]:
    return {"ticket": TICKET, "memory": 1 << 26, "session": "app01-0a1b2c", "verify": 1,
            "ftlog": [{"stack": "defaultTcpipStack", "address": "198.18.6.12"}]} | change


def test_ft_secondary_command_and_its_listener() -> None:
    module, argv = kinds.command("ft-secondary", "app01", _secondary(output=FT_OUT), "h10",
                                 "esx02")
    assert module == "vmknet.vm.vmx" and argv[:4] == [
        "ft-secondary", "--lab=h10", "--name=app01", "--host=esx02"]
    assert f"--ticket={TICKET}" in argv and "--ft-verify=1" in argv
    assert f"--ft-output={FT_OUT}" in argv and "--ft-timeout=2.0" in argv
    assert not any("198.18.6.12" in a for a in argv)  # the listener is an fd, never argv
    assert kinds.sockets("ft-secondary", _secondary()) == [
        kinds.Listen("vm-fds", "defaultTcpipStack", "198.18.6.12", 8100)]


@pytest.mark.parametrize("change", [
    {"ticket": "zz"}, {"session": "a b"}, {"session": "x" * 101}, {"timeout": 0},
    {"verify": 2}, {"output": "{"}, {"output": '{"ns": "/etc", "address": "198.18.0.12", '
                                               '"port": 9100, "rate": 200}'},
    {"output": FT_OUT.replace("9100", "0")}, {"ftlog": []}, {"memory": 0},
])
def test_ft_secondary_refuses_what_the_table_does_not_allow(change: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        kinds.command("ft-secondary", "app01", _secondary(**change), "h10", "esx02")


def test_a_fork_of_a_lab_process_is_not_another_instance() -> None:
    """A forked helper keeps its parent's command line: found once, as its parent."""
    import subprocess
    import sys
    import time

    from vmknet.processes import lab_pids, terminate

    code = "import os, time\nos.fork()\ntime.sleep(20)"
    proc = subprocess.Popen([sys.executable, "-c", code, "vmknet.forkmarker", "--lab=fk1"])
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the fork is there once /proc shows two
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
            if children.exists() and children.read_text().split():
                break
            time.sleep(0.02)
        assert lab_pids("vmknet.forkmarker", "fk1") == [proc.pid]
    finally:
        kids = [int(k) for k in Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
                .read_text().split()]
        terminate([proc.pid, *kids], grace=1.0)
        proc.wait()
