"""The CA, mutual TLS identities and engine tickets (SEC-4): pure, no root, loopback only."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmknet.trust import audit, pki, tickets
from vmknet.trust.pki import TrustError


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> pki.Authority:
    return pki.Authority.load_or_create(tmp_path_factory.mktemp("ca"), "test")


def test_ca_is_reloaded_not_replaced(tmp_path: Path) -> None:
    first = pki.Authority.load_or_create(tmp_path, "x")
    again = pki.Authority.load_or_create(tmp_path, "x")
    assert first.cert_pem == again.cert_pem
    assert (tmp_path / "ca.key").stat().st_mode & 0o077 == 0


def test_csr_signed_as_host_with_controller_chosen_addresses(ca: pki.Authority) -> None:
    _key, csr = pki.request("esx01")
    cert = ca.sign_request(csr, "esx01", ["198.18.0.11"])
    from cryptography import x509
    parsed = x509.load_pem_x509_certificate(cert)
    sans = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["198.18.0.11"]
    from cryptography.hazmat.primitives import serialization
    assert pki.identity(parsed.public_bytes(serialization.Encoding.DER)) == \
        pki.Identity("host", "esx01")


def test_garbage_csr_refused(ca: pki.Authority) -> None:
    with pytest.raises(TrustError) as err:
        ca.sign_request(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n", "esx01", [])
    assert err.value.code == "BadRequest"


def _tls_pair(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext,
              check: Callable[[ssl.SSLSocket], object]) -> object:
    lst = socket.create_server(("127.0.0.1", 0))
    out: dict[str, object] = {}

    def serve() -> None:
        conn, _ = lst.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                out["server"] = check(tls)
        except (OSError, TrustError) as err:
            out["server"] = err

    t = threading.Thread(target=serve)
    t.start()
    try:
        with socket.create_connection(lst.getsockname()) as raw, \
                client_ctx.wrap_socket(raw) as tls:
            tls.recv(1)
    except (OSError, ssl.SSLError):
        pass
    t.join(5)
    lst.close()
    return out.get("server")


def test_mutual_tls_names_the_peer_and_refuses_wrong_role(ca: pki.Authority,
                                                           tmp_path: Path) -> None:
    ctl, host = ca.issue("controller", "vc"), ca.issue("host", "esx01")
    ctl.save(tmp_path / "c")
    host.save(tmp_path / "h")
    srv = pki.server_context(host, tmp_path / "h")
    cli = pki.client_context(ctl, tmp_path / "c")
    assert _tls_pair(srv, cli, lambda s: pki.peer(s, "controller")) == \
        pki.Identity("controller", "vc")
    other_host = ca.issue("host", "esx02")
    other_host.save(tmp_path / "h2")
    refused = _tls_pair(srv, pki.client_context(other_host, tmp_path / "h2"),
                        lambda s: pki.peer(s, "controller"))
    assert isinstance(refused, TrustError) and refused.code == "NotAuthorized"


def test_certificate_of_another_ca_fails_the_handshake(ca: pki.Authority, tmp_path: Path) -> None:
    other = pki.Authority.load_or_create(tmp_path / "other", "evil")
    host = ca.issue("host", "esx01")
    host.save(tmp_path / "h")
    evil = other.issue("controller", "vc")
    evil.save(tmp_path / "e")
    got = _tls_pair(pki.server_context(host, tmp_path / "h"),
                    pki.client_context(evil, tmp_path / "e"), lambda s: pki.peer(s, "controller"))
    assert isinstance(got, ssl.SSLError)


# -- tickets ---------------------------------------------------------------------------------


def _book(tmp_path: Path, name: str) -> tickets.TicketBook:
    return tickets.TicketBook(tmp_path / name)


def _exchange(ticket_client: tickets.Ticket, book: tickets.TicketBook, kind: str = "nfc",
              host: str = "esx02") -> tuple[object, object]:
    a, b = socket.socketpair()
    out: dict[str, object] = {}

    def server() -> None:
        try:
            out["server"] = tickets.admit(b, book, kind, host, timeout=2)
        except TrustError as err:
            out["server"] = err

    t = threading.Thread(target=server)
    t.start()
    try:
        client: object = tickets.present(a, ticket_client, timeout=2)
    except TrustError as err:
        client = err
    t.join(5)
    a.close()
    b.close()
    return client, out["server"]


def test_ticket_admits_exactly_its_uses(tmp_path: Path) -> None:
    t = tickets.new("nfc", "copy-1", "esx01", "esx02", uses=2)
    book = _book(tmp_path, "esx02")
    book.put(t)
    for _ in range(2):
        client, server = _exchange(t, book)
        assert isinstance(server, tickets.Admission)
        assert isinstance(client, tickets.Admission)
        assert client.session_key == server.session_key
    client, server = _exchange(t, book)  # a third connection: the ticket is used up
    assert isinstance(server, TrustError) and isinstance(client, TrustError)
    assert book.get(t.id) is None


def test_wrong_secret_wrong_kind_wrong_host_expired_refused(tmp_path: Path) -> None:
    t = tickets.new("nfc", "copy-1", "esx01", "esx02")
    book = _book(tmp_path, "esx02")
    book.put(t)
    forged = tickets.Ticket(t.id, b"\1" * 32, t.kind, t.operation, t.source, t.target,
                            t.expires)
    client, server = _exchange(forged, book)
    assert isinstance(client, TrustError)  # the server's proof does not match the forged secret
    assert book.get(t.id) is not None  # a failed attempt does not spend the real ticket
    _, server = _exchange(t, book, kind="vmotion")
    assert isinstance(server, TrustError) and server.code == "BadTicket"
    _, server = _exchange(t, book, host="esx03")
    assert isinstance(server, TrustError)
    old = tickets.new("nfc", "copy-2", "esx01", "esx02", ttl=-1)
    book.put(old)
    _, server = _exchange(old, book)
    assert isinstance(server, TrustError)


def test_the_server_proves_itself_to_the_client(tmp_path: Path) -> None:
    real = tickets.new("vmotion", "mig-1", "esx01", "esx02")
    impostor_book = _book(tmp_path, "impostor")
    # A stranger with its own ticket of the same id but another secret cannot pass as target.
    impostor_book.put(tickets.Ticket(real.id, b"\2" * 32, "vmotion", "mig-1", "esx01",
                                     "esx02", real.expires))
    client, _ = _exchange(real, impostor_book, kind="vmotion")
    assert isinstance(client, TrustError) and "not the right peer" in client.message


def test_parallel_spend_admits_once(tmp_path: Path) -> None:
    t = tickets.new("replication", "sync-1", "esx01", "vr01")
    book = _book(tmp_path, "vr01")
    book.put(t)
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(book.spend(t.id)))
               for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(results) == [False] * 7 + [True]


def test_ticket_ids_cannot_name_paths(tmp_path: Path) -> None:
    book = _book(tmp_path, "h")
    for bad in ("../../etc/passwd", "a" * 31 + "/", "A" * 32, ""):
        with pytest.raises(TrustError):
            book.get(bad)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_hello_is_refused_without_hanging(garbage: bytes) -> None:
    a, b = socket.socketpair()
    try:
        a.sendall(garbage)
        a.shutdown(socket.SHUT_WR)
        started = time.monotonic()
        with pytest.raises(TrustError):
            tickets.admit(b, tickets.TicketBook(Path("/nonexistent-vmknet")), "nfc", "esx02",
                          timeout=1)
        assert time.monotonic() - started < 1.5
    finally:
        a.close()
        b.close()


def test_audit_log_roundtrip(tmp_path: Path) -> None:
    log = tmp_path / "security.jsonl"
    audit.record(log, "nfc", "esx02", "198.18.0.13", "NoTicket", "no ticket")
    log.open("ab").write(b"not json\n")
    audit.record(log, "vmotion", "esx02", "198.18.0.13", "BadTicket", "x" * 5000)
    got = audit.read(log)
    assert [r["code"] for r in got] == ["NoTicket", "BadTicket"]
    assert len(got[1]["message"]) == 512
