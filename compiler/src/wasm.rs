//! Compile-time check of a policy module against the hook ABI v1: imports are
//! a subset of the host functions with their exact types, required exports
//! are present with their types. Every problem is reported, not just the first.

use plan::abi;
use wasmparser::{CompositeInnerType, ExternalKind, FuncType, Parser, Payload, TypeRef, ValType};

fn describe(t: &FuncType) -> String {
    let list = |v: &[ValType]| v.iter().map(|t| format!("{t}")).collect::<Vec<_>>().join(", ");
    format!("func ({}) -> ({})", list(t.params()), list(t.results()))
}

fn all_i32(t: &FuncType, params: usize, results: usize) -> bool {
    t.params().len() == params
        && t.results().len() == results
        && t.params().iter().chain(t.results()).all(|v| *v == ValType::I32)
}

/// Problems with `bytes` as an ABI v1 policy module; empty when it conforms.
pub fn check_module(bytes: &[u8]) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(e) = wasmparser::Validator::new().validate_all(bytes) {
        problems.push(format!("is not a valid WebAssembly module: {e}"));
        return problems;
    }
    let mut types: Vec<Option<FuncType>> = Vec::new();
    let mut funcs: Vec<u32> = Vec::new();
    let mut exports: Vec<(String, ExternalKind, u32)> = Vec::new();
    let mut memories = 0u32;
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else {
            problems.push("cannot be parsed".to_owned());
            return problems;
        };
        match payload {
            Payload::TypeSection(reader) => {
                for group in reader.into_iter().flatten() {
                    for sub in group.into_types() {
                        types.push(match sub.composite_type.inner {
                            CompositeInnerType::Func(f) => Some(f),
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports().flatten() {
                    let (module, name) = (import.module, import.name);
                    match import.ty {
                        TypeRef::Func(t) | TypeRef::FuncExact(t) => {
                            funcs.push(t);
                            let ty = types.get(t as usize).cloned().flatten();
                            let known = abi::HOST_FUNCTIONS.iter().find(|(n, _, _)| *n == name);
                            match (module == abi::HOST_MODULE, known, ty) {
                                (true, Some(&(_, p, r)), Some(ty)) if all_i32(&ty, p, r) => {}
                                (true, Some(&(_, p, r)), Some(ty)) => problems.push(format!(
                                    "imports \"{module}.{name}\" as {}, but the hook ABI v1 defines it with {p} i32 parameter(s) and {r} i32 result(s)",
                                    describe(&ty)
                                )),
                                _ => problems.push(format!(
                                    "imports \"{module}.{name}\", which is not in the hook ABI v1 (policies may import only functions of module \"hook\": see policies/ABI.md)"
                                )),
                            }
                        }
                        _ => problems.push(format!(
                            "imports \"{module}.{name}\", which is not a function of the hook ABI v1 (memories, tables and globals cannot be imported)"
                        )),
                    }
                }
            }
            Payload::FunctionSection(reader) => funcs.extend(reader.into_iter().flatten()),
            Payload::MemorySection(reader) => memories += reader.count(),
            Payload::ExportSection(reader) => {
                for e in reader.into_iter().flatten() {
                    exports.push((e.name.to_owned(), e.kind, e.index));
                }
            }
            _ => {}
        }
    }
    let func_type = |index: u32| {
        funcs
            .get(index as usize)
            .and_then(|&t| types.get(t as usize).cloned().flatten())
    };
    let mut require =
        |name: &str, params: usize, results: usize, optional: bool| match exports.iter().find(|(n, _, _)| n == name) {
            Some((_, ExternalKind::Func, index)) => match func_type(*index) {
                Some(ty) if all_i32(&ty, params, results) => {}
                Some(ty) => problems.push(format!(
                    "exports \"{name}\" as {}, but the hook ABI v1 requires func () -> ({})",
                    describe(&ty),
                    if results == 1 { "i32" } else { "" }
                )),
                None => problems.push(format!("exports \"{name}\" with an unknown type")),
            },
            Some(_) => problems.push(format!("exports \"{name}\", but not as a function")),
            None if optional => {}
            None => problems.push(format!(
                "does not export \"{name}\" (func () -> ({})) required by the hook ABI v1",
                if results == 1 { "i32" } else { "" }
            )),
        };
    require(abi::VERSION_EXPORT, 0, 0, false);
    require(abi::ON_REQUEST, 0, 1, false);
    require(abi::INIT, 0, 1, true);
    match exports.iter().find(|(n, _, _)| n == abi::MEMORY) {
        Some((_, ExternalKind::Memory, _)) => {}
        _ => problems.push(format!(
            "does not export its memory as \"{}\"{}",
            abi::MEMORY,
            if memories == 0 { " (it defines none)" } else { "" }
        )),
    }
    problems
}
