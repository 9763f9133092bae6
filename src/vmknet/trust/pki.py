"""The controller's certificate authority and mutual-TLS contexts (MGMT-1, SEC-2).

vCenter runs a CA (VMCA) and issues each ESXi host its certificate when the host
joins; hostd and vpxa then speak TLS with it. vmknet does the same: the
controller holds `ca.key`; a host proves a one-time join token and receives a
certificate whose subject is `OU=host, CN=<host>` and whose SANs are the
addresses of its management adapters, as the controller knows them (the host
does not choose its own SANs). The controller's own certificate is
`OU=controller`; a CLI or REST client certificate would be `OU=client`.

Both ends require a certificate from this CA (TLS 1.3 only) and then check the
peer's role and name themselves (`peer()`), so a host certificate can never
act as the controller, nor one host as another.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import InvalidArgument, VmknetError

HOST, CONTROLLER, CLIENT = "host", "controller", "client"
ROLES = (HOST, CONTROLLER, CLIENT)
CA_DAYS = 3650
LEAF_DAYS = 365


class TrustError(VmknetError):
    """A certificate, token or ticket was refused (code names which)."""

    default_code = "NotAuthenticated"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a peer's certificate says it is."""

    role: str
    name: str


@dataclass(frozen=True, slots=True)
class Credential:
    """A certificate (PEM) with its private key (PEM), and the CA that trusts it."""

    cert: bytes
    key: bytes
    ca: bytes

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write(folder / "cert.pem", self.cert, 0o644)
        _write(folder / "key.pem", self.key, 0o600)
        _write(folder / "ca.pem", self.ca, 0o644)

    @classmethod
    def load(cls, folder: Path) -> Credential:
        try:
            return cls(*((folder / n).read_bytes() for n in ("cert.pem", "key.pem", "ca.pem")))
        except OSError as err:
            raise TrustError(f"No credential in {folder}: the host has not joined",
                             code="NotJoined") from err


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(role: str, name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                      x509.NameAttribute(NameOID.COMMON_NAME, name)])


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def fingerprint(cert_pem: bytes) -> str:
    """sha256 of the DER certificate, hex: what a join token pins the CA by."""
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


class Authority:
    """The CA: one key, one self-signed certificate, in a folder only root may read."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self._key = key
        self.cert = cert

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @classmethod
    def load_or_create(cls, folder: Path, label: str) -> Authority:
        key_path, cert_path = folder / "ca.key", folder / "ca.pem"
        if key_path.exists() and cert_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise TrustError(f"{key_path} is not an EC key", code="BadCredential")
            return cls(key, x509.load_pem_x509_certificate(cert_path.read_bytes()))
        key = new_key()
        now = dt.datetime.now(dt.UTC)
        subject = _name("ca", f"vmknet CA {label}")
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=CA_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                             False, False), critical=True)
                .sign(key, hashes.SHA256()))
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write(key_path, _pem_key(key), 0o600)
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return cls(key, cert)

    def sign(self, public_key: ec.EllipticCurvePublicKey, role: str, name: str,
             addresses: Iterable[str] = (), days: int = LEAF_DAYS) -> bytes:
        """A leaf certificate for `role`/`name` with the given IP SANs (PEM)."""
        if role not in ROLES:
            raise InvalidArgument(f"Unknown certificate role {role!r}")
        sans: list[x509.GeneralName] = [x509.DNSName(name)]
        sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(_name(role, name))
                .issuer_name(self.cert.subject).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .sign(self._key, hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, role: str, name: str, addresses: Iterable[str] = ()) -> Credential:
        """A fresh key and its certificate (the controller's own, or a lab client's)."""
        key = new_key()
        return Credential(self.sign(key.public_key(), role, name, addresses),
                          _pem_key(key), self.cert_pem)

    def sign_request(self, csr_pem: bytes, name: str, addresses: Iterable[str]) -> bytes:
        """Sign a host's CSR as `OU=host, CN=name`; the CSR's own subject is ignored."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError as err:
            raise TrustError("The join request holds no valid CSR", code="BadRequest") from err
        public = csr.public_key()
        if not csr.is_signature_valid or not isinstance(public, ec.EllipticCurvePublicKey):
            raise TrustError("The CSR is not signed by an EC P-256 key", code="BadRequest")
        return self.sign(public, HOST, name, addresses)


def request(name: str) -> tuple[bytes, bytes]:
    """A host's new key and its CSR, both PEM (the key never leaves the host)."""
    key = new_key()
    csr = (x509.CertificateSigningRequestBuilder().subject_name(_name(HOST, name))
           .sign(key, hashes.SHA256()))
    return _pem_key(key), csr.public_bytes(serialization.Encoding.PEM)


def _context(purpose: ssl.Purpose, cred: Credential, folder: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if purpose is ssl.Purpose.CLIENT_AUTH
                         else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = False  # the peer's role and name are checked by `peer()` instead
    ctx.load_verify_locations(cadata=cred.ca.decode())
    # ssl loads a chain only from files: the credential's own folder (root-only) holds them.
    ctx.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return ctx


def server_context(cred: Credential, folder: Path) -> ssl.SSLContext:
    """A TLS 1.3 server that requires a client certificate from the CA."""
    return _context(ssl.Purpose.CLIENT_AUTH, cred, folder)


def client_context(cred: Credential, folder: Path) -> ssl.SSLContext:
    """A TLS 1.3 client that presents its certificate and requires the server's from the CA."""
    return _context(ssl.Purpose.SERVER_AUTH, cred, folder)


def pinned_client_context(ca_fingerprint: str) -> ssl.SSLContext:
    """For a host that has not joined yet: TLS without a client certificate. The server
    sends its CA in band; `check_pinned` accepts it only by the token's fingerprint."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # verified by pin after the handshake
    return ctx


def check_pinned(sock: ssl.SSLSocket, ca_pem: bytes, ca_fingerprint: str) -> None:
    """Refuse unless `ca_pem` is the pinned CA and it signed the server's certificate."""
    try:
        if not hmac.compare_digest(fingerprint(ca_pem), ca_fingerprint.lower()):
            raise TrustError("The controller's CA does not match the join token's pin",
                             code="NotAuthenticated")
        leaf = x509.load_der_x509_certificate(sock.getpeercert(binary_form=True) or b"")
        leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
    except (ValueError, TypeError, InvalidSignature) as err:
        raise TrustError(f"The controller's certificate is not from the pinned CA: {err}",
                         code="NotAuthenticated") from err
    if identity(leaf.public_bytes(serialization.Encoding.DER)).role != CONTROLLER:
        raise TrustError("The join server is not a controller", code="NotAuthenticated")


def identity(cert_der: bytes | None) -> Identity:
    """Role and name of a verified peer certificate (DER, as `getpeercert(True)` gives)."""
    if not cert_der:
        raise TrustError("The peer presented no certificate")
    subject = x509.load_der_x509_certificate(cert_der).subject
    role = subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    name = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(role) != 1 or len(name) != 1:
        raise TrustError("The peer certificate has no single role and name")
    return Identity(str(role[0].value), str(name[0].value))


def peer(sock: ssl.SSLSocket | ssl.SSLObject, role: str, name: str | None = None) -> Identity:
    """The verified peer of `sock`, refused unless it is `role` (and `name`, if given)."""
    who = identity(sock.getpeercert(binary_form=True))
    if who.role != role or (name is not None and who.name != name):
        want = f"{role} {name}" if name else role
        raise TrustError(f"Peer is {who.role} {who.name}, expected {want}", code="NotAuthorized")
    return who
