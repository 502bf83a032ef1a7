//! The policies of one plan generation: the engine (pooling allocator,
//! epoch interruption, fuel only if a policy sets it), each module checked
//! against its plan digest, compiled and linked once into an `InstancePre`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use plan::{OnError, Plan, abi};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module, PoolingAllocationConfig,
};

use crate::epoch::EpochTicker;
use crate::host;
use crate::state::{HostState, PolicyDef};
use crate::stats::PolicyStats;

/// A wasm page.
pub(crate) const PAGE: usize = 64 * 1024;

/// A loaded policy: its definition and its pre-linked module.
pub(crate) struct Loaded {
    pub def: Arc<PolicyDef>,
    pub pre: InstancePre<HostState>,
    pub has_init: bool,
    pub stats: Arc<PolicyStats>,
}

/// All policies of one plan generation. Dropping it stops its epoch ticker.
pub struct Policies {
    /// The plan generation these belong to (warm instances are keyed by it).
    pub(crate) generation: u64,
    pub(crate) engine: Engine,
    pub(crate) loaded: Vec<Loaded>,
    _ticker: EpochTicker,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("generation", &self.generation)
            .field("count", &self.loaded.len())
            .finish()
    }
}

/// Top-level config keys: strings unquoted, other values as JSON.
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
    /// Compiles and links every policy of `plan` for plan generation
    /// `generation`; `Err` names the policy. `instances` bounds the pooling
    /// allocator (workers × policies, with room for replacements).
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
        host::link(&mut linker).map_err(|e| format!("cannot link the hook ABI: {e}"))?;
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
                log_limit: crate::stats::LineLimit::default(),
            };
            loaded.push(Loaded {
                stats: stats(&p.name),
                def: Arc::new(def),
                pre,
                has_init,
            });
        }
        let ticker = EpochTicker::start(&engine).map_err(|e| format!("cannot start the epoch ticker: {e}"))?;
        Ok(Some(Policies {
            generation,
            engine,
            loaded,
            _ticker: ticker,
        }))
    }

    /// The plan generation these policies belong to.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn on_error(&self, policy: usize) -> OnError {
        self.loaded.get(policy).map_or(OnError::Deny, |l| l.def.on_error)
    }

    pub fn name(&self, policy: usize) -> &str {
        self.loaded.get(policy).map_or("", |l| l.def.name.as_str())
    }
}
