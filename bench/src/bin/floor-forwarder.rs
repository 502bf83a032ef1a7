//! The floor below any runtime: a single-threaded HTTP/1.1 keep-alive
//! forwarder written straight on the kernel's interfaces, to measure what a
//! request costs with no scheduler, no timers and no routing. Issue 17 asks
//! whether tokio is the floor and whether a completion runtime would lower it;
//! this answers both with the same forwarding logic on two I/O models:
//!
//! - `--io epoll`: edge-triggered epoll and non-blocking `recv`/`send`, the
//!   model of NGINX's event loop (and of tokio underneath);
//! - `--io uring`: io_uring, one `io_uring_enter` per loop iteration that
//!   submits every operation queued since the last one and reaps completions
//!   (`SINGLE_ISSUER | DEFER_TASKRUN`, as liburing recommends for networking);
//! - `--io tokio`: the same forwarding as one task per client on tokio's
//!   current-thread runtime (the gateway's), with tokio's `TcpStream`: what
//!   the runtime alone costs above `epoll`, before any of the gateway's work.
//!
//! Each client connection gets its own upstream connection (opened with the
//! client's, kept for its life). A request is forwarded when its head is
//! complete (GET only: the benchmark sends no bodies); a response is forwarded
//! chunk by chunk until its `Content-Length` is through. Not a proxy: no
//! validation, no limits, no timeouts. Benchmark use only.
//!
//! `floor-forwarder --listen 127.0.0.1:8081 --upstream 127.0.0.1:9001 --io uring`

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};

const REQ_BUF: usize = 16 * 1024;
const RESP_BUF: usize = 64 * 1024;

/// One client connection and its upstream connection.
struct Pair {
    client: TcpStream,
    upstream: TcpStream,
    req: Box<[u8]>,
    req_len: usize,
    resp: Box<[u8]>,
    /// Bytes of the current response still to come from the upstream;
    /// `None` until its head has been read.
    remaining: Option<usize>,
    head_len: usize,
}

impl Pair {
    /// Sockets for io_uring stay blocking: on a non-blocking one io_uring
    /// answers `EAGAIN` instead of waiting for readiness itself.
    fn open(client: TcpStream, upstream: SocketAddr, nonblocking: bool) -> io::Result<Pair> {
        let up = TcpStream::connect(upstream)?;
        for s in [&client, &up] {
            s.set_nodelay(true)?;
            s.set_nonblocking(nonblocking)?;
        }
        Ok(Pair {
            client,
            upstream: up,
            req: vec![0; REQ_BUF].into_boxed_slice(),
            req_len: 0,
            resp: vec![0; RESP_BUF].into_boxed_slice(),
            remaining: None,
            head_len: 0,
        })
    }

    /// After `n` more request bytes: is the head complete?
    fn request_read(&mut self, n: usize) -> bool {
        self.req_len += n;
        self.req[..self.req_len].windows(4).any(|w| w == b"\r\n\r\n")
    }

    /// After `n` response bytes at the front of `resp`: how many of them to
    /// forward, and whether the response is then complete.
    fn response_read(&mut self, n: usize) -> (usize, bool) {
        let left = match self.remaining {
            Some(left) => left,
            None => {
                self.head_len += n;
                let Some((head, body)) = head_and_length(&self.resp[..self.head_len]) else {
                    // Head incomplete: keep reading behind what is there.
                    return (0, false);
                };
                let total = head + body;
                let have = self.head_len;
                self.head_len = 0;
                self.remaining = Some(total.saturating_sub(have));
                return (have, total <= have);
            }
        };
        let left = left.saturating_sub(n);
        self.remaining = Some(left);
        (n, left == 0)
    }

    fn response_done(&mut self) {
        self.remaining = None;
        self.req_len = 0;
    }
}

/// The head's length and the body's `Content-Length`, once the head is complete.
fn head_and_length(buf: &[u8]) -> Option<(usize, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let length = buf[..end]
        .split(|&b| b == b'\n')
        .find_map(|line| {
            let (name, value) = line.split_at(line.iter().position(|&b| b == b':')?);
            name.eq_ignore_ascii_case(b"content-length").then(|| {
                value[1..]
                    .iter()
                    .filter(|b| b.is_ascii_digit())
                    .fold(0usize, |acc, &d| acc * 10 + usize::from(d - b'0'))
            })
        })
        .unwrap_or(0);
    Some((end, length))
}

fn main() {
    let listen: SocketAddr = bench::arg("--listen", "127.0.0.1:8081")
        .parse()
        .unwrap_or_else(|_| ([127, 0, 0, 1], 8081).into());
    let upstream: SocketAddr = bench::arg("--upstream", "127.0.0.1:9001")
        .parse()
        .unwrap_or_else(|_| ([127, 0, 0, 1], 9001).into());
    let model = bench::arg("--io", "epoll");
    eprintln!("floor forwarder ({model}) listening on {listen}");
    let result = bench::listener(listen).and_then(|listener| match model.as_str() {
        "uring" => listener
            .set_nonblocking(false)
            .and_then(|()| uring::run(listener, upstream)),
        "tokio" => on_tokio::run(listener, upstream),
        "epoll-writev" => {
            epoll::WRITEV.store(true, std::sync::atomic::Ordering::Relaxed);
            epoll::run(listener, upstream)
        }
        _ => epoll::run(listener, upstream),
    });
    if let Err(e) = result {
        eprintln!("floor forwarder: {e}");
        std::process::exit(1);
    }
}

fn errno(r: isize) -> io::Result<usize> {
    usize::try_from(r).map_err(|_| io::Error::last_os_error())
}

mod epoll {
    use super::*;

    const LISTENER: u64 = u64::MAX;

    /// `--io epoll-writev`: `writev` instead of `send`, as tokio's vectored
    /// writes do, to measure what the system call itself costs.
    pub static WRITEV: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    fn ctl(ep: RawFd, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLET | libc::EPOLLRDHUP) as u32,
            u64: token,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        let r = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) };
        errno(r as isize).map(drop)
    }

    fn recv(fd: RawFd, buf: &mut [u8]) -> isize {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) }
    }

    /// Sends all of `buf` (the socket has room: the benchmark's messages are
    /// far below the send buffer); an error closes the pair.
    fn send(fd: RawFd, mut buf: &[u8]) -> bool {
        let vectored = WRITEV.load(std::sync::atomic::Ordering::Relaxed);
        while !buf.is_empty() {
            let r = if vectored {
                let iov = libc::iovec {
                    iov_base: buf.as_ptr() as *mut libc::c_void,
                    iov_len: buf.len(),
                };
                // SAFETY: `iov` describes `buf`, valid for reads of its length.
                unsafe { libc::writev(fd, &iov, 1) }
            } else {
                // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
                unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) }
            };
            match usize::try_from(r) {
                Ok(n) if n > 0 => buf = &buf[n..],
                _ => return false,
            }
        }
        true
    }

    pub fn run(listener: std::net::TcpListener, upstream: SocketAddr) -> io::Result<()> {
        // SAFETY: plain system call, no pointers.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        errno(ep as isize)?;
        ctl(ep, listener.as_raw_fd(), LISTENER)?;
        let mut pairs: Vec<Option<Pair>> = Vec::new();
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        loop {
            // SAFETY: `events` is valid for `events.len()` entries.
            let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1) };
            let Ok(n) = usize::try_from(n) else { continue };
            for ev in &events[..n] {
                let token = ev.u64;
                if token == LISTENER {
                    while let Ok((client, _)) = listener.accept() {
                        let Ok(pair) = Pair::open(client, upstream, true) else {
                            continue;
                        };
                        let slot = pairs.iter().position(Option::is_none).unwrap_or(pairs.len());
                        let id = slot as u64;
                        if ctl(ep, pair.client.as_raw_fd(), id << 1).is_err()
                            || ctl(ep, pair.upstream.as_raw_fd(), id << 1 | 1).is_err()
                        {
                            continue;
                        }
                        if slot == pairs.len() {
                            pairs.push(Some(pair));
                        } else {
                            pairs[slot] = Some(pair);
                        }
                    }
                    continue;
                }
                if ev.events & libc::EPOLLIN as u32 == 0 {
                    continue;
                }
                let slot = (token >> 1) as usize;
                let Some(Some(pair)) = pairs.get_mut(slot) else {
                    continue;
                };
                let ok = if token & 1 == 0 {
                    client_readable(pair)
                } else {
                    upstream_readable(pair)
                };
                if !ok {
                    pairs[slot] = None; // closing the sockets removes them from epoll
                }
            }
        }
    }

    fn client_readable(pair: &mut Pair) -> bool {
        let r = recv(pair.client.as_raw_fd(), &mut pair.req[pair.req_len..]);
        let Ok(n @ 1..) = usize::try_from(r) else {
            return r < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock;
        };
        if !pair.request_read(n) {
            return true;
        }
        send(pair.upstream.as_raw_fd(), &pair.req[..pair.req_len])
    }

    fn upstream_readable(pair: &mut Pair) -> bool {
        let start = if pair.remaining.is_none() { pair.head_len } else { 0 };
        let r = recv(pair.upstream.as_raw_fd(), &mut pair.resp[start..]);
        let Ok(n @ 1..) = usize::try_from(r) else {
            return r < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock;
        };
        let (forward, done) = pair.response_read(n);
        let from = if forward == n { start } else { 0 };
        if forward > 0 && !send(pair.client.as_raw_fd(), &pair.resp[from..from + forward]) {
            return false;
        }
        if done {
            pair.response_done();
        }
        true
    }
}

mod uring {
    use io_uring::{IoUring, opcode, squeue, types};

    use super::*;

    const ACCEPT: u64 = u64::MAX;
    // The low two bits of an operation's user data say which it is.
    const RECV_CLIENT: u64 = 0;
    const SEND_UPSTREAM: u64 = 1;
    const RECV_UPSTREAM: u64 = 2;
    const SEND_CLIENT: u64 = 3;

    struct Ring {
        ring: IoUring,
    }

    impl Ring {
        fn push(&mut self, entry: &squeue::Entry) {
            loop {
                // SAFETY: every buffer an entry points into is owned by a
                // `Pair` that stays in `pairs`, unmoved (boxed slices), until
                // the operation's completion has been reaped; a pair is only
                // dropped from its own completion, when no other operation
                // of it is in flight (one operation per pair at a time).
                if unsafe { self.ring.submission().push(entry) }.is_ok() {
                    return;
                }
                let _ = self.ring.submit();
            }
        }
    }

    fn recv_client(ring: &mut Ring, id: u64, pair: &mut Pair) {
        let buf = &mut pair.req[pair.req_len..];
        let sqe = opcode::Recv::new(types::Fd(pair.client.as_raw_fd()), buf.as_mut_ptr(), buf.len() as u32)
            .build()
            .user_data(id << 2 | RECV_CLIENT);
        ring.push(&sqe);
    }

    fn recv_upstream(ring: &mut Ring, id: u64, pair: &mut Pair) {
        let start = if pair.remaining.is_none() { pair.head_len } else { 0 };
        let buf = &mut pair.resp[start..];
        let sqe = opcode::Recv::new(types::Fd(pair.upstream.as_raw_fd()), buf.as_mut_ptr(), buf.len() as u32)
            .build()
            .user_data(id << 2 | RECV_UPSTREAM);
        ring.push(&sqe);
    }

    fn send(ring: &mut Ring, fd: RawFd, buf: &[u8], data: u64) {
        let sqe = opcode::Send::new(types::Fd(fd), buf.as_ptr(), buf.len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(data);
        ring.push(&sqe);
    }

    pub fn run(listener: std::net::TcpListener, upstream: SocketAddr) -> io::Result<()> {
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_cqsize(4096)
            .build(1024)?;
        let mut ring = Ring { ring };
        let accept = || {
            opcode::Accept::new(
                types::Fd(listener.as_raw_fd()),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
            .build()
            .user_data(ACCEPT)
        };
        ring.push(&accept());
        let mut pairs: Vec<Option<Pair>> = Vec::new();
        // What a send is sending: (offset, length) into the pair's buffer.
        let mut sending: Vec<(usize, usize)> = Vec::new();
        let mut done = Vec::with_capacity(4096);
        loop {
            match ring.ring.submit_and_wait(1) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => r?,
            };
            done.clear();
            done.extend(ring.ring.completion().map(|c| (c.user_data(), c.result())));
            for &(data, result) in &done {
                if data == ACCEPT {
                    ring.push(&accept());
                    let fd: RawFd = result;
                    if fd < 0 {
                        continue;
                    }
                    // SAFETY: the kernel just handed us this descriptor; we own it.
                    let client = unsafe { <TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                    let Ok(pair) = Pair::open(client, upstream, false) else {
                        continue;
                    };
                    let slot = pairs.iter().position(Option::is_none).unwrap_or(pairs.len());
                    if slot == pairs.len() {
                        pairs.push(Some(pair));
                        sending.push((0, 0));
                    } else {
                        pairs[slot] = Some(pair);
                    }
                    if let Some(Some(pair)) = pairs.get_mut(slot) {
                        recv_client(&mut ring, slot as u64, pair);
                    }
                    continue;
                }
                let (id, op) = (data >> 2, data & 3);
                let slot = id as usize;
                let Some(Some(pair)) = pairs.get_mut(slot) else {
                    continue;
                };
                let Ok(n @ 1..) = usize::try_from(result) else {
                    pairs[slot] = None;
                    continue;
                };
                match op {
                    RECV_CLIENT => {
                        if pair.request_read(n) {
                            sending[slot] = (0, pair.req_len);
                            send(
                                &mut ring,
                                pair.upstream.as_raw_fd(),
                                &pair.req[..pair.req_len],
                                id << 2 | SEND_UPSTREAM,
                            );
                        } else {
                            recv_client(&mut ring, id, pair);
                        }
                    }
                    SEND_UPSTREAM | SEND_CLIENT => {
                        let (from, len) = sending[slot];
                        if n < len {
                            sending[slot] = (from + n, len - n);
                            let (fd, buf) = if op == SEND_UPSTREAM {
                                (pair.upstream.as_raw_fd(), &pair.req[from + n..from + len])
                            } else {
                                (pair.client.as_raw_fd(), &pair.resp[from + n..from + len])
                            };
                            send(&mut ring, fd, buf, data);
                        } else if op == SEND_UPSTREAM || pair.remaining != Some(0) {
                            recv_upstream(&mut ring, id, pair);
                        } else {
                            pair.response_done();
                            recv_client(&mut ring, id, pair);
                        }
                    }
                    _ => {
                        let start = if pair.remaining.is_none() { pair.head_len } else { 0 };
                        let (forward, _) = pair.response_read(n);
                        if forward == 0 {
                            recv_upstream(&mut ring, id, pair);
                            continue;
                        }
                        let from = if forward == n { start } else { 0 };
                        sending[slot] = (from, forward);
                        send(
                            &mut ring,
                            pair.client.as_raw_fd(),
                            &pair.resp[from..from + forward],
                            id << 2 | SEND_CLIENT,
                        );
                    }
                }
            }
        }
    }
}

mod on_tokio {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    pub fn run(listener: std::net::TcpListener, upstream: SocketAddr) -> io::Result<()> {
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            loop {
                let (client, _) = listener.accept().await?;
                tokio::spawn(async move {
                    let _ = forward(client, upstream).await;
                });
            }
        })
    }

    /// One client's life: each request head to the upstream, each response
    /// back until its `Content-Length` is through.
    async fn forward(mut client: TcpStream, upstream: SocketAddr) -> io::Result<()> {
        let mut up = TcpStream::connect(upstream).await?;
        client.set_nodelay(true)?;
        up.set_nodelay(true)?;
        let mut req = vec![0; REQ_BUF];
        let mut resp = vec![0; RESP_BUF];
        loop {
            let mut len = 0;
            while !req[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                let n = client.read(&mut req[len..]).await?;
                if n == 0 || len + n == REQ_BUF {
                    return Ok(());
                }
                len += n;
            }
            up.write_all(&req[..len]).await?;
            let mut have = 0;
            let (head, body) = loop {
                let n = up.read(&mut resp[have..]).await?;
                if n == 0 {
                    return Ok(());
                }
                have += n;
                if let Some(lengths) = head_and_length(&resp[..have]) {
                    break lengths;
                }
            };
            client.write_all(&resp[..have]).await?;
            let mut left = (head + body).saturating_sub(have);
            while left > 0 {
                let n = up.read(&mut resp).await?;
                if n == 0 {
                    return Ok(());
                }
                client.write_all(&resp[..n]).await?;
                left = left.saturating_sub(n);
            }
        }
    }
}
