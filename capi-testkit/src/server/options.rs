//! A request's options (its query parameters, and a DELETE's body) checked as kube-apiserver's
//! handlers check them, before the object is looked at: apimachinery's
//! `ValidateCreateOptions`, `ValidateUpdateOptions`, `ValidatePatchOptions` and
//! `ValidateDeleteOptions` (`pkg/apis/meta/v1/validation`), `ValidateListOptions` for lists,
//! watches and collection deletes (`pkg/apis/meta/internalversion/validation`). A violation is
//! a 422 Invalid on the options kind, `CreateOptions.meta.k8s.io "" is invalid: ...`, with one
//! cause per violation.
//!
//! Watches also get `SetListOptionsDefaults`: with the WatchList feature on (as in
//! kube-apiserver 1.34 and later), a watch from no resourceVersion or `0` that asks for neither
//! `sendInitialEvents` nor `resourceVersionMatch` is served as `sendInitialEvents=true`, so it
//! ends its initial events with the `initial-events-end` bookmark when bookmarks are allowed.

use std::collections::HashMap;

use serde_json::Value;

use super::errors::ApiError;
use crate::gofmt;
use crate::schema::{FieldError, FieldErrorType};

/// apimachinery's `FieldManagerMaxLength`.
const FIELD_MANAGER_MAX_LENGTH: usize = 128;

/// The write verbs whose options are checked, as the handler names its options kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// POST: `CreateOptions`.
    Create,
    /// PUT: `UpdateOptions`.
    Update,
    /// PATCH: `PatchOptions`; `apply` for a server-side apply patch.
    Patch { apply: bool },
}

impl Write {
    fn kind(self) -> &'static str {
        match self {
            Self::Create => "CreateOptions",
            Self::Update => "UpdateOptions",
            Self::Patch { .. } => "PatchOptions",
        }
    }
}

/// A create's, update's or patch's options: `fieldManager` (at most 128 bytes, printable),
/// `dryRun` (`All` only), `fieldValidation` (`Ignore`, `Warn`, `Strict` or empty), and for a
/// patch `force` (apply patches only) and `fieldManager` (required by apply patches).
pub(crate) fn check_write(verb: Write, params: &HashMap<String, String>) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    let manager = params.get("fieldManager").map_or("", String::as_str);
    if let Write::Patch { apply } = verb {
        if !apply && params.contains_key("force") {
            errors.push(FieldError::forbidden(
                "force",
                "may not be specified for non-apply patch",
            ));
        }
        if apply && manager.is_empty() {
            errors.push(FieldError::required(
                "fieldManager",
                "is required for apply patch",
            ));
        }
    }
    errors.extend(field_manager(manager));
    errors.extend(dry_run(params.get("dryRun").map(String::as_str)));
    if let Some(v) = params.get("fieldValidation")
        && !matches!(v.as_str(), "" | "Ignore" | "Warn" | "Strict")
    {
        errors.push(not_supported(
            "fieldValidation",
            gofmt::quote(v),
            &["", "Ignore", "Strict", "Warn"],
        ));
    }
    invalid(verb.kind(), &errors)
}

/// A delete's options, from its body and query: `propagationPolicy` one of the three (and not
/// together with the deprecated `orphanDependents`), `dryRun` `All` only.
pub(crate) fn check_delete(
    orphan_dependents: Option<bool>,
    propagation_policy: Option<&str>,
    dry_run_values: &[String],
) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if let (Some(_), Some(p)) = (orphan_dependents, propagation_policy) {
        errors.push(FieldError::new(
            "propagationPolicy",
            FieldErrorType::Invalid,
            Value::from(p),
            "orphanDependents and deletionPropagation cannot be both set",
        ));
    }
    if let Some(p) = propagation_policy
        && !matches!(p, "Foreground" | "Background" | "Orphan")
    {
        errors.push(not_supported(
            "propagationPolicy",
            gofmt::quote(p),
            &["Foreground", "Background", "Orphan", "nil"],
        ));
    }
    if dry_run_values.iter().any(|v| v != "All") {
        errors.push(dry_run_error(dry_run_values));
    }
    invalid("DeleteOptions", &errors)
}

/// What a list, watch or collection delete asked for, after the checks and, for a watch,
/// after upstream's defaulting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListOptions {
    /// `sendInitialEvents`, if given or defaulted.
    pub send_initial_events: Option<bool>,
    /// `resourceVersionMatch`, if given or defaulted.
    pub resource_version_match: Option<String>,
}

/// A list's (or collection delete's) options, or with `watch` a watch's: `ValidateListOptions`
/// after `SetListOptionsDefaults`.
pub(crate) fn check_list(
    params: &HashMap<String, String>,
    watch: bool,
) -> Result<ListOptions, ApiError> {
    let rv = params.get("resourceVersion").map_or("", String::as_str);
    let cont = params.get("continue").map_or("", String::as_str);
    let mut options = ListOptions {
        send_initial_events: params.get("sendInitialEvents").map(|v| v == "true"),
        resource_version_match: params
            .get("resourceVersionMatch")
            .filter(|m| !m.is_empty())
            .cloned(),
    };
    if watch
        && options.send_initial_events.is_none()
        && options.resource_version_match.is_none()
        && (rv.is_empty() || rv == "0")
    {
        options.send_initial_events = Some(true);
        options.resource_version_match = Some("NotOlderThan".into());
    }
    let matched = options.resource_version_match.as_deref();
    let mut errors = Vec::new();
    if watch {
        if options.send_initial_events.is_some() && matched != Some("NotOlderThan") {
            errors.push(FieldError::forbidden(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if let Some(m) = matched {
            if options.send_initial_events.is_none() {
                errors.push(FieldError::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                ));
            }
            if m != "NotOlderThan" {
                errors.push(not_supported(
                    "resourceVersionMatch",
                    gofmt::quote(m),
                    &["NotOlderThan"],
                ));
            }
            if !cont.is_empty() {
                errors.push(FieldError::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
        }
    } else {
        if let Some(m) = matched {
            if rv.is_empty() {
                errors.push(FieldError::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            if !cont.is_empty() {
                errors.push(FieldError::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
            if m != "Exact" && m != "NotOlderThan" {
                errors.push(not_supported(
                    "resourceVersionMatch",
                    gofmt::quote(m),
                    &["Exact", "NotOlderThan", ""],
                ));
            }
            if m == "Exact" && rv == "0" {
                errors.push(FieldError::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
        }
        if options.send_initial_events.is_some() {
            errors.push(FieldError::forbidden(
                "sendInitialEvents",
                "sendInitialEvents is forbidden for list",
            ));
        }
    }
    invalid("ListOptions", &errors).map(|()| options)
}

/// `ValidateFieldManager`: at most 128 bytes, every character printable (Go's
/// `unicode.IsPrint`; each offender reported at its byte offset).
fn field_manager(manager: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if manager.len() > FIELD_MANAGER_MAX_LENGTH {
        errors.push(FieldError::too_long(
            "fieldManager",
            FIELD_MANAGER_MAX_LENGTH as i64,
        ));
    }
    for (i, c) in manager.char_indices() {
        if !gofmt::is_print(c) {
            errors.push(FieldError::new(
                "fieldManager",
                FieldErrorType::Invalid,
                Value::from(manager),
                format!("invalid character U+{:04X} (at position {i})", c as u32),
            ));
        }
    }
    errors
}

/// `ValidateDryRun` of a query's one `dryRun` value (an empty one means none, as kube-apiserver
/// treats `dryRun=`).
fn dry_run(value: Option<&str>) -> Option<FieldError> {
    match value {
        None | Some("" | "All") => None,
        Some(other) => Some(dry_run_error(&[other.to_owned()])),
    }
}

/// `field.NotSupported(dryRun, []string{...}, ["All"])`: Go prints the slice with `%#v`.
fn dry_run_error(values: &[String]) -> FieldError {
    let quoted: Vec<String> = values.iter().map(|v| gofmt::quote(v)).collect();
    not_supported(
        "dryRun",
        format!("[]string{{{}}}", quoted.join(", ")),
        &["All"],
    )
}

/// `field.NotSupported(path, value, supported)`, the value already as Go prints it.
fn not_supported(field: &str, value: String, supported: &[&str]) -> FieldError {
    let supported: Vec<String> = supported.iter().map(|s| gofmt::quote(s)).collect();
    // The value is part of the detail: FieldError prints a JSON value, and these are Go values.
    FieldError {
        field: field.to_owned(),
        kind: FieldErrorType::NotSupported,
        bad_value: None,
        detail: format!("{value}: supported values: {}", supported.join(", ")),
    }
}

/// `errors.NewInvalid(meta.k8s.io <kind>, "", errors)`, or nothing when there are none.
fn invalid(kind: &str, errors: &[FieldError]) -> Result<(), ApiError> {
    if errors.is_empty() {
        return Ok(());
    }
    Err(ApiError::from_field_errors(kind, "meta.k8s.io", "", errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn message(r: Result<(), ApiError>) -> String {
        r.expect_err("options should be refused").message
    }

    #[test]
    fn write_options_are_worded_as_upstream() {
        let long = "m".repeat(129);
        assert_eq!(
            message(check_write(
                Write::Create,
                &params(&[("fieldManager", &long)])
            )),
            "CreateOptions.meta.k8s.io \"\" is invalid: fieldManager: Too long: may not be more than 128 bytes"
        );
        assert!(check_write(Write::Create, &params(&[("fieldManager", &long[..128])])).is_ok());
        assert_eq!(
            message(check_write(
                Write::Update,
                &params(&[("fieldManager", "a\u{1}b")])
            )),
            "UpdateOptions.meta.k8s.io \"\" is invalid: fieldManager: Invalid value: \"a\\x01b\": invalid character U+0001 (at position 1)"
        );
        assert_eq!(
            message(check_write(Write::Create, &params(&[("dryRun", "Some")]))),
            "CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"Some\"}: supported values: \"All\""
        );
        assert_eq!(
            message(check_write(
                Write::Patch { apply: false },
                &params(&[("fieldValidation", "strict"), ("force", "false")])
            )),
            "PatchOptions.meta.k8s.io \"\" is invalid: [force: Forbidden: may not be specified for non-apply patch, fieldValidation: Unsupported value: \"strict\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\"]"
        );
        assert_eq!(
            message(check_write(Write::Patch { apply: true }, &params(&[]))),
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
        );
        assert!(
            check_write(
                Write::Patch { apply: true },
                &params(&[
                    ("fieldManager", "kubectl"),
                    ("force", "true"),
                    ("dryRun", "All")
                ])
            )
            .is_ok()
        );
    }

    #[test]
    fn delete_options_are_worded_as_upstream() {
        assert_eq!(
            message(check_delete(None, Some("Cascade"), &[])),
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"Cascade\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
        );
        assert_eq!(
            message(check_delete(Some(true), Some("Background"), &[])),
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Invalid value: \"Background\": orphanDependents and deletionPropagation cannot be both set"
        );
        assert!(check_delete(Some(false), None, &["All".into()]).is_ok());
    }

    #[test]
    fn list_and_watch_options_are_worded_as_upstream() {
        let list = |p: &[(&str, &str)]| check_list(&params(p), false).map(|_| ());
        let watch = |p: &[(&str, &str)]| check_list(&params(p), true).map(|_| ());
        assert_eq!(
            message(list(&[("resourceVersionMatch", "NotOlderThan")])),
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
        );
        assert_eq!(
            message(list(&[
                ("resourceVersion", "0"),
                ("resourceVersionMatch", "Exact")
            ])),
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""
        );
        assert_eq!(
            message(list(&[("sendInitialEvents", "false")])),
            "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list"
        );
        assert_eq!(
            message(watch(&[
                ("resourceVersion", "5"),
                ("sendInitialEvents", "true")
            ])),
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
        );
        assert_eq!(
            message(watch(&[
                ("resourceVersion", "5"),
                ("resourceVersionMatch", "Exact")
            ])),
            "ListOptions.meta.k8s.io \"\" is invalid: [resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided, resourceVersionMatch: Unsupported value: \"Exact\": supported values: \"NotOlderThan\"]"
        );
        assert!(list(&[("resourceVersion", "5"), ("resourceVersionMatch", "Exact")]).is_ok());
    }

    #[test]
    fn legacy_watches_are_defaulted_to_initial_events() {
        let defaulted = ListOptions {
            send_initial_events: Some(true),
            resource_version_match: Some("NotOlderThan".into()),
        };
        for rv in ["", "0"] {
            let got = check_list(&params(&[("resourceVersion", rv)]), true).unwrap();
            assert_eq!(got, defaulted, "resourceVersion {rv:?}");
        }
        let from_rv = check_list(&params(&[("resourceVersion", "7")]), true).unwrap();
        assert_eq!(from_rv.send_initial_events, None);
        let explicit = check_list(
            &params(&[
                ("sendInitialEvents", "false"),
                ("resourceVersionMatch", "NotOlderThan"),
            ]),
            true,
        )
        .unwrap();
        assert_eq!(explicit.send_initial_events, Some(false));
    }
}
