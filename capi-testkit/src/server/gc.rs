//! The controllers a real control plane runs beside the API server and envtest lacks: the
//! garbage collector (ownerReferences) and the namespace controller; plus CRD cleanup.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::store::{DeleteOptions, Housekeeping, Store};

const POLL: Duration = Duration::from_millis(20);

/// Runs until the store goes away.
pub(crate) async fn run(
    store: std::sync::Weak<Store>,
    mut rx: mpsc::UnboundedReceiver<Housekeeping>,
) {
    while let Some(work) = rx.recv().await {
        let Some(store) = store.upgrade() else { return };
        match work {
            Housekeeping::OwnerGone(uid) => collect_dependents(&store, &uid),
            Housekeeping::Foreground(k) => {
                tokio::spawn(foreground(
                    store.clone(),
                    k.group,
                    k.plural,
                    k.namespace,
                    k.name,
                ));
            }
            Housekeeping::Orphan(k) => orphan(&store, &k.group, &k.plural, &k.namespace, &k.name),
            Housekeeping::Namespace(ns) => {
                tokio::spawn(terminate_namespace(store.clone(), ns));
            }
            Housekeeping::Crd(name) => {
                tokio::spawn(delete_crd(store.clone(), name));
            }
        }
    }
}

fn owners_alive(store: &Store, obj: &Value, gone: &str) -> bool {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["uid"].as_str())
        .any(|u| u != gone && store.uid_exists(u))
}

/// Background propagation: dependents whose owners are all gone are deleted.
fn collect_dependents(store: &Store, uid: &str) {
    for (res, obj) in store.dependents_of(uid) {
        if owners_alive(store, &obj, uid) {
            continue;
        }
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        let _ = store.delete(
            &res,
            ns,
            name,
            &DeleteOptions {
                propagation: Some("Background".into()),
                ..DeleteOptions::default()
            },
        );
    }
}

fn remove_finalizer(
    store: &Store,
    group: &str,
    plural: &str,
    namespace: &str,
    name: &str,
    finalizer: &str,
) {
    let res = store.lock().registry.get(group, plural).cloned();
    let Some(res) = res else { return };
    let _ = store.update(&res, namespace, name, None, false, |old| {
        let mut new = old.clone();
        let kept: Vec<Value> = old["metadata"]["finalizers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| *f != finalizer)
            .cloned()
            .collect();
        new["metadata"]["finalizers"] = json!(kept);
        Ok(new)
    });
}

/// Foreground propagation: delete dependents, wait for the blocking ones, then let the owner go.
async fn foreground(
    store: Arc<Store>,
    group: String,
    plural: String,
    namespace: String,
    name: String,
) {
    let res = store.lock().registry.get(&group, &plural).cloned();
    let Some(res) = res else { return };
    let Ok(owner) = store.get(&res, &namespace, &name) else {
        return;
    };
    let uid = owner["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for (dres, dep) in store.dependents_of(&uid) {
        let ns = dep["metadata"]["namespace"].as_str().unwrap_or_default();
        let n = dep["metadata"]["name"].as_str().unwrap_or_default();
        let _ = store.delete(
            &dres,
            ns,
            n,
            &DeleteOptions {
                propagation: Some("Foreground".into()),
                ..DeleteOptions::default()
            },
        );
    }
    for _ in 0..3000 {
        let blocking = store.dependents_of(&uid).into_iter().any(|(_, d)| {
            d["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|o| o["uid"] == uid.as_str() && o["blockOwnerDeletion"] == true)
        });
        if !blocking {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    remove_finalizer(
        &store,
        &group,
        &plural,
        &namespace,
        &name,
        "foregroundDeletion",
    );
}

/// Orphan propagation: strip the owner's references from its dependents.
fn orphan(store: &Store, group: &str, plural: &str, namespace: &str, name: &str) {
    let Some(res) = store.lock().registry.get(group, plural).cloned() else {
        return;
    };
    let Ok(owner) = store.get(&res, namespace, name) else {
        return;
    };
    let uid = owner["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for (dres, dep) in store.dependents_of(&uid) {
        let ns = dep["metadata"]["namespace"].as_str().unwrap_or_default();
        let n = dep["metadata"]["name"].as_str().unwrap_or_default();
        let _ = store.update(&dres, ns, n, None, false, |old| {
            let mut new = old.clone();
            let kept: Vec<Value> = old["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|o| o["uid"] != uid.as_str())
                .cloned()
                .collect();
            if kept.is_empty() {
                new["metadata"]
                    .as_object_mut()
                    .map(|m| m.remove("ownerReferences"));
            } else {
                new["metadata"]["ownerReferences"] = json!(kept);
            }
            Ok(new)
        });
    }
    remove_finalizer(store, group, plural, namespace, name, "orphan");
}

/// The namespace controller: delete everything inside, wait until it is gone, finalize.
async fn terminate_namespace(store: Arc<Store>, ns: String) {
    // A real namespace controller takes a moment: clients see Terminating before NotFound.
    tokio::time::sleep(Duration::from_millis(300)).await;
    loop {
        let contents = store.namespace_contents(&ns);
        if contents.is_empty() {
            break;
        }
        for (res, name) in &contents {
            let _ = store.delete(
                res,
                &ns,
                name,
                &DeleteOptions {
                    propagation: Some("Background".into()),
                    ..DeleteOptions::default()
                },
            );
        }
        tokio::time::sleep(POLL).await;
    }
    let res = store.lock().registry.get("", "namespaces").cloned();
    let Some(res) = res else { return };
    store.finalize(&res, "", &ns);
}

/// CRD deletion: delete every object of the kind, then the CRD (which unregisters it).
async fn delete_crd(store: Arc<Store>, name: String) {
    let crds = store
        .lock()
        .registry
        .get("apiextensions.k8s.io", "customresourcedefinitions")
        .cloned();
    let Some(crds) = crds else { return };
    let Ok(crd) = store.get(&crds, "", &name) else {
        return;
    };
    let group = crd["spec"]["group"].as_str().unwrap_or_default().to_owned();
    let plural = crd["spec"]["names"]["plural"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let res = store.lock().registry.get(&group, &plural).cloned();
    if let Some(res) = res {
        loop {
            let (items, _) = store.list(&res, None);
            if items.is_empty() {
                break;
            }
            for o in &items {
                let ns = o["metadata"]["namespace"].as_str().unwrap_or_default();
                let n = o["metadata"]["name"].as_str().unwrap_or_default();
                let _ = store.delete(&res, ns, n, &DeleteOptions::default());
            }
            tokio::time::sleep(POLL).await;
        }
    }
    store.finalize(&crds, "", &name);
}
