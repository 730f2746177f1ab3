//! Write Cluster API infrastructure providers in Rust.
