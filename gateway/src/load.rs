//! Loading what `gateway run`, `explain` and reload serve: a config compiled on the
//! spot or a plan artifact, always ending as a checked [`Router`].

use std::path::{Path, PathBuf};

use compiler::Diagnostic;
use plan::Router;

/// Where a plan comes from.
#[derive(Debug, Clone)]
pub enum Source {
    Config(PathBuf),
    Plan(PathBuf),
    /// `gateway demo`: a config served with a TLS listener of the demo's own
    /// (a generated certificate) when the config has none.
    Demo {
        config: PathBuf,
        tls: Box<plan::TlsListener>,
    },
}

impl Source {
    pub fn path(&self) -> &Path {
        match self {
            Source::Config(p) | Source::Plan(p) | Source::Demo { config: p, .. } => p,
        }
    }

    /// The directory that relative paths in the plan (log file, modules) resolve from.
    pub fn base_dir(&self) -> PathBuf {
        match self.path().parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// The config has errors; each is a located diagnostic.
    #[error("{}", render(.0))]
    Invalid(Vec<Diagnostic>),
    #[error("{path}: {source}")]
    Artifact { path: String, source: plan::ArtifactError },
    #[error("{path}: {source}")]
    Router { path: String, source: plan::RouterError },
}

fn render(diags: &[Diagnostic]) -> String {
    diags.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

/// A loaded plan and the warnings its compilation produced.
#[derive(Debug)]
pub struct Loaded {
    pub router: Router,
    pub warnings: Vec<Diagnostic>,
}

/// Compiles or decodes `source` into a router; every plan goes through
/// `encode`/`decode`, so a config and its artifact serve identically.
pub fn load(source: &Source) -> Result<Loaded, LoadError> {
    let path = source.path();
    let io = |e| LoadError::Io {
        path: path.display().to_string(),
        source: e,
    };
    let (bytes, warnings) = match source {
        Source::Config(p) | Source::Demo { config: p, .. } => {
            let compiled = compiler::compile_file(p).map_err(io)?;
            let Some(plan) = &compiled.plan else {
                return Err(LoadError::Invalid(compiled.diagnostics));
            };
            let warnings = compiled.warnings().cloned().collect();
            (plan::encode(plan, &compiled.source_digest), warnings)
        }
        Source::Plan(p) => (std::fs::read(p).map_err(io)?, Vec::new()),
    };
    let mut decoded = plan::decode(&bytes).map_err(|e| LoadError::Artifact {
        path: path.display().to_string(),
        source: e,
    })?;
    if let Source::Demo { tls, .. } = source {
        decoded.plan.tls.get_or_insert_with(|| (**tls).clone());
    }
    let router = Router::new(decoded).map_err(|e| LoadError::Router {
        path: path.display().to_string(),
        source: e,
    })?;
    Ok(Loaded { router, warnings })
}
