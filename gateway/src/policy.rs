//! Wasm policies (SPEC §11, `policies/ABI.md`): one wasmtime `Engine` per plan
//! generation, modules compiled and linked (`InstancePre`) when the plan is
//! loaded, a pooling allocator for cheap instantiation, epoch interruption for
//! the per-call time limit, and per-worker warm instances that are recycled
//! after any failure or every [`CALLS_PER_INSTANCE`] calls.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use plan::{OnError, Plan, abi};
use wasmtime::{
    Caller, Config, Enabled, Engine, InstanceAllocationStrategy, InstancePre, Linker, Memory, Module,
    PoolingAllocationConfig, ResourceLimiter, Store, StoreContextMut, Trap, TypedFunc, UpdateDeadline,
};

use crate::stats::PolicyStats;

/// A warm instance serves at most this many calls before it is replaced.
pub const CALLS_PER_INSTANCE: u32 = 10_000;
/// Epoch tick: the granularity of `limits.timeoutMs`.
const TICK: Duration = Duration::from_millis(1);
const PAGE: usize = 64 * 1024;

/// Why a policy call failed (the `kind` label of `gateway_policy_errors_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Trap,
    Timeout,
    Fuel,
    Memory,
    BadPointer,
    BadDecision,
    InitFailed,
}

impl Failure {
    pub const ALL: [Failure; 7] = [
        Failure::Trap,
        Failure::Timeout,
        Failure::Fuel,
        Failure::Memory,
        Failure::BadPointer,
        Failure::BadDecision,
        Failure::InitFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Trap => "trap",
            Failure::Timeout => "timeout",
            Failure::Fuel => "fuel",
            Failure::Memory => "memory",
            Failure::BadPointer => "bad_pointer",
            Failure::BadDecision => "bad_decision",
            Failure::InitFailed => "init_failed",
        }
    }
}

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

/// What one policy is, once loaded.
#[derive(Debug)]
struct PolicyDef {
    name: String,
    config: Vec<u8>,
    /// Top-level config keys: strings unquoted, other values as JSON.
    config_keys: HashMap<String, Vec<u8>>,
    /// Plan cluster indices this policy may route to.
    clusters: Vec<u32>,
    cluster_names: Vec<String>,
    memory_bytes: usize,
    /// CPU time one call may use.
    timeout: Duration,
    fuel: Option<u64>,
    on_error: OnError,
}

/// The request as a policy sees it, refilled for each call.
#[derive(Debug, Default)]
pub struct RequestView {
    pub method: Vec<u8>,
    pub authority: Vec<u8>,
    pub path: Vec<u8>,
    pub query: Option<Vec<u8>>,
    pub client_ip: Vec<u8>,
    /// Moved in for the call and back out after it (no copy).
    pub headers: HeaderMap,
}

/// The store data of one instance.
struct HostState {
    def: Arc<PolicyDef>,
    memory: Option<Memory>,
    request: RequestView,
    response: Option<Prepared>,
    failure: Option<Failure>,
    /// This thread's CPU time when the current call first saw an epoch tick.
    cpu_start: Option<Duration>,
}

/// CPU time consumed by the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is
    // supported on every Linux the gateway runs on. On failure `ts` stays zero.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec.max(0) as u64, ts.tv_nsec.clamp(0, 999_999_999) as u32)
}

/// Called on every epoch tick while a call runs past one: the limit is this
/// thread's CPU time, not wall time, so a worker preempted under load does not
/// fail policies that are within budget. Calls shorter than a tick never get
/// here and cost nothing.
fn on_tick(mut ctx: StoreContextMut<'_, HostState>) -> wasmtime::Result<UpdateDeadline> {
    let state = ctx.data_mut();
    let now = thread_cpu_time();
    let start = *state.cpu_start.get_or_insert(now);
    if now.saturating_sub(start) >= state.def.timeout {
        state.failure = Some(Failure::Timeout);
        return Ok(UpdateDeadline::Interrupt);
    }
    Ok(UpdateDeadline::Continue(1))
}

impl ResourceLimiter for HostState {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.def.memory_bytes {
            self.failure = Some(Failure::Memory);
            return Err(wasmtime::Error::msg("policy memory limit reached"));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 10_000)
    }
}

/// A loaded policy: its definition and its pre-linked module.
struct Loaded {
    def: Arc<PolicyDef>,
    pre: InstancePre<HostState>,
    has_init: bool,
    pub stats: Arc<PolicyStats>,
}

/// All policies of one plan generation.
pub struct Policies {
    /// The plan generation these belong to (warm instances are keyed by it).
    generation: u64,
    engine: Engine,
    loaded: Vec<Loaded>,
    ticker_stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies").field("count", &self.loaded.len()).finish()
    }
}

impl Drop for Policies {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

fn config_keys(config: &str) -> HashMap<String, Vec<u8>> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(config) else {
        return HashMap::new();
    };
    map.into_iter()
        .map(|(k, v)| {
            let bytes = match v {
                serde_json::Value::String(s) => s.into_bytes(),
                other => other.to_string().into_bytes(),
            };
            (k, bytes)
        })
        .collect()
}

impl Policies {
    /// Compiles and links every policy of `plan`; `Err` names the policy.
    /// `instances` bounds the pooling allocator (workers × policies, with room
    /// for replacements).
    pub fn new(
        plan: &Plan,
        generation: u64,
        instances: u32,
        stats: impl Fn(&str) -> Arc<PolicyStats>,
    ) -> Result<Option<Policies>, String> {
        if plan.policies.is_empty() {
            return Ok(None);
        }
        let max_pages = plan.policies.iter().map(|p| p.limits.memory_pages).max().unwrap_or(16) as usize;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(instances)
            .total_memories(instances)
            .total_tables(instances)
            .max_memory_size(max_pages * PAGE)
            .linear_memory_keep_resident(64 * 1024)
            .table_keep_resident(4096)
            .pagemap_scan(Enabled::Auto);
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .consume_fuel(plan.policies.iter().any(|p| p.limits.fuel.is_some()))
            .max_wasm_stack(512 * 1024)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| format!("cannot start the wasm engine: {e}"))?;
        let mut linker: Linker<HostState> = Linker::new(&engine);
        link(&mut linker).map_err(|e| format!("cannot link the hook ABI: {e}"))?;
        let mut loaded = Vec::with_capacity(plan.policies.len());
        for p in &plan.policies {
            let bytes = p.module_bytes().map_err(|e| format!("policy {:?}: {e}", p.name))?;
            let digest = plan::sha256_hex(&bytes);
            if digest != p.sha256 {
                return Err(format!(
                    "policy {:?}: module digest {digest} differs from the plan's {}; refusing to run it",
                    p.name, p.sha256
                ));
            }
            let module = Module::new(&engine, &bytes).map_err(|e| format!("policy {:?}: {e}", p.name))?;
            let has_init = module.get_export(abi::INIT).is_some();
            let pre = linker
                .instantiate_pre(&module)
                .map_err(|e| format!("policy {:?}: cannot link: {e}", p.name))?;
            let def = PolicyDef {
                name: p.name.clone(),
                config: p.config.clone().into_bytes(),
                config_keys: config_keys(&p.config),
                clusters: p.clusters.clone(),
                cluster_names: p
                    .clusters
                    .iter()
                    .map(|&c| {
                        plan.clusters
                            .get(c as usize)
                            .map(|c| c.name.clone())
                            .unwrap_or_default()
                    })
                    .collect(),
                memory_bytes: p.limits.memory_pages as usize * PAGE,
                timeout: Duration::from_millis(p.limits.timeout_ms.max(1)),
                fuel: p.limits.fuel,
                on_error: p.on_error,
            };
            loaded.push(Loaded {
                stats: stats(&p.name),
                def: Arc::new(def),
                pre,
                has_init,
            });
        }
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let (stop, ticking) = (ticker_stop.clone(), engine.clone());
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    ticking.increment_epoch();
                }
            })
            .map_err(|e| format!("cannot start the epoch ticker: {e}"))?;
        Ok(Some(Policies {
            generation,
            engine,
            loaded,
            ticker_stop,
        }))
    }

    pub fn on_error(&self, policy: usize) -> OnError {
        self.loaded.get(policy).map_or(OnError::Deny, |l| l.def.on_error)
    }

    pub fn name(&self, policy: usize) -> &str {
        self.loaded.get(policy).map_or("", |l| l.def.name.as_str())
    }
}

/// A warm instance of one policy on one worker.
struct Warm {
    store: Store<HostState>,
    on_request: TypedFunc<(), i32>,
    calls: u32,
}

/// One worker's warm instances, for one generation's policies.
#[derive(Default)]
pub struct WarmSet {
    /// The plan generation these instances belong to. A number, never an
    /// address: after reloads a new generation's `Policies` may sit where an
    /// old one did (the regression of issue 11, item 9).
    generation: u64,
    instances: Vec<Option<Warm>>,
}

impl std::fmt::Debug for WarmSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarmSet")
            .field("instances", &self.instances.len())
            .finish()
    }
}

fn classify(err: &wasmtime::Error, state: &HostState) -> Failure {
    if let Some(f) = state.failure {
        return f;
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Failure::Timeout,
        Some(Trap::OutOfFuel) => Failure::Fuel,
        _ => Failure::Trap,
    }
}

fn instantiate(policy: &Loaded, engine: &Engine) -> Result<Warm, Failure> {
    let state = HostState {
        def: policy.def.clone(),
        memory: None,
        request: RequestView::default(),
        response: None,
        failure: None,
        cpu_start: None,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| s as &mut dyn ResourceLimiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(on_tick);
    if let Some(fuel) = policy.def.fuel {
        store.set_fuel(fuel).map_err(|_| Failure::Fuel)?;
    }
    let instance = match policy.pre.instantiate(&mut store) {
        Ok(i) => i,
        Err(e) => return Err(store.data().failure.unwrap_or_else(|| classify(&e, store.data()))),
    };
    let memory = instance
        .get_memory(&mut store, abi::MEMORY)
        .ok_or(Failure::BadPointer)?;
    store.data_mut().memory = Some(memory);
    let on_request = instance
        .get_typed_func::<(), i32>(&mut store, abi::ON_REQUEST)
        .map_err(|_| Failure::BadDecision)?;
    if policy.has_init {
        let init = instance
            .get_typed_func::<(), i32>(&mut store, abi::INIT)
            .map_err(|_| Failure::InitFailed)?;
        match init.call(&mut store, ()) {
            Ok(0) => {}
            Ok(_) => return Err(Failure::InitFailed),
            Err(e) => {
                let f = classify(&e, store.data());
                return Err(if f == Failure::Trap { Failure::InitFailed } else { f });
            }
        }
    }
    Ok(Warm {
        store,
        on_request,
        calls: 0,
    })
}

impl WarmSet {
    /// Runs policy `index` of `policies` on `request` (moved in and handed
    /// back through the same `&mut`).
    pub fn call(&mut self, policies: &Policies, index: usize, request: &mut RequestView) -> Result<Decision, Failure> {
        if self.generation != policies.generation {
            self.instances.clear();
            self.generation = policies.generation;
        }
        if self.instances.len() < policies.loaded.len() {
            self.instances.resize_with(policies.loaded.len(), || None);
        }
        let Some(policy) = policies.loaded.get(index) else {
            return Err(Failure::BadDecision);
        };
        policy.stats.calls.fetch_add(1, Ordering::Relaxed);
        let result = self.call_inner(policies, policy, index, request);
        if let Err(f) = result {
            policy.stats.failed(f);
            // Never reuse an instance that failed.
            self.instances[index] = None;
        }
        result
    }

    fn call_inner(
        &mut self,
        policies: &Policies,
        policy: &Loaded,
        index: usize,
        request: &mut RequestView,
    ) -> Result<Decision, Failure> {
        let slot = &mut self.instances[index];
        if slot.as_ref().is_none_or(|w| w.calls >= CALLS_PER_INSTANCE) {
            *slot = None;
            *slot = Some(instantiate(policy, &policies.engine)?);
        }
        let Some(warm) = slot.as_mut() else {
            return Err(Failure::Trap);
        };
        warm.calls += 1;
        let store = &mut warm.store;
        store.set_epoch_deadline(1);
        if let Some(fuel) = policy.def.fuel {
            store.set_fuel(fuel).map_err(|_| Failure::Fuel)?;
        }
        {
            let state = store.data_mut();
            std::mem::swap(&mut state.request, request);
            state.response = None;
            state.failure = None;
            state.cpu_start = None;
        }
        let outcome = warm.on_request.call(&mut *store, ());
        let state = store.data_mut();
        std::mem::swap(&mut state.request, request);
        let code = match outcome {
            Ok(code) => code,
            Err(e) => return Err(classify(&e, state)),
        };
        match code {
            abi::CONTINUE => Ok(Decision::Continue),
            abi::RESPOND => state.response.take().map(Decision::Respond).ok_or(Failure::BadDecision),
            c if c >= abi::ROUTE_BASE => policy
                .def
                .clusters
                .get((c - abi::ROUTE_BASE) as usize)
                .map(|&cluster| Decision::Route(cluster))
                .ok_or(Failure::BadDecision),
            _ => Err(Failure::BadDecision),
        }
    }
}

// === host functions ===

/// The guest range `(ptr, len)`, or a `bad_pointer` failure.
fn range(state: &mut HostState, mem_len: usize, ptr: i32, len: i32) -> wasmtime::Result<std::ops::Range<usize>> {
    if ptr < 0 || len < 0 || (ptr as usize).saturating_add(len as usize) > mem_len {
        state.failure = Some(Failure::BadPointer);
        return Err(wasmtime::Error::msg("policy passed a pointer outside its memory"));
    }
    Ok(ptr as usize..ptr as usize + len as usize)
}

fn memory(caller: &Caller<'_, HostState>) -> wasmtime::Result<Memory> {
    caller.data().memory.ok_or_else(|| wasmtime::Error::msg("no memory"))
}

/// Copies `pick(state)` to the guest's `(buf, cap)` if it fits; returns its
/// length, or -1 when `pick` finds nothing.
fn copy_out(
    caller: &mut Caller<'_, HostState>,
    buf: i32,
    cap: i32,
    pick: impl FnOnce(&HostState) -> Option<&[u8]>,
) -> wasmtime::Result<i32> {
    let mem = memory(caller)?;
    let (data, state) = mem.data_and_store_mut(&mut *caller);
    let dest = range(state, data.len(), buf, cap)?;
    let Some(src) = pick(state) else { return Ok(-1) };
    if src.len() <= dest.len() {
        data[dest.start..dest.start + src.len()].copy_from_slice(src);
    }
    Ok(src.len() as i32)
}

/// Reads the guest's `(ptr, len)` bytes.
fn read_in<'a>(data: &'a [u8], state: &mut HostState, ptr: i32, len: i32) -> wasmtime::Result<&'a [u8]> {
    let r = range(state, data.len(), ptr, len)?;
    Ok(&data[r])
}

fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let m = abi::HOST_MODULE;
    linker.func_wrap(
        m,
        "request_field",
        |mut c: Caller<'_, HostState>, field: i32, buf: i32, cap: i32| {
            copy_out(&mut c, buf, cap, |s| match field {
                abi::FIELD_METHOD => Some(&s.request.method[..]),
                abi::FIELD_SCHEME => Some(&b"http"[..]),
                abi::FIELD_AUTHORITY => Some(&s.request.authority[..]),
                abi::FIELD_PATH => Some(&s.request.path[..]),
                abi::FIELD_QUERY => s.request.query.as_deref(),
                abi::FIELD_CLIENT_IP => Some(&s.request.client_ip[..]),
                _ => None,
            })
        },
    )?;
    linker.func_wrap(
        m,
        "request_header",
        |mut c: Caller<'_, HostState>, name: i32, name_len: i32, buf: i32, cap: i32| {
            let mem = memory(&c)?;
            let (data, state) = mem.data_and_store_mut(&mut c);
            let name = read_in(data, state, name, name_len)?;
            let Ok(name) = HeaderName::from_bytes(name) else {
                return Ok(-1);
            };
            let dest = range(state, data.len(), buf, cap)?;
            let Some(value) = state.request.headers.get(&name) else {
                return Ok(-1);
            };
            let value = value.as_bytes();
            if value.len() <= dest.len() {
                data[dest.start..dest.start + value.len()].copy_from_slice(value);
            }
            Ok(value.len() as i32)
        },
    )?;
    linker.func_wrap(
        m,
        "request_headers",
        |mut c: Caller<'_, HostState>, buf: i32, cap: i32| {
            let mem = memory(&c)?;
            let (data, state) = mem.data_and_store_mut(&mut c);
            let dest = range(state, data.len(), buf, cap)?;
            let total: usize = state
                .request
                .headers
                .iter()
                .map(|(n, v)| 8 + n.as_str().len() + v.len())
                .sum();
            if total <= dest.len() {
                let mut at = dest.start;
                for (n, v) in &state.request.headers {
                    for part in [n.as_str().as_bytes(), v.as_bytes()] {
                        data[at..at + 4].copy_from_slice(&(part.len() as u32).to_le_bytes());
                        data[at + 4..at + 4 + part.len()].copy_from_slice(part);
                        at += 4 + part.len();
                    }
                }
            }
            Ok(total as i32)
        },
    )?;
    linker.func_wrap(m, "config", |mut c: Caller<'_, HostState>, buf: i32, cap: i32| {
        copy_out(&mut c, buf, cap, |s| Some(&s.def.config[..]))
    })?;
    linker.func_wrap(
        m,
        "config_get",
        |mut c: Caller<'_, HostState>, key: i32, key_len: i32, buf: i32, cap: i32| {
            let mem = memory(&c)?;
            let (data, state) = mem.data_and_store_mut(&mut c);
            let key = read_in(data, state, key, key_len)?;
            let def = state.def.clone();
            let Some(value) = std::str::from_utf8(key).ok().and_then(|k| def.config_keys.get(k)) else {
                return Ok(-1);
            };
            let dest = range(state, data.len(), buf, cap)?;
            if value.len() <= dest.len() {
                data[dest.start..dest.start + value.len()].copy_from_slice(value);
            }
            Ok(value.len() as i32)
        },
    )?;
    linker.func_wrap(
        m,
        "cluster_index",
        |mut c: Caller<'_, HostState>, name: i32, name_len: i32| {
            let mem = memory(&c)?;
            let (data, state) = mem.data_and_store_mut(&mut c);
            let name = read_in(data, state, name, name_len)?;
            Ok(state
                .def
                .cluster_names
                .iter()
                .position(|n| n.as_bytes() == name)
                .map_or(-1, |i| i as i32))
        },
    )?;
    linker.func_wrap(
        m,
        "set_header",
        |mut c: Caller<'_, HostState>, name: i32, name_len: i32, value: i32, value_len: i32| {
            let mem = memory(&c)?;
            let (data, state) = mem.data_and_store_mut(&mut c);
            let name = read_in(data, state, name, name_len)?;
            let value = read_in(data, state, value, value_len)?;
            match (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
                (Ok(n), Ok(v)) => {
                    state.request.headers.insert(n, v);
                    Ok(0)
                }
                _ => Ok(-1),
            }
        },
    )?;
    linker.func_wrap(
        m,
        "remove_header",
        |mut c: Caller<'_, HostState>, name: i32, name_len: i32| {
            let mem = memory(&c)?;
            let (data, state) = mem.data_and_store_mut(&mut c);
            let name = read_in(data, state, name, name_len)?;
            match HeaderName::from_bytes(name) {
                Ok(n) => {
                    state.request.headers.remove(n);
                    Ok(0)
                }
                Err(_) => Ok(-1),
            }
        },
    )?;
    linker.func_wrap(
        m,
        "respond",
        |mut c: Caller<'_, HostState>, status: i32, body: i32, body_len: i32| {
            let mem = memory(&c)?;
            let (data, state) = mem.data_and_store_mut(&mut c);
            let body = read_in(data, state, body, body_len)?;
            if !(200..=599).contains(&status) {
                return Ok(-1);
            }
            let body = Bytes::copy_from_slice(body);
            let prepared = state.response.get_or_insert_with(Prepared::default);
            prepared.status = status as u16;
            prepared.body = body;
            Ok(0)
        },
    )?;
    linker.func_wrap(
        m,
        "respond_header",
        |mut c: Caller<'_, HostState>, name: i32, name_len: i32, value: i32, value_len: i32| {
            let mem = memory(&c)?;
            let (data, state) = mem.data_and_store_mut(&mut c);
            let name = read_in(data, state, name, name_len)?;
            let value = read_in(data, state, value, value_len)?;
            match (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
                (Ok(n), Ok(v)) => {
                    state
                        .response
                        .get_or_insert_with(Prepared::default)
                        .headers
                        .push((n, v));
                    Ok(0)
                }
                _ => Ok(-1),
            }
        },
    )?;
    linker.func_wrap(
        m,
        "log",
        |mut c: Caller<'_, HostState>, level: i32, msg: i32, len: i32| {
            let mem = memory(&c)?;
            let (data, state) = mem.data_and_store_mut(&mut c);
            let msg = read_in(data, state, msg, len.min(4096))?;
            let (policy, msg) = (&state.def.name, String::from_utf8_lossy(msg));
            match level {
                0 => tracing::error!(policy = %policy, "{msg}"),
                1 => tracing::warn!(policy = %policy, "{msg}"),
                _ => tracing::info!(policy = %policy, "{msg}"),
            }
            Ok(())
        },
    )?;
    Ok(())
}
