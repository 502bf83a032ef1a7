//! A scripted upstream for conformance cases: plain HTTP/1.1 over std
//! sockets, one thread per connection, recording every request and answering
//! as the current script says (extra response headers, a delay, the first N
//! requests failed with a status or a TCP reset).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::upstream::Seen;

/// How the first requests of a script fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fail {
    /// Answer with this status and an empty body.
    Status(u16),
    /// Read the request, then reset the connection (RST, no answer).
    Reset,
}

/// What the upstream does with the next requests.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// Headers added to every successful answer.
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
    /// The first `fail_first` requests fail with `fail_with`.
    pub fail_first: usize,
    pub fail_with: Option<Fail>,
}

#[derive(Debug, Default)]
struct State {
    script: Script,
    failed: usize,
}

/// A running scripted upstream (its threads end with the test process).
#[derive(Debug, Clone)]
pub struct Scripted {
    pub addr: SocketAddr,
    pub name: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    state: Arc<Mutex<State>>,
}

fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(Seen, usize)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let mut lines = head.split("\r\n");
            let mut first = lines.next()?.split(' ');
            let method = first.next()?.to_owned();
            let uri = first.next()?.to_owned();
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                .collect();
            let body_len = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let seen = Seen {
                method,
                uri,
                headers,
                body_len,
                body_sum: 0,
            };
            return Some((seen, end + 4));
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

impl Scripted {
    pub fn start(name: &str) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind scripted upstream");
        let me = Scripted {
            addr: listener.local_addr().expect("addr"),
            name: name.to_owned(),
            seen: Arc::default(),
            state: Arc::default(),
        };
        let server = me.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let conn = server.clone();
                std::thread::spawn(move || conn.serve(stream));
            }
        });
        me
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the script and forgets what was seen.
    pub fn set(&self, script: Script) {
        let mut state = self.state.lock().expect("state");
        state.script = script;
        state.failed = 0;
        self.seen.lock().expect("seen").clear();
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }

    fn serve(&self, mut stream: TcpStream) {
        let mut buf = Vec::new();
        while let Some((seen, head_len)) = read_head(&mut stream, &mut buf) {
            // Bodies are read and dropped.
            let need = head_len + seen.body_len;
            while buf.len() < need {
                let mut chunk = [0u8; 4096];
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            buf.drain(..need);
            let uri = seen.uri.clone();
            let method = seen.method.clone();
            self.seen.lock().expect("seen").push(seen);
            let (script, fail) = {
                let mut state = self.state.lock().expect("state");
                let fail = if state.failed < state.script.fail_first {
                    state.failed += 1;
                    state.script.fail_with
                } else {
                    None
                };
                (state.script.clone(), fail)
            };
            match fail {
                Some(Fail::Reset) => {
                    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                    return;
                }
                Some(Fail::Status(code)) => {
                    let _ = write!(stream, "HTTP/1.1 {code} Scripted\r\ncontent-length: 0\r\n\r\n");
                    continue;
                }
                None => {}
            }
            std::thread::sleep(script.delay);
            let body = format!("{} {method} {uri}\n", self.name);
            let mut head = format!(
                "HTTP/1.1 200 OK\r\nx-upstream: {}\r\ncontent-length: {}\r\n",
                self.name,
                body.len()
            );
            for (n, v) in &script.headers {
                head.push_str(&format!("{n}: {v}\r\n"));
            }
            head.push_str("\r\n");
            if stream.write_all(head.as_bytes()).is_err() || stream.write_all(body.as_bytes()).is_err() {
                return;
            }
        }
    }
}
