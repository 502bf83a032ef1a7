//! What one request/response exchange did: filled in phase by phase, read by the
//! counters and the access log when the exchange ends.

use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::Method;
use http1::{Known, Partial, RequestHead, RequestTarget};
use plan::LogField;

use crate::error::kind::{ErrorKind, Failure};

#[derive(Debug)]
pub struct Exchange {
    /// When the first byte of the request head arrived.
    pub started: Instant,
    pub started_wall: SystemTime,
    pub method: Option<Method>,
    /// The request-target as parsed once for routing, forwarding and the log.
    pub target: Option<RequestTarget>,
    /// The raw target of a refused head whose target did not parse.
    pub raw_target: Option<Bytes>,
    /// The host the request was for (absolute-form authority, else `Host`).
    pub host: Option<Bytes>,
    pub user_agent: Option<Bytes>,
    pub request_id: Option<Bytes>,
    /// Status sent to the client (0 until a head is written).
    pub status: u16,
    pub route: Option<u32>,
    pub cluster: Option<u32>,
    /// Flat target index (see `Targets::id`).
    pub upstream: Option<usize>,
    pub upstream_status: Option<u16>,
    pub error: Option<ErrorKind>,
    /// What exactly was wrong, for a `400`.
    pub error_detail: Option<&'static str>,
    /// Bytes written to the client, head included.
    pub bytes_sent: u64,
    /// Request sent upstream → response head received.
    pub upstream_duration: Option<std::time::Duration>,
    /// Upstream tries, the first included (0: never forwarded).
    pub attempts: u32,
    /// The request's HTTP version, once its head was read.
    pub version: Option<http::Version>,
}

impl Exchange {
    /// An exchange whose head began at `started` (monotonic) and `wall`.
    pub fn new(started: Instant, started_wall: SystemTime) -> Self {
        Self {
            started,
            started_wall,
            method: None,
            target: None,
            raw_target: None,
            host: None,
            user_agent: None,
            request_id: None,
            status: 0,
            route: None,
            cluster: None,
            upstream: None,
            upstream_status: None,
            error: None,
            error_detail: None,
            bytes_sent: 0,
            upstream_duration: None,
            attempts: 0,
            version: None,
        }
    }

    /// Records of a head that was read what the access log will write
    /// (`keep`, worked out from its fields once per plan). With the log off
    /// that is nothing; the target and host alone would cost two
    /// reference-count updates (and their drops) per request.
    pub fn record_head(&mut self, head: &RequestHead, keep: HeadFields) {
        if keep.method {
            self.method = Some(head.method.clone());
        }
        if keep.protocol {
            self.version = Some(head.version);
        }
        if keep.target {
            self.target = Some(head.target.clone());
        }
        if keep.host {
            self.host = Some(head.host.clone());
        }
        if keep.user_agent {
            self.user_agent = head.headers.shared_value(Known::UserAgent);
        }
        if keep.request_id {
            self.request_id = head.headers.shared_value(Known::XRequestId);
        }
    }

    /// Records what is known of a refused head.
    pub fn record_partial(&mut self, partial: Partial) {
        self.method = partial.method;
        if let Some(raw) = partial.target {
            match RequestTarget::parse(raw.clone()) {
                Ok(t) => self.target = Some(t),
                Err(_) => self.raw_target = Some(raw),
            }
        }
    }

    pub fn record_failure(&mut self, failure: Failure) {
        self.error = Some(failure.kind);
        self.error_detail = failure.detail;
    }

    /// The path as received, without query, for the log.
    pub fn path(&self) -> Option<&str> {
        match (&self.target, &self.raw_target) {
            (Some(t), _) => Some(t.path()),
            (None, Some(raw)) => {
                let raw = std::str::from_utf8(raw).ok()?;
                Some(raw.split_once('?').map_or(raw, |(p, _)| p))
            }
            (None, None) => None,
        }
    }

    pub fn query(&self) -> Option<&str> {
        self.target.as_ref().and_then(RequestTarget::query)
    }
}

/// What [`Exchange::record_head`] keeps of a head: the parts the access log
/// writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeadFields {
    method: bool,
    protocol: bool,
    /// Path or query.
    target: bool,
    host: bool,
    user_agent: bool,
    request_id: bool,
}

impl HeadFields {
    pub fn of(fields: &[LogField]) -> Self {
        let has = |f| fields.contains(&f);
        Self {
            method: has(LogField::Method),
            protocol: has(LogField::Protocol),
            target: has(LogField::Path) || has(LogField::Query),
            host: has(LogField::Host),
            user_agent: has(LogField::UserAgent),
            request_id: has(LogField::RequestId),
        }
    }
}
