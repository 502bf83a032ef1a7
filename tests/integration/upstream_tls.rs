//! SPEC §14 upstream TLS through the real binary, against an HTTPS server
//! nobody here wrote (Python's http.server over OpenSSL): `https://`
//! upstreams verified against `tls.ca` or the system roots, the URL's host
//! as SNI and verified name, `insecureSkipVerify`, pooled TLS connections,
//! and health checks over TLS.

use std::time::Duration;

use gateway_tests::certs::self_signed;
use gateway_tests::{Client, Gateway, PythonServer, scratch_dir};

fn start(dir: std::path::PathBuf, yaml: &str) -> Gateway {
    Gateway::start_in(dir, yaml, &["--admin", "127.0.0.1:0", "--threads", "1"])
}

fn config(url: &str, tls: &str) -> String {
    format!(
        "accessLog: {{ enabled: false }}\nroutes:\n  - {{ name: r, pathPrefix: /, cluster: c }}\nclusters:\n  - name: c\n    upstreams: [{{ url: \"{url}\" }}]\n    outlier: {{ consecutiveFailures: 0 }}\n{tls}"
    )
}

#[test]
fn an_https_upstream_is_verified_against_its_ca_and_connections_are_reused() {
    let dir = scratch_dir("uptls");
    self_signed(&dir, "up", &["localhost"], 30);
    let up = PythonServer::https(&dir, "up.pem", "up.key");
    let gw = start(
        dir,
        &config(
            &format!("https://localhost:{}/base", up.port),
            "    tls: { ca: up.pem }\n",
        ),
    );
    let mut c = Client::connect(gw.addr).unwrap();
    for i in 0..3 {
        let r = c.get("site.test", &format!("/x/{i}?q=1")).unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-upstream"), Some("python-https"));
        let seen: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
        assert_eq!(seen["path"], format!("/base/x/{i}?q=1"));
        assert_eq!(seen["headers"]["host"], "site.test");
        assert_eq!(seen["headers"]["x-forwarded-proto"], "http");
    }
    // Three requests, one TLS connection: pooled and reused (the gauge is
    // read as the worker last published it, so waited for).
    assert_eq!(
        gw.wait_metric(
            &format!(
                "gateway_upstream_connections{{cluster=\"c\",upstream=\"https://localhost:{}/base\",state=\"idle\"}}",
                up.port
            ),
            1.0
        ),
        1.0
    );
}

#[test]
fn an_untrusted_or_misnamed_certificate_is_refused_and_insecure_skip_verify_accepts_it() {
    let dir = scratch_dir("uptls");
    self_signed(&dir, "up", &["other.test"], 30);
    let up = PythonServer::https(&dir, "up.pem", "up.key");
    let url = format!("https://localhost:{}", up.port);
    for (tls, want, why) in [
        ("", 502, "not in the system roots"),
        (
            "    tls: { ca: up.pem }\n",
            502,
            "the certificate is for other.test, not localhost",
        ),
        ("    tls: { insecureSkipVerify: true }\n", 200, "not verified, as asked"),
    ] {
        // Each gateway gets a directory of its own (it is removed with it).
        let own = scratch_dir("uptls");
        std::fs::copy(dir.join("up.pem"), own.join("up.pem")).unwrap();
        let gw = start(own, &config(&url, tls));
        let r = Client::connect(gw.addr).unwrap().get("h", "/").unwrap();
        assert_eq!(r.status, want, "{why}: {}", r.text());
        if want == 502 {
            assert_eq!(r.header("x-gateway-error"), Some("connect_failed"));
            std::thread::sleep(Duration::from_millis(200));
            assert!(
                gw.stderr_text().contains("upstream TLS handshake failed"),
                "{}",
                gw.stderr_text()
            );
        }
    }
}

#[test]
fn health_checks_speak_tls_to_https_upstreams() {
    let dir = scratch_dir("uptls");
    self_signed(&dir, "up", &["localhost"], 30);
    let up = PythonServer::https(&dir, "up.pem", "up.key");
    let gw = start(
        dir,
        &config(
            &format!("https://localhost:{}", up.port),
            "    tls: { ca: up.pem }\n    healthCheck: { path: /healthz, intervalMs: 100, healthyThreshold: 1, unhealthyThreshold: 1 }\n",
        ),
    );
    let sample = format!(
        "gateway_upstream_healthy{{cluster=\"c\",upstream=\"https://localhost:{}\"}}",
        up.port
    );
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(gw.metric(&sample), 1.0, "a TLS health check succeeds");
    drop(up);
    assert_eq!(
        gw.wait_metric_below(&sample, 0.0),
        0.0,
        "and fails once the server is gone"
    );
}

/// An upstream that accepts the connection and never answers the TLS hello
/// is cut at `connectMs` (which covers the handshake): 504, not a hang.
#[test]
fn a_silent_tls_upstream_is_cut_at_connect_ms() {
    let stall = gateway_tests::Upstream::start("stall", gateway_tests::Behavior::Stall);
    let yaml = config(
        &format!("https://127.0.0.1:{}", stall.addr.port()),
        "    tls: { insecureSkipVerify: true }\ndefaults:\n  timeouts: { connectMs: 300 }\n",
    );
    let gw = start(scratch_dir("uptls"), &yaml);
    let began = std::time::Instant::now();
    let r = Client::connect(gw.addr).unwrap().get("h", "/").unwrap();
    assert_eq!(r.status, 504);
    assert_eq!(r.header("x-gateway-error"), Some("connect_timeout"));
    assert!(began.elapsed() < Duration::from_secs(3), "{:?}", began.elapsed());
}
