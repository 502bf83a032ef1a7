//! SPEC §8–9 through the real binary: counters read back over HTTP from the
//! admin listener, the access log under a stuck destination, at shutdown and
//! across log rotation.

use std::time::{Duration, Instant};

use gateway_tests::{Behavior, Client, Gateway, Upstream, scratch_dir};

use crate::{cluster, config};

fn with_admin(yaml: &str) -> Gateway {
    Gateway::start_with(yaml, &["--admin", "127.0.0.1:0"])
}

#[test]
fn metrics_count_timeouts_refusals_and_404s() {
    let slow = Upstream::start("slow", Behavior::Delay(Duration::from_secs(3)));
    let ok = Upstream::start("ok", Behavior::Echo);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let routes = "  - { name: slow, host: a.test, pathPrefix: /slow, cluster: slow, timeouts: { upstreamMs: 200 } }\n  - { name: down, host: a.test, pathPrefix: /down, cluster: down }\n  - { name: ok, host: a.test, pathPrefix: /ok, cluster: ok }\n";
    let clusters = [
        cluster("slow", &[(&slow, 1)]),
        format!("  - name: down\n    upstreams:\n      - {{ url: \"{closed_url}\" }}\n"),
        cluster("ok", &[(&ok, 1)]),
    ];
    let gw = with_admin(&config(routes, &clusters));
    let mut c = Client::connect(gw.addr).expect("connect");
    assert_eq!(c.get("a.test", "/slow").expect("504").status, 504);
    assert_eq!(c.get("a.test", "/down").expect("502").status, 502);
    assert_eq!(c.get("a.test", "/down").expect("502").status, 502);
    for _ in 0..3 {
        assert_eq!(c.get("a.test", "/ok").expect("200").status, 200);
    }
    assert_eq!(c.get("b.test", "/nothing").expect("404").status, 404);

    // Exchanges are counted when they end, just after their response.
    assert_eq!(
        gw.wait_metric(r#"gateway_request_duration_seconds_count{route="ok"}"#, 3.0),
        3.0
    );
    assert_eq!(
        gw.metric(r#"gateway_request_duration_seconds_count{route="down"}"#),
        2.0
    );
    assert_eq!(gw.metric(r#"gateway_request_duration_seconds_count{route=""}"#), 1.0);
    assert_eq!(
        gw.wait_metric(r#"gateway_requests_total{route="",cluster="",status="404"}"#, 1.0),
        1.0
    );
    let m = |s: &str| gw.metric(s);
    assert_eq!(
        m(r#"gateway_upstream_timeouts_total{cluster="slow",kind="upstream_timeout"}"#),
        1.0
    );
    // Counted once: in the timeouts family only.
    assert!(
        !gw.admin_get("/metrics")
            .1
            .contains(r#"gateway_proxy_errors_total{cluster="slow",kind="upstream_timeout"}"#)
    );
    assert_eq!(
        m(r#"gateway_proxy_errors_total{cluster="down",kind="connect_failed"}"#),
        2.0
    );
    assert_eq!(
        m(r#"gateway_requests_total{route="down",cluster="down",status="502"}"#),
        2.0
    );
    assert_eq!(
        m(r#"gateway_requests_total{route="ok",cluster="ok",status="200"}"#),
        3.0
    );
    assert_eq!(m(r#"gateway_requests_total{route="",cluster="",status="404"}"#), 1.0);
    assert_eq!(m(r#"gateway_request_duration_seconds_count{route="slow"}"#), 1.0);
    let pooled = format!(
        r#"gateway_upstream_connections{{cluster="ok",upstream="{}",state="idle"}}"#,
        ok.url()
    );
    assert!(m(&pooled) >= 1.0, "{pooled}");
    assert_eq!(m("gateway_in_flight_requests"), 0.0);

    // The admin listener serves only admin paths; the proxy port never does.
    assert_eq!(gw.admin_get("/ready").0, 200);
    let (status, plan) = gw.admin_get("/plan");
    assert_eq!(status, 200);
    let plan: serde_json::Value = serde_json::from_str(&plan).expect("/plan is JSON");
    for key in ["digest", "sourceDigest", "formatVersion", "routes", "clusters"] {
        assert!(plan.get(key).is_some(), "/plan lacks {key}");
    }
    assert_eq!(gw.admin_get("/v1/anything").0, 404);
    assert_eq!(ok.hits(), 3, "the admin listener proxied something");
    let r = c.get("a.test", "/metrics").expect("response");
    assert_eq!(r.status, 404, "the proxy port served an admin path");
}

/// Counters are kept per worker and summed for `/metrics`: requests spread
/// over four workers (one connection each, so `SO_REUSEPORT` deals them out)
/// add up exactly, in the status counts, both histograms and the gauge.
#[test]
fn metrics_kept_per_worker_add_up_across_workers() {
    let ok = Upstream::start("ok", Behavior::Echo);
    let routes = "  - { name: ok, pathPrefix: /, cluster: ok }\n";
    let gw = Gateway::start_with(
        &config(routes, &[cluster("ok", &[(&ok, 1)])]),
        &["--admin", "127.0.0.1:0", "--threads", "4"],
    );
    const N: usize = 60;
    for i in 0..N {
        let mut c = Client::connect(gw.addr).expect("connect");
        let path = format!("/r{i}");
        assert_eq!(c.get("a.test", &path).expect("200").status, 200);
    }
    let m = |s: &str| gw.metric(s);
    let n = N as f64;
    assert_eq!(
        gw.wait_metric(r#"gateway_request_duration_seconds_count{route="ok"}"#, n),
        n
    );
    assert_eq!(m(r#"gateway_requests_total{route="ok",cluster="ok",status="200"}"#), n);
    let text = gw.admin_get("/metrics").1;
    let inf = text
        .lines()
        .find(|l| {
            l.starts_with("gateway_request_duration_seconds_bucket{")
                && l.contains(r#"route="ok""#)
                && l.contains(r#"le="+Inf""#)
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert_eq!(inf, Some(n), "{text}");
    assert_eq!(m(r#"gateway_upstream_duration_seconds_count{cluster="ok"}"#), n);
    assert_eq!(m("gateway_in_flight_requests"), 0.0);
    assert_eq!(ok.hits(), N);
}

#[test]
fn a_stuck_log_destination_drops_lines_without_slowing_requests() {
    let up = Upstream::start("u", Behavior::Echo);
    let dir = scratch_dir("stuck-log");
    let config_path = dir.join("gateway.yaml");
    let yaml = "accessLog: { enabled: true, path: stdout }\n".to_owned()
        + &config(
            "  - { name: r, pathPrefix: /, cluster: c }\n",
            &[cluster("c", &[(&up, 1)])],
        )
        .replace("accessLog: { enabled: false }\n", "");
    std::fs::write(&config_path, yaml).expect("write");
    let args = [
        "run",
        "--config",
        config_path.to_str().expect("utf8"),
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--threads",
        "2",
    ];
    // stdout is a pipe nobody reads: once its buffer and the queue are full,
    // every further line must be dropped, not waited for.
    let gw = Gateway::spawn_with(&args, dir, false).expect("gateway starts");
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let addr = gw.addr;
            std::thread::spawn(move || {
                let mut c = Client::connect(addr).expect("connect");
                let mut slowest = Duration::ZERO;
                for i in 0..2500 {
                    let t = Instant::now();
                    let r = c
                        .get("h", &format!("/padding-the-log-line-to-fill-the-pipe-sooner/{i}"))
                        .expect("response");
                    assert_eq!(r.status, 200);
                    slowest = slowest.max(t.elapsed());
                }
                slowest
            })
        })
        .collect();
    let slowest = clients
        .into_iter()
        .map(|t| t.join().expect("client"))
        .max()
        .unwrap_or_default();
    assert!(
        slowest < Duration::from_secs(2),
        "a request took {slowest:?} with the log stuck"
    );
    let dropped = gw.metric("gateway_access_log_dropped_total");
    assert!(dropped > 0.0, "no lines counted as dropped");
    assert_eq!(up.hits(), 10_000);
}

/// A destination that refuses writes (a full disk: `/dev/full`) loses lines,
/// never requests, and the operator is told in the gateway's own log, once a
/// second, with the error and the count.
#[test]
fn a_log_destination_that_fails_writes_is_reported_and_counted() {
    let up = Upstream::start("u", Behavior::Echo);
    let yaml = "accessLog: { enabled: true, path: /dev/full }\n".to_owned()
        + &config(
            "  - { name: r, pathPrefix: /, cluster: c }\n",
            &[cluster("c", &[(&up, 1)])],
        )
        .replace("accessLog: { enabled: false }\n", "");
    let gw = Gateway::start_with(&yaml, &["--log-format", "json", "--admin", "127.0.0.1:0"]);
    let mut c = Client::connect(gw.addr).expect("connect");
    for i in 0..50 {
        assert_eq!(c.get("h", &format!("/{i}")).expect("response").status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while gw.metric("gateway_access_log_dropped_total") < 50.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(gw.metric("gateway_access_log_dropped_total"), 50.0);
    let warnings: Vec<serde_json::Value> = gw
        .stderr_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "access log: write failed; lines dropped")
        .collect();
    assert!(
        (1..=3).contains(&warnings.len()),
        "one line a second at most: {warnings:?}"
    );
    assert_eq!(warnings[0]["level"], "WARN");
    assert_eq!(warnings[0]["destination"], "/dev/full");
    assert!(
        warnings[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("No space left"),
        "{warnings:?}"
    );
    assert!(warnings[0]["dropped"].as_u64().unwrap_or_default() >= 1, "{warnings:?}");
}

#[test]
fn a_clean_stop_flushes_every_line() {
    let up = Upstream::start("u", Behavior::Echo);
    let yaml = config(
        "  - { name: r, pathPrefix: /, cluster: c }\n",
        &[cluster("c", &[(&up, 1)])],
    )
    .replace("accessLog: { enabled: false }\n", "");
    let mut gw = Gateway::start(&yaml);
    let n = 500;
    let mut c = Client::connect(gw.addr).expect("connect");
    for i in 0..n {
        assert_eq!(c.get("h", &format!("/{i}")).expect("response").status, 200);
    }
    drop(c);
    gw.signal(15);
    assert_eq!(gw.wait_exit(Duration::from_secs(10)).and_then(|s| s.code()), Some(0));
    // The reader thread sees EOF once the process is gone.
    let lines = gw.wait_log_lines(n + 1, Duration::from_millis(500));
    assert_eq!(lines.len(), n, "N requests, N lines");
    for (i, line) in lines.iter().enumerate() {
        assert!(line.starts_with('{') && line.ends_with('}'), "line {i}: {line}");
    }
}

#[test]
fn a_log_file_is_reopened_on_sigusr1() {
    rotated_log_is_reopened_on(10);
}

/// logrotate's usual `postrotate kill -HUP`: a reload reopens the file it
/// keeps, as NGINX's does.
#[test]
fn a_log_file_is_reopened_on_a_reload_by_sighup() {
    rotated_log_is_reopened_on(1);
}

/// Moves the log file away, sends `signal`, and checks the lines before it
/// stay in the moved file and the lines after it go to a new one.
fn rotated_log_is_reopened_on(signal: i32) {
    let up = Upstream::start("u", Behavior::Echo);
    let yaml = config(
        "  - { name: r, pathPrefix: /, cluster: c }\n",
        &[cluster("c", &[(&up, 1)])],
    )
    .replace("accessLog: { enabled: false }\n", "accessLog: { path: access.log }\n");
    let gw = Gateway::start(&yaml);
    let log = gw.dir.join("access.log");
    let rotated = gw.dir.join("access.log.1");
    let mut c = Client::connect(gw.addr).expect("connect");
    let count = |p: &std::path::Path| std::fs::read_to_string(p).map(|s| s.lines().count()).unwrap_or(0);
    let wait_for = |p: &std::path::Path, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while count(p) < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        count(p)
    };
    for _ in 0..3 {
        c.get("h", "/before").expect("response");
    }
    assert_eq!(wait_for(&log, 3), 3, "relative log path resolves beside the config");
    std::fs::rename(&log, &rotated).expect("rotate");
    gw.signal(signal);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gw.stderr_text().contains("access log reopened") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for _ in 0..2 {
        c.get("h", "/after").expect("response");
    }
    assert_eq!(wait_for(&log, 2), 2, "new lines go to the reopened file");
    assert_eq!(count(&rotated), 3, "the rotated file keeps its lines");
}

#[test]
fn metrics_pass_promtool_and_negotiate_openmetrics() {
    let up = Upstream::start("u", Behavior::Echo);
    // Names may hold what a label value must escape (`"`, `\`, a line feed):
    // one unescaped once made the whole scrape unparseable.
    let gw = with_admin(&config(
        "  - { name: r, pathPrefix: /, cluster: c }\n  - { name: \"q\\\"uo\\\\te\\nnl\", pathPrefix: /odd, cluster: 'c\"x' }\n",
        &[cluster("c", &[(&up, 1)]), cluster("'c\"x'", &[(&up, 1)])],
    ));
    let mut c = Client::connect(gw.addr).expect("connect");
    assert_eq!(c.get("h", "/").expect("response").status, 200);
    assert_eq!(c.get("h", "/odd").expect("response").status, 200);
    gw.wait_metric(r#"gateway_upstream_duration_seconds_count{cluster="c"}"#, 1.0);
    let scrape = |accept: &str| {
        let mut a = Client::connect(gw.admin.expect("admin")).expect("connect");
        a.send(format!("GET /metrics HTTP/1.1\r\nHost: a\r\n{accept}\r\n").as_bytes())
            .expect("send");
        a.read_response(false).expect("response")
    };

    let text = scrape("");
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let body = text.text();
    // Every family has its HELP and TYPE, named as its samples are.
    let families: std::collections::BTreeSet<&str> = body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(|name| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| body.contains(&format!("# TYPE {f} histogram")))
                })
                .unwrap_or(name)
        })
        .collect();
    for family in &families {
        assert!(body.contains(&format!("# HELP {family} ")), "no HELP for {family}");
        assert!(body.contains(&format!("# TYPE {family} ")), "no TYPE for {family}");
    }
    for sample in [
        "gateway_build_info{version=\"",
        "gateway_plan_info{digest=\"sha256:",
        "gateway_reload_last_success_timestamp_seconds ",
        "gateway_request_duration_seconds_bucket{le=\"+Inf\",route=\"r\"} 1",
        "gateway_upstream_duration_seconds_count{cluster=\"c\"} 1",
        r#"gateway_requests_total{route="q\"uo\\te\nnl",cluster="c\"x",status="200"} 1"#,
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_max_fds ",
        "process_start_time_seconds ",
    ] {
        assert!(body.contains(sample), "no {sample} in\n{body}");
    }
    assert!(!body.contains("# EOF"));
    // promtool (Debian's prometheus package; `.ci/setup` installs it) checks
    // the exposition and its naming conventions.
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed (apt-get install prometheus, or run .ci/setup)");
    use std::io::Write as _;
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write");
    let out = promtool.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let om = scrape("Accept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n");
    assert_eq!(
        om.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let om = om.text();
    assert!(om.ends_with("# EOF\n"));
    assert!(om.contains("# TYPE gateway_requests counter\n"));
    assert!(om.contains("gateway_requests_total{"));
}

#[test]
fn upstream_failures_are_logged_at_warn_once_a_second_with_the_suppressed_count() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let gw = Gateway::start_with(
        &config(
            "  - { name: r, pathPrefix: /, cluster: down }\n",
            &[format!(
                "  - name: down\n    upstreams:\n      - {{ url: \"{url}\" }}\n"
            )],
        ),
        &["--log-format", "json"],
    );
    let mut c = Client::connect(gw.addr).expect("connect");
    for _ in 0..20 {
        assert_eq!(c.get("h", "/").expect("502").status, 502);
    }
    let warnings = |gw: &Gateway| -> Vec<serde_json::Value> {
        gw.stderr_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["message"] == "upstream failure")
            .collect()
    };
    let first = warnings(&gw);
    assert!(
        (1..=2).contains(&first.len()),
        "20 failures within a second or two: {first:?}"
    );
    assert_eq!(first[0]["level"], "WARN");
    assert_eq!(first[0]["cluster"], "down");
    assert_eq!(first[0]["upstream"], url.as_str());
    assert_eq!(first[0]["kind"], "connect_failed");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(c.get("h", "/").expect("502").status, 502);
    let deadline = Instant::now() + Duration::from_secs(2);
    while warnings(&gw).len() == first.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let all = warnings(&gw);
    let logged = all.len() as u64;
    let suppressed: u64 = all.iter().filter_map(|w| w["suppressed"].as_u64()).sum();
    assert_eq!(
        logged + suppressed,
        21,
        "every failure is either a line or counted: {all:?}"
    );
}

#[test]
fn the_start_is_an_info_event_before_the_ready_lines() {
    let ok = Upstream::start("ok", Behavior::Echo);
    let gw = Gateway::start_with(
        &config(
            "  - { name: r, pathPrefix: /, cluster: c }\n",
            &[cluster("c", &[(&ok, 1)])],
        ),
        &["--log-format", "json"],
    );
    let text = gw.stderr_text();
    let lines: Vec<&str> = text.lines().collect();
    let ready = lines
        .iter()
        .position(|l| l.starts_with("listening on "))
        .expect("a ready line");
    let started: serde_json::Value = lines[..ready]
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "started")
        .unwrap_or_else(|| panic!("no start event before the ready line: {lines:#?}"));
    assert_eq!(started["level"], "INFO");
    assert_eq!(started["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(started["workers"], 2, "the harness runs two workers");
    assert!(
        started["plan"].as_str().is_some_and(|d| d.starts_with("sha256:")),
        "{started}"
    );
    assert!(
        started["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{started}"
    );
}
