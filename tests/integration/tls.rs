//! SPEC §14 TLS termination through the real binary: certificates chosen by
//! SNI, the `tls` and `sni` log fields, 421 for a host the connection does not
//! serve, `handshakeMs`, `minVersion`, ALPN, certificates re-read on reload
//! (a broken one refused), and curl as a client nobody here wrote.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use gateway_tests::certs::{TestCert, self_signed};
use gateway_tests::{Behavior, Client, Gateway, TlsOptions, Upstream, scratch_dir};

/// A config with a TLS listener serving `certs` (in order), one route to `up`,
/// and an access log on stdout with the TLS fields.
fn tls_config(up: &Upstream, certs: &[&TestCert], extra: &str) -> String {
    let list: String = certs
        .iter()
        .map(|c| format!("    - {{ cert: {}, key: {} }}\n", c.cert, c.key))
        .collect();
    format!(
        "tls:\n  listen: 127.0.0.1:0\n  certificates:\n{list}{extra}accessLog:\n  json:\n    fields: [method, path, status, error, protocol, tls, sni]\nroutes:\n  - {{ name: all, pathPrefix: /, cluster: c }}\nclusters:\n  - {{ name: c, upstreams: [{{ url: \"{}\" }}] }}\n",
        up.url()
    )
}

/// Starts the gateway in `dir` (where the certificates are) on `yaml`.
fn start_in(dir: std::path::PathBuf, yaml: &str) -> Gateway {
    Gateway::start_in(dir, yaml, &["--admin", "127.0.0.1:0"])
}

fn tls_addr(gw: &Gateway) -> SocketAddr {
    gw.tls.expect("a TLS listener")
}

fn connect(gw: &Gateway, sni: Option<&str>) -> (Client, gateway_tests::TlsInfo) {
    Client::connect_tls(
        tls_addr(gw),
        &TlsOptions {
            sni,
            ..TlsOptions::default()
        },
    )
    .expect("TLS handshake")
}

#[test]
fn tls_terminates_keeps_alive_and_logs_tls_and_sni() {
    let dir = scratch_dir("tls");
    let site = self_signed(&dir, "site", &["example.test", "*.example.test"], 90);
    let up = Upstream::start("up", Behavior::Echo);
    let gw = start_in(dir, &tls_config(&up, &[&site], ""));

    let (mut c, info) = connect(&gw, Some("a.example.test"));
    assert_eq!(info.version, "TLSv1.3");
    assert_eq!(info.leaf, site.der);
    for path in ["/one", "/two"] {
        let r = c.get("a.example.test", path).expect("response");
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().starts_with(&format!("up GET {path}")), "{}", r.text());
    }
    let seen = up.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].header("x-forwarded-proto"), Some("https"));
    assert_eq!(seen[0].header("host"), Some("a.example.test"));

    let (mut old, info) = Client::connect_tls(
        tls_addr(&gw),
        &TlsOptions {
            sni: Some("example.test"),
            tls12_only: true,
            ..TlsOptions::default()
        },
    )
    .expect("TLS 1.2 handshake");
    assert_eq!(info.version, "TLSv1.2");
    assert_eq!(old.get("example.test", "/old").expect("response").status, 200);

    let mut plain = Client::connect(gw.addr).unwrap();
    assert_eq!(plain.get("example.test", "/plain").unwrap().status, 200);
    assert_eq!(up.requests()[3].header("x-forwarded-proto"), Some("http"));

    // Two workers flush their lines independently: compare in order of path.
    let mut lines = gw.wait_log_lines(4, Duration::from_secs(5));
    lines.sort_by_key(|l| ["/one", "/two", "/old", "/plain"].iter().position(|p| l.contains(p)));
    assert_eq!(
        lines[..4],
        [
            r#"{"method":"GET","path":"/one","status":200,"error":null,"protocol":"HTTP/1.1","tls":"TLSv1.3","sni":"a.example.test"}"#,
            r#"{"method":"GET","path":"/two","status":200,"error":null,"protocol":"HTTP/1.1","tls":"TLSv1.3","sni":"a.example.test"}"#,
            r#"{"method":"GET","path":"/old","status":200,"error":null,"protocol":"HTTP/1.1","tls":"TLSv1.2","sni":"example.test"}"#,
            r#"{"method":"GET","path":"/plain","status":200,"error":null,"protocol":"HTTP/1.1","tls":null,"sni":null}"#,
        ]
    );
    assert_eq!(gw.metric("gateway_tls_handshakes_total"), 2.0);
}

/// The TLS side of the client-closed watch: a client that goes away while
/// the upstream works ends the exchange (499, `client_closed`) and the
/// upstream connection is given up.
#[test]
fn a_tls_client_that_leaves_while_the_upstream_works_is_logged_499() {
    let dir = scratch_dir("tls");
    let site = self_signed(&dir, "site", &["example.test"], 90);
    let up = Upstream::start("up", Behavior::Hold);
    let gw = start_in(dir, &tls_config(&up, &[&site], ""));
    let (mut c, _) = connect(&gw, Some("example.test"));
    c.send(b"GET /slow HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .expect("send");
    let deadline = Instant::now() + Duration::from_secs(5);
    while up.hits() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(up.hits(), 1, "the upstream never got the request");
    drop(c);
    let lines = gw.wait_log_lines(1, Duration::from_secs(5));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(r#""status":499"#) && lines[0].contains(r#""error":"client_closed""#),
        "{}",
        lines[0]
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while up.closed.load(std::sync::atomic::Ordering::SeqCst) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        up.closed.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the upstream exchange was kept"
    );
}

#[test]
fn sni_selects_the_certificate_and_an_unknown_name_gets_the_first() {
    let dir = scratch_dir("tls");
    let a = self_signed(&dir, "a", &["a.test"], 90);
    let b = self_signed(&dir, "b", &["b.test", "*.b.test"], 90);
    let up = Upstream::start("up", Behavior::Echo);
    let gw = start_in(dir, &tls_config(&up, &[&a, &b], ""));
    for (sni, want, which) in [
        (Some("a.test"), &a, "a"),
        (Some("b.test"), &b, "b"),
        (Some("www.B.test"), &b, "b"),
        (Some("x.www.b.test"), &a, "a (a wildcard covers one label)"),
        (Some("unknown.test"), &a, "a"),
        (None, &a, "a"),
    ] {
        let (_, info) = connect(&gw, sni);
        assert!(info.leaf == want.der, "SNI {sni:?} should be served {which}");
    }
}

#[test]
fn a_host_the_connection_does_not_serve_gets_421() {
    let dir = scratch_dir("tls");
    let a = self_signed(&dir, "a", &["a.test"], 90);
    let b = self_signed(&dir, "b", &["b.test"], 90);
    let up = Upstream::start("up", Behavior::Echo);
    let gw = start_in(dir, &tls_config(&up, &[&a, &b], ""));

    let (mut c, _) = connect(&gw, Some("a.test"));
    let r = c.get("b.test", "/x").expect("response");
    assert_eq!(r.status, 421);
    assert_eq!(r.header("x-gateway-error"), Some("misdirected_request"));
    assert!(
        c.is_closed(Duration::from_secs(2)),
        "a misdirected connection is closed"
    );

    // The SNI's own name, with a port, in another case: served.
    let (mut c, _) = connect(&gw, Some("a.test"));
    let port = tls_addr(&gw).port();
    assert_eq!(c.get(&format!("A.TEST:{port}"), "/x").unwrap().status, 200);
    // A name the certificate does not have, asked for by SNI and Host alike:
    // the first certificate is served, and the request too.
    let (mut c, _) = connect(&gw, Some("unknown.test"));
    assert_eq!(c.get("unknown.test", "/x").unwrap().status, 200);
    // No SNI (a client that dialled an address): any host.
    let (mut c, _) = connect(&gw, None);
    assert_eq!(c.get("b.test", "/x").unwrap().status, 200);
    assert_eq!(up.hits(), 3, "the 421 never reached the upstream");
}

#[test]
fn a_stalled_or_garbage_handshake_is_cut_and_counted() {
    let dir = scratch_dir("tls");
    let site = self_signed(&dir, "site", &["site.test"], 90);
    let up = Upstream::start("up", Behavior::Echo);
    let gw = start_in(
        dir,
        &tls_config(&up, &[&site], "defaults:\n  timeouts: { handshakeMs: 300 }\n"),
    );
    let addr = tls_addr(&gw);

    let mut stalled = Client::connect(addr).unwrap();
    let began = Instant::now();
    assert!(stalled.is_closed(Duration::from_secs(5)), "a silent client is cut");
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "cut at handshakeMs, not later"
    );
    assert_eq!(
        gw.wait_metric(r#"gateway_tls_handshake_failures_total{reason="timeout"}"#, 1.0),
        1.0
    );

    // Plain HTTP on the TLS port: refused by the handshake, counted, and the
    // gateway keeps serving.
    let mut plain = std::net::TcpStream::connect(addr).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\nHost: site.test\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    std::io::Read::read_to_end(&mut plain, &mut answer).expect("closed after an alert");
    assert_eq!(answer.first(), Some(&0x15), "a TLS alert record, not HTTP: {answer:?}");
    assert_eq!(
        gw.wait_metric(r#"gateway_tls_handshake_failures_total{reason="error"}"#, 1.0),
        1.0
    );
    let (mut c, _) = connect(&gw, Some("site.test"));
    assert_eq!(c.get("site.test", "/").unwrap().status, 200);
    assert!(
        gw.log_lines().iter().all(|l| l.contains("\"status\":200")),
        "no log line for a failed handshake"
    );
}

#[test]
fn min_version_and_alpn() {
    let dir = scratch_dir("tls");
    let site = self_signed(&dir, "site", &["site.test"], 90);
    let up = Upstream::start("up", Behavior::Echo);
    let gw = start_in(dir, &tls_config(&up, &[&site], "  minVersion: \"1.3\"\n"));
    let tls12 = Client::connect_tls(
        tls_addr(&gw),
        &TlsOptions {
            sni: Some("site.test"),
            tls12_only: true,
            ..TlsOptions::default()
        },
    );
    assert!(tls12.is_err(), "a TLS 1.2 client is refused by minVersion 1.3");
    // The default offers h2 first; a listener whose `alpn` leaves h2 out
    // gives a client that prefers it http/1.1.
    let offer = TlsOptions {
        sni: Some("site.test"),
        alpn: &[b"h2", b"http/1.1"],
        ..TlsOptions::default()
    };
    let (_, info) = Client::connect_tls(tls_addr(&gw), &offer).unwrap();
    assert_eq!(info.alpn.as_deref(), Some(&b"h2"[..]));
    let dir = scratch_dir("tls");
    let site = self_signed(&dir, "site", &["site.test"], 90);
    let gw = start_in(dir, &tls_config(&up, &[&site], "  alpn: [http/1.1]\n"));
    let (mut c, info) = Client::connect_tls(tls_addr(&gw), &offer).unwrap();
    assert_eq!(info.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(c.get("site.test", "/").unwrap().status, 200);
}

#[test]
fn large_bodies_stream_both_ways_over_tls() {
    let dir = scratch_dir("tls");
    let site = self_signed(&dir, "site", &["site.test"], 90);
    let up = Upstream::start(
        "up",
        Behavior::Stream {
            chunks: 64,
            size: 64 * 1024,
        },
    );
    let gw = start_in(dir, &tls_config(&up, &[&site], ""));
    let (mut c, _) = connect(&gw, Some("site.test"));
    let body = vec![7u8; 3 * 1024 * 1024 + 17];
    let mut req = format!(
        "POST /up HTTP/1.1\r\nHost: site.test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    c.send(&req).unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 64 * 64 * 1024);
    assert!(
        r.body
            .iter()
            .enumerate()
            .all(|(i, b)| *b == gateway_tests::upstream::pattern_byte(i))
    );
    let seen = &up.requests()[0];
    assert_eq!(seen.body_len, body.len());
    let sum = body
        .iter()
        .fold(0u64, |s, &b| s.wrapping_mul(31).wrapping_add(u64::from(b)));
    assert_eq!(seen.body_sum, sum);
    // The connection is still good for another request.
    assert_eq!(c.get("site.test", "/again").unwrap().status, 200);
}

#[test]
fn reload_rereads_certificates_and_refuses_a_broken_one() {
    let dir = scratch_dir("tls");
    let first = self_signed(&dir, "site", &["site.test"], 90);
    let up = Upstream::start("up", Behavior::Echo);
    let gw = start_in(dir.clone(), &tls_config(&up, &[&first], ""));
    assert_eq!(connect(&gw, Some("site.test")).1.leaf, first.der);
    let (mut kept, _) = connect(&gw, Some("site.test"));

    // Renewed in place (same file names): the next connection gets it.
    let renewed = self_signed(&dir, "site", &["site.test"], 180);
    let reload = |gw: &Gateway| {
        let mut admin = Client::connect(gw.admin.unwrap()).unwrap();
        admin
            .send(b"POST /reload HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        let r = admin.read_response(false).unwrap();
        (r.status, r.text())
    };
    let (status, text) = reload(&gw);
    assert_eq!(status, 200, "{text}");
    assert_eq!(connect(&gw, Some("site.test")).1.leaf, renewed.der);

    // A broken certificate: the reload is refused, the renewed one keeps serving.
    std::fs::File::create(dir.join("site.pem"))
        .unwrap()
        .write_all(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
        .unwrap();
    let (status, text) = reload(&gw);
    assert!(status >= 400, "{status} {text}");
    assert!(text.contains("tls.certificates[0]"), "{text}");
    assert_eq!(connect(&gw, Some("site.test")).1.leaf, renewed.der);
    assert_eq!(gw.metric("gateway_reload_failures_total"), 1.0);
    // A connection opened before the reloads still works.
    assert_eq!(kept.get("site.test", "/").unwrap().status, 200);

    // A new tls.listen cannot be applied without a restart: refused, named.
    let renewed_again = self_signed(&dir, "site", &["site.test"], 180);
    let yaml = std::fs::read_to_string(dir.join("gateway.yaml")).unwrap();
    std::fs::write(
        dir.join("gateway.yaml"),
        yaml.replace(
            "listen: 127.0.0.1:0\n  certificates",
            "listen: 127.0.0.1:1\n  certificates",
        ),
    )
    .unwrap();
    let (status, text) = reload(&gw);
    assert!(status >= 400 && text.contains("tls.listen"), "{status} {text}");
    assert_eq!(
        connect(&gw, Some("site.test")).1.leaf,
        renewed.der,
        "still the certificates of the last good load"
    );
    drop(renewed_again);
}

#[test]
fn run_refuses_to_start_on_a_certificate_problem() {
    let up = Upstream::start("up", Behavior::Echo);
    let dir = scratch_dir("tls");
    let site = self_signed(&dir, "site", &["site.test"], 90);
    let other = self_signed(&dir, "other", &["other.test"], 90);
    let mismatched = TestCert {
        key: other.key.clone(),
        ..site.clone()
    };
    let missing = TestCert {
        cert: "missing.pem".into(),
        ..site
    };
    for (cert, want) in [(&missing, "missing.pem"), (&mismatched, "does not match")] {
        std::fs::write(dir.join("gateway.yaml"), tls_config(&up, &[cert], "")).unwrap();
        let config = dir.join("gateway.yaml");
        let err = Gateway::spawn(
            &["run", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0"],
            dir.clone(),
        )
        .expect_err("refused");
        assert!(err.contains(want) && err.contains("tls.certificates[0]"), "{err}");
    }
}

/// curl (OpenSSL) as the client: verifies the chain and the name against the
/// generated CA file, over HTTP/1.1 and over HTTP/2 (ALPN `h2`).
#[test]
fn curl_verifies_and_fetches() {
    let dir = scratch_dir("tls");
    let site = self_signed(&dir, "site", &["site.test"], 90);
    let up = Upstream::start("up", Behavior::Echo);
    let gw = start_in(dir.clone(), &tls_config(&up, &[&site], ""));
    let port = tls_addr(&gw).port();
    for (version, spoken) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let out = Command::new("curl")
            .args([
                "-sS",
                version,
                "--cacert",
                dir.join("site.pem").to_str().unwrap(),
                "--resolve",
                &format!("site.test:{port}:127.0.0.1"),
                "-w",
                "\n%{http_code} %{http_version} %{ssl_verify_result}",
                &format!("https://site.test:{port}/curl"),
            ])
            .output()
            .expect("curl is installed (.ci/run installs it)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.starts_with("up GET /curl"), "{stdout}");
        assert!(
            stdout.trim_end().ends_with(&format!("200 {spoken} 0")),
            "{version}: {stdout}"
        );
    }
}

/// The limits and timeouts of plain connections hold on TLS ones: a head
/// that does not arrive within `readMs` gets 408, an oversized one 431, an
/// idle connection is closed after `idleMs`, TLS connections count against
/// `maxConnections`, and the admin paths are not served on the TLS port.
#[test]
fn limits_timeouts_and_the_admin_separation_hold_over_tls() {
    let dir = scratch_dir("tls");
    let site = self_signed(&dir, "site", &["site.test"], 90);
    let up = Upstream::start("up", Behavior::Echo);
    let gw = start_in(
        dir,
        &tls_config(
            &up,
            &[&site],
            "limits: { maxConnections: 4, maxHeaderBytes: 1024 }\ndefaults:\n  timeouts: { readMs: 300, idleMs: 400 }\n",
        ),
    );

    let (mut slow, _) = connect(&gw, Some("site.test"));
    slow.send(b"GET / HTTP/1.1\r\nHost: site.test\r\n").unwrap();
    let r = slow.read_response(false).unwrap();
    assert_eq!(r.status, 408);
    assert!(slow.is_closed(Duration::from_secs(2)));

    let (mut big, _) = connect(&gw, Some("site.test"));
    let huge = "x".repeat(2048);
    big.send(format!("GET / HTTP/1.1\r\nHost: site.test\r\nX-Big: {huge}\r\n\r\n").as_bytes())
        .unwrap();
    assert_eq!(big.read_response(false).unwrap().status, 431);
    assert!(big.is_closed(Duration::from_secs(2)));
    // The gateway lingers on a refused head until the client closes too.
    drop(big);
    assert_eq!(gw.wait_metric_below("gateway_client_connections", 0.0), 0.0);

    let (mut idle, _) = connect(&gw, Some("site.test"));
    let r = idle.get("site.test", "/metrics").unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.text().starts_with("up GET /metrics"),
        "the proxy port proxies: {}",
        r.text()
    );
    let began = Instant::now();
    assert!(idle.is_closed(Duration::from_secs(3)));
    assert!(began.elapsed() >= Duration::from_millis(250));

    // maxConnections counts TLS connections: four held, the fifth is refused.
    let held: Vec<_> = (0..4).map(|_| connect(&gw, Some("site.test")).0).collect();
    let refused = Client::connect_tls(
        tls_addr(&gw),
        &TlsOptions {
            sni: Some("site.test"),
            ..TlsOptions::default()
        },
    );
    assert!(refused.is_err(), "a fifth connection is closed at once");
    assert!(gw.metric("gateway_client_connections_rejected_total") >= 1.0);
    drop(held);
}

/// A policy's `request_field(1)` is the scheme the client connected with:
/// `https` on the TLS listener, `http` on the plain one, and the case URL's
/// in `gateway test`.
#[test]
fn policies_see_the_scheme_the_client_connected_with() {
    let dir = scratch_dir("tls-policy-scheme");
    let site = self_signed(&dir, "site", &["example.test"], 90);
    // Copies the scheme into `x-scheme` on the forwarded request.
    let wat = r#"(module
      (import "hook" "request_field" (func $field (param i32 i32 i32) (result i32)))
      (import "hook" "set_header" (func $set (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 64) "x-scheme")
      (func (export "hook_abi_v1"))
      (func (export "on_request") (result i32)
        (drop (call $set (i32.const 64) (i32.const 8) (i32.const 0) (call $field (i32.const 1) (i32.const 0) (i32.const 16))))
        (i32.const 0)))"#;
    std::fs::write(dir.join("scheme.wasm"), wat::parse_str(wat).expect("wat")).expect("write");
    let up = Upstream::start("up", Behavior::Echo);
    let yaml = tls_config(&up, &[&site], "").replace("cluster: c }", "cluster: c, policies: [scheme] }")
        + "policies:\n  - { name: scheme, module: scheme.wasm }\n";
    let gw = start_in(dir.clone(), &yaml);
    let (mut tls, _) = connect(&gw, Some("example.test"));
    assert_eq!(tls.get("example.test", "/s").expect("response").status, 200);
    let mut plain = Client::connect(gw.addr).expect("connect");
    assert_eq!(plain.get("example.test", "/p").expect("response").status, 200);
    let seen = up.requests();
    assert_eq!(seen[0].header("x-scheme"), Some("https"));
    assert_eq!(seen[1].header("x-scheme"), Some("http"));

    std::fs::write(
        dir.join("cases.yaml"),
        "cases:\n  - name: tls\n    request: { url: \"https://example.test/a\" }\n    expect: { requestHeaders: { x-scheme: https } }\n  - name: plain\n    request: { url: \"http://example.test/a\" }\n    expect: { requestHeaders: { x-scheme: http } }\n",
    )
    .expect("write cases");
    let out = Command::new(gateway_tests::gateway_bin())
        .current_dir(&dir)
        .args(["test", "cases.yaml"])
        .output()
        .expect("gateway test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("2 passed, 0 failed"), "{stdout}");
}
