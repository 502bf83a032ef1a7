//! Reload (SIGHUP, `POST /reload`): the config or plan the process was
//! started with, fully loaded and checked before it replaces the current
//! generation; never reported as applied when it was not (SPEC §12).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::generation::Generation;
use crate::load::{Source, load};
use crate::observe::accesslog::Output;
use crate::worker::Shared;

/// Reloads the config or plan the process was started with. The new plan is
/// fully loaded and checked before it replaces the old one; on any error,
/// or a change that cannot be applied without a restart, the old plan keeps
/// serving.
pub fn reload(shared: &Shared, source: &Source, fixed: &Fixed) -> Result<String, String> {
    let global = &shared.registry.global;
    let old = shared.current.load_full();
    let refused = |text: String| {
        global.reload_failures.fetch_add(1, Ordering::Relaxed);
        // One event per error, each in the §3 shape.
        for line in text.lines() {
            if line.contains(": warning: ") {
                tracing::warn!("{line}");
            } else {
                tracing::error!("{line}");
            }
        }
        tracing::error!("reload refused: still serving plan {}", old.router.digest());
        Err(text)
    };
    let loaded = match load(source) {
        Ok(l) => l,
        Err(e) => return refused(e.to_string()),
    };
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let plan = loaded.router.plan();
    let mut unapplied: Vec<(&[&str], String)> = Vec::new();
    if fixed.listen.is_none() && plan.listen != old.router.plan().listen {
        unapplied.push((
            &["listen"],
            format!(
                "changed from {} to {}; a new listen address needs a restart",
                old.router.plan().listen,
                plan.listen
            ),
        ));
    }
    if fixed.admin.is_none() && plan.admin != old.router.plan().admin {
        unapplied.push((
            &["admin", "listen"],
            format!(
                "changed from {} to {}; a new admin address needs a restart",
                old.router.plan().admin.as_deref().unwrap_or("none"),
                plan.admin.as_deref().unwrap_or("none")
            ),
        ));
    }
    let tls_listen = |p: &plan::Plan| p.tls.as_ref().map(|t| t.listen.clone());
    if tls_listen(plan) != tls_listen(old.router.plan()) {
        unapplied.push((
            &["tls", "listen"],
            format!(
                "changed from {} to {}; a new TLS address needs a restart",
                tls_listen(old.router.plan()).as_deref().unwrap_or("none"),
                tls_listen(plan).as_deref().unwrap_or("none")
            ),
        ));
    }
    if !unapplied.is_empty() {
        let lines: Vec<String> = unapplied
            .iter()
            .map(|(keys, message)| located(source, keys, message))
            .collect();
        return refused(lines.join("\n"));
    }
    // A new log destination is opened before anything is swapped, so one that
    // cannot be opened refuses the reload.
    let new_destination = plan.access_log.enabled.then(|| plan.access_log.destination.clone());
    let switch = match &new_destination {
        Some(dest) if Some(dest) != shared.log.destination().0.as_ref() => match Output::open(dest, &shared.base_dir) {
            Ok(output) => Some((output, dest.clone())),
            Err(e) => {
                return refused(located(
                    source,
                    &["accessLog", "path"],
                    &format!("cannot open {dest:?}: {e}"),
                ));
            }
        },
        _ => None,
    };
    let mut router = loaded.router;
    router.adopt_wrr(&old.router);
    let mut generation = match Generation::new(
        router,
        &shared.registry,
        &shared.upstreams,
        shared.threads,
        &shared.base_dir,
    ) {
        Ok(g) => g,
        Err(e) => return refused(e),
    };
    let same_destination = switch.is_none();
    generation.log_destination = match switch {
        Some((output, dest)) => match shared.log.switch(output, dest) {
            Ok(id) => id,
            Err(e) => return refused(format!("accessLog.path: {e}")),
        },
        None => shared.log.destination().1,
    };
    let message = format!(
        "reloaded {}: plan {} -> {}",
        source.path().display(),
        old.router.digest(),
        generation.router.digest()
    );
    let new_digest = generation.router.digest().to_owned();
    let generation = Arc::new(generation);
    shared.current.store(generation.clone());
    let live = generation.targets.all().iter();
    shared
        .upstreams
        .retain(live.map(|t| (t.state.cluster.as_str(), t.url.as_str())));
    if same_destination {
        // A reload reopens the log file it keeps, as NGINX's does: after a
        // rotation moved the file away, `postrotate kill -HUP` (or
        // `-USR1`, which only reopens) makes it write to a new one.
        shared.log.reopen();
    }
    global.reloads.fetch_add(1, Ordering::Relaxed);
    global.reload_last_success.store(unix_seconds(), Ordering::Relaxed);
    // Said once it is true: a reader of this line sees the new plan serving.
    tracing::info!(old = %old.router.digest(), new = %new_digest, "{message}");
    Ok(message)
}

/// A refusal in the §3 shape, `FILE:LINE:COL: error: PATH: MESSAGE`, at the
/// value of `keys` in the config the reload read (a plan, JSON, has no
/// lines: `FILE: error: ...`).
fn located(source: &Source, keys: &[&str], message: &str) -> String {
    let file = source.path().display();
    let path = keys.join(".");
    match source {
        Source::Plan(_) => format!("{file}: error: {path}: {message}"),
        Source::Config(p) | Source::Demo { config: p, .. } => {
            let at = std::fs::read_to_string(p)
                .map_or(compiler::Loc { line: 1, col: 1 }, |text| compiler::locate(&text, keys));
            format!("{file}:{}:{}: error: {path}: {message}", at.line, at.col)
        }
    }
}

pub(crate) fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What the command line fixed, so reloads leave it alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fixed {
    pub listen: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
}
