//! The plan artifact: versioned, digested, deterministic JSON.
//!
//! Layout (one line):
//! `{"formatVersion":3,"digest":"sha256:…","sourceDigest":"sha256:…","plan":{…}}`.
//! `digest` is the SHA-256 of the exact bytes of the `plan` value, so a damaged
//! artifact is refused before any of it is trusted.

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::Plan;

/// Bumped whenever the meaning or layout of [`Plan`] changes.
pub const FORMAT_VERSION: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("not a plan artifact: {0}")]
    NotAPlan(String),
    #[error(
        "unsupported plan formatVersion {found} (this gateway reads formatVersion {FORMAT_VERSION}); recompile the config with this gateway"
    )]
    Version { found: u64 },
    #[error("plan is damaged: digest mismatch (header says {expected}, content hashes to {actual})")]
    Digest { expected: String, actual: String },
    #[error("plan is damaged: {0}")]
    Content(String),
}

/// `sha256:` followed by the lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Serializes a plan into artifact bytes; identical plans give identical bytes.
pub fn encode(plan: &Plan, source_digest: &str) -> Vec<u8> {
    // Plan holds only Vec/struct/String/integers: serialization cannot fail and its
    // field order is the declaration order, so the output is deterministic.
    let body = serde_json::to_string(plan).unwrap_or_default();
    let digest = sha256_hex(body.as_bytes());
    let mut out = String::with_capacity(body.len() + 200);
    out.push_str("{\"formatVersion\":");
    out.push_str(&FORMAT_VERSION.to_string());
    out.push_str(",\"digest\":\"");
    out.push_str(&digest);
    out.push_str("\",\"sourceDigest\":");
    out.push_str(&serde_json::Value::from(source_digest).to_string());
    out.push_str(",\"plan\":");
    out.push_str(&body);
    out.push_str("}\n");
    out.into_bytes()
}

/// A decoded artifact: the plan plus the digests it was shipped with.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub plan: Plan,
    pub digest: String,
    pub source_digest: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    format_version: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Envelope<'a> {
    #[allow(dead_code)]
    format_version: u64,
    digest: String,
    source_digest: String,
    #[serde(borrow)]
    plan: &'a RawValue,
}

/// Reads artifact bytes, checking format version and digest before the content.
pub fn decode(bytes: &[u8]) -> Result<Decoded, ArtifactError> {
    let header: Header = serde_json::from_slice(bytes).map_err(|e| ArtifactError::NotAPlan(e.to_string()))?;
    if header.format_version != u64::from(FORMAT_VERSION) {
        return Err(ArtifactError::Version {
            found: header.format_version,
        });
    }
    let envelope: Envelope<'_> = serde_json::from_slice(bytes).map_err(|e| ArtifactError::Content(e.to_string()))?;
    let actual = sha256_hex(envelope.plan.get().as_bytes());
    if actual != envelope.digest {
        return Err(ArtifactError::Digest {
            expected: envelope.digest,
            actual,
        });
    }
    let plan: Plan = serde_json::from_str(envelope.plan.get()).map_err(|e| ArtifactError::Content(e.to_string()))?;
    Ok(Decoded {
        plan,
        digest: envelope.digest,
        source_digest: envelope.source_digest,
    })
}
