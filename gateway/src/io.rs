//! Reading and writing sockets through `&TcpStream` readiness, so the
//! request-body reader and the response writer can share one socket without
//! splitting it, and no syscall is spent on `EAGAIN`.

use std::io::{self, IoSlice};
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{Interest, ReadBuf};
use tokio::net::TcpStream;

/// Room a read needs at least; below it, the buffer is reclaimed (or grown).
pub const MIN_READ_ROOM: usize = 4 * 1024;

/// Where a read puts its bytes: a connection's own buffer, which a read
/// makes room in first, or a caller's [`ReadBuf`] (HTTP/2's codec reads into
/// its own buffer), filled as far as it has room and never grown.
pub trait ReadInto: bytes::BufMut {
    /// Makes room for a read, if the target can.
    fn make_room(&mut self);
    /// What the next read may put without growing anything.
    fn room(&self) -> usize;
}

impl ReadInto for BytesMut {
    fn make_room(&mut self) {
        if self.room() < MIN_READ_ROOM {
            // Asking for no more than the buffer's own size lets `BytesMut`
            // move unread bytes to the front of its allocation instead of
            // allocating, once the data before them has been consumed.
            self.reserve(MIN_READ_ROOM);
        }
    }

    fn room(&self) -> usize {
        self.capacity() - self.len()
    }
}

impl ReadInto for ReadBuf<'_> {
    fn make_room(&mut self) {}

    fn room(&self) -> usize {
        self.remaining()
    }
}

/// One non-blocking read into `buf`; `Ready(Ok(0))` is end of stream.
pub fn poll_read_buf<B: ReadInto>(stream: &TcpStream, cx: &mut Context<'_>, buf: &mut B) -> Poll<io::Result<usize>> {
    loop {
        match try_read_buf(stream, buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::task::ready!(stream.poll_read_ready(cx))?;
            }
            other => return Poll::Ready(other),
        }
    }
}

/// Reads what the socket holds now, without waiting. A read that returned less
/// than it had room for drained the socket, so the readiness tokio caches is
/// cleared then (as tokio's own `AsyncRead` does on epoll): the next read waits
/// for the reactor instead of spending a syscall on `EAGAIN`.
pub fn try_read_buf<B: ReadInto>(stream: &TcpStream, buf: &mut B) -> io::Result<usize> {
    buf.make_room();
    let room = buf.room();
    if room == 0 {
        // Only a full `ReadBuf` has none (a `BytesMut` was just given room):
        // nothing is read, as `AsyncRead` does for a full buffer.
        return Ok(0);
    }
    let n = stream.try_read_buf(buf)?;
    if n > 0 && n < room {
        // No reactor turn can happen between the read and this call, so only
        // the readiness the read consumed is cleared.
        let _ = stream.try_io(Interest::READABLE, || Err::<(), _>(io::ErrorKind::WouldBlock.into()));
    }
    Ok(n)
}

/// A write that failed: how many bytes the kernel had taken before it did
/// (0 means the peer received nothing of this write).
#[derive(Debug)]
pub struct WriteError {
    pub written: usize,
}

/// Writes every byte of `bufs`, vectored.
pub async fn write_all(stream: &TcpStream, bufs: &mut [IoSlice<'_>]) -> Result<(), WriteError> {
    // Only the non-empty pieces go to the kernel: framing leaves some empty.
    let mut packed = [IoSlice::new(&[]); MAX_SLICES];
    let mut count = 0;
    for b in bufs.iter().filter(|b| !b.is_empty()) {
        if count == MAX_SLICES {
            break;
        }
        packed[count] = IoSlice::new(b);
        count += 1;
    }
    debug_assert!(
        bufs.iter().filter(|b| !b.is_empty()).count() <= MAX_SLICES,
        "write_all takes at most {MAX_SLICES} non-empty pieces"
    );
    let mut bufs = &mut packed[..count];
    let mut written = 0;
    let fail = |_: io::Error, written| WriteError { written };
    while !bufs.is_empty() {
        if bufs[0].is_empty() {
            bufs = &mut bufs[1..];
            continue;
        }
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        match try_write(stream, bufs, total) {
            Ok(0) => return Err(fail(io::ErrorKind::WriteZero.into(), written)),
            Ok(n) if n < total => {
                // A short write filled the socket: wait for room rather than
                // spend a syscall on `EAGAIN` (tokio's `AsyncWrite` does the same).
                written += n;
                IoSlice::advance_slices(&mut bufs, n);
                let _ = stream.try_io(Interest::WRITABLE, || Err::<(), _>(io::ErrorKind::WouldBlock.into()));
                stream.writable().await.map_err(|e| fail(e, written))?;
            }
            Ok(n) => {
                written += n;
                IoSlice::advance_slices(&mut bufs, n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.writable().await.map_err(|e| fail(e, written))?,
            Err(e) => return Err(fail(e, written)),
        }
    }
    Ok(())
}

/// One non-blocking write of `bufs` (`total` bytes). A single piece goes out
/// with `send`, and so do several whose total is at most [`GATHER`], copied
/// together first: `writev` costs the kernel about 0.15 µs more per call than
/// `send` on this path (its iovec import and the VFS write path), far more
/// than copying a small response's head and body into one buffer
/// (`bench/FINDINGS.md`). Larger writes stay vectored, with no copy.
fn try_write(stream: &TcpStream, bufs: &[IoSlice<'_>], total: usize) -> io::Result<usize> {
    match bufs {
        [one] => stream.try_io(Interest::WRITABLE, || send(stream, one)),
        _ if total <= GATHER => GATHERED.with_borrow_mut(|gathered| {
            gathered.clear();
            for b in bufs {
                gathered.extend_from_slice(b);
            }
            stream.try_io(Interest::WRITABLE, || send(stream, gathered))
        }),
        _ => stream.try_io(Interest::WRITABLE, || retry(|| rustix::io::writev(stream, bufs))),
    }
}

/// One `send` of `buf`, straight to the kernel; `NOSIGNAL`, as std's own
/// socket writes: a peer that has gone is an `EPIPE` error, never a signal.
///
/// Writes go through `rustix`, which enters the kernel itself, rather than
/// through std and glibc: glibc's `send` and `writev` are thread cancellation
/// points, and in a multi-threaded process (the gateway has a log writer and
/// a reload thread) each call switches the thread's asynchronous
/// cancellation on and off around the system call, two atomic
/// read-modify-writes that cost about as much as the wrapper itself
/// (`bench/FINDINGS.md`). No write of the gateway is ever cancelled that way.
fn send(stream: &TcpStream, buf: &[u8]) -> io::Result<usize> {
    retry(|| rustix::net::send(stream, buf, rustix::net::SendFlags::NOSIGNAL))
}

/// Runs `call` again while a signal interrupts it: a signal never fails a
/// socket call of the gateway.
fn retry<T>(mut call: impl FnMut() -> rustix::io::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(rustix::io::Errno::INTR) => {}
            other => return other.map_err(io::Error::from),
        }
    }
}

/// The largest write gathered into one buffer rather than sent vectored.
const GATHER: usize = 2048;

thread_local! {
    /// Each worker's gathering buffer: allocated once, never grown past
    /// [`GATHER`].
    static GATHERED: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(GATHER));
}

/// The most pieces one [`write_all`] takes (a head, a chunk's size line, its
/// data, its CRLF and the last chunk).
const MAX_SLICES: usize = 5;

/// Resolves when the peer has closed (or reset) its side of `stream` while an
/// exchange waits for the upstream. Bytes that arrive instead (a pipelined
/// next request) are kept in `buf` and the watch ends: only an end of stream
/// counts.
///
/// The wait takes the socket's one reader slot (`poll_read_ready`) rather than
/// queueing a `readable()` waiter, which locks the socket's waiter list twice
/// (to enter it and to leave it when the exchange ends first): nothing else
/// reads the client's socket while its finished request waits for an answer.
pub async fn closed_by_peer(stream: &TcpStream, buf: &mut BytesMut) {
    loop {
        if std::future::poll_fn(|cx| stream.poll_read_ready(cx)).await.is_err() {
            return;
        }
        match try_read_buf(stream, buf) {
            Ok(0) => return,
            Ok(_) => return std::future::pending().await,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}
