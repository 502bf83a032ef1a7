//! The JSON access log: one line per exchange, formatted into a per-worker batch
//! buffer (no allocation per line), handed in batches to a writer thread over a
//! bounded queue. A full queue drops the batch and counts its lines; nothing
//! ever waits on the log. Buffers circulate back to the workers for reuse.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use plan::{LogDestination, LogField};

use crate::observe::exchange::Exchange;
use crate::observe::json;
pub use crate::observe::log_output::Output;
use crate::observe::log_output::{WriteFailures, bytecount};
use crate::observe::stats::Global;

/// A batch is handed to the writer once it holds this many bytes (or on the
/// worker's flush tick).
pub const BATCH_BYTES: usize = 16 * 1024;
/// Batches the queue holds before lines are dropped (≈ 1 MiB of log).
pub const QUEUE_BATCHES: usize = 64;
/// How often a worker hands over a partly filled batch.
pub const FLUSH_EVERY: Duration = Duration::from_millis(10);

/// Lines of one worker, waiting to be written.
#[derive(Debug, Default)]
pub struct Batch {
    pub buf: Vec<u8>,
    pub lines: u64,
    /// The destination its lines were formatted for (see [`Sink::switch`]).
    pub destination: u64,
}

/// What travels to the writer thread, in order.
enum Message {
    Lines(Batch),
    /// A new destination, numbered: batches say which one their lines are
    /// for, so lines formatted before a reload still reach the old one.
    Switch(u64, Output),
}

/// The writer side, shared by all workers.
#[derive(Debug)]
pub struct Sink {
    queue: Mutex<Option<SyncSender<Message>>>,
    returned: Mutex<Receiver<Vec<u8>>>,
    reopen: Arc<AtomicBool>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Lines handed to the writer and not yet written (or dropped).
    pending: Arc<AtomicU64>,
    /// The destination being written (none while the log is off), for
    /// reload to compare against, and its number.
    destination: Mutex<(Option<LogDestination>, u64)>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Message::Lines(b) => write!(f, "Lines({})", b.lines),
            Message::Switch(id, o) => write!(f, "Switch({id}, {o:?})"),
        }
    }
}

impl Sink {
    /// Starts the writer thread on an opened destination.
    pub fn start(
        output: Output,
        destination: Option<LogDestination>,
        global: Arc<crate::observe::stats::Registry>,
    ) -> std::io::Result<Arc<Sink>> {
        let (tx, rx) = sync_channel::<Message>(QUEUE_BATCHES);
        let (back_tx, back_rx) = sync_channel::<Vec<u8>>(QUEUE_BATCHES);
        let reopen = Arc::new(AtomicBool::new(false));
        let pending = Arc::new(AtomicU64::new(0));
        let (flag, left) = (reopen.clone(), pending.clone());
        let writer = std::thread::Builder::new().name("access-log".into()).spawn(move || {
            let g: &Global = &global.global;
            // The current destination last; the one before stays open for
            // lines formatted before the switch.
            let mut outputs: Vec<(u64, Output, bool)> = vec![(0, output, false)];
            let mut failures = WriteFailures::default();
            loop {
                let message = match rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                };
                if flag.swap(false, Ordering::AcqRel) {
                    for (_, o, _) in &mut outputs {
                        o.reopen();
                    }
                }
                match message {
                    None => {}
                    Some(Message::Switch(id, next)) => {
                        outputs.push((id, next, false));
                        if outputs.len() > 2 {
                            let (_, mut oldest, _) = outputs.remove(0);
                            oldest.flush();
                        }
                    }
                    Some(Message::Lines(mut batch)) => {
                        let at = outputs.iter().position(|(id, ..)| *id == batch.destination);
                        let (output, torn) = match at {
                            Some(i) => {
                                let (_, o, torn) = &mut outputs[i];
                                (o, torn)
                            }
                            None => match outputs.last_mut() {
                                Some((_, o, torn)) => (o, torn),
                                None => continue,
                            },
                        };
                        match output.write(&batch.buf, torn) {
                            Ok(()) => {
                                g.access_log_written.fetch_add(batch.lines, Ordering::Relaxed);
                            }
                            Err((e, written)) => {
                                let whole = bytecount(&batch.buf[..written], b'\n').min(batch.lines);
                                g.access_log_written.fetch_add(whole, Ordering::Relaxed);
                                g.access_log_dropped.fetch_add(batch.lines - whole, Ordering::Relaxed);
                                failures.failed(output, &e, batch.lines - whole, Instant::now());
                            }
                        }
                        left.fetch_sub(batch.lines, Ordering::Relaxed);
                        batch.buf.clear();
                        // Recycle the buffer; if enough are in circulation, let it go.
                        let _ = back_tx.try_send(batch.buf);
                    }
                }
            }
        })?;
        Ok(Arc::new(Sink {
            queue: Mutex::new(Some(tx)),
            returned: Mutex::new(back_rx),
            reopen,
            writer: Mutex::new(Some(writer)),
            pending,
            destination: Mutex::new((destination, 0)),
        }))
    }

    fn sender(&self) -> Option<SyncSender<Message>> {
        self.queue.lock().ok()?.clone()
    }

    /// An emptied buffer to reuse, if the writer has one back.
    pub fn recycled(&self) -> Option<Vec<u8>> {
        self.returned.lock().ok()?.try_recv().ok()
    }

    /// Asks the writer to reopen a file destination (SIGUSR1).
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Release);
    }

    /// The destination lines go to now, and its number.
    pub fn destination(&self) -> (Option<LogDestination>, u64) {
        self.destination.lock().map(|d| d.clone()).unwrap_or((None, 0))
    }

    /// Opens a new destination and returns its number: lines formatted for
    /// it (a generation carries the number) go there; lines formatted for the
    /// previous one still go to the previous one, which is flushed and closed
    /// when the next switch comes.
    pub fn switch(&self, output: Output, destination: LogDestination) -> Result<u64, String> {
        let tx = self.sender().ok_or("the access-log writer has stopped")?;
        let mut d = self
            .destination
            .lock()
            .map_err(|_| "the access-log writer has failed")?;
        let id = d.1 + 1;
        tx.send(Message::Switch(id, output))
            .map_err(|_| "the access-log writer has stopped".to_owned())?;
        *d = (Some(destination), id);
        Ok(id)
    }

    /// Stops the writer once every worker's sender is gone and the queue is
    /// written, but waits no longer than `deadline`: a destination that does
    /// not take writes (a pipe nobody reads) never keeps the process alive.
    /// Returns how many lines could not be written (counted as dropped).
    pub fn close(&self, deadline: Instant, global: &Global) -> u64 {
        if let Ok(mut q) = self.queue.lock() {
            q.take();
        }
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(h) = handle {
            while !h.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
        let lost = self.pending.load(Ordering::Relaxed);
        global.access_log_dropped.fetch_add(lost, Ordering::Relaxed);
        lost
    }
}

/// One worker's end of the log.
#[derive(Debug)]
pub struct WorkerLog {
    sink: Arc<Sink>,
    tx: SyncSender<Message>,
    batch: Batch,
}

impl WorkerLog {
    pub fn new(sink: Arc<Sink>) -> Option<WorkerLog> {
        let tx = sink.sender()?;
        Some(WorkerLog {
            sink,
            tx,
            batch: Batch {
                buf: Vec::with_capacity(BATCH_BYTES * 2),
                lines: 0,
                destination: 0,
            },
        })
    }

    /// The buffer to append one line for `destination` to; call
    /// [`WorkerLog::line_done`] after. A batch holds lines for one destination.
    pub fn buffer(&mut self, destination: u64, global: &Global) -> &mut Vec<u8> {
        if self.batch.destination != destination {
            self.flush(global);
            self.batch.destination = destination;
        }
        &mut self.batch.buf
    }

    pub fn line_done(&mut self, global: &Global) {
        self.batch.lines += 1;
        if self.batch.buf.len() >= BATCH_BYTES {
            self.flush(global);
        }
    }

    /// Hands the batch to the writer without waiting; a full queue drops it.
    pub fn flush(&mut self, global: &Global) {
        if self.batch.lines == 0 {
            return;
        }
        let fresh = self
            .sink
            .recycled()
            .unwrap_or_else(|| Vec::with_capacity(BATCH_BYTES * 2));
        let destination = self.batch.destination;
        let batch = std::mem::replace(
            &mut self.batch,
            Batch {
                buf: fresh,
                lines: 0,
                destination,
            },
        );
        let lines = batch.lines;
        self.sink.pending.fetch_add(lines, Ordering::Relaxed);
        match self.tx.try_send(Message::Lines(batch)) {
            Ok(()) => {}
            Err(TrySendError::Full(m) | TrySendError::Disconnected(m)) => {
                self.sink.pending.fetch_sub(lines, Ordering::Relaxed);
                global.access_log_dropped.fetch_add(lines, Ordering::Relaxed);
                if let Message::Lines(mut b) = m {
                    b.buf.clear();
                    self.batch.buf = b.buf;
                }
            }
        }
    }

    /// At shutdown: hands the last batch over, waiting up to `wait` for room;
    /// what finds none is counted as dropped.
    pub fn flush_final(&mut self, global: &Global, wait: Duration) {
        let deadline = Instant::now() + wait;
        while self.batch.lines > 0 {
            let destination = self.batch.destination;
            let batch = std::mem::replace(
                &mut self.batch,
                Batch {
                    destination,
                    ..Batch::default()
                },
            );
            let lines = batch.lines;
            self.sink.pending.fetch_add(lines, Ordering::Relaxed);
            match self.tx.try_send(Message::Lines(batch)) {
                Ok(()) => return,
                Err(TrySendError::Full(Message::Lines(b))) if Instant::now() < deadline => {
                    self.sink.pending.fetch_sub(lines, Ordering::Relaxed);
                    self.batch = b;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(_) => {
                    self.sink.pending.fetch_sub(lines, Ordering::Relaxed);
                    global.access_log_dropped.fetch_add(lines, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
}

/// What a line needs besides the exchange: resolved names and the clock.
pub struct LineContext<'a> {
    pub client_ip: &'a [u8],
    pub route: Option<&'a str>,
    pub cluster: Option<&'a str>,
    pub upstream_url: Option<&'a str>,
    /// First 12 hex digits of the plan digest.
    pub plan: &'a str,
    pub duration: Duration,
    /// The TLS version of the connection (`"TLSv1.3"`), on TLS connections.
    pub tls: Option<&'a str>,
    /// The server name the client sent in its TLS hello.
    pub sni: Option<&'a str>,
}

/// Appends one JSON line for `ex` with `fields` in order. Allocation-free.
pub fn format_line(out: &mut Vec<u8>, fields: &[LogField], ex: &Exchange, ctx: &LineContext<'_>) {
    out.push(b'{');
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(field.name().as_bytes());
        out.extend_from_slice(b"\":");
        match field {
            LogField::Timestamp => timestamp(out, ex.started_wall),
            LogField::ClientIp => json::push_bytes(out, ctx.client_ip),
            LogField::Method => opt_str(out, ex.method.as_ref().map(|m| m.as_str())),
            LogField::Path => opt_str(out, ex.path()),
            LogField::Status => int(out, u64::from(ex.status)),
            LogField::DurationMs => duration_ms(out, ctx.duration),
            LogField::Route => opt_str(out, ctx.route),
            LogField::Cluster => opt_str(out, ctx.cluster),
            LogField::UpstreamUrl => opt_str(out, ctx.upstream_url),
            LogField::Error => opt_str(out, ex.error.map(|e| e.as_str())),
            LogField::BytesSent => int(out, ex.bytes_sent),
            LogField::UpstreamStatus => match ex.upstream_status {
                Some(s) => int(out, u64::from(s)),
                None => out.extend_from_slice(b"null"),
            },
            LogField::Host => opt_bytes(out, ex.host.as_deref()),
            LogField::Query => opt_str(out, ex.query()),
            LogField::UserAgent => opt_bytes(out, ex.user_agent.as_deref()),
            LogField::RequestId => opt_bytes(out, ex.request_id.as_deref()),
            LogField::Plan => json::push_str(out, ctx.plan),
            LogField::Protocol => opt_str(
                out,
                ex.version.map(|v| match v {
                    http::Version::HTTP_10 => "HTTP/1.0",
                    http::Version::HTTP_2 => "HTTP/2",
                    _ => "HTTP/1.1",
                }),
            ),
            LogField::UpstreamDurationMs => match ex.upstream_duration {
                Some(d) => duration_ms(out, d),
                None => out.extend_from_slice(b"null"),
            },
            LogField::Attempts => match ex.attempts {
                0 => out.extend_from_slice(b"null"),
                n => int(out, u64::from(n)),
            },
            LogField::Tls => opt_str(out, ctx.tls),
            LogField::Sni => opt_str(out, ctx.sni),
        }
    }
    out.extend_from_slice(b"}\n");
}

fn opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json::push_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn opt_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(b) => json::push_bytes(out, b),
        None => out.extend_from_slice(b"null"),
    }
}

fn int(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Milliseconds with microsecond precision: `1.734`.
fn duration_ms(out: &mut Vec<u8>, d: Duration) {
    let micros = d.as_micros() as u64;
    int(out, micros / 1000);
    let frac = micros % 1000;
    out.push(b'.');
    out.push(b'0' + (frac / 100) as u8);
    out.push(b'0' + (frac / 10 % 10) as u8);
    out.push(b'0' + (frac % 10) as u8);
}

/// RFC 3339 UTC with milliseconds: `"2026-11-25T16:40:00.123Z"`.
fn timestamp(out: &mut Vec<u8>, t: SystemTime) {
    out.push(b'"');
    timestamp_unquoted(out, t);
    out.push(b'"');
}

/// The formatted date and time of one second, `2026-11-25T16:40:00.`.
type SecondPrefix = (u64, [u8; 20]);

thread_local! {
    /// The last second formatted on this thread: a log line formats only its
    /// milliseconds unless the second changed.
    static LAST_SECOND: std::cell::Cell<SecondPrefix> = const { std::cell::Cell::new((u64::MAX, [0; 20])) };
}

/// RFC 3339 UTC with milliseconds, without quotes. The calendar is the
/// `time` crate's, at most once per second per thread.
pub fn timestamp_unquoted(out: &mut Vec<u8>, t: SystemTime) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (last, mut prefix) = LAST_SECOND.get();
    if last != secs {
        let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].");
        let datetime = time::OffsetDateTime::UNIX_EPOCH + Duration::from_secs(secs);
        let mut cursor = std::io::Cursor::new(&mut prefix[..]);
        if datetime.format_into(&mut cursor, format).is_ok() && cursor.position() == 20 {
            LAST_SECOND.set((secs, prefix));
        }
    }
    out.extend_from_slice(&prefix);
    let ms = since.subsec_millis();
    out.push(b'0' + (ms / 100) as u8);
    out.push(b'0' + (ms / 10 % 10) as u8);
    out.push(b'0' + (ms % 10) as u8);
    out.push(b'Z');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(secs: u64, millis: u64) -> String {
        let mut out = Vec::new();
        timestamp(
            &mut out,
            UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis),
        );
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_millis() {
        assert_eq!(ts(0, 0), "\"1970-01-01T00:00:00.000Z\"");
        assert_eq!(ts(951_782_400, 7), "\"2000-02-29T00:00:00.007Z\"");
        assert_eq!(ts(1_795_624_800, 123), "\"2026-11-25T16:40:00.123Z\"");
        assert_eq!(ts(4_107_542_399, 999), "\"2100-02-28T23:59:59.999Z\"");
    }

    #[test]
    fn durations_are_fractional_milliseconds() {
        for (micros, expected) in [(0, "0.000"), (1_734, "1.734"), (12, "0.012"), (5_000_001, "5000.001")] {
            let mut out = Vec::new();
            duration_ms(&mut out, Duration::from_micros(micros));
            assert_eq!(String::from_utf8(out).unwrap_or_default(), expected);
        }
    }
}
