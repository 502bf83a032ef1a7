//! The `tls` section: certificates generated here (rcgen) are checked the way
//! `check`/`compile` check a user's files: readable ones fully, unreadable
//! ones with a warning, and never embedded in the plan.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use std::path::Path;

use compiler::{Compiled, Severity, compile_str};
use rcgen::{CertificateParams, KeyPair};
use time::{Duration, OffsetDateTime};

/// Writes `NAME.pem` and `NAME.key` into `dir`: a self-signed certificate for
/// `names`, valid from `from` to `until` (days from now).
fn write_cert(dir: &Path, name: &str, names: &[&str], from: i64, until: i64) {
    let mut params = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    params.not_before = OffsetDateTime::now_utc() + Duration::days(from);
    params.not_after = OffsetDateTime::now_utc() + Duration::days(until);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
}

fn config(tls: &str) -> String {
    format!(
        "listen: 127.0.0.1:8080\n{tls}\nroutes:\n  - {{ name: all, pathPrefix: /, cluster: c }}\nclusters:\n  - {{ name: c, upstreams: [{{ url: \"http://127.0.0.1:9\" }}] }}\n"
    )
}

fn compile(dir: &Path, tls: &str) -> Compiled {
    compile_str("gateway.yaml", &config(tls), dir)
}

fn messages(c: &Compiled, severity: Severity) -> Vec<String> {
    c.diagnostics
        .iter()
        .filter(|d| d.severity == severity)
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_valid_certificate_compiles_by_reference_only() {
    let dir = tempdir();
    write_cert(dir.path(), "site", &["example.com", "*.example.com"], -1, 365);
    let c = compile(
        dir.path(),
        "tls:\n  listen: 127.0.0.1:8443\n  certificates:\n    - { cert: site.pem, key: site.key }\n  minVersion: \"1.3\"\ndefaults:\n  timeouts: { handshakeMs: 2500 }",
    );
    assert!(c.diagnostics.is_empty(), "{:?}", messages(&c, Severity::Warning));
    let plan = c.plan.as_ref().expect("compiles");
    let tls = plan.tls.as_ref().expect("a TLS listener");
    assert_eq!(tls.listen, "127.0.0.1:8443");
    assert_eq!(tls.certificates[0].cert, "site.pem");
    assert_eq!(tls.min_version, plan::TlsVersion::Tls13);
    assert_eq!(tls.alpn, ["h2", "http/1.1"]);
    assert_eq!(tls.handshake_ms, 2500);
    let artifact = String::from_utf8(plan::encode(plan, &c.source_digest)).unwrap();
    assert!(!artifact.contains("PRIVATE KEY") && !artifact.contains("BEGIN"));
}

#[test]
fn unreadable_files_warn_and_still_compile() {
    let dir = tempdir();
    let c = compile(
        dir.path(),
        "tls:\n  listen: 127.0.0.1:8443\n  certificates:\n    - { cert: missing.pem, key: missing.key }",
    );
    assert!(c.plan.is_some());
    let warnings = messages(&c, Severity::Warning);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("gateway.yaml:5:") && warnings[0].contains("tls.certificates[0].cert: cannot read"),
        "{warnings:?}"
    );
}

#[test]
fn broken_mismatched_and_expired_certificates_are_errors() {
    let dir = tempdir();
    write_cert(dir.path(), "a", &["a.example"], -1, 365);
    write_cert(dir.path(), "b", &["b.example"], -1, 365);
    write_cert(dir.path(), "old", &["old.example"], -30, -1);
    std::fs::write(dir.path().join("junk.pem"), "hello\n").unwrap();
    let c = compile(
        dir.path(),
        "tls:\n  listen: 127.0.0.1:8443\n  certificates:\n    - { cert: junk.pem, key: a.key }\n    - { cert: a.pem, key: b.key }\n    - { cert: old.pem, key: old.key }\n    - { cert: a.pem, key: a.pem }",
    );
    assert!(c.plan.is_none());
    let errors = messages(&c, Severity::Error);
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(
        errors[0].contains("certificates[0].cert: no CERTIFICATE block"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("certificates[1].key: this private key does not match"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].contains("certificates[2].cert: certificate \"old.pem\" expired on"),
        "{}",
        errors[2]
    );
    assert!(
        errors[3].contains("certificates[3].key: no private key"),
        "{}",
        errors[3]
    );
}

#[test]
fn expiring_soon_is_a_warning_and_alpn_keeps_its_order() {
    let dir = tempdir();
    write_cert(dir.path(), "soon", &["soon.example"], -1, 5);
    let c = compile(
        dir.path(),
        "tls:\n  listen: 127.0.0.1:8443\n  certificates:\n    - { cert: soon.pem, key: soon.key }\n  alpn: [http/1.1, h2]",
    );
    let warnings = messages(&c, Severity::Warning);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("expires on") && warnings[0].contains("within 14 days"));
    assert_eq!(c.plan.unwrap().tls.unwrap().alpn, ["http/1.1", "h2"]);
}

#[test]
fn shape_errors_are_located() {
    let dir = tempdir();
    let c = compile(
        dir.path(),
        "tls:\n  listen: 127.0.0.1:8080\n  certificates: []\n  minVersion: \"1.1\"\n  alpn: [spdy]",
    );
    let errors = messages(&c, Severity::Error);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("tls.listen: 127.0.0.1:8080 is also listen")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("tls.certificates: must list at least one certificate"))
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("tls.minVersion: must be one of \"1.2\", \"1.3\""))
    );
    assert!(errors.iter().any(|e| e.contains("tls.alpn[0]: must be one of")));
    let route = compile_str(
        "gateway.yaml",
        "routes:\n  - { name: r, pathPrefix: /, cluster: c, timeouts: { handshakeMs: 5 } }\nclusters:\n  - { name: c, upstreams: [{ url: \"http://127.0.0.1:9\" }] }\n",
        dir.path(),
    );
    assert!(messages(&route, Severity::Error)[0].contains("handshakeMs applies to TLS connections"));
}

/// A fresh directory under the target dir, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> TempDir {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "compiler-tls-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

fn cluster_config(url: &str, tls: &str) -> String {
    format!(
        "routes:\n  - {{ name: all, pathPrefix: /, cluster: c }}\nclusters:\n  - name: c\n    upstreams: [{{ url: \"{url}\" }}]\n{tls}"
    )
}

#[test]
fn https_upstreams_and_their_tls_settings() {
    let dir = tempdir();
    write_cert(dir.path(), "ca", &["up.example"], -1, 30);
    std::fs::write(dir.path().join("junk.pem"), "not pem\n").unwrap();
    let check = |url: &str, tls: &str| compile_str("gateway.yaml", &cluster_config(url, tls), dir.path());

    let c = check("https://up.example:8443/base", "    tls: { ca: ca.pem }\n");
    assert!(c.diagnostics.is_empty(), "{:?}", messages(&c, Severity::Warning));
    let plan = c.plan.unwrap();
    assert_eq!(plan.clusters[0].tls.as_ref().unwrap().ca.as_deref(), Some("ca.pem"));

    let c = check("https://up.example", "    tls: { insecureSkipVerify: true }\n");
    let warnings = messages(&c, Severity::Warning);
    assert!(
        warnings.len() == 1
            && warnings[0].contains("clusters[0].tls.insecureSkipVerify: upstream certificates are not verified"),
        "{warnings:?}"
    );
    let c = check("http://up.example", "    tls: { ca: ca.pem }\n");
    assert!(messages(&c, Severity::Warning)[0].contains("clusters[0].tls: has no effect"));
    let c = check("https://up.example", "    tls: { ca: missing.pem }\n");
    assert!(c.plan.is_some());
    assert!(messages(&c, Severity::Warning)[0].contains("clusters[0].tls.ca: cannot read"));
    let c = check("https://up.example", "    tls: { ca: junk.pem }\n");
    assert!(messages(&c, Severity::Error)[0].contains("clusters[0].tls.ca: no CERTIFICATE block"));
    let c = check(
        "https://up.example",
        "    tls: { ca: ca.pem, insecureSkipVerify: true }\n",
    );
    assert!(messages(&c, Severity::Error)[0].contains("contradict"));
    let c = check("ftp://up.example", "");
    assert!(messages(&c, Severity::Error)[0].contains("use \"http://\" or \"https://\""));
}

#[test]
fn http2_settings_are_lowered_with_defaults_and_h2_upstreams_refused() {
    let dir = tempdir();
    let c = compile_str(
        "gateway.yaml",
        &config("http2: { maxConcurrentStreams: 64, cleartext: true }"),
        dir.path(),
    );
    assert!(c.diagnostics.is_empty(), "{:?}", messages(&c, Severity::Warning));
    let h2 = c.plan.unwrap().http2;
    assert_eq!((h2.max_concurrent_streams, h2.cleartext), (64, true));
    let c = compile_str("gateway.yaml", &config(""), dir.path());
    let h2 = c.plan.unwrap().http2;
    assert_eq!((h2.max_concurrent_streams, h2.cleartext), (128, false));
    let c = compile_str(
        "gateway.yaml",
        &config("http2: { maxConcurrentStreams: 0 }"),
        dir.path(),
    );
    assert!(messages(&c, Severity::Error)[0].contains("http2.maxConcurrentStreams"));
    let c = compile_str(
        "gateway.yaml",
        &cluster_config("http://127.0.0.1:9", "    protocol: h2\n"),
        dir.path(),
    );
    assert!(c.diagnostics.is_empty(), "{:?}", messages(&c, Severity::Warning));
    assert_eq!(c.plan.unwrap().clusters[0].protocol, plan::UpstreamProtocol::H2);
    let c = compile_str(
        "gateway.yaml",
        &cluster_config("http://127.0.0.1:9", "    protocol: http1\n"),
        dir.path(),
    );
    assert!(c.diagnostics.is_empty());
    assert_eq!(c.plan.unwrap().clusters[0].protocol, plan::UpstreamProtocol::Http1);
    let c = compile_str(
        "gateway.yaml",
        &cluster_config("http://127.0.0.1:9", "    protocol: h3\n"),
        dir.path(),
    );
    assert!(messages(&c, Severity::Error)[0].contains("clusters[0].protocol"));
}
