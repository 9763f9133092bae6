"""The management plane in the kernel: controller and agents over the management adapters only.

One example lab per module: `lab up` starts the controller in the controller
namespace and an agent in each host's management stack; the tests then
probe listeners, strangers, joins, kill -9 of agents and of the controller.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from kernelkit import wait_until
from labkit import lab_name

from vmknet.cli.main import main
from vmknet.controller import lab as mgmt
from vmknet.controller.client import ControllerClient
from vmknet.dataplane import naming
from vmknet.dataplane.linux import netns
from vmknet.errors import VmknetError
from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.lab.realise import KernelRealiser
from vmknet.mgmt import paths, wire
from vmknet.model import Datacenter
from vmknet.processes import alive, lab_pids
from vmknet.trust import pki
from vmknet.trust.issuer import ControllerIssuer, book, issuer_for

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"
HOSTS = ["esx01", "esx02", "esx03"]
MGMT = {"esx01": "198.18.0.11", "esx02": "198.18.0.12", "esx03": "198.18.0.13"}


@dataclass
class Built:
    name: str
    store: Path
    inv: Inventory

    def ns(self, host: str, stack: str = "defaultTcpipStack") -> str:
        return naming.stack_ns(self.name, host, stack)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    store = tmp_path_factory.mktemp("mgmt") / "inventory.db"
    inv = Inventory.open(store)
    name = lab_name()
    try:
        report = lifecycle.up(inv, EXAMPLE, name)
        assert report.management is not None
        yield Built(name, store, inv)
    finally:
        lifecycle.down(inv, name)
    assert not lab_pids(paths.AGENT_MARKER, name), "lab down left an agent running"
    assert not lab_pids(paths.CONTROLLER_MARKER, name), "lab down left the controller running"


def _status(b: Built) -> dict[str, dict[str, object]]:
    return {r["host"]: r for r in ControllerClient(b.name).host_status()}


def _all_available(b: Built) -> bool:
    return all(r["condition"] == "Available" for r in _status(b).values())


def _listeners(ns: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Htln"], capture_output=True,
                         text=True, check=True).stdout
    return [line.split()[3] for line in out.splitlines()]


def _socket_in(ns: str) -> socket.socket:
    return netns.in_netns(ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))


def test_every_host_heartbeats_over_its_management_adapter(built: Built) -> None:
    assert wait_until(lambda: _all_available(built), 10) is not None
    rows = _status(built)
    for host in HOSTS:
        links = rows[host]["links"]
        assert isinstance(links, list)
        assert [(lk["vmk"], lk["address"]) for lk in links] == [("vmk0", MGMT[host])]
    result = CliRunner().invoke(main, ["--store", str(built.store), "host", "status", "--json"])
    assert result.exit_code == 0, result.output
    assert '"condition": "Available"' in result.output


def test_agents_listen_only_on_management_addresses(built: Built) -> None:
    for host in HOSTS:
        for stack in ("defaultTcpipStack", "vmotion", "vSphereProvisioning"):
            on_443 = [a for a in _listeners(built.ns(host, stack)) if a.endswith(":443")]
            assert on_443 == ([f"{MGMT[host]}:443"] if stack == "defaultTcpipStack" else [])
    assert _listeners(naming.controller_ns(built.name)) == ["198.18.0.250:443"]


def _tls_to_agent(b: Built, from_ns: str, address: str, cred_dir: Path | None) -> str:
    """Try to call `ping` on an agent; the failure class name, or 'ok'."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cred_dir is not None:
        ctx.load_cert_chain(cred_dir / "cert.pem", cred_dir / "key.pem")
    sock = _socket_in(from_ns)
    try:
        sock.settimeout(3)
        sock.connect((address, paths.MGMT_PORT))
        with ctx.wrap_socket(sock) as tls:
            wire.call(tls, "ping")
            return "ok"
    except (OSError, VmknetError) as err:
        return type(err).__name__
    finally:
        sock.close()


def test_strangers_are_refused_by_the_agent(built: Built) -> None:
    esx03 = paths.agent_dir(built.name, "esx03")
    # No certificate at all, from a host on the same VLAN: the TLS handshake fails.
    assert _tls_to_agent(built, built.ns("esx03"), MGMT["esx01"], None) != "ok"
    # A valid certificate of the same CA, but a host's, not the controller's: refused.
    assert _tls_to_agent(built, built.ns("esx03"), MGMT["esx01"], esx03) != "ok"
    # The controller's own certificate works (proves the test can succeed).
    ctl = paths.controller_dir(built.name) / "tls"
    assert _tls_to_agent(built, naming.controller_ns(built.name), MGMT["esx01"], ctl) == "ok"


def test_join_tokens_are_single_use_and_bound_to_the_management_adapter(built: Built) -> None:
    grant = ControllerClient(built.name).call("join-token", {"host": "esx02"})
    fingerprint = str(grant["caFingerprint"])

    def join(from_ns: str) -> str:
        _key, csr = pki.request("esx02")
        sock = _socket_in(from_ns)
        try:
            sock.settimeout(3)
            sock.connect(("198.18.0.250", paths.MGMT_PORT))
            with pki.pinned_client_context(fingerprint).wrap_socket(sock) as tls:
                wire.call(tls, "join", {"token": grant["token"], "csr": csr.decode()})
                return "joined"
        except VmknetError as err:
            return err.code
        finally:
            sock.close()

    # esx02's token used from esx03's management adapter: not one of esx02's (SEC-2).
    assert join(built.ns("esx03")) == "SEC-2"
    assert join(built.ns("esx02")) == "joined"
    assert join(built.ns("esx02")) == "NotAuthenticated"  # the token is spent


def test_agent_killed_comes_back_without_joining_again(built: Built) -> None:
    pid = next(p for p in lab_pids(paths.AGENT_MARKER, built.name)
               if b"--host=esx02" in Path(f"/proc/{p}/cmdline").read_bytes())
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not _status(built)["esx02"]["connected"], 8) is not None
    report = mgmt.start(built.name, built.inv.read(), str(built.store))
    assert report.started == ["esx02"]
    assert not paths.join_token_file(built.name, "esx02").exists()  # no new join was needed
    assert wait_until(lambda: _all_available(built), 10) is not None


def test_controller_killed_agents_resynchronise(built: Built) -> None:
    agents = sorted(lab_pids(paths.AGENT_MARKER, built.name))
    (ctl,) = lab_pids(paths.CONTROLLER_MARKER, built.name)
    os.kill(ctl, signal.SIGKILL)
    assert wait_until(lambda: not alive(ctl), 3) is not None
    report = mgmt.start(built.name, built.inv.read(), str(built.store))
    assert report.started == [] and report.controller_pid != ctl
    assert wait_until(lambda: _all_available(built), 10) is not None
    assert sorted(lab_pids(paths.AGENT_MARKER, built.name)) == agents  # nobody restarted


def test_tickets_go_through_the_agents(built: Built) -> None:
    got = ControllerClient(built.name).call(
        "ticket", {"kind": "nfc", "source": "esx01", "target": "esx03", "uses": 2})
    for host in ("esx01", "esx03"):
        ticket = book(built.name, host).get(str(got["id"]))
        assert ticket is not None and ticket.uses == 2 and ticket.target == "esx03"
    assert book(built.name, "esx02").get(str(got["id"])) is None
    # What the engines call: the lab has a controller, so tickets go through it.
    issuer = issuer_for(built.name)
    assert isinstance(issuer, ControllerIssuer)
    ticket = issuer.issue("vmotion", "esx02", "esx01", uses=3, key=b"k" * 32)
    assert book(built.name, "esx01").get(ticket.id) == ticket
    with pytest.raises(VmknetError) as err:
        issuer.issue("vmotion", "esx02", "nohost")
    assert err.value.code == "NotFound"


def _vmk1_mtu(b: Built, host: str) -> int:
    out = subprocess.run(["ip", "-n", b.ns(host, "vmotion"), "-o", "link", "show", "vmk1"],
                         capture_output=True, text=True, check=True).stdout
    return int(out.split(" mtu ")[1].split()[0])


def _with_vmk1_mtu(b: Built, mtu: int) -> Datacenter:
    dc = b.inv.read().model_copy(deep=True)
    for host in HOSTS:
        dc.hosts[host].vmknics["vmk1"].mtu = mtu
    return dc


def test_a_change_of_every_host_rolls_out_host_by_host_through_the_agents(built: Built) -> None:
    realiser = built.inv.realiser
    assert isinstance(realiser, KernelRealiser)
    realiser.max_unavailable = "1"  # one host at a time
    try:
        built.inv.apply(_with_vmk1_mtu(built, 8000))
        done = realiser.last
        assert done is not None and done.rollout is not None
        assert done.rollout.batches == [["esx01"], ["esx02"], ["esx03"]]
        assert sorted(done.rollout.host_seconds) == HOSTS
        assert [_vmk1_mtu(built, h) for h in HOSTS] == [8000] * 3
        rows = _status(built)
        assert {h: rows[h]["lastChange"]["state"] for h in HOSTS} == dict.fromkeys(HOSTS,
                                                                               "confirmed")
        version = built.inv.store.read()[0]
        built.inv.apply(_with_vmk1_mtu(built, 8000))  # the same state again: nothing moves
        assert built.inv.store.read()[0] == version
        assert realiser.last is not None and not realiser.last.result.ops
    finally:
        realiser.max_unavailable = "50%"
        built.inv.apply(_with_vmk1_mtu(built, 9000))
    assert [_vmk1_mtu(built, h) for h in HOSTS] == [9000] * 3


def test_a_hung_agent_stops_the_rollout_and_earlier_hosts_are_reverted(built: Built) -> None:
    realiser = built.inv.realiser
    assert isinstance(realiser, KernelRealiser)
    (hung,) = [p for p in lab_pids(paths.AGENT_MARKER, built.name)
               if b"--host=esx02" in Path(f"/proc/{p}/cmdline").read_bytes()]
    before = built.inv.store.read()
    realiser.max_unavailable = "1"
    os.kill(hung, signal.SIGSTOP)
    try:
        with pytest.raises(VmknetError) as err:
            built.inv.apply(_with_vmk1_mtu(built, 8000))
    finally:
        os.kill(hung, signal.SIGCONT)
        realiser.max_unavailable = "50%"
    assert err.value.details.get("host") == "esx02", err.value.to_dict()
    # esx01 ran its part and was reverted; esx03 was never touched; the store did not move.
    assert [_vmk1_mtu(built, h) for h in HOSTS] == [9000] * 3
    assert built.inv.store.read() == before
    assert wait_until(lambda: _all_available(built), 10) is not None
    rows = _status(built)
    change = {h: rows[h]["lastChange"] for h in ("esx01", "esx02")}
    assert change["esx01"]["state"] == "reverted", change
    assert change["esx02"]["state"] == "failed", change


def test_lab_status_names_a_dead_agent_and_repair_starts_it(built: Built) -> None:
    pid = next(p for p in lab_pids(paths.AGENT_MARKER, built.name)
               if b"--host=esx03" in Path(f"/proc/{p}/cmdline").read_bytes())
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not alive(pid), 3) is not None
    runner = CliRunner()
    result = runner.invoke(main, ["--store", str(built.store), "lab", "status"])
    assert result.exit_code == 1 and "not running: the agent of esx03" in result.output
    result = runner.invoke(main, ["--store", str(built.store), "lab", "status", "--repair"])
    assert result.exit_code == 0, result.output
    assert "started the agent of esx03" in result.output
    assert wait_until(lambda: _all_available(built), 10) is not None


def _tcp(ns: str) -> list[tuple[str, str]]:
    """(local, peer) of every established TCP connection in `ns`."""
    out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Htn", "state", "established"],
                         capture_output=True, text=True, check=True).stdout
    return [(line.split()[2], line.split()[3]) for line in out.splitlines()]


def test_management_traffic_uses_only_the_management_adapters(built: Built) -> None:
    """SEC-2 in the kernel: every management connection of a host is in its management
    stack, from its management address, to the controller; no other stack carries any."""
    assert wait_until(lambda: _all_available(built), 10) is not None
    for host in HOSTS:
        mine = _tcp(built.ns(host))
        assert mine and all(local.split(":")[0] == MGMT[host] for local, _ in mine), mine
        assert any(peer == "198.18.0.250:443" for _, peer in mine), mine
        for stack in ("vmotion", "vSphereProvisioning"):
            assert _tcp(built.ns(host, stack)) == []


def test_controller_killed_during_a_rollout_the_hosts_take_their_parts_back(
        built: Built) -> None:
    """A kill point: the controller dies while a change rolls out. Agents that ran their part
    cannot confirm it, so each reverts by itself after the rollback timeout (MGMT-2); the
    store never moved; a restarted controller finds the lab as it was."""
    realiser = built.inv.realiser
    assert isinstance(realiser, KernelRealiser)
    before = built.inv.store.read()
    outcome: dict[str, BaseException | None] = {}

    def change() -> None:
        try:
            built.inv.apply(_with_vmk1_mtu(built, 8000))
            outcome["error"] = None
        except BaseException as err:
            outcome["error"] = err

    realiser.max_unavailable = "1"
    worker = threading.Thread(target=change)
    try:
        worker.start()
        assert wait_until(lambda: _vmk1_mtu(built, "esx01") == 8000, 15) is not None
        (ctl,) = lab_pids(paths.CONTROLLER_MARKER, built.name)
        os.kill(ctl, signal.SIGKILL)
        worker.join(60)
    finally:
        realiser.max_unavailable = "50%"
    assert isinstance(outcome.get("error"), VmknetError), outcome
    assert built.inv.store.read() == before
    timeout = built.inv.read().physical.controller.rollbackTimeout
    # Each host that ran its part takes it back by itself: an armed part at its deadline,
    # a confirmed one when the controller stays away as long (its rollout never committed).
    assert wait_until(lambda: [_vmk1_mtu(built, h) for h in HOSTS] == [9000] * 3,
                      2 * timeout + 10) is not None
    mgmt.start(built.name, built.inv.read(), str(built.store))
    assert wait_until(lambda: _all_available(built), 15) is not None
    assert lifecycle.status(built.inv).in_sync


def test_strangers_at_the_controllers_door_get_nothing(built: Built) -> None:
    """Without a certificate only `join` is answered; a host's certificate speaks for that
    host only, and only from its own management address (SEC-2)."""
    def call(from_ns: str, cred: Path | None, method: str) -> str:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        if cred is not None:
            ctx.load_cert_chain(cred / "cert.pem", cred / "key.pem")
        sock = _socket_in(from_ns)
        try:
            sock.settimeout(3)
            sock.connect(("198.18.0.250", paths.MGMT_PORT))
            with ctx.wrap_socket(sock) as tls:
                wire.call(tls, method, {"generation": "x", "ops": 1})
                return "ok"
        except (OSError, VmknetError) as err:
            return getattr(err, "code", type(err).__name__)
        finally:
            sock.close()

    for method in ("heartbeat", "confirm", "rolledBack", "outcome"):
        assert call(built.ns("esx03"), None, method) == "NotSupported"
    # esx01's own certificate, used from esx03's management address: refused.
    assert call(built.ns("esx03"), paths.agent_dir(built.name, "esx01"), "heartbeat") == "SEC-2"
    assert lab_pids(paths.CONTROLLER_MARKER, built.name)  # it refused them and goes on
