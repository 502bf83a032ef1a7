//! The gateway's own log (SPEC §16): `tracing` events on stderr, one line
//! each with a timestamp, a level and structured fields; filtered by
//! `RUST_LOG`, else `--log-level`; JSON lines with `--log-format json`.

use std::io::Write as _;

use tracing_subscriber::EnvFilter;

/// The line format of the gateway's own log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the subscriber. `RUST_LOG` wins over `level` when set.
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_timer(Rfc3339Millis)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
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
    let _ = std::io::stderr().lock().write_all(format!("{message}\n").as_bytes());
}

fn now_rfc3339() -> String {
    let mut out = Vec::with_capacity(32);
    crate::observe::accesslog::timestamp_unquoted(&mut out, std::time::SystemTime::now());
    String::from_utf8(out).unwrap_or_default()
}
