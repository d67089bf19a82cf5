//! Certificates made in the test.

use std::path::{Path, PathBuf};

/// Certificates made in the test: a CA, the gateway's (for localhost and 127.0.0.1), gateways
/// `east` and `west` (and `third`, from another CA), clients `alice` and `bob`, and the bad
/// ones: expired, not yet valid, from another CA, self-signed.
/// Each `NAME` is written as `NAME.pem` and `NAME.key` in `dir`.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn make(dir: &Path) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        std::fs::create_dir_all(dir).expect("pki dir");
        let write = |name: &str, pem: String, key: &KeyPair| {
            std::fs::write(dir.join(format!("{name}.pem")), pem).expect("write cert");
            std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem())
                .expect("write key");
        };
        let ca_params = |cn: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name.push(DnType::CommonName, cn);
            p
        };
        let leaf = |cn: &str, sans: &[&str]| {
            let mut p =
                CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                    .expect("params");
            p.distinguished_name.push(DnType::CommonName, cn);
            p
        };
        let ca =
            CertifiedIssuer::self_signed(ca_params("Mover Test CA"), KeyPair::generate().unwrap())
                .unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        let other =
            CertifiedIssuer::self_signed(ca_params("Some Other CA"), KeyPair::generate().unwrap())
                .unwrap();
        std::fs::write(dir.join("other-ca.pem"), other.pem()).unwrap();

        let sign = |name: &str, params: CertificateParams, issuer: &rcgen::Issuer<'_, KeyPair>| {
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, issuer).unwrap();
            write(name, cert.pem(), &key);
        };
        sign("gateway", leaf("gateway", &["localhost", "127.0.0.1"]), &ca);
        // Gateways that talk to each other: each its own name, both from the test CA; and one
        // from another CA.
        sign("east", leaf("east", &["localhost", "127.0.0.1"]), &ca);
        sign("west", leaf("west", &["localhost", "127.0.0.1"]), &ca);
        sign("third", leaf("third", &["localhost", "127.0.0.1"]), &other);
        sign("alice", leaf("alice", &["alice.example.org"]), &ca);
        sign("bob", leaf("bob", &[]), &ca);
        let mut expired = leaf("alice", &[]);
        expired.not_before = rcgen::date_time_ymd(2000, 1, 1);
        expired.not_after = rcgen::date_time_ymd(2001, 1, 1);
        sign("expired", expired, &ca);
        let mut future = leaf("alice", &[]);
        future.not_before = rcgen::date_time_ymd(2100, 1, 1);
        future.not_after = rcgen::date_time_ymd(2101, 1, 1);
        sign("future", future, &ca);
        sign("stranger", leaf("alice", &[]), &other);
        let key = KeyPair::generate().unwrap();
        let selfsigned = leaf("alice", &[]).self_signed(&key).unwrap();
        write("selfsigned", selfsigned.pem(), &key);
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    pub fn pem(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }

    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }

    /// `[server.tls]` for the gateway, requiring client certificates from the test CA.
    pub fn server_tls(&self) -> String {
        self.server_tls_as("gateway", "ca")
    }

    /// `[server.tls]` with the certificate `name`, requiring client certificates from `ca`.
    pub fn server_tls_as(&self, name: &str, ca: &str) -> String {
        format!(
            "[server.tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n",
            self.pem(name).display(),
            self.key(name).display(),
            self.pem(ca).display()
        )
    }
}
