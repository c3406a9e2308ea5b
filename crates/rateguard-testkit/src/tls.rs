//! [`TestCerts`]: a throwaway CA with a server and a client certificate,
//! as PEM files in a temp dir, generated in process by `rcgen` (no OpenSSL).

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tempfile::TempDir;

use crate::TestkitError;

/// The names the server certificate is valid for: where the harness's
/// servers listen.
const SERVER_NAMES: [&str; 2] = ["127.0.0.1", "localhost"];

/// A fresh CA and two certificates it signed: one for servers (valid for
/// 127.0.0.1 and localhost) and one for a client (mutual TLS). Two
/// `TestCerts` share nothing, so one's CA does not trust the other's
/// certificates (for wrong-CA tests). The files go when this is dropped.
///
/// ```
/// let certs = rateguard_testkit::TestCerts::generate().unwrap();
/// let ca = std::fs::read_to_string(certs.ca_file()).unwrap();
/// assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
/// ```
#[derive(Debug)]
pub struct TestCerts {
    dir: TempDir,
}

impl TestCerts {
    /// Generates the CA and both certificates (ECDSA P-256) into a temp dir.
    pub fn generate() -> Result<Self, TestkitError> {
        let dir = tempfile::Builder::new()
            .prefix("rateguard-certs")
            .tempdir()?;
        let failed =
            |e: rcgen::Error| TestkitError::Invalid(format!("certificate generation: {e}"));
        let ca_key = KeyPair::generate().map_err(failed)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A name of its own, so another `TestCerts`' CA is a different
        // issuer (not the same name with a bad signature).
        let name = dir
            .path()
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        ca.distinguished_name
            .push(DnType::CommonName, format!("rateguard test CA {name}"));
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::CrlSign,
        ];
        let ca_cert = ca.self_signed(&ca_key).map_err(failed)?;
        let issuer = Issuer::new(ca, ca_key);
        write(dir.path(), "ca.crt", &ca_cert.pem())?;
        for (name, sans, cn) in [
            ("server", SERVER_NAMES.map(str::to_owned).to_vec(), "redis"),
            ("client", Vec::new(), "rateguard"),
        ] {
            let key = KeyPair::generate().map_err(failed)?;
            let mut params = CertificateParams::new(sans).map_err(failed)?;
            params.distinguished_name.push(DnType::CommonName, cn);
            params.use_authority_key_identifier_extension = true;
            let cert = params.signed_by(&key, &issuer).map_err(failed)?;
            write(dir.path(), &format!("{name}.crt"), &cert.pem())?;
            write(dir.path(), &format!("{name}.key"), &key.serialize_pem())?;
        }
        Ok(Self { dir })
    }

    /// The CA certificate (PEM): what clients trust.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The server certificate (PEM), for 127.0.0.1 and localhost.
    pub fn server_cert_file(&self) -> PathBuf {
        self.dir.path().join("server.crt")
    }

    /// The server certificate's private key (PEM, PKCS#8).
    pub fn server_key_file(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// The client certificate (PEM), for mutual TLS.
    pub fn client_cert_file(&self) -> PathBuf {
        self.dir.path().join("client.crt")
    }

    /// The client certificate's private key (PEM, PKCS#8).
    pub fn client_key_file(&self) -> PathBuf {
        self.dir.path().join("client.key")
    }
}

fn write(dir: &Path, name: &str, pem: &str) -> Result<(), TestkitError> {
    Ok(std::fs::write(dir.join(name), pem)?)
}
