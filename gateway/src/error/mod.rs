//! The one place where failures become HTTP statuses and `x-gateway-error`
//! kinds (SPEC §7), and where a failed exchange is answered ([`fail`]).

pub mod kind;

pub use kind::{ErrorKind, Failure};

use std::time::Duration;

use http::StatusCode;
use http1::{Framing, HeadError};
use plan::PathError;

use crate::body::BodyError;
use crate::client::side::Client;
use crate::observe::exchange::Exchange;
use crate::session::{Conn, Session};

impl ErrorKind {
    /// The `x-gateway-error` value and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NoRoute => "no_route",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::BadPath => "bad_path",
            ErrorKind::BadHost => "bad_host",
            ErrorKind::MisdirectedRequest => "misdirected_request",
            ErrorKind::HeadersTooLarge => "headers_too_large",
            ErrorKind::RequestTimeout => "request_timeout",
            ErrorKind::BodyTooLarge => "body_too_large",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::ExpectationFailed => "expectation_failed",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
            ErrorKind::ConnectFailed => "connect_failed",
            ErrorKind::UpstreamReset => "upstream_reset",
            ErrorKind::BadResponse => "bad_response",
            ErrorKind::NoHealthyUpstream => "no_healthy_upstream",
            ErrorKind::UpstreamOverloaded => "upstream_overloaded",
            ErrorKind::PolicyError => "policy_error",
            ErrorKind::Shutdown => "shutdown",
            ErrorKind::ClientClosed => "client_closed",
            ErrorKind::WriteTimeout => "write_timeout",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::NoRoute => StatusCode::NOT_FOUND,
            ErrorKind::BadRequest | ErrorKind::BadPath | ErrorKind::BadHost => StatusCode::BAD_REQUEST,
            ErrorKind::MisdirectedRequest => StatusCode::MISDIRECTED_REQUEST,
            ErrorKind::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorKind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::ExpectationFailed => StatusCode::EXPECTATION_FAILED,
            ErrorKind::ConnectTimeout | ErrorKind::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::ConnectFailed | ErrorKind::UpstreamReset | ErrorKind::BadResponse => StatusCode::BAD_GATEWAY,
            ErrorKind::PolicyError
            | ErrorKind::Shutdown
            | ErrorKind::NoHealthyUpstream
            | ErrorKind::UpstreamOverloaded => StatusCode::SERVICE_UNAVAILABLE,
            // Never sent: the client is gone or not reading. 499 is what NGINX logs.
            ErrorKind::ClientClosed | ErrorKind::WriteTimeout => {
                StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST)
            }
        }
    }

    /// The short plain-text body of the error response (a cause follows for 400s).
    pub fn message(self) -> &'static str {
        match self {
            ErrorKind::NoRoute => "no route for this host and path",
            ErrorKind::BadRequest => "bad request",
            ErrorKind::BadPath => "bad path",
            ErrorKind::BadHost => "bad host",
            ErrorKind::MisdirectedRequest => {
                "misdirected request: this connection's TLS server name does not cover the host"
            }
            ErrorKind::HeadersTooLarge => "request header section too large",
            ErrorKind::RequestTimeout => "request timeout",
            ErrorKind::BodyTooLarge => "request body too large",
            ErrorKind::MethodNotAllowed => "method not allowed",
            ErrorKind::ExpectationFailed => "expectation failed: only 100-continue is supported",
            ErrorKind::ConnectTimeout => "upstream connect timeout",
            ErrorKind::UpstreamTimeout => "upstream response timeout",
            ErrorKind::ConnectFailed => "upstream connection failed",
            ErrorKind::UpstreamReset => "upstream connection reset",
            ErrorKind::BadResponse => "bad upstream response",
            ErrorKind::NoHealthyUpstream => "no healthy upstream",
            ErrorKind::UpstreamOverloaded => "upstream connection limit reached",
            ErrorKind::PolicyError => "policy error",
            ErrorKind::Shutdown => "shutting down",
            ErrorKind::ClientClosed | ErrorKind::WriteTimeout => "",
        }
    }

    /// Whether the client connection must close after this error response:
    /// after a framing or timeout error the byte stream can no longer be trusted.
    pub fn closes_connection(self) -> bool {
        matches!(
            self,
            ErrorKind::BadRequest
                | ErrorKind::BadPath
                | ErrorKind::BadHost
                | ErrorKind::MisdirectedRequest
                | ErrorKind::HeadersTooLarge
                | ErrorKind::RequestTimeout
                | ErrorKind::BodyTooLarge
                | ErrorKind::MethodNotAllowed
                | ErrorKind::ExpectationFailed
                | ErrorKind::Shutdown
                | ErrorKind::ClientClosed
                | ErrorKind::WriteTimeout
        )
    }

    /// Whether a response is written for this failure (the client is there).
    pub fn answers(self) -> bool {
        !matches!(self, ErrorKind::ClientClosed | ErrorKind::WriteTimeout)
    }

    /// Failures on the upstream side (counted per cluster).
    pub fn is_upstream(self) -> bool {
        matches!(
            self,
            ErrorKind::ConnectTimeout
                | ErrorKind::UpstreamTimeout
                | ErrorKind::ConnectFailed
                | ErrorKind::UpstreamReset
                | ErrorKind::BadResponse
                | ErrorKind::NoHealthyUpstream
                | ErrorKind::UpstreamOverloaded
        )
    }

    /// Failures that count against an upstream's health (passive ejection).
    pub fn is_upstream_fault(self) -> bool {
        matches!(
            self,
            ErrorKind::ConnectTimeout
                | ErrorKind::UpstreamTimeout
                | ErrorKind::ConnectFailed
                | ErrorKind::UpstreamReset
                | ErrorKind::BadResponse
        )
    }

    /// Timeouts, counted in `gateway_upstream_timeouts_total` (and only there).
    pub fn is_timeout(self) -> bool {
        matches!(self, ErrorKind::ConnectTimeout | ErrorKind::UpstreamTimeout)
    }
}

impl Failure {
    /// The response body, in pieces: `bad request: <cause>\n`.
    pub fn body(&self) -> [&'static str; 3] {
        match self.detail {
            Some(d) => [self.kind.message(), ": ", d],
            None => [self.kind.message(), "", ""],
        }
    }
}

impl From<HeadError> for Failure {
    fn from(e: HeadError) -> Self {
        match e {
            HeadError::Malformed(why) => Failure::with(ErrorKind::BadRequest, why),
            HeadError::BadHost(why) => Failure::with(ErrorKind::BadHost, why),
            HeadError::TooLarge => ErrorKind::HeadersTooLarge.into(),
            HeadError::MethodNotAllowed => ErrorKind::MethodNotAllowed.into(),
            HeadError::ExpectationFailed => ErrorKind::ExpectationFailed.into(),
        }
    }
}

impl From<PathError> for Failure {
    fn from(e: PathError) -> Self {
        match e {
            PathError::NotAbsolute => Failure::with(ErrorKind::BadRequest, e.reason()),
            _ => Failure::with(ErrorKind::BadPath, e.reason()),
        }
    }
}

impl From<BodyError> for Failure {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::Malformed(why) => Failure::with(ErrorKind::BadRequest, why),
            BodyError::Timeout => ErrorKind::RequestTimeout.into(),
            BodyError::TooLarge => ErrorKind::BodyTooLarge.into(),
            BodyError::Closed => ErrorKind::ClientClosed.into(),
        }
    }
}

/// The status of a response a policy prepared (the host function accepts
/// 200–599 only; anything else would be a bug, answered as a 500).
pub fn prepared_status(status: u16) -> StatusCode {
    StatusCode::from_u16(status)
        .ok()
        .filter(|s| (200..=599).contains(&s.as_u16()))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The status of a redirect route (the compiler allows 301, 302, 303, 307
/// and 308; anything else would be a damaged plan, answered as a 302).
pub fn redirect_status(status: u16) -> StatusCode {
    StatusCode::from_u16(status)
        .ok()
        .filter(|s| s.is_redirection())
        .unwrap_or(StatusCode::FOUND)
}

/// The interim answer to `Expect: 100-continue` on HTTP/2 (HTTP/1.1 writes
/// its fixed line).
pub const CONTINUE: StatusCode = StatusCode::CONTINUE;

/// Methods the gateway forwards, for the `Allow` of a 405.
pub const ALLOW: &[u8] = b"GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH";

/// Extra headers of an error response.
pub fn extra_headers(kind: ErrorKind) -> &'static [(&'static str, &'static [u8])] {
    match kind {
        ErrorKind::MethodNotAllowed => &[("allow", ALLOW)],
        _ => &[],
    }
}

/// The one failure path of an exchange: records the failure, counts it,
/// answers the client if nothing was sent yet, and decides whether the
/// connection survives (it does not after a framing error, a timeout, or a
/// response that was cut).
pub async fn fail<C: Client>(s: &mut Session<'_, C>, ex: &mut Exchange, failure: Failure) {
    ex.record_failure(failure);
    let kind = failure.kind;
    if kind.is_upstream()
        && let Some(cluster) = ex.cluster
    {
        s.generation.stats.upstream_failure(cluster, kind);
        if let Some(target) = ex.upstream.map(|id| s.generation.targets.get(id)) {
            target.failures.failure(&target.stats.name, &target.url, kind);
        }
    }
    if kind.closes_connection() || ex.status != 0 || !kind.answers() {
        // A response already under way cannot be replaced: the client sees
        // the connection close instead of the rest.
        s.ka.disable();
    }
    if ex.status != 0 || !kind.answers() {
        return;
    }
    let close = !s.may_keep_alive();
    if close {
        s.ka.disable();
    }
    let write_timeout = s.write_timeout();
    let reply = Reply {
        head_only: s.head_only,
        close,
        write_timeout,
        filter: s.response_filter,
    };
    write_error(s.conn, ex, failure, &reply).await;
}

/// How a gateway-written response goes out.
#[derive(Debug, Clone, Copy)]
pub struct Reply<'a> {
    pub head_only: bool,
    pub close: bool,
    pub write_timeout: Duration,
    pub filter: &'a http1::Filter,
}

impl Reply<'_> {
    /// A response before any route is known: closes the connection.
    pub fn closing(write_timeout: Duration) -> Reply<'static> {
        Reply {
            head_only: false,
            close: true,
            write_timeout,
            filter: http1::Filter::none(),
        }
    }
}

/// Writes the error response for `failure` and records its status. A client
/// that is gone or not reading leaves the exchange with its original kind.
pub async fn write_error<C: Client>(conn: &mut Conn<C>, ex: &mut Exchange, failure: Failure, reply: &Reply<'_>) {
    let kind = failure.kind;
    let body = failure.body();
    let date = conn.worker.date();
    conn.wbuf.clear();
    http1::encode_synthesized(
        &mut conn.wbuf,
        &http1::Synthesized {
            status: kind.status(),
            kind: Some(kind.as_str()),
            body: &[body[0], body[1], body[2], "\n"],
            extra: extra_headers(kind),
            head_only: reply.head_only,
            close: reply.close,
            filter: reply.filter,
            date: &date,
        },
    );
    ex.status = kind.status().as_u16();
    let written = conn
        .client
        .write(&conn.wbuf, Framing::Length, &[], true, reply.write_timeout)
        .await;
    if let Ok(n) = written {
        ex.bytes_sent += n;
    }
    conn.wbuf.clear();
}
