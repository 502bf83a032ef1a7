//! The compiler: `gateway.yaml` → validated [`plan::Plan`], with every problem
//! reported as a located [`Diagnostic`] (`FILE:LINE:COL: field.path: message`).
//!
//! Reading (`config`) checks each value where it stands; lowering (`lower`) checks
//! references between values and builds the plan's trees and WRR tables. Neither
//! stops at the first error.

#![forbid(unsafe_code)]

mod analysis;
pub mod cases;
mod config;
mod diag;
pub mod diff;
mod edit;
mod keys;
mod lang;
mod lower;
mod regex;
pub mod report;
mod resilience;
mod route;
mod schema;
mod syntax;
pub mod tls;
mod tls_check;
mod wasm;
mod yaml;

use std::path::Path;

pub use config::check_upstream_url;
use diag::Diagnostics;
pub use diag::{Diagnostic, Loc, Severity, did_you_mean};
use marked_yaml::{LoadError, LoaderOptions};
use plan::{Plan, sha256_hex};
pub use schema::schema;
pub use tls_check::HANDSHAKE_MS;

/// The outcome of compiling one config.
#[derive(Debug)]
pub struct Compiled {
    /// Present exactly when no diagnostic is an error.
    pub plan: Option<Plan>,
    /// Errors and warnings in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// `sha256:<hex>` of the config bytes.
    pub source_digest: String,
    /// How long the static checks (SPEC §4.10) took.
    pub analysis_time: std::time::Duration,
    /// The config text, for rendering diagnostics with their source lines.
    pub text: String,
}

impl Compiled {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Warning)
    }
}

pub(crate) fn syntax_error(diags: &mut Diagnostics, text: &str, err: &LoadError) {
    use marked_yaml::LoadError::*;
    let (marker, message): (Option<marked_yaml::Marker>, String) = match err {
        TopLevelMustBeMapping(m) => (
            Some(*m),
            "the config must be a mapping of keys (listen, routes, clusters, ...)".to_owned(),
        ),
        TopLevelMustBeSequence(m) => (Some(*m), "the document must be a sequence".to_owned()),
        UnexpectedAnchor(m) => (Some(*m), "anchors and aliases are not supported".to_owned()),
        MappingKeyMustBeScalar(m) => (Some(*m), "mapping keys must be plain names".to_owned()),
        UnexpectedTag(m) => (Some(*m), "YAML tags are not supported".to_owned()),
        ScanError(m, e) => {
            let loc = Loc {
                line: m.line() as u32,
                col: m.column() as u32,
            };
            syntax::report(diags, text, loc, e.info());
            return;
        }
        DuplicateKey(inner) => {
            let start = inner.key.span().start().copied();
            let first = inner.prev_key.span().start().map_or(0, |m| m.line());
            (
                start,
                format!("duplicate key {:?} (first at line {first})", inner.key.as_str()),
            )
        }
    };
    let loc = marker.map_or(Loc { line: 1, col: 1 }, |m| Loc {
        line: m.line() as u32,
        col: m.column() as u32,
    });
    diags.error(loc, "yaml", message);
}

/// Compiles config text. `file` names it in diagnostics; `base_dir` resolves
/// relative module paths.
pub fn compile_str(file: &str, text: &str, base_dir: &Path) -> Compiled {
    let source_digest = sha256_hex(text.as_bytes());
    let mut diags = Diagnostics::new(file);
    let text = syntax::one_document(
        text,
        &mut diags,
        "a config",
        "merge its keys into the first document, or give it a file of its own",
    );
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);
    let mut analysis_time = std::time::Duration::ZERO;
    let empty = text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    });
    let parsed = if empty {
        diags.error_help(
            Loc { line: 1, col: 1 },
            "config",
            "the config is empty",
            "a config needs at least `routes` and `clusters` (docs/configuration.md has every key)",
        );
        None
    } else {
        Some(marked_yaml::parse_yaml_with_options(0, text, options))
    };
    let plan = match parsed {
        None => None,
        Some(parsed) => match parsed {
            Ok(root) if let Some(at) = plan_artifact(&root) => {
                diags.error_help(
                    at,
                    "config",
                    "this is a plan artifact (the output of `gateway compile`), not a config",
                    "load a plan with `--plan FILE` (`run`, `explain` and `test` take it; `diff` reads either)",
                );
                None
            }
            Ok(root) => {
                let cfg = yaml::Reader {
                    diags: &mut diags,
                    text,
                }
                .config(&root);
                let source_name = Path::new(file)
                    .file_name()
                    .map_or_else(|| file.to_owned(), |n| n.to_string_lossy().into_owned());
                lower::lower(&cfg, &mut diags, &source_name, base_dir, &mut analysis_time)
            }
            Err(e) => {
                syntax_error(&mut diags, text, &e);
                None
            }
        },
    };
    Compiled {
        plan,
        diagnostics: diags.into_sorted(text),
        source_digest,
        analysis_time,
        text: text.to_owned(),
    }
}

/// A JSON plan artifact handed where a config belongs: a mapping with the
/// artifact's `formatVersion` and `plan`, neither of them a config key.
/// Where its `formatVersion` key is.
fn plan_artifact(root: &marked_yaml::Node) -> Option<Loc> {
    let map = root.as_mapping()?;
    let key = |name: &str| map.iter().find(|(k, _)| k.as_str() == name).map(|(k, _)| k);
    key("plan")?;
    key("formatVersion").map(|k| yaml::span_loc(k.span()))
}

/// Where the value at `keys` (mapping keys from the document's root, such as
/// `["admin", "listen"]`) is written in config `text`; where the deepest key
/// that exists is, when the rest is absent; `1:1` when not even the first key
/// is there or the text is not YAML. For diagnostics made outside
/// compilation, such as a reload refused for a changed address.
pub fn locate(text: &str, keys: &[&str]) -> Loc {
    let top = Loc { line: 1, col: 1 };
    let Ok(root) = marked_yaml::parse_yaml(0, text) else {
        return top;
    };
    let mut at = top;
    let mut node = &root;
    for key in keys {
        let found = node
            .as_mapping()
            .and_then(|map| map.iter().find(|(k, _)| k.as_str() == *key));
        let Some((k, v)) = found else { return at };
        at = yaml::span_loc(k.span());
        node = v;
    }
    // The whole path is there: point at its value, as compile errors do.
    match yaml::loc(node) {
        value if value.line > 0 => value,
        _ => at,
    }
}

/// Reads and compiles a config file; `Err` only when it cannot be read.
pub fn compile_file(path: &Path) -> std::io::Result<Compiled> {
    let bytes = std::fs::read(path)?;
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file = path.display().to_string();
    match String::from_utf8(bytes) {
        Ok(text) => Ok(compile_str(&file, &text, base_dir)),
        Err(e) => Ok(not_utf8(&file, e.as_bytes(), e.utf8_error().valid_up_to())),
    }
}

/// A config that is not UTF-8 (YAML text is): one error at the first byte
/// that is not, on the line and column an editor shows.
fn not_utf8(file: &str, bytes: &[u8], valid_up_to: usize) -> Compiled {
    // What precedes the bad byte is valid; the rest of its line is shown
    // with replacement characters.
    let text = String::from_utf8_lossy(bytes).into_owned();
    let before = std::str::from_utf8(&bytes[..valid_up_to]).unwrap_or_default();
    let line = before.matches('\n').count() as u32 + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
    let mut diags = Diagnostics::new(file);
    diags.error_help(
        Loc { line, col },
        "config",
        format!("the config is not UTF-8: byte 0x{:02X} here", bytes[valid_up_to]),
        "save the file as UTF-8 (YAML is Unicode text)",
    );
    Compiled {
        plan: None,
        diagnostics: diags.into_sorted(&text),
        source_digest: sha256_hex(bytes),
        analysis_time: std::time::Duration::ZERO,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::{Loc, locate};

    #[test]
    fn locate_points_at_the_value_else_the_deepest_key_present() {
        let text =
            "# a comment\nlisten: 127.0.0.1:80\nadmin:\n  listen: 127.0.0.1:9901\ntls: { listen: 0.0.0.0:8443 }\n";
        let at = |line, col| Loc { line, col };
        assert_eq!(locate(text, &["listen"]), at(2, 9));
        assert_eq!(locate(text, &["admin", "listen"]), at(4, 11));
        assert_eq!(locate(text, &["tls", "listen"]), at(5, 16));
        assert_eq!(locate(text, &["admin", "other"]), at(3, 1), "the deepest key there");
        assert_eq!(locate(text, &["accessLog", "path"]), at(1, 1), "nothing there");
        assert_eq!(locate("[unclosed", &["listen"]), at(1, 1), "not YAML");
    }
}
