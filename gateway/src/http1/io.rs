//! Reading and writing the client socket through `&TcpStream` readiness, so the
//! request-body reader and the response writer can share one socket without
//! splitting it.

use std::io::{self, IoSlice};
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::net::TcpStream;

/// Bytes to reserve before each read.
pub const READ_CHUNK: usize = 16 * 1024;

/// One non-blocking read into `buf`; `Ready(Ok(0))` is end of stream.
pub fn poll_read_buf(stream: &TcpStream, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
    loop {
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        match stream.try_read_buf(buf) {
            Ok(n) => return Poll::Ready(Ok(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::task::ready!(stream.poll_read_ready(cx))?;
            }
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

pub async fn read_buf(stream: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    std::future::poll_fn(|cx| poll_read_buf(stream, cx, buf)).await
}

/// Writes every byte of `bufs`, vectored.
pub async fn write_all(stream: &TcpStream, mut bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !bufs.is_empty() {
        if bufs[0].is_empty() {
            bufs = &mut bufs[1..];
            continue;
        }
        match stream.try_write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
