//! SPEC §14 gRPC through the real binary, with a client and a server nobody
//! here wrote (Python's `grpcio`, `tests/grpc/echo.py`): a cluster with
//! `protocol: h2` carries unary, server-streaming, client-streaming and
//! bidirectional calls, trailers and error statuses, over h2c and over TLS
//! on both sides; `grpc-status` is logged as `upstreamStatus`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gateway_tests::certs::self_signed;
use gateway_tests::{Gateway, PythonServer, scratch_dir};
use serde_json::Value;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("grpc/echo.py")
}

/// The gRPC echo server on `127.0.0.1:0` (TLS with `tls`: cert and key
/// paths).
fn grpc_server(tls: Option<(&Path, &Path)>) -> PythonServer {
    match tls {
        None => PythonServer::start("grpc/echo.py", &["serve".as_ref()]),
        Some((cert, key)) => PythonServer::start(
            "grpc/echo.py",
            &[
                "serve".as_ref(),
                "--cert".as_ref(),
                cert.as_os_str(),
                "--key".as_ref(),
                key.as_os_str(),
            ],
        ),
    }
}

/// Runs every call of `echo.py call` through `address`; what came back.
fn call(address: &str, extra: &[&str]) -> Value {
    let out = Command::new("python3")
        .arg(script())
        .arg("call")
        .arg(address)
        .args(extra)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "the gRPC client failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the client's JSON")
}

const LOG: &str = "accessLog:\n  json:\n    fields: [method, path, status, upstreamStatus, protocol, error]\n";

fn assert_every_call_passed(got: &Value) {
    assert_eq!(got["unary"], "echo:hello|forwarded-for=127.0.0.1", "{got}");
    assert_eq!(got["unary_trailers"]["x-trailer"], "unary", "{got}");
    assert_eq!(got["error"]["code"], "NOT_FOUND", "{got}");
    assert_eq!(got["error"]["details"], "no such thing", "{got}");
    let parts: Vec<String> = (0..5).map(|i| format!("part-{i}")).collect();
    assert_eq!(got["server_stream"], serde_json::json!(parts), "{got}");
    assert_eq!(got["server_stream_trailers"]["x-trailer"], "stream", "{got}");
    assert_eq!(got["client_stream"], "4 messages, 70111 bytes", "{got}");
    // Each reply came back before the next message was sent.
    assert_eq!(got["bidi"], serde_json::json!(["ONE", "TWO", "THREE"]), "{got}");
    // 3 MiB: well over every flow-control window on the way.
    assert_eq!(got["big"], 3 * 1024 * 1024, "{got}");
}

/// One line per call, each HTTP/2 and 200, with the call's `grpc-status`.
fn assert_logged(gw: &Gateway) {
    let lines = gw.wait_log_lines(6, Duration::from_secs(5));
    let lines: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let expected = [
        ("/echo.Echo/Unary", 0),
        ("/echo.Echo/Unary", 5),
        ("/echo.Echo/ServerStream", 0),
        ("/echo.Echo/ClientStream", 0),
        ("/echo.Echo/Bidi", 0),
        ("/echo.Echo/Big", 0),
    ];
    assert_eq!(lines.len(), expected.len(), "{lines:?}");
    for (line, (path, grpc_status)) in lines.iter().zip(expected) {
        assert_eq!(line["path"], path, "{line}");
        assert_eq!(line["status"], 200, "{line}");
        assert_eq!(line["upstreamStatus"], grpc_status, "{line}");
        assert_eq!(line["protocol"], "HTTP/2", "{line}");
        assert_eq!(line["error"], Value::Null, "{line}");
    }
}

#[test]
fn grpc_calls_pass_over_h2c_to_a_cleartext_h2_upstream() {
    let server = grpc_server(None);
    let gw = Gateway::start_with(
        &format!(
            "http2: {{ cleartext: true }}\n{LOG}routes:\n  - {{ name: grpc, pathPrefix: /echo.Echo/, cluster: grpc }}\nclusters:\n  - name: grpc\n    protocol: h2\n    upstreams: [{{ url: \"http://127.0.0.1:{}\" }}]\n",
            server.port
        ),
        &["--threads", "1"],
    );
    let got = call(&gw.addr.to_string(), &[]);
    assert_every_call_passed(&got);
    assert_logged(&gw);
}

#[test]
fn grpc_calls_pass_over_tls_on_both_sides() {
    let dir = scratch_dir("grpc-tls");
    let front = self_signed(&dir, "front", &["localhost"], 30);
    let back = self_signed(&dir, "back", &["localhost"], 30);
    let server = grpc_server(Some((&dir.join(&back.cert), &dir.join(&back.key))));
    let gw = Gateway::start_in(
        dir.clone(),
        &format!(
            "tls:\n  listen: 127.0.0.1:0\n  certificates:\n    - {{ cert: {}, key: {} }}\n{LOG}routes:\n  - {{ name: grpc, pathPrefix: /, cluster: grpc }}\nclusters:\n  - name: grpc\n    protocol: h2\n    tls: {{ ca: {} }}\n    upstreams: [{{ url: \"https://localhost:{}\" }}]\n",
            front.cert, front.key, back.cert, server.port
        ),
        &["--threads", "1"],
    );
    let tls = gw.tls.expect("the TLS listener");
    let ca = dir.join(&front.cert);
    let got = call(
        &format!("127.0.0.1:{}", tls.port()),
        &["--ca", ca.to_str().unwrap(), "--name", "localhost"],
    );
    assert_every_call_passed(&got);
    assert_logged(&gw);
}
