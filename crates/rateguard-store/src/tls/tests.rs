use std::path::Path;

use rateguard_testkit::TestCerts;

use super::*;

fn issues(result: Result<TlsOptions, Vec<ConfigIssue>>) -> Vec<String> {
    result
        .expect_err("problems")
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn generated_files_load_and_defaults_are_the_system_roots() {
    let certs = TestCerts::generate().unwrap();
    let (ca, cert, key) = (
        certs.ca_file(),
        certs.client_cert_file(),
        certs.client_key_file(),
    );
    let tls = TlsOptions::from_files(Some(&ca), Some(&cert), Some(&key)).unwrap();
    assert!(tls.has_client_certificate() && !tls.is_default());
    assert!(!tls.insecure_skip_verify());
    assert!(tls.clone().skip_verify(true).insecure_skip_verify());
    let certificates = tls.redis_certificates().unwrap();
    assert!(certificates.root_cert.is_some() && certificates.client_tls.is_some());
    tls.rustls_config().unwrap();
    let none = TlsOptions::from_files(None, None, None).unwrap();
    assert!(none.is_default() && none.redis_certificates().is_none());
    // Debug names the files, never the key's bytes.
    let debug = format!("{tls:?}");
    assert!(
        debug.contains("client.key") && !debug.contains("PRIVATE KEY"),
        "{debug}"
    );
}

#[test]
fn every_problem_names_its_key_and_file() {
    let certs = TestCerts::generate().unwrap();
    let missing = Path::new("/nonexistent/ca.pem");
    assert_eq!(
        issues(TlsOptions::from_files(Some(missing), None, None)),
        ["store.tls_ca_file: cannot read \"/nonexistent/ca.pem\": No such file or directory (os error 2)"]
    );
    // A key is not a certificate.
    let key = certs.client_key_file();
    let found = issues(TlsOptions::from_files(Some(&key), None, None));
    assert!(
        found[0].starts_with("store.tls_ca_file: no PEM certificate"),
        "{found:?}"
    );
    assert!(found[0].contains("client.key"), "{found:?}");
    let cert = certs.client_cert_file();
    assert_eq!(
        issues(TlsOptions::from_files(None, Some(&cert), None)),
        ["store.tls_key_file: required with store.tls_cert_file"]
    );
    assert_eq!(
        issues(TlsOptions::from_files(None, None, Some(&key))),
        ["store.tls_cert_file: required with store.tls_key_file"]
    );
    // A certificate is not a key.
    let found = issues(TlsOptions::from_files(None, Some(&cert), Some(&cert)));
    assert!(
        found[0].starts_with("store.tls_key_file: no PEM private key"),
        "{found:?}"
    );
    // The server's key does not fit the client's certificate.
    let server_key = certs.server_key_file();
    let found = issues(TlsOptions::from_files(None, Some(&cert), Some(&server_key)));
    assert!(found[0].starts_with("store.tls_key_file: "), "{found:?}");
    assert!(
        found[0].contains("does not fit the certificate"),
        "{found:?}"
    );
}
