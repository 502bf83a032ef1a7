//! `gateway demo`: the example config served with built-in echo upstreams on the
//! loopback addresses it names that nothing listens on, plus a few `curl` lines;
//! and, when the config has no `tls`, a TLS listener (HTTP/2 and HTTP/1.1)
//! with a self-signed certificate for `localhost` generated at start.

use std::net::SocketAddr;
use std::path::PathBuf;

use plan::Plan;

use crate::load::Source;
use crate::observe::logging::announce;

/// `source` with a TLS listener on `listen` that serves a certificate
/// generated now (into a directory of the system's temporary one), for when
/// the config has none. Unchanged for a plan artifact, or when `listen`
/// cannot be bound (the demo then serves plain HTTP only, and says why).
pub fn with_tls(source: Source, listen: SocketAddr) -> Source {
    let Source::Config(config) = source else {
        return source;
    };
    let generated = std::net::TcpListener::bind(listen)
        .map_err(|e| format!("{listen}: {e}"))
        .and_then(|_| self_signed_localhost().map_err(|e| format!("certificate: {e}")));
    match generated {
        Ok((cert, key)) => Source::Demo {
            config,
            tls: Box::new(plan::TlsListener {
                listen: listen.to_string(),
                certificates: vec![plan::CertificateFiles {
                    cert: cert.display().to_string(),
                    key: key.display().to_string(),
                }],
                min_version: plan::TlsVersion::Tls12,
                alpn: vec!["h2".to_owned(), "http/1.1".to_owned()],
                handshake_ms: compiler::HANDSHAKE_MS,
            }),
        },
        Err(e) => {
            eprintln!("demo: no TLS listener ({e})");
            Source::Config(config)
        }
    }
}

/// Writes a fresh self-signed ECDSA P-256 certificate for `localhost` (and
/// 127.0.0.1) and its key; returns their paths.
fn self_signed_localhost() -> Result<(PathBuf, PathBuf), String> {
    let dir = std::env::temp_dir().join(format!("gateway-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let params = rcgen::CertificateParams::new(names).map_err(|e| e.to_string())?;
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let (cert_path, key_path) = (dir.join("localhost.pem"), dir.join("localhost.key"));
    std::fs::write(&cert_path, cert.pem()).map_err(|e| e.to_string())?;
    std::fs::write(&key_path, key.serialize_pem()).map_err(|e| e.to_string())?;
    Ok((cert_path, key_path))
}

/// Loopback upstream addresses of `plan` that are free to bind right now.
pub fn free_upstreams(plan: &Plan) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for cluster in &plan.clusters {
        for u in &cluster.upstreams {
            let Some(addr) = u
                .url
                .strip_prefix("http://")
                .and_then(|rest| rest.split('/').next())
                .and_then(|a| a.parse::<SocketAddr>().ok())
            else {
                continue;
            };
            if addr.ip().is_loopback() && !out.contains(&addr) && std::net::TcpListener::bind(addr).is_ok() {
                out.push(addr);
            }
        }
    }
    out
}

/// Starts echo upstreams on `addrs` on a thread of their own and prints how to try.
pub fn start(addrs: &[SocketAddr], plan: &Plan, gateway: SocketAddr, tls: Option<SocketAddr>) -> std::io::Result<()> {
    let mut listeners = Vec::new();
    for addr in addrs {
        listeners.push(std::net::TcpListener::bind(addr)?);
    }
    std::thread::Builder::new()
        .name("demo-upstreams".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                let mut tasks = Vec::new();
                for l in listeners {
                    let _ = l.set_nonblocking(true);
                    if let Ok(l) = tokio::net::TcpListener::from_std(l) {
                        tasks.push(tokio::spawn(crate::cli::echo::serve(l)));
                    }
                }
                for t in tasks {
                    let _ = t.await;
                }
            });
        })?;
    let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    let list = if list.is_empty() {
        "(none free)".to_owned()
    } else {
        list.join(", ")
    };
    announce(&format!("demo: echo upstreams on {list}"));
    let samples = samples(plan);
    announce("demo: try these (each answer names the upstream that served it):");
    for (host, path, route) in &samples {
        announce(&format!(
            "  curl -s -H 'Host: {host}' http://{gateway}{path}    # route {route}"
        ));
    }
    if let (Some(tls), Some((host, path, route))) = (tls, samples.first()) {
        // The name goes in the SNI too, so the connection serves that host
        // (a self-signed certificate for localhost: -k).
        let port = tls.port();
        announce(&format!(
            "  curl -sk --http2 --resolve {host}:{port}:{} https://{host}:{port}{path}    # route {route}, HTTP/2 over TLS",
            tls.ip()
        ));
    }
    // Send them once, so the first screen already shows proxied answers.
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        for (host, path, route) in samples {
            announce(&format!(
                "demo: GET {host}{path} -> {}   # route {route}",
                fetch(gateway, &host, &path)
            ));
        }
    });
    Ok(())
}

/// One sample request per route: `(host, path, route name)`.
fn samples(plan: &Plan) -> Vec<(String, String, String)> {
    plan.routes
        .iter()
        .filter(|route| {
            route.headers.is_empty()
                && route.query.is_empty()
                && (route.methods.is_empty() || route.methods.iter().any(|m| m == "GET"))
        })
        .take(8)
        .filter_map(|route| {
            let host = match route.hosts.first().map_or("*", String::as_str) {
                "*" => "anything.test".to_owned(),
                h => match h.strip_prefix("*.") {
                    Some(suffix) => format!("tenant1.{suffix}"),
                    None => h.to_owned(),
                },
            };
            let path = match &route.path {
                plan::PathMatch::Prefix(p) if p == "/" => "/hello".to_owned(),
                plan::PathMatch::Prefix(p) => format!("{p}/demo"),
                plan::PathMatch::Exact(p) => p.clone(),
                // A sample path for a regex is not worth guessing.
                plan::PathMatch::Regex(_) => return None,
            };
            Some((host, path, route.name.clone()))
        })
        .collect()
}

/// A one-shot blocking GET: `"200 from 127.0.0.1:9001"` or what went wrong.
fn fetch(gateway: SocketAddr, host: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(gateway) else {
        return "gateway not reachable".to_owned();
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    let status = response.split(' ').nth(1).unwrap_or("?");
    let upstream = response
        .lines()
        .find_map(|l| l.strip_prefix("x-upstream: "))
        .map_or(String::new(), |u| format!(" from {u}"));
    let kind = response
        .lines()
        .find_map(|l| l.strip_prefix("x-gateway-error: "))
        .map_or(String::new(), |k| format!(" ({k})"));
    let location = response
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .map_or(String::new(), |l| format!(" -> {l}"));
    format!("{status}{upstream}{kind}{location}")
}
