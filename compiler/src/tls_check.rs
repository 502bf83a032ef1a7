//! The TLS parts of a config (SPEC §14): the `tls` listener, `http2`, and a
//! cluster's `tls`, read (with located diagnostics), checked (addresses,
//! ALPN, each certificate or CA file that can be read here) and lowered.

use std::path::Path;
use std::time::SystemTime;

use plan::{CertificateFiles, TlsListener};

use marked_yaml::Node;

use crate::config::{ALPN_SERVED, CertCfg, ClusterCfg, Config, Http2Cfg, TlsCfg, UpstreamTlsCfg};
use crate::diag::Diagnostics;
use crate::keys;
use crate::tls::{CertError, CertFile, EXPIRY_WARNING, date, load, load_ca};
use crate::yaml::{Reader, Spanned, join, loc};

impl Reader<'_> {
    pub(crate) fn tls(&mut self, node: &Node, path: &str) -> Option<TlsCfg> {
        let map = self.mapping(node, path, keys::TLS)?;
        let mut tls = TlsCfg {
            loc: loc(node),
            listen: None,
            certificates: Vec::new(),
            min_version: plan::TlsVersion::Tls12,
            alpn: Vec::new(),
        };
        match map.get_node("listen") {
            Some(v) => tls.listen = self.addr(v, &join(path, "listen")),
            None => self
                .diags
                .error(tls.loc, join(path, "listen"), "missing required field"),
        }
        let cp = join(path, "certificates");
        match map.get_node("certificates") {
            Some(v) => {
                let seq = self.sequence(v, &cp);
                if seq.is_none_or(|s| s.is_empty()) {
                    self.diags.error(loc(v), &cp, "must list at least one certificate");
                }
                for (i, item) in seq.into_iter().flat_map(|s| s.iter()).enumerate() {
                    let ip = format!("{cp}[{i}]");
                    let Some(entry) = self.mapping(item, &ip, keys::TLS_CERTIFICATE) else {
                        continue;
                    };
                    let mut file = |key: &str| match entry.get_node(key) {
                        Some(v) => self.string(v, &join(&ip, key)),
                        None => {
                            self.diags.error(loc(item), join(&ip, key), "missing required field");
                            None
                        }
                    };
                    if let (Some(cert), Some(key)) = (file("cert"), file("key")) {
                        tls.certificates.push(CertCfg { cert, key });
                    }
                }
            }
            None => self.diags.error(tls.loc, &cp, "missing required field"),
        }
        if let Some(v) = map.get_node("minVersion")
            && let Some(c) = self.choice(v, &join(path, "minVersion"), &["1.2", "1.3"])
        {
            tls.min_version = if c.value == "1.3" {
                plan::TlsVersion::Tls13
            } else {
                plan::TlsVersion::Tls12
            };
        }
        if let Some(v) = map.get_node("alpn") {
            let ap = join(path, "alpn");
            for (i, item) in self.sequence(v, &ap).into_iter().flat_map(|s| s.iter()).enumerate() {
                let ip = format!("{ap}[{i}]");
                let Some(name) = self.choice(item, &ip, ALPN_SERVED) else {
                    continue;
                };
                if tls.alpn.iter().any(|a| a.value == name.value) {
                    self.diags
                        .error(name.loc, &ip, format!("{:?} is listed twice", name.value));
                } else {
                    tls.alpn.push(name);
                }
            }
        }
        Some(tls)
    }

    /// A cluster's `tls`: how its `https://` upstreams are verified.
    pub(crate) fn upstream_tls(&mut self, v: &Node, tp: &str) -> Option<UpstreamTlsCfg> {
        let t = self.mapping(v, tp, keys::UPSTREAM_TLS)?;
        let mut tls = UpstreamTlsCfg {
            loc: loc(v),
            ca: None,
            insecure_skip_verify: None,
        };
        if let Some(ca) = t.get_node("ca") {
            tls.ca = self.string(ca, &join(tp, "ca"));
        }
        if let Some(skip) = t.get_node("insecureSkipVerify") {
            let p = join(tp, "insecureSkipVerify");
            tls.insecure_skip_verify = self.boolean(skip, &p).map(|b| Spanned {
                value: b,
                loc: loc(skip),
                path: p,
            });
        }
        Some(tls)
    }

    /// `http2`: the client side's HTTP/2 settings (ALPN `h2` on the TLS
    /// listener; h2c prior knowledge on `listen` when `cleartext`).
    pub(crate) fn http2(&mut self, value: &Node, k: &str) -> Http2Cfg {
        let mut cfg = Http2Cfg::default();
        let Some(h2) = self.mapping(value, k, keys::HTTP2) else {
            return cfg;
        };
        if let Some(v) = h2.get_node("maxConcurrentStreams") {
            cfg.max_concurrent_streams = self
                .integer(v, "http2.maxConcurrentStreams", 1, 10_000, "")
                .map(|n| n.value);
        }
        if let Some(v) = h2.get_node("cleartext") {
            cfg.cleartext = self.boolean(v, "http2.cleartext");
        }
        cfg
    }
}

/// Default `http2.maxConcurrentStreams`.
pub const MAX_CONCURRENT_STREAMS: u32 = 128;

/// The plan's `http2` settings: the defaults where the config is silent.
pub fn lower_http2(cfg: &Http2Cfg) -> plan::Http2 {
    plan::Http2 {
        max_concurrent_streams: cfg.max_concurrent_streams.map_or(MAX_CONCURRENT_STREAMS, |n| n as u32),
        cleartext: cfg.cleartext.unwrap_or(false),
    }
}

/// Default `defaults.timeouts.handshakeMs`.
pub const HANDSHAKE_MS: u64 = 10_000;

pub fn lower(t: &TlsCfg, cfg: &Config, diags: &mut Diagnostics, base_dir: &Path) -> Option<TlsListener> {
    let listen = t.listen.as_ref()?;
    for (other, name) in [(&cfg.listen, "listen"), (&cfg.admin_listen, "admin.listen")] {
        if let Some(o) = other
            && crate::config::addresses_collide(o.value, listen.value)
        {
            diags.error(
                listen.loc,
                &listen.path,
                format!("{} is also {name} (line {})", listen.value, o.loc.line),
            );
        }
    }
    // Offered in the order listed; none listed: the default order.
    let alpn: Vec<String> = if t.alpn.is_empty() {
        ALPN_SERVED.iter().map(|s| (*s).to_owned()).collect()
    } else {
        t.alpn.iter().map(|a| a.value.clone()).collect()
    };
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
