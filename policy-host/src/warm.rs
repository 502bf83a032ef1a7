//! One worker's warm instances of one generation's policies. An instance is
//! replaced after any failure or every [`CALLS_PER_INSTANCE`] calls, and all
//! of them when the generation changes.

use std::sync::atomic::Ordering;

use plan::abi;
use wasmtime::{Engine, ResourceLimiter, Store, Trap, TypedFunc};

use crate::engine::{Loaded, Policies};
use crate::limits::on_tick;
use crate::state::{Decision, HostState, RequestView};
use crate::stats::Failure;

/// A warm instance serves at most this many calls before it is replaced.
pub const CALLS_PER_INSTANCE: u32 = 10_000;

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
    let state = HostState::new(policy.def.clone());
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
            state.edits = 0;
            state.edit_bytes = 0;
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
