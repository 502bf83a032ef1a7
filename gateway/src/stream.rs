//! A connection's byte stream (a client's, or an upstream's), plain or TLS,
//! read and written by shared reference with the same calls either way: the
//! phases do not know which one they are serving.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::{Buf as _, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

use crate::h2heads::HeadWatch;
use crate::io::{ReadInto, WriteError, closed_by_peer, poll_read_buf, try_read_buf, write_all};

/// How long a connection that closes while its client may still be sending
/// keeps reading (and discarding) after its last response, so that the
/// response is read rather than lost to a reset.
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// How much a lingering close reads at most: a client still sending at full
/// speed has had the response in its buffers long before that (it was sent
/// before any of these bytes were read), and the discarding stays bounded.
const LINGER_BYTES: usize = 4 << 20;

/// A client connection's byte stream: a plain socket, or a TLS session over
/// one. The phases read and write it by shared reference, whichever it is.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<crate::tls::TlsStream>),
}

impl Stream {
    /// The socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.tcp(),
        }
    }

    /// The TLS session's details, on a TLS connection.
    pub fn tls(&self) -> Option<&crate::tls::TlsStream> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(s) => Some(s),
        }
    }

    pub fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => try_read_buf(s, buf),
            Stream::Tls(s) => s.try_read_buf(buf),
        }
    }

    pub fn poll_read_buf<B: ReadInto>(&self, cx: &mut Context<'_>, buf: &mut B) -> Poll<io::Result<usize>> {
        match self {
            Stream::Plain(s) => poll_read_buf(s, cx, buf),
            Stream::Tls(s) => loop {
                match s.try_read_buf(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::task::ready!(s.poll_read_ready(cx))?;
                    }
                    other => return Poll::Ready(other),
                }
            },
        }
    }

    pub async fn read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_read_buf(cx, buf)).await
    }

    pub async fn write_all(&self, bufs: &mut [IoSlice<'_>]) -> Result<(), WriteError> {
        match self {
            Stream::Plain(s) => write_all(s, bufs).await,
            Stream::Tls(s) => s.write_all(bufs).await,
        }
    }

    /// One write of what the socket (or the TLS session) takes now, for
    /// HTTP/2's codec, which writes through `AsyncWrite`.
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            Stream::Plain(s) => loop {
                match s.try_write(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::task::ready!(s.poll_write_ready(cx))?,
                    other => return Poll::Ready(other),
                }
            },
            Stream::Tls(s) => s.poll_write(cx, buf),
        }
    }

    /// Sends whatever [`Stream::poll_write`] left buffered (a TLS session's
    /// records).
    pub fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Plain(_) => Poll::Ready(Ok(())),
            Stream::Tls(s) => s.poll_flush(cx),
        }
    }

    /// Resolves when the peer closed its side while an exchange waits for
    /// the upstream (see [`closed_by_peer`]).
    ///
    /// Only while `buf` holds nothing unread: a client that already sent its
    /// next request is not watched, since seeing its end would mean reading
    /// past that request, and a client that pipelines without reading its
    /// answers would then grow the buffer by a read per exchange.
    pub async fn closed_by_peer(&self, buf: &mut BytesMut) {
        if !buf.is_empty() {
            return std::future::pending().await;
        }
        match self {
            Stream::Plain(s) => closed_by_peer(s, buf).await,
            // Readiness first, as for a plain socket: the session's own
            // buffer was drained by the last read.
            Stream::Tls(s) => loop {
                if std::future::poll_fn(|cx| s.tcp().poll_read_ready(cx)).await.is_err() {
                    return;
                }
                match s.try_read_buf(buf) {
                    Ok(0) => return,
                    Ok(_) => return std::future::pending().await,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            },
        }
    }

    /// Stops sending, then reads and discards what the peer still sends for
    /// at most [`LINGER`] and [`LINGER_BYTES`] (NGINX's lingering close, RFC
    /// 9112 §9.6): closing a socket with unread bytes resets it, and a reset
    /// can destroy the last response (a `413`, an HTTP/2 GOAWAY) before the
    /// client reads it.
    pub async fn linger(&self) {
        self.shutdown_write();
        let mut scratch = BytesMut::new();
        let drained = async {
            let mut read = 0;
            while read < LINGER_BYTES {
                scratch.clear();
                match self.read_buf(&mut scratch).await {
                    Ok(n) if n > 0 => read += n,
                    _ => return,
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, drained).await;
    }

    /// Ends the sending side (a TLS stream says `close_notify` first).
    pub fn shutdown_write(&self) {
        if let Stream::Tls(s) = self {
            s.close_notify();
        }
        let _ = socket2::SockRef::from(self.tcp()).shutdown(std::net::Shutdown::Write);
    }

    /// Whether an idle connection is still usable: the peer has neither
    /// closed it nor sent data (TLS records without data, such as session
    /// tickets, are absorbed into the session; `scratch` receives any data).
    /// Costs a syscall only when the reactor has seen the socket readable;
    /// the reactor's view is read without registering a waker.
    pub fn is_alive(&self, scratch: &mut BytesMut) -> bool {
        if self.tcp().try_io(Interest::READABLE, || Ok(())).is_err() {
            // Nothing seen since the last read drained it: no data, no end.
            return true;
        }
        let read = match self {
            Stream::Plain(s) => s.try_read(&mut [0u8; 1]),
            Stream::Tls(s) => s.try_read_buf(scratch),
        };
        matches!(read, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// The scheme the client used, for `X-Forwarded-Proto` and redirects.
    pub fn scheme(&self) -> &'static str {
        match self {
            Stream::Plain(_) => "http",
            Stream::Tls(_) => "https",
        }
    }
}

/// The connection's bytes for the `h2` codec: what was read before the
/// protocol was known comes first, then reads go straight into the codec's
/// own buffer (an idle HTTP/2 connection holds no read buffer of ours).
pub struct H2Io {
    stream: Rc<Stream>,
    read: BytesMut,
    /// A client connection's header blocks, followed as its bytes pass.
    heads: Option<Rc<HeadWatch>>,
}

impl H2Io {
    /// `read`: bytes already read from `stream`, handed out first.
    pub fn new(stream: Rc<Stream>, read: BytesMut) -> Self {
        Self {
            stream,
            read,
            heads: None,
        }
    }

    /// A client connection's, whose header blocks `heads` follows.
    pub fn watching(stream: Rc<Stream>, read: BytesMut, heads: Rc<HeadWatch>) -> Self {
        Self {
            stream,
            read,
            heads: Some(heads),
        }
    }
}

impl AsyncRead for H2Io {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.read.is_empty() {
            let before = out.filled().len();
            let read = this.stream.poll_read_buf(cx, out).map_ok(|_| ());
            if let Some(heads) = &this.heads {
                heads.observe(&out.filled()[before..]);
            }
            return read;
        }
        let n = this.read.len().min(out.remaining());
        if let Some(heads) = &this.heads {
            heads.observe(&this.read[..n]);
        }
        out.put_slice(&this.read[..n]);
        this.read.advance(n);
        if this.read.is_empty() {
            // Handed out: the buffer it came in (an HTTP/1.1 read buffer,
            // for h2c) is not needed again.
            this.read = BytesMut::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for H2Io {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.stream.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.stream.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        std::task::ready!(self.stream.poll_flush(cx))?;
        self.stream.shutdown_write();
        Poll::Ready(Ok(()))
    }
}
