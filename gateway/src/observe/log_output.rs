//! Where access-log lines are written: stdout, stderr or a file, in whole
//! lines. A write the destination refuses drops its lines and is said in the
//! gateway's own log (rate-limited); a line cut short by one is ended before
//! the next write, so it never merges into a whole line.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use plan::LogDestination;

/// Where lines go.
pub enum Output {
    Stdout,
    Stderr,
    File { path: PathBuf, file: File },
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Stdout => f.write_str("stdout"),
            Output::Stderr => f.write_str("stderr"),
            Output::File { path, .. } => write!(f, "{}", path.display()),
        }
    }
}

impl Output {
    /// Opens `dest` (a file relative to `base`); a reload opens the new
    /// destination before it commits, so a bad path refuses the reload.
    pub fn open(dest: &LogDestination, base: &Path) -> std::io::Result<Output> {
        Ok(match dest {
            LogDestination::Stdout => Output::Stdout,
            LogDestination::Stderr => Output::Stderr,
            LogDestination::File(p) => {
                let path = base.join(p);
                let file = OpenOptions::new().create(true).append(true).open(&path)?;
                Output::File { path, file }
            }
        })
    }

    /// Writes whole lines. After a write that failed part-way (a full
    /// disk, a closed pipe), `torn` is set, and the next write first ends
    /// the torn line, so one failure never merges into a later, whole line.
    pub(super) fn write(&mut self, bytes: &[u8], torn: &mut bool) -> Result<(), (std::io::Error, usize)> {
        match self {
            Output::Stdout => {
                let mut out = std::io::stdout().lock();
                write_lines(&mut out, bytes, torn)?;
                out.flush().map_err(|e| (e, 0))
            }
            Output::Stderr => write_lines(&mut std::io::stderr().lock(), bytes, torn),
            Output::File { file, .. } => write_lines(file, bytes, torn),
        }
    }

    pub(super) fn flush(&mut self) {
        let _ = match self {
            Output::Stdout => std::io::stdout().lock().flush(),
            Output::Stderr => std::io::stderr().lock().flush(),
            Output::File { file, .. } => file.flush(),
        };
    }

    /// Reopens a file destination (after log rotation moved it away).
    pub(super) fn reopen(&mut self) {
        if let Output::File { path, file } = self {
            match OpenOptions::new().create(true).append(true).open(&*path) {
                Ok(f) => {
                    *file = f;
                    tracing::info!(path = %path.display(), "access log reopened");
                }
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "access log: cannot reopen"),
            }
        }
    }
}

/// Writes `bytes` (whole lines) to `w`; see [`Output::write`] for `torn`.
/// A failure carries how many bytes went out before it.
fn write_lines(w: &mut impl Write, bytes: &[u8], torn: &mut bool) -> Result<(), (std::io::Error, usize)> {
    if *torn {
        w.write_all(b"\n").map_err(|e| (e, 0))?;
        *torn = false;
    }
    let mut written = 0;
    while written < bytes.len() {
        match w.write(&bytes[written..]) {
            Ok(0) => return Err((std::io::ErrorKind::WriteZero.into(), written)),
            Ok(n) => {
                written += n;
                *torn = written < bytes.len() && bytes[written - 1] != b'\n';
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err((e, written)),
        }
    }
    Ok(())
}

pub(super) fn bytecount(bytes: &[u8], b: u8) -> u64 {
    bytes.iter().filter(|&&x| x == b).count() as u64
}

/// Failed writes in the gateway's own log: one `warn` line a second at most,
/// with the lines dropped since the last one (NGINX's `error_log` says when
/// `write()` to its access log fails).
#[derive(Debug, Default)]
pub(super) struct WriteFailures {
    last: Option<Instant>,
    dropped: u64,
}

impl WriteFailures {
    pub(super) fn failed(&mut self, output: &Output, error: &std::io::Error, lines: u64, now: Instant) {
        self.dropped += lines;
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return;
        }
        self.last = Some(now);
        let dropped = std::mem::take(&mut self.dropped);
        tracing::warn!(destination = %format_args!("{output:?}"), error = %error, dropped, "access log: write failed; lines dropped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes up to `room` bytes (a few at a time), then fails as a full disk.
    struct Disk {
        data: Vec<u8>,
        room: usize,
    }

    impl Write for Disk {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.room).min(7);
            if n == 0 {
                return Err(std::io::Error::from_raw_os_error(28));
            }
            self.data.extend_from_slice(&buf[..n]);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_that_fails_part_way_never_merges_into_a_later_line() {
        let mut disk = Disk {
            data: Vec::new(),
            room: 20,
        };
        let mut torn = false;
        let lines = b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n";
        let (e, written) = write_lines(&mut disk, lines, &mut torn)
            .err()
            .map_or((None, 0), |(e, n)| (Some(e), n));
        assert_eq!(e.map(|e| e.raw_os_error()), Some(Some(28)));
        assert_eq!(written, 20);
        assert_eq!(bytecount(&lines[..written], b'\n'), 2, "two whole lines went out");
        assert!(torn, "the third line was cut");
        disk.room = usize::MAX;
        assert!(write_lines(&mut disk, b"{\"d\":4}\n", &mut torn).is_ok());
        assert!(!torn);
        let text = String::from_utf8(disk.data).unwrap_or_default();
        assert_eq!(text, "{\"a\":1}\n{\"b\":2}\n{\"c\"\n{\"d\":4}\n");
        // A failure at a line's end leaves nothing torn.
        let mut disk = Disk {
            data: Vec::new(),
            room: 8,
        };
        let mut torn = false;
        assert!(write_lines(&mut disk, lines, &mut torn).is_err());
        assert!(!torn);
    }
}
