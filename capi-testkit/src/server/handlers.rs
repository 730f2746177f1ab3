//! Request handling: URL layout, verbs, bodies, versions, subresources and response shapes.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::errors::{ApiError, success_status};
use super::resources::Resource;
use super::selectors::{FieldSelector, LabelSelector};
use super::store::{DeleteOptions, Deletion};
use super::{App, discovery, events, options, table, watch};
use crate::patch::{self, FieldManager, PatchType, WriteScope};

/// A parsed resource URL.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub res: Resource,
    pub version: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

type Params = HashMap<String, String>;

fn json_response(code: StatusCode, body: &Value, warnings: &[String]) -> Response {
    encoded_response(code, Bytes::from(body.to_string()), warnings)
}

/// [`json_response`] of a body already encoded.
fn encoded_response(code: StatusCode, body: Bytes, warnings: &[String]) -> Response {
    let mut resp = (code, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    for w in warnings {
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{}\"", w.replace('"', "\\\""))) {
            resp.headers_mut().append("Warning", v);
        }
    }
    resp
}

/// The one entry point: every request lands here.
pub(crate) async fn dispatch(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params: Params = Query::<Params>::try_from_uri(&uri)
        .map(|q| q.0)
        .unwrap_or_default();
    app.requests.record(method.as_str(), uri.path());
    let request = super::faults::RequestInfo::parse(&method, uri.path(), &params);
    if let Some(resp) = app.faults.intercept(&request).await {
        return resp;
    }
    if let Some(resp) = super::auth::gate(
        &app.auth, &app.store, &method, &uri, &headers, &params, &body,
    ) {
        return resp;
    }
    // Accept: a 406 before anything is done, protobuf answers for clients that prefer them.
    let negotiated = super::protobuf::Negotiation::of(&app, &method, uri.path(), &headers, &params);
    let resp = match negotiated.refusal() {
        Some(e) => e.into_response(),
        None => match handle(&app, &method, &uri, &headers, &params, body).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        },
    };
    negotiated.answer(app.faults.tap(&request, resp)).await
}

async fn handle(
    app: &Arc<App>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    params: &Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let path = uri.path().trim_matches('/');
    let segs: Vec<&str> = if path.is_empty() {
        Vec::new()
    } else {
        path.split('/').collect()
    };
    if let Some(resp) = discovery::serve(app, &segs, headers) {
        return Ok(resp);
    }
    let target = parse_target(app, &segs)?;
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut warnings = Vec::new();
    if let Some(w) = target
        .res
        .version(&target.version)
        .and_then(|v| v.deprecation_warning.clone())
    {
        warnings.push(w);
    }
    // Only `All` gets this far: writes refuse other values (see `options`), reads ignore them.
    let dry_run = params.get("dryRun").is_some_and(|d| d == "All");
    match (method, &target.name, target.subresource.as_deref()) {
        (&Method::GET, None, None) => {
            if matches!(params.get("watch").map(String::as_str), Some("true" | "1")) {
                return watch::serve(app.clone(), target, params, accept.contains("as=Table"))
                    .await;
            }
            list(app, &target, params, accept, &warnings)
        }
        (&Method::GET, Some(name), sub) => {
            let stored = app.store.get_stored(
                &target.res,
                target.namespace.as_deref().unwrap_or(""),
                name,
            )?;
            // Already in the version asked for: the stored encoding is the answer.
            if sub != Some("scale")
                && !accept.contains("as=Table")
                && stored.is(&target.res.api_version(&target.version), &target.res.kind)
            {
                return Ok(encoded_response(
                    StatusCode::OK,
                    stored.json().clone(),
                    &warnings,
                ));
            }
            let obj = stored.value();
            if sub == Some("scale") {
                return Ok(json_response(
                    StatusCode::OK,
                    &scale_of(&target, &obj)?,
                    &warnings,
                ));
            }
            let obj = output(&target.res, &target.version, obj);
            if accept.contains("as=Table") {
                return Ok(json_response(
                    StatusCode::OK,
                    &table::table(&target, &[obj], None, app.store.lock().rv),
                    &warnings,
                ));
            }
            Ok(json_response(StatusCode::OK, &obj, &warnings))
        }
        (&Method::POST, None, None) => {
            create(app, &target, headers, params, &body, dry_run, warnings)
        }
        (&Method::PUT, Some(name), sub) => update(
            app, &target, name, sub, headers, params, &body, dry_run, warnings,
        ),
        (&Method::PATCH, Some(name), sub) => patch(
            app, &target, name, sub, headers, params, &body, dry_run, warnings,
        ),
        (&Method::DELETE, Some(name), None) => {
            delete(app, &target, name, params, &body, dry_run, &warnings)
        }
        (&Method::DELETE, None, None) => {
            delete_collection(app, &target, params, &body, dry_run, &warnings)
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn parse_target(app: &App, segs: &[&str]) -> Result<Target, ApiError> {
    let (group, version, rest) = match segs {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::no_route()),
    };
    let (namespace, rest): (Option<String>, &[&str]) = match rest {
        ["namespaces", ns, r, ..] if !matches!(*r, "status" | "finalize") => {
            (Some((*ns).to_owned()), &rest[2..])
        }
        _ => (None, rest),
    };
    let (plural, name, sub) = match rest {
        [p] => (*p, None, None),
        [p, n] => (*p, Some((*n).to_owned()), None),
        [p, n, s] => (*p, Some((*n).to_owned()), Some((*s).to_owned())),
        _ => return Err(ApiError::no_route()),
    };
    let state = app.store.lock();
    let res = state
        .registry
        .get(group, plural)
        .filter(|r| r.version(version).is_some())
        .cloned()
        .ok_or_else(ApiError::no_route)?;
    drop(state);
    if res.namespaced != namespace.is_some() && name.is_some() {
        return Err(ApiError::no_route());
    }
    if let Some(s) = &sub {
        let v = res.version(version).ok_or_else(ApiError::no_route)?;
        let ok = match s.as_str() {
            "status" => v.status,
            "scale" => v.scale.is_some(),
            "finalize" => res.plural == "namespaces",
            _ => false,
        };
        if !ok {
            return Err(ApiError::no_route());
        }
    }
    Ok(Target {
        res,
        version: version.to_owned(),
        namespace,
        name,
        subresource: sub,
    })
}

/// A stored object as the client asked for it: in the requested version (and, for a resource
/// that is a view of another's storage, converted to its form).
pub(crate) fn output(res: &Resource, version: &str, mut obj: Value) -> Value {
    if events::is_event(res) {
        return events::from_storage(res, obj);
    }
    obj["apiVersion"] = json!(res.api_version(version));
    obj["kind"] = json!(res.kind);
    obj
}

/// [`output`] of a stored object only read: borrowed when it is already in the form asked for.
fn viewed<'a>(res: &Resource, version: &str, obj: &'a Value) -> Cow<'a, Value> {
    if !events::is_events_v1(res) && obj["apiVersion"] == res.api_version(version).as_str() {
        return Cow::Borrowed(obj);
    }
    Cow::Owned(output(res, version, obj.clone()))
}

/// An admitted object (in the version it was written in) as the store keeps it: in the storage
/// version, Events in their core form. Its managedFields were recorded before, in the version
/// of the write, as upstream records them.
fn to_storage(res: &Resource, mut obj: Value) -> Result<Value, ApiError> {
    if events::is_event(res) {
        return events::to_storage(res, obj);
    }
    obj["apiVersion"] = json!(res.api_version(res.storage_version()));
    obj["kind"] = json!(res.kind);
    Ok(obj)
}

fn parse_body(res: &Resource, headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if ct.contains("yaml") {
        let text = std::str::from_utf8(body)
            .map_err(|e| ApiError::bad_request(format!("body is not UTF-8: {e}")))?;
        return serde_saphyr::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")));
    }
    if ct.contains("protobuf") {
        return super::protobuf::decode_body(res, body);
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

/// A Secret's `stringData` written into its `data` (base64, over `data`'s own keys) and
/// dropped, as the conversion of a v1 Secret to the stored one does: `stringData` is
/// write-only and never read back.
fn merge_string_data(secret: &mut Value) {
    use base64::Engine as _;
    let Some(string_data) = secret.as_object_mut().and_then(|o| o.remove("stringData")) else {
        return;
    };
    let entries = match string_data {
        Value::Object(entries) if entries.values().all(Value::is_string) => entries,
        // Not a map of strings: left for decoding to refuse.
        Value::Null => return,
        other => {
            secret["stringData"] = other;
            return;
        }
    };
    if !secret["data"].is_object() {
        secret["data"] = json!({});
    }
    for (k, v) in entries {
        let text = v.as_str().unwrap_or_default();
        secret["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
    }
}

/// Decoding steps every write goes through: undeclared fields of built-in kinds dropped,
/// apiVersion checked, a custom resource's defaulting and pruning (warnings or a strict error),
/// then validation. The object stays in the version it was written in (see [`to_storage`]).
fn admit(
    _app: &App,
    target: &Target,
    obj: &mut Value,
    params: &Params,
    warnings: &mut Vec<String>,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    if !obj.is_object() || !(obj["metadata"].is_object() || obj["metadata"].is_null()) {
        return Err(ApiError::bad_request(
            "the object and its metadata must be JSON objects",
        ));
    }
    // A built-in kind is decoded into its Go type first: fields it does not declare are gone
    // (a strict decoding error, or warnings) before anything is checked.
    if target.res.builtin
        && let Some(unknown) = super::protobuf::prune_undeclared(
            &target.res.api_version(&target.version),
            &target.res.kind,
            obj,
        )
    {
        report_unknown(target, &unknown, params, warnings)?;
    }
    if target.res.builtin && target.res.group.is_empty() && target.res.plural == "secrets" {
        merge_string_data(obj);
    }
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if let Some(av) = obj["apiVersion"].as_str()
        && av != target.res.api_version(&target.version)
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            target.res.api_version(&target.version)
        )));
    }
    if let Some(ns) = obj["metadata"]["namespace"].as_str()
        && target.res.namespaced
        && Some(ns) != target.namespace.as_deref()
        && !ns.is_empty()
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    // ObjectMeta errors are reported with the kind's own (strategy `Validate` aggregates them):
    // a CRD's checks here, a custom resource's schema errors below.
    let mut meta_errors =
        crate::schema::validate_object_meta(&obj["metadata"], target.res.namespaced);
    // An update's own checks, which kube-apiserver runs twice (`rest.BeforeUpdate`, then the
    // kind's strategy); a subresource write keeps the stored metadata. Then the core types'
    // finalizer rule (`pkg/apis/core/validation.ValidateObjectMeta`).
    if let Some(old) = old
        && target.subresource.is_none()
    {
        let update = crate::schema::validate_object_meta_update(&obj["metadata"], &old["metadata"]);
        meta_errors.extend(update.iter().cloned());
        meta_errors.extend(update);
    }
    if target.res.builtin && target.res.group != "apiextensions.k8s.io" {
        meta_errors.extend(crate::schema::validate_kube_finalizer_names(
            &obj["metadata"],
        ));
    }
    let kind_causes = match target.subresource {
        None => super::builtins::validate(
            &target.res,
            target.namespace.as_deref().unwrap_or_default(),
            obj,
            old,
            &meta_errors,
        )?,
        Some(_) => None,
    };
    let invalid = |causes: &[(String, &str, String)]| {
        ApiError::invalid(&target.res.kind, &target.res.group, &name, causes)
    };
    let invalid_fields = |errors: &[crate::schema::FieldError]| {
        ApiError::from_field_errors(&target.res.kind, &target.res.group, &name, errors)
    };
    let schema = target
        .res
        .version(&target.version)
        .and_then(|v| v.schema.clone());
    match kind_causes {
        Some(causes) if !causes.is_empty() => return Err(invalid(&causes)),
        Some(_) => {}
        None if schema.is_none() && !meta_errors.is_empty() => {
            return Err(invalid_fields(&meta_errors));
        }
        None => {}
    }
    let status_subresource = target
        .res
        .version(&target.version)
        .is_some_and(|v| v.status)
        && !target.res.builtin;
    if status_subresource && target.subresource.is_none() {
        // As the custom resource strategy's PrepareForCreate/PrepareForUpdate: a write to the
        // main resource does not set status, so the status in the body is neither validated
        // nor kept (the stored one is, on update).
        if let Some(o) = obj.as_object_mut() {
            match old.and_then(|o| o.get("status")) {
                Some(status) => {
                    o.insert("status".into(), status.clone());
                }
                None => {
                    o.remove("status");
                }
            }
        }
    }
    if let Some(schema) = schema {
        schema.apply_defaults(obj);
        let unknown = schema.prune(obj);
        report_unknown(target, &unknown, params, warnings)?;
        let mut ctx = old.map_or_else(
            crate::schema::WriteContext::create,
            crate::schema::WriteContext::update,
        );
        if target.subresource.as_deref() == Some("status") {
            ctx = ctx.on_status();
        }
        let errors = schema.validate_write_after(meta_errors, obj, ctx);
        if !errors.is_empty() {
            return Err(invalid_fields(&errors));
        }
    }
    if !target.res.builtin && target.subresource.is_none() {
        warnings.extend(crate::schema::finalizer_warnings(
            &obj["metadata"],
            old.map(|o| &o["metadata"]),
        ));
    }
    obj["apiVersion"] = json!(target.res.api_version(&target.version));
    obj["kind"] = json!(target.res.kind);
    Ok(())
}

/// Unknown (pruned) fields: a strict-decoding error with `fieldValidation=Strict`, warnings
/// unless `Ignore`.
fn report_unknown(
    target: &Target,
    unknown: &[String],
    params: &Params,
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    if unknown.is_empty() {
        return Ok(());
    }
    match params.get("fieldValidation").map(String::as_str) {
        Some("Strict") => {
            let list: Vec<String> = unknown
                .iter()
                .map(|p| format!("unknown field \"{}\"", p.trim_start_matches('.')))
                .collect();
            Err(ApiError::bad_request(format!(
                "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
                list.join(", "),
                kind = target.res.kind,
                version = target.version,
            )))
        }
        Some("Ignore") => Ok(()),
        _ => {
            warnings.extend(
                unknown
                    .iter()
                    .map(|p| format!("unknown field \"{}\"", p.trim_start_matches('.'))),
            );
            Ok(())
        }
    }
}

/// The merge semantics of the target's objects (server-side apply, strategic merge patch).
fn field_schema(target: &Target) -> Box<dyn patch::FieldSchema> {
    if target.res.builtin {
        return Box::new(patch::BuiltinSchema::new(
            &target.res.group,
            &target.res.kind,
        ));
    }
    // The served schema itself, shared: its `openAPIV3Schema` is not copied for each write.
    let schema = target
        .res
        .version(&target.version)
        .and_then(|v| v.schema.clone());
    Box::new(patch::CrdSchema::compiled(schema))
}

/// Which fields a write through this endpoint may change (the strategies' reset fields).
fn write_scope(target: &Target, sub: Option<&str>) -> WriteScope {
    let status_sub = target
        .res
        .version(target.res.storage_version())
        .is_some_and(|v| v.status);
    match sub {
        Some("status") => WriteScope::StatusOnly,
        _ if status_sub => WriteScope::AllButStatus,
        _ => WriteScope::All,
    }
}

fn create(
    app: &Arc<App>,
    target: &Target,
    headers: &HeaderMap,
    params: &Params,
    body: &Bytes,
    dry_run: bool,
    mut warnings: Vec<String>,
) -> Result<Response, ApiError> {
    options::check_write(options::Write::Create, params)?;
    let mut obj = parse_body(&target.res, headers, body)?;
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    if obj["metadata"]["resourceVersion"]
        .as_str()
        .is_some_and(|r| !r.is_empty())
    {
        return Err(ApiError::invalid(
            &target.res.kind,
            &target.res.group,
            obj["metadata"]["name"].as_str().unwrap_or_default(),
            &[(
                "metadata.resourceVersion".into(),
                "FieldValueInvalid",
                "Invalid value: \"".to_owned()
                    + obj["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or_default()
                    + "\": must be empty",
            )],
        ));
    }
    warnings.extend(crate::schema::dedup_owner_references(&mut obj, false));
    // Drops the status of an object with a status subresource, as upstream's PrepareForCreate.
    admit(app, target, &mut obj, params, &mut warnings, None)?;
    super::builtins::on_create(&target.res, &mut obj);
    let mut manager = field_manager(params, headers);
    manager.scope = write_scope(target, None);
    patch::record_update(None, &mut obj, &manager, &*field_schema(target));
    let obj = to_storage(&target.res, obj)?;
    let (created, stored) = app.store.create_encoded(
        &target.res,
        target.namespace.as_deref().unwrap_or(""),
        obj,
        dry_run,
    )?;
    let created = after_create(app, target, created, dry_run)?;
    // As created and in the version asked for (a CRD is answered as its side effects left it).
    if let Some(stored) = stored
        && target.res.plural != "customresourcedefinitions"
        && stored.is(&target.res.api_version(&target.version), &target.res.kind)
    {
        return Ok(encoded_response(
            StatusCode::CREATED,
            stored.json().clone(),
            &warnings,
        ));
    }
    Ok(json_response(
        StatusCode::CREATED,
        &output(&target.res, &target.version, created),
        &warnings,
    ))
}

/// What follows every create, by POST or by server-side apply: built-in kinds' side effects (a
/// CRD starts being served) and, for a CRD, the object as they left it (its status filled in).
fn after_create(
    app: &Arc<App>,
    target: &Target,
    created: Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    if dry_run {
        return Ok(created);
    }
    super::builtins::after_create(app, &target.res, &created)?;
    let is_crd = target.res.group == "apiextensions.k8s.io"
        && target.res.plural == "customresourcedefinitions";
    if !is_crd {
        return Ok(created);
    }
    Ok(app
        .store
        .get(
            &target.res,
            target.namespace.as_deref().unwrap_or(""),
            created["metadata"]["name"].as_str().unwrap_or_default(),
        )
        .unwrap_or(created))
}

fn field_manager(params: &Params, headers: &HeaderMap) -> FieldManager {
    let manager = params.get("fieldManager").cloned().unwrap_or_else(|| {
        headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .and_then(|ua| ua.split('/').next())
            .unwrap_or("unknown")
            .to_owned()
    });
    FieldManager {
        manager,
        api_version: String::new(),
        subresource: String::new(),
        time: super::store::now(),
        scope: WriteScope::All,
    }
}

#[allow(clippy::too_many_arguments)]
fn update(
    app: &Arc<App>,
    target: &Target,
    name: &str,
    sub: Option<&str>,
    headers: &HeaderMap,
    params: &Params,
    body: &Bytes,
    dry_run: bool,
    mut warnings: Vec<String>,
) -> Result<Response, ApiError> {
    options::check_write(options::Write::Update, params)?;
    let mut obj = parse_body(&target.res, headers, body)?;
    if !obj.is_object() || !(obj["metadata"].is_object() || obj["metadata"].is_null()) {
        return Err(ApiError::bad_request(
            "the object and its metadata must be JSON objects",
        ));
    }
    if obj["metadata"]["name"].as_str().is_some_and(|n| n != name) {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            obj["metadata"]["name"].as_str().unwrap_or_default()
        )));
    }
    if sub == Some("scale") {
        return write_scale(app, target, name, |_| Ok(obj.clone()), dry_run, &warnings);
    }
    let rv = obj["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_owned);
    if rv.is_none() && !target.res.unconditional_update {
        // Upstream words this one with the plural resource, not the Kind.
        return Err(ApiError::invalid(
            &target.res.plural,
            &target.res.group,
            name,
            &[(
                "metadata.resourceVersion".into(),
                "FieldValueInvalid",
                "Invalid value: 0: must be specified for an update".into(),
            )],
        ));
    }
    obj["metadata"]["name"] = json!(name);
    let ns = target.namespace.as_deref().unwrap_or_default();
    let old = app.store.get(&target.res, ns, name).ok();
    // A uid in the body is a precondition of the update (`defaultUpdatedObjectInfo`).
    if let (Some(uid), Some(old)) = (obj["metadata"]["uid"].as_str(), &old)
        && !uid.is_empty()
        && old["metadata"]["uid"].as_str() != Some(uid)
    {
        return Err(ApiError::conflict_message(
            &target.res.plural,
            &target.res.group,
            name,
            format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                old["metadata"]["uid"].as_str().unwrap_or_default()
            ),
        ));
    }
    warnings.extend(crate::schema::dedup_owner_references(&mut obj, false));
    admit(app, target, &mut obj, params, &mut warnings, old.as_ref())?;
    let mut manager = field_manager(params, headers);
    manager.subresource = sub.unwrap_or_default().to_owned();
    manager.scope = write_scope(target, sub);
    let schema = field_schema(target);
    let ns = target.namespace.clone().unwrap_or_default();
    let res = target.res.clone();
    let updated = app
        .store
        .update(&target.res, &ns, name, sub, dry_run, |old| {
            if let Some(rv) = &rv
                && old["metadata"]["resourceVersion"].as_str() != Some(rv.as_str())
            {
                return Err(ApiError::conflict(&res.plural, &res.group, name));
            }
            let mut new = obj;
            let current = viewed(&res, &target.version, old);
            patch::record_update(Some(&current), &mut new, &manager, &*schema);
            to_storage(&res, new)
        })?;
    super::builtins::after_update(app, &target.res, &updated);
    Ok(json_response(
        StatusCode::OK,
        &output(&target.res, &target.version, updated),
        &warnings,
    ))
}

#[allow(clippy::too_many_arguments)]
fn patch(
    app: &Arc<App>,
    target: &Target,
    name: &str,
    sub: Option<&str>,
    headers: &HeaderMap,
    params: &Params,
    body: &Bytes,
    dry_run: bool,
    mut warnings: Vec<String>,
) -> Result<Response, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let kind = PatchType::from_content_type(ct)
        .ok_or_else(|| ApiError::unsupported_patch(target.res.builtin))?;
    if kind == PatchType::StrategicMerge && !target.res.builtin {
        return Err(ApiError::unsupported_patch(false));
    }
    options::check_write(
        options::Write::Patch {
            apply: kind == PatchType::Apply,
        },
        params,
    )?;
    let patch_body: Value = if kind == PatchType::Apply {
        let text = std::str::from_utf8(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
        serde_saphyr::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
    };
    let mut manager = field_manager(params, headers);
    manager.subresource = sub.unwrap_or_default().to_owned();
    manager.scope = write_scope(target, sub);
    let mut patch_body = patch_body;
    if kind == PatchType::Apply {
        // Present and not empty: the options check requires it of apply patches.
        manager.manager = params.get("fieldManager").cloned().unwrap_or_default();
        if !patch_body.is_object()
            || !(patch_body["metadata"].is_object() || patch_body["metadata"].is_null())
        {
            return Err(ApiError::bad_request(
                "the apply configuration and its metadata must be objects",
            ));
        }
        // Fields the schema (or a built-in kind's type) does not know are dropped from the
        // configuration (or refused), so that nobody owns them.
        let schema = target
            .res
            .version(&target.version)
            .and_then(|v| v.schema.as_ref());
        let unknown = match schema {
            _ if sub == Some("scale") => None,
            Some(schema) => Some(schema.prune(&mut patch_body)),
            None if target.res.builtin => super::protobuf::prune_undeclared(
                &target.res.api_version(&target.version),
                &target.res.kind,
                &mut patch_body,
            ),
            None => None,
        };
        if let Some(unknown) = unknown {
            report_unknown(target, &unknown, params, &mut warnings)?;
        }
    }
    let force = params.get("force").is_some_and(|f| f == "true");
    let ns = target.namespace.clone().unwrap_or_default();
    if sub == Some("scale") {
        let untyped = patch::CrdSchema::default();
        return write_scale(
            app,
            target,
            name,
            |scale| apply_patch(kind, scale, &patch_body, &manager, force, &untyped),
            dry_run,
            &warnings,
        );
    }
    let schema = field_schema(target);
    // Server-side apply creates a missing object (not through a subresource).
    if kind == PatchType::Apply && sub.is_none() && app.store.get(&target.res, &ns, name).is_err() {
        let mut config = patch_body.clone();
        config["metadata"]["name"] = json!(name);
        let mut obj = patch::server_side_apply(None, &config, &manager, force, &*schema)
            .map_err(patch_error)?;
        warnings.extend(crate::schema::dedup_owner_references(&mut obj, true));
        admit(app, target, &mut obj, params, &mut warnings, None)?;
        super::builtins::on_create(&target.res, &mut obj);
        let obj = to_storage(&target.res, obj)?;
        let created = app.store.create(&target.res, &ns, obj, dry_run)?;
        let created = after_create(app, target, created, dry_run)?;
        return Ok(json_response(
            StatusCode::CREATED,
            &output(&target.res, &target.version, created),
            &warnings,
        ));
    }
    let res = target.res.clone();
    let rv_precondition = patch_body["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_owned);
    let mut admit_warnings = Vec::new();
    let updated = app
        .store
        .update(&target.res, &ns, name, sub, dry_run, |old| {
            if let Some(rv) = &rv_precondition
                && old["metadata"]["resourceVersion"].as_str() != Some(rv.as_str())
            {
                return Err(ApiError::conflict(&res.plural, &res.group, name));
            }
            let current = output(&res, &target.version, old.clone());
            let mut new = apply_patch(kind, &current, &patch_body, &manager, force, &*schema)?;
            admit_warnings.extend(crate::schema::dedup_owner_references(&mut new, true));
            admit(
                app,
                target,
                &mut new,
                params,
                &mut admit_warnings,
                Some(old),
            )?;
            if kind != PatchType::Apply {
                patch::record_update(Some(&current), &mut new, &manager, &*schema);
            }
            to_storage(&res, new)
        })?;
    warnings.extend(admit_warnings);
    super::builtins::after_update(app, &target.res, &updated);
    Ok(json_response(
        StatusCode::OK,
        &output(&target.res, &target.version, updated),
        &warnings,
    ))
}

fn patch_error(e: patch::PatchError) -> ApiError {
    match e {
        patch::PatchError::Malformed(m) => ApiError::bad_request(m),
        patch::PatchError::ApplyConflict { conflicts } => {
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| {
                    json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", c.manager), "field": c.field})
                })
                .collect();
            ApiError {
                code: 409,
                reason: "Conflict",
                message: patch::conflict_message(&conflicts),
                details: Some(json!({ "causes": causes })),
            }
        }
        // Upstream hides the JSON patch engine's message behind a generic one.
        patch::PatchError::Failed(_) => ApiError {
            code: 422,
            reason: "Invalid",
            message: "the server rejected our request due to an error in our request".into(),
            details: Some(json!({})),
        },
        patch::PatchError::Unprocessable(m) => ApiError {
            code: 422,
            reason: "Invalid",
            message: "the server rejected our request due to an error in our request".into(),
            details: Some(
                json!({"causes": [{"reason": "UnexpectedServerResponse", "message": m}]}),
            ),
        },
    }
}

fn apply_patch(
    kind: PatchType,
    current: &Value,
    body: &Value,
    manager: &FieldManager,
    force: bool,
    schema: &dyn patch::FieldSchema,
) -> Result<Value, ApiError> {
    match kind {
        PatchType::Merge => Ok(patch::merge_patch(current, body)),
        PatchType::Json => patch::json_patch(current, body).map_err(patch_error),
        PatchType::StrategicMerge => {
            patch::strategic_merge_patch(current, body, schema).map_err(patch_error)
        }
        PatchType::Apply => patch::server_side_apply(Some(current), body, manager, force, schema)
            .map_err(patch_error),
    }
}

fn json_path_get<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.trim_start_matches('.')
        .split('.')
        .try_fold(obj, |v, k| v.get(k))
}

fn json_path_set(obj: &mut Value, path: &str, value: Value) {
    let parts: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let mut cur = obj;
    for (i, p) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            cur[*p] = value;
            return;
        }
        if !cur[*p].is_object() {
            cur[*p] = json!({});
        }
        cur = &mut cur[*p];
    }
}

fn scale_of(target: &Target, obj: &Value) -> Result<Value, ApiError> {
    let scale = target
        .res
        .version(&target.version)
        .and_then(|v| v.scale.clone())
        .ok_or_else(ApiError::no_route)?;
    let m = &obj["metadata"];
    let mut status = json!({"replicas": json_path_get(obj, &scale.status_replicas).and_then(Value::as_i64).unwrap_or(0)});
    if let Some(sel) = scale
        .label_selector
        .as_deref()
        .and_then(|p| json_path_get(obj, p))
        .and_then(Value::as_str)
    {
        status["selector"] = json!(sel);
    }
    Ok(json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"], "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
        "spec": {"replicas": json_path_get(obj, &scale.spec_replicas).and_then(Value::as_i64).unwrap_or(0)},
        "status": status,
    }))
}

fn write_scale(
    app: &Arc<App>,
    target: &Target,
    name: &str,
    change: impl FnOnce(&Value) -> Result<Value, ApiError>,
    dry_run: bool,
    warnings: &[String],
) -> Result<Response, ApiError> {
    let scale_paths = target
        .res
        .version(&target.version)
        .and_then(|v| v.scale.clone())
        .ok_or_else(ApiError::no_route)?;
    let ns = target.namespace.clone().unwrap_or_default();
    let current = app.store.get(&target.res, &ns, name)?;
    let new_scale = change(&scale_of(target, &current)?)?;
    let replicas = new_scale["spec"]["replicas"]
        .as_i64()
        .ok_or_else(|| ApiError::bad_request("spec.replicas is required"))?;
    let updated = app
        .store
        .update(&target.res, &ns, name, None, dry_run, |old| {
            let mut new = old.clone();
            json_path_set(&mut new, &scale_paths.spec_replicas, json!(replicas));
            Ok(new)
        })?;
    Ok(json_response(
        StatusCode::OK,
        &scale_of(target, &updated)?,
        warnings,
    ))
}

pub(crate) fn selectors(
    target: &Target,
    params: &Params,
) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(
        params
            .get("labelSelector")
            .map(String::as_str)
            .unwrap_or(""),
    )
    .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(
        params
            .get("fieldSelector")
            .map(String::as_str)
            .unwrap_or(""),
        &target.res.field_selectors(),
    )
    .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

fn list(
    app: &Arc<App>,
    target: &Target,
    params: &Params,
    accept: &str,
    warnings: &[String],
) -> Result<Response, ApiError> {
    options::check_list(params, false)?;
    let (labels, fields) = selectors(target, params)?;
    let (items, rv) = app.store.list(&target.res, target.namespace.as_deref());
    let mut items: Vec<Value> = items
        .into_iter()
        .filter(|o| labels.matches(o["metadata"].get("labels")) && fields.matches(o))
        .map(|o| output(&target.res, &target.version, o))
        .collect();
    // Pagination: the continue token is the offset, valid for the list resourceVersion.
    let start: usize = match params.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => token
            .split_once(':')
            .and_then(|(_, off)| off.parse().ok())
            .ok_or_else(|| ApiError::bad_request("invalid continue token"))?,
        None => 0,
    };
    let limit: usize = params
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let total = items.len();
    items = items.into_iter().skip(start).take(limit).collect();
    let next = start.saturating_add(items.len());
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if next < total {
        metadata["continue"] = json!(format!("{rv}:{next}"));
        metadata["remainingItemCount"] = json!(total - next);
    }
    if accept.contains("as=Table") {
        return Ok(json_response(
            StatusCode::OK,
            &table::table(
                target,
                &items,
                metadata.get("continue").and_then(Value::as_str),
                rv,
            ),
            warnings,
        ));
    }
    let list = json!({"kind": target.res.list_kind, "apiVersion": target.res.api_version(&target.version), "metadata": metadata, "items": items});
    Ok(json_response(StatusCode::OK, &list, warnings))
}

fn delete_options(params: &Params, body: &Bytes, dry_run: bool) -> Result<DeleteOptions, ApiError> {
    let b: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    let orphan = b["orphanDependents"]
        .as_bool()
        .or_else(|| params.get("orphanDependents").map(|v| v == "true"));
    let policy = b["propagationPolicy"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| params.get("propagationPolicy").cloned());
    let mut dry_run_values: Vec<String> = b["dryRun"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .collect();
    if let Some(d) = params.get("dryRun").filter(|d| !d.is_empty()) {
        dry_run_values.push(d.clone());
    }
    options::check_delete(orphan, policy.as_deref(), &dry_run_values)?;
    let dry_run = dry_run || !dry_run_values.is_empty();
    let propagation = policy.or_else(|| {
        orphan.map(|o| {
            if o {
                "Orphan".into()
            } else {
                "Background".into()
            }
        })
    });
    Ok(DeleteOptions {
        propagation,
        uid: b["preconditions"]["uid"].as_str().map(str::to_owned),
        resource_version: b["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_owned),
        dry_run,
    })
}

fn delete(
    app: &Arc<App>,
    target: &Target,
    name: &str,
    params: &Params,
    body: &Bytes,
    dry_run: bool,
    warnings: &[String],
) -> Result<Response, ApiError> {
    let opts = delete_options(params, body, dry_run)?;
    match app.store.delete(
        &target.res,
        target.namespace.as_deref().unwrap_or(""),
        name,
        &opts,
    )? {
        Deletion::Removed(obj) if !target.res.builtin => {
            let uid = obj["metadata"]["uid"].as_str().unwrap_or_default();
            Ok(json_response(
                StatusCode::OK,
                &success_status(&target.res.plural, &target.res.group, name, uid),
                warnings,
            ))
        }
        Deletion::Removed(obj) | Deletion::Pending(obj) => Ok(json_response(
            StatusCode::OK,
            &output(&target.res, &target.version, obj),
            warnings,
        )),
    }
}

fn delete_collection(
    app: &Arc<App>,
    target: &Target,
    params: &Params,
    body: &Bytes,
    dry_run: bool,
    warnings: &[String],
) -> Result<Response, ApiError> {
    options::check_list(params, false)?;
    let opts = delete_options(params, body, dry_run)?;
    let (labels, fields) = selectors(target, params)?;
    let (items, rv) = app.store.list(&target.res, target.namespace.as_deref());
    let mut deleted = Vec::new();
    for o in items
        .into_iter()
        .filter(|o| labels.matches(o["metadata"].get("labels")) && fields.matches(o))
    {
        let ns = o["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let name = o["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match app.store.delete(&target.res, &ns, &name, &opts) {
            Ok(Deletion::Removed(obj) | Deletion::Pending(obj)) => {
                deleted.push(output(&target.res, &target.version, obj))
            }
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let list = json!({"kind": target.res.list_kind, "apiVersion": target.res.api_version(&target.version), "metadata": {"resourceVersion": rv.to_string()}, "items": deleted});
    Ok(json_response(StatusCode::OK, &list, warnings))
}
