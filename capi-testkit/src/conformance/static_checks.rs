//! Layer 1 of the conformance suite: static checks of a provider's CRDs and release files
//! (capi-contract.md 11.2), no server needed.
//!
//! Every finding names the contract clause it enforces, so a failure reads as "what to fix".
//!
//! ```
//! use capi_testkit::conformance::static_checks::{check_metadata, Severity};
//! let findings = check_metadata("apiVersion: clusterctl.cluster.x-k8s.io/v1alpha3\nkind: Metadata\nreleaseSeries: []\n");
//! assert!(findings.iter().any(|f| f.clause == "metadata.release-series" && f.severity == Severity::Error));
//! ```

use std::collections::BTreeSet;

use capi_core::contract::{ContractVersion, select_version};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::Value;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// CAPI or clusterctl will not work with this.
    Error,
    /// Works, but against the contract's recommendations.
    Warning,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The contract clause, e.g. `crd.contract-label`.
    pub clause: &'static str,
    /// What was checked: a CRD name, a file, an object.
    pub subject: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// Error or warning.
    pub severity: Severity,
}

fn error(clause: &'static str, subject: &str, message: impl Into<String>) -> Finding {
    Finding {
        clause,
        subject: subject.to_owned(),
        message: message.into(),
        severity: Severity::Error,
    }
}

fn warning(clause: &'static str, subject: &str, message: impl Into<String>) -> Finding {
    Finding {
        clause,
        subject: subject.to_owned(),
        message: message.into(),
        severity: Severity::Warning,
    }
}

/// The role a provider kind plays in the contract, from its kind name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `<X>Cluster`.
    InfraCluster,
    /// `<X>Machine`.
    InfraMachine,
    /// `<X>MachineTemplate`.
    InfraMachineTemplate,
    /// `<X>ClusterTemplate`.
    InfraClusterTemplate,
    /// `<X>MachinePool`.
    InfraMachinePool,
    /// Anything else (helper kinds such as identities).
    Other,
}

impl Role {
    /// The role by naming convention (capi-contract.md 2.1).
    pub fn of_kind(kind: &str) -> Self {
        if kind.ends_with("MachineTemplate") {
            Self::InfraMachineTemplate
        } else if kind.ends_with("ClusterTemplate") {
            Self::InfraClusterTemplate
        } else if kind.ends_with("MachinePool") {
            Self::InfraMachinePool
        } else if kind.ends_with("Machine") {
            Self::InfraMachine
        } else if kind.ends_with("Cluster") {
            Self::InfraCluster
        } else {
            Self::Other
        }
    }
}

/// Checks a provider's CRDs: naming, scope, contract labels, subresources and contract fields.
pub fn check_crds(crds: &[CustomResourceDefinition]) -> Vec<Finding> {
    let mut out = Vec::new();
    for crd in crds {
        check_crd(crd, &mut out);
    }
    let roles: BTreeSet<_> = crds
        .iter()
        .map(|c| format!("{:?}", Role::of_kind(&c.spec.names.kind)))
        .collect();
    if roles.contains("InfraMachine") && !roles.contains("InfraMachineTemplate") {
        out.push(error("crd.machine-template", "CRDs", "an InfraMachine kind needs an InfraMachineTemplate kind (<Kind>Template): MachineSets clone it"));
    }
    out
}

fn check_crd(crd: &CustomResourceDefinition, out: &mut Vec<Finding>) {
    let name = crd.metadata.name.clone().unwrap_or_default();
    let kind = &crd.spec.names.kind;
    let role = Role::of_kind(kind);
    if role == Role::Other {
        return;
    }
    if crd.spec.scope != "Namespaced" {
        out.push(error(
            "crd.scope",
            &name,
            format!(
                "scope is {}; contract kinds must be Namespaced",
                crd.spec.scope
            ),
        ));
    }
    let expected = format!("{}.{}", capi_core::naming::plural(kind), crd.spec.group);
    if name != expected {
        out.push(error("crd.name", &name, format!("CAPI computes the CRD name {expected} from the kind (flect pluralization); clusterctl refuses a mismatch")));
    }
    if crd.spec.names.list_kind.as_deref() != Some(&format!("{kind}List")) {
        out.push(error(
            "crd.list-kind",
            &name,
            format!("listKind must be {kind}List"),
        ));
    }
    let labels = crd.metadata.labels.clone().unwrap_or_default();
    let Some((contract, version)) = select_version(&labels) else {
        out.push(error("crd.contract-label", &name, "no cluster.x-k8s.io/v1beta2 (or v1beta1) label: CAPI cannot pick an API version (\"cannot find any versions matching contract versions\")"));
        return;
    };
    for (key, value) in labels
        .iter()
        .filter(|(k, _)| k.starts_with("cluster.x-k8s.io/v1"))
    {
        for v in value.split('_') {
            if !crd.spec.versions.iter().any(|cv| cv.name == v && cv.served) {
                out.push(error(
                    "crd.contract-label",
                    &name,
                    format!("label {key}={value} names version {v}, which the CRD does not serve"),
                ));
            }
        }
    }
    let Some(served) = crd.spec.versions.iter().find(|v| v.name == version) else {
        return;
    };
    let needs_status = matches!(
        role,
        Role::InfraCluster | Role::InfraMachine | Role::InfraMachinePool
    );
    if needs_status
        && served
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_none()
    {
        out.push(error(
            "crd.status-subresource",
            &name,
            format!("version {version} has no status subresource"),
        ));
    }
    let Some(root) = served
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
    else {
        out.push(error(
            "crd.schema",
            &name,
            format!("version {version} has no schema"),
        ));
        return;
    };
    let subject = format!("{name} {version}");
    match role {
        Role::InfraMachine => machine_fields(root, contract, &subject, out),
        Role::InfraCluster => cluster_fields(root, contract, &subject, out),
        Role::InfraMachineTemplate | Role::InfraClusterTemplate => {
            template_fields(root, &subject, out)
        }
        Role::InfraMachinePool => provisioned_field(root, contract, &subject, out),
        Role::Other => {}
    }
    conditions_field(root, contract, &subject, out);
}

fn at<'a>(schema: &'a JSONSchemaProps, path: &str) -> Option<&'a JSONSchemaProps> {
    path.split('.').try_fold(schema, |s, seg| {
        if seg == "[]" {
            match s.items.as_ref()? {
                JSONSchemaPropsOrArray::Schema(i) => Some(i.as_ref()),
                JSONSchemaPropsOrArray::Schemas(_) => None,
            }
        } else if seg == "{}" {
            match s.additional_properties.as_ref()? {
                JSONSchemaPropsOrBool::Schema(a) => Some(a.as_ref()),
                JSONSchemaPropsOrBool::Bool(_) => None,
            }
        } else {
            s.properties.as_ref()?.get(seg)
        }
    })
}

fn expect_type(
    root: &JSONSchemaProps,
    path: &str,
    ty: &str,
    clause: &'static str,
    required: bool,
    subject: &str,
    out: &mut Vec<Finding>,
) {
    match at(root, path) {
        None if required => out.push(error(
            clause,
            subject,
            format!("{path} is missing (contract: {ty})"),
        )),
        None => {}
        Some(s) if s.type_.as_deref() != Some(ty) => {
            out.push(error(
                clause,
                subject,
                format!(
                    "{path} has type {:?}; the contract reads a {ty}",
                    s.type_.as_deref().unwrap_or("(none)")
                ),
            ));
        }
        Some(_) => {}
    }
}

fn provisioned_field(
    root: &JSONSchemaProps,
    contract: ContractVersion,
    subject: &str,
    out: &mut Vec<Finding>,
) {
    match contract {
        ContractVersion::V1Beta2 => expect_type(
            root,
            "status.initialization.provisioned",
            "boolean",
            "fields.provisioned",
            true,
            subject,
            out,
        ),
        ContractVersion::V1Beta1 => expect_type(
            root,
            "status.ready",
            "boolean",
            "fields.provisioned",
            true,
            subject,
            out,
        ),
    }
}

fn machine_fields(
    root: &JSONSchemaProps,
    contract: ContractVersion,
    subject: &str,
    out: &mut Vec<Finding>,
) {
    expect_type(
        root,
        "spec.providerID",
        "string",
        "fields.provider-id",
        true,
        subject,
        out,
    );
    provisioned_field(root, contract, subject, out);
    expect_type(
        root,
        "status.failureDomain",
        "string",
        "fields.failure-domain",
        false,
        subject,
        out,
    );
    if at(root, "status.addresses").is_some() {
        expect_type(
            root,
            "status.addresses",
            "array",
            "fields.addresses",
            true,
            subject,
            out,
        );
        expect_type(
            root,
            "status.addresses.[].address",
            "string",
            "fields.addresses",
            true,
            subject,
            out,
        );
        expect_type(
            root,
            "status.addresses.[].type",
            "string",
            "fields.addresses",
            true,
            subject,
            out,
        );
        let allowed = [
            "Hostname",
            "ExternalIP",
            "InternalIP",
            "ExternalDNS",
            "InternalDNS",
        ];
        if let Some(values) = at(root, "status.addresses.[].type").and_then(|t| t.enum_.as_ref()) {
            for v in values {
                if !v.0.as_str().is_some_and(|s| allowed.contains(&s)) {
                    out.push(error(
                        "fields.addresses",
                        subject,
                        format!("address type {} is not one of {allowed:?}", v.0),
                    ));
                }
            }
        }
    } else {
        out.push(warning(
            "fields.addresses",
            subject,
            "no status.addresses: CAPI will not know the machine's addresses",
        ));
    }
}

fn cluster_fields(
    root: &JSONSchemaProps,
    contract: ContractVersion,
    subject: &str,
    out: &mut Vec<Finding>,
) {
    expect_type(
        root,
        "spec.controlPlaneEndpoint",
        "object",
        "fields.control-plane-endpoint",
        true,
        subject,
        out,
    );
    expect_type(
        root,
        "spec.controlPlaneEndpoint.host",
        "string",
        "fields.control-plane-endpoint",
        true,
        subject,
        out,
    );
    expect_type(
        root,
        "spec.controlPlaneEndpoint.port",
        "integer",
        "fields.control-plane-endpoint",
        true,
        subject,
        out,
    );
    provisioned_field(root, contract, subject, out);
    let Some(fd) = at(root, "status.failureDomains") else {
        return;
    };
    match contract {
        ContractVersion::V1Beta2 => {
            if fd.type_.as_deref() != Some("array") {
                out.push(error("fields.failure-domains", subject, "v1beta2 contract: status.failureDomains is a list of {name, controlPlane, attributes}"));
                return;
            }
            expect_type(
                root,
                "status.failureDomains.[].name",
                "string",
                "fields.failure-domains",
                true,
                subject,
                out,
            );
            expect_type(
                root,
                "status.failureDomains.[].controlPlane",
                "boolean",
                "fields.failure-domains",
                false,
                subject,
                out,
            );
            if fd.x_kubernetes_list_type.as_deref() != Some("map")
                || fd.x_kubernetes_list_map_keys.as_deref() != Some(&["name".to_owned()][..])
            {
                out.push(warning("fields.failure-domains", subject, "status.failureDomains should be a list-map keyed by name (x-kubernetes-list-type: map)"));
            }
        }
        ContractVersion::V1Beta1 => {
            if fd.type_.as_deref() != Some("object") || fd.additional_properties.is_none() {
                out.push(error("fields.failure-domains", subject, "v1beta1 contract: status.failureDomains is a map name → {controlPlane, attributes}"));
            }
        }
    }
}

fn template_fields(root: &JSONSchemaProps, subject: &str, out: &mut Vec<Finding>) {
    expect_type(
        root,
        "spec.template",
        "object",
        "template.shape",
        true,
        subject,
        out,
    );
    expect_type(
        root,
        "spec.template.spec",
        "object",
        "template.shape",
        true,
        subject,
        out,
    );
    if let Some(meta) = at(root, "spec.template.metadata") {
        let extra: Vec<&String> = meta
            .properties
            .iter()
            .flatten()
            .map(|(k, _)| k)
            .filter(|k| *k != "labels" && *k != "annotations")
            .collect();
        if !extra.is_empty() {
            out.push(error(
                "template.shape",
                subject,
                format!(
                    "spec.template.metadata may hold only labels and annotations, not {extra:?}"
                ),
            ));
        }
    }
    let required = at(root, "spec.template")
        .and_then(|t| t.required.as_ref())
        .is_some_and(|r| r.iter().any(|f| f == "spec"));
    if !required {
        out.push(warning(
            "template.shape",
            subject,
            "spec.template.spec should be required",
        ));
    }
}

fn conditions_field(
    root: &JSONSchemaProps,
    contract: ContractVersion,
    subject: &str,
    out: &mut Vec<Finding>,
) {
    let Some(c) = at(root, "status.conditions") else {
        return;
    };
    if c.type_.as_deref() != Some("array") {
        out.push(error(
            "fields.conditions",
            subject,
            "status.conditions must be a list",
        ));
        return;
    }
    for f in ["type", "status"] {
        expect_type(
            root,
            &format!("status.conditions.[].{f}"),
            "string",
            "fields.conditions",
            true,
            subject,
            out,
        );
    }
    if contract == ContractVersion::V1Beta2 {
        let required = at(root, "status.conditions.[]")
            .and_then(|i| i.required.clone())
            .unwrap_or_default();
        for f in ["type", "status", "reason", "message", "lastTransitionTime"] {
            if !required.iter().any(|r| r == f) {
                out.push(warning(
                    "fields.conditions",
                    subject,
                    format!("status.conditions[] should be metav1.Condition: {f} is not required"),
                ));
            }
        }
    }
}

/// Checks `metadata.yaml`: kind, apiVersion, release series with contracts.
pub fn check_metadata(yaml: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let doc: Value = match serde_saphyr::from_str(yaml) {
        Ok(v) => v,
        Err(e) => {
            return vec![error(
                "metadata.parse",
                "metadata.yaml",
                format!("not YAML: {e}"),
            )];
        }
    };
    if doc["apiVersion"] != "clusterctl.cluster.x-k8s.io/v1alpha3" {
        out.push(error("metadata.api-version", "metadata.yaml", "apiVersion must be clusterctl.cluster.x-k8s.io/v1alpha3 (enforced since clusterctl v1.11)"));
    }
    if doc["kind"] != "Metadata" {
        out.push(error(
            "metadata.kind",
            "metadata.yaml",
            "kind must be Metadata",
        ));
    }
    let series = doc["releaseSeries"].as_array().cloned().unwrap_or_default();
    if series.is_empty() {
        out.push(error(
            "metadata.release-series",
            "metadata.yaml",
            "releaseSeries needs at least one {major, minor, contract} entry",
        ));
    }
    for s in &series {
        if !s["major"].is_u64() || !s["minor"].is_u64() {
            out.push(error(
                "metadata.release-series",
                "metadata.yaml",
                format!("entry {s} needs integer major and minor"),
            ));
        }
        if !matches!(s["contract"].as_str(), Some("v1beta1" | "v1beta2")) {
            out.push(error(
                "metadata.release-series",
                "metadata.yaml",
                format!(
                    "entry {s} has contract {}; CAPI v1beta2 core accepts v1beta2 or v1beta1",
                    s["contract"]
                ),
            ));
        }
    }
    out
}

/// Checks an `infrastructure-components.yaml`: one Namespace, a Deployment whose container is
/// `manager` with `--namespace` and `--watch-filter` flags, provider labels on every object,
/// valid variable syntax, and the CRDs inside.
pub fn check_components(yaml: &str) -> Vec<Finding> {
    let subject = "infrastructure-components.yaml";
    let mut out = Vec::new();
    if let Err(e) = capi_core::template::variables(yaml) {
        out.push(error("components.variables", subject, e.to_string()));
    }
    // Parse after filling every variable, as clusterctl would with user values.
    let filled = capi_core::template::substitute(yaml, |_| Some("x".into()))
        .unwrap_or_else(|_| yaml.to_owned());
    let docs: Vec<Value> = match serde_saphyr::from_multiple(&filled) {
        Ok(d) => d,
        Err(e) => return vec![error("components.parse", subject, format!("not YAML: {e}"))],
    };
    let docs: Vec<&Value> = docs.iter().filter(|d| d.is_object()).collect();
    let namespaces: Vec<&&Value> = docs.iter().filter(|d| d["kind"] == "Namespace").collect();
    if namespaces.len() != 1 {
        out.push(error(
            "components.namespace",
            subject,
            format!(
                "exactly one Namespace object is required, found {}",
                namespaces.len()
            ),
        ));
    }
    let deployments: Vec<&&Value> = docs.iter().filter(|d| d["kind"] == "Deployment").collect();
    let manager = deployments
        .iter()
        .flat_map(|d| {
            d["spec"]["template"]["spec"]["containers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|c| c["name"] == "manager");
    match manager {
        None => out.push(error(
            "components.manager",
            subject,
            "no Deployment container named `manager` (clusterctl requires it)",
        )),
        Some(c) => {
            let args: Vec<String> = c["args"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(c["command"].as_array().into_iter().flatten())
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            if !args.iter().any(|a| a.starts_with("--namespace")) {
                out.push(warning(
                    "components.manager",
                    subject,
                    "the manager takes no --namespace flag",
                ));
            }
            if !args.iter().any(|a| a.starts_with("--watch-filter")) {
                out.push(warning(
                    "components.manager",
                    subject,
                    "the manager takes no --watch-filter flag",
                ));
            }
        }
    }
    for d in &docs {
        let label = d["metadata"]["labels"]["cluster.x-k8s.io/provider"].as_str();
        if !label.is_some_and(|l| l.starts_with("infrastructure-")) {
            out.push(warning(
                "components.provider-label",
                subject,
                format!(
                    "{} {} lacks label cluster.x-k8s.io/provider: infrastructure-<name>",
                    d["kind"], d["metadata"]["name"]
                ),
            ));
        }
    }
    let crds: Vec<CustomResourceDefinition> = docs
        .iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .filter_map(|d| serde_json::from_value((**d).clone()).ok())
        .collect();
    if crds.is_empty() {
        out.push(error(
            "components.crds",
            subject,
            "no CustomResourceDefinitions",
        ));
    }
    out.extend(check_crds(&crds));
    out
}

/// Checks a cluster template: variable syntax, and that it parses as YAML once filled.
pub fn check_template(name: &str, yaml: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    match capi_core::template::variables(yaml) {
        Err(e) => out.push(error("template.variables", name, e.to_string())),
        Ok(vars) => {
            if !vars.iter().any(|v| v.name == "CLUSTER_NAME") {
                out.push(warning(
                    "template.variables",
                    name,
                    "the template does not use ${CLUSTER_NAME}",
                ));
            }
        }
    }
    let filled = capi_core::template::substitute(yaml, |_| Some("1".into()))
        .unwrap_or_else(|_| yaml.to_owned());
    if let Err(e) = serde_saphyr::from_multiple::<Value>(&filled) {
        out.push(error(
            "template.parse",
            name,
            format!("not YAML once variables are filled: {e}"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus_crds() -> Option<Vec<CustomResourceDefinition>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/corpus/cluster-api/provider-dev-crds");
        if !dir.is_dir() {
            println!("skipped: {} is absent", dir.display());
            return None;
        }
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap();
            let mut crd: CustomResourceDefinition = serde_saphyr::from_str(&text).unwrap();
            // The upstream bases lack the labels kustomize adds at release time.
            crd.metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert("cluster.x-k8s.io/v1beta2".into(), "v1beta2".into());
            out.push(crd);
        }
        Some(out)
    }

    #[test]
    fn upstream_dev_provider_crds_pass() {
        let Some(crds) = corpus_crds() else { return };
        let errors: Vec<_> = check_crds(&crds)
            .into_iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }

    #[test]
    fn broken_crds_are_named_by_clause() {
        let Some(mut crds) = corpus_crds() else {
            return;
        };
        let machine = crds
            .iter_mut()
            .find(|c| c.spec.names.kind == "DevMachine")
            .unwrap();
        machine.metadata.labels = None;
        let cluster = crds
            .iter_mut()
            .find(|c| c.spec.names.kind == "DevCluster")
            .unwrap();
        cluster.spec.scope = "Cluster".into();
        cluster.metadata.name = Some("devclusteres.infrastructure.cluster.x-k8s.io".into());
        let v = cluster
            .spec
            .versions
            .iter_mut()
            .find(|v| v.name == "v1beta2")
            .unwrap();
        v.subresources = None;
        let clauses: BTreeSet<&str> = check_crds(&crds)
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| f.clause)
            .collect();
        assert_eq!(
            clauses,
            BTreeSet::from([
                "crd.contract-label",
                "crd.scope",
                "crd.name",
                "crd.status-subresource"
            ])
        );
    }

    #[test]
    fn upstream_metadata_passes() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/corpus/cluster-api/metadata.yaml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            println!("skipped: {} is absent", path.display());
            return;
        };
        assert_eq!(check_metadata(&text), vec![]);
    }

    #[test]
    fn components_need_namespace_manager_and_crds() {
        let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n";
        let clauses: BTreeSet<&str> = check_components(yaml)
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| f.clause)
            .collect();
        assert_eq!(
            clauses,
            BTreeSet::from([
                "components.namespace",
                "components.manager",
                "components.crds"
            ])
        );
        assert!(
            check_components("a: ${BROKEN")
                .iter()
                .any(|f| f.clause == "components.variables")
        );
    }

    #[test]
    fn upstream_templates_pass() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/corpus/cluster-api/templates");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            println!("skipped: {} is absent", dir.display());
            return;
        };
        for e in entries.flatten().filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("cluster-template")
        }) {
            let text = std::fs::read_to_string(e.path()).unwrap();
            let errors: Vec<_> = check_template(&e.file_name().to_string_lossy(), &text)
                .into_iter()
                .filter(|f| f.severity == Severity::Error)
                .collect();
            assert!(errors.is_empty(), "{errors:#?}");
        }
    }
}
