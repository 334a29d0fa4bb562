//! The dependency audit. Every package in `Cargo.lock` is checked against:
//! - the RustSec advisory database, a dated snapshot of it in `audit/advisory-db/` (vulnerabilities,
//!   and the informational kinds: unmaintained, unsound, notice);
//! - the license policy of `audit/policy.toml` (SPDX expressions, as cargo-deny reads them);
//! - the one allowed source: crates.io (no git or other registries).
//!
//! It runs offline, so CI can run it: the snapshot is updated with `audit/update.sh` where GitHub
//! is reachable. An advisory can be excused only in `policy.toml`, with the reason, and by default
//! only while the crate stays out of what the `candor` binary is built from; an excuse that no
//! longer matches anything is itself a failure.

use rustsec::advisory::Informational;
use rustsec::{Database, Lockfile, Report, Warning};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::Path;
use std::str::FromStr;

/// The only registry packages may come from.
const CRATES_IO: &str = "registry+https://github.com/rust-lang/crates.io-index";
/// The package whose build is what Candor ships.
const SHIPPED_ROOT: &str = "candor";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    licenses: Vec<String>,
    #[serde(default)]
    advisory: Vec<Excuse>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Excuse {
    id: String,
    package: String,
    why: String,
    #[serde(default = "yes")]
    dev_only: bool,
}

fn yes() -> bool {
    true
}

impl Policy {
    pub fn parse(text: &str) -> Result<Policy, String> {
        let policy: Policy = toml::from_str(text).map_err(|e| format!("audit/policy.toml: {e}"))?;
        for excuse in &policy.advisory {
            if excuse.why.trim().is_empty() {
                return Err(format!(
                    "audit/policy.toml: the excuse of {} for {} says no why",
                    excuse.id, excuse.package
                ));
            }
        }
        Ok(policy)
    }

    /// Whether `expression` (a crate's `license` field) is satisfied by the allowed licenses.
    fn allows(&self, expression: &str) -> Result<bool, String> {
        let parsed = spdx::Expression::parse_mode(expression, spdx::ParseMode::LAX)
            .map_err(|e| format!("an unreadable license expression {expression:?}: {e}"))?;
        Ok(parsed.evaluate(|req| self.licenses.iter().any(|allowed| *allowed == req.to_string())))
    }
}

/// What `cargo metadata --format-version 1` says, as far as the audit reads it: every package
/// Cargo.lock holds. (Its dependency graph is not read: it lists optional dependencies that only a
/// weak feature names, such as sqlx's MySQL driver, though nothing builds them.)
#[derive(Debug, Deserialize)]
pub struct Metadata {
    packages: Vec<Package>,
}

#[derive(Debug, Deserialize)]
struct Package {
    name: String,
    version: String,
    license: Option<String>,
    source: Option<String>,
}

impl Metadata {
    pub fn parse(json: &str) -> Result<Metadata, String> {
        serde_json::from_str(json).map_err(|e| format!("cargo metadata: {e}"))
    }
}

/// The (name, version) of every package the `candor` binary is built from, read from
/// `cargo tree -p candor -e normal --prefix none --format {p}` (Cargo's own feature-resolved
/// graph for this platform: proc-macros included, build scripts' and tests' dependencies not).
pub fn shipped(tree: &str) -> BTreeSet<(String, String)> {
    tree.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let version = words.next()?.strip_prefix('v')?;
            Some((name.to_string(), version.to_string()))
        })
        .collect()
}

/// The audit's outcome: `problems` fail it.
#[derive(Debug, Default)]
pub struct Outcome {
    pub packages: usize,
    pub shipped: usize,
    pub advisories_known: usize,
    pub problems: Vec<String>,
    pub excused: Vec<String>,
}

/// Audits `lockfile` (the text of Cargo.lock) and the packages of `metadata` against `db` and
/// `policy`; `shipped` tells which packages the binary is built from.
pub fn audit(
    lockfile: &str,
    metadata: &Metadata,
    shipped: &BTreeSet<(String, String)>,
    db: &Database,
    policy: &Policy,
) -> Result<Outcome, String> {
    let lock = Lockfile::from_str(lockfile).map_err(|e| format!("Cargo.lock: {e}"))?;
    let mut out = Outcome {
        packages: lock.packages.len(),
        shipped: shipped.len(),
        advisories_known: db.iter().count(),
        ..Outcome::default()
    };

    for p in &metadata.packages {
        let at = format!("{} {}", p.name, p.version);
        match p.source.as_deref() {
            None | Some(CRATES_IO) => {}
            Some(other) => out.problems.push(format!("{at} comes from {other}, not crates.io")),
        }
        match p.license.as_deref() {
            None => out.problems.push(format!("{at} declares no SPDX license expression")),
            Some(license) => match policy.allows(license) {
                Ok(true) => {}
                Ok(false) => {
                    out.problems.push(format!("{at} is licensed {license:?}, which the policy does not allow"))
                }
                Err(e) => out.problems.push(format!("{at}: {e}")),
            },
        }
    }

    let settings = rustsec::report::Settings {
        informational_warnings: vec![Informational::Unmaintained, Informational::Unsound, Informational::Notice],
        ..Default::default()
    };
    let report = Report::generate(db, &lock, &settings);
    let mut hits: Vec<(
        &rustsec::advisory::Metadata,
        Option<&rustsec::advisory::Versions>,
        &rustsec::package::Package,
        &str,
    )> = vec![];
    for v in &report.vulnerabilities.list {
        hits.push((&v.advisory, Some(&v.versions), &v.package, "vulnerability"));
    }
    for warning in report.warnings.values().flatten() {
        let Warning { advisory: Some(advisory), package, kind, versions, .. } = warning else { continue };
        hits.push((advisory, versions.as_ref(), package, kind.as_str()));
    }
    let mut used = vec![false; policy.advisory.len()];
    for (advisory, versions, package, kind) in hits {
        let (name, version) = (package.name.as_str(), package.version.to_string());
        let in_binary = shipped.contains(&(name.to_string(), version.clone()));
        let patched = match versions.map(|v| v.patched()) {
            Some(fixed) if !fixed.is_empty() => {
                format!("fixed in {}", fixed.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(", "))
            }
            _ => "no fixed release".to_string(),
        };
        let what = format!(
            "{} ({kind}) in {name} {version}, {}: {} ({patched}; https://rustsec.org/advisories/{}.html)",
            advisory.id,
            if in_binary { "in the candor binary" } else { "in tests and tools only" },
            advisory.title,
            advisory.id
        );
        let excuse = policy.advisory.iter().position(|e| e.id == advisory.id.as_str() && e.package == name);
        match excuse {
            None => out.problems.push(what),
            Some(i) => {
                used[i] = true;
                if policy.advisory[i].dev_only && in_binary {
                    out.problems.push(format!("{what}; it is excused only outside the binary, and it is now in it"));
                } else {
                    out.excused.push(format!("{what}; excused: {}", policy.advisory[i].why.trim()));
                }
            }
        }
    }
    for (excuse, used) in policy.advisory.iter().zip(used) {
        if !used {
            out.problems.push(format!(
                "audit/policy.toml excuses {} for {}, which no package in Cargo.lock has any more: remove the excuse",
                excuse.id, excuse.package
            ));
        }
    }
    Ok(out)
}

/// Runs the audit on the workspace at `root` (`cargo` runs `cargo metadata` there).
pub fn audit_workspace(root: &Path, cargo: &str) -> Result<(String, Outcome), String> {
    let read = |path: &str| std::fs::read_to_string(root.join(path)).map_err(|e| format!("{path}: {e}"));
    let policy = Policy::parse(&read("audit/policy.toml")?)?;
    let snapshot = read("audit/advisory-db/SNAPSHOT")?.trim().to_string();
    let db = Database::open(&root.join("audit/advisory-db")).map_err(|e| format!("audit/advisory-db: {e}"))?;
    let run = |args: &[&str]| -> Result<String, String> {
        let output = std::process::Command::new(cargo)
            .args(args)
            .current_dir(root)
            .output()
            .map_err(|e| format!("cannot run {cargo}: {e}"))?;
        if !output.status.success() {
            return Err(format!("cargo {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr)));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    };
    let metadata = Metadata::parse(&run(&["metadata", "--format-version", "1", "--locked"])?)?;
    let tree = run(&["tree", "--locked", "-p", SHIPPED_ROOT, "-e", "normal", "--prefix", "none", "--format", "{p}"])?;
    let outcome = audit(&read("Cargo.lock")?, &metadata, &shipped(&tree), &db, &policy)?;
    Ok((snapshot, outcome))
}

/// The report a person reads.
pub fn render(snapshot: &str, o: &Outcome) -> String {
    let mut text = format!(
        "{} packages in Cargo.lock ({} in the candor binary), against {} advisories of {snapshot}\n",
        o.packages, o.shipped, o.advisories_known
    );
    for e in &o.excused {
        text.push_str(&format!("excused: {e}\n"));
    }
    for p in &o.problems {
        text.push_str(&format!("FAIL: {p}\n"));
    }
    if o.problems.is_empty() {
        text.push_str("no problems\n");
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const POLICY: &str = r#"licenses = ["MIT", "Apache-2.0", "Apache-2.0 WITH LLVM-exception", "Unicode-3.0"]"#;

    fn db() -> Database {
        Database::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../audit/advisory-db")).unwrap()
    }

    /// A Cargo.lock and the metadata of the same packages: rsa 0.9.10 (RUSTSEC-2023-0071, no
    /// fixed release) and a clean crate.
    fn lock_and_metadata(extra: &str) -> (String, Metadata) {
        let lock = r#"version = 4

[[package]]
name = "rsa"
version = "0.9.10"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "itoa"
version = "1.0.15"
source = "registry+https://github.com/rust-lang/crates.io-index"
"#;
        let metadata = format!(
            r#"{{"packages": [
                {{"name": "rsa", "version": "0.9.10", "license": "MIT OR Apache-2.0", "source": "{CRATES_IO}"}},
                {{"name": "itoa", "version": "1.0.15", "license": "MIT OR Apache-2.0", "source": "{CRATES_IO}"}}
                {extra}
            ]}}"#
        );
        (lock.to_string(), Metadata::parse(&metadata).unwrap())
    }

    fn run(policy: &str, shipped_names: &[&str], extra: &str) -> Outcome {
        let (lock, metadata) = lock_and_metadata(extra);
        let shipped = shipped_names
            .iter()
            .map(|n| (n.to_string(), if *n == "rsa" { "0.9.10" } else { "1.0.15" }.to_string()))
            .collect();
        audit(&lock, &metadata, &shipped, &db(), &Policy::parse(policy).unwrap()).unwrap()
    }

    #[test]
    fn license_expressions_are_read_as_spdx_with_the_old_slash_for_or() {
        let policy = Policy::parse(POLICY).unwrap();
        for ok in [
            "MIT",
            "MIT/Apache-2.0",
            "(MIT OR Apache-2.0) AND Unicode-3.0",
            "GPL-3.0 OR MIT",
            "Apache-2.0 WITH LLVM-exception",
        ] {
            assert_eq!(policy.allows(ok), Ok(true), "{ok}");
        }
        for refused in ["GPL-3.0", "MIT AND GPL-3.0", "LGPL-2.1-or-later", "BSD-3-Clause"] {
            assert_eq!(policy.allows(refused), Ok(false), "{refused}");
        }
        assert!(policy.allows("MIT ORR (").is_err());
    }

    #[test]
    fn the_shipped_set_is_read_from_cargo_tree() {
        let tree = "candor v0.1.0 (/src/crates/candor)\ntokio v1.54.1\nserde_derive v1.0.229 (proc-macro)\ntokio v1.54.1 (*)\n\n";
        let set = shipped(tree);
        assert_eq!(set.len(), 3);
        assert!(set.contains(&("tokio".to_string(), "1.54.1".to_string())));
        assert!(set.contains(&("serde_derive".to_string(), "1.0.229".to_string())));
    }

    #[test]
    fn an_advisory_fails_the_audit_unless_excused_and_an_excuse_holds_only_outside_the_binary() {
        let unexcused = run(POLICY, &[], "");
        assert_eq!(unexcused.problems.len(), 1, "{unexcused:?}");
        assert!(unexcused.problems[0].contains("RUSTSEC-2023-0071") && unexcused.problems[0].contains("rsa 0.9.10"));
        assert!(unexcused.problems[0].contains("in tests and tools only"));

        let excused = format!(
            "{POLICY}\n[[advisory]]\nid = \"RUSTSEC-2023-0071\"\npackage = \"rsa\"\nwhy = \"verification only\"\n"
        );
        let outside = run(&excused, &["itoa"], "");
        assert!(outside.problems.is_empty(), "{outside:?}");
        assert_eq!(outside.excused.len(), 1);
        assert!(outside.excused[0].ends_with("excused: verification only"));

        let inside = run(&excused, &["rsa", "itoa"], "");
        assert_eq!(inside.problems.len(), 1, "{inside:?}");
        assert!(inside.problems[0].contains("in the candor binary") && inside.problems[0].contains("now in it"));

        let accepted_in_binary = format!("{excused}dev_only = false\n");
        assert!(run(&accepted_in_binary, &["rsa"], "").problems.is_empty());
    }

    #[test]
    fn an_excuse_that_matches_nothing_and_one_without_a_why_are_refused() {
        let stale = format!(
            "{POLICY}\n[[advisory]]\nid = \"RUSTSEC-2023-0071\"\npackage = \"rsa\"\nwhy = \"w\"\n\
             [[advisory]]\nid = \"RUSTSEC-2020-0001\"\npackage = \"itoa\"\nwhy = \"w\"\n"
        );
        let outcome = run(&stale, &[], "");
        assert_eq!(outcome.problems.len(), 1, "{outcome:?}");
        assert!(outcome.problems[0].contains("RUSTSEC-2020-0001 for itoa") && outcome.problems[0].contains("remove"));

        let silent = format!("{POLICY}\n[[advisory]]\nid = \"RUSTSEC-2023-0071\"\npackage = \"rsa\"\nwhy = \" \"\n");
        assert!(Policy::parse(&silent).unwrap_err().contains("says no why"));
        assert!(Policy::parse(&format!("{POLICY}\nlicence = []\n")).is_err(), "unknown keys are refused");
    }

    #[test]
    fn other_sources_and_licenses_outside_the_policy_fail_the_audit() {
        let extra = r#",
            {"name": "forked", "version": "0.1.0", "license": "MIT", "source": "git+https://example.com/forked#abc"},
            {"name": "copyleft", "version": "2.0.0", "license": "GPL-3.0-only", "source": null},
            {"name": "unlabelled", "version": "1.0.0", "license": null, "source": null}"#;
        let excused = format!("{POLICY}\n[[advisory]]\nid = \"RUSTSEC-2023-0071\"\npackage = \"rsa\"\nwhy = \"w\"\n");
        let outcome = run(&excused, &[], extra);
        let problems = outcome.problems.join("\n");
        assert_eq!(outcome.problems.len(), 3, "{problems}");
        assert!(problems.contains("forked 0.1.0 comes from git+https://example.com/forked#abc, not crates.io"));
        assert!(problems.contains("copyleft 2.0.0 is licensed \"GPL-3.0-only\""));
        assert!(problems.contains("unlabelled 1.0.0 declares no SPDX license expression"));
    }
}
