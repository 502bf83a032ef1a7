//! What can go wrong with an exchange, as data: the kinds of SPEC §7 and a
//! failure (a kind, and for a `400` its cause). What each means to the client
//! (status, `x-gateway-error`, body) is decided in `error/mod.rs` only.

/// Why the gateway answered a request itself (or why an exchange ended badly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    NoRoute,
    BadRequest,
    BadPath,
    BadHost,
    /// On a TLS connection, a `Host` its SNI and certificate do not cover (421).
    MisdirectedRequest,
    HeadersTooLarge,
    RequestTimeout,
    BodyTooLarge,
    MethodNotAllowed,
    ExpectationFailed,
    ConnectTimeout,
    UpstreamTimeout,
    ConnectFailed,
    UpstreamReset,
    BadResponse,
    /// Every upstream of the cluster is unhealthy or ejected (503).
    NoHealthyUpstream,
    /// `pool.maxConnections` reached and none freed within `connectMs` (503).
    UpstreamOverloaded,
    PolicyError,
    /// The drain deadline cut the exchange.
    Shutdown,
    /// The client went away before the response was complete (log only).
    ClientClosed,
    /// Writing the response to the client timed out (log only).
    WriteTimeout,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 21] = [
        ErrorKind::NoRoute,
        ErrorKind::BadRequest,
        ErrorKind::BadPath,
        ErrorKind::BadHost,
        ErrorKind::MisdirectedRequest,
        ErrorKind::HeadersTooLarge,
        ErrorKind::RequestTimeout,
        ErrorKind::BodyTooLarge,
        ErrorKind::MethodNotAllowed,
        ErrorKind::ExpectationFailed,
        ErrorKind::ConnectTimeout,
        ErrorKind::UpstreamTimeout,
        ErrorKind::ConnectFailed,
        ErrorKind::UpstreamReset,
        ErrorKind::BadResponse,
        ErrorKind::NoHealthyUpstream,
        ErrorKind::UpstreamOverloaded,
        ErrorKind::PolicyError,
        ErrorKind::Shutdown,
        ErrorKind::ClientClosed,
        ErrorKind::WriteTimeout,
    ];

    /// Index into per-kind counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A failed exchange: the kind and, for a `400`, what exactly was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub kind: ErrorKind,
    pub detail: Option<&'static str>,
}

impl From<ErrorKind> for Failure {
    fn from(kind: ErrorKind) -> Self {
        Failure { kind, detail: None }
    }
}

impl Failure {
    pub fn with(kind: ErrorKind, detail: &'static str) -> Self {
        Failure {
            kind,
            detail: Some(detail),
        }
    }
}
