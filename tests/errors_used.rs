//! Every code of the closed set in api.md is produced somewhere outside
//! `error.rs` (after Lemmy's `test_errors_used.rs`). Codes whose producers
//! arrive with a later issue are listed as pending; the test fails as soon as
//! one of them is produced, so the list cannot go stale.

#![allow(clippy::unwrap_used)]

use contest_backend::error::ErrorCode;

/// Codes not produced yet, with the issue that brings them.
const PENDING: &[(ErrorCode, &str)] = &[];

fn sources(dir: &std::path::Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("error.rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn every_error_code_is_produced_or_pending_with_its_issue() {
    let mut src = String::new();
    sources(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut src,
    );
    for code in ErrorCode::ALL {
        let mut spellings = vec![format!("ErrorCode::{code:?}")];
        match code {
            ErrorCode::Internal => spellings.push("ApiError::internal(".into()),
            ErrorCode::ServiceUnavailable => spellings.push("ApiError::unavailable(".into()),
            ErrorCode::ValidationFailed => spellings.push("ApiError::validation(".into()),
            _ => {}
        }
        let used = spellings.iter().any(|s| src.contains(s.as_str()));
        let pending = PENDING.iter().find(|(c, _)| *c == code);
        match (used, pending) {
            (true, None) | (false, Some(_)) => {}
            (false, None) => panic!("{code} is never produced"),
            (true, Some((_, issue))) => {
                panic!("{code} is produced now: remove it from PENDING ({issue})")
            }
        }
    }
}
