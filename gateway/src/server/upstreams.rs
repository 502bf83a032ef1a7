//! The process's one background task for upstreams (SPEC §15), on its own
//! thread so it never blocks a worker: active health checks, the end of
//! ejections, and re-resolution of upstream host names. It follows reloads:
//! each round reads the current plan generation.

use std::sync::Arc;
use std::time::Duration;

use crate::stream::Stream;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::upstream::{ClusterHealth, Target, UpstreamState, resolve};
use crate::worker::Shared;

/// How often ejections are checked for their end.
const TICK: Duration = Duration::from_millis(50);

/// Starts the task's thread.
pub fn spawn(shared: Arc<Shared>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("gateway-upstreams".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                tracing::error!("cannot start the upstream health task");
                return;
            };
            // Checks run as local tasks: a TLS check's stream is not `Sync`.
            tokio::task::LocalSet::new().block_on(&rt, run(shared));
        })?;
    Ok(())
}

/// A value in `0.9..1.1` times `ms`: checks of many upstreams do not align.
fn jittered(ms: u64, salt: usize) -> Duration {
    let spread = ms / 10;
    let r = (crate::upstream::now_ms() as usize)
        .wrapping_mul(2_654_435_761)
        .wrapping_add(salt * 40_503);
    Duration::from_millis(ms - spread + (r as u64 % (2 * spread + 1)))
}

/// When each target of the current generation is next checked and resolved.
#[derive(Debug, Default)]
struct Schedule {
    generation: u64,
    check: Vec<Instant>,
    dns: Vec<Instant>,
}

async fn run(shared: Arc<Shared>) {
    let mut schedule = Schedule::default();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let generation = shared.current.load_full();
        let plan = generation.router.plan();
        let now = Instant::now();
        for health in &generation.targets.clusters {
            health.refresh();
        }
        let targets = generation.targets.all();
        if schedule.generation != generation.id {
            // A new plan: check at once, resolve after a refresh period.
            schedule.generation = generation.id;
            schedule.check = vec![now; targets.len()];
            schedule.dns = targets
                .iter()
                .map(|t| now + Duration::from_millis(plan.clusters[t.cluster as usize].dns_refresh_ms))
                .collect();
        }
        for (n, target) in targets.iter().enumerate() {
            let cluster = &plan.clusters[target.cluster as usize];
            if let Some(hc) = &cluster.health_check
                && schedule.check[n] <= now
            {
                schedule.check[n] = now + jittered(hc.interval_ms, n);
                let health = generation.targets.clusters[target.cluster as usize].clone();
                tokio::task::spawn_local(check(target.clone(), health, hc.clone()));
            }
            if let Some(host) = &target.hostname
                && schedule.dns[n] <= now
            {
                schedule.dns[n] = now + Duration::from_millis(cluster.dns_refresh_ms);
                tokio::spawn(refresh_dns(target.state.clone(), host.clone(), target.port));
            }
        }
    }
}

/// One active check: `GET path` within `timeoutMs`; a 2xx or 3xx status
/// is a success. A `protocol: h2` upstream is checked over HTTP/2.
async fn check(target: Target, health: Arc<ClusterHealth>, hc: plan::HealthCheck) {
    let probe = async {
        let addr = target.state.endpoint()?;
        let tcp = TcpStream::connect(addr).await.ok()?;
        // An https:// upstream is checked over TLS, verified as requests are.
        let stream = match &target.tls {
            None => Stream::Plain(tcp),
            Some(tls) => Stream::Tls(Box::new(
                crate::tls::connect(tcp, tls.config.clone(), tls.name.clone())
                    .await
                    .ok()?,
            )),
        };
        if target.h2 {
            return probe_h2(stream, &target, &hc.path).await;
        }
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: gateway-health-check\r\nConnection: close\r\n\r\n",
            hc.path, target.authority
        );
        stream
            .write_all(&mut [std::io::IoSlice::new(request.as_bytes())])
            .await
            .ok()?;
        let mut buf = bytes::BytesMut::with_capacity(1024);
        while buf.len() < 12 {
            if stream.read_buf(&mut buf).await.ok()? == 0 {
                break;
            }
        }
        let line = std::str::from_utf8(buf.get(..buf.len().min(64))?).ok()?;
        let code: u16 = line.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()?;
        Some(code)
    };
    let status = tokio::time::timeout(Duration::from_millis(hc.timeout_ms), probe)
        .await
        .ok()
        .flatten();
    let ok = status.is_some_and(|s| (200..400).contains(&s));
    if target.state.check(ok, hc.healthy_threshold, hc.unhealthy_threshold) {
        if target.state.is_healthy() {
            tracing::info!(
                cluster = health.name.as_str(),
                upstream = target.url.as_str(),
                "upstream healthy again"
            );
        } else {
            tracing::warn!(
                cluster = health.name.as_str(),
                upstream = target.url.as_str(),
                status = status.map_or_else(|| "no answer".to_owned(), |s| s.to_string()),
                "upstream unhealthy"
            );
        }
        health.refresh();
    }
}

/// `GET path` as one stream of a new HTTP/2 connection; its status.
async fn probe_h2(stream: Stream, target: &Target, path: &str) -> Option<u16> {
    if stream.tls().is_some_and(|t| !t.h2) {
        return None;
    }
    let scheme = if target.tls.is_some() { "https" } else { "http" };
    let mut request = http::Request::new(());
    *request.uri_mut() = format!("{scheme}://{}{path}", target.authority).parse().ok()?;
    request.headers_mut().insert(
        http::header::USER_AGENT,
        http::HeaderValue::from_static("gateway-health-check"),
    );
    let io = crate::stream::H2Io::new(std::rc::Rc::new(stream), bytes::BytesMut::new());
    let (mut send, connection) = h2::client::handshake(io).await.ok()?;
    // The connection is driven beside the stream and ends with the probe,
    // however the probe ends (its answer, an error, or `timeoutMs`).
    let _driven = AbortOnDrop(tokio::task::spawn_local(connection));
    let (response, _) = send.send_request(request, true).ok()?;
    Some(response.await.ok()?.status().as_u16())
}

/// Aborts its task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Resolves `host` again; a failure (or no address) keeps the last good set.
async fn refresh_dns(state: Arc<UpstreamState>, host: String, port: u16) {
    let resolved = tokio::task::spawn_blocking(move || resolve(&host, port).map(|a| (host, a))).await;
    match resolved {
        Ok(Ok((_, addrs))) if !addrs.is_empty() => {
            if **state.endpoints.load() != addrs {
                tracing::info!(cluster = state.cluster.as_str(), upstream = state.url.as_str(), addresses = ?addrs, "upstream addresses changed");
                state.set_endpoints(addrs);
            }
        }
        Ok(Ok((host, _))) => {
            tracing::warn!(
                cluster = state.cluster.as_str(),
                upstream = state.url.as_str(),
                host,
                "host resolved to no address; keeping the last ones"
            )
        }
        Ok(Err(e)) => {
            tracing::warn!(cluster = state.cluster.as_str(), upstream = state.url.as_str(), error = %e, "re-resolution failed; keeping the last addresses")
        }
        Err(_) => {}
    }
}
