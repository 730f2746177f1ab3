//! A cluster at a glance, as `clusterctl describe cluster` shows it: the Cluster, its
//! infrastructure, its control-plane Machines and its MachineDeployments with their Machines,
//! each with its phase and the reason its Ready condition gives.
//!
//! It reads only through the API (any provider, any server) and renders as a tree:
//!
//! ```text
//! Cluster default/demo                     Provisioned   infrastructure ✓  control plane ✓
//! ├─ SimCloudCluster demo                  Ready         endpoint demo-lb.example:6443
//! ├─ Control plane
//! │  └─ Machine demo-control-plane-0      Running       simcloud://zone-a/i-00000004
//! └─ MachineDeployment demo-md-0          2/3 ready
//!    ├─ Machine demo-md-0-7f9c-abcde      Running       simcloud://zone-b/i-00000007
//!    └─ Machine demo-md-0-7f9c-fghij      Provisioning  InstanceStarting: i-00000009 is booting
//! ```
//!
//! ```no_run
//! # async fn f(client: kube::Client) -> Result<(), capi_testkit::describe::DescribeError> {
//! if let Some(tree) = capi_testkit::describe::describe_cluster(&client, "default", "demo").await? {
//!     println!("{tree}");
//!     assert!(tree.machines().all(|m| m.phase == "Running"));
//! }
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;

use capi_core::labels;
use capi_core::v1beta2::{Cluster, Machine, MachineDeployment};
use kube::api::{Api, DynamicObject, ListParams};
use kube::{Client, ResourceExt};
use serde_json::Value;

use crate::simulator::{KindResolver, SimError};

/// Why a cluster could not be described.
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    /// A read failed.
    #[error("reading {what}: {source}")]
    Read {
        /// What was being read.
        what: String,
        /// The error.
        #[source]
        source: kube::Error,
    },
}

/// One object of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Its kind.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// A short state: a phase, `Ready`, or the Ready condition's reason.
    pub state: String,
    /// Details: an endpoint, a providerID, a waiting message.
    pub detail: String,
    /// Whether it is being deleted.
    pub deleting: bool,
}

/// A Machine and its infrastructure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineRow {
    /// The Machine's name.
    pub name: String,
    /// The Machine's phase (`Pending`, `Provisioning`, `Provisioned`, `Running`, `Deleting`…).
    pub phase: String,
    /// `spec.providerID`, once set.
    pub provider_id: Option<String>,
    /// The InfraMachine's Ready condition: status, reason and message.
    pub infra_ready: Option<(String, String, String)>,
}

/// A MachineDeployment and its Machines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRow {
    /// Its name.
    pub name: String,
    /// `spec.replicas`.
    pub desired: i32,
    /// Its Machines that are Running.
    pub running: usize,
    /// Its Machines.
    pub machines: Vec<MachineRow>,
}

/// What [`describe_cluster`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// The Cluster.
    pub cluster: Row,
    /// Whether `status.initialization.infrastructureProvisioned` is true.
    pub infrastructure_provisioned: bool,
    /// Whether `status.initialization.controlPlaneInitialized` is true.
    pub control_plane_initialized: bool,
    /// Its InfraCluster, if it has one and it exists.
    pub infrastructure: Option<Row>,
    /// Machines labelled as control plane.
    pub control_plane: Vec<MachineRow>,
    /// MachineDeployments, by name.
    pub deployments: Vec<DeploymentRow>,
    /// Machines of neither.
    pub other_machines: Vec<MachineRow>,
}

impl ClusterDescription {
    /// Every Machine of the cluster.
    pub fn machines(&self) -> impl Iterator<Item = &MachineRow> {
        self.control_plane
            .iter()
            .chain(self.deployments.iter().flat_map(|d| d.machines.iter()))
            .chain(self.other_machines.iter())
    }
}

fn read_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> DescribeError {
    let what = what.into();
    move |source| DescribeError::Read { what, source }
}

/// A unit enum's wire name (`Running`).
fn enum_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn ready_of(obj: &Value) -> Option<(String, String, String)> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            (s("status"), s("reason"), s("message"))
        })
}

/// Reads the Cluster `namespace/name` and everything belonging to it; `None` if the Cluster
/// does not exist. Provider objects are found through their CRDs' contract labels.
pub async fn describe_cluster(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<ClusterDescription>, DescribeError> {
    let clusters: Api<Cluster> = Api::namespaced(client.clone(), namespace);
    let Some(cluster) = clusters
        .get_opt(name)
        .await
        .map_err(read_err(format!("Cluster {namespace}/{name}")))?
    else {
        return Ok(None);
    };
    let selector = ListParams::default().labels(&format!("{}={name}", labels::CLUSTER_NAME));
    let machines = Api::<Machine>::namespaced(client.clone(), namespace)
        .list(&selector)
        .await
        .map_err(read_err("Machines"))?
        .items;
    let deployments = Api::<MachineDeployment>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .map_err(read_err("MachineDeployments"))?
        .items
        .into_iter()
        .filter(|d| d.spec.cluster_name == name)
        .collect::<Vec<_>>();

    // Provider objects, listed once per kind.
    let resolver = KindResolver::default();
    let mut infra: BTreeMap<(String, String), BTreeMap<String, Value>> = BTreeMap::new();
    let mut refs: Vec<(String, String)> = machines
        .iter()
        .map(|m| {
            let r = &m.spec.infrastructure_ref;
            (r.api_group.clone(), r.kind.clone())
        })
        .collect();
    if let Some(r) = &cluster.spec.infrastructure_ref {
        refs.push((r.api_group.clone(), r.kind.clone()));
    }
    refs.sort();
    refs.dedup();
    for (group, kind) in refs {
        let objects = match resolver.resolve(client, &group, &kind).await {
            Ok(k) => Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &k.resource)
                .list(&ListParams::default())
                .await
                .map_err(read_err(format!("{kind} objects")))?
                .items
                .into_iter()
                .filter_map(|o| Some((o.name_any(), serde_json::to_value(o).ok()?)))
                .collect(),
            // A kind whose CRD is missing or unlabelled shows as absent.
            Err(SimError::Unresolvable { .. }) => BTreeMap::new(),
            Err(SimError::Kube(source)) => return Err(DescribeError::Read { what: kind, source }),
            Err(_) => BTreeMap::new(),
        };
        infra.insert((group, kind), objects);
    }
    let infra_of = |group: &str, kind: &str, name: &str| {
        infra
            .get(&(group.to_owned(), kind.to_owned()))
            .and_then(|m| m.get(name))
    };

    let row_of = |m: &Machine| {
        let r = &m.spec.infrastructure_ref;
        MachineRow {
            name: m.name_any(),
            phase: m
                .status
                .as_ref()
                .and_then(|s| s.phase.as_ref())
                .map_or_else(|| "Pending".into(), enum_name),
            provider_id: m.spec.provider_id.clone(),
            infra_ready: infra_of(&r.api_group, &r.kind, &r.name).and_then(ready_of),
        }
    };

    let mut control_plane = Vec::new();
    let mut by_deployment: BTreeMap<String, Vec<MachineRow>> = BTreeMap::new();
    let mut other_machines = Vec::new();
    for m in &machines {
        let row = row_of(m);
        if labels::is_control_plane_machine(&m.metadata) {
            control_plane.push(row);
        } else if let Some(d) = m.labels().get(labels::DEPLOYMENT_NAME) {
            by_deployment.entry(d.clone()).or_default().push(row);
        } else {
            other_machines.push(row);
        }
    }
    let mut deployment_rows: Vec<DeploymentRow> = deployments
        .iter()
        .map(|d| {
            let machines = by_deployment.remove(&d.name_any()).unwrap_or_default();
            DeploymentRow {
                name: d.name_any(),
                desired: d.spec.replicas.unwrap_or(1),
                running: machines.iter().filter(|m| m.phase == "Running").count(),
                machines,
            }
        })
        .collect();
    deployment_rows.sort_by(|a, b| a.name.cmp(&b.name));
    // Machines of a deployment that is already gone.
    other_machines.extend(by_deployment.into_values().flatten());

    let init = cluster
        .status
        .as_ref()
        .and_then(|s| s.initialization.as_ref());
    let infrastructure_provisioned = init.and_then(|i| i.infrastructure_provisioned) == Some(true);
    let control_plane_initialized = init.and_then(|i| i.control_plane_initialized) == Some(true);
    let infrastructure = cluster.spec.infrastructure_ref.as_ref().and_then(|r| {
        let obj = infra_of(&r.api_group, &r.kind, &r.name)?;
        let ready = ready_of(obj);
        let endpoint = &obj["spec"]["controlPlaneEndpoint"];
        let detail = match (endpoint["host"].as_str(), endpoint["port"].as_i64()) {
            (Some(h), Some(p)) if !h.is_empty() => format!("endpoint {h}:{p}"),
            _ => ready.as_ref().map(|r| r.2.clone()).unwrap_or_default(),
        };
        Some(Row {
            kind: r.kind.clone(),
            name: r.name.clone(),
            state: match &ready {
                Some((s, _, _)) if s == "True" => "Ready".into(),
                Some((_, reason, _)) => reason.clone(),
                None => "Pending".into(),
            },
            detail,
            deleting: obj["metadata"]["deletionTimestamp"].is_string(),
        })
    });
    let phase = cluster
        .status
        .as_ref()
        .and_then(|s| s.phase.as_ref())
        .map_or_else(|| "Pending".into(), enum_name);
    Ok(Some(ClusterDescription {
        cluster: Row {
            kind: "Cluster".into(),
            name: format!("{namespace}/{name}"),
            state: phase,
            detail: String::new(),
            deleting: cluster.metadata.deletion_timestamp.is_some(),
        },
        infrastructure_provisioned,
        control_plane_initialized,
        infrastructure,
        control_plane,
        deployments: deployment_rows,
        other_machines,
    }))
}

const NAME_WIDTH: usize = 44;

fn line(
    f: &mut fmt::Formatter<'_>,
    prefix: &str,
    label: &str,
    state: &str,
    detail: &str,
) -> fmt::Result {
    let label = format!("{prefix}{label}");
    let pad = NAME_WIDTH.saturating_sub(label.chars().count()).max(1);
    writeln!(f, "{label}{:pad$}{state:<14}{detail}", "")
}

fn machine_line(f: &mut fmt::Formatter<'_>, prefix: &str, m: &MachineRow) -> fmt::Result {
    let detail = match (&m.infra_ready, &m.provider_id) {
        (Some((s, _, _)), Some(id)) if s == "True" => id.clone(),
        (Some((_, reason, message)), _) if message.is_empty() => reason.clone(),
        (Some((_, reason, message)), _) => format!("{reason}: {message}"),
        (None, Some(id)) => id.clone(),
        (None, None) => String::new(),
    };
    line(f, prefix, &format!("Machine {}", m.name), &m.phase, &detail)
}

fn check(b: bool) -> &'static str {
    if b { "✓" } else { "…" }
}

impl fmt::Display for ClusterDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.cluster;
        let state = if c.deleting { "Deleting" } else { &c.state };
        line(
            f,
            "",
            &format!("Cluster {}", c.name),
            state,
            &format!(
                "infrastructure {}  control plane {}",
                check(self.infrastructure_provisioned),
                check(self.control_plane_initialized)
            ),
        )?;
        let mut sections = Vec::new();
        if let Some(i) = &self.infrastructure {
            sections.push(Section::Infrastructure(i));
        }
        if !self.control_plane.is_empty() {
            sections.push(Section::Machines {
                title: "Control plane".into(),
                state: String::new(),
                machines: &self.control_plane,
            });
        }
        for d in &self.deployments {
            sections.push(Section::Machines {
                title: format!("MachineDeployment {}", d.name),
                state: format!("{}/{} running", d.running, d.desired),
                machines: &d.machines,
            });
        }
        if !self.other_machines.is_empty() {
            sections.push(Section::Machines {
                title: "Other machines".into(),
                state: String::new(),
                machines: &self.other_machines,
            });
        }
        let n = sections.len();
        for (i, section) in sections.iter().enumerate() {
            let last = i + 1 == n;
            let (head, cont) = if last {
                ("└─ ", "   ")
            } else {
                ("├─ ", "│  ")
            };
            match section {
                Section::Infrastructure(r) => {
                    let state = if r.deleting { "Deleting" } else { &r.state };
                    line(f, head, &format!("{} {}", r.kind, r.name), state, &r.detail)?;
                }
                Section::Machines {
                    title,
                    state,
                    machines,
                } => {
                    line(f, head, title, state, "")?;
                    for (j, m) in machines.iter().enumerate() {
                        let branch = if j + 1 == machines.len() {
                            "└─ "
                        } else {
                            "├─ "
                        };
                        machine_line(f, &format!("{cont}{branch}"), m)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// One branch under the Cluster.
enum Section<'a> {
    Infrastructure(&'a Row),
    Machines {
        title: String,
        state: String,
        machines: &'a [MachineRow],
    },
}
