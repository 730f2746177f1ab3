//! The `capi-testkit` command.
fn main() {}
