//! `cargo run -p candor-audit`: the dependency audit of this workspace (see the library's
//! documentation). Exits 1 if it finds a problem.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    match candor_audit::audit_workspace(&root, &cargo) {
        Ok((snapshot, outcome)) => {
            print!("{}", candor_audit::render(&snapshot, &outcome));
            if outcome.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => {
            eprintln!("candor-audit: {e}");
            ExitCode::FAILURE
        }
    }
}
