// `sqlx::migrate!` embeds the migrations at compile time, but on stable Rust it cannot tell Cargo
// that it read them: without this, a new or edited migration is not built into the binary until
// some Rust file of this crate changes (sqlx's documentation gives the same build script).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
