// `sqlx::migrate!` embeds the SQL files at compile time; without this, adding
// a migration would not rebuild the crate and the new file would be missing.
fn main() {
    println!("cargo:rerun-if-changed=sql");
}
