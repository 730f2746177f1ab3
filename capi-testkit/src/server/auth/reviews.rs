//! The review endpoints that ask the authorizer about the caller itself:
//! `SelfSubjectAccessReview` and `SelfSubjectRulesReview` (authorization.k8s.io/v1, what
//! `kubectl auth can-i` and `can-i --list` send) and `SelfSubjectReview`
//! (authentication.k8s.io/v1, `kubectl auth whoami`). They are answered, never stored.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Authorizer;
use super::attributes::{Attributes, ResourceAttributes};
use super::identity::Identity;
use super::rbac::{aggregate, rule_json};
use crate::server::errors::ApiError;

/// Which review a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Review {
    Access,
    Rules,
    Whoami,
}

impl Review {
    fn of(attrs: &Attributes) -> Option<Self> {
        let Attributes::Resource(r) = attrs else {
            return None;
        };
        if !r.namespace.is_empty() || !r.name.is_empty() || r.version != "v1" {
            return None;
        }
        match (r.group.as_str(), r.resource.as_str()) {
            ("authorization.k8s.io", "selfsubjectaccessreviews") => Some(Self::Access),
            ("authorization.k8s.io", "selfsubjectrulesreviews") => Some(Self::Rules),
            ("authentication.k8s.io", "selfsubjectreviews") => Some(Self::Whoami),
            _ => None,
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Self::Access => "SelfSubjectAccessReview",
            Self::Rules => "SelfSubjectRulesReview",
            Self::Whoami => "SelfSubjectReview",
        }
    }

    fn group(self) -> &'static str {
        match self {
            Self::Access | Self::Rules => "authorization.k8s.io",
            Self::Whoami => "authentication.k8s.io",
        }
    }
}

/// Whether `path` may be a review endpoint (cheap; [`serve`] decides).
pub(crate) fn may_be_review(path: &str) -> bool {
    path.starts_with("/apis/authorization.k8s.io/")
        || path.starts_with("/apis/authentication.k8s.io/")
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

/// The answer to a review request; `None` for every other request.
pub(crate) fn serve(
    authorizer: &Authorizer<'_>,
    user: &Identity,
    attrs: &Attributes,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response> {
    let review = Review::of(attrs)?;
    if attrs.verb() != "create" {
        return Some(ApiError::method_not_allowed().into_response());
    }
    Some(match answer(authorizer, user, review, headers, body) {
        Ok(v) => (
            StatusCode::CREATED,
            [(header::CONTENT_TYPE, "application/json")],
            v.to_string(),
        )
            .into_response(),
        Err(e) => e.into_response(),
    })
}

fn answer(
    authorizer: &Authorizer<'_>,
    user: &Identity,
    review: Review,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, ApiError> {
    let obj = super::review_body::decode(headers, body, review.kind())?;
    let metadata = if obj["metadata"].is_object() {
        obj["metadata"].clone()
    } else {
        json!({})
    };
    let spec = &obj["spec"];
    let status = match review {
        Review::Access => access_status(authorizer, user, spec)?,
        Review::Rules => rules_status(authorizer, user, spec)?,
        Review::Whoami => json!({"userInfo": {"username": user.name(), "groups": user.groups()}}),
    };
    let mut out = json!({
        "kind": review.kind(), "apiVersion": format!("{}/v1", review.group()),
        "metadata": metadata, "status": status,
    });
    if review != Review::Whoami {
        out["spec"] = if spec.is_object() {
            spec.clone()
        } else {
            json!({})
        };
    }
    Ok(out)
}

fn access_status(
    authorizer: &Authorizer<'_>,
    user: &Identity,
    spec: &Value,
) -> Result<Value, ApiError> {
    let (res, non) = (&spec["resourceAttributes"], &spec["nonResourceAttributes"]);
    let invalid = |field: &str, message: &str| {
        ApiError::invalid(
            "SelfSubjectAccessReview",
            "authorization.k8s.io",
            "",
            &[(
                field.to_owned(),
                "FieldValueInvalid",
                format!("Invalid value: \"null\": {message}"),
            )],
        )
    };
    let attrs = match (res.is_object(), non.is_object()) {
        (true, true) => {
            return Err(invalid(
                "spec.nonResourceAttributes",
                "cannot be specified in combination with resourceAttributes",
            ));
        }
        (false, false) => {
            return Err(invalid(
                "spec.resourceAttributes",
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            ));
        }
        (true, false) => Attributes::Resource(ResourceAttributes {
            verb: text(res, "verb"),
            group: text(res, "group"),
            version: text(res, "version"),
            resource: text(res, "resource"),
            subresource: text(res, "subresource"),
            namespace: text(res, "namespace"),
            name: text(res, "name"),
        }),
        (false, true) => Attributes::NonResource {
            verb: text(non, "verb"),
            path: text(non, "path"),
        },
    };
    let decision = authorizer.authorize(user, &attrs);
    let mut status = json!({"allowed": decision.allowed});
    if !decision.reason.is_empty() {
        status["reason"] = json!(decision.reason);
    }
    Ok(status)
}

fn rules_status(
    authorizer: &Authorizer<'_>,
    user: &Identity,
    spec: &Value,
) -> Result<Value, ApiError> {
    let namespace = text(spec, "namespace");
    if namespace.is_empty() {
        return Err(ApiError::bad_request("no namespace on request"));
    }
    let (rules, errors) = authorizer.rules_for(user, &namespace);
    let (mut resource, mut non_resource) = (Vec::new(), Vec::new());
    for r in &rules {
        let (res, non) = rule_json(r);
        resource.extend(res);
        non_resource.extend(non);
    }
    let mut status =
        json!({"resourceRules": resource, "nonResourceRules": non_resource, "incomplete": false});
    if !errors.is_empty() {
        status["evaluationError"] = json!(aggregate(&errors));
    }
    Ok(status)
}
