//! An in-process Kubernetes API server, a CAPI-core simulator and a provider conformance suite.

pub mod apply;
pub mod conformance;
pub mod describe;
pub mod env;
mod gofmt;
pub mod patch;
pub mod schema;
pub mod server;
pub mod simulator;
