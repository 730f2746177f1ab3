//! Unit tests of CEL rules (`x-kubernetes-validations`).

#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::json;

fn compile(schema: Value) -> StructuralSchema {
    let p: JSONSchemaProps = serde_json::from_value(schema).unwrap();
    StructuralSchema::compile(&p).unwrap()
}

fn compile_err(schema: Value) -> Vec<RuleError> {
    let p: JSONSchemaProps = serde_json::from_value(schema).unwrap();
    match StructuralSchema::compile(&p) {
        Err(SchemaError::InvalidRules(e)) => e,
        other => panic!("expected rule errors, got {other:?}"),
    }
}

/// A root schema whose `spec` has `props` and `rules`.
fn spec(props: Value, rules: Value) -> StructuralSchema {
    compile(json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": props,
            "x-kubernetes-validations": rules}}
    }))
}

fn lines(errs: &[FieldError]) -> Vec<String> {
    errs.iter()
        .map(|e| format!("{}: {}", e.field, e.message()))
        .collect()
}

fn create(s: &StructuralSchema, spec: Value) -> Vec<String> {
    lines(&s.validate(&json!({"spec": spec})))
}

fn update(s: &StructuralSchema, old: Value, new: Value) -> Vec<String> {
    let old = json!({"spec": old});
    lines(&s.validate_write(&json!({"spec": new}), WriteContext::update(&old)))
}

fn reasons(s: &StructuralSchema, spec: Value) -> Vec<&'static str> {
    s.validate(&json!({"spec": spec}))
        .iter()
        .map(|e| e.kind.reason())
        .collect()
}

#[test]
fn failing_rules_use_the_default_message_and_the_schema_type_as_value() {
    let s = spec(
        json!({"replicas": {"type": "integer"}}),
        json!([{"rule": "self.replicas <= 5"}]),
    );
    assert!(create(&s, json!({"replicas": 3})).is_empty());
    assert_eq!(
        create(&s, json!({"replicas": 7})),
        ["spec: Invalid value: \"object\": failed rule: self.replicas <= 5"]
    );
    assert_eq!(reasons(&s, json!({"replicas": 7})), ["FieldValueInvalid"]);
}

#[test]
fn message_reason_and_field_path_shape_the_error() {
    let s = spec(
        json!({"a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": "string"},
            "d": {"type": "string"}}),
        json!([
            {"rule": "self.a != 'x'", "message": " a must not be x ", "fieldPath": ".a"},
            {"rule": "self.b != 'x'", "message": "b is forbidden", "reason": "FieldValueForbidden"},
            {"rule": "has(self.c)", "message": "c is required", "reason": "FieldValueRequired", "fieldPath": ".c"},
            {"rule": "self.d != 'x'", "reason": "FieldValueDuplicate"}
        ]),
    );
    let obj = json!({"a": "x", "b": "x", "d": "x"});
    assert_eq!(
        create(&s, obj.clone()),
        [
            "spec.a: Invalid value: \"object\": a must not be x",
            "spec: Forbidden: b is forbidden",
            "spec.c: Required value: c is required",
            "spec: Duplicate value: \"object\"",
        ]
    );
    assert_eq!(
        reasons(&s, obj),
        [
            "FieldValueInvalid",
            "FieldValueForbidden",
            "FieldValueRequired",
            "FieldValueDuplicate"
        ]
    );
}

#[test]
fn message_expressions_are_evaluated_on_failure() {
    let s = spec(
        json!({"replicas": {"type": "integer"}}),
        json!([{"rule": "self.replicas <= 5",
            "messageExpression": "'replicas is ' + string(self.replicas) + ', at most 5'"},
            {"rule": "self.replicas < 100", "message": "static", "messageExpression": "'  '"},
            {"rule": "self.replicas < 50", "message": "fallback", "messageExpression": "string(self.replicas / 0)"}]),
    );
    assert_eq!(
        create(&s, json!({"replicas": 7})),
        ["spec: Invalid value: \"object\": replicas is 7, at most 5"]
    );
    assert_eq!(
        create(&s, json!({"replicas": 200})),
        [
            "spec: Invalid value: \"object\": replicas is 200, at most 5",
            "spec: Invalid value: \"object\": messageExpression should evaluate to a non-empty string",
            "spec: Invalid value: \"object\": fallback",
        ]
    );
}

#[test]
fn transition_rules_run_only_on_updates_with_an_old_value() {
    let s = spec(
        json!({"name": {"type": "string",
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "name is immutable"}]},
            "size": {"type": "integer",
            "x-kubernetes-validations": [{"rule": "!oldSelf.hasValue() || self >= oldSelf.value()",
                "optionalOldSelf": true, "messageExpression": "'size may not shrink below ' + string(oldSelf.value())"},
                {"rule": "oldSelf.hasValue() || self < 10", "optionalOldSelf": true}]}}),
        json!([]),
    );
    assert!(create(&s, json!({"name": "a", "size": 5})).is_empty());
    assert_eq!(
        create(&s, json!({"name": "a", "size": 50})),
        ["spec.size: Invalid value: \"integer\": failed rule: oldSelf.hasValue() || self < 10"]
    );
    assert!(
        update(
            &s,
            json!({"name": "a", "size": 5}),
            json!({"name": "a", "size": 50})
        )
        .is_empty()
    );
    assert_eq!(
        update(
            &s,
            json!({"name": "a", "size": 5}),
            json!({"name": "b", "size": 4})
        ),
        [
            "spec.name: Invalid value: \"string\": name is immutable",
            "spec.size: Invalid value: \"integer\": size may not shrink below 5",
        ]
    );
    // A field added by the update has no old value: the plain transition rule is skipped.
    assert!(update(&s, json!({"size": 5}), json!({"name": "new", "size": 5})).is_empty());
}

#[test]
fn unchanged_values_ratchet_non_transition_rules() {
    let s = spec(
        json!({"a": {"type": "string", "x-kubernetes-validations": [{"rule": "self.size() < 3"}]},
            "b": {"type": "string"}}),
        json!([]),
    );
    assert_eq!(
        create(&s, json!({"a": "long"})),
        ["spec.a: Invalid value: \"string\": failed rule: self.size() < 3"]
    );
    assert!(update(&s, json!({"a": "long"}), json!({"a": "long", "b": "x"})).is_empty());
    assert_eq!(
        update(&s, json!({"a": "long"}), json!({"a": "longer"})),
        ["spec.a: Invalid value: \"string\": failed rule: self.size() < 3"]
    );
}

#[test]
fn root_rules_see_the_object_and_its_name() {
    let s = compile(json!({
        "type": "object",
        "x-kubernetes-validations": [{"rule": "self.metadata.name.startsWith('ok-')"},
            {"rule": "!has(self.metadata.labels)"}],
        "properties": {"metadata": {"type": "object"}, "spec": {"type": "object"}}
    }));
    let obj = |name: &str| {
        json!({"apiVersion": "x/v1", "kind": "K",
        "metadata": {"name": name, "labels": {"a": "b"}}, "spec": {}})
    };
    assert!(s.validate(&obj("ok-1")).is_empty());
    assert_eq!(
        lines(&s.validate(&obj("bad"))),
        ["<nil>: Invalid value: \"object\": failed rule: self.metadata.name.startsWith('ok-')"]
    );
}

#[test]
fn lists_maps_and_macros() {
    let s = spec(
        json!({
            "tags": {"type": "array", "items": {"type": "string",
                "x-kubernetes-validations": [{"rule": "self.matches('^[a-z]+$')"}]},
                "x-kubernetes-validations": [{"rule": "self.all(t, t.size() <= 5)"},
                    {"rule": "self.exists_one(t, t == 'main')", "message": "exactly one main"},
                    {"rule": "self.filter(t, t.startsWith('x')).size() == 0"},
                    {"rule": "self.map(t, t.lowerAscii()).exists(t, t == 'main')"}]},
            "labels": {"type": "object", "additionalProperties": {"type": "string",
                "x-kubernetes-validations": [{"rule": "!self.contains(' ')"}]},
                "x-kubernetes-validations": [{"rule": "'app' in self && self['app'].endsWith('-app')"}]}
        }),
        json!([]),
    );
    assert!(
        create(
            &s,
            json!({"tags": ["main", "b"], "labels": {"app": "web-app"}})
        )
        .is_empty()
    );
    assert_eq!(
        create(
            &s,
            json!({"tags": ["main", "main", "Xx", "toolong"], "labels": {"app": "w", "k": "a b"}})
        ),
        [
            "spec.labels: Invalid value: \"object\": failed rule: 'app' in self && self['app'].endsWith('-app')",
            "spec.labels[k]: Invalid value: \"string\": failed rule: !self.contains(' ')",
            "spec.tags: Invalid value: \"array\": failed rule: self.all(t, t.size() <= 5)",
            "spec.tags: Invalid value: \"array\": exactly one main",
            "spec.tags[2]: Invalid value: \"string\": failed rule: self.matches('^[a-z]+$')",
        ]
    );
}

#[test]
fn string_library_functions() {
    let s = spec(
        json!({"s": {"type": "string"}}),
        json!([{"rule": "self.s.split('/').size() == 2 && self.s.indexOf('/') > 0 && self.s.upperAscii() == 'A/B' && self.s.replace('/', '-') == 'a-b' && self.s.substring(2) == 'b' && self.s.trim() == self.s"}]),
    );
    assert!(create(&s, json!({"s": "a/b"})).is_empty());
    assert_eq!(create(&s, json!({"s": "a/c"})).len(), 1);
}

#[test]
fn formats_and_int_or_string_convert_as_upstream() {
    let s = spec(
        json!({"t": {"type": "string", "format": "date-time"},
            "d": {"type": "string", "format": "duration"},
            "b": {"type": "string", "format": "byte"},
            "p": {"x-kubernetes-int-or-string": true},
            "r": {"type": "number"},
            "x-y": {"type": "string"},
            "namespace": {"type": "string"}}),
        json!([{"rule": "!has(self.t) || self.t < timestamp('2030-01-01T00:00:00Z')"},
            {"rule": "!has(self.d) || self.d >= duration('1m30s')"},
            {"rule": "!has(self.b) || self.b == b'hi'"},
            {"rule": "!has(self.p) || (type(self.p) == int ? self.p > 0 : self.p.endsWith('%'))"},
            {"rule": "!has(self.r) || self.r > 0.5"},
            {"rule": "!has(self.x__dash__y) || self.x__dash__y == self.__namespace__"}]),
    );
    let ok = json!({"t": "2026-01-01T00:00:00Z", "d": "2m", "b": "aGk=", "p": 8, "r": 1,
        "x-y": "n", "namespace": "n"});
    assert!(create(&s, ok).is_empty(), "{:?}", create(&s, json!({})));
    assert!(create(&s, json!({"p": "50%"})).is_empty());
    let bad = create(
        &s,
        json!({"t": "2031-01-01T00:00:00Z", "d": "1m", "b": "aGo=", "p": "50", "r": 0,
            "x-y": "a", "namespace": "b"}),
    );
    assert_eq!(bad.len(), 6, "{bad:?}");
}

#[test]
fn evaluation_errors_are_field_errors() {
    let s = spec(
        json!({"a": {"type": "integer"}, "b": {"type": "integer"}}),
        json!([{"rule": "self.a > 1"}, {"rule": "self.b / 0 == 1"}]),
    );
    assert_eq!(
        create(&s, json!({"b": 1})),
        [
            "spec: Invalid value: \"object\": no such key: a evaluating rule: self.a > 1",
            "spec: Invalid value: \"object\": division by zero evaluating rule: self.b / 0 == 1",
        ]
    );
}

#[test]
fn expensive_rules_exceed_the_cost_limit() {
    let s = spec(
        json!({"l": {"type": "array", "items": {"type": "integer"}}}),
        json!([{"rule": "self.l.all(a, self.l.all(b, self.l.all(c, a + b + c >= 0)))"}]),
    );
    assert!(create(&s, json!({"l": [1, 2, 3]})).is_empty());
    let big: Vec<i64> = (0..200).collect();
    assert_eq!(
        create(&s, json!({"l": big})),
        [
            "spec: Invalid value: \"object\": call cost exceeds limit for rule: self.l.all(a, self.l.all(b, self.l.all(c, a + b + c >= 0)))"
        ]
    );
}

#[test]
fn rules_that_do_not_compile_reject_the_schema() {
    let errs = compile_err(json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {
            "items": {"type": "array", "items": {"type": "string",
                "x-kubernetes-validations": [{"rule": "self.x >"}]}}},
            "x-kubernetes-validations": [
                {"rule": "self == oldSelf", "reason": "Bogus"},
                {"rule": "true", "messageExpression": "'a' +"},
                {"rule": "has(self.items)", "fieldPath": ".nope"},
                {"rule": "true", "optionalOldSelf": true}]}}
    }));
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "properties[spec].x-kubernetes-validations[0].reason",
            "properties[spec].x-kubernetes-validations[1].messageExpression",
            "properties[spec].x-kubernetes-validations[2].fieldPath",
            "properties[spec].x-kubernetes-validations[3].optionalOldSelf",
            "properties[spec].properties[items].items.x-kubernetes-validations[0].rule",
        ]
    );
    let rule = &errs[4];
    assert_eq!(rule.reason, "FieldValueInvalid");
    assert!(
        rule.message.starts_with(
            "Invalid value: apiextensions.ValidationRule{Rule:\"self.x >\", Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: <input>:1:"
        ),
        "{}",
        rule.message
    );
    assert_eq!(
        errs[0].message,
        "Unsupported value: \"Bogus\": supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\""
    );
    // Deeply nested rules are refused, not parsed recursively.
    let deep = format!("{}true{}", "(".repeat(500), ")".repeat(500));
    let errs = compile_err(json!({"type": "object", "x-kubernetes-validations": [{"rule": deep}]}));
    assert!(
        errs[0].message.contains("recursion limit"),
        "{}",
        errs[0].message
    );
}

#[test]
fn logical_operators_absorb_errors_as_cel_specifies() {
    let s = spec(
        json!({"a": {"type": "integer"}, "m": {"type": "string"}}),
        json!([{"rule": "self.a <= 5 || self.m == 'B'"}, {"rule": "self.a <= 5 && self.m == 'B'"}]),
    );
    // `error || true` is true and `error && false` is false, whichever side errs.
    assert_eq!(
        create(&s, json!({"m": "B"})),
        [
            "spec: Invalid value: \"object\": no such key: a evaluating rule: self.a <= 5 && self.m == 'B'"
        ]
    );
    assert_eq!(
        create(&s, json!({"m": "A"})),
        [
            "spec: Invalid value: \"object\": no such key: a evaluating rule: self.a <= 5 || self.m == 'B'",
            "spec: Invalid value: \"object\": failed rule: self.a <= 5 && self.m == 'B'"
        ]
    );
}

#[test]
fn kubernetes_list_functions() {
    let s = spec(
        json!({"l": {"type": "array", "items": {"type": "integer"}},
            "e": {"type": "array", "items": {"type": "integer"}}}),
        json!([{"rule": "self.l.isSorted() && self.l.sum() == 6 && self.l.min() == 1 && self.l.max() == 3"},
            {"rule": "!has(self.e) || self.e.max() > 0"}]),
    );
    assert!(create(&s, json!({"l": [1, 2, 3]})).is_empty());
    assert_eq!(create(&s, json!({"l": [2, 1, 3]})).len(), 1);
    let empty = create(&s, json!({"l": [1, 2, 3], "e": []}));
    assert_eq!(empty.len(), 1);
    assert!(
        empty[0].contains("max called on empty list evaluating rule"),
        "{empty:?}"
    );
}

/// The rule errors of a root schema whose `spec` has `props` and `rules`.
fn spec_errs(props: Value, rules: Value) -> Vec<RuleError> {
    compile_err(json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": props,
            "x-kubernetes-validations": rules}}
    }))
}

#[test]
fn undefined_fields_of_self_are_compile_errors_worded_as_cel_go() {
    let errs = spec_errs(
        json!({"replicas": {"type": "integer"}}),
        json!([{"rule": "self.replica > 1"}]),
    );
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].field,
        "properties[spec].x-kubernetes-validations[0].rule"
    );
    assert_eq!(errs[0].reason, "FieldValueInvalid");
    assert_eq!(
        errs[0].message,
        "Invalid value: apiextensions.ValidationRule{Rule:\"self.replica > 1\", Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: <input>:1:5: undefined field 'replica'\n | self.replica > 1\n | ....^"
    );
    // Nested objects, list items in macros, map values, oldSelf, messageExpression: each error
    // at its selection, in source order.
    let errs = spec_errs(
        json!({"a": {"type": "object", "properties": {"b": {"type": "string"}}},
            "l": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "string"}}}},
            "m": {"type": "object", "additionalProperties": {"type": "object",
                "properties": {"v": {"type": "integer"}}}}}),
        json!([
            {"rule": "self.a.c == 'x' || self.a.b == 'y'"},
            {"rule": "self.l.all(i, i.name != '')"},
            {"rule": "self.m.anykey.w > 0"},
            {"rule": "self.a == oldSelf.z"},
            {"rule": "true", "messageExpression": "'x' + self.nope"},
            {"rule": "self.a.q == 1 &&\n  self.a.r == 2"}
        ]),
    );
    let messages: Vec<(&str, &str)> = errs
        .iter()
        .map(|e| {
            let (_, detail) = e.message.split_once(" compilation failed: ").unwrap();
            (e.field.as_str(), detail)
        })
        .collect();
    assert_eq!(
        messages,
        [
            (
                "properties[spec].x-kubernetes-validations[0].rule",
                "ERROR: <input>:1:7: undefined field 'c'\n | self.a.c == 'x' || self.a.b == 'y'\n | ......^"
            ),
            (
                "properties[spec].x-kubernetes-validations[1].rule",
                "ERROR: <input>:1:16: undefined field 'name'\n | self.l.all(i, i.name != '')\n | ...............^"
            ),
            (
                "properties[spec].x-kubernetes-validations[2].rule",
                "ERROR: <input>:1:14: undefined field 'w'\n | self.m.anykey.w > 0\n | .............^"
            ),
            (
                "properties[spec].x-kubernetes-validations[3].rule",
                "ERROR: <input>:1:18: undefined field 'z'\n | self.a == oldSelf.z\n | .................^"
            ),
            (
                "properties[spec].x-kubernetes-validations[4].messageExpression",
                "ERROR: <input>:1:11: undefined field 'nope'\n | 'x' + self.nope\n | ..........^"
            ),
            (
                "properties[spec].x-kubernetes-validations[5].rule",
                "ERROR: <input>:1:7: undefined field 'q'\n | self.a.q == 1 &&\n | ......^\nERROR: <input>:2:9: undefined field 'r'\n |   self.a.r == 2\n | ........^"
            ),
        ]
    );
}

#[test]
fn fields_that_may_exist_are_not_compile_errors() {
    // Each of these compiles on a real kube-apiserver (or may): none is refused.
    let s = compile(json!({
        "type": "object",
        "x-kubernetes-validations": [
            {"rule": "self.metadata.name != '' && self.kind != '' && self.apiVersion != ''"},
            {"rule": "self.metadata.namespace == '' || true"}
        ],
        "properties": {"spec": {"type": "object",
            "properties": {
                "a-b": {"type": "string"},
                "p": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {"known": {"type": "string"}}},
                "ios": {"x-kubernetes-int-or-string": true},
                "e": {"type": "object", "x-kubernetes-embedded-resource": true,
                    "properties": {"spec": {"type": "object"}}},
                "l": {"type": "array", "items": {"type": "string"}},
                "free": {"type": "object"}
            },
            "x-kubernetes-validations": [
                {"rule": "has(self.undeclared) || true"},
                {"rule": "self.a__dash__b == '' || self.p.unknown == 1"},
                {"rule": "self.e.kind == 'Pod' && self.e.metadata.name != ''"},
                {"rule": "self.l.all(x, x.size() > 0) && [self].all(y, y.whatever == 1)"},
                {"rule": "self.free.anything == 1"},
                {"rule": "self.?maybe.orValue('') == ''"},
                {"rule": "self.ios.x == 1 || true"},
                {"rule": "{'a': self}.a.zzz == 1 || true"}
            ]
        }}
    }));
    // Compiled (no rule refused); the rules run, failing only where the data lacks a field.
    let errs = lines(&s.validate(&json!({"spec": {"a-b": "", "l": ["x"]}})));
    assert!(errs.iter().all(|e| e.contains("no such key")), "{errs:?}");
}

#[test]
fn rules_on_nodes_with_untyped_schemas_below_are_not_checked() {
    // An untyped (preserved) schema below the node: upstream may not type `self` at all.
    let s = spec(
        json!({"raw": {"x-kubernetes-preserve-unknown-fields": true}, "n": {"type": "integer"}}),
        json!([{"rule": "!has(self.n) || self.undeclared == 1"}]),
    );
    assert!(create(&s, json!({})).is_empty());
}
