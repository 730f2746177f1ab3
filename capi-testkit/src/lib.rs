//! An in-process Kubernetes API server, a CAPI-core simulator and a provider conformance suite.

pub mod patch;
pub mod schema;
pub mod simulator;
