//! The audit of this workspace, as part of `cargo test --workspace`: a new dependency with an
//! advisory in the snapshot, a license outside the policy or a source other than crates.io fails
//! the tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

#[test]
fn the_workspace_passes_its_dependency_audit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let (snapshot, outcome) = candor_audit::audit_workspace(&root, &cargo).unwrap();
    let report = candor_audit::render(&snapshot, &outcome);
    eprint!("{report}");
    assert!(outcome.problems.is_empty(), "{report}");
    assert!(outcome.advisories_known > 1000, "the advisory snapshot looks truncated: {report}");
    assert!(outcome.shipped > 100 && outcome.shipped < outcome.packages, "{report}");
}
