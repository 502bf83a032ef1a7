//! `gateway demo`: the example config served with built-in echo upstreams on the
//! loopback addresses it names that nothing listens on, plus a few `curl` lines.

use std::net::SocketAddr;

use plan::Plan;

/// Loopback upstream addresses of `plan` that are free to bind right now.
pub fn free_upstreams(plan: &Plan) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for cluster in &plan.clusters {
        for u in &cluster.upstreams {
            let Some(addr) = u
                .url
                .strip_prefix("http://")
                .and_then(|rest| rest.split('/').next())
                .and_then(|a| a.parse::<SocketAddr>().ok())
            else {
                continue;
            };
            if addr.ip().is_loopback() && !out.contains(&addr) && std::net::TcpListener::bind(addr).is_ok() {
                out.push(addr);
            }
        }
    }
    out
}

/// Starts echo upstreams on `addrs` on a thread of their own and prints how to try.
pub fn start(runtime: &tokio::runtime::Runtime, addrs: &[SocketAddr], plan: &Plan, gateway: SocketAddr) -> std::io::Result<()> {
    let mut listeners = Vec::new();
    for addr in addrs {
        listeners.push(std::net::TcpListener::bind(addr)?);
    }
    let _ = runtime;
    std::thread::Builder::new().name("demo-upstreams".into()).spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async move {
            let mut tasks = Vec::new();
            for l in listeners {
                let _ = l.set_nonblocking(true);
                if let Ok(l) = tokio::net::TcpListener::from_std(l) {
                    tasks.push(tokio::spawn(crate::echo::serve(l)));
                }
            }
            for t in tasks {
                let _ = t.await;
            }
        });
    })?;
    let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    eprintln!("demo: echo upstreams on {}", if list.is_empty() { "(none free)".to_owned() } else { list.join(", ") });
    eprintln!("demo: try these (each answer names the upstream that served it):");
    for route in plan.routes.iter().take(6) {
        let host = match route.host.as_str() {
            "*" => "anything.test".to_owned(),
            h => match h.strip_prefix("*.") {
                Some(suffix) => format!("tenant1.{suffix}"),
                None => h.to_owned(),
            },
        };
        let path = if route.path_prefix == "/" { "/hello".to_owned() } else { format!("{}/demo", route.path_prefix) };
        eprintln!("  curl -s -H 'Host: {host}' http://{gateway}{path}    # route {}", route.name);
    }
    Ok(())
}
