//! Test certificates, generated per test with `rcgen` (ECDSA P-256).

use std::path::Path;

use rcgen::{CertificateParams, KeyPair};
use time::{Duration, OffsetDateTime};

/// A certificate written to disk.
#[derive(Debug, Clone)]
pub struct TestCert {
    /// `NAME.pem` (file name, relative to the directory it was written to).
    pub cert: String,
    /// `NAME.key`.
    pub key: String,
    /// The certificate's DER, to compare with what a server sent.
    pub der: Vec<u8>,
}

/// Writes a self-signed certificate for `names`, valid from yesterday for
/// `days` days, as `dir/NAME.pem` and `dir/NAME.key`.
pub fn self_signed(dir: &Path, name: &str, names: &[&str], days: i64) -> TestCert {
    let mut params = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    params.not_before = OffsetDateTime::now_utc() - Duration::days(1);
    params.not_after = OffsetDateTime::now_utc() + Duration::days(days);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert_file, key_file) = (format!("{name}.pem"), format!("{name}.key"));
    std::fs::write(dir.join(&cert_file), cert.pem()).unwrap();
    std::fs::write(dir.join(&key_file), key.serialize_pem()).unwrap();
    TestCert {
        cert: cert_file,
        key: key_file,
        der: cert.der().to_vec(),
    }
}
