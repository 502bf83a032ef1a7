//! TLS termination (SPEC §14): the server configuration built from the plan's
//! certificate files, the handshake, and [`TlsStream`], a client connection
//! read and written through a `rustls` session by shared reference, the way
//! `io.rs` reads and writes a plain socket, so the phases run unchanged on
//! either.
//!
//! The session sits in a `RefCell` that is borrowed only between awaits: each
//! operation moves what it can without blocking, releases the session, then
//! waits for socket readiness.

use std::cell::RefCell;
use std::io::{self, IoSlice, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{Connection, ServerConfig, ServerConnection};
use tokio::net::TcpStream;

use crate::io::{ReadInto, WriteError};

/// The TLS side of a plan generation: certificates as read at load, and the
/// `rustls` configuration every new connection starts from.
#[derive(Debug)]
pub struct TlsServer {
    pub config: Arc<ServerConfig>,
    pub handshake: Duration,
    certs: Arc<ByName>,
}

/// Certificates in config order, each with the names it serves.
#[derive(Debug)]
struct ByName {
    certs: Vec<(Arc<[String]>, Arc<CertifiedKey>)>,
}

impl ByName {
    /// The first certificate whose names cover `sni`, else the first one.
    fn index(&self, sni: Option<&str>) -> usize {
        sni.and_then(|name| {
            self.certs
                .iter()
                .position(|(names, _)| compiler::tls::covers(names, name))
        })
        .unwrap_or(0)
    }
}

impl ResolvesServerCert for ByName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.certs
            .get(self.index(hello.server_name()))
            .map(|(_, key)| key.clone())
    }
}

impl TlsServer {
    /// Reads every certificate of `tls` (paths relative to `base_dir`): any
    /// problem, including an expired certificate, refuses the whole listener.
    pub fn load(tls: &plan::TlsListener, base_dir: &Path) -> Result<Self, String> {
        let mut certs = Vec::with_capacity(tls.certificates.len());
        let now = std::time::SystemTime::now();
        for (i, files) in tls.certificates.iter().enumerate() {
            let at = format!("tls.certificates[{i}]");
            let cert = compiler::tls::load(&base_dir.join(&files.cert), &base_dir.join(&files.key))
                .map_err(|e| format!("{at}: {e}"))?;
            if cert.not_after <= now {
                return Err(format!(
                    "{at}: certificate {:?} expired on {}",
                    files.cert,
                    compiler::tls::date(cert.not_after)
                ));
            }
            certs.push((cert.names.into(), cert.key));
        }
        if certs.is_empty() {
            return Err("tls.certificates: no certificate".into());
        }
        let versions: &[&rustls::SupportedProtocolVersion] = match tls.min_version {
            plan::TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            plan::TlsVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let by_name = Arc::new(ByName { certs });
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| format!("tls: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(by_name.clone());
        config.alpn_protocols = tls.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        config.ignore_client_order = true;
        Ok(Self {
            config: Arc::new(config),
            handshake: Duration::from_millis(tls.handshake_ms),
            certs: by_name,
        })
    }

    /// Runs the handshake on `tcp`; the caller bounds it by `handshakeMs`.
    pub async fn accept(&self, tcp: TcpStream) -> Result<TlsStream, HandshakeError> {
        let session = ServerConnection::new(self.config.clone()).map_err(HandshakeError::Tls)?;
        let mut session = Connection::Server(session);
        handshake(&tcp, &mut session).await?;
        let sni: Option<Box<str>> = match &session {
            Connection::Server(s) => s.server_name().map(Into::into),
            Connection::Client(_) => None,
        };
        let names = self.certs.certs[self.certs.index(sni.as_deref())].0.clone();
        Ok(TlsStream::new(tcp, session, sni, names))
    }
}

/// Connects TLS over `tcp` to an upstream called `name` (SNI and the name
/// verified); the caller bounds it by `connectMs`.
pub async fn connect(
    tcp: TcpStream,
    config: Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
) -> Result<TlsStream, HandshakeError> {
    let session = rustls::ClientConnection::new(config, name).map_err(HandshakeError::Tls)?;
    let mut session = Connection::Client(session);
    handshake(&tcp, &mut session).await?;
    Ok(TlsStream::new(tcp, session, None, Arc::from([])))
}

/// Drives a handshake to its end over a non-blocking socket.
async fn handshake(tcp: &TcpStream, session: &mut Connection) -> Result<(), HandshakeError> {
    loop {
        while session.wants_write() {
            match session.write_tls(&mut Sock(tcp)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    tcp.writable().await.map_err(HandshakeError::Io)?;
                }
                Err(e) => return Err(HandshakeError::Io(e)),
            }
        }
        if !session.is_handshaking() {
            return Ok(());
        }
        match session.read_tls(&mut Sock(tcp)) {
            Ok(0) => return Err(HandshakeError::Closed),
            Ok(_) => {
                if let Err(e) = session.process_new_packets() {
                    // The alert rustls queued tells the peer why.
                    let _ = session.write_tls(&mut Sock(tcp));
                    return Err(HandshakeError::Tls(e));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tcp.readable().await.map_err(HandshakeError::Io)?;
            }
            Err(e) => return Err(HandshakeError::Io(e)),
        }
    }
}

/// Why a handshake failed (the connection is closed).
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("{0}")]
    Tls(rustls::Error),
    #[error("{0}")]
    Io(io::Error),
    #[error("the client closed the connection during the handshake")]
    Closed,
}

/// A client connection after its handshake.
#[derive(Debug)]
pub struct TlsStream {
    tcp: TcpStream,
    session: RefCell<Connection>,
    /// `"TLSv1.3"` or `"TLSv1.2"`, for the `tls` log field.
    pub version: &'static str,
    /// The server name the client sent, lowercase.
    pub sni: Option<Box<str>>,
    /// ALPN settled on `h2`: the connection speaks HTTP/2.
    pub h2: bool,
    /// The names of the certificate this connection was served.
    names: Arc<[String]>,
}

/// Non-blocking `Read`/`Write` over a socket for `rustls`' `read_tls` and
/// `write_tls`.
struct Sock<'a>(&'a TcpStream);

impl Read for Sock<'_> {
    /// A read that returned less than it had room for drained the socket:
    /// the readiness tokio caches is cleared then (as `io::try_read_buf`
    /// does), so the next read waits for the reactor instead of spending a
    /// syscall on `EAGAIN`.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.try_read(buf)?;
        if n > 0 && n < buf.len() {
            let _ = self.0.try_io(tokio::io::Interest::READABLE, || {
                Err::<(), _>(io::ErrorKind::WouldBlock.into())
            });
        }
        Ok(n)
    }
}

impl Write for Sock<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TlsStream {
    fn new(tcp: TcpStream, session: Connection, sni: Option<Box<str>>, names: Arc<[String]>) -> Self {
        let version = match session.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "TLSv1.3",
        };
        let h2 = session.alpn_protocol() == Some(b"h2");
        Self {
            tcp,
            session: RefCell::new(session),
            version,
            sni,
            h2,
            names,
        }
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Whether a request for `host` (a `Host` value, port allowed) belongs on
    /// this connection: it names the server the client asked for in its
    /// hello, or one the served certificate covers. A connection without SNI
    /// (a client that dialled an address) takes any host.
    pub fn serves(&self, host: &[u8]) -> bool {
        let Some(sni) = self.sni.as_deref() else {
            return true;
        };
        let Ok(name) = std::str::from_utf8(plan::host_without_port_bytes(host)) else {
            return false;
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        name.eq_ignore_ascii_case(sni) || compiler::tls::covers(&self.names, name)
    }

    /// Decrypted bytes available now, without waiting: what the session
    /// holds, else what one read of the socket brings. `Ok(0)` is the end of
    /// the stream (a `close_notify`, or the peer closing without one).
    pub fn try_read_buf<B: ReadInto>(&self, buf: &mut B) -> io::Result<usize> {
        buf.make_room();
        if buf.room() == 0 {
            return Ok(0);
        }
        let mut session = self.session.borrow_mut();
        loop {
            match plaintext(&mut session, buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            match session.read_tls(&mut Sock(&self.tcp)) {
                Ok(0) => {
                    // The peer closed: whatever was buffered is already out.
                    let _ = session.process_new_packets();
                    return match plaintext(&mut session, buf) {
                        Ok(n) => Ok(n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                        Err(e) => Err(e),
                    };
                }
                Ok(_) => {
                    if let Err(e) = session.process_new_packets() {
                        let _ = session.write_tls(&mut Sock(&self.tcp));
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                    // Records the session answers on its own (a key update,
                    // session tickets): sent if the socket has room now, else
                    // with the next response.
                    while session.wants_write() {
                        if session.write_tls(&mut Sock(&self.tcp)).is_err() {
                            break;
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tcp.poll_read_ready(cx)
    }

    /// Encrypts and writes every byte of `bufs`: all the pieces go into one
    /// record where the session's buffer allows, and out in one write.
    pub async fn write_all(&self, bufs: &mut [IoSlice<'_>]) -> Result<(), WriteError> {
        let mut bufs = &mut bufs[..];
        let mut written = 0;
        loop {
            while bufs.first().is_some_and(|b| b.is_empty()) {
                bufs = &mut bufs[1..];
            }
            if bufs.is_empty() {
                break;
            }
            let n = {
                let mut session = self.session.borrow_mut();
                match session.writer().write_vectored(bufs) {
                    // Nothing taken and nothing to send: the session is closed.
                    Ok(0) if !session.wants_write() => return Err(WriteError { written }),
                    Ok(n) => n,
                    Err(_) => return Err(WriteError { written }),
                }
            };
            written += n;
            IoSlice::advance_slices(&mut bufs, n);
            if !bufs.is_empty() {
                // The session's buffer is full: make room.
                self.flush().await.map_err(|_| WriteError { written })?;
            }
        }
        self.flush().await.map_err(|_| WriteError { written })
    }

    /// Writes what the session holds for the peer.
    async fn flush(&self) -> io::Result<()> {
        loop {
            let wrote = {
                let mut session = self.session.borrow_mut();
                if !session.wants_write() {
                    return Ok(());
                }
                session.write_tls(&mut Sock(&self.tcp))
            };
            match wrote {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.tcp.writable().await?,
                Err(e) => return Err(e),
            }
        }
    }

    /// Encrypts what the session's buffer takes of `buf`, after sending what
    /// it already held: at most one buffer of records waits at a time.
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_flush(cx))?;
        match self.session.borrow_mut().writer().write(buf) {
            Ok(0) if !buf.is_empty() => Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            other => Poll::Ready(other),
        }
    }

    /// Writes the records the session holds for the peer.
    pub fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let wrote = {
                let mut session = self.session.borrow_mut();
                if !session.wants_write() {
                    return Poll::Ready(Ok(()));
                }
                session.write_tls(&mut Sock(&self.tcp))
            };
            match wrote {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::task::ready!(self.tcp.poll_write_ready(cx))?,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Sends `close_notify` (best effort, without waiting).
    pub fn close_notify(&self) {
        let mut session = self.session.borrow_mut();
        session.send_close_notify();
        let _ = session.write_tls(&mut Sock(&self.tcp));
    }
}

/// Moves the session's decrypted bytes into `buf` (as many as fit): `Ok(0)`
/// after a `close_notify`, `WouldBlock` when there are none yet.
fn plaintext<B: ReadInto>(session: &mut Connection, buf: &mut B) -> io::Result<usize> {
    use std::io::BufRead as _;
    let mut reader = session.reader();
    let mut total = 0;
    loop {
        let room = buf.room();
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if total > 0 && e.kind() != io::ErrorKind::InvalidData => return Ok(total),
            Err(e) => return Err(e),
        };
        let n = chunk.len().min(room);
        if n == 0 {
            return Ok(total);
        }
        buf.put_slice(&chunk[..n]);
        reader.consume(n);
        total += n;
    }
}

/// TLS to one `https://` upstream: its cluster's client configuration and
/// the name sent as SNI and verified (the URL's host).
#[derive(Debug)]
pub struct ClientTls {
    pub config: Arc<rustls::ClientConfig>,
    pub name: rustls::pki_types::ServerName<'static>,
}

/// The client configuration of a cluster's `https://` upstreams: the
/// system's roots, or the cluster's `tls.ca` (relative to `base_dir`), or no
/// verification when `insecureSkipVerify` says so. ALPN offers `http/1.1`.
/// `protocol` is the cluster's: the one protocol offered in ALPN.
pub fn client_config(
    tls: Option<&plan::UpstreamTls>,
    protocol: plan::UpstreamProtocol,
    base_dir: &Path,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("upstream TLS: {e}"))?;
    let mut config = match tls {
        Some(t) if t.insecure_skip_verify => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth(),
        Some(plan::UpstreamTls { ca: Some(ca), .. }) => {
            let certs = compiler::tls::load_ca(&base_dir.join(ca)).map_err(|e| format!("tls.ca: {e}"))?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs {
                roots.add(cert).map_err(|e| format!("tls.ca {ca:?}: {e}"))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        _ => builder.with_root_certificates(system_roots()).with_no_client_auth(),
    };
    config.alpn_protocols = vec![match protocol {
        plan::UpstreamProtocol::Http1 => b"http/1.1".to_vec(),
        plan::UpstreamProtocol::H2 => b"h2".to_vec(),
    }];
    Ok(Arc::new(config))
}

/// The system's trusted roots, read once per process.
fn system_roots() -> Arc<rustls::RootCertStore> {
    static ROOTS: std::sync::OnceLock<Arc<rustls::RootCertStore>> = std::sync::OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                tracing::warn!("no system root certificates found: https:// upstreams without tls.ca will not verify");
            }
            Arc::new(roots)
        })
        .clone()
}

/// `insecureSkipVerify: true`: any certificate is accepted; the handshake's
/// signatures are still checked, so the session is encrypted, not
/// authenticated.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
