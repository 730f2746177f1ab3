//! Discovery, version, health and OpenAPI endpoints.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::App;

fn json(v: &Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// The Kubernetes version the server reports.
pub(crate) const VERSION: (&str, &str) = ("1", "36");

/// Answers the non-resource paths; `None` for resource paths.
pub(crate) fn serve(app: &App, segs: &[&str], headers: &HeaderMap) -> Option<Response> {
    let registry = || app.store.lock().registry.clone();
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let aggregated = accept.contains("as=APIGroupDiscoveryList") && accept.contains("v=v2;");
    match segs {
        ["api"] if aggregated => Some(aggregated_response(&registry(), true)),
        ["apis"] if aggregated => Some(aggregated_response(&registry(), false)),
        ["healthz" | "livez" | "readyz", ..] => Some((StatusCode::OK, "ok").into_response()),
        ["metrics"] => Some(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                app.requests.snapshot().prometheus(),
            )
                .into_response(),
        ),
        ["version"] => Some(json(&json!({
            "major": VERSION.0, "minor": VERSION.1, "gitVersion": format!("v{}.{}.0-capi-testkit", VERSION.0, VERSION.1),
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "n/a (capi-testkit, Rust)", "compiler": "rustc", "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
        }))),
        ["api"] => Some(json(
            &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": app.address}]}),
        )),
        ["apis"] => Some(json(&registry().group_list())),
        ["api", "v1"] => registry().resource_list("", "v1").map(|l| json(&l)),
        ["apis", group] => {
            let groups = registry().groups();
            let versions = groups.get(*group)?;
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
                .collect();
            Some(json(
                &json!({"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": vs, "preferredVersion": vs.first()}),
            ))
        }
        ["apis", group, version] => Some(
            registry()
                .resource_list(group, version)
                .map(|l| json(&l))
                .unwrap_or_else(|| super::errors::ApiError::no_route().into_response()),
        ),
        ["openapi", "v2"] => Some(super::errors::ApiError::no_route().into_response()),
        ["openapi", "v3"] => Some(json(&openapi_index(app))),
        ["openapi", "v3", rest @ ..] => Some(json(&openapi_doc(app, &rest.join("/")))),
        _ => None,
    }
}

/// Aggregated discovery (apidiscovery.k8s.io/v2): the whole core group (`/api`) or every named
/// group (`/apis`) in one document; the response content type tells clients which format it is.
fn aggregated_response(registry: &super::resources::Registry, core: bool) -> Response {
    let mut items = Vec::new();
    for (group, versions) in registry.groups() {
        if group.is_empty() != core {
            continue;
        }
        let versions: Vec<Value> = versions
            .iter()
            .map(|v| {
                let resources: Vec<Value> = registry
                    .all()
                    .filter(|r| r.group == group)
                    .filter_map(|r| {
                        let ver = r.version(v)?;
                        let kind = json!({"group": r.group, "version": v, "kind": r.kind});
                        let mut subresources = Vec::new();
                        if ver.status {
                            subresources.push(json!({"subresource": "status", "responseKind": kind, "verbs": ["get", "patch", "update"]}));
                        }
                        if ver.scale.is_some() {
                            subresources.push(json!({"subresource": "scale", "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"}, "verbs": ["get", "patch", "update"]}));
                        }
                        let mut e = json!({
                            "resource": r.plural, "responseKind": kind,
                            "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                            "singularResource": r.singular,
                            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                        });
                        if !r.short_names.is_empty() {
                            e["shortNames"] = json!(r.short_names);
                        }
                        if !r.categories.is_empty() {
                            e["categories"] = json!(r.categories);
                        }
                        if !subresources.is_empty() {
                            e["subresources"] = json!(subresources);
                        }
                        Some(e)
                    })
                    .collect();
                json!({"version": v, "resources": resources, "freshness": "Current"})
            })
            .collect();
        items.push(
            json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions}),
        );
    }
    let body = json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items});
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            ),
            (header::VARY, "Accept"),
        ],
        body.to_string(),
    )
        .into_response()
}

fn openapi_index(app: &App) -> Value {
    let mut paths = serde_json::Map::new();
    let rv = app.store.lock().rv;
    paths.insert(
        "api/v1".into(),
        json!({"serverRelativeURL": format!("/openapi/v3/api/v1?hash={rv:016X}")}),
    );
    for (group, versions) in app.store.lock().registry.groups() {
        if group.is_empty() {
            continue;
        }
        for v in versions {
            paths.insert(format!("apis/{group}/{v}"), json!({"serverRelativeURL": format!("/openapi/v3/apis/{group}/{v}?hash={rv:016X}")}));
        }
    }
    json!({"paths": paths})
}

/// A GV document with one PATCH operation per resource, carrying its group-version-kind and
/// the `fieldValidation` parameter: what kubectl's server-side validation check looks for.
/// (Schemas are not published yet, so `kubectl explain` has nothing to show.)
fn openapi_doc(app: &App, gv: &str) -> Value {
    let (group, version) = match gv.split('/').collect::<Vec<_>>().as_slice() {
        ["api", v] => (String::new(), (*v).to_owned()),
        ["apis", g, v] => ((*g).to_owned(), (*v).to_owned()),
        _ => (String::new(), String::new()),
    };
    let mut paths = serde_json::Map::new();
    let registry = app.store.lock().registry.clone();
    for r in registry
        .all()
        .filter(|r| r.group == group && r.version(&version).is_some())
    {
        let prefix = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let path = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{prefix}/{}/{{name}}", r.plural)
        };
        let mut types = json!({"application/json-patch+json": {}, "application/merge-patch+json": {}, "application/apply-patch+yaml": {}});
        if r.builtin {
            types["application/strategic-merge-patch+json"] = json!({});
        }
        paths.insert(path, json!({
            "patch": {
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {"group": r.group, "version": version, "kind": r.kind},
                "parameters": [
                    {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                    {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                    {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                    {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}}
                ],
                "requestBody": {"content": types},
                "responses": {"200": {"description": "OK"}}
            }
        }));
    }
    json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.36.0"}, "paths": paths, "components": {"schemas": {}}})
}
