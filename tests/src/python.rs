//! Servers nobody here wrote, run by Python scripts of the test suite: each
//! listens on `127.0.0.1:0` and prints its port as its first line. Killed
//! when dropped.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

#[derive(Debug)]
pub struct PythonServer {
    child: Child,
    pub port: u16,
}

impl PythonServer {
    /// Runs `python3 SCRIPT ARGS...` (`script` relative to the tests
    /// crate) and waits for the port it prints.
    pub fn start(script: &str, args: &[&std::ffi::OsStr]) -> PythonServer {
        let mut child = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(script))
            .args(args)
            // Servers that serve until their stdin closes stop with the test.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 (.ci/setup installs it and the modules the scripts import)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{script} printed {line:?}, not its port (are its Python modules installed?)"));
        PythonServer { child, port }
    }

    /// `fixtures/https_upstream.py`: Python's http.server over OpenSSL,
    /// serving `cert` and `key` (HTTP/1.1 only).
    pub fn https(dir: &Path, cert: &str, key: &str) -> PythonServer {
        let (cert, key) = (dir.join(cert), dir.join(key));
        Self::start("fixtures/https_upstream.py", &[cert.as_os_str(), key.as_os_str()])
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
