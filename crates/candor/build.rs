//! Turns the PostgreSQL run of the integration suite on when `CANDOR_TEST_POSTGRES_URL` is set
//! at build time (`cargo test` builds and runs in one step). Nothing else depends on it.
fn main() {
    println!("cargo::rerun-if-env-changed=CANDOR_TEST_POSTGRES_URL");
    println!("cargo::rustc-check-cfg=cfg(candor_postgres_tests)");
    if std::env::var("CANDOR_TEST_POSTGRES_URL").is_ok_and(|v| !v.trim().is_empty()) {
        println!("cargo::rustc-cfg=candor_postgres_tests");
    }
}
