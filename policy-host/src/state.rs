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
    /// Its log lines' allowance, shared by its instances on every worker.
    pub log_limit: crate::stats::LineLimit,
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
            log_limit: crate::stats::LineLimit::default(),
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
    /// Headers the current call set or added (`set_header`,
    /// `respond_header`), and their bytes: bounded by [`MAX_EDITS`] and
    /// [`MAX_EDIT_BYTES`].
    pub edits: usize,
    pub edit_bytes: usize,
}

/// Headers one call may set on the request and add to a prepared response,
/// and their name and value bytes in all: a policy that loops over
/// `set_header` would otherwise copy its memory into the request over and
/// over, and hand the upstream a head no server takes.
pub const MAX_EDITS: usize = 128;
pub const MAX_EDIT_BYTES: usize = 64 * 1024;

impl HostState {
    pub fn new(def: Arc<PolicyDef>) -> Self {
        Self {
            def,
            memory: None,
            request: RequestView::default(),
            response: None,
            failure: None,
            cpu_start: None,
            edits: 0,
            edit_bytes: 0,
        }
    }

    /// Takes one header edit of `name_len + value_len` bytes from the call's
    /// allowance; `false` (and nothing taken) past it.
    pub fn take_edit(&mut self, name_len: i32, value_len: i32) -> bool {
        let bytes = name_len.max(0) as usize + value_len.max(0) as usize;
        if self.edits >= MAX_EDITS || self.edit_bytes + bytes > MAX_EDIT_BYTES {
            return false;
        }
        self.edits += 1;
        self.edit_bytes += bytes;
        true
    }
}
