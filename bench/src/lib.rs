//! Shared by the benchmark binaries: argument parsing and `SO_REUSEPORT` binding.

use std::net::SocketAddr;

/// `--name value` from the command line, or `default`.
pub fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_owned())
}

/// A non-blocking listener with `SO_REUSEPORT`, one per worker thread.
pub fn listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// Runs `f` on `threads` threads, each with its own `current_thread` runtime.
pub fn per_thread<F, Fut>(threads: usize, f: F)
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let f = f.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
                if let Ok(rt) = rt {
                    let local = tokio::task::LocalSet::new();
                    local.block_on(&rt, f(i));
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}
