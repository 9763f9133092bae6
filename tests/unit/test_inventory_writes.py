"""The CLI's changes as data (ops.codec) and the controller's write path (inventory_door).

The door is exercised with the controller's own facade on a SQLite store, the
way `python -m vmknet.controller` registers it; the CLI side through a real unix
socket served by `mgmt.wire`, so a refusal made in the controller reaches the
client as the same class and code a local refusal has.
"""

from __future__ import annotations

import functools
import socket
import threading
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from builders import lab
from hypothesis import given, settings
from hypothesis import strategies as st

from vmknet.controller import inventory_door
from vmknet.controller.writes import InventoryWrites
from vmknet.errors import (
    AlreadyExists,
    ConcurrentModification,
    InvalidArgument,
    NotFound,
    RuleViolation,
    VmknetError,
    from_dict,
)
from vmknet.inventory import Inventory
from vmknet.lab import LAB_KEY, Lab
from vmknet.mgmt import paths, wire
from vmknet.model import Datacenter, Service
from vmknet.ops import codec, interface, vswitch
from vmknet.state import dumps


def test_every_cli_operation_has_a_name_and_round_trips() -> None:
    op = functools.partial(interface.ipv4_set, host="esx01", name="vmk1", type="static",
                           address=IPv4Address("198.18.1.5"),
                           netmask=IPv4Address("255.255.255.0"))
    payload = codec.encode(op)
    assert payload == {"op": "interface.ipv4_set", "args": {
        "host": "esx01", "name": "vmk1", "type": "static", "address": "198.18.1.5",
        "netmask": "255.255.255.0"}}
    back = codec.decode(payload)
    assert isinstance(back, functools.partial)
    assert back.func is interface.ipv4_set and back.keywords == op.keywords
    tag = codec.decode(codec.encode(functools.partial(interface.tag_add, host="esx01",
                                                      name="vmk1", service=Service.VMOTION)))
    assert isinstance(tag, functools.partial) and tag.keywords["service"] is Service.VMOTION
    assert "vswitch.portgroup_set" in codec.OPERATIONS
    assert not any(name.split(".")[1].startswith("_") for name in codec.OPERATIONS)


@pytest.mark.parametrize("payload, says", [
    ({"op": "os.system", "args": {}}, "Unknown operation"),
    ({"op": "vswitch._portgroup", "args": {}}, "Unknown operation"),
    ({"op": "execute.execute", "args": {}}, "Unknown operation"),
    ({"op": 7}, "Unknown operation"),
    ({"op": "vswitch.add", "args": []}, "must be an object"),
    ({"op": "vswitch.add", "args": {"host": "esx01"}}, "needs the argument 'name'"),
    ({"op": "vswitch.add", "args": {"host": "esx01", "name": "s", "dc": {}}}, "no argument"),
    ({"op": "vswitch.add", "args": {"host": "esx01", "name": "s", "mtu": "big"}}, "'mtu'"),
    ({"op": "interface.tag_add", "args": {"host": "h", "name": "vmk1", "service": "Bogus"}},
     "'service'"),
])
def test_decode_refuses_what_no_command_could_send(payload: dict[str, object], says: str) -> None:
    with pytest.raises(InvalidArgument, match=says):
        codec.decode(payload)


def test_encode_refuses_an_operation_without_a_data_form() -> None:
    with pytest.raises(VmknetError) as err:
        codec.encode(lambda dc: [])
    assert err.value.code == "InternalError"
    with pytest.raises(VmknetError):
        codec.encode(functools.partial(vswitch.add, Datacenter(), "esx01", "s"))  # positional


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=12), st.none() | st.integers() | st.text(max_size=12),
                       max_size=4), st.sampled_from(sorted(codec.OPERATIONS)))
def test_decode_never_fails_but_with_invalid_argument(args: dict[str, object], name: str) -> None:
    try:
        op = codec.decode({"op": name, "args": args})
    except InvalidArgument:
        return
    assert isinstance(op, functools.partial) and op.func is codec.OPERATIONS[name]


@pytest.mark.parametrize("err", [
    NotFound("Vmknic vmk9 not found"), AlreadyExists("exists"), InvalidArgument("bad"),
    RuleViolation("EX-1", "taken", hosts=["esx01"]), ConcurrentModification("moved", expected=1),
    VmknetError("down", code="ControllerNotRunning"),
])
def test_an_error_crosses_the_wire_as_itself(err: VmknetError) -> None:
    back = from_dict(err.to_dict())
    assert type(back) is type(err)
    assert (back.code, back.message, back.details) == (err.code, err.message, err.details)


# -- the door itself, with the controller's facade on a SQLite store ------------------------


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.db"
    Inventory.open(path).apply(lab(2))
    return path


def test_run_applies_the_operation_and_answers_its_events(store: Path) -> None:
    door = inventory_door.handlers(lambda: Inventory.open(store))
    before = Inventory.open(store).store.read()[0]
    got = door["inventory.run"]({"operation": codec.encode(functools.partial(
        vswitch.add, host="esx01", name="vSwitch9"))})
    assert got["version"] == before + 1
    assert "vSwitch9" in Inventory.open(store).read().host("esx01").vswitches


def test_a_refused_operation_changes_nothing(store: Path) -> None:
    door = inventory_door.handlers(lambda: Inventory.open(store))
    text = Inventory.open(store).show()
    with pytest.raises(NotFound):
        door["inventory.run"]({"operation": codec.encode(functools.partial(
            vswitch.remove, host="esx01", name="vSwitchNone"))})
    with pytest.raises(InvalidArgument):
        door["inventory.run"]({"operation": "vswitch.add"})
    assert Inventory.open(store).show() == text


def test_apply_checks_the_plans_version_and_the_document(store: Path) -> None:
    door = inventory_door.handlers(lambda: Inventory.open(store))
    inv = Inventory.open(store)
    desired = inv.read()
    desired.host("esx01").vswitches["vSwitch0"].mtu = 9000
    version = inv.store.read()[0]
    with pytest.raises(ConcurrentModification):
        door["inventory.apply"]({"document": dumps(desired), "version": version + 5})
    with pytest.raises(InvalidArgument):
        door["inventory.apply"]({"document": 5, "version": version})
    with pytest.raises(InvalidArgument):
        door["inventory.apply"]({"document": dumps(desired), "version": True})
    with pytest.raises(VmknetError):
        door["inventory.apply"]({"document": "hosts: [", "version": version})
    assert inv.store.read()[0] == version
    got = door["inventory.apply"]({"document": dumps(desired), "version": version})
    assert got["changes"] >= 1 and got["version"] == version + 1
    assert inv.read().host("esx01").vswitches["vSwitch0"].mtu == 9000


# -- the CLI's side: a client Inventory of a bound store sends its writes to api.sock --------


@pytest.fixture
def served(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A store bound to lab `w1` and a door on its api.sock; yields the methods it was asked."""
    monkeypatch.setenv("VMKNET_RUN_DIR", str(tmp_path / "run"))
    with Inventory.open(store).store.transaction() as txn:
        txn.set_meta(LAB_KEY, "w1")
    facade = Inventory.open(store)

    realised: list[Datacenter] = []

    class NoKernel:
        """The controller's realiser, minus the kernel: this test has none."""

        def realise(self, lab: Lab, dc: Datacenter) -> object:
            assert lab.name == "w1"
            realised.append(dc)
            return None

    handlers = inventory_door.handlers(lambda: Inventory.open(store, realiser=NoKernel()))
    asked: list[str] = []
    sock_path = paths.api_socket("w1")
    sock_path.parent.mkdir(parents=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sock_path))
    listener.listen(4)

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                while wire.answer(conn, {m: functools.partial(_counted, asked, m, handlers[m])
                                         for m in handlers}):
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert facade.store.meta(LAB_KEY) == "w1"
    yield asked
    listener.close()
    assert len(realised) == asked.count("inventory.apply") + 1  # the refused run realised nothing


def _counted(asked: list[str], method: str, handler: wire.Handler,
             params: dict[str, Any]) -> Any:
    asked.append(method)
    return handler(params)


def test_a_client_sends_its_writes_to_the_controller(store: Path, served: list[str]) -> None:
    client = Inventory.open(store, via_controller=True)
    assert client.controller() is not None
    client.run(functools.partial(vswitch.add, host="esx01", name="vSwitch7"))
    assert served == ["inventory.run"]
    with pytest.raises(AlreadyExists):  # the controller's refusal, as its own class
        client.run(functools.partial(vswitch.add, host="esx01", name="vSwitch7"))
    desired = client.read()
    desired.host("esx01").vswitches["vSwitch7"].mtu = 9000
    plan = client.plan(desired)
    client.apply(plan, "1")
    assert served[-1] == "inventory.apply"
    assert client.read().host("esx01").vswitches["vSwitch7"].mtu == 9000
    # Not a client (the controller's own facade): never through the door.
    assert Inventory.open(store).controller() is None


def test_a_dead_controller_is_a_one_line_refusal(store: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VMKNET_RUN_DIR", str(tmp_path / "run"))
    with Inventory.open(store).store.transaction() as txn:
        txn.set_meta(LAB_KEY, "w2")
    sock_path = paths.api_socket("w2")
    sock_path.parent.mkdir(parents=True)
    sock_path.touch()  # left by a controller killed with -9
    client = Inventory.open(store, via_controller=True)
    text = client.show()
    with pytest.raises(VmknetError) as err:
        client.run(functools.partial(vswitch.add, host="esx01", name="vSwitch7"))
    assert err.value.code == "ControllerNotRunning" and "lab status --repair" in err.value.message
    assert client.show() == text
    assert InventoryWrites("w2").client.lab == "w2"
