//! A Cluster API infrastructure provider for SimCloud, a simulated cloud, built on
//! [`capi_provider_sdk`].
//!
//! - [`cloud`]: the simulated cloud (zones, networks, load balancers, instances) with
//!   configurable latency, error rate, quotas and eventual consistency.
//! - [`api`]: the provider's kinds (`SimCloudCluster`, `SimCloudMachine` and templates) and CRDs.
//! - [`provider`]: the `InfraCluster` and `InfraMachine` implementations, which never leak a
//!   cloud resource whatever the cloud does.
//!
//! The binary `capi-provider-simcloud` runs it against a management cluster, with the cloud in
//! process. In a test or a demo, run it on capi-testkit's API server:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use capi_provider_sdk::{Manager, ManagerOptions};
//! use capi_provider_simcloud::{cloud::{CloudConfig, SimCloud}, provider::SimCloudProvider};
//!
//! let mut crds = capi_provider_sdk::capi_core::crd::core_crds()?;
//! crds.extend(capi_provider_simcloud::api::crds()?);
//! let env = capi_testkit::env::TestEnv::builder().crds(crds).start().await?;
//! let provider = SimCloudProvider::new(SimCloud::new(CloudConfig::default()));
//! let simulator = capi_testkit::simulator::Simulator::new(env.client()).start();
//! Manager::new(env.client(), ManagerOptions::new("capi-provider-simcloud"))
//!     .machine(provider.clone())
//!     .cluster(provider)
//!     .run()
//!     .await?;
//! # simulator.stop().await; Ok(()) }
//! ```

pub mod api;
pub mod cloud;
pub mod provider;

/// The provider's name: `infrastructure-simcloud` in clusterctl's terms.
pub const PROVIDER_NAME: &str = "simcloud";

/// The cluster templates shipped with the provider's release, by file name.
pub const TEMPLATES: [(&str, &str); 2] = [
    (
        "cluster-template.yaml",
        include_str!("../templates/cluster-template.yaml"),
    ),
    (
        "cluster-template-testkit.yaml",
        include_str!("../templates/cluster-template-testkit.yaml"),
    ),
];

/// The `testkit` flavor filled in: a Cluster named `name` in `namespace` with one
/// control-plane Machine and a MachineDeployment of `workers`, for capi-testkit's simulator.
///
/// ```
/// let yaml = capi_provider_simcloud::testkit_cluster("demo", "default", 3).unwrap();
/// assert!(yaml.contains("name: \"demo-md-0\""));
/// assert!(yaml.contains("replicas: 3"));
/// ```
pub fn testkit_cluster(
    name: &str,
    namespace: &str,
    workers: u32,
) -> Result<String, capi_provider_sdk::capi_core::template::TemplateError> {
    capi_provider_sdk::capi_core::template::substitute(TEMPLATES[1].1, |var| match var {
        "CLUSTER_NAME" => Some(name.to_owned()),
        "NAMESPACE" => Some(namespace.to_owned()),
        "KUBERNETES_VERSION" => Some("v1.34.0".to_owned()),
        "WORKER_MACHINE_COUNT" => Some(workers.to_string()),
        _ => None,
    })
}

/// The provider's least-privilege ClusterRole: what the SDK needs for its two kinds. SimCloud
/// itself is reached outside Kubernetes, so nothing is added.
///
/// ```
/// let role = capi_provider_simcloud::cluster_role("capi-simcloud-manager-role");
/// assert!(role.rules.unwrap().iter().any(|r| r.resources.as_ref().unwrap().contains(&"simcloudmachines".into())));
/// ```
pub fn cluster_role(name: &str) -> k8s_openapi::api::rbac::v1::ClusterRole {
    use capi_provider_sdk::rbac::{ClusterRoleBuilder, ResourceRef};
    ClusterRoleBuilder::new(name)
        .resource(ResourceRef::of::<api::SimCloudCluster>())
        .resource(ResourceRef::of::<api::SimCloudMachine>())
        .build()
}
