//! `gateway diff OLD NEW`: prints what a rollout changes (SPEC §13), as
//! text, JSON or Markdown (for a pull-request comment).

use std::fmt::Write as _;

use compiler::diff::Diff;

fn list(out: &mut String, label: &str, items: &[String]) {
    if !items.is_empty() {
        let _ = writeln!(out, "{label}: {}", items.join(", "));
    }
}

/// Plain text.
pub fn text(d: &Diff) -> String {
    let mut out = String::new();
    list(&mut out, "routes added", &d.routes_added);
    list(&mut out, "routes removed", &d.routes_removed);
    for c in &d.routes_changed {
        let _ = writeln!(out, "route changed: {} ({})", c.name, c.fields.join(", "));
    }
    list(&mut out, "clusters added", &d.clusters_added);
    list(&mut out, "clusters removed", &d.clusters_removed);
    for c in &d.clusters_changed {
        let _ = writeln!(out, "cluster changed: {} ({})", c.name, c.fields.join(", "));
        for s in d.shares.iter().filter(|s| s.cluster == c.name) {
            let _ = writeln!(out, "  {}  {:.1}% -> {:.1}%", s.upstream, s.before, s.after);
        }
    }
    if !d.moved.is_empty() {
        let _ = writeln!(out, "requests that change destination:");
        for m in &d.moved {
            let headers: String = m.headers.iter().map(|(n, v)| format!(" -H '{n}: {v}'")).collect();
            let _ = writeln!(out, "  {} {}{headers}", m.method, m.url);
            let _ = writeln!(out, "    before: {}", m.before);
            let _ = writeln!(out, "    after:  {}", m.after);
        }
    }
    if d.same_routing() {
        out.push_str("no change in routing\n");
    }
    list(&mut out, "other settings changed", &d.other);
    out
}

/// One JSON object.
pub fn json(d: &Diff) -> String {
    let changed = |c: &[compiler::diff::Changed]| -> Vec<serde_json::Value> {
        c.iter()
            .map(|c| serde_json::json!({ "name": c.name, "fields": c.fields }))
            .collect()
    };
    serde_json::json!({
        "sameRouting": d.same_routing(),
        "routes": { "added": d.routes_added, "removed": d.routes_removed, "changed": changed(&d.routes_changed) },
        "clusters": { "added": d.clusters_added, "removed": d.clusters_removed, "changed": changed(&d.clusters_changed) },
        "shares": d.shares.iter().map(|s| serde_json::json!({
            "cluster": s.cluster, "upstream": s.upstream, "before": s.before, "after": s.after,
        })).collect::<Vec<_>>(),
        "requests": d.moved.iter().map(|m| serde_json::json!({
            "method": m.method, "url": m.url, "headers": m.headers, "before": m.before, "after": m.after,
        })).collect::<Vec<_>>(),
        "other": d.other,
    })
    .to_string()
        + "\n"
}

fn md(s: &str) -> String {
    s.replace('|', "\\|")
}

/// Markdown, for a review comment.
pub fn markdown(d: &Diff) -> String {
    let mut out = String::from("### Routing changes\n\n");
    if d.same_routing() {
        out.push_str("No change in routing.\n");
    }
    for (label, items) in [
        ("Routes added", &d.routes_added),
        ("Routes removed", &d.routes_removed),
        ("Clusters added", &d.clusters_added),
        ("Clusters removed", &d.clusters_removed),
    ] {
        if !items.is_empty() {
            let names: Vec<String> = items.iter().map(|n| format!("`{n}`")).collect();
            let _ = writeln!(out, "- **{label}**: {}", names.join(", "));
        }
    }
    for c in &d.routes_changed {
        let _ = writeln!(out, "- **Route changed**: `{}` ({})", c.name, c.fields.join(", "));
    }
    if !d.shares.is_empty() {
        out.push_str("\n| cluster | upstream | before | after |\n|---|---|---|---|\n");
        for s in &d.shares {
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {:.1}% | {:.1}% |",
                s.cluster, s.upstream, s.before, s.after
            );
        }
    }
    if !d.moved.is_empty() {
        out.push_str("\n| request | before | after |\n|---|---|---|\n");
        for m in &d.moved {
            let headers: String = m.headers.iter().map(|(n, v)| format!(" `{n}: {v}`")).collect();
            let _ = writeln!(
                out,
                "| `{} {}`{} | {} | {} |",
                m.method,
                m.url,
                md(&headers),
                md(&m.before),
                md(&m.after)
            );
        }
    }
    if !d.other.is_empty() {
        let _ = writeln!(out, "\nOther settings changed: {}", d.other.join(", "));
    }
    out
}
