//! The host functions of the hook ABI (`policies/ABI.md`). Their names and
//! signatures are data in `plan::abi::HOST_FUNCTIONS`; [`link`] registers an
//! implementation for every entry of that table and refuses to link if one
//! is missing, and a test checks the linker against the table.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use plan::abi;
use wasmtime::{Caller, Engine, Linker, Memory};

use crate::state::{HostState, Prepared};
use crate::stats::Failure;

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

/// Copies `src` into the guest's `dest` range if it fits; the ABI returns
/// the real length either way.
fn copy_to_guest(data: &mut [u8], dest: std::ops::Range<usize>, src: &[u8]) -> i32 {
    if src.len() <= dest.len() {
        data[dest.start..dest.start + src.len()].copy_from_slice(src);
    }
    src.len() as i32
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
    Ok(copy_to_guest(data, dest, src))
}

/// Reads the guest's `(ptr, len)` bytes.
fn read_in<'a>(data: &'a [u8], state: &mut HostState, ptr: i32, len: i32) -> wasmtime::Result<&'a [u8]> {
    let r = range(state, data.len(), ptr, len)?;
    Ok(&data[r])
}

/// Registers the implementation of every function of the ABI table; a name
/// without one refuses to link.
pub(crate) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let m = abi::HOST_MODULE;
    for (name, _, _) in abi::HOST_FUNCTIONS {
        match name {
            "request_field" => linker.func_wrap(m, name, request_field)?,
            "request_header" => linker.func_wrap(m, name, request_header)?,
            "request_headers" => linker.func_wrap(m, name, request_headers)?,
            "config" => linker.func_wrap(m, name, config)?,
            "config_get" => linker.func_wrap(m, name, config_get)?,
            "cluster_index" => linker.func_wrap(m, name, cluster_index)?,
            "set_header" => linker.func_wrap(m, name, set_header)?,
            "remove_header" => linker.func_wrap(m, name, remove_header)?,
            "respond" => linker.func_wrap(m, name, respond)?,
            "respond_header" => linker.func_wrap(m, name, respond_header)?,
            "log" => linker.func_wrap(m, name, log)?,
            other => return Err(wasmtime::Error::msg(format!("no host implementation of {other:?}"))),
        };
    }
    Ok(())
}

/// `(module, name, params, results)` of every function a fresh linker holds:
/// what the ABI test compares with `plan::abi::HOST_FUNCTIONS`.
pub fn linked_functions() -> wasmtime::Result<Vec<(String, String, usize, usize)>> {
    let engine = Engine::default();
    let mut linker: Linker<HostState> = Linker::new(&engine);
    link(&mut linker)?;
    let mut store = wasmtime::Store::new(
        &engine,
        HostState::new(std::sync::Arc::new(crate::state::PolicyDef::empty())),
    );
    let mut out = Vec::new();
    let externs: Vec<(String, String, wasmtime::Extern)> = linker
        .iter(&mut store)
        .map(|(m, n, e)| (m.to_owned(), n.to_owned(), e))
        .collect();
    for (module, name, item) in externs {
        let Some(func) = item.into_func() else { continue };
        let ty = func.ty(&store);
        out.push((module, name, ty.params().len(), ty.results().len()));
    }
    Ok(out)
}

fn request_field(mut c: Caller<'_, HostState>, field: i32, buf: i32, cap: i32) -> wasmtime::Result<i32> {
    copy_out(&mut c, buf, cap, |s| match field {
        abi::FIELD_METHOD => Some(&s.request.method[..]),
        abi::FIELD_SCHEME => Some(if s.request.scheme.is_empty() {
            &b"http"[..]
        } else {
            s.request.scheme.as_bytes()
        }),
        abi::FIELD_AUTHORITY => Some(&s.request.authority[..]),
        abi::FIELD_PATH => Some(&s.request.path[..]),
        abi::FIELD_QUERY => s.request.query.as_deref(),
        abi::FIELD_CLIENT_IP => Some(&s.request.client_ip[..]),
        _ => None,
    })
}

fn request_header(mut c: Caller<'_, HostState>, name: i32, name_len: i32, buf: i32, cap: i32) -> wasmtime::Result<i32> {
    let mem = memory(&c)?;
    let (data, state) = mem.data_and_store_mut(&mut c);
    let name = read_in(data, state, name, name_len)?;
    if HeaderName::from_bytes(name).is_err() {
        return Ok(-1);
    }
    let dest = range(state, data.len(), buf, cap)?;
    match state.request.headers.get(name) {
        Some(value) => Ok(copy_to_guest(data, dest, value)),
        None => Ok(-1),
    }
}

fn request_headers(mut c: Caller<'_, HostState>, buf: i32, cap: i32) -> wasmtime::Result<i32> {
    let mem = memory(&c)?;
    let (data, state) = mem.data_and_store_mut(&mut c);
    let dest = range(state, data.len(), buf, cap)?;
    let total: usize = state
        .request
        .headers
        .iter()
        .map(|(n, v, _)| 8 + n.len() + v.len())
        .sum();
    if total <= dest.len() {
        let mut at = dest.start;
        for (n, v, _) in state.request.headers.iter() {
            for (part, lowercase) in [(n, true), (v, false)] {
                data[at..at + 4].copy_from_slice(&(part.len() as u32).to_le_bytes());
                let out = &mut data[at + 4..at + 4 + part.len()];
                out.copy_from_slice(part);
                if lowercase {
                    // The ABI promises lowercase names; received ones keep the client's case.
                    out.make_ascii_lowercase();
                }
                at += 4 + part.len();
            }
        }
    }
    Ok(total as i32)
}

fn config(mut c: Caller<'_, HostState>, buf: i32, cap: i32) -> wasmtime::Result<i32> {
    copy_out(&mut c, buf, cap, |s| Some(&s.def.config[..]))
}

fn config_get(mut c: Caller<'_, HostState>, key: i32, key_len: i32, buf: i32, cap: i32) -> wasmtime::Result<i32> {
    let mem = memory(&c)?;
    let (data, state) = mem.data_and_store_mut(&mut c);
    let key = read_in(data, state, key, key_len)?;
    let def = state.def.clone();
    let Some(value) = std::str::from_utf8(key).ok().and_then(|k| def.config_keys.get(k)) else {
        return Ok(-1);
    };
    let dest = range(state, data.len(), buf, cap)?;
    Ok(copy_to_guest(data, dest, value))
}

fn cluster_index(mut c: Caller<'_, HostState>, name: i32, name_len: i32) -> wasmtime::Result<i32> {
    let mem = memory(&c)?;
    let (data, state) = mem.data_and_store_mut(&mut c);
    let name = read_in(data, state, name, name_len)?;
    Ok(state
        .def
        .cluster_names
        .iter()
        .position(|n| n.as_bytes() == name)
        .map_or(-1, |i| i as i32))
}

/// A header name and value from guest memory, if both are valid HTTP.
fn header_in(
    c: &mut Caller<'_, HostState>,
    name: (i32, i32),
    value: (i32, i32),
) -> wasmtime::Result<Option<(HeaderName, HeaderValue)>> {
    let mem = memory(c)?;
    let (data, state) = mem.data_and_store_mut(&mut *c);
    let name = read_in(data, state, name.0, name.1)?;
    let value = read_in(data, state, value.0, value.1)?;
    Ok(match (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
        (Ok(n), Ok(v)) => Some((n, v)),
        _ => None,
    })
}

fn set_header(
    mut c: Caller<'_, HostState>,
    name: i32,
    name_len: i32,
    value: i32,
    value_len: i32,
) -> wasmtime::Result<i32> {
    if !c.data_mut().take_edit(name_len, value_len) {
        return Ok(-1);
    }
    let Some((n, v)) = header_in(&mut c, (name, name_len), (value, value_len))? else {
        return Ok(-1);
    };
    c.data_mut().request.headers.insert(n, v);
    Ok(0)
}

fn remove_header(mut c: Caller<'_, HostState>, name: i32, name_len: i32) -> wasmtime::Result<i32> {
    let mem = memory(&c)?;
    let (data, state) = mem.data_and_store_mut(&mut c);
    let name = read_in(data, state, name, name_len)?;
    if HeaderName::from_bytes(name).is_err() {
        return Ok(-1);
    }
    state.request.headers.remove(name);
    Ok(0)
}

fn respond(mut c: Caller<'_, HostState>, status: i32, body: i32, body_len: i32) -> wasmtime::Result<i32> {
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
}

fn respond_header(
    mut c: Caller<'_, HostState>,
    name: i32,
    name_len: i32,
    value: i32,
    value_len: i32,
) -> wasmtime::Result<i32> {
    if !c.data_mut().take_edit(name_len, value_len) {
        return Ok(-1);
    }
    let Some(header) = header_in(&mut c, (name, name_len), (value, value_len))? else {
        return Ok(-1);
    };
    c.data_mut()
        .response
        .get_or_insert_with(Prepared::default)
        .headers
        .push(header);
    Ok(0)
}

fn log(mut c: Caller<'_, HostState>, level: i32, msg: i32, len: i32) -> wasmtime::Result<()> {
    let mem = memory(&c)?;
    let (data, state) = mem.data_and_store_mut(&mut c);
    let msg = read_in(data, state, msg, len.min(4096))?;
    let Some(held) = state.def.log_limit.admit(crate::stats::unix_second()) else {
        return Ok(());
    };
    // Control bytes are escaped: a message (which may carry request data)
    // never starts a line of its own or drives a terminal.
    let mut text = String::with_capacity(msg.len());
    for c in String::from_utf8_lossy(msg).chars() {
        if c.is_control() {
            text.extend(c.escape_debug());
        } else {
            text.push(c);
        }
    }
    let msg = text;
    let policy = state.def.name.as_str();
    // Lines held back by the allowance are counted on the next one let out.
    match (level, held) {
        (0, 0) => tracing::error!(policy, "{msg}"),
        (0, held) => tracing::error!(policy, suppressed = held, "{msg}"),
        (1, 0) => tracing::warn!(policy, "{msg}"),
        (1, held) => tracing::warn!(policy, suppressed = held, "{msg}"),
        (_, 0) => tracing::info!(policy, "{msg}"),
        (_, held) => tracing::info!(policy, suppressed = held, "{msg}"),
    }
    Ok(())
}
