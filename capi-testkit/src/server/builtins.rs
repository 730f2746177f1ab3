//! What the server does for particular built-in kinds: namespaces and CRDs.

use serde_json::{Value, json};

use super::App;
use super::errors::ApiError;
use super::resources::{Resource, from_crd};

fn is(res: &Resource, group: &str, plural: &str) -> bool {
    res.group == group && res.plural == plural
}

/// Fills what the server sets on create.
pub(crate) fn on_create(res: &Resource, obj: &mut Value) {
    if is(res, "", "namespaces") {
        if !obj["spec"].is_object() {
            obj["spec"] = json!({});
        }
        obj["spec"]["finalizers"] = json!(["kubernetes"]);
        obj["status"] = json!({"phase": "Active"});
    }
    if is(res, "apiextensions.k8s.io", "customresourcedefinitions") {
        obj.as_object_mut().map(|o| o.remove("status"));
    }
}

/// A CRD was written: (re)register what it serves and report it established.
fn register_crd(app: &App, crd: &Value) -> Result<(), ApiError> {
    let name = crd["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let resource = from_crd(crd).map_err(|causes| {
        ApiError::invalid(
            "CustomResourceDefinition",
            "apiextensions.k8s.io",
            &name,
            &causes,
        )
    })?;
    let storage = resource.storage_version().to_owned();
    app.store.lock().registry.insert(resource);
    let crds = app
        .store
        .lock()
        .registry
        .get("apiextensions.k8s.io", "customresourcedefinitions")
        .cloned()
        .ok_or_else(|| ApiError::internal("CRD resource missing"))?;
    let now =
        k8s_openapi::jiff::Timestamp::from_second(k8s_openapi::jiff::Timestamp::now().as_second())
            .map(|t| t.to_string())
            .unwrap_or_default();
    app.store.update(&crds, "", &name, Some("status"), false, |old| {
        let mut new = old.clone();
        let names = old["spec"]["names"].clone();
        let cond = |t: &str, reason: &str, message: &str| json!({"type": t, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message});
        let mut stored: Vec<Value> = old["status"]["storedVersions"].as_array().cloned().unwrap_or_default();
        if !stored.iter().any(|v| v == &json!(storage)) {
            stored.push(json!(storage));
        }
        // Keep transition times of conditions already True.
        let existing = |t: &str| old["status"]["conditions"].as_array().and_then(|cs| cs.iter().find(|c| c["type"] == t).cloned());
        let names_accepted = existing("NamesAccepted").unwrap_or_else(|| cond("NamesAccepted", "NoConflicts", "no conflicts found"));
        let established = existing("Established").unwrap_or_else(|| cond("Established", "InitialNamesAccepted", "the initial names have been accepted"));
        new["status"] = json!({"acceptedNames": names, "conditions": [names_accepted, established], "storedVersions": stored});
        Ok(new)
    })?;
    Ok(())
}

/// After a create: CRDs start serving.
pub(crate) fn after_create(app: &App, res: &Resource, obj: &Value) -> Result<(), ApiError> {
    if is(res, "apiextensions.k8s.io", "customresourcedefinitions") {
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        if let Err(e) = register_crd(app, obj) {
            // An invalid CRD is refused as a whole.
            app.store.finalize(res, "", name);
            return Err(e);
        }
    }
    Ok(())
}

/// After an update: a changed CRD serves its new versions.
pub(crate) fn after_update(app: &App, res: &Resource, obj: &Value) {
    if is(res, "apiextensions.k8s.io", "customresourcedefinitions")
        && obj["metadata"]["deletionTimestamp"].is_null()
        && let Err(e) = register_crd(app, obj)
    {
        tracing::warn!(error = %e.message, "updated CRD is invalid; keeping the previous definition");
    }
}
