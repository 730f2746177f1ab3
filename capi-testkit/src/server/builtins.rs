//! What the server does for particular built-in kinds: namespaces and CRDs.

use serde_json::{Value, json};

use super::App;
use super::errors::ApiError;
use super::resources::{Resource, from_crd};
use crate::schema::{
    FieldError, StructuralSchema, dns1035_label, dns1123_subdomain, validate_crd_schema,
};

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

/// One 422 cause: `(field, reason, message)`.
type Cause = (String, &'static str, String);

fn cause(e: &FieldError) -> Cause {
    (e.field.clone(), e.kind.reason(), e.message())
}

fn required(field: impl Into<String>, detail: &str) -> Cause {
    let message = if detail.is_empty() {
        "Required value".to_owned()
    } else {
        format!("Required value: {detail}")
    };
    (field.into(), "FieldValueRequired", message)
}

fn invalid(field: impl Into<String>, value: &str, detail: &str) -> Cause {
    (
        field.into(),
        "FieldValueInvalid",
        format!("Invalid value: {}: {detail}", crate::gofmt::quote(value)),
    )
}

/// The ObjectMeta errors `meta` of a write, merged with what the kind's strategy checks besides
/// (as its `Validate`/`ValidateUpdate` aggregate them): for CustomResourceDefinitions the whole
/// of [`validate_crd`], for Events [`super::events::validate`] (`old` is the stored Event,
/// `namespace` the request's; an Event that does not decode is a 400). `None` for other kinds
/// (their schema, if any, is checked afterwards).
pub(crate) fn validate(
    res: &Resource,
    namespace: &str,
    obj: &Value,
    old: Option<&Value>,
    meta: &[FieldError],
) -> Result<Option<Vec<Cause>>, ApiError> {
    if super::events::is_event(res) {
        let mut event = super::events::to_storage(res, obj.clone())?;
        // Set from the request before the strategy runs, as `rest.BeforeCreate` sets it.
        event["metadata"]["namespace"] = json!(namespace);
        let mut causes: Vec<Cause> = meta.iter().map(cause).collect();
        causes.extend(super::events::validate(res, &event, old));
        return Ok(Some(causes));
    }
    Ok(
        is(res, "apiextensions.k8s.io", "customresourcedefinitions").then(|| {
            let mut causes: Vec<Cause> = meta.iter().map(cause).collect();
            let (name_errors, rest) = validate_crd(obj, old);
            // The CRD's name rule runs with ObjectMeta's own name checks.
            let at = causes
                .iter()
                .rposition(|c| c.0 == "metadata.name" || c.0 == "metadata.generateName")
                .map_or(0, |i| i + 1);
            causes.splice(at..at, name_errors);
            causes.extend(rest);
            causes
        }),
    )
}

/// Whether the stored CRD has the condition `Established=True`.
fn established(crd: &Value) -> bool {
    crd["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Established" && c["status"] == "True")
}

/// The checks of apiextensions-apiserver's `ValidateCustomResourceDefinition` (and
/// `...Update` when `old` is given) beyond ObjectMeta, in its order: the name rule (returned
/// apart, it joins ObjectMeta's name errors), then group, scope, schemas present, versions
/// (name, deprecation warning, per-version schema), unique and storage versions, names,
/// the shared schema (`spec.validation`, as upstream calls the schema all versions share),
/// immutable fields and stored versions.
///
/// Not checked: subresource paths, printer columns, selectable fields, conversion webhooks and
/// the CEL cost limits.
pub(crate) fn validate_crd(crd: &Value, old: Option<&Value>) -> (Vec<Cause>, Vec<Cause>) {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let group = text(&spec["group"]);
    let plural = text(&names["plural"]);
    let kind = text(&names["kind"]);
    // v1 defaults these before validation.
    let singular = names["singular"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map_or_else(|| kind.to_lowercase(), str::to_owned);
    let list_kind = names["listKind"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .or_else(|| (!kind.is_empty()).then(|| format!("{kind}List")))
        .unwrap_or_default();
    let mut name_errors = Vec::new();
    let name = text(&crd["metadata"]["name"]);
    if old.is_none() && !name.is_empty() && name != format!("{plural}.{group}") {
        name_errors.push(invalid(
            "metadata.name",
            &name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    let mut errors = Vec::new();
    if group.is_empty() {
        errors.push(required("spec.group", ""));
    } else if let errs @ [_, ..] = dns1123_subdomain(&group).as_slice() {
        errors.push(invalid("spec.group", &group, &errs.join(",")));
    } else if group.split('.').count() < 2 {
        errors.push(invalid(
            "spec.group",
            &group,
            "should be a domain with at least one dot",
        ));
    }
    match spec["scope"].as_str().unwrap_or_default() {
        "" => errors.push(required("spec.scope", "")),
        "Cluster" | "Namespaced" => {}
        other => errors.push((
            "spec.scope".to_owned(),
            "FieldValueNotSupported",
            format!(
                "Unsupported value: {}: supported values: \"Cluster\", \"Namespaced\"",
                crate::gofmt::quote(other)
            ),
        )),
    }
    let versions: Vec<&Value> = spec["versions"].as_array().into_iter().flatten().collect();
    // v1 → internal conversion: a schema all versions share becomes `spec.validation`.
    let shared = versions
        .first()
        .filter(|first| {
            versions
                .iter()
                .all(|v| v.get("schema") == first.get("schema"))
        })
        .and_then(|first| first.get("schema"))
        .filter(|s| !s.is_null());
    let has_schema = |v: Option<&Value>| v.is_some_and(|s| !s["openAPIV3Schema"].is_null());
    if !has_schema(shared) {
        for (i, v) in versions.iter().enumerate() {
            if !has_schema(v.get("schema")) {
                errors.push(required(
                    format!("spec.versions[{i}].schema.openAPIV3Schema"),
                    "",
                ));
            }
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut unique = true;
    for (i, v) in versions.iter().enumerate() {
        let vname = v["name"].as_str().unwrap_or_default();
        if seen.contains(&vname) {
            unique = false;
        }
        seen.push(vname);
        if let errs @ [_, ..] = dns1035_label(vname).as_slice() {
            errors.push(invalid(
                format!("spec.versions[{i}].name"),
                vname,
                &errs.join(","),
            ));
        }
        let warning = v["deprecationWarning"].as_str();
        let at = format!("spec.versions[{i}].deprecationWarning");
        if let Some(w) = warning {
            if v["deprecated"] != true {
                errors.push(invalid(&at, w, "can only be set for deprecated versions"));
            } else if w.len() > 256 {
                errors.push(invalid(&at, w, "must be <= 256 characters long"));
            } else if w.is_empty() {
                errors.push(invalid(&at, w, "must not be an empty string"));
            }
        }
        if shared.is_none()
            && let Some(s) = v["schema"].get("openAPIV3Schema")
        {
            errors.extend(schema_errors(
                s,
                &format!("spec.versions[{i}].schema.openAPIV3Schema"),
            ));
        }
    }
    if !unique {
        errors.push((
            "spec.versions".to_owned(),
            "FieldValueInvalid",
            "Invalid value: must contain unique version names".to_owned(),
        ));
    }
    if versions.iter().filter(|v| v["storage"] == true).count() != 1 {
        errors.push((
            "spec.versions".to_owned(),
            "FieldValueInvalid",
            "Invalid value: must have exactly one version marked as storage version".to_owned(),
        ));
    }
    for (field, value) in [
        ("plural", &plural),
        ("singular", &singular),
        ("kind", &kind),
        ("listKind", &list_kind),
    ] {
        if value.is_empty() {
            errors.push(required(format!("spec.names.{field}"), ""));
        }
    }
    errors.extend(validate_names(names, &plural, &singular, &kind, &list_kind));
    if let Some(s) = shared.and_then(|s| s.get("openAPIV3Schema")) {
        errors.extend(schema_errors(s, "spec.validation.openAPIV3Schema"));
    }
    if let Some(old) = old {
        let old_spec = &old["spec"];
        let immutable = |field: &str, new: &Value, old: &Value| {
            (new != old).then(|| {
                invalid(
                    field,
                    new.as_str().unwrap_or_default(),
                    "field is immutable",
                )
            })
        };
        if established(old) {
            errors.extend(immutable("spec.scope", &spec["scope"], &old_spec["scope"]));
            errors.extend(immutable(
                "spec.names.kind",
                &names["kind"],
                &old_spec["names"]["kind"],
            ));
        }
        errors.extend(immutable("spec.group", &spec["group"], &old_spec["group"]));
        errors.extend(immutable(
            "spec.names.plural",
            &names["plural"],
            &old_spec["names"]["plural"],
        ));
        // The stored versions are the server's (kept from storage on update).
        for (i, sv) in old["status"]["storedVersions"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let sv = sv.as_str().unwrap_or_default();
            if !seen.contains(&sv) {
                errors.push(invalid(
                    format!("status.storedVersions[{i}]"),
                    sv,
                    &format!("missing from spec.versions; {sv} was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in {sv} and removes {sv} from status.storedVersions"),
                ));
            }
        }
    }
    (name_errors, errors)
}

/// `ValidateCustomResourceDefinitionNames` for `spec.names`.
fn validate_names(
    names: &Value,
    plural: &str,
    singular: &str,
    kind: &str,
    list_kind: &str,
) -> Vec<Cause> {
    let mut errors = Vec::new();
    let at = |f: &str| format!("spec.names.{f}");
    for (field, value) in [("plural", plural), ("singular", singular)] {
        if let errs @ [_, ..] = dns1035_label(value).as_slice()
            && !value.is_empty()
        {
            errors.push(invalid(at(field), value, &errs.join(",")));
        }
    }
    for (field, value) in [("kind", kind), ("listKind", list_kind)] {
        if let errs @ [_, ..] = dns1035_label(&value.to_lowercase()).as_slice()
            && !value.is_empty()
        {
            errors.push(invalid(
                at(field),
                value,
                &format!(
                    "may have mixed case, but should otherwise match: {}",
                    errs.join(",")
                ),
            ));
        }
    }
    for list in ["shortNames", "categories"] {
        for (i, v) in names[list].as_array().into_iter().flatten().enumerate() {
            let v = v.as_str().unwrap_or_default();
            if let errs @ [_, ..] = dns1035_label(v).as_slice() {
                errors.push(invalid(format!("{}[{i}]", at(list)), v, &errs.join(",")));
            }
        }
        if list == "shortNames" && !kind.is_empty() && kind == list_kind {
            errors.push(invalid(
                at("listKind"),
                list_kind,
                "kind and listKind may not be the same",
            ));
        }
    }
    errors
}

/// The errors of one `openAPIV3Schema` at `at`: the structural and OpenAPI checks, then (when
/// those pass) the CEL rules' compilation.
fn schema_errors(schema: &Value, at: &str) -> Vec<Cause> {
    let errors = validate_crd_schema(schema, at);
    if !errors.is_empty() {
        return errors.iter().map(cause).collect();
    }
    let props = match serde_json::from_value(schema.clone()) {
        Ok(p) => p,
        Err(e) => return vec![invalid(at, "", &e.to_string())],
    };
    match StructuralSchema::compile(&props) {
        Ok(_) => Vec::new(),
        Err(e) => e
            .causes()
            .into_iter()
            .map(|(f, reason, message)| {
                let field = if f.is_empty() {
                    at.to_owned()
                } else {
                    format!("{at}.{f}")
                };
                (field, reason, message)
            })
            .collect(),
    }
}
