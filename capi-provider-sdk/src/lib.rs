//! Write Cluster API infrastructure providers in Rust.
pub mod backoff;
pub mod metrics;
pub mod outcome;
pub mod patch;
