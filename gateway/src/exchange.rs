//! What one request/response exchange did: filled in phase by phase, read by the
//! counters and the access log when the exchange ends.

use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderValue, Method};

use crate::error::ErrorKind;

#[derive(Debug)]
pub struct Exchange {
    /// When the first byte of the request head arrived.
    pub started: Instant,
    pub started_wall: SystemTime,
    pub method: Option<Method>,
    /// The request-target as received (path and query are cut from it).
    pub target: Option<Bytes>,
    pub host: Option<HeaderValue>,
    pub user_agent: Option<HeaderValue>,
    pub request_id: Option<HeaderValue>,
    /// Status sent to the client (0 until a head is written).
    pub status: u16,
    pub route: Option<u32>,
    pub cluster: Option<u32>,
    /// Flat target index (see `Targets::id`).
    pub upstream: Option<usize>,
    pub upstream_status: Option<u16>,
    pub error: Option<ErrorKind>,
    /// Bytes written to the client, head included.
    pub bytes_sent: u64,
}

impl Exchange {
    pub fn new(started: Instant) -> Self {
        Self {
            started,
            started_wall: SystemTime::now(),
            method: None,
            target: None,
            host: None,
            user_agent: None,
            request_id: None,
            status: 0,
            route: None,
            cluster: None,
            upstream: None,
            upstream_status: None,
            error: None,
            bytes_sent: 0,
        }
    }
}
