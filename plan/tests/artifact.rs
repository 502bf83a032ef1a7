//! The plan artifact: deterministic bytes, refused when damaged or from another format version.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use plan::reference as support;

use plan::{ArtifactError, FORMAT_VERSION, decode, encode};

fn sample() -> Vec<u8> {
    let r = support::router(&[(Some("a.example.com"), "/x"), (None, "/")]);
    encode(r.plan(), "sha256:source")
}

#[test]
fn encoding_is_deterministic_and_round_trips() {
    let a = sample();
    let b = sample();
    assert_eq!(a, b);
    let decoded = decode(&a).expect("decodes");
    assert_eq!(decoded.source_digest, "sha256:source");
    assert_eq!(encode(&decoded.plan, "sha256:source"), a);
}

#[test]
fn a_damaged_plan_is_refused() {
    let mut bytes = sample();
    let text = String::from_utf8(bytes.clone()).expect("utf8");
    let at = text.find("\"/x\"").expect("prefix present");
    bytes[at + 2] = b'y';
    match decode(&bytes) {
        Err(ArtifactError::Digest { .. }) => {}
        other => panic!("expected a digest error, got {other:?}"),
    }
    assert!(matches!(decode(b"not json"), Err(ArtifactError::NotAPlan(_))));
    assert!(matches!(
        decode(&bytes[..bytes.len() / 2]),
        Err(ArtifactError::NotAPlan(_))
    ));
}

#[test]
fn another_format_version_is_refused_by_name() {
    let text = String::from_utf8(sample()).expect("utf8");
    let other = text.replacen(
        &format!("\"formatVersion\":{FORMAT_VERSION}"),
        "\"formatVersion\":99",
        1,
    );
    let err = decode(other.as_bytes()).expect_err("refused");
    assert!(matches!(err, ArtifactError::Version { found: 99 }), "{err:?}");
    assert!(err.to_string().contains("unsupported plan formatVersion 99"), "{err}");
}

#[test]
fn regex_plans_are_deterministic_and_a_truncated_dfa_is_refused_at_load() {
    use plan::PathMatch;
    use support::Spec;
    let specs = [
        Spec::new(None, PathMatch::Regex("/users/[0-9]+".into())),
        Spec::new(Some("*.example.com"), PathMatch::Regex("/(a|b)/.*".into())),
    ];
    let a = encode(&support::plan(&specs), "sha256:s");
    assert_eq!(a, encode(&support::plan(&specs), "sha256:s"));
    let mut plan = decode(&a).expect("decodes").plan;
    let dfa = &mut plan.regexes[0].dfa;
    dfa.truncate(dfa.len() / 2 / 4 * 4);
    // A consistent digest, so only the DFA's own validation stands between
    // the damaged table and the request path.
    let damaged = decode(&encode(&plan, "sha256:s")).expect("digest is consistent");
    let err = plan::Router::new(damaged).expect_err("refused");
    assert!(err.to_string().contains("regex 0"), "{err}");
}
