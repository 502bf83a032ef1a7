//! Checks of the `tls` section and its lowering into the plan: addresses,
//! ALPN, and each certificate file that can be read here (SPEC §14).

use std::path::Path;
use std::time::SystemTime;

use plan::{CertificateFiles, TlsListener};

use crate::config::{ALPN_SERVED, ClusterCfg, Config, TlsCfg};
use crate::diag::Diagnostics;
use crate::tls::{CertError, CertFile, EXPIRY_WARNING, date, load, load_ca};

/// Default `defaults.timeouts.handshakeMs`.
pub const HANDSHAKE_MS: u64 = 10_000;

pub fn lower(t: &TlsCfg, cfg: &Config, diags: &mut Diagnostics, base_dir: &Path) -> Option<TlsListener> {
    let listen = t.listen.as_ref()?;
    for (other, name) in [(&cfg.listen, "listen"), (&cfg.admin_listen, "admin.listen")] {
        if let Some(o) = other
            && o.value == listen.value
            && listen.value.port() != 0
        {
            diags.error(
                listen.loc,
                &listen.path,
                format!("{} is also {name} (line {})", listen.value, o.loc.line),
            );
        }
    }
    let mut alpn: Vec<String> = Vec::new();
    for a in &t.alpn {
        if ALPN_SERVED.contains(&a.value.as_str()) {
            alpn.push(a.value.clone());
        } else {
            diags.warning(
                a.loc,
                &a.path,
                format!(
                    "{:?} is not served by this build of the gateway and is not offered (offered: {})",
                    a.value,
                    ALPN_SERVED.join(", ")
                ),
            );
        }
    }
    if alpn.is_empty() {
        if !t.alpn.is_empty() {
            diags.warning(t.loc, "tls.alpn", "no protocol left to offer: http/1.1 is offered");
        }
        alpn = ALPN_SERVED.iter().map(|s| (*s).to_owned()).collect();
    }
    let now = SystemTime::now();
    for c in &t.certificates {
        check_files(c, base_dir, now, diags);
    }
    Some(TlsListener {
        listen: listen.value.to_string(),
        certificates: t
            .certificates
            .iter()
            .map(|c| CertificateFiles {
                cert: c.cert.value.clone(),
                key: c.key.value.clone(),
            })
            .collect(),
        min_version: t.min_version,
        alpn,
        handshake_ms: cfg.defaults.handshake_ms.unwrap_or(HANDSHAKE_MS),
    })
}

fn check_files(c: &crate::config::CertCfg, base_dir: &Path, now: SystemTime, diags: &mut Diagnostics) {
    match load(&base_dir.join(&c.cert.value), &base_dir.join(&c.key.value)) {
        Ok(cert) => {
            if cert.not_after <= now {
                diags.error(
                    c.cert.loc,
                    &c.cert.path,
                    format!("certificate {:?} expired on {}", c.cert.value, date(cert.not_after)),
                );
            } else if cert.not_after.duration_since(now).unwrap_or_default() < EXPIRY_WARNING {
                diags.warning(
                    c.cert.loc,
                    &c.cert.path,
                    format!(
                        "certificate {:?} expires on {}, within 14 days",
                        c.cert.value,
                        date(cert.not_after)
                    ),
                );
            }
            if cert.not_before > now {
                diags.warning(
                    c.cert.loc,
                    &c.cert.path,
                    format!(
                        "certificate {:?} is not valid before {}",
                        c.cert.value,
                        date(cert.not_before)
                    ),
                );
            }
            if cert.names.is_empty() {
                diags.warning(
                    c.cert.loc,
                    &c.cert.path,
                    format!(
                        "certificate {:?} names no DNS host (no subjectAltName or common name): SNI never selects it and clients that verify refuse it",
                        c.cert.value
                    ),
                );
            }
        }
        Err(CertError::Unreadable { file, path, source }) => {
            let at = if file == CertFile::Key { &c.key } else { &c.cert };
            diags.warning(
                at.loc,
                &at.path,
                format!(
                    "cannot read {} here ({source}); not checked, and `gateway run` refuses to start without it",
                    path.display()
                ),
            );
        }
        Err(CertError::Invalid { file, why, .. }) => {
            let at = if file == CertFile::Key { &c.key } else { &c.cert };
            diags.error(at.loc, &at.path, why);
        }
    }
}

/// Checks a cluster's `tls` against its upstreams: a CA file that can be
/// read must hold certificates (one that cannot be read here is a warning,
/// as for the listener's); `insecureSkipVerify` is always a warning; `tls`
/// on a cluster without an `https://` upstream does nothing and says so.
pub fn upstream(c: &ClusterCfg, index: usize, diags: &mut Diagnostics, base_dir: &Path) {
    let Some(tls) = &c.tls else { return };
    let path = format!("clusters[{index}].tls");
    if !c.upstreams.iter().any(|u| u.url.starts_with("https://")) {
        diags.warning(
            tls.loc,
            &path,
            "has no effect: none of this cluster's upstreams is https://",
        );
    }
    if let Some(skip) = &tls.insecure_skip_verify
        && skip.value
    {
        diags.warning(
            skip.loc,
            &skip.path,
            "upstream certificates are not verified: the connection is encrypted but anyone on the path can impersonate the upstream",
        );
        if let Some(ca) = &tls.ca {
            diags.error(
                ca.loc,
                &ca.path,
                "ca and insecureSkipVerify: true contradict each other",
            );
        }
    }
    if let Some(ca) = &tls.ca {
        match load_ca(&base_dir.join(&ca.value)) {
            Ok(_) => {}
            Err(CertError::Unreadable { path, source, .. }) => diags.warning(
                ca.loc,
                &ca.path,
                format!(
                    "cannot read {} here ({source}); not checked, and `gateway run` refuses to start without it",
                    path.display()
                ),
            ),
            Err(CertError::Invalid { why, .. }) => diags.error(ca.loc, &ca.path, why),
        }
    }
}
