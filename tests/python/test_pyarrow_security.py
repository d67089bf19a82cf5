"""pyarrow's Flight client against a gateway that requires TLS: mutual TLS with certificates
made here (another CA's certificate and no certificate are refused), and Basic login for a
bearer token (a wrong password is UNAUTHENTICATED)."""

import datetime
import ipaddress
import subprocess

import pyarrow.flight as flight
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import _bin, start_gateway


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(cn, key, issuer_name, issuer_key, ca=False, sans=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@pytest.fixture
def pki(tmp_path):
    out = {}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("Mover Test CA", ca_key, _name("Mover Test CA"), ca_key, ca=True)
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _cert("Other CA", other_key, _name("Other CA"), other_key, ca=True)
    out["ca"] = _pem(ca)
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    for name, issuer, issuer_key, extra in [
        ("gateway", ca, ca_key, sans),
        ("alice", ca, ca_key, ()),
        ("stranger", other, other_key, ()),
    ]:
        key = ec.generate_private_key(ec.SECP256R1())
        cn = "alice" if name == "stranger" else name
        cert = _cert(cn, key, issuer.subject, issuer_key, sans=extra)
        out[name] = (_pem(cert), _key_pem(key))
    for name in ["gateway", "alice"]:
        (tmp_path / f"{name}.pem").write_bytes(out[name][0])
        (tmp_path / f"{name}.key").write_bytes(out[name][1])
    (tmp_path / "ca.pem").write_bytes(out["ca"])
    out["dir"] = tmp_path
    return out


RULES = """
[[access]]
principal = "alice"
read = ["files/**"]
write = ["files/**"]
"""


def _config(pki, client_ca, users=""):
    d = pki["dir"]
    tls = f'[server.tls]\ncert = "{d}/gateway.pem"\nkey = "{d}/gateway.key"\n'
    if client_ca:
        tls += f'client_ca = "{d}/ca.pem"\n'
    return f'{tls}[buckets.files]\nurl = "file://data"\n{users}{RULES}'


def test_mutual_tls(tmp_path, pki):
    with start_gateway(tmp_path / "gw", _config(pki, client_ca=True)) as gw:
        (gw["dir"] / "data" / "a.csv").write_text("x\n1\n")
        url = gw["url"].replace("grpc://", "grpc+tls://")
        alice = flight.FlightClient(url, tls_root_certs=pki["ca"], cert_chain=pki["alice"][0], private_key=pki["alice"][1])
        names = ["/".join(p.decode() for p in f.descriptor.path) for f in alice.list_flights()]
        assert names == ["files/a.csv"]

        for kwargs in [{}, {"cert_chain": pki["stranger"][0], "private_key": pki["stranger"][1]}]:
            c = flight.FlightClient(url, tls_root_certs=pki["ca"], **kwargs)
            with pytest.raises(flight.FlightError):
                list(c.list_flights())


def test_basic_login_gives_a_bearer_token(tmp_path, pki):
    hashed = subprocess.run([_bin("gateway"), "hash-password"], input="s3cret\n", capture_output=True, text=True, check=True).stdout.strip()
    users = f'[[users]]\nname = "alice"\npassword_hash = "{hashed}"\n'
    with start_gateway(tmp_path / "gw", _config(pki, client_ca=False, users=users)) as gw:
        (gw["dir"] / "data" / "a.csv").write_text("x\n1\n")
        url = gw["url"].replace("grpc://", "grpc+tls://")
        c = flight.FlightClient(url, tls_root_certs=pki["ca"])
        token = c.authenticate_basic_token(b"alice", b"s3cret")
        options = flight.FlightCallOptions(headers=[token])
        assert len(list(c.list_flights(options=options))) == 1
        info = c.get_flight_info(flight.FlightDescriptor.for_path("files", "a.csv"), options)
        assert c.do_get(info.endpoints[0].ticket, options).read_all().num_rows == 1

        with pytest.raises(flight.FlightUnauthenticatedError):
            c.authenticate_basic_token(b"alice", b"wrong")
        with pytest.raises(flight.FlightUnauthenticatedError):
            list(c.list_flights())
