//! Regression tests for the defects an attack run found (issue 11), each
//! named after what broke, through the real binary and real sockets.

use std::time::{Duration, Instant};

use gateway_tests::{Behavior, Client, Gateway, Upstream, raw_exchange, scratch_dir};

use crate::{cluster, config};

/// A config with the access log on, to `access.log` beside it, logging `error`.
fn logged(routes: &str, clusters: &[String]) -> String {
    config(routes, clusters).replace(
        "accessLog: { enabled: false }\n",
        "accessLog: { path: access.log, json: { fields: [method, path, query, status, route, cluster, error] } }\n",
    )
}

/// The access-log lines written so far, parsed.
fn log_lines(gw: &Gateway, at_least: usize) -> Vec<serde_json::Value> {
    let path = gw.dir.join("access.log");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        if lines.len() >= at_least || Instant::now() >= deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

// === Critical: request smuggling ===

#[test]
fn connection_naming_content_length_does_not_smuggle_a_second_request() {
    let public = Upstream::start("public", Behavior::Echo);
    let admin = Upstream::start("admin", Behavior::Echo);
    let gw = Gateway::start(&logged(
        "  - { name: public, pathPrefix: /public, cluster: public }\n  - { name: admin, pathPrefix: /admin, cluster: admin }\n",
        &[cluster("public", &[(&public, 1)]), cluster("admin", &[(&admin, 1)])],
    ));
    let smuggled = "GET /admin/secret HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n";
    let variants = [
        "Connection: Content-Length\r\n",
        "Connection: content-length\r\n",
        "Connection: CONTENT-LENGTH\r\n",
        "Connection: keep-alive, Content-Length\r\n",
        "Connection: keep-alive\r\nConnection: Content-Length\r\n",
        "Connection: Host, Transfer-Encoding, Content-Length\r\n",
    ];
    for variant in variants {
        let mut c = Client::connect(gw.addr).expect("connect");
        c.send(
            format!(
                "POST /public HTTP/1.1\r\nHost: h\r\n{variant}Content-Length: {}\r\n\r\n{smuggled}",
                smuggled.len()
            )
            .as_bytes(),
        )
        .expect("send");
        let r = c.read_response(false).expect("response");
        assert_eq!(r.status, 200, "{variant:?}");
        assert_eq!(
            r.text(),
            format!(
                "public POST /public bytes={} sum={}",
                smuggled.len(),
                checksum(smuggled.as_bytes())
            ),
            "{variant:?}: the body reached the upstream whole, as a body"
        );
        // Another client on the (pooled) upstream connection gets its own answer.
        let mut other = Client::connect(gw.addr).expect("connect");
        let r = other.get("h", "/public/next").expect("response");
        assert_eq!(
            r.text(),
            "public GET /public/next bytes=0 sum=0",
            "{variant:?}: pool poisoned"
        );
    }
    assert_eq!(
        admin.hits(),
        0,
        "the smuggled request reached the admin route's upstream"
    );
    assert!(public.requests().iter().all(|s| s.uri.starts_with("/public")));
    assert_eq!(public.hits(), 2 * variants.len());
    assert_eq!(
        log_lines(&gw, 2 * variants.len()).len(),
        2 * variants.len(),
        "one log line per request"
    );
}

/// The upstream's body checksum (see `gateway_tests::upstream`).
fn checksum(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0u64, |s, &b| s.wrapping_mul(31).wrapping_add(u64::from(b)))
}

#[test]
fn connection_naming_transfer_encoding_keeps_the_body_chunked() {
    let up = Upstream::start("u", Behavior::Echo);
    let gw = Gateway::start(&config(
        "  - { name: r, pathPrefix: /, cluster: c }\n",
        &[cluster("c", &[(&up, 1)])],
    ));
    let mut c = Client::connect(gw.addr).expect("connect");
    c.send(
        b"POST /x HTTP/1.1\r\nHost: h\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n0\r\n\r\nGET /second HTTP/1.1\r\nHost: h\r\n\r\n",
    )
    .expect("send");
    assert_eq!(
        c.read_response(false).expect("first").text(),
        "u POST /x bytes=5 sum=99162322"
    );
    assert_eq!(
        c.read_response(false).expect("second").text(),
        "u GET /second bytes=0 sum=0"
    );
    assert_eq!(up.hits(), 2);
}

#[test]
fn an_upstream_naming_content_length_in_connection_still_frames_its_response() {
    let up = Upstream::start(
        "u",
        Behavior::Raw {
            response: "HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello",
            close: false,
        },
    );
    let gw = Gateway::start(&config(
        "  - { name: r, pathPrefix: /, cluster: c }\n",
        &[cluster("c", &[(&up, 1)])],
    ));
    let mut c = Client::connect(gw.addr).expect("connect");
    for i in 0..3 {
        let r = c.get("h", &format!("/{i}")).expect("response");
        assert_eq!((r.status, r.text().as_str()), (200, "hello"), "response {i}");
        assert_eq!(r.header("content-length"), Some("5"), "response {i}");
    }
}

// === High: route bypass by encoding ===

#[test]
fn percent_encoding_slashes_dots_and_params_cannot_bypass_a_route() {
    let admin = Upstream::start("admin", Behavior::Echo);
    let web = Upstream::start("web", Behavior::Echo);
    let gw = Gateway::start(&config(
        "  - { name: admin, pathPrefix: /admin, cluster: admin }\n  - { name: web, pathPrefix: /, cluster: web }\n",
        &[cluster("admin", &[(&admin, 1)]), cluster("web", &[(&web, 1)])],
    ));
    let cases = [
        ("/%61dmin/users", "admin", "/admin/users"),
        ("/%41dmin", "web", "/Admin"),
        ("//admin", "admin", "/admin"),
        ("/.//admin", "admin", "/admin"),
        ("///admin//x", "admin", "/admin/x"),
        ("/admin;jsessionid=1/x", "admin", "/admin;jsessionid=1/x"),
        ("/x/..;/admin", "admin", "/admin"),
        ("/x/%2e%2E/admin", "admin", "/admin"),
        ("/ADMIN", "web", "/ADMIN"),
        ("/a%3bb?q=%61", "web", "/a%3Bb?q=%61"),
        ("/%7e", "web", "/~"),
    ];
    let mut c = Client::connect(gw.addr).expect("connect");
    for (path, upstream, forwarded) in cases {
        let r = c.get("h", path).expect("response");
        assert_eq!(r.header("x-upstream"), Some(upstream), "{path}");
        assert!(r.text().contains(&format!(" GET {forwarded} ")), "{path}: {}", r.text());
    }
    for bad in [
        "/a%5Cb",
        "/a%5cb",
        "/a\\b",
        "/a%2Fadmin",
        "/a%00",
        "/a%zz",
        "/a%4",
        "/a#b",
    ] {
        let r = raw_exchange(gw.addr, format!("GET {bad} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes())
            .unwrap_or_else(|e| panic!("{bad}: {e}"));
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.header("x-gateway-error"), Some("bad_path"), "{bad}");
        assert!(r.text().starts_with("bad path: "), "{bad}: {}", r.text());
    }
    assert_eq!(admin.hits() + web.hits(), cases.len());
}

#[test]
fn the_logged_path_is_the_path_that_was_routed() {
    // Regression: for `http://h?q=/x` the proxy routed `/` while the log said `/x`.
    let root = Upstream::start("root", Behavior::Echo);
    let x = Upstream::start("x", Behavior::Echo);
    let gw = Gateway::start(&logged(
        "  - { name: root, pathPrefix: /, cluster: root }\n  - { name: x, pathPrefix: /x, cluster: x }\n",
        &[cluster("root", &[(&root, 1)]), cluster("x", &[(&x, 1)])],
    ));
    let r = raw_exchange(gw.addr, b"GET http://h?q=/x HTTP/1.1\r\nHost: h\r\n\r\n").expect("response");
    assert_eq!(r.header("x-upstream"), Some("root"));
    assert_eq!(root.requests()[0].uri, "/?q=/x");
    let lines = log_lines(&gw, 1);
    assert_eq!(lines[0]["path"], "/");
    assert_eq!(lines[0]["query"], "q=/x");
    assert_eq!(lines[0]["route"], "root");
}

// === High: chunked framing leniency ===

#[test]
fn lenient_chunk_lines_and_smuggled_trailers_are_refused() {
    let up = Upstream::start("u", Behavior::Echo);
    let gw = Gateway::start(&config(
        "  - { name: r, pathPrefix: /, cluster: c }\n",
        &[cluster("c", &[(&up, 1)])],
    ));
    let bodies: [&[u8]; 10] = [
        b"5 \r\nhello\r\n0\r\n\r\n",
        b"5\t\r\nhello\r\n0\r\n\r\n",
        b"5;\r\nhello\r\n0\r\n\r\n",
        b"5;a=b \r\nhello\r\n0\r\n\r\n",
        b"5;a\rb\r\nhello\r\n0\r\n\r\n",
        b"5;a=\x01\r\nhello\r\n0\r\n\r\n",
        b"5;a=\"\xc3\xa9\"\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\r\n0 \r\n\r\n",
        b"5\r\nhello\r\n0\r\nGET /second HTTP/1.1\r\nHost: h\r\n\r\n",
        b"0\r\nGET /second HTTP/1.1\r\nHost: h\r\n\r\n",
    ];
    for body in bodies {
        let mut bytes = b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        bytes.extend_from_slice(body);
        let r = raw_exchange(gw.addr, &bytes).unwrap_or_else(|e| panic!("{body:?}: {e}"));
        assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(body));
        assert_eq!(r.header("x-gateway-error"), Some("bad_request"));
        assert!(
            r.text().starts_with("bad request: bad chunk") || r.text().starts_with("bad request: bad trailer"),
            "{}",
            r.text()
        );
    }
    assert_eq!(up.hits(), 0, "a malformed body reached the upstream");
    // Extensions that follow the grammar pass.
    let r = raw_exchange(
        gw.addr,
        b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5 ; a = \"q\\\"v\"\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
    )
    .expect("response");
    assert_eq!(r.text(), "u POST /x bytes=5 sum=99162322");
}

// === Medium: hosts and absolute-form targets ===

#[test]
fn userinfo_missing_empty_duplicate_and_invalid_hosts_are_refused() {
    let up = Upstream::start("u", Behavior::Echo);
    let gw = Gateway::start(&logged(
        "  - { name: r, pathPrefix: /, cluster: c }\n",
        &[cluster("c", &[(&up, 1)])],
    ));
    let cases: [(&[u8], &str); 10] = [
        (
            b"GET http://user@h/ HTTP/1.1\r\nHost: h\r\n\r\n",
            "userinfo in the request target",
        ),
        (
            b"GET http://u:p@h/ HTTP/1.1\r\nHost: h\r\n\r\n",
            "userinfo in the request target",
        ),
        (b"GET http://h/ HTTP/1.1\r\n\r\n", "missing Host header"),
        (b"GET / HTTP/1.1\r\nHost:\r\n\r\n", "empty Host header"),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
            "more than one Host header",
        ),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "invalid Host header"),
        (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", "invalid Host header"),
        (b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", "invalid Host header"),
        (b"GET / HTTP/1.1\r\nHost: \"a\"\r\n\r\n", "invalid Host header"),
        (b"GET / HTTP/1.1\r\nHost: a\\b\r\n\r\n", "invalid Host header"),
    ];
    for (bytes, cause) in cases {
        let r = raw_exchange(gw.addr, bytes).expect("response");
        let what = String::from_utf8_lossy(bytes);
        assert_eq!(r.status, 400, "{what}");
        assert_eq!(r.header("x-gateway-error"), Some("bad_host"), "{what}");
        assert_eq!(r.text(), format!("bad host: {cause}\n"), "{what}");
    }
    assert_eq!(up.hits(), 0);
    let lines = log_lines(&gw, cases.len());
    assert!(
        lines.iter().all(|l| l["error"] == "bad_host" && l["status"] == 400),
        "{lines:?}"
    );
}

// === Medium: timeouts after the response head ===

#[test]
fn an_upstream_that_stalls_mid_body_is_cut_after_upstream_ms() {
    let up = Upstream::start(
        "u",
        Behavior::Raw {
            response: "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial",
            close: false,
        },
    );
    let gw = Gateway::start(&logged(
        "  - { name: r, pathPrefix: /, cluster: c, timeouts: { upstreamMs: 300 } }\n",
        &[cluster("c", &[(&up, 1)])],
    ));
    let mut c = Client::connect(gw.addr).expect("connect");
    c.send(b"GET /stall HTTP/1.1\r\nHost: h\r\n\r\n").expect("send");
    let started = Instant::now();
    // The head and the first bytes arrive; then the connection is closed
    // instead of the rest: a truncated body, never a hang.
    let got = c.read_response(false);
    assert!(got.is_err(), "a truncated response read as whole: {got:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "held for {:?}",
        started.elapsed()
    );
    let lines = log_lines(&gw, 1);
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[0]["error"], "upstream_timeout");
}

// === Medium: shutdown ===

#[test]
fn sigterm_exits_within_the_drain_deadline_even_when_the_log_reader_is_stuck() {
    let up = Upstream::start("u", Behavior::Echo);
    let dir = scratch_dir("stuck-stop");
    let yaml = config(
        "  - { name: r, pathPrefix: /, cluster: c }\n",
        &[cluster("c", &[(&up, 1)])],
    )
    .replace(
        "accessLog: { enabled: false }\n",
        "accessLog: { path: stdout }\ndrainMs: 1000\n",
    );
    std::fs::write(dir.join("gateway.yaml"), yaml).expect("write");
    let args = [
        "run",
        "--config",
        "gateway.yaml",
        "--listen",
        "127.0.0.1:0",
        "--threads",
        "1",
    ];
    let mut gw = Gateway::spawn_with(&args, dir, false).expect("starts");
    // Fill the pipe nobody reads (64 KiB) and the writer's queue behind it.
    let mut c = Client::connect(gw.addr).expect("connect");
    let long = "x".repeat(2000);
    for i in 0..400 {
        assert_eq!(c.get("h", &format!("/{long}/{i}")).expect("response").status, 200);
    }
    drop(c);
    let stopping = Instant::now();
    gw.signal(15);
    let status = gw.wait_exit(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "did not exit");
    assert!(
        stopping.elapsed() < Duration::from_secs(4),
        "took {:?}",
        stopping.elapsed()
    );
}

#[test]
fn while_stopping_ready_is_503_responses_say_close_and_new_connections_are_served() {
    let up = Upstream::start("u", Behavior::Echo);
    let yaml = config(
        "  - { name: r, pathPrefix: /, cluster: c }\n",
        &[cluster("c", &[(&up, 1)])],
    )
    .replace(
        "accessLog: { enabled: false }\n",
        "accessLog: { enabled: false }\nshutdownDelayMs: 1500\n",
    );
    let mut gw = Gateway::start_with(&yaml, &["--admin", "127.0.0.1:0"]);
    let mut kept = Client::connect(gw.addr).expect("connect");
    let r = kept.get("h", "/before").expect("response");
    assert_eq!(r.header("connection"), None);
    assert_eq!(gw.admin_get("/ready").0, 200);
    gw.signal(15);
    wait_until("/ready to answer 503", || gw.admin_get("/ready").0 == 503);
    // A keep-alive connection's next response says close, so the client does
    // not send another request into a socket about to close.
    let r = kept.get("h", "/during").expect("response");
    assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    assert!(kept.is_closed(Duration::from_secs(2)));
    // New connections are still accepted during shutdownDelayMs.
    let r = Client::connect(gw.addr)
        .expect("connect")
        .get("h", "/new")
        .expect("response");
    assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    assert_eq!(gw.wait_exit(Duration::from_secs(10)).and_then(|s| s.code()), Some(0));
}

#[test]
fn an_exchange_cut_at_the_drain_deadline_is_answered_and_logged() {
    let up = Upstream::start("u", Behavior::Delay(Duration::from_secs(10)));
    let yaml = logged(
        "  - { name: r, pathPrefix: /, cluster: c }\n",
        &[cluster("c", &[(&up, 1)])],
    ) + "drainMs: 300\n";
    let mut gw = Gateway::start(&yaml);
    let addr = gw.addr;
    let client = std::thread::spawn(move || raw_exchange(addr, b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n"));
    wait_until("the upstream to get the request", || up.hits() == 1);
    gw.signal(15);
    let r = client
        .join()
        .expect("client")
        .expect("a response, not a dropped connection");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("x-gateway-error"), Some("shutdown"));
    assert_eq!(gw.wait_exit(Duration::from_secs(5)).and_then(|s| s.code()), Some(0));
    let lines = log_lines(&gw, 1);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        (lines[0]["status"].as_u64(), lines[0]["error"].as_str()),
        (Some(503), Some("shutdown"))
    );
}

// === Medium: the admin listener ===

/// Runs `dir/gateway.yaml` on `127.0.0.1:0` with `extra` flags, under
/// `prlimit --nofile=SOFT:HARD`.
fn under_prlimit(nofile: &str, dir: std::path::PathBuf, extra: &[&str]) -> Gateway {
    let bin = gateway_tests::gateway_bin();
    let limit = format!("--nofile={nofile}");
    let mut args = vec![
        limit.as_str(),
        bin.to_str().expect("utf8"),
        "run",
        "--config",
        "gateway.yaml",
        "--listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    Gateway::spawn_program("prlimit", &args, dir).expect("starts under prlimit")
}

/// A service manager's default soft limit (1024 on Debian) would make
/// `accept` fail long before `limits.maxConnections`: the gateway raises it
/// to the hard limit, and says so when even that is too low.
#[test]
fn a_low_soft_descriptor_limit_is_raised_and_a_low_hard_one_is_reported() {
    let up = Upstream::start("u", Behavior::Echo);
    let start = |tag: &str, limits: &str| {
        let dir = scratch_dir(tag);
        let yaml = limits.to_owned()
            + &config(
                "  - { name: r, pathPrefix: /, cluster: c }\n",
                &[cluster("c", &[(&up, 1)])],
            );
        std::fs::write(dir.join("gateway.yaml"), yaml).expect("write");
        under_prlimit("256:4096", dir, &[])
    };
    let soft_limit = |gw: &Gateway| -> String {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", gw.child.id())).expect("limits");
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap_or_default()
            .to_owned();
        line.split_whitespace().nth(3).unwrap_or_default().to_owned()
    };
    let warned = |gw: &Gateway| gw.stderr_text().contains("open-descriptor limit is below");

    // The default maxConnections (10000) needs more than the hard 4096.
    let gw = start("nofile-low", "");
    assert_eq!(soft_limit(&gw), "4096");
    assert!(warned(&gw), "{}", gw.stderr_text());
    assert!(gw.stderr_text().contains("needed=11024"), "{}", gw.stderr_text());
    let mut c = Client::connect(gw.addr).expect("connect");
    assert_eq!(c.get("h", "/").expect("response").status, 200);
    drop(gw);

    let gw = start("nofile-enough", "limits: { maxConnections: 3000 }\n");
    assert_eq!(soft_limit(&gw), "4096");
    assert!(!warned(&gw), "{}", gw.stderr_text());
}

#[test]
fn an_admin_flood_never_stops_the_proxy_port() {
    let up = Upstream::start("u", Behavior::Echo);
    let dir = scratch_dir("admin-flood");
    let yaml = config(
        "  - { name: r, pathPrefix: /, cluster: c }\n",
        &[cluster("c", &[(&up, 1)])],
    )
    .replace(
        "accessLog: { enabled: false }\n",
        "accessLog: { enabled: false }\ndefaults: { timeouts: { readMs: 1000 } }\n",
    );
    std::fs::write(dir.join("gateway.yaml"), yaml).expect("write");
    // 200 descriptors in all: without a cap, the flood alone would use them up.
    let gw = under_prlimit("200:200", dir, &["--admin", "127.0.0.1:0", "--threads", "1"]);
    let admin = gw.admin.expect("admin");
    let flood: Vec<_> = (0..250)
        .filter_map(|_| {
            let mut c = Client::connect(admin).ok()?;
            c.send(b"GET /metrics HTTP/1.1\r\nHost: a\r\n").ok()?;
            Some(c)
        })
        .collect();
    assert!(flood.len() > 64);
    let mut c = Client::connect(gw.addr).expect("the proxy port accepts during the flood");
    for i in 0..5 {
        assert_eq!(c.get("h", &format!("/{i}")).expect("response").status, 200);
    }
    // Partial heads are cut after readMs; then the admin answers again.
    wait_until("admin to answer again", || {
        Client::connect(admin)
            .and_then(|mut a| a.get("a", "/ready"))
            .is_ok_and(|r| r.status == 200)
    });
    assert!(gw.metric("gateway_admin_connections_rejected_total") > 0.0);
    drop(flood);
}

#[test]
fn admin_refuses_large_bodies_and_answers_405_with_allow() {
    let up = Upstream::start("u", Behavior::Echo);
    let gw = Gateway::start_with(
        &config(
            "  - { name: r, pathPrefix: /, cluster: c }\n",
            &[cluster("c", &[(&up, 1)])],
        ),
        &["--admin", "127.0.0.1:0"],
    );
    let admin = gw.admin.expect("admin");
    let big = format!(
        "POST /reload HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        65 * 1024
    );
    assert_eq!(raw_exchange(admin, big.as_bytes()).expect("413").status, 413);
    let r = raw_exchange(admin, b"DELETE /metrics HTTP/1.1\r\nHost: a\r\n\r\n").expect("405");
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
    let r = raw_exchange(admin, b"GET /reload HTTP/1.1\r\nHost: a\r\n\r\n").expect("405");
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    // A head that never completes is cut after readMs (15 s by default is
    // too long for a test; the default idle and read bounds are covered by
    // an_admin_flood_never_stops_the_proxy_port).
    let mut c = Client::connect(admin).expect("connect");
    assert_eq!(c.get("a", "/ready").expect("ready").status, 200);
}

// === Medium: address in use, reload honesty ===

/// Runs `gateway run` on `addr` in `dir`; `Err` if it is still running after
/// a few seconds (it started, sharing the address), else its exit and stderr.
fn run_on(addr: &str, dir: &std::path::Path) -> Result<(Option<i32>, String), String> {
    let mut child = std::process::Command::new(gateway_tests::gateway_bin())
        .args(["run", "--config", "gateway.yaml", "--listen", addr])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut stderr = String::new();
            use std::io::Read as _;
            let _ = child.stderr.take().expect("stderr").read_to_string(&mut stderr);
            return Ok((status.code(), stderr));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("a second gateway started on {addr}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_second_gateway_on_an_address_in_use_refuses_to_start() {
    let up = Upstream::start("u", Behavior::Echo);
    let yaml = config(
        "  - { name: r, pathPrefix: /, cluster: c }\n",
        &[cluster("c", &[(&up, 1)])],
    );
    let first = Gateway::start(&yaml);
    let dir = scratch_dir("second");
    std::fs::write(dir.join("gateway.yaml"), &yaml).expect("write");
    let addr = first.addr.to_string();
    let (code, stderr) = run_on(&addr, &dir).unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(code, Some(0));
    assert!(stderr.contains(&addr), "{stderr}");
    // Anything else on the address counts too.
    let other = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = other.local_addr().expect("addr").to_string();
    let (code, stderr) = run_on(&addr, &dir).unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(code, Some(0));
    assert!(stderr.contains(&addr), "{stderr}");
}

fn write_atomically(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

#[test]
fn a_reload_applies_a_new_log_path() {
    let up = Upstream::start("u", Behavior::Echo);
    let routes = "  - { name: r, pathPrefix: /, cluster: c }\n";
    let clusters = [cluster("c", &[(&up, 1)])];
    let yaml = config(routes, &clusters).replace("accessLog: { enabled: false }\n", "accessLog: { path: first.log }\n");
    let gw = Gateway::start_with(&yaml, &["--admin", "127.0.0.1:0"]);
    let mut c = Client::connect(gw.addr).expect("connect");
    c.get("h", "/one").expect("response");
    let config_path = gw.dir.join("gateway.yaml");
    write_atomically(&config_path, &yaml.replace("first.log", "second.log"));
    let (status, body) = admin_post(&gw, "/reload");
    assert_eq!(status, 200, "{body}");
    c.get("h", "/two").expect("response");
    let read = |name: &str, n: usize| {
        let path = gw.dir.join(name);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.lines().count() >= n || Instant::now() >= deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let (first, second) = (read("first.log", 1), read("second.log", 1));
    // Lines of requests served before the swap stay with the old destination.
    assert!(first.contains("/one") && !first.contains("/two"), "first.log: {first}");
    assert!(
        second.contains("/two") && !second.contains("/one"),
        "second.log: {second}"
    );
}

#[test]
fn a_reload_that_changes_the_listen_address_is_refused_naming_it() {
    let up = Upstream::start("u", Behavior::Echo);
    let yaml = config(
        "  - { name: r, pathPrefix: /, cluster: c }\n",
        &[cluster("c", &[(&up, 1)])],
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let yaml = format!("listen: {port}\n{yaml}");
    let dir = scratch_dir("reload-listen");
    std::fs::write(dir.join("gateway.yaml"), &yaml).expect("write");
    let gw = Gateway::spawn(&["run", "--config", "gateway.yaml", "--admin", "127.0.0.1:0"], dir).expect("starts");
    write_atomically(
        &gw.dir.join("gateway.yaml"),
        &yaml.replace(&format!("listen: {port}"), "listen: 127.0.0.1:1"),
    );
    let (status, body) = admin_post(&gw, "/reload");
    assert_eq!(status, 422, "{body}");
    // The §3 shape, at the new value (`listen: ` is line 1's first 8 bytes).
    assert!(
        body.starts_with("gateway.yaml:1:9: error: listen: changed from"),
        "{body}"
    );
    let stderr = gw.stderr_text();
    assert!(
        stderr.contains("gateway.yaml:1:9: error: listen: changed from"),
        "{stderr}"
    );
    assert_eq!(gw.metric("gateway_reload_failures_total"), 1.0);
    let mut c = Client::connect(gw.addr).expect("connect");
    assert_eq!(c.get("h", "/still").expect("response").status, 200);
}

fn admin_post(gw: &Gateway, path: &str) -> (u16, String) {
    let mut c = Client::connect(gw.admin.expect("admin")).expect("connect");
    c.send(format!("POST {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n").as_bytes())
        .expect("send");
    let r = c.read_response(false).expect("response");
    (r.status, r.text())
}

// === Low ===

#[test]
fn upstream_statuses_outside_100_to_599_are_bad_responses_and_204_has_no_length() {
    let bad = Upstream::start(
        "bad",
        Behavior::Raw {
            response: "HTTP/1.1 600 Nope\r\ncontent-length: 0\r\n\r\n",
            close: false,
        },
    );
    let no_content = Upstream::start(
        "nc",
        Behavior::Raw {
            response: "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nX-A: 1\r\n\r\n",
            close: false,
        },
    );
    let gw = Gateway::start(&config(
        "  - { name: bad, pathPrefix: /bad, cluster: bad }\n  - { name: nc, pathPrefix: /nc, cluster: nc }\n",
        &[cluster("bad", &[(&bad, 1)]), cluster("nc", &[(&no_content, 1)])],
    ));
    let r = raw_exchange(gw.addr, b"GET /bad HTTP/1.1\r\nHost: h\r\n\r\n").expect("response");
    assert_eq!((r.status, r.header("x-gateway-error")), (502, Some("bad_response")));
    let r = raw_exchange(gw.addr, b"GET /nc HTTP/1.1\r\nHost: h\r\n\r\n").expect("response");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("x-a"), Some("1"));
}

/// The gateway re-frames every body it forwards, so a transfer coding other
/// than `chunked` could only be dropped undecoded: the client would get coded
/// bytes labelled as plain. Such a response is a bad one, as such a request is.
#[test]
fn an_upstream_transfer_coding_other_than_chunked_is_a_bad_response() {
    const CODINGS: [&str; 3] = [
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    ];
    let ups: Vec<Upstream> = CODINGS
        .iter()
        .enumerate()
        .map(|(i, response)| Upstream::start(&format!("u{i}"), Behavior::Raw { response, close: true }))
        .collect();
    let routes: String = (0..ups.len())
        .map(|i| format!("  - {{ name: r{i}, pathPrefix: /{i}, cluster: c{i} }}\n"))
        .collect();
    let clusters: Vec<String> = ups
        .iter()
        .enumerate()
        .map(|(i, up)| cluster(&format!("c{i}"), &[(up, 1)]))
        .collect();
    let gw = Gateway::start(&config(&routes, &clusters));
    for (i, response) in CODINGS.iter().enumerate() {
        let r = raw_exchange(gw.addr, format!("GET /{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes()).expect("response");
        assert_eq!(
            (r.status, r.header("x-gateway-error")),
            (502, Some("bad_response")),
            "{response:?}"
        );
        assert_ne!(r.body, b"ok", "{response:?}");
    }
}

#[test]
fn trace_gets_405_with_allow_and_unknown_expectations_get_417() {
    let up = Upstream::start("u", Behavior::Echo);
    let gw = Gateway::start(&config(
        "  - { name: r, pathPrefix: /, cluster: c }\n",
        &[cluster("c", &[(&up, 1)])],
    ));
    let r = raw_exchange(gw.addr, b"TRACE / HTTP/1.1\r\nHost: h\r\n\r\n").expect("response");
    assert_eq!(
        (r.status, r.header("x-gateway-error")),
        (405, Some("method_not_allowed"))
    );
    assert!(
        r.header("allow")
            .is_some_and(|a| a.contains("GET") && !a.contains("TRACE"))
    );
    let r = raw_exchange(
        gw.addr,
        b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx",
    )
    .expect("response");
    assert_eq!(
        (r.status, r.header("x-gateway-error")),
        (417, Some("expectation_failed"))
    );
    assert_eq!(up.hits(), 0);
}

#[test]
fn a_client_that_leaves_while_the_upstream_works_is_logged_499_and_the_exchange_abandoned() {
    let up = Upstream::start("u", Behavior::Hold);
    let gw = Gateway::start(&logged(
        "  - { name: r, pathPrefix: /, cluster: c }\n",
        &[cluster("c", &[(&up, 1)])],
    ));
    let mut c = Client::connect(gw.addr).expect("connect");
    c.send(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n").expect("send");
    wait_until("the upstream to get the request", || up.hits() == 1);
    drop(c);
    wait_until("the gateway to abandon the upstream exchange", || {
        up.closed.load(std::sync::atomic::Ordering::SeqCst) == 1
    });
    let lines = log_lines(&gw, 1);
    assert_eq!(
        (lines[0]["status"].as_u64(), lines[0]["error"].as_str()),
        (Some(499), Some("client_closed"))
    );
}

#[test]
fn every_400_names_its_cause_in_the_body_and_the_log() {
    let up = Upstream::start("u", Behavior::Echo);
    let gw = Gateway::start(&logged(
        "  - { name: r, pathPrefix: /, cluster: c }\n",
        &[cluster("c", &[(&up, 1)])],
    ));
    let cases: [(&[u8], &str, &str); 4] = [
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "bad_request",
            "bad request: both Content-Length and Transfer-Encoding\n",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "bad_request",
            "bad request: conflicting Content-Length headers\n",
        ),
        (
            b"GET /a%2Fb HTTP/1.1\r\nHost: h\r\n\r\n",
            "bad_path",
            "bad path: encoded slash, backslash or NUL in the path\n",
        ),
        (b"GET / HTTP/1.1\r\n\r\n", "bad_host", "bad host: missing Host header\n"),
    ];
    for (bytes, kind, body) in cases {
        let r = raw_exchange(gw.addr, bytes).expect("response");
        assert_eq!((r.status, r.header("x-gateway-error")), (400, Some(kind)));
        assert_eq!(r.text(), body);
    }
    let lines = log_lines(&gw, cases.len());
    // Workers hand their lines over in batches: compare without order.
    let mut kinds: Vec<&str> = lines.iter().filter_map(|l| l["error"].as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["bad_host", "bad_path", "bad_request", "bad_request"]);
}

#[test]
fn idle_upstream_connections_are_closed_after_pool_idle_ms() {
    let up = Upstream::start("u", Behavior::Echo);
    let gw = Gateway::start(&config(
        "  - { name: r, pathPrefix: /, cluster: c }\n",
        &[cluster("c", &[(&up, 1)]) + "    pool: { idleMs: 200 }\n"],
    ));
    let mut c = Client::connect(gw.addr).expect("connect");
    c.get("h", "/1").expect("response");
    c.get("h", "/2").expect("response");
    assert_eq!(
        up.connections.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "reused while fresh"
    );
    // Past idleMs (and the once-a-second sweep), the pooled connection is
    // closed: the next request opens a new one instead of racing the
    // upstream's own keep-alive close.
    std::thread::sleep(Duration::from_millis(1500));
    c.get("h", "/3").expect("response");
    assert_eq!(up.connections.load(std::sync::atomic::Ordering::SeqCst), 2);
}
