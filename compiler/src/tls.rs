//! The TLS listener's certificate files, read and checked one way for every
//! caller: `check`/`compile` report what they find (and only warn when a file
//! cannot be read here: CI often has no keys), `run` and reload refuse on any
//! problem. The files are never copied into the plan.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// A certificate expiring sooner than this is a warning.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

/// A loaded certificate chain with its signing key, and what the checks and
/// the SNI selection need to know about its leaf.
#[derive(Debug)]
pub struct Certificate {
    pub key: Arc<CertifiedKey>,
    /// The leaf's DNS names (subjectAltName, else the subject's CN),
    /// lowercase; a name may be a `*.` wildcard.
    pub names: Vec<String>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

/// Which of a certificate entry's two files a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertFile {
    Cert,
    Key,
}

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The file cannot be read here (missing, unreadable).
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        file: CertFile,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file was read and is wrong.
    #[error("{}: {why}", path.display())]
    Invalid { file: CertFile, path: PathBuf, why: String },
}

/// Reads `cert` (PEM chain, leaf first) and `key` (PEM PKCS#8, PKCS#1 or
/// SEC1) and checks that they belong together.
pub fn load(cert: &Path, key: &Path) -> Result<Certificate, CertError> {
    let read = |file, path: &Path| {
        std::fs::read(path).map_err(|source| CertError::Unreadable {
            file,
            path: path.to_path_buf(),
            source,
        })
    };
    let invalid = |file, why: String| CertError::Invalid {
        file,
        path: match file {
            CertFile::Cert => cert.to_path_buf(),
            CertFile::Key => key.to_path_buf(),
        },
        why,
    };
    let (cert_pem, key_pem) = (read(CertFile::Cert, cert)?, read(CertFile::Key, key)?);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(CertFile::Cert, format!("not a PEM certificate chain: {e}")))?;
    let Some(leaf) = chain.first() else {
        return Err(invalid(CertFile::Cert, "no CERTIFICATE block in the file".into()));
    };
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        invalid(
            CertFile::Key,
            format!("no private key (a PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block): {e}"),
        )
    })?;
    let (names, not_before, not_after) = describe(leaf).map_err(|why| invalid(CertFile::Cert, why))?;
    let provider = rustls::crypto::ring::default_provider();
    let signer = provider
        .key_provider
        .load_private_key(private)
        .map_err(|e| invalid(CertFile::Key, format!("unsupported private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signer);
    certified.keys_match().map_err(|_| {
        invalid(
            CertFile::Key,
            format!("this private key does not match the certificate in {}", cert.display()),
        )
    })?;
    Ok(Certificate {
        key: Arc::new(certified),
        names,
        not_before,
        not_after,
    })
}

/// The CA certificates of a PEM file (a cluster's `tls.ca`).
pub fn load_ca(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let pem = std::fs::read(path).map_err(|source| CertError::Unreadable {
        file: CertFile::Cert,
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |why: String| CertError::Invalid {
        file: CertFile::Cert,
        path: path.to_path_buf(),
        why,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(format!("not a PEM file of certificates: {e}")))?;
    if certs.is_empty() {
        return Err(invalid("no CERTIFICATE block in the file".into()));
    }
    for cert in &certs {
        describe(cert).map_err(|why| invalid(why.replace("the first certificate", "a certificate")))?;
    }
    Ok(certs)
}

/// The leaf's DNS names and validity period.
fn describe(leaf: &CertificateDer<'_>) -> Result<(Vec<String>, SystemTime, SystemTime), String> {
    use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};
    let (_, x509) =
        X509Certificate::from_der(leaf).map_err(|e| format!("the first certificate is not valid X.509: {e}"))?;
    let mut names: Vec<String> = Vec::new();
    if let Ok(Some(san)) = x509.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(n) = name {
                names.push(n.to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        names.extend(
            x509.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(str::to_ascii_lowercase),
        );
    }
    let at = |t: x509_parser::time::ASN1Time| {
        let secs = t.timestamp();
        if secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(secs as u64)
        } else {
            UNIX_EPOCH
        }
    };
    let validity = x509.validity();
    Ok((names, at(validity.not_before), at(validity.not_after)))
}

/// Whether `host` (lowercase, no port) is one of `names`; a `*.example.com`
/// name covers exactly one label in front of `example.com` (RFC 6125).
pub fn covers(names: &[String], host: &str) -> bool {
    names.iter().any(|name| match name.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest.eq_ignore_ascii_case(suffix)),
        None => name.eq_ignore_ascii_case(host),
    })
}

/// A calendar date (UTC) for messages.
pub fn date(t: SystemTime) -> String {
    let days = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Howard Hinnant's days-from-civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        let names = vec!["*.example.com".to_owned(), "example.org".to_owned()];
        assert!(covers(&names, "a.example.com"));
        assert!(!covers(&names, "example.com"));
        assert!(!covers(&names, "a.b.example.com"));
        assert!(!covers(&names, ".example.com"));
        assert!(covers(&names, "EXAMPLE.org"));
        assert!(!covers(&names, "www.example.org"));
    }

    #[test]
    fn dates() {
        assert_eq!(date(UNIX_EPOCH), "1970-01-01");
        assert_eq!(date(UNIX_EPOCH + Duration::from_secs(1_795_824_000)), "2026-11-28");
        assert_eq!(date(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29");
    }
}
