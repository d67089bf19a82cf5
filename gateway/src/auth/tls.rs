//! Server TLS through tonic and rustls, and the principal a verified client certificate names.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::error::{Context, Error, ErrorKind, Result};

/// Which part of a client certificate names its principal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalFrom {
    /// The subject's common name.
    #[default]
    Cn,
    /// The first subject alternative name that is a DNS name, an email address or a URI.
    San,
}

/// The server's TLS: its identity, and with `client_ca` a required, verified client
/// certificate (rustls checks the chain and the validity period).
pub fn server_config(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<ServerTlsConfig> {
    let read = |p: &Path, what: &str| {
        std::fs::read(p).invalid(format!("server.tls.{what}: cannot read {}", p.display()))
    };
    let (cert_pem, key_pem) = (read(cert, "cert")?, read(key, "key")?);
    // tonic takes the files as they are and fails only once serving ("transport error"), so
    // they are read here first, each failure naming its file.
    let certs = certificates(&cert_pem, "cert", cert)?;
    usable_key(certs, &key_pem, key)?;
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(cert_pem, key_pem));
    if let Some(ca) = client_ca {
        let ca_pem = read(ca, "client_ca")?;
        certificates(&ca_pem, "client_ca", ca)?;
        tls = tls
            .client_ca_root(Certificate::from_pem(ca_pem))
            .client_auth_optional(false);
    }
    Ok(tls)
}

/// The certificates of a PEM file, each read as X.509: a file with none, or with something
/// else in a certificate's place, is refused naming it.
fn certificates(pem: &[u8], what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let bad = |why: String| Error::invalid(format!("server.tls.{what}: {}: {why}", path.display()));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad("holds no PEM certificate".into()));
    }
    for c in &certs {
        X509Certificate::from_der(c).map_err(|e| bad(format!("not an X.509 certificate: {e}")))?;
    }
    Ok(certs)
}

/// The private key of a PEM file, one TLS can sign with and that belongs to `certs`' first.
fn usable_key(certs: Vec<CertificateDer<'static>>, pem: &[u8], path: &Path) -> Result<()> {
    let bad = |why: String| Error::invalid(format!("server.tls.key: {}: {why}", path.display()));
    let key =
        PrivateKeyDer::from_pem_slice(pem).map_err(|e| bad(format!("no private key: {e}")))?;
    let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)
        .map_err(|e| bad(format!("not a key TLS can use: {e}")))?;
    rustls::sign::CertifiedKey::new(certs, signer)
        .keys_match()
        .map_err(|e| bad(format!("not the key of server.tls.cert: {e}")))
}

/// The principal named by a (verified) client certificate.
pub fn principal_of(der: &[u8], from: PrincipalFrom) -> Result<String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| {
        Error::new(
            ErrorKind::Unauthenticated,
            format!("unreadable client certificate: {e}"),
        )
    })?;
    let found = match from {
        PrincipalFrom::Cn => cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string),
        PrincipalFrom::San => cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .and_then(|san| {
                san.value.general_names.iter().find_map(|n| match n {
                    GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                        Some(s.to_string())
                    }
                    _ => None,
                })
            }),
    };
    found.filter(|p| !p.is_empty()).ok_or_else(|| {
        Error::new(
            ErrorKind::Unauthenticated,
            format!("the client certificate has no {from:?} to name its principal"),
        )
    })
}
