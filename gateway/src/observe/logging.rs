//! The gateway's own log (SPEC §16): `tracing` events on stderr, one line
//! each with a timestamp, a level and structured fields; filtered by
//! `RUST_LOG`, else `--log-level`; JSON lines with `--log-format json`.
//!
//! While serving, lines go to stderr from a thread of their own through a
//! bounded queue (`tracing-appender`), as the access log's do: a stderr that
//! does not take writes (a pipe whose reader stopped, a stalled journald)
//! drops lines and counts them, and never stops a worker in the middle of a
//! request. The other commands write stderr directly.

use std::io::Write as _;
use std::sync::{Mutex, OnceLock};

use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

/// Lines the queue holds before new ones are dropped: bursts of the
/// rate-limited warnings fit; each slot is allocated up front (a queue of
/// 8,192 cost 2 MB of RSS at rest).
const QUEUED_LINES: usize = 1024;

/// The serving log's writer: the queue's end, its writer thread's guard
/// (dropped by [`flush`]), and the count of lines dropped.
struct Queued {
    writer: NonBlocking,
    guard: Mutex<Option<WorkerGuard>>,
    dropped: ErrorCounter,
}

static QUEUED: OnceLock<Queued> = OnceLock::new();

/// The line format of the gateway's own log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the subscriber. `RUST_LOG` wins over `level` when set. With
/// `serving`, lines are written from a thread of their own (see the module
/// doc); call [`flush`] before the process exits.
pub fn init(level: &str, format: LogFormat, serving: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let writer = if serving {
        let (writer, guard) = NonBlockingBuilder::default()
            .buffered_lines_limit(QUEUED_LINES)
            .lossy(true)
            .thread_name("gateway-log")
            .finish(std::io::stderr());
        let queued = Queued {
            dropped: writer.error_counter(),
            writer: writer.clone(),
            guard: Mutex::new(Some(guard)),
        };
        let _ = QUEUED.set(queued);
        BoxMakeWriter::new(writer)
    } else {
        BoxMakeWriter::new(std::io::stderr)
    };
    let builder = tracing_subscriber::fmt()
        .with_timer(Rfc3339Millis)
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Writes what the queue holds and stops its thread (waiting about a second
/// at most: a stderr that takes nothing never keeps the process alive).
/// Called just before the process exits: events logged after it are lost;
/// [`announce`] lines and `eprintln!` still go out, directly.
pub fn flush() {
    if let Some(q) = QUEUED.get() {
        let guard = q.guard.lock().map(|mut g| g.take()).unwrap_or(None);
        drop(guard);
    }
}

/// Lines of the gateway's own log dropped because stderr did not take them.
pub fn dropped_lines() -> u64 {
    QUEUED.get().map_or(0, |q| q.dropped.dropped_lines() as u64)
}

/// Timestamps as the access log writes them: RFC 3339 UTC, milliseconds.
struct Rfc3339Millis;

impl tracing_subscriber::fmt::time::FormatTime for Rfc3339Millis {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        w.write_str(&now_rfc3339())
    }
}

/// Writes one of the lines scripts wait for (`listening on ADDR`), whatever
/// the filter and the format: these keep their exact text (SPEC §16), so a
/// script can read the address from the end of the line.
pub fn announce(message: &str) {
    let line = format!("{message}\n");
    // Through the queue while serving, so it keeps its place among the
    // events logged before it.
    let queued = QUEUED.get().filter(|q| q.guard.lock().is_ok_and(|g| g.is_some()));
    let _ = match queued {
        Some(q) => q.writer.clone().write_all(line.as_bytes()),
        None => std::io::stderr().lock().write_all(line.as_bytes()),
    };
}

fn now_rfc3339() -> String {
    let mut out = Vec::with_capacity(32);
    crate::observe::accesslog::timestamp_unquoted(&mut out, std::time::SystemTime::now());
    String::from_utf8(out).unwrap_or_default()
}
