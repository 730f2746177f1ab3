//! The `ObjectMeta` rules of `meta.rs`, each with upstream's exact wording.

use serde_json::{Value, json};

use super::*;

/// `field: message` of each error, as the 422's message lists them.
fn lines(errors: &[FieldError]) -> Vec<String> {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message()))
        .collect()
}

fn check(meta: Value) -> Vec<String> {
    lines(&validate_object_meta(&meta, true))
}

fn owner(api_version: &str, kind: &str, name: &str, uid: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": name, "uid": uid})
}

#[test]
fn a_complete_owner_reference_is_valid() {
    let meta = json!({"name": "a", "ownerReferences": [owner("cluster.x-k8s.io/v1beta2", "Cluster", "c", "u1")]});
    assert!(check(meta).is_empty());
}

#[test]
fn owner_reference_fields_are_required_in_upstream_order_and_wording() {
    let meta = json!({"name": "a", "ownerReferences": [owner("", "", "", "")]});
    assert_eq!(
        check(meta),
        [
            "metadata.ownerReferences.apiVersion: Invalid value: \"\": version must not be empty",
            "metadata.ownerReferences.kind: Invalid value: \"\": must not be empty",
            "metadata.ownerReferences.name: Invalid value: \"\": must not be empty",
            "metadata.ownerReferences.uid: Invalid value: \"\": must not be empty",
        ]
    );
}

#[test]
fn owner_api_version_without_a_version_is_invalid() {
    for av in ["apps/", "a/b/c", "/"] {
        let meta = json!({"name": "a", "ownerReferences": [owner(av, "K", "n", "u")]});
        assert_eq!(
            check(meta),
            [format!(
                "metadata.ownerReferences.apiVersion: Invalid value: \"{av}\": version must not be empty"
            )],
            "{av}"
        );
    }
    // A group with an empty name and a version parses.
    let meta = json!({"name": "a", "ownerReferences": [owner("/v1", "K", "n", "u")]});
    assert!(check(meta).is_empty());
}

#[test]
fn missing_or_mistyped_owner_fields_read_as_empty() {
    let meta =
        json!({"name": "a", "ownerReferences": [{"apiVersion": "v1", "kind": "K", "name": 7}]});
    assert_eq!(
        check(meta),
        [
            "metadata.ownerReferences.name: Invalid value: \"\": must not be empty",
            "metadata.ownerReferences.uid: Invalid value: \"\": must not be empty",
        ]
    );
    // Not a list of objects: no owner references at all (as `Unstructured` reads them).
    assert!(check(json!({"name": "a", "ownerReferences": "x"})).is_empty());
    assert!(check(json!({"name": "a", "ownerReferences": [{}, 1]})).is_empty());
}

#[test]
fn a_core_event_cannot_be_an_owner() {
    let meta = json!({"name": "a", "ownerReferences": [owner("v1", "Event", "e", "u1")]});
    assert_eq!(
        check(meta),
        [
            r#"metadata.ownerReferences: Invalid value: {"apiVersion":"v1","kind":"Event","name":"e","uid":"u1"}: /v1, Kind=Event is disallowed from being an owner"#
        ]
    );
    // events.k8s.io Events may.
    let meta =
        json!({"name": "a", "ownerReferences": [owner("events.k8s.io/v1", "Event", "e", "u1")]});
    assert!(check(meta).is_empty());
}

#[test]
fn only_one_owner_reference_may_be_the_controller() {
    let mut a = owner("v1", "ConfigMap", "a", "u1");
    a["controller"] = json!(true);
    let mut b = owner("v1", "Secret", "b", "u2");
    b["controller"] = json!(true);
    b["blockOwnerDeletion"] = json!(false);
    let mut c = owner("v1", "Pod", "c", "u3");
    c["controller"] = json!(true);
    let meta = json!({"name": "x", "ownerReferences": [a, b, c]});
    let list = r#"[{"apiVersion":"v1","kind":"ConfigMap","name":"a","uid":"u1","controller":true},{"apiVersion":"v1","kind":"Secret","name":"b","uid":"u2","controller":true,"blockOwnerDeletion":false},{"apiVersion":"v1","kind":"Pod","name":"c","uid":"u3","controller":true}]"#;
    assert_eq!(
        check(meta),
        [
            format!(
                "metadata.ownerReferences: Invalid value: {list}: Only one reference can have Controller set to true. Found \"true\" in references for ConfigMap/a and Secret/b"
            ),
            format!(
                "metadata.ownerReferences: Invalid value: {list}: Only one reference can have Controller set to true. Found \"true\" in references for ConfigMap/a and Pod/c"
            ),
        ]
    );
}

#[test]
fn controller_false_or_mistyped_does_not_count() {
    let mut a = owner("v1", "ConfigMap", "a", "u1");
    a["controller"] = json!(true);
    let mut b = owner("v1", "Secret", "b", "u2");
    b["controller"] = json!(false);
    let mut c = owner("v1", "Pod", "c", "u3");
    c["controller"] = json!("true");
    assert!(check(json!({"name": "x", "ownerReferences": [a, b, c]})).is_empty());
}

#[test]
fn owner_values_are_printed_as_go_json() {
    let meta = json!({"name": "a", "ownerReferences": [owner("v1", "Event", "<&>", "u")]});
    assert_eq!(
        check(meta),
        [
            r#"metadata.ownerReferences: Invalid value: {"apiVersion":"v1","kind":"Event","name":"\u003c\u0026\u003e","uid":"u"}: /v1, Kind=Event is disallowed from being an owner"#
        ]
    );
}

#[test]
fn finalizers_must_be_qualified_names() {
    let meta = json!({"name": "a", "finalizers": ["example.com/ok", "bad name", "-x/y"]});
    let mut expected = Vec::new();
    for f in ["bad name", "-x/y"] {
        for msg in qualified_name(f) {
            expected.push(format!(
                "metadata.finalizers: Invalid value: \"{f}\": {msg}"
            ));
        }
    }
    assert_eq!(expected.len(), 2);
    assert!(expected[1].contains("prefix part a lowercase RFC 1123 subdomain"));
    assert_eq!(check(meta), expected);
}

#[test]
fn duplicate_finalizers_are_allowed() {
    assert!(check(json!({"name": "a", "finalizers": ["x/y", "x/y"]})).is_empty());
}

#[test]
fn orphan_and_foreground_deletion_cannot_both_be_set() {
    let meta = json!({"name": "a", "finalizers": ["orphan", "x/y", "foregroundDeletion"]});
    assert_eq!(
        check(meta),
        [
            r#"metadata.finalizers: Invalid value: ["orphan","x/y","foregroundDeletion"]: finalizer orphan and foregroundDeletion cannot be both set"#
        ]
    );
}

#[test]
fn finalizers_that_are_not_all_strings_are_none() {
    assert!(check(json!({"name": "a", "finalizers": ["bad name", 1]})).is_empty());
}

#[test]
fn metadata_errors_keep_upstreams_order() {
    let meta = json!({
        "name": "a",
        "labels": {"bad key!": "v"},
        "ownerReferences": [owner("v1", "K", "n", "")],
        "finalizers": ["bad name"],
        "managedFields": [{"manager": "m\u{7}", "operation": "Update", "fieldsType": "FieldsV1"}],
    });
    let fields: Vec<String> = validate_object_meta(&meta, true)
        .into_iter()
        .map(|e| e.field)
        .collect();
    assert_eq!(
        fields,
        [
            "metadata.labels",
            "metadata.ownerReferences.uid",
            "metadata.finalizers",
            "metadata.managedFields[0].manager",
        ]
    );
}

#[test]
fn managed_fields_managers_are_at_most_128_printable_characters() {
    let long = "m".repeat(129);
    let meta = json!({"name": "a", "managedFields": [
        {"manager": "ok", "operation": "Apply", "fieldsType": "FieldsV1"},
        {"manager": long, "operation": "Update", "fieldsType": "FieldsV1", "subresource": "s".repeat(257)},
        {"manager": "a\tb", "operation": "Update", "fieldsType": "FieldsV1"},
    ]});
    assert_eq!(
        check(meta),
        [
            "metadata.managedFields[1].manager: Too long: may not be more than 128 bytes",
            "metadata.managedFields[1].subresource: Too long: may not be more than 256 bytes",
            "metadata.managedFields[2].manager: Invalid value: \"a\\tb\": invalid character U+0009 (at position 1)",
        ]
    );
    let ok = "m".repeat(128);
    let meta = json!({"name": "a", "managedFields": [{"manager": ok, "operation": "Update", "fieldsType": "FieldsV1"}]});
    assert!(check(meta).is_empty());
}

#[test]
fn managed_fields_the_field_manager_replaces_are_not_checked() {
    // An undecodable entry makes upstream use the stored managedFields instead.
    let long = "m".repeat(200);
    for bad in [
        json!({"manager": long, "operation": "Delete", "fieldsType": "FieldsV1"}),
        json!({"manager": long, "operation": "Update", "fieldsType": "FieldsV2"}),
        json!({"manager": long, "operation": "Update"}),
        json!("not an entry"),
    ] {
        let meta = json!({"name": "a", "managedFields": [bad]});
        assert!(check(meta.clone()).is_empty(), "{meta}");
    }
}

#[test]
fn core_types_refuse_unqualified_non_standard_finalizers() {
    let meta = json!({"finalizers": ["kubernetes", "orphan", "foregroundDeletion", "x/y", "mine", "other"]});
    assert_eq!(
        lines(&validate_kube_finalizer_names(&meta)),
        [
            "metadata.finalizers[4]: Invalid value: \"mine\": name is neither a standard finalizer name nor is it fully qualified",
            "metadata.finalizers[5]: Invalid value: \"other\": name is neither a standard finalizer name nor is it fully qualified",
        ]
    );
}

#[test]
fn custom_resources_are_warned_about_added_unqualified_finalizers() {
    let warning = |f: &str| {
        format!(
            "metadata.finalizers: \"{f}\": prefer a domain-qualified finalizer name including a path (/) to avoid accidental conflicts with other finalizer writers"
        )
    };
    let new = json!({"finalizers": ["zeta", "kubernetes", "x/y", "alpha", "alpha"]});
    assert_eq!(
        finalizer_warnings(&new, None),
        [warning("alpha"), warning("zeta")]
    );
    // Only the added ones, on update.
    let old = json!({"finalizers": ["zeta"]});
    assert_eq!(finalizer_warnings(&new, Some(&old)), [warning("alpha")]);
    assert!(finalizer_warnings(&old, Some(&old)).is_empty());
}

#[test]
fn update_refuses_a_new_uid_or_name() {
    let old = json!({"name": "a", "uid": "1", "creationTimestamp": "2024-01-01T00:00:00Z"});
    assert!(validate_object_meta_update(&old, &old).is_empty());
    // Absent (or empty) means "keep"; a new creationTimestamp is silently restored.
    let new = json!({"name": "a", "uid": "", "creationTimestamp": "2030-01-01T00:00:00Z"});
    assert!(validate_object_meta_update(&new, &old).is_empty());
    let new = json!({"name": "b", "uid": "2"});
    assert_eq!(
        lines(&validate_object_meta_update(&new, &old)),
        [
            "metadata.name: Invalid value: \"b\": field is immutable",
            "metadata.uid: Invalid value: \"2\": field is immutable",
        ]
    );
}

#[test]
fn update_cannot_set_deletion_timestamp_or_grace_period() {
    let old = json!({"name": "a"});
    let new = json!({"name": "a", "deletionTimestamp": "2024-01-01T01:00:00+01:00", "deletionGracePeriodSeconds": 30});
    assert_eq!(
        lines(&validate_object_meta_update(&new, &old)),
        [
            "metadata.deletionTimestamp: Invalid value: \"2024-01-01T00:00:00Z\": field is immutable",
            "metadata.deletionGracePeriodSeconds: Invalid value: 30: field is immutable",
        ]
    );
    // A deleting object keeps its deletionTimestamp whatever the write says; its grace period
    // may be omitted but not changed.
    let old = json!({"name": "a", "deletionTimestamp": "2024-01-01T00:00:00Z", "deletionGracePeriodSeconds": 0});
    let new = json!({"name": "a", "deletionTimestamp": "2030-01-01T00:00:00Z"});
    assert!(validate_object_meta_update(&new, &old).is_empty());
    let new = json!({"name": "a", "deletionGracePeriodSeconds": 5});
    assert_eq!(
        lines(&validate_object_meta_update(&new, &old)),
        ["metadata.deletionGracePeriodSeconds: Invalid value: 5: field is immutable"]
    );
    // An unparsable timestamp reads as none.
    let new = json!({"name": "a", "deletionTimestamp": "yesterday"});
    assert!(validate_object_meta_update(&new, &json!({"name": "a"})).is_empty());
}

#[test]
fn exact_duplicate_owner_references_are_dropped_with_a_warning() {
    let a = owner("v1", "ConfigMap", "a", "u1");
    let mut a_controller = a.clone();
    a_controller["controller"] = json!(true);
    let b = owner("v1", "ConfigMap", "b", "u2");
    let mut obj = json!({"metadata": {"ownerReferences": [a.clone(), b.clone(), a.clone(), a_controller.clone(), b.clone()]}});
    let warning = dedup_owner_references(&mut obj, false);
    assert_eq!(
        warning.as_deref(),
        Some(
            ".metadata.ownerReferences contains duplicate entries; API server dedups owner references in 1.20+, and may reject such requests as early as 1.24; please fix your requests; duplicate UID(s) observed: u1, u2"
        )
    );
    // Same uid but different fields: kept.
    assert_eq!(
        obj["metadata"]["ownerReferences"],
        json!([a, b, a_controller])
    );
    assert_eq!(dedup_owner_references(&mut obj, true), None);
    let mut obj = json!({"metadata": {"ownerReferences": [b.clone(), b]}});
    assert!(
        dedup_owner_references(&mut obj, true).is_some_and(|w| w.starts_with(
            ".metadata.ownerReferences contains duplicate entries after mutating admission happens; API server dedups"
        ))
    );
    for mut odd in [
        json!(null),
        json!([1]),
        json!({"metadata": 1}),
        json!({"metadata": {"ownerReferences": [1, 1]}}),
    ] {
        assert_eq!(dedup_owner_references(&mut odd, false), None);
    }
}
