//! `hook_sdk`: the guest side of the gateway's policy hook ABI v1 (see
//! `policies/ABI.md`). No dependencies, `#![no_std]`, builds with Rust 1.63 on
//! `wasm32-unknown-unknown`.
//!
//! A policy is a `cdylib` that calls `hook_sdk::export!(on_request)` with a
//! function returning a [`Decision`]. Everything the policy reads is copied
//! into buffers it owns; nothing is shared with the host but those copies.

#![no_std]

/// What the policy decided for this request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Let the request go on (to the next policy, then the route's cluster).
    Continue,
    /// Answer with the response prepared by [`respond`] (and [`respond_header`]).
    Respond,
    /// Send the request to the policy's `clusters[i]` (see [`cluster_index`]).
    Route(u32),
}

impl Decision {
    /// The ABI's encoding: 0 continue, 1 respond, 2 + i route to `clusters[i]`.
    pub fn code(self) -> i32 {
        match self {
            Decision::Continue => 0,
            Decision::Respond => 1,
            Decision::Route(i) => 2 + i as i32,
        }
    }
}

/// Request fields readable with [`field`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Method = 0,
    Scheme = 1,
    /// The `Host` as received (port included).
    Authority = 2,
    /// The normalized path, without query.
    Path = 3,
    Query = 4,
    ClientIp = 5,
}

/// Log levels for [`log`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
}

#[allow(clippy::missing_safety_doc)]
mod host {
    #[link(wasm_import_module = "hook")]
    extern "C" {
        pub fn request_field(field: i32, buf: *mut u8, cap: i32) -> i32;
        pub fn request_header(name: *const u8, name_len: i32, buf: *mut u8, cap: i32) -> i32;
        pub fn request_headers(buf: *mut u8, cap: i32) -> i32;
        pub fn config(buf: *mut u8, cap: i32) -> i32;
        pub fn config_get(key: *const u8, key_len: i32, buf: *mut u8, cap: i32) -> i32;
        pub fn cluster_index(name: *const u8, name_len: i32) -> i32;
        pub fn set_header(name: *const u8, name_len: i32, value: *const u8, value_len: i32) -> i32;
        pub fn remove_header(name: *const u8, name_len: i32) -> i32;
        pub fn respond(status: i32, body: *const u8, body_len: i32) -> i32;
        pub fn respond_header(name: *const u8, name_len: i32, value: *const u8, value_len: i32) -> i32;
        pub fn log(level: i32, msg: *const u8, len: i32);
    }
}

/// Turns a host "length or -1" answer for a buffer into the filled slice.
/// `None` when absent; `Err(len)` when `buf` was too small (nothing written).
fn filled(n: i32, buf: &mut [u8]) -> Result<Option<&mut [u8]>, usize> {
    if n < 0 {
        return Ok(None);
    }
    let n = n as usize;
    if n > buf.len() {
        return Err(n);
    }
    Ok(Some(&mut buf[..n]))
}

/// Copies a request field into `buf`. `Ok(None)`: absent (e.g. no query);
/// `Err(len)`: `buf` too small, `len` needed.
pub fn field(f: Field, buf: &mut [u8]) -> Result<Option<&mut [u8]>, usize> {
    // SAFETY: the host writes at most `buf.len()` bytes at `buf`, which we own.
    let n = unsafe { host::request_field(f as i32, buf.as_mut_ptr(), buf.len() as i32) };
    filled(n, buf)
}

/// Copies the first value of request header `name` (any case) into `buf`.
pub fn header<'a>(name: &str, buf: &'a mut [u8]) -> Result<Option<&'a mut [u8]>, usize> {
    // SAFETY: the host reads `name` and writes at most `buf.len()` bytes at `buf`.
    let n = unsafe { host::request_header(name.as_ptr(), name.len() as i32, buf.as_mut_ptr(), buf.len() as i32) };
    filled(n, buf)
}

/// Copies all request headers, in the layout of ABI.md, into `buf`; returns the
/// layout's length (which may exceed `buf.len()`: then nothing was written).
pub fn headers(buf: &mut [u8]) -> usize {
    // SAFETY: the host writes at most `buf.len()` bytes at `buf`.
    unsafe { host::request_headers(buf.as_mut_ptr(), buf.len() as i32) as usize }
}

/// Iterates `(name, value)` pairs of a [`headers`] layout.
pub struct HeaderIter<'a> {
    rest: &'a [u8],
}

impl<'a> HeaderIter<'a> {
    pub fn new(layout: &'a [u8]) -> Self {
        HeaderIter { rest: layout }
    }

    fn take(&mut self) -> Option<&'a [u8]> {
        if self.rest.len() < 4 {
            return None;
        }
        let len = u32::from_le_bytes([self.rest[0], self.rest[1], self.rest[2], self.rest[3]]) as usize;
        if self.rest.len() < 4 + len {
            return None;
        }
        let item = &self.rest[4..4 + len];
        self.rest = &self.rest[4 + len..];
        Some(item)
    }
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let name = self.take()?;
        let value = self.take()?;
        Some((name, value))
    }
}

/// Copies the whole policy `config` (canonical JSON) into `buf`.
pub fn config(buf: &mut [u8]) -> Result<Option<&mut [u8]>, usize> {
    // SAFETY: the host writes at most `buf.len()` bytes at `buf`.
    let n = unsafe { host::config(buf.as_mut_ptr(), buf.len() as i32) };
    filled(n, buf)
}

/// Copies top-level config key `key` into `buf`: a string's text without
/// quotes, anything else as JSON. `Ok(None)` when the key is absent.
pub fn config_get<'a>(key: &str, buf: &'a mut [u8]) -> Result<Option<&'a mut [u8]>, usize> {
    // SAFETY: the host reads `key` and writes at most `buf.len()` bytes at `buf`.
    let n = unsafe { host::config_get(key.as_ptr(), key.len() as i32, buf.as_mut_ptr(), buf.len() as i32) };
    filled(n, buf)
}

/// The index of `name` in the policy's `clusters` list, for [`Decision::Route`].
pub fn cluster_index(name: &[u8]) -> Option<u32> {
    // SAFETY: the host only reads `name`.
    let i = unsafe { host::cluster_index(name.as_ptr(), name.len() as i32) };
    if i < 0 {
        None
    } else {
        Some(i as u32)
    }
}

/// Sets (replaces) a header of the request as it will be forwarded.
pub fn set_header(name: &[u8], value: &[u8]) -> bool {
    // SAFETY: the host only reads both slices.
    unsafe { host::set_header(name.as_ptr(), name.len() as i32, value.as_ptr(), value.len() as i32) == 0 }
}

/// Removes a header from the request as it will be forwarded.
pub fn remove_header(name: &[u8]) -> bool {
    // SAFETY: the host only reads `name`.
    unsafe { host::remove_header(name.as_ptr(), name.len() as i32) == 0 }
}

/// Prepares the response for [`Decision::Respond`].
pub fn respond(status: u16, body: &[u8]) -> bool {
    // SAFETY: the host only reads `body`.
    unsafe { host::respond(i32::from(status), body.as_ptr(), body.len() as i32) == 0 }
}

/// Adds a header to the prepared response.
pub fn respond_header(name: &[u8], value: &[u8]) -> bool {
    // SAFETY: the host only reads both slices.
    unsafe { host::respond_header(name.as_ptr(), name.len() as i32, value.as_ptr(), value.len() as i32) == 0 }
}

/// Writes a line to the gateway's stderr, prefixed with the policy name.
pub fn log(level: Level, msg: &str) {
    // SAFETY: the host only reads `msg`.
    unsafe { host::log(level as i32, msg.as_ptr(), msg.len() as i32) }
}

/// True when `list` (comma-separated, spaces ignored) contains `item`.
pub fn list_contains(list: &[u8], item: &[u8]) -> bool {
    list.split(|&b| b == b',').any(|entry| trim(entry) == item)
}

/// `bytes` without leading and trailing ASCII spaces.
pub fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != b' ').unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|&b| b != b' ').map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Exports the ABI v1 marker and `on_request` calling `$f: fn() -> Decision`.
#[macro_export]
macro_rules! export {
    ($f:path) => {
        #[no_mangle]
        pub extern "C" fn hook_abi_v1() {}

        #[no_mangle]
        pub extern "C" fn on_request() -> i32 {
            let decide: fn() -> $crate::Decision = $f;
            decide().code()
        }
    };
}

#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
