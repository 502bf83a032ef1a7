//! How the compile step scales with regex routes (issue: routing language
//! v2): for 1,000 and 10,000 regex routes (`/svc{i}/items/[0-9]+`) plus
//! 10,000 prefix routes, the compile time, the static analysis time within
//! it, the plan artifact's size, and the gateway's load time (decode, DFA
//! validation, runtime indexes). Prints one Markdown table row per size.
//!
//! Usage: `plan-scale [REGEX_ROUTES...]` (default 1000 10000).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

fn config(regexes: usize, prefixes: usize) -> String {
    let mut y = String::from("accessLog: { enabled: false }\nroutes:\n");
    for i in 0..regexes {
        let _ = writeln!(
            y,
            "  - {{ name: re{i}, pathRegex: \"/svc{i}/items/[0-9]+\", cluster: c }}"
        );
    }
    for i in 0..prefixes {
        let host = [
            format!("svc{i}.example.com"),
            format!("\"*.t{i}.example.com\""),
            "\"*\"".to_owned(),
        ][i % 3]
            .clone();
        let prefix: String = (0..1 + i % 6).map(|d| format!("/s{}", (i + d) % 97)).collect();
        let _ = writeln!(
            y,
            "  - {{ name: p{i}, host: {host}, pathPrefix: {prefix}/r{i}, cluster: c }}"
        );
    }
    y.push_str("  - { name: default, pathPrefix: /, cluster: c }\n");
    y.push_str("clusters:\n  - { name: c, upstreams: [{ url: \"http://127.0.0.1:9\" }] }\n");
    y
}

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1000, 10_000] } else { sizes };
    println!(
        "| regex routes | prefix routes | compile s | of which static analysis s | plan MiB | load ms | warnings |"
    );
    println!("|---|---|---|---|---|---|---|");
    for n in sizes {
        let text = config(n, 10_000);
        let started = Instant::now();
        let compiled = compiler::compile_str("scale.yaml", &text, Path::new("."));
        let compile = started.elapsed();
        let Some(plan) = &compiled.plan else {
            let errors: Vec<String> = compiled.errors().take(3).map(ToString::to_string).collect();
            println!("| {n} | 10000 | refused: {} |", errors.join("; "));
            continue;
        };
        let bytes = plan::encode(plan, &compiled.source_digest);
        // Load as `gateway run --plan` does: decode (digest checked), then the
        // router (every index checked, every DFA deserialized and validated).
        let mut best = f64::MAX;
        for _ in 0..5 {
            let started = Instant::now();
            let decoded = plan::decode(&bytes).unwrap_or_else(|e| panic!("decode: {e}"));
            let router = plan::Router::new(decoded).unwrap_or_else(|e| panic!("load: {e}"));
            best = best.min(started.elapsed().as_secs_f64() * 1000.0);
            std::hint::black_box(router);
        }
        println!(
            "| {n} | 10000 | {:.2} | {:.3} | {:.2} | {best:.0} | {} |",
            compile.as_secs_f64(),
            compiled.analysis_time.as_secs_f64(),
            bytes.len() as f64 / f64::from(1u32 << 20),
            compiled.warnings().count()
        );
    }
}
