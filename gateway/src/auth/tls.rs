//! Server TLS through tonic and rustls, and the principal a verified client certificate names.

use std::path::Path;

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
    let identity = Identity::from_pem(read(cert, "cert")?, read(key, "key")?);
    let mut tls = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = client_ca {
        tls = tls
            .client_ca_root(Certificate::from_pem(read(ca, "client_ca")?))
            .client_auth_optional(false);
    }
    Ok(tls)
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
