"""A throwaway PKI for TLS tests, made with ``cryptography``: no files from outside, nothing cached.

:func:`make_test_pki` writes a CA, a server certificate for ``localhost`` and ``127.0.0.1`` signed
by it, a client certificate signed by it (for mutual TLS), and a second, unrelated CA whose trust
must NOT let a client accept the server. Certificates carry the extensions strict X.509
verification asks for (key usage, subject/authority key identifiers), so they also pass OpenSSL's
``VERIFY_X509_STRICT`` (the default of newer Pythons' ``ssl.create_default_context``). They are
valid from an hour ago for one day.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = ec.EllipticCurvePrivateKey


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "servelog tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _builder(subject: x509.Name, issuer: x509.Name, key: Key) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))


def _usage(*, digital_signature: bool = False, key_cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=key_cert_sign,
                         crl_sign=key_cert_sign, encipher_only=False, decipher_only=False)


def _ca(common: str) -> tuple[x509.Certificate, Key]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (_builder(_name(common), _name(common), key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_usage(key_cert_sign=True), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def _leaf(common: str, ca: x509.Certificate, ca_key: Key, *, server: bool) -> tuple[x509.Certificate, Key]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (_builder(_name(common), ca.subject, key)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(_usage(digital_signature=True), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                     else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _write(path: Path, cert: x509.Certificate, key: Key | None = None) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        key_path = path.with_suffix(".key")
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        key_path.chmod(0o600)


@dataclass(frozen=True)
class TestPKI:
    """Paths of the PEM files :func:`make_test_pki` wrote, and server-side contexts built from them."""

    __test__ = False  # a helper, not a pytest test class

    ca_file: Path
    wrong_ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def server_context(self, require_client_cert: bool = False) -> ssl.SSLContext:
        """A TLS >= 1.2 server context with the server certificate; optionally demanding a client
        certificate signed by the test CA (mutual TLS)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.server_cert, self.server_key)
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.ca_file)
        return context

    def client_context(self, *, with_client_cert: bool = False, wrong_ca: bool = False) -> ssl.SSLContext:
        """A verifying client context trusting the test CA (or the unrelated one), for raw-socket tests."""
        context = ssl.create_default_context(cafile=str(self.wrong_ca_file if wrong_ca else self.ca_file))
        if with_client_cert:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context


def make_test_pki(directory: Path) -> TestPKI:
    """Write a fresh CA, server and client certificates and an unrelated CA into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _ca("servelog test CA")
    wrong, _ = _ca("some other CA")
    server, server_key = _leaf("localhost", ca, ca_key, server=True)
    client, client_key = _leaf("servelog", ca, ca_key, server=False)
    _write(directory / "ca.pem", ca)
    _write(directory / "wrong-ca.pem", wrong)
    _write(directory / "server.pem", server, server_key)
    _write(directory / "client.pem", client, client_key)
    return TestPKI(ca_file=directory / "ca.pem", wrong_ca_file=directory / "wrong-ca.pem",
                   server_cert=directory / "server.pem", server_key=directory / "server.key",
                   client_cert=directory / "client.pem", client_key=directory / "client.key")
