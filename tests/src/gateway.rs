//! The real `gateway` binary as a child process, with its stdout (access log)
//! and stderr collected line by line.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `gateway` binary built by `cargo test --workspace` (the gateway package's
/// own integration tests make cargo build it next to this test binary).
pub fn gateway_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("gateway");
    assert!(
        bin.exists(),
        "{} not found: run the tests with `cargo test --workspace` so cargo builds the gateway binary",
        bin.display()
    );
    bin
}

/// A fresh empty directory under the system temp dir.
pub fn scratch_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "gateway-test-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// A running gateway process; killed when dropped.
#[derive(Debug)]
pub struct Gateway {
    pub child: Child,
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    /// The TLS listener, when the config has one.
    pub tls: Option<SocketAddr>,
    pub dir: PathBuf,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
    /// While set, stderr is not read (after the line being read): the pipe
    /// fills, as one whose reader stopped.
    stderr_paused: Arc<std::sync::atomic::AtomicBool>,
}

impl Gateway {
    /// Writes `yaml` to a scratch `gateway.yaml` and serves it on `127.0.0.1:0`.
    pub fn start(yaml: &str) -> Gateway {
        Self::start_with(yaml, &[])
    }

    pub fn start_with(yaml: &str, extra: &[&str]) -> Gateway {
        Self::start_in(scratch_dir("gw"), yaml, extra)
    }

    /// Writes `yaml` as `dir/gateway.yaml` (files it names, certificates
    /// say, sit beside it) and serves it on `127.0.0.1:0`, with `extra` flags.
    pub fn start_in(dir: PathBuf, yaml: &str, extra: &[&str]) -> Gateway {
        let config = dir.join("gateway.yaml");
        std::fs::write(&config, yaml).expect("write config");
        let mut args = vec![
            "run",
            "--config",
            config.to_str().unwrap_or_default(),
            "--listen",
            "127.0.0.1:0",
        ];
        if !extra.contains(&"--threads") {
            args.extend_from_slice(&["--threads", "2"]);
        }
        args.extend_from_slice(extra);
        Self::spawn(&args, dir).unwrap_or_else(|e| panic!("gateway did not start: {e}"))
    }

    /// Stops reading the gateway's stderr: once the pipe's buffer is full,
    /// its writes would block (a log reader that stopped).
    pub fn pause_stderr(&self) {
        self.stderr_paused.store(true, Ordering::SeqCst);
    }

    /// `GET path` on the admin listener: `(status, body)`.
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        let addr = self.admin.expect("gateway started with an admin listener");
        let mut c = crate::Client::connect(addr).expect("connect admin");
        let r = c.get("admin", path).expect("admin response");
        (r.status, r.text())
    }

    /// Waits (up to 5 s) for a sample to reach `want` and returns its last
    /// value: exchanges are counted when they end, just after their response.
    pub fn wait_metric(&self, sample: &str, want: f64) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let v = self.metric(sample);
            if v >= want || Instant::now() >= deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (up to 5 s) for a sample to fall to `want` or below and returns
    /// its last value.
    pub fn wait_metric_below(&self, sample: &str, want: f64) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let v = self.metric(sample);
            if v <= want || Instant::now() >= deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The value of one sample line of `/metrics`, e.g.
    /// `gateway_requests_total{route="a",cluster="c",status="200"}`; 0 when absent.
    pub fn metric(&self, sample: &str) -> f64 {
        let (_, text) = self.admin_get("/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Runs `gateway ARGS` and waits for its ready line; `Err` carries stderr
    /// if it exits first.
    pub fn spawn(args: &[&str], dir: PathBuf) -> Result<Gateway, String> {
        Self::spawn_with(args, dir, true)
    }

    /// As [`Gateway::spawn`]; with `read_stdout == false` stdout is a pipe
    /// nobody reads (a log destination that stops accepting writes).
    pub fn spawn_with(args: &[&str], dir: PathBuf, read_stdout: bool) -> Result<Gateway, String> {
        Self::spawn_command(Command::new(gateway_bin()), args, dir, read_stdout)
    }

    /// As [`Gateway::spawn`], with extra environment variables.
    pub fn spawn_env(args: &[&str], dir: PathBuf, env: &[(&str, &str)]) -> Result<Gateway, String> {
        let mut command = Command::new(gateway_bin());
        command.envs(env.iter().copied());
        Self::spawn_command(command, args, dir, true)
    }

    /// Runs `program ARGS` (a wrapper such as `prlimit` that starts the
    /// gateway) and waits for the gateway's ready line.
    pub fn spawn_program(program: &str, args: &[&str], dir: PathBuf) -> Result<Gateway, String> {
        Self::spawn_command(Command::new(program), args, dir, true)
    }

    fn spawn_command(mut command: Command, args: &[&str], dir: PathBuf, read_stdout: bool) -> Result<Gateway, String> {
        let mut child = command
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel::<String>();
        if !read_stdout {
            // Keep the pipe open and full: the child's writes block once its
            // buffer is full.
            if let Some(out) = child.stdout.take() {
                std::mem::forget(out);
            }
        }
        if let Some(out) = child.stdout.take() {
            let sink = stdout.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Ok(mut s) = sink.lock() {
                        s.push(line);
                    }
                }
            });
        }
        let stderr_paused = Arc::new(std::sync::atomic::AtomicBool::new(false));
        if let Some(err) = child.stderr.take() {
            let sink = stderr.clone();
            let paused = stderr_paused.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    while paused.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    // Kept before it is announced: once `start` returns, the
                    // ready line is in `stderr_text`.
                    if let Ok(mut s) = sink.lock() {
                        s.push(line.clone());
                    }
                    let _ = ready_tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut admin = None;
        let mut tls = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match ready_rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(a) = line.split("admin listening on ").nth(1) {
                        admin = a.trim().parse().ok();
                    } else if let Some(a) = line.split("TLS listener on ").nth(1) {
                        tls = a.trim().parse().ok();
                    } else if let Some(a) = line.split("listening on ").nth(1) {
                        let addr = a.trim().parse().map_err(|_| format!("bad ready line {line:?}"))?;
                        return Ok(Gateway {
                            child,
                            addr,
                            admin,
                            tls,
                            dir,
                            stdout,
                            stderr,
                            stderr_paused,
                        });
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let lines = stderr.lock().map(|s| s.join("\n")).unwrap_or_default();
                    return Err(format!("no ready line; stderr:\n{lines}"));
                }
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Access-log lines written so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.stdout.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().map(|s| s.join("\n")).unwrap_or_default()
    }

    /// Waits until at least `n` access-log lines arrived (or `wait` passed).
    pub fn wait_log_lines(&self, n: usize, wait: Duration) -> Vec<String> {
        let deadline = Instant::now() + wait;
        loop {
            let lines = self.log_lines();
            if lines.len() >= n || Instant::now() >= deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the process.
    pub fn signal(&self, signal: i32) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status();
    }

    /// Waits for the process to exit, up to `wait`.
    pub fn wait_exit(&mut self, wait: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + wait;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stderr_paused.store(false, Ordering::SeqCst);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
