//! TLS for the Redis stores (`rediss://` URLs), through rustls with the
//! aws-lc-rs provider only (no OpenSSL): [`TlsOptions`] holds the checked
//! certificate material of `[store] tls_*`; redis-rs takes it as PEM
//! (`TlsCertificates`), fred as a rustls `ClientConfig` built here.
//!
//! Without `tls_ca_file`, servers are verified against the system roots
//! (rustls-native-certs, which both clients use by default), so a managed
//! Redis with a public certificate needs no file at all.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::access::{ConfigIssue, StoreKey};
use crate::StoreError;

/// `[store] tls_ca_file`, `tls_cert_file`, `tls_key_file` and
/// `tls_insecure_skip_verify`, read and checked: the files exist and hold
/// parseable PEM, and the client key fits its certificate.
///
/// Only used with `rediss://` URLs. The `Debug` output names the files,
/// never their contents (the key is a secret).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    ca: Option<PemFile>,
    identity: Option<(PemFile, PemFile)>,
    insecure_skip_verify: bool,
}

#[derive(Clone, PartialEq, Eq)]
struct PemFile {
    path: PathBuf,
    pem: Vec<u8>,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca_file", &self.ca.as_ref().map(|c| &c.path))
            .field("cert_file", &self.identity.as_ref().map(|(c, _)| &c.path))
            .field("key_file", &self.identity.as_ref().map(|(_, k)| &k.path))
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .finish()
    }
}

impl TlsOptions {
    /// Reads and checks the files: `ca_file` (PEM certificates to trust
    /// instead of the system roots) and, for mutual TLS, `cert_file` (the
    /// client's PEM certificate chain) with `key_file` (its PEM private
    /// key), which go together. Each problem names its `[store]` key.
    pub fn from_files(
        ca_file: Option<&Path>,
        cert_file: Option<&Path>,
        key_file: Option<&Path>,
    ) -> Result<Self, Vec<ConfigIssue>> {
        let mut issues = Vec::new();
        let ca = ca_file.and_then(|path| {
            let file = read(StoreKey::TlsCaFile, path)
                .map_err(|e| issues.push(e))
                .ok()?;
            check_roots(&file).map_err(|e| issues.push(e)).ok()?;
            Some(file)
        });
        let identity = match (cert_file, key_file) {
            (None, None) => None,
            (Some(_), None) => {
                issues.push(StoreKey::TlsKeyFile.issue("required with store.tls_cert_file"));
                None
            }
            (None, Some(_)) => {
                issues.push(StoreKey::TlsCertFile.issue("required with store.tls_key_file"));
                None
            }
            (Some(cert), Some(key)) => {
                let cert = read(StoreKey::TlsCertFile, cert).map_err(|e| issues.push(e));
                let key = read(StoreKey::TlsKeyFile, key).map_err(|e| issues.push(e));
                match (cert, key) {
                    (Ok(cert), Ok(key)) => match check_identity(&cert, &key) {
                        Ok(()) => Some((cert, key)),
                        Err(e) => {
                            issues.push(e);
                            None
                        }
                    },
                    _ => None,
                }
            }
        };
        if issues.is_empty() {
            Ok(Self {
                ca,
                identity,
                insecure_skip_verify: false,
            })
        } else {
            Err(issues)
        }
    }

    /// The same options, but servers' certificates are not verified at all
    /// when `skip` (`tls_insecure_skip_verify`): anyone on the path can
    /// read and change the traffic. The stores log a warning at start.
    pub fn skip_verify(self, skip: bool) -> Self {
        Self {
            insecure_skip_verify: skip,
            ..self
        }
    }

    /// Whether anything differs from the defaults (system roots, no client
    /// certificate, verification on).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Whether certificate verification is off.
    pub fn insecure_skip_verify(&self) -> bool {
        self.insecure_skip_verify
    }

    /// Whether a client certificate is presented (mutual TLS).
    pub fn has_client_certificate(&self) -> bool {
        self.identity.is_some()
    }

    /// What redis-rs takes to trust `ca_file` and present the client
    /// certificate; `None` when neither is set (redis-rs then uses the
    /// system roots).
    pub(crate) fn redis_certificates(&self) -> Option<redis::TlsCertificates> {
        if self.ca.is_none() && self.identity.is_none() {
            return None;
        }
        Some(redis::TlsCertificates {
            client_tls: self
                .identity
                .as_ref()
                .map(|(cert, key)| redis::ClientTlsConfig {
                    client_cert: cert.pem.clone(),
                    client_key: key.pem.clone(),
                }),
            root_cert: self.ca.as_ref().map(|ca| ca.pem.clone()),
        })
    }

    /// The rustls configuration fred connects with: `ca_file` or the
    /// system roots, the client certificate if any, and no verification
    /// at all under `insecure_skip_verify`.
    pub(crate) fn rustls_config(&self) -> Result<ClientConfig, StoreError> {
        let provider = Arc::new(provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Backend(format!("TLS set-up: {e}")))?;
        let builder = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(SkipVerify(provider)))
        } else {
            builder.with_root_certificates(self.roots()?)
        };
        match &self.identity {
            None => Ok(builder.with_no_client_auth()),
            Some((cert, key)) => {
                let (chain, key) =
                    parse_identity(cert, key).map_err(|e| StoreError::Backend(e.to_string()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| StoreError::Backend(format!("TLS client certificate: {e}")))
            }
        }
    }

    /// `ca_file`'s certificates, or the system roots.
    fn roots(&self) -> Result<RootCertStore, StoreError> {
        let mut roots = RootCertStore::empty();
        if let Some(ca) = &self.ca {
            for cert in CertificateDer::pem_slice_iter(&ca.pem).flatten() {
                roots
                    .add(cert)
                    .map_err(|e| StoreError::Backend(format!("store.tls_ca_file: {e}")))?;
            }
            return Ok(roots);
        }
        let native = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(native.certs);
        if added == 0 {
            return Err(StoreError::Backend(format!(
                "no system root certificates found ({}); install ca-certificates or set store.tls_ca_file",
                native
                    .errors
                    .first()
                    .map_or_else(|| "none installed".to_owned(), ToString::to_string)
            )));
        }
        Ok(roots)
    }
}

/// The one crypto provider (aws-lc-rs, as reqwest elsewhere in the
/// workspace), also installed as the process default, which redis-rs's
/// `ClientConfig::builder()` uses. Installing twice is harmless.
pub(crate) fn provider() -> CryptoProvider {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    rustls::crypto::aws_lc_rs::default_provider()
}

/// Whether `err` (or an error it wraps) is a TLS certificate problem: the
/// server's certificate is not trusted (wrong `tls_ca_file`), or the server
/// refused ours. A configuration error, so the stores fail at start.
pub(crate) fn certificate_error(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    rustls_error_in(err)
        .filter(|e| is_certificate_problem(e))
        .map(ToString::to_string)
}

/// The rustls error inside `err`, looking through `source()` and the
/// wrappers the clients use (an `io::Error` holding it, redis-rs's `Arc`),
/// which `source()` alone skips.
fn rustls_error_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    type Shared = Arc<dyn std::error::Error + Send + Sync>;
    if let Some(tls) = err.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let inner: Option<&(dyn std::error::Error + 'static)> =
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            io.get_ref().map(|e| e as _)
        } else if let Some(shared) = err.downcast_ref::<Shared>() {
            Some(&**shared)
        } else {
            None
        };
    inner
        .and_then(rustls_error_in)
        .or_else(|| err.source().and_then(rustls_error_in))
}

fn is_certificate_problem(err: &rustls::Error) -> bool {
    use rustls::AlertDescription as A;
    matches!(
        err,
        rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::AlertReceived(
                A::BadCertificate
                    | A::UnknownCA
                    | A::CertificateRequired
                    | A::CertificateUnknown
                    | A::AccessDenied
            )
    )
}

fn read(key: StoreKey, path: &Path) -> Result<PemFile, ConfigIssue> {
    std::fs::read(path)
        .map(|pem| PemFile {
            path: path.to_owned(),
            pem,
        })
        .map_err(|e| key.issue(format!("cannot read {path:?}: {e}")))
}

fn certificates(
    key: StoreKey,
    file: &PemFile,
) -> Result<Vec<CertificateDer<'static>>, ConfigIssue> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&file.pem)
        .collect::<Result<_, _>>()
        .map_err(|e| key.issue(format!("{:?} is not valid PEM: {e}", file.path)))?;
    if certs.is_empty() {
        return Err(key.issue(format!(
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in {:?}",
            file.path
        )));
    }
    Ok(certs)
}

fn check_roots(file: &PemFile) -> Result<(), ConfigIssue> {
    let mut roots = RootCertStore::empty();
    for (i, cert) in certificates(StoreKey::TlsCaFile, file)?
        .into_iter()
        .enumerate()
    {
        roots.add(cert).map_err(|e| {
            StoreKey::TlsCaFile.issue(format!(
                "certificate {} in {:?} is not usable as a CA: {e}",
                i + 1,
                file.path
            ))
        })?;
    }
    Ok(())
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn parse_identity(cert: &PemFile, key: &PemFile) -> Result<Identity, ConfigIssue> {
    let chain = certificates(StoreKey::TlsCertFile, cert)?;
    let key = PrivateKeyDer::from_pem_slice(&key.pem).map_err(|e| {
        StoreKey::TlsKeyFile.issue(format!(
            "no PEM private key (PKCS#8, PKCS#1 or SEC1) in {:?}: {e}",
            key.path
        ))
    })?;
    Ok((chain, key))
}

/// The chain parses, the key parses, and the key belongs to the chain's
/// first certificate (rustls checks that when building the config).
fn check_identity(cert: &PemFile, key: &PemFile) -> Result<(), ConfigIssue> {
    let (chain, private) = parse_identity(cert, key)?;
    ClientConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreKey::TlsKeyFile.issue(e.to_string()))?
        .with_root_certificates(RootCertStore::empty())
        .with_client_auth_cert(chain, private)
        .map(drop)
        .map_err(|e| {
            StoreKey::TlsKeyFile.issue(format!(
                "{:?} does not fit the certificate in {:?}: {e}",
                key.path, cert.path
            ))
        })
}

/// `tls_insecure_skip_verify`: accepts any server certificate (signatures
/// are still checked, so the handshake is well-formed; the peer is not).
#[derive(Debug)]
struct SkipVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
