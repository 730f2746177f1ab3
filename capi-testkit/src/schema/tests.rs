#![allow(clippy::unwrap_used)]

use super::*;
use proptest::prelude::*;
use serde_json::json;

fn compile(schema: Value) -> StructuralSchema {
    let p: JSONSchemaProps = serde_json::from_value(schema).unwrap();
    StructuralSchema::compile(&p).unwrap()
}

/// A root schema with `spec` built from `spec_props`.
fn spec_schema(spec_props: Value) -> StructuralSchema {
    compile(json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": spec_props}}
    }))
}

/// `field: message` lines, as the 422's message lists them.
fn lines(errs: &[FieldError]) -> Vec<String> {
    errs.iter()
        .map(|e| format!("{}: {}", e.field, e.message()))
        .collect()
}

fn check(s: &StructuralSchema, spec: Value) -> Vec<String> {
    lines(&s.validate(&json!({"spec": spec})))
}

fn schema() -> StructuralSchema {
    compile(json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"},
                "mode": {"type": "string", "enum": ["A", "B"], "default": "A"},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "port": {"x-kubernetes-int-or-string": true}
            }}
        }
    }))
}

#[test]
fn defaults_prunes_and_validates_as_upstream() {
    let s = schema();
    let mut obj = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"}, "spec": {"name": 7, "bogus": 1, "free": {"any": 1}, "port": "80%"}});
    s.apply_defaults(&mut obj);
    assert_eq!(obj["spec"]["mode"], "A");
    assert_eq!(s.prune(&mut obj), [".spec.bogus"]);
    assert_eq!(obj["spec"]["free"], json!({"any": 1}));
    let errs = s.validate(&obj);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].field, "spec.name");
    assert_eq!(
        errs[0].message(),
        "Invalid value: \"integer\": spec.name in body must be of type string: \"integer\""
    );
    let missing = lines(&s.validate(&json!({"spec": {"mode": "C"}})));
    assert_eq!(
        missing,
        [
            "spec.mode: Unsupported value: \"C\": supported values: \"A\", \"B\"",
            "spec.name: Required value",
        ]
    );
}

#[test]
fn names_must_be_dns_subdomains() {
    assert_eq!(
        validate_object_meta(&json!({"name": "BadName"}), true).len(),
        1
    );
    assert!(validate_object_meta(&json!({"name": "good.name-1"}), true).is_empty());
}

#[test]
fn property_errors_come_before_required_errors_of_the_same_object() {
    let s = compile(
        json!({"type": "object", "properties": {"status": {"type": "object", "properties": {
            "conditions": {"type": "array", "items": {"type": "object",
                "required": ["lastTransitionTime", "status", "type"],
                "properties": {
                    "lastTransitionTime": {"type": "string", "format": "date-time"},
                    "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                    "type": {"type": "string"}
                }}}
        }}}}),
    );
    let obj = json!({"status": {"conditions": [{"status": "Maybe", "type": "Ready"}]}});
    assert_eq!(
        lines(&s.validate(&obj)),
        [
            "status.conditions[0].status: Unsupported value: \"Maybe\": supported values: \"True\", \"False\", \"Unknown\"",
            "status.conditions[0].lastTransitionTime: Required value",
        ]
    );
    // Through the status subresource the status schema is validated alone: same fields,
    // detail messages without the `status.` prefix.
    let obj = json!({"status": {"conditions": [{"status": 1, "type": "Ready", "lastTransitionTime": "x"}]}});
    assert_eq!(
        lines(&s.validate_write(&obj, WriteContext::create().on_status())),
        [
            "status.conditions[0].lastTransitionTime: Invalid value: \"x\": conditions[0].lastTransitionTime in body must be of type date-time: \"x\"",
            "status.conditions[0].status: Invalid value: \"integer\": conditions[0].status in body must be of type string: \"integer\"",
            "status.conditions[0].status: Unsupported value: 1: supported values: \"True\", \"False\", \"Unknown\"",
        ]
    );
}

#[test]
fn string_bounds_and_patterns_are_worded_as_kube_openapi() {
    let s = spec_schema(json!({
        "name": {"type": "string", "maxLength": 5, "minLength": 2, "pattern": "^[a-z]+$"},
        "one": {"type": "string", "maxLength": 1},
        "bad": {"type": "string", "pattern": "(["}
    }));
    assert_eq!(
        check(&s, json!({"name": "abcdef"})),
        ["spec.name: Too long: may not be more than 5 bytes"]
    );
    assert_eq!(
        check(&s, json!({"name": "a"})),
        ["spec.name: Invalid value: \"a\": spec.name in body should be at least 2 chars long"]
    );
    assert_eq!(
        check(&s, json!({"name": "AB"})),
        ["spec.name: Invalid value: \"AB\": spec.name in body should match '^[a-z]+$'"]
    );
    // Characters, not bytes, are counted.
    assert!(check(&s, json!({"one": "é"})).is_empty());
    assert_eq!(
        check(&s, json!({"one": "éé"})),
        ["spec.one: Too long: may not be more than 1 byte"]
    );
    let bad = check(&s, json!({"bad": "x"}));
    assert_eq!(bad.len(), 1);
    assert!(
        bad[0].starts_with(
            "spec.bad: Invalid value: \"x\": spec.bad in body should match '([, but pattern is invalid: "
        ),
        "{bad:?}"
    );
}

#[test]
fn number_bounds_are_worded_as_kube_openapi() {
    let s = spec_schema(json!({
        "n": {"type": "integer", "minimum": 0, "maximum": 10, "multipleOf": 2},
        "x": {"type": "integer", "minimum": 0, "exclusiveMinimum": true, "maximum": 1000000, "exclusiveMaximum": true},
        "f": {"type": "number", "maximum": 1.5, "multipleOf": 0.5}
    }));
    assert_eq!(
        check(&s, json!({"n": 11})),
        [
            "spec.n: Invalid value: 11: spec.n in body should be a multiple of 2",
            "spec.n: Invalid value: 11: spec.n in body should be less than or equal to 10",
        ]
    );
    assert_eq!(
        check(&s, json!({"n": -2})),
        ["spec.n: Invalid value: -2: spec.n in body should be greater than or equal to 0"]
    );
    assert_eq!(
        check(&s, json!({"x": 0})),
        ["spec.x: Invalid value: 0: spec.x in body should be greater than 0"]
    );
    assert_eq!(
        check(&s, json!({"x": 1000000})),
        ["spec.x: Invalid value: 1000000: spec.x in body should be less than 1000000"]
    );
    assert_eq!(
        check(&s, json!({"f": 1.75})),
        [
            "spec.f: Invalid value: 1.75: spec.f in body should be a multiple of 0.5",
            "spec.f: Invalid value: 1.75: spec.f in body should be less than or equal to 1.5",
        ]
    );
    // A float that is an integer passes `type: integer`, as in kube-openapi.
    assert!(check(&s, json!({"n": 4.0})).is_empty());
}

#[test]
fn list_and_map_sizes_are_worded_as_apimachinery() {
    let s = spec_schema(json!({
        "l": {"type": "array", "minItems": 2, "maxItems": 3, "items": {"type": "string", "maxLength": 1}},
        "m": {"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": {"type": "string"}}
    }));
    assert_eq!(
        check(&s, json!({"l": ["a"]})),
        ["spec.l: Invalid value: 1: spec.l in body should have at least 2 items"]
    );
    assert_eq!(
        check(&s, json!({"l": ["a", "b", "cc", "d"]})),
        [
            "spec.l[2]: Too long: may not be more than 1 byte",
            "spec.l: Too many: 4: must have at most 3 items",
        ]
    );
    assert_eq!(
        check(&s, json!({"m": {}})),
        ["spec.m: Invalid value: 0: spec.m in body should have at least 1 properties"]
    );
    assert_eq!(
        check(&s, json!({"m": {"a": "x", "b": 2}})),
        [
            "spec.m: Too many: 2: must have at most 1 item",
            "spec.m.b: Invalid value: \"integer\": spec.m.b in body must be of type string: \"integer\"",
        ]
    );
}

#[test]
fn formats_kube_apiserver_checks_are_checked_and_others_ignored() {
    let s = spec_schema(json!({
        "ip": {"type": "string", "format": "ipv4"},
        "when": {"type": "string", "format": "date-time"},
        "id": {"type": "string", "format": "uuid"},
        "port": {"type": "integer", "format": "int32"},
        "custom": {"type": "string", "format": "k8s-bogus"}
    }));
    assert!(
        check(
            &s,
            json!({"ip": "10.0.0.1", "when": "2024-01-02T03:04:05Z", "id": "123e4567-e89b-12d3-a456-426614174000", "port": 99999999999i64, "custom": "?"})
        )
        .is_empty()
    );
    assert_eq!(
        check(&s, json!({"ip": "10.0.0", "when": "yesterday"})),
        [
            "spec.ip: Invalid value: \"10.0.0\": spec.ip in body must be of type ipv4: \"10.0.0\"",
            "spec.when: Invalid value: \"yesterday\": spec.when in body must be of type date-time: \"yesterday\"",
        ]
    );
}

#[test]
fn format_checks_follow_upstream_functions() {
    use formats::Format;
    let f = |name: &str| Format::supported(name).unwrap();
    let cases: &[(&str, &str, bool)] = &[
        ("ipv6", "::1", true),
        ("ipv6", "1.2.3.4", false),
        ("cidr", "10.0.0.0/8", true),
        ("cidr", "10.0.0.0/33", false),
        ("mac", "00:1a:2b:3c:4d:5e", true),
        ("mac", "001a.2b3c.4d5e", true),
        ("mac", "00:1a:2b:3c:4d", false),
        ("hostname", "example.com", true),
        ("hostname", "-bad-.com", false),
        ("email", "a.b@example.com", true),
        ("email", "Name <a@example.com>", true),
        ("email", "not-an-email", false),
        ("uri", "https://example.com/a?b=c", true),
        ("uri", "/just/a/path", true),
        ("uri", "relative/path", false),
        ("uri", "http://bad host/", false),
        ("date", "2024-02-29", true),
        ("date", "2023-02-29", false),
        ("datetime", "2024-01-02T03:04:05.123+01:00", true),
        ("date-time", "2024-01-02T25:04:05Z", false),
        ("duration", "1h30m", true),
        ("duration", "5 days", true),
        ("duration", "soon", false),
        ("byte", "aGVsbG8=", true),
        ("byte", "", false),
        ("bsonobjectid", "507f1f77bcf86cd799439011", true),
        ("isbn10", "0321751043", true),
        ("isbn13", "978-0321751041", true),
        ("isbn", "1234567890", false),
        ("creditcard", "4111 1111 1111 1111", true),
        ("creditcard", "4111 1111 1111 1112", false),
        ("ssn", "123-45-6789", true),
        ("ssn", "123456789", false),
        ("hexcolor", "#fFf", true),
        ("rgbcolor", "rgb(255, 0, 10)", true),
        ("rgbcolor", "rgb(256,0,0)", false),
        ("uuid4", "123e4567-e89b-42d3-a456-426614174000", true),
        ("uuid5", "123e4567-e89b-42d3-a456-426614174000", false),
        ("password", "anything", true),
    ];
    for (format, value, ok) in cases {
        assert_eq!(f(format).accepts(value), *ok, "{format} {value:?}");
    }
    assert!(Format::supported("int32").is_none());
}

#[test]
fn sets_report_each_repeated_value_once_and_maps_every_repeated_key() {
    let s = spec_schema(json!({
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
        "pairs": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["a", "b"],
            "items": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}}
    }));
    assert_eq!(
        check(
            &s,
            json!({
                "tags": ["x", "y", "x", "x", "y"],
                "ports": [{"name": "a", "port": 1}, {"name": "a", "port": 2}, {"name": "a"}],
                "pairs": [{"a": "p", "b": 1}, {"a": "p", "b": 2}, {"a": "p", "b": 1}]
            })
        ),
        [
            "spec.pairs[2]: Duplicate value: map[string]interface {}{\"a\":\"p\", \"b\":1}",
            "spec.ports[1]: Duplicate value: map[string]interface {}{\"name\":\"a\"}",
            "spec.ports[2]: Duplicate value: map[string]interface {}{\"name\":\"a\"}",
            "spec.tags[2]: Duplicate value: \"x\"",
            "spec.tags[4]: Duplicate value: \"y\"",
        ]
    );
    assert_eq!(
        s.list_semantics(&["spec", "ports"]),
        ListSemantics::Map(vec!["name".into()])
    );
    assert_eq!(s.list_semantics(&["spec", "tags"]), ListSemantics::Set);
    assert_eq!(s.list_semantics(&["spec", "nope"]), ListSemantics::Atomic);
}

#[test]
fn nullable_and_nulls_behave_as_upstream() {
    let s = spec_schema(json!({
        "a": {"type": "string", "nullable": true},
        "b": {"type": "string"},
        "c": {"type": "string", "default": "dflt"},
        "l": {"type": "array", "items": {"type": "string"}}
    }));
    let mut obj = json!({"spec": {"a": null, "b": null, "c": null, "l": ["x", null]}});
    s.apply_defaults(&mut obj);
    assert!(s.prune(&mut obj).is_empty());
    assert_eq!(
        obj["spec"],
        json!({"a": null, "c": "dflt", "l": ["x", null]})
    );
    assert_eq!(
        lines(&s.validate(&obj)),
        ["spec.l[1]: Invalid value: \"null\": spec.l[1] in body must be of type string: \"null\""]
    );
}

#[test]
fn composites_are_worded_as_kube_openapi() {
    let s = spec_schema(json!({
        "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
        "either": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
        "all": {"type": "string", "allOf": [{"minLength": 2}, {"maxLength": 3}]},
        "notx": {"type": "string", "not": {"enum": ["x"]}}
    }));
    assert_eq!(
        check(&s, json!({"port": true})),
        [
            "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\"",
            "<nil>: Invalid value: \"\": \"spec.port\" must validate at least one schema (anyOf)",
            "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer: \"boolean\"",
        ]
    );
    assert!(
        check(
            &s,
            json!({"port": "80%", "either": {"a": "1"}, "all": "ab", "notx": "y"})
        )
        .is_empty()
    );
    assert_eq!(
        check(&s, json!({"either": {"a": "1", "b": "2"}})),
        [
            "<nil>: Invalid value: \"\": \"spec.either\" must validate one and only one schema (oneOf). Found 2 valid alternatives"
        ]
    );
    assert_eq!(
        check(&s, json!({"either": {}})),
        [
            "<nil>: Invalid value: \"\": \"spec.either\" must validate one and only one schema (oneOf). Found none valid",
            "spec.either.a: Required value",
        ]
    );
    assert_eq!(
        check(&s, json!({"all": "a", "notx": "x"})),
        [
            "spec.all: Invalid value: \"a\": spec.all in body should be at least 2 chars long",
            "<nil>: Invalid value: \"\": \"spec.all\" must validate all the schemas (allOf)",
            "<nil>: Invalid value: \"\": \"spec.notx\" must not validate the schema (not)",
        ]
    );
}

#[test]
fn embedded_resources_need_api_version_and_kind() {
    let s = spec_schema(json!({
        "template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}
    }));
    assert!(check(&s, json!({"template": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}})).is_empty());
    assert_eq!(
        check(&s, json!({"template": {"metadata": {"name": "a/b"}}})),
        [
            "spec.template.apiVersion: Required value",
            "spec.template.kind: Required value",
            "spec.template.metadata.name: Invalid value: \"a/b\": may not contain '/'",
        ]
    );
    assert_eq!(
        check(
            &s,
            json!({"template": {"apiVersion": "a/b/c", "kind": "Not_A_Kind"}})
        ),
        [
            "spec.template.apiVersion: Invalid value: \"a/b/c\": unexpected GroupVersion string: a/b/c",
            "spec.template.kind: Invalid value: \"Not_A_Kind\": may have mixed case, but should otherwise match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
        ]
    );
}

#[test]
fn cel_rules_are_reported_as_skipped_after_blocking_errors_only() {
    let s = compile(
        json!({"type": "object", "properties": {"spec": {"type": "object",
        "x-kubernetes-validations": [{"rule": "self.a == 'x'"}],
        "properties": {"a": {"type": "string", "maxLength": 3, "pattern": "^[a-z]+$"}}}}}),
    );
    assert!(s.has_cel_rules());
    assert_eq!(
        check(&s, json!({"a": "toolong"})),
        [
            "spec.a: Too long: may not be more than 3 bytes",
            &format!("<nil>: Invalid value: null: {CEL_SKIPPED}"),
        ]
    );
    // A pattern failure does not block CEL rules: they are evaluated after it.
    assert_eq!(
        check(&s, json!({"a": "A"})),
        [
            "spec.a: Invalid value: \"A\": spec.a in body should match '^[a-z]+$'",
            "spec: Invalid value: \"object\": failed rule: self.a == 'x'"
        ]
    );
}

#[test]
fn unchanged_invalid_values_are_ratcheted_on_update() {
    let s = spec_schema(json!({
        "name": {"type": "string", "maxLength": 3},
        "other": {"type": "string"},
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer", "maximum": 10}}}}
    }));
    let old = json!({"spec": {"name": "toolong", "tags": ["a", "a"], "ports": [{"name": "p", "port": 99}]}});
    let new = json!({"spec": {"name": "toolong", "other": "x", "tags": ["a", "a", "b"], "ports": [{"name": "q", "port": 1}, {"name": "p", "port": 99}]}});
    assert!(
        s.validate_write(&new, WriteContext::update(&old))
            .is_empty()
    );
    // On create, or once the value changes, the errors are back.
    assert_eq!(lines(&s.validate(&new)).len(), 3);
    let changed = json!({"spec": {"name": "toolong2", "ports": [{"name": "p", "port": 98}]}});
    assert_eq!(
        lines(&s.validate_write(&changed, WriteContext::update(&old))),
        [
            "spec.name: Too long: may not be more than 3 bytes",
            "spec.ports[0].port: Invalid value: 98: spec.ports[0].port in body should be less than or equal to 10",
        ]
    );
}

#[test]
fn invalid_message_brackets_several_errors_and_lists_repeats_once() {
    let e = FieldError::required("spec.a", "");
    assert_eq!(
        invalid_message("X.example.com", "n", std::slice::from_ref(&e)),
        "X.example.com \"n\" is invalid: spec.a: Required value"
    );
    let b = FieldError::new("spec.b", FieldErrorType::Invalid, json!(1), "bad");
    assert_eq!(
        invalid_message("X.example.com", "n", &[b.clone(), e.clone(), e]),
        "X.example.com \"n\" is invalid: [spec.b: Invalid value: 1: bad, spec.a: Required value]"
    );
}

/// The reference: kube-openapi's string check (`maxLength` on runes, then `pattern`).
fn reference_string_errors(s: &str, max: usize, pattern: &regex::Regex) -> usize {
    usize::from(s.chars().count() > max || !pattern.is_match(s))
}

proptest! {
    #[test]
    fn random_strings_never_panic_and_agree_with_a_reference(s in "\\PC{0,12}", max in 0usize..8) {
        let pattern = "^[a-zé]*$";
        let schema = spec_schema(json!({"v": {"type": "string", "maxLength": max, "pattern": pattern}}));
        let errs = schema.validate(&json!({"spec": {"v": s}}));
        let re = regex::Regex::new(pattern).unwrap();
        prop_assert_eq!(errs.len(), reference_string_errors(&s, max, &re));
        if s.chars().count() > max {
            prop_assert_eq!(errs[0].kind, FieldErrorType::TooLong);
        }
        for e in &errs {
            let _ = e.message();
        }
    }

    #[test]
    fn random_patterns_never_panic(pattern in "\\PC{0,10}", s in "\\PC{0,10}") {
        let schema = spec_schema(json!({"v": {"type": "string", "pattern": pattern}}));
        let errs = schema.validate(&json!({"spec": {"v": s}}));
        prop_assert!(errs.len() <= 1);
    }

    #[test]
    fn random_values_never_panic_any_keyword(v in any_json(), w in any_json()) {
        let schema = spec_schema(json!({
            "v": {"type": "object", "minProperties": 1, "maxProperties": 2, "additionalProperties": {
                "x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer", "minimum": -1, "maximum": 5, "multipleOf": 0.5}, {"type": "string", "format": "duration", "pattern": "^[0-9]"}]}},
            "w": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"], "maxItems": 2,
                "items": {"type": "object", "properties": {"k": {"type": "string", "format": "uri"}, "n": {"type": "number", "exclusiveMaximum": true, "maximum": 1e6}}}}
        }));
        let obj = json!({"spec": {"v": v, "w": w}});
        for e in schema.validate(&obj) {
            let _ = e.message();
        }
        let old = json!({"spec": {"w": obj["spec"]["v"].clone()}});
        let _ = schema.validate_write(&obj, WriteContext::update(&old));
    }

    #[test]
    fn random_strings_in_every_format_never_panic(s in "\\PC{0,30}") {
        for name in ["bsonobjectid", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac", "uuid", "uuid3", "uuid4", "uuid5", "isbn", "isbn10", "isbn13", "creditcard", "ssn", "hexcolor", "rgbcolor", "byte", "password", "date", "duration", "datetime"] {
            let _ = formats::Format::supported(name).map(|f| f.accepts(&s));
        }
    }
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e7f64..1e7).prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
