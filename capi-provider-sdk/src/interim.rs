//! INTERIM: contract vocabulary the SDK needs until capi-core's labels/bootstrap/owner modules
//! land (they are being written in parallel). Replace every use with capi-core's and delete.
#![allow(missing_docs, dead_code)]

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

pub const CLUSTER_NAME_LABEL: &str = "cluster.x-k8s.io/cluster-name";
pub const CONTROL_PLANE_LABEL: &str = "cluster.x-k8s.io/control-plane";
pub const PAUSED_ANNOTATION: &str = "cluster.x-k8s.io/paused";
pub const MANAGED_BY_ANNOTATION: &str = "cluster.x-k8s.io/managed-by";

pub fn is_control_plane_machine(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .is_some_and(|l| l.contains_key(CONTROL_PLANE_LABEL))
}

pub fn has_paused_annotation(meta: &ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(PAUSED_ANNOTATION))
}

pub fn is_externally_managed(meta: &ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MANAGED_BY_ANNOTATION))
}

pub fn owner_by_group_kind<'a>(
    meta: &'a ObjectMeta,
    group: &str,
    kind: &str,
) -> Option<&'a OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == kind && o.api_version.split_once('/').map(|(g, _)| g) == Some(group))
}

#[derive(Clone)]
pub struct BootstrapData {
    pub value: Vec<u8>,
    pub format: String,
}

impl std::fmt::Debug for BootstrapData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapData")
            .field("value", &"<redacted>")
            .field("format", &self.format)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("bootstrap data secret has no `value` key")]
    MissingValue,
}

impl BootstrapData {
    pub fn from_secret(secret: &Secret) -> Result<Self, BootstrapError> {
        let data = secret.data.as_ref();
        let value = data
            .and_then(|d| d.get("value"))
            .ok_or(BootstrapError::MissingValue)?
            .0
            .clone();
        let format = data
            .and_then(|d| d.get("format"))
            .map(|f| String::from_utf8_lossy(&f.0).into_owned())
            .unwrap_or_else(|| "cloud-config".into());
        Ok(Self { value, format })
    }
}

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Sets a metav1 condition as CAPI's `conditions.Set` does: `lastTransitionTime` moves only when
/// the status changes, times are whole seconds, `observedGeneration` is stamped.
pub fn set_condition(
    list: &mut Option<Vec<Condition>>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    let list = list.get_or_insert_with(Vec::new);
    let now = now_seconds();
    match list.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.status = status.to_owned();
                c.last_transition_time = now;
            }
            c.reason = reason.to_owned();
            c.message = message.to_owned();
            c.observed_generation = generation;
        }
        None => list.push(Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
            observed_generation: generation,
            last_transition_time: now,
        }),
    }
    list.sort_by(|a, b| {
        order(&a.type_)
            .cmp(&order(&b.type_))
            .then_with(|| a.type_.cmp(&b.type_))
    });
}

fn order(t: &str) -> u8 {
    match t {
        "Available" => 0,
        "Ready" => 1,
        "UpToDate" => 2,
        "Paused" => 8,
        "Deleting" => 9,
        _ => 5,
    }
}

pub fn get_condition<'a>(list: &'a Option<Vec<Condition>>, type_: &str) -> Option<&'a Condition> {
    list.as_ref()
        .and_then(|l| l.iter().find(|c| c.type_ == type_))
}

fn now_seconds() -> Time {
    let now = k8s_openapi::jiff::Timestamp::now();
    Time(k8s_openapi::jiff::Timestamp::from_second(now.as_second()).unwrap_or(now))
}

/// `<plural>.<group>`: simplified pluralization until capi-core's flect port lands.
pub fn crd_name(group: &str, kind: &str) -> String {
    let k = kind.to_lowercase();
    let plural = if k.ends_with('s') || k.ends_with('x') || k.ends_with("ch") || k.ends_with("sh") {
        format!("{k}es")
    } else if k.ends_with('y') && !k.ends_with("ay") && !k.ends_with("ey") && !k.ends_with("oy") {
        format!("{}ies", &k[..k.len() - 1])
    } else {
        format!("{k}s")
    };
    format!("{plural}.{group}")
}
