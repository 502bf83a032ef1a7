//! The client side of an HTTP/1.1 connection: the socket (plain or TLS) and
//! its reader, whose buffer holds the request body as it arrives.

use std::io::IoSlice;
use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use http::{HeaderMap, Version};
use http1::{BodyKind, ChunkSize, Fields, Framing, RequestHead};

use crate::body::{BodyError, ClientReader};
use crate::client::side::Client;
use crate::error::kind::{ErrorKind, Failure};
use crate::stream::Stream;

/// An HTTP/1.1 client connection.
#[derive(Debug)]
pub struct H1 {
    pub stream: Rc<Stream>,
    /// The read side: buffer and the current request body's decoder.
    pub reader: ClientReader,
    /// The last request's header fields, emptied and reused by the next head.
    pub spare_fields: Fields,
}

impl H1 {
    pub fn new(stream: Rc<Stream>) -> Self {
        Self {
            reader: ClientReader::new(stream.clone()),
            stream,
            spare_fields: Fields::default(),
        }
    }

    async fn write_all(&mut self, bufs: &mut [IoSlice<'_>], timeout: Duration) -> Result<(), Failure> {
        let written = self.stream.write_all(bufs);
        match self.reader.timer.within_for(timeout, written).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(ErrorKind::ClientClosed.into()),
            Err(_) => Err(ErrorKind::WriteTimeout.into()),
        }
    }
}

impl Client for H1 {
    fn connection(&self) -> &Stream {
        &self.stream
    }

    fn response_version(&self, request: Version) -> Version {
        request
    }

    fn start_body(&mut self, body: BodyKind, max_body: Option<u64>, read_timeout: Duration) {
        self.reader.start(body, max_body, read_timeout);
    }

    fn set_read_timeout(&mut self, read_timeout: Duration) {
        self.reader.read_timeout = read_timeout;
    }

    fn body_done(&self) -> bool {
        self.reader.is_done()
    }

    fn buffered(&mut self) -> Result<usize, BodyError> {
        self.reader.buffered()
    }

    async fn fill(&mut self) -> Result<usize, BodyError> {
        self.reader.fill().await
    }

    fn body(&self) -> &[u8] {
        &self.reader.buf
    }

    fn ends_after(&self, n: usize) -> bool {
        self.reader.ends_after(n)
    }

    fn consume_through(&mut self, n: usize, end: bool) {
        self.reader.consume_through(n, end);
    }

    async fn check_body(&mut self, head: &RequestHead, write_timeout: Duration) -> Result<(), Failure> {
        if head.expect_continue && head.body.has_body() {
            let mut bufs = [IoSlice::new(b"HTTP/1.1 100 Continue\r\n\r\n")];
            self.write_all(&mut bufs, write_timeout).await?;
        }
        if head.body == BodyKind::Chunked {
            self.reader.fill().await?;
            self.reader.check_buffered()?;
        }
        Ok(())
    }

    async fn closed(&mut self) {
        let ClientReader { stream, buf, .. } = &mut self.reader;
        stream.closed_by_peer(buf).await;
    }

    async fn write(
        &mut self,
        head: &[u8],
        framing: Framing,
        data: &[u8],
        end: bool,
        timeout: Duration,
    ) -> Result<u64, Failure> {
        let size = ChunkSize::new(data.len());
        let mut bufs = framing.frame(head, &size, data, end);
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total > 0 {
            self.write_all(&mut bufs, timeout).await?;
        }
        Ok(total as u64)
    }

    async fn write_trailers(
        &mut self,
        head: &[u8],
        framing: Framing,
        _trailers: HeaderMap,
        timeout: Duration,
    ) -> Result<u64, Failure> {
        self.write(head, framing, &[], true, timeout).await
    }

    fn tunnel(&mut self) -> Option<(&Stream, &mut BytesMut)> {
        Some((&self.stream, &mut self.reader.buf))
    }
}
