//! What a policy call sees and produces: the request view lent to it, the
//! response it may prepare, its decision, and the store data of an instance.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http1::Fields;
use plan::OnError;
use wasmtime::Memory;

use crate::stats::Failure;

/// A response a policy prepared with `respond`.
#[derive(Debug, Default)]
pub struct Prepared {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

/// What a policy call decided.
#[derive(Debug)]
pub enum Decision {
    Continue,
    /// Route to this plan cluster.
    Route(u32),
    Respond(Prepared),
}

/// The request as a policy sees it, refilled for each call.
#[derive(Debug, Default)]
pub struct RequestView {
    pub method: Vec<u8>,
    /// `http` or `https`, as the client connected (empty reads as `http`).
    pub scheme: &'static str,
    pub authority: Vec<u8>,
    pub path: Vec<u8>,
    pub query: Option<Vec<u8>>,
    pub client_ip: Vec<u8>,
    /// Moved in for the call and back out after it (no copy).
    pub headers: Fields,
}

/// What one policy is, once loaded.
#[derive(Debug)]
pub(crate) struct PolicyDef {
    pub name: String,
    pub config: Vec<u8>,
    /// Top-level config keys: strings unquoted, other values as JSON.
    pub config_keys: HashMap<String, Vec<u8>>,
    /// Plan cluster indices this policy may route to.
    pub clusters: Vec<u32>,
    pub cluster_names: Vec<String>,
    pub memory_bytes: usize,
    /// CPU time one call may use.
    pub timeout: Duration,
    pub fuel: Option<u64>,
    pub on_error: OnError,
}

impl PolicyDef {
    /// A definition with no config and no limits worth the name (for
    /// inspecting the linker).
    pub(crate) fn empty() -> Self {
        Self {
            name: String::new(),
            config: Vec::new(),
            config_keys: HashMap::new(),
            clusters: Vec::new(),
            cluster_names: Vec::new(),
            memory_bytes: 0,
            timeout: Duration::from_millis(1),
            fuel: None,
            on_error: OnError::Deny,
        }
    }
}

/// The store data of one instance.
pub(crate) struct HostState {
    pub def: Arc<PolicyDef>,
    pub memory: Option<Memory>,
    pub request: RequestView,
    pub response: Option<Prepared>,
    pub failure: Option<Failure>,
    /// This thread's CPU time when the current call first saw an epoch tick.
    pub cpu_start: Option<Duration>,
}

impl HostState {
    pub fn new(def: Arc<PolicyDef>) -> Self {
        Self {
            def,
            memory: None,
            request: RequestView::default(),
            response: None,
            failure: None,
            cpu_start: None,
        }
    }
}
