//! An in-process Kubernetes API server, a CAPI-core simulator and a provider conformance suite.

pub mod conformance;
pub mod patch;
pub mod schema;
pub mod simulator;
