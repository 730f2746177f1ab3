//! Layer 2: contract scenarios, each a named test whose failure names the contract clause.

use std::time::{Duration, Instant};

use capi_core::contract::ContractVersion;
use capi_core::v1beta2::{Cluster, Machine, MachineDeployment};
use futures::future::BoxFuture;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::harness::{Harness, Outcome, ProviderKind, fail, finalizers, provider_id, provisioned};
use crate::simulator::{Simulator, SimulatorHandle, SimulatorOptions};

/// One contract scenario.
#[derive(Clone, Copy)]
pub struct Scenario {
    /// Short name, e.g. `waits-for-bootstrap-data`.
    pub name: &'static str,
    /// The contract clause it checks (capi-contract.md section and rule).
    pub clause: &'static str,
    /// Whether a failure makes the suite fail (otherwise it is reported as a warning).
    pub required: bool,
    /// Whether it needs the server to itself (it injects server-wide faults): it runs alone,
    /// after the others.
    pub exclusive: bool,
    /// The test.
    pub run: for<'a> fn(&'a Harness) -> BoxFuture<'a, Outcome>,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.name)
            .field("clause", &self.clause)
            .finish()
    }
}

/// Every scenario, in the order they run.
pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "waits-for-owner",
            clause: "3.4.1 no finalizer and nothing created before the owner Machine exists",
            required: true,
            exclusive: false,
            run: |h| Box::pin(waits_for_owner(h)),
        },
        Scenario {
            name: "waits-for-cluster-infrastructure",
            clause: "3.4.5 wait for Cluster status.initialization.infrastructureProvisioned",
            required: true,
            exclusive: false,
            run: |h| Box::pin(waits_for_cluster_infrastructure(h)),
        },
        Scenario {
            name: "waits-for-bootstrap-data",
            clause: "3.4.6 wait for Machine spec.bootstrap.dataSecretName",
            required: true,
            exclusive: false,
            run: |h| Box::pin(waits_for_bootstrap_data(h)),
        },
        Scenario {
            name: "workers-wait-for-control-plane",
            clause: "3.4.6 workers wait for the control plane to be initialized",
            required: true,
            exclusive: false,
            run: |h| Box::pin(workers_wait_for_control_plane(h)),
        },
        Scenario {
            name: "provider-id-with-provisioned",
            clause: "3.1/3.2.8 spec.providerID set with or before status.initialization.provisioned (v1beta1: status.ready)",
            required: true,
            exclusive: false,
            run: |h| Box::pin(provider_id_with_provisioned(h)),
        },
        Scenario {
            name: "addresses-valid",
            clause: "3.1 status.addresses: type in Hostname|ExternalIP|InternalIP|ExternalDNS|InternalDNS, address 1..256",
            required: true,
            exclusive: false,
            run: |h| Box::pin(addresses_valid(h)),
        },
        Scenario {
            name: "conditions-well-formed",
            clause: "6.1/6.2 Ready (and Paused) conditions: metav1 with reason, message and observedGeneration (v1beta1 contract: CAPI conditions with severity)",
            required: false,
            exclusive: false,
            run: |h| Box::pin(conditions_well_formed(h)),
        },
        Scenario {
            name: "resource-versions-stable",
            clause: "11.1 ValidateResourceVersionStable: no writes once provisioned",
            required: true,
            exclusive: false,
            run: |h| Box::pin(resource_versions_stable(h)),
        },
        Scenario {
            name: "finalizer-lifecycle",
            clause: "3.6 finalizer added after ownership, removed after teardown",
            required: true,
            exclusive: false,
            run: |h| Box::pin(finalizer_lifecycle(h)),
        },
        Scenario {
            name: "pause-spec",
            clause: "2.5 Cluster spec.paused stops all reconciliation, also deletion; deletion proceeds once unpaused",
            required: true,
            exclusive: false,
            run: |h| Box::pin(pause_spec(h)),
        },
        Scenario {
            name: "pause-annotation",
            clause: "2.5 cluster.x-k8s.io/paused annotation stops all reconciliation, also deletion; deletion proceeds once unpaused",
            required: true,
            exclusive: false,
            run: |h| Box::pin(pause_annotation(h)),
        },
        Scenario {
            name: "externally-managed",
            clause: "2.4 an InfraCluster with cluster.x-k8s.io/managed-by is left alone",
            required: true,
            exclusive: false,
            run: |h| Box::pin(externally_managed(h)),
        },
        Scenario {
            name: "finalizers-and-owners-restored",
            clause: "11.1 ValidateFinalizersResilience / OwnerReferencesResilience",
            required: true,
            exclusive: false,
            run: |h| Box::pin(finalizers_restored(h)),
        },
        Scenario {
            name: "status-loss-idempotent",
            clause: "7.7 clusterctl move: status rebuilt from spec and infrastructure, same providerID",
            required: true,
            exclusive: false,
            run: |h| Box::pin(status_loss(h)),
        },
        Scenario {
            name: "deletion-leaves-nothing",
            clause: "2.6 after Cluster deletion no provider objects remain",
            required: true,
            exclusive: false,
            run: |h| Box::pin(deletion_leaves_nothing(h)),
        },
        Scenario {
            name: "faults-survived",
            clause: "retry: conflicts, 500s and 429s from the API server are survived (needs ConformanceConfig::faults; a no-op without)",
            required: true,
            exclusive: true,
            run: |h| Box::pin(faults_survived(h)),
        },
        Scenario {
            name: "machinedeployment-scale",
            clause: "md_scale: MachineDeployment 1 → 3 → 1",
            required: true,
            exclusive: false,
            run: |h| Box::pin(md_scale(h)),
        },
    ]
}

fn sim(h: &Harness) -> SimulatorHandle {
    let options = SimulatorOptions {
        namespace: Some(h.namespace.clone()),
        poll: Duration::from_millis(100),
        ..SimulatorOptions::default()
    };
    Simulator::new(h.client.clone()).options(options).start()
}

/// Core's view of a manually driven machine: owner reference from the Machine, cluster label.
async fn adopt_machine(h: &Harness, machine: &Machine) -> Outcome {
    let owner = json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine", "name": machine.metadata.name, "uid": machine.metadata.uid, "controller": true, "blockOwnerDeletion": true});
    h.provider_api(&h.provider.infra_machine)
        .patch(
            machine.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"ownerReferences": [owner]}})),
        )
        .await?;
    Ok(())
}

async fn adopt_cluster(h: &Harness, cluster: &Cluster) -> Outcome {
    let owner = json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "name": cluster.metadata.name, "uid": cluster.metadata.uid});
    let patch = json!({"metadata": {"ownerReferences": [owner], "labels": {"cluster.x-k8s.io/cluster-name": cluster.metadata.name}}});
    h.provider_api(&h.provider.infra_cluster)
        .patch(
            cluster.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await?;
    Ok(())
}

fn not_provisioned_yet<'a>(h: &'a Harness) -> impl Fn(&Value) -> bool + 'a {
    move |o: &Value| provisioned(&h.provider.infra_machine, o) || provider_id(o).is_some()
}

async fn waits_for_owner(h: &Harness) -> Outcome {
    h.create_provider_object(&h.provider.infra_machine, "orphan", json!({}))
        .await?;
    h.never(
        &h.provider.infra_machine,
        "orphan",
        "was provisioned or got a finalizer without an owner Machine",
        |o| {
            !finalizers(o).is_empty()
                || provisioned(&h.provider.infra_machine, o)
                || provider_id(o).is_some()
        },
    )
    .await
}

/// A Cluster and a Machine driven by hand (no simulator), so each gate can be held shut.
async fn manual_machine(
    h: &Harness,
    control_plane: bool,
    bootstrap: bool,
) -> Result<Machine, super::harness::ScenarioFailure> {
    let cluster = h.create_cluster("c1", true, json!({})).await?;
    adopt_cluster(h, &cluster).await?;
    let secret = bootstrap.then_some("m1-bootstrap");
    if bootstrap {
        h.create_bootstrap_secret("m1-bootstrap", "c1").await?;
    }
    let machine = h.create_machine("c1", "m1", control_plane, secret).await?;
    adopt_machine(h, &machine).await?;
    Ok(machine)
}

async fn waits_for_cluster_infrastructure(h: &Harness) -> Outcome {
    manual_machine(h, true, true).await?;
    h.never(
        &h.provider.infra_machine,
        "m1",
        "provisioned before the Cluster's infrastructure was",
        not_provisioned_yet(h),
    )
    .await?;
    h.patch_status::<Cluster>("c1", json!({"initialization": {"infrastructureProvisioned": true, "controlPlaneInitialized": true}})).await?;
    h.wait_for(
        &h.provider.infra_machine,
        "m1",
        "provisioning once the Cluster infrastructure is provisioned",
        |o| o.is_some_and(|o| provisioned(&h.provider.infra_machine, o)),
    )
    .await?;
    Ok(())
}

async fn waits_for_bootstrap_data(h: &Harness) -> Outcome {
    manual_machine(h, true, false).await?;
    h.patch_status::<Cluster>(
        "c1",
        json!({"initialization": {"infrastructureProvisioned": true}}),
    )
    .await?;
    h.never(
        &h.provider.infra_machine,
        "m1",
        "provisioned before bootstrap data existed",
        not_provisioned_yet(h),
    )
    .await?;
    h.create_bootstrap_secret("m1-bootstrap", "c1").await?;
    h.patch::<Machine>(
        "m1",
        json!({"spec": {"bootstrap": {"dataSecretName": "m1-bootstrap"}}}),
    )
    .await?;
    h.wait_for(
        &h.provider.infra_machine,
        "m1",
        "provisioning once bootstrap data exists",
        |o| o.is_some_and(|o| provisioned(&h.provider.infra_machine, o)),
    )
    .await?;
    Ok(())
}

async fn workers_wait_for_control_plane(h: &Harness) -> Outcome {
    manual_machine(h, false, false).await?;
    h.patch_status::<Cluster>(
        "c1",
        json!({"initialization": {"infrastructureProvisioned": true}}),
    )
    .await?;
    h.never(
        &h.provider.infra_machine,
        "m1",
        "a worker was provisioned before the control plane was initialized",
        not_provisioned_yet(h),
    )
    .await
}

/// A cluster with one control-plane machine, run by the simulator to provisioned.
async fn provisioned_cluster(h: &Harness) -> Result<(), super::harness::ScenarioFailure> {
    h.create_cluster("c1", true, json!({})).await?;
    h.create_machine("c1", "m1", true, None).await?;
    h.wait_for(
        &h.provider.infra_machine,
        "m1",
        "provisioning of a control-plane machine",
        |o| o.is_some_and(|o| provisioned(&h.provider.infra_machine, o)),
    )
    .await?;
    Ok(())
}

async fn provider_id_with_provisioned(h: &Harness) -> Outcome {
    let s = sim(h);
    h.create_cluster("c1", true, json!({})).await?;
    h.create_machine("c1", "m1", true, None).await?;
    let start = Instant::now();
    let result = loop {
        let obj = h.provider_json(&h.provider.infra_machine, "m1").await?;
        if let Some(o) = &obj
            && provisioned(&h.provider.infra_machine, o)
        {
            break if provider_id(o).is_some() {
                Ok(())
            } else {
                Err(super::harness::ScenarioFailure(
                    "status says provisioned while spec.providerID is empty".into(),
                ))
            };
        }
        if start.elapsed() > h.timeout {
            break Err(super::harness::ScenarioFailure(format!(
                "the machine was not provisioned within {:?}",
                h.timeout
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    s.stop().await;
    result
}

async fn with_sim<F, Fut>(h: &Harness, f: F) -> Outcome
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    let s = sim(h);
    let r = f().await;
    s.stop().await;
    r
}

async fn addresses_valid(h: &Harness) -> Outcome {
    with_sim(h, || async {
        provisioned_cluster(h).await?;
        let obj = h
            .provider_json(&h.provider.infra_machine, "m1")
            .await?
            .unwrap_or_default();
        let allowed = [
            "Hostname",
            "ExternalIP",
            "InternalIP",
            "ExternalDNS",
            "InternalDNS",
        ];
        for a in obj["status"]["addresses"].as_array().into_iter().flatten() {
            let t = a["type"].as_str().unwrap_or("");
            let addr = a["address"].as_str().unwrap_or("");
            if !allowed.contains(&t) || addr.is_empty() || addr.len() > 256 {
                fail!("invalid address {a}");
            }
        }
        Ok(())
    })
    .await
}

/// Checks the provider's conditions in the shape its contract uses: metav1 conditions (v1beta2:
/// reason required, `message`, `observedGeneration`, `Ready` and `Paused` present) or CAPI
/// v1beta1 conditions (reason optional but set with a severity on False, no observedGeneration,
/// only `Ready` expected: `Paused` came with the v1beta2 conditions). capi-contract.md 6.1, 6.2.
fn check_conditions(kind: &ProviderKind, obj: &Value) -> Outcome {
    let v1beta1 = kind.contract == ContractVersion::V1Beta1;
    let kind = &kind.resource.kind;
    let generation = obj["metadata"]["generation"].as_i64();
    let conditions = obj["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let reason_ok = |r: &str| {
        !r.is_empty()
            && r.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && r.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ',' || c == ':')
    };
    for c in &conditions {
        if !matches!(c["status"].as_str(), Some("True" | "False" | "Unknown")) {
            fail!("{kind} condition {} has status {}", c["type"], c["status"]);
        }
        let reason_required = !v1beta1 || c["status"] == "False";
        let reason_valid = match c["reason"].as_str() {
            Some(r) => reason_ok(r),
            None => !reason_required && c["reason"].is_null(),
        };
        if !reason_valid {
            fail!(
                "{kind} condition {} has reason {} ({}CamelCase)",
                c["type"],
                c["reason"],
                if reason_required { "required, " } else { "" }
            );
        }
        if !c["lastTransitionTime"].is_string() {
            fail!("{kind} condition {} lacks lastTransitionTime", c["type"]);
        }
        if v1beta1 {
            if !(c["message"].is_null() || c["message"].is_string()) {
                fail!(
                    "{kind} condition {} has message {}",
                    c["type"],
                    c["message"]
                );
            }
            let severity = c["severity"].as_str().filter(|s| !s.is_empty());
            if c["status"] == "False" && !matches!(severity, Some("Error" | "Warning" | "Info")) {
                fail!(
                    "{kind} v1beta1 condition {} is False with severity {} (Error, Warning or Info)",
                    c["type"],
                    c["severity"]
                );
            }
            continue;
        }
        if !c["message"].is_string() {
            fail!("{kind} condition {} lacks message", c["type"]);
        }
        if let (Some(g), Some(og)) = (generation, c["observedGeneration"].as_i64())
            && og != g
        {
            fail!(
                "{kind} condition {} has observedGeneration {og}, the object is at {g}",
                c["type"]
            );
        }
    }
    let expected: &[&str] = if v1beta1 {
        &["Ready"]
    } else {
        &["Ready", "Paused"]
    };
    for required in expected {
        if !conditions.iter().any(|c| c["type"] == *required) {
            fail!("{kind} has no {required} condition");
        }
    }
    Ok(())
}

async fn conditions_well_formed(h: &Harness) -> Outcome {
    with_sim(h, || async {
        provisioned_cluster(h).await?;
        let im = h
            .provider_json(&h.provider.infra_machine, "m1")
            .await?
            .unwrap_or_default();
        check_conditions(&h.provider.infra_machine, &im)?;
        let ic = h
            .provider_json(&h.provider.infra_cluster, "c1")
            .await?
            .unwrap_or_default();
        check_conditions(&h.provider.infra_cluster, &ic)
    })
    .await
}

async fn resource_versions_stable(h: &Harness) -> Outcome {
    with_sim(h, || async {
        provisioned_cluster(h).await?;
        // Let core's copies settle first (status writes on the Machine trigger re-reconciles).
        tokio::time::sleep(h.settle / 2).await;
        h.stays_unchanged(
            &h.provider.infra_machine,
            "m1",
            "resourceVersion keeps changing once provisioned",
        )
        .await?;
        h.stays_unchanged(
            &h.provider.infra_cluster,
            "c1",
            "resourceVersion keeps changing once provisioned",
        )
        .await
    })
    .await
}

async fn finalizer_lifecycle(h: &Harness) -> Outcome {
    with_sim(h, || async {
        provisioned_cluster(h).await?;
        let obj = h.provider_json(&h.provider.infra_machine, "m1").await?.unwrap_or_default();
        if finalizers(&obj).is_empty() {
            fail!("a provisioned InfraMachine carries no finalizer: its infrastructure can leak on delete");
        }
        h.api::<Machine>().delete("m1", &DeleteParams::background()).await?;
        h.wait_for(&h.provider.infra_machine, "m1", "the InfraMachine going away after its Machine was deleted (finalizer never removed?)", |o| o.is_none()).await?;
        Ok(())
    })
    .await
}

async fn pause_then_delete(h: &Harness, pause: Value, pause_machine_annotation: bool) -> Outcome {
    with_sim(h, || async {
        provisioned_cluster(h).await?;
        if pause_machine_annotation {
            h.provider_api(&h.provider.infra_machine)
                .patch("m1", &PatchParams::default(), &Patch::Merge(pause.clone()))
                .await?;
        } else {
            h.patch::<Cluster>("c1", pause.clone()).await?;
        }
        // The InfraMachine is deleted directly: a paused provider must not act on it.
        tokio::time::sleep(Duration::from_millis(300)).await;
        h.provider_api(&h.provider.infra_machine)
            .delete("m1", &DeleteParams::background())
            .await?;
        h.never(
            &h.provider.infra_machine,
            "m1",
            "deletion was processed while paused",
            |_| false,
        )
        .await?;
        if h.provider_json(&h.provider.infra_machine, "m1")
            .await?
            .is_none()
        {
            fail!("the InfraMachine was deleted (finalizer removed) while paused");
        }
        // Unpaused, the deletion goes through: the provider tears down and lets it go (and
        // the scenario leaves nothing behind in the provider's infrastructure).
        if pause_machine_annotation {
            h.provider_api(&h.provider.infra_machine)
                .patch(
                    "m1",
                    &PatchParams::default(),
                    &Patch::Merge(
                        json!({"metadata": {"annotations": {"cluster.x-k8s.io/paused": null}}}),
                    ),
                )
                .await?;
        } else {
            h.patch::<Cluster>("c1", json!({"spec": {"paused": false}}))
                .await?;
        }
        h.wait_for(
            &h.provider.infra_machine,
            "m1",
            "deletion once unpaused",
            |o| o.is_none(),
        )
        .await?;
        Ok(())
    })
    .await
}

async fn pause_spec(h: &Harness) -> Outcome {
    pause_then_delete(h, json!({"spec": {"paused": true}}), false).await
}

async fn pause_annotation(h: &Harness) -> Outcome {
    pause_then_delete(
        h,
        json!({"metadata": {"annotations": {"cluster.x-k8s.io/paused": ""}}}),
        true,
    )
    .await
}

async fn externally_managed(h: &Harness) -> Outcome {
    let cluster = h
        .create_cluster(
            "c1",
            true,
            json!({"annotations": {"cluster.x-k8s.io/managed-by": "someone-else"}}),
        )
        .await?;
    adopt_cluster(h, &cluster).await?;
    h.never(
        &h.provider.infra_cluster,
        "c1",
        "an externally managed InfraCluster was written to",
        |o| !finalizers(o).is_empty() || !o["status"].is_null(),
    )
    .await
}

async fn finalizers_restored(h: &Harness) -> Outcome {
    with_sim(h, || async {
        provisioned_cluster(h).await?;
        let before = finalizers(
            &h.provider_json(&h.provider.infra_machine, "m1")
                .await?
                .unwrap_or_default(),
        );
        h.patch::<Cluster>("c1", json!({"spec": {"paused": true}}))
            .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        h.provider_api(&h.provider.infra_machine)
            .patch(
                "m1",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": null, "ownerReferences": null}})),
            )
            .await?;
        h.patch::<Cluster>("c1", json!({"spec": {"paused": false}}))
            .await?;
        h.wait_for(
            &h.provider.infra_machine,
            "m1",
            &format!("finalizers {before:?} restored after unpause"),
            |o| o.is_some_and(|o| before.iter().all(|f| finalizers(o).contains(f))),
        )
        .await?;
        Ok(())
    })
    .await
}

async fn status_loss(h: &Harness) -> Outcome {
    with_sim(h, || async {
        provisioned_cluster(h).await?;
        let obj = h
            .provider_json(&h.provider.infra_machine, "m1")
            .await?
            .unwrap_or_default();
        let pid = provider_id(&obj).map(str::to_owned);
        h.patch::<Cluster>("c1", json!({"spec": {"paused": true}}))
            .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        h.provider_api(&h.provider.infra_machine)
            .patch_status(
                "m1",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": null})),
            )
            .await?;
        h.patch::<Cluster>("c1", json!({"spec": {"paused": false}}))
            .await?;
        let back = h
            .wait_for(
                &h.provider.infra_machine,
                "m1",
                "status rebuilt after it was lost",
                |o| o.is_some_and(|o| provisioned(&h.provider.infra_machine, o)),
            )
            .await?
            .unwrap_or_default();
        if provider_id(&back).map(str::to_owned) != pid {
            fail!(
                "providerID changed from {pid:?} to {:?}: a second instance?",
                provider_id(&back)
            );
        }
        Ok(())
    })
    .await
}

async fn deletion_leaves_nothing(h: &Harness) -> Outcome {
    with_sim(h, || async {
        provisioned_cluster(h).await?;
        h.api::<Cluster>()
            .delete("c1", &DeleteParams::background())
            .await?;
        let start = Instant::now();
        loop {
            let gone = h.api::<Cluster>().get_opt("c1").await?.is_none();
            let mut left = Vec::new();
            for kind in [&h.provider.infra_cluster, &h.provider.infra_machine] {
                for o in h.provider_api(kind).list(&Default::default()).await?.items {
                    left.push(format!(
                        "{} {}",
                        kind.resource.kind,
                        o.metadata.name.unwrap_or_default()
                    ));
                }
            }
            if gone && left.is_empty() {
                return Ok(());
            }
            if start.elapsed() > h.timeout {
                fail!(
                    "after {:?}: Cluster gone: {gone}; provider objects left: {left:?}",
                    h.timeout
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
}

async fn count_provisioned(h: &Harness) -> Result<(usize, usize), super::harness::ScenarioFailure> {
    let items = h
        .provider_api(&h.provider.infra_machine)
        .list(&Default::default())
        .await?
        .items;
    let mut provisioned_count = 0;
    for o in &items {
        if provisioned(&h.provider.infra_machine, &serde_json::to_value(o)?) {
            provisioned_count += 1;
        }
    }
    Ok((items.len(), provisioned_count))
}

async fn wait_machines(h: &Harness, want: usize) -> Outcome {
    let start = Instant::now();
    loop {
        let (total, ready) = count_provisioned(h).await?;
        if total == want && ready == want {
            return Ok(());
        }
        if start.elapsed() > h.timeout {
            fail!(
                "expected {want} provisioned InfraMachines, found {total} ({ready} provisioned) after {:?}",
                h.timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn md_scale(h: &Harness) -> Outcome {
    with_sim(h, || async {
        provisioned_cluster(h).await?;
        let t = &h.provider.infra_machine_template;
        let tmpl: kube::api::DynamicObject = serde_json::from_value(json!({
            "apiVersion": t.resource.api_version, "kind": t.resource.kind,
            "metadata": {"name": "workers", "namespace": h.namespace},
            "spec": t.spec,
        }))?;
        h.provider_api(t).create(&PostParams::default(), &tmpl).await?;
        let md: MachineDeployment = serde_json::from_value(json!({
            "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "MachineDeployment",
            "metadata": {"name": "md", "namespace": h.namespace},
            "spec": {
                "clusterName": "c1", "replicas": 1,
                "selector": {"matchLabels": {"pool": "md"}},
                "template": {
                    "metadata": {"labels": {"pool": "md"}},
                    "spec": {
                        "clusterName": "c1", "version": "v1.34.0", "bootstrap": {},
                        "infrastructureRef": {"apiGroup": t.resource.group, "kind": t.resource.kind, "name": "workers"}
                    }
                }
            }
        }))?;
        h.api::<MachineDeployment>().create(&PostParams::default(), &md).await?;
        wait_machines(h, 2).await?;
        h.patch::<MachineDeployment>("md", json!({"spec": {"replicas": 3}})).await?;
        wait_machines(h, 4).await?;
        h.patch::<MachineDeployment>("md", json!({"spec": {"replicas": 1}})).await?;
        wait_machines(h, 2).await
    })
    .await
}

/// Every write to provider objects first meets a 409, then a 500, then a 429; the provider must
/// still provision. Needs the server's fault rules (in process); passes trivially without them.
async fn faults_survived(h: &Harness) -> Outcome {
    use crate::server::faults::{Fault, FaultRule};
    let Some(faults) = h.faults.clone() else {
        tracing::info!(
            "faults-survived: no fault rules available (not capi-testkit's server); skipped"
        );
        return Ok(());
    };
    let group = &h.provider.infra_machine.resource.group;
    let fragment = format!("/apis/{group}/");
    for code in [409, 500, 429] {
        faults.add(
            FaultRule::new(Fault::Status(code))
                .verb("PATCH")
                .path_contains(&fragment)
                .times(2),
        );
    }
    faults.add(
        FaultRule::new(Fault::Status(500))
            .verb("GET")
            .path_contains("/apis/cluster.x-k8s.io/")
            .times(2),
    );
    let result = with_sim(h, || provisioned_cluster(h)).await;
    faults.clear();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(contract: ContractVersion) -> ProviderKind {
        ProviderKind {
            resource: kube::api::ApiResource {
                group: "infrastructure.example.io".into(),
                version: "v1alpha1".into(),
                api_version: "infrastructure.example.io/v1alpha1".into(),
                kind: "ExampleMachine".into(),
                plural: "examplemachines".into(),
            },
            contract,
            spec: json!({}),
        }
    }

    fn with(conditions: Value) -> Value {
        json!({"metadata": {"generation": 1}, "status": {"conditions": conditions}})
    }

    #[test]
    fn conditions_are_checked_in_the_shape_of_the_contract() {
        let t = "2026-01-01T00:00:00Z";
        let v1beta1 = kind(ContractVersion::V1Beta1);
        let v1beta2 = kind(ContractVersion::V1Beta2);
        // A v1beta1 Ready=True has no reason, message, observedGeneration, and no Paused beside it.
        let ready = with(json!([{"type": "Ready", "status": "True", "lastTransitionTime": t}]));
        assert!(check_conditions(&v1beta1, &ready).is_ok());
        assert!(check_conditions(&v1beta2, &ready).is_err());
        let no_severity = with(
            json!([{"type": "Ready", "status": "False", "reason": "Waiting", "lastTransitionTime": t}]),
        );
        assert!(check_conditions(&v1beta1, &no_severity).is_err());
        let metav1 = with(json!([
            {"type": "Ready", "status": "True", "reason": "Ready", "message": "", "lastTransitionTime": t, "observedGeneration": 1},
            {"type": "Paused", "status": "False", "reason": "NotPaused", "message": "", "lastTransitionTime": t, "observedGeneration": 1},
        ]));
        assert!(check_conditions(&v1beta2, &metav1).is_ok());
    }
}
