//! A bring-your-own-host (BYOH) Cluster API infrastructure provider, after VMware's
//! [cluster-api-provider-bringyourownhost](https://github.com/vmware-tanzu/cluster-api-provider-bringyourownhost),
//! built on [`capi_provider_sdk`].
//!
//! There is no cloud: hosts register themselves. The pieces:
//!
//! - [`api`]: the kinds, in `infrastructure.cluster.x-k8s.io/v1beta1`. [`ByoHost`] is a
//!   registered host (not a contract kind); [`ByoMachine`]/[`ByoMachineTemplate`] are the
//!   InfraMachine kinds, with an optional label `selector` choosing hosts;
//!   [`ByoCluster`]/[`ByoClusterTemplate`] the InfraCluster kinds, carrying the user's
//!   control-plane VIP.
//! - [`agent`]: what runs on each host ([`Agent`], binary `byoh-agent`): registers and
//!   heartbeats its ByoHost, runs the bootstrap data of the claim it is given (writing it to a
//!   file in place of cloud-init), cleans up after a release.
//! - [`provider`]: [`ByohProvider`], the SDK's `InfraMachine` and `InfraCluster` (binary
//!   `byoh-provider`). A ByoMachine claims a free, clean, live host matching its selector
//!   (optimistic locking on the ByoHost; the host's `spec.claim.uid` is the source of truth),
//!   points it at the Machine's bootstrap Secret, and is provisioned as `byoh://<host>` once
//!   the agent reports `bootstrapped`. No free host is a wait (`WaitingForHost` in the Ready
//!   condition), not an error. Deletion releases the claim and waits for the agent to clean up.
//!   Claims whose ByoMachine vanished without a `delete` are released by
//!   [`collect_orphans`](ByohProvider::collect_orphans), run beside the manager.
//!   By default hosts are looked for in the ByoMachine's namespace; a
//!   [`host_namespace`](ByohProvider::host_namespace) (`--host-namespace`) makes one pool serve
//!   every namespace.
//! - [`crds`]: every CRD of the crate, the contract kinds labelled for the v1beta2 contract.
//!
//! A provider and two agents, against any API server:
//!
//! ```no_run
//! use std::time::Duration;
//! use capi_provider_byoh::{Agent, ByohProvider};
//! use capi_provider_sdk::{Manager, ManagerOptions};
//!
//! # async fn run(client: kube::Client) -> Result<(), Box<dyn std::error::Error>> {
//! for (i, zone) in ["a", "b"].into_iter().enumerate() {
//!     let agent = Agent::builder(client.clone(), "hosts", format!("host-{i}"))
//!         .label("zone", zone)
//!         .heartbeat(Duration::from_secs(5))
//!         .work_dir("/var/lib/byoh")
//!         .address(format!("10.0.0.{}", i + 10))
//!         .build();
//!     tokio::spawn(agent.run());
//! }
//! let provider = ByohProvider::default().with_host_namespace("hosts");
//! tokio::spawn(provider.clone().collect_orphans(client.clone(), Duration::from_secs(30)));
//! Manager::new(client, ManagerOptions::new("byoh-provider"))
//!     .machine(provider.clone())
//!     .cluster(provider)
//!     .run()
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! The CRDs:
//!
//! ```
//! let crds = capi_provider_byoh::crds();
//! let names: Vec<_> = crds.iter().map(|c| c.spec.names.kind.as_str()).collect();
//! assert_eq!(names, ["ByoHost", "ByoMachine", "ByoMachineTemplate", "ByoCluster", "ByoClusterTemplate"]);
//! let labels = crds[1].metadata.labels.clone().unwrap_or_default();
//! assert_eq!(labels["cluster.x-k8s.io/v1beta2"], "v1beta1");
//! assert!(crds[0].metadata.labels.is_none(), "ByoHost is not a contract kind");
//! ```

pub mod agent;
pub mod api;
pub mod hash;
pub mod provider;
pub mod selector;

pub use agent::{Agent, AgentBuilder, AgentError};
pub use api::{
    ByoCluster, ByoClusterTemplate, ByoHost, ByoMachine, ByoMachineTemplate, HostClaim,
    SecretReference,
};
pub use provider::{ByohError, ByohProvider};

use capi_provider_sdk::capi_core::crd::{ContractVersionLabels, CrdError, provider_crd};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CRD of this provider: `ByoHost` (no contract label) and the contract kinds, labelled
/// `cluster.x-k8s.io/v1beta2: v1beta1`.
pub fn crds() -> Vec<CustomResourceDefinition> {
    try_crds().unwrap_or_else(|e| unreachable!("the provider's own CRDs are consistent: {e}"))
}

/// [`crds`], reporting a generation error instead of panicking.
pub fn try_crds() -> Result<Vec<CustomResourceDefinition>, CrdError> {
    let labels = ContractVersionLabels::new().with("v1beta2", [api::VERSION]);
    let mut out = vec![ByoHost::crd()];
    for crd in [
        ByoMachine::crd(),
        ByoMachineTemplate::crd(),
        ByoCluster::crd(),
        ByoClusterTemplate::crd(),
    ] {
        out.push(provider_crd(vec![crd], api::VERSION, &labels)?);
    }
    Ok(out)
}

/// The provider's name: `infrastructure-byoh` in clusterctl's terms.
pub const PROVIDER_NAME: &str = "byoh";

/// The cluster templates shipped with the provider's release, by file name.
pub const TEMPLATES: [(&str, &str); 1] = [(
    "cluster-template.yaml",
    include_str!("../templates/cluster-template.yaml"),
)];

/// The provider's least-privilege ClusterRole: the SDK's needs for its two kinds, plus
/// claiming and releasing ByoHosts (the agents run under identities of their own).
///
/// ```
/// let role = capi_provider_byoh::cluster_role("capi-byoh-manager-role");
/// assert!(role.rules.unwrap().iter().any(|r| r.resources.as_ref().unwrap().contains(&"byohosts".into())));
/// ```
pub fn cluster_role(name: &str) -> k8s_openapi::api::rbac::v1::ClusterRole {
    use capi_provider_sdk::rbac::{ClusterRoleBuilder, ResourceRef};
    use kube::Resource;
    ClusterRoleBuilder::new(name)
        .resource(ResourceRef::of::<ByoCluster>())
        .resource(ResourceRef::of::<ByoMachine>())
        .rule(k8s_openapi::api::rbac::v1::PolicyRule {
            api_groups: Some(vec![ByoHost::group(&()).into_owned()]),
            resources: Some(vec![ByoHost::plural(&()).into_owned()]),
            verbs: ["get", "list", "watch", "update", "patch"]
                .map(String::from)
                .to_vec(),
            ..Default::default()
        })
        .build()
}
