//! The agent alone against capi-testkit's API server, the provider's part played by hand:
//! registration and adoption, running a claim's bootstrap data, cleaning up after a release.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use capi_provider_byoh::api::SecretReference;
use capi_provider_byoh::{ByoHost, HostClaim};
use common::eventually;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

const NS: &str = "default";

fn status(h: &ByoHost) -> capi_provider_byoh::api::ByoHostStatus {
    h.status.clone().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_a_claim_and_cleans_up_after_its_release() {
    let env = common::env().await;
    let client = env.client();
    let dir = common::work_dir("agent");
    let hosts: Api<ByoHost> = Api::namespaced(client.clone(), NS);

    // An existing host with a previous life's state and no claim: adopted, then cleaned.
    hosts
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "ByoHost",
                "metadata": {"name": "h1", "labels": {"old": "label"}}, "spec": {}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    hosts
        .patch_status(
            "h1",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"bootstrapped": true, "appliedClaimUID": "gone", "bootstrapDataHash": "sha256:00"}}),
            ),
        )
        .await
        .unwrap();
    let agent = common::agent(&client, NS, "h1", &[("zone", "a")], "10.9.0.1", &dir).await;
    eventually("the stale state to be cleaned", 10, || async {
        let h = hosts.get("h1").await.unwrap();
        h.clean() && status(&h).last_heartbeat.is_some()
    })
    .await;
    let h = hosts.get("h1").await.unwrap();
    let labels = h.metadata.labels.clone().unwrap();
    assert_eq!(labels["zone"], "a");
    assert_eq!(labels["old"], "label", "adoption keeps existing labels");

    // Claimed: the data is run.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let data = b"#cloud-config\nruncmd: [kubeadm init]\n".to_vec();
    secrets
        .create(
            &PostParams::default(),
            &Secret {
                metadata: kube::api::ObjectMeta {
                    name: Some("m1-bootstrap".into()),
                    ..Default::default()
                },
                data: Some(BTreeMap::from([
                    ("value".to_owned(), ByteString(data.clone())),
                    ("format".to_owned(), ByteString(b"cloud-config".to_vec())),
                ])),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut h = hosts.get("h1").await.unwrap();
    h.spec.claim = Some(HostClaim {
        namespace: NS.into(),
        name: "m1".into(),
        uid: "uid-1".into(),
    });
    h.spec.bootstrap_secret = Some(SecretReference {
        name: "m1-bootstrap".into(),
        namespace: NS.into(),
    });
    hosts
        .replace("h1", &PostParams::default(), &h)
        .await
        .unwrap();
    eventually("the host to bootstrap", 10, || async {
        status(&hosts.get("h1").await.unwrap()).bootstrapped == Some(true)
    })
    .await;
    let h = hosts.get("h1").await.unwrap();
    let st = status(&h);
    assert_eq!(st.applied_claim_uid.as_deref(), Some("uid-1"));
    assert_eq!(
        st.bootstrap_data_hash.as_deref(),
        Some(capi_provider_byoh::hash::digest(&data).as_str())
    );
    assert_eq!(st.addresses.unwrap()[0].address, "10.9.0.1");
    let bootstrapped = st
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Bootstrapped")
        .unwrap();
    assert_eq!(bootstrapped.status, "True");
    assert!(
        !bootstrapped.message.contains("kubeadm"),
        "bootstrap data leaked into a condition"
    );
    assert_eq!(std::fs::read(agent.bootstrap_file()).unwrap(), data);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(agent.bootstrap_file())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "bootstrap data readable by others");
    }

    // Released: cleaned up and acknowledged.
    let mut h = hosts.get("h1").await.unwrap();
    h.spec.claim = None;
    h.spec.bootstrap_secret = None;
    let released = hosts
        .replace("h1", &PostParams::default(), &h)
        .await
        .unwrap();
    eventually("the release to be acknowledged", 10, || async {
        let h = hosts.get("h1").await.unwrap();
        h.clean() && status(&h).observed_generation >= released.metadata.generation
    })
    .await;
    assert!(!agent.bootstrap_file().exists());
    let st = status(&hosts.get("h1").await.unwrap());
    assert_eq!(st.bootstrapped, Some(false));
    assert!(st.bootstrap_data_hash.is_none() && st.addresses.is_none());

    // Deleted under the agent: it registers again.
    hosts.delete("h1", &Default::default()).await.unwrap();
    eventually("the host to register again", 10, || async {
        hosts.get_opt("h1").await.unwrap().is_some()
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}
