//! Config compilation never panics (regexes, conditions, actions and filters
//! included), every diagnostic is located, and a config that compiles
//! round-trips through the artifact into a router whose lookup and trace agree.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let compiled = compiler::compile_str("fuzz.yaml", text, Path::new("/nonexistent-fuzz-dir"));
    for d in &compiled.diagnostics {
        assert!(d.loc.line >= 1 && d.loc.col >= 1, "unlocated diagnostic: {d}");
        assert!(!d.path.is_empty(), "diagnostic without a field path: {d}");
    }
    if let Some(plan) = &compiled.plan {
        assert!(compiled.errors().next().is_none());
        let bytes = plan::encode(plan, &compiled.source_digest);
        let decoded = plan::decode(&bytes).expect("a compiled plan decodes");
        let router = plan::Router::new(decoded).expect("a compiled plan loads");
        let request = plan::OwnedRequest {
            method: "GET".into(),
            headers: vec![("x-version".into(), "2".into())],
            query: Some("a=1".into()),
        };
        for path in ["/", "/api/v1", "/users/42"] {
            let found = router.lookup("example.com", path, &request);
            assert_eq!(router.trace("example.com", path, &request).winner, found);
        }
    }
});
