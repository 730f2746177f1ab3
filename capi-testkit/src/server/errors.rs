//! API errors as kube-apiserver writes them: `metav1.Status` bodies with the `reason` and
//! `details` clients branch on (apiserver-semantics.md 1.8).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One failed request, ready to be written as a Status.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `reason`, e.g. `NotFound`.
    pub reason: &'static str,
    /// `message`.
    pub message: String,
    /// `details`, if any.
    pub details: Option<Value>,
}

impl ApiError {
    fn new(
        code: u16,
        reason: &'static str,
        message: impl Into<String>,
        details: Option<Value>,
    ) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details,
        }
    }

    /// `<resource>.<group> "<name>"`, as messages name objects (core: `<resource> "<name>"`).
    fn qualified(resource: &str, group: &str, name: &str) -> String {
        if group.is_empty() {
            format!("{resource} \"{name}\"")
        } else {
            format!("{resource}.{group} \"{name}\"")
        }
    }

    fn details(resource: &str, group: &str, name: &str) -> Value {
        let mut d = json!({"name": name, "kind": resource});
        if !group.is_empty() {
            d["group"] = json!(group);
        }
        d
    }

    /// 404 for an object.
    pub fn not_found(resource: &str, group: &str, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} not found", Self::qualified(resource, group, name)),
            Some(Self::details(resource, group, name)),
        )
    }

    /// 404 for an unknown path or resource.
    pub fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
            Some(json!({})),
        )
    }

    /// 409 AlreadyExists.
    pub fn already_exists(resource: &str, group: &str, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} already exists", Self::qualified(resource, group, name)),
            Some(Self::details(resource, group, name)),
        )
    }

    /// 409 Conflict for a stale resourceVersion or a failed precondition.
    pub fn conflict(resource: &str, group: &str, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {}: the object has been modified; please apply your changes to the latest version and try again",
                Self::qualified(resource, group, name)
            ),
            Some(Self::details(resource, group, name)),
        )
    }

    /// 409 Conflict with a custom message (preconditions).
    pub fn conflict_message(
        resource: &str,
        group: &str,
        name: &str,
        message: impl Into<String>,
    ) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {}: {}",
                Self::qualified(resource, group, name),
                message.into()
            ),
            Some(Self::details(resource, group, name)),
        )
    }

    /// 422 Invalid with one cause per field: `(field, cause reason, message)`.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: &[(String, &str, String)]) -> Self {
        let qualified = if group.is_empty() {
            format!("{kind} \"{name}\"")
        } else {
            format!("{kind}.{group} \"{name}\"")
        };
        // The message lists each distinct error once; the causes keep repeats (as upstream).
        let mut parts: Vec<String> = Vec::new();
        for (f, _, m) in causes {
            let p = format!("{f}: {m}");
            if !parts.contains(&p) {
                parts.push(p);
            }
        }
        let message = match parts.as_slice() {
            [one] => format!("{qualified} is invalid: {one}"),
            many => format!("{qualified} is invalid: [{}]", many.join(", ")),
        };
        let mut details = json!({"kind": kind});
        if !name.is_empty() {
            details["name"] = json!(name);
        }
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        details["causes"] = causes
            .iter()
            .map(|(f, r, m)| json!({"reason": r, "message": m, "field": f}))
            .collect();
        Self::new(422, "Invalid", message, Some(details))
    }

    /// 422 Invalid from field errors, each a cause worded as apimachinery words it.
    pub fn from_field_errors(
        kind: &str,
        group: &str,
        name: &str,
        errors: &[crate::schema::FieldError],
    ) -> Self {
        let causes: Vec<(String, &str, String)> = errors
            .iter()
            .map(|e| (e.field.clone(), e.kind.reason(), e.message()))
            .collect();
        Self::invalid(kind, group, name, &causes)
    }

    /// 422 Invalid with a free message (e.g. a failed JSON patch).
    pub fn invalid_message(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message, None)
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message, None)
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>, details: Option<Value>) -> Self {
        Self::new(403, "Forbidden", message, details)
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            Some(json!({})),
        )
    }

    /// 415 UnsupportedMediaType for a patch type the resource does not take.
    pub fn unsupported_patch(builtin: bool) -> Self {
        let accepted = if builtin {
            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json"
        } else {
            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
        };
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {accepted}"
            ),
            None,
        )
    }

    /// 410 Expired.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message, None)
    }

    /// 500.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message, None)
    }

    /// The Status body.
    pub fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": self.message, "reason": self.reason, "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            code,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.status().to_string(),
        )
            .into_response()
    }
}

/// A success Status (immediate deletes of custom resources).
pub fn success_status(resource: &str, group: &str, name: &str, uid: &str) -> Value {
    let mut d = json!({"name": name, "kind": resource, "uid": uid});
    if !group.is_empty() {
        d["group"] = json!(group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": d})
}
