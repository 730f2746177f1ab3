//! Unit tests of the CRD-time schema checks (`structural.rs`) and of the ObjectMeta checks.

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::{validate_crd_schema, validate_object_meta};

const P: &str = "spec.validation.openAPIV3Schema";

/// Each error as `field: message`.
fn check(schema: Value) -> Vec<String> {
    validate_crd_schema(&schema, P)
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message()))
        .collect()
}

fn spec(props: Value) -> Value {
    json!({"type": "object", "properties": {"spec": {"type": "object", "properties": props}}})
}

#[test]
fn int_or_string_patterns_are_structural() {
    let any_of = json!({"x-kubernetes-int-or-string": true,
        "anyOf": [{"type": "integer"}, {"type": "string"}]});
    let all_of = json!({"x-kubernetes-int-or-string": true,
        "allOf": [{"anyOf": [{"type": "integer"}, {"type": "string"}]}, {"pattern": "^[0-9]+%?$"}]});
    assert_eq!(
        check(spec(json!({"a": any_of, "b": all_of}))),
        Vec::<String>::new()
    );
    // Any other type under a junctor is not.
    let other = json!({"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "boolean"}]});
    assert_eq!(
        check(spec(json!({"c": other}))),
        [
            format!(
                "{P}.properties[spec].properties[c].anyOf[0].type: Forbidden: must be empty to be structural"
            ),
            format!(
                "{P}.properties[spec].properties[c].anyOf[1].type: Forbidden: must be empty to be structural"
            ),
        ]
    );
}

#[test]
fn junctors_may_only_speak_of_specified_fields() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object"}},
        "anyOf": [{"properties": {"spec": {"properties": {"x": {"minLength": 1}}}, "status": {}}}]});
    assert_eq!(
        check(schema),
        [
            format!(
                "{P}.properties[spec].properties[x]: Required value: because it is defined in {P}.anyOf[0].properties[spec].properties[x]"
            ),
            format!(
                "{P}.properties[status]: Required value: because it is defined in {P}.anyOf[0].properties[status]"
            ),
        ]
    );
}

#[test]
fn metadata_may_only_restrict_name_and_generate_name() {
    let names = json!({"type": "object", "properties": {"metadata": {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 10}, "generateName": {"type": "string"}}}}});
    assert_eq!(check(names), Vec::<String>::new());
    let more = json!({"type": "object", "properties": {"metadata": {"type": "string", "properties": {
        "name": {"type": "string"}, "labels": {"type": "object"}}}}});
    assert_eq!(
        check(more),
        [
            // Sorted as upstream sorts them: `.` sorts before `:`.
            format!("{P}.properties[metadata].type: Invalid value: \"string\": must be object"),
            format!(
                "{P}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"
            ),
        ]
    );
    let nested = json!({"type": "object", "properties": {"metadata": {"type": "object"}},
        "allOf": [{"properties": {"metadata": {"required": ["name"]}}}]});
    assert_eq!(
        check(nested),
        [format!(
            "{P}.allOf[0].properties[metadata]: Forbidden: must not be specified in a nested context"
        )]
    );
}

#[test]
fn root_rules_and_embedded_resources() {
    let schema = json!({"type": "array", "items": {"type": "string"}, "additionalProperties": true,
        "properties": {"kind": {"type": "integer"}}});
    assert_eq!(
        check(schema),
        [
            format!("{P}.additionalProperties: Forbidden: must not be used at the root"),
            format!("{P}.properties[kind].type: Invalid value: \"integer\": must be string"),
            format!("{P}.type: Invalid value: \"array\": must be object at the root"),
        ]
    );
    let embedded = spec(json!({
        "e": {"type": "object", "x-kubernetes-embedded-resource": true},
        "m": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true,
            "additionalProperties": {"type": "string"}},
        "i": {"x-kubernetes-int-or-string": true, "x-kubernetes-embedded-resource": true}
    }));
    let s = format!("{P}.properties[spec]");
    assert_eq!(
        check(embedded),
        [
            format!(
                "{s}.properties[e].properties: Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields"
            ),
            format!(
                "{s}.properties[i].properties: Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields"
            ),
            format!(
                "{s}.properties[i].type: Required value: must be object if x-kubernetes-embedded-resource is true"
            ),
            format!(
                "{s}.properties[i].x-kubernetes-embedded-resource: Invalid value: true: must be false if x-kubernetes-int-or-string is true"
            ),
            format!(
                "{s}.properties[m].additionalProperties: Forbidden: must not be used if x-kubernetes-embedded-resource is set"
            ),
        ]
    );
}

#[test]
fn list_and_map_types() {
    let s = format!("{P}.properties[spec]");
    let schema = spec(json!({
        "a": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k", "k"],
            "items": {"type": "object", "required": ["k"], "properties": {"k": {"type": "object"}}}},
        "b": {"type": "array", "x-kubernetes-list-type": "map", "items": {"type": "string"}},
        "c": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "object", "nullable": true}},
        "d": {"type": "string", "x-kubernetes-list-type": "bag", "x-kubernetes-list-map-keys": ["x"]},
        "e": {"type": "array", "x-kubernetes-map-type": "atomic", "uniqueItems": true, "items": {"type": "string"}}
    }));
    assert_eq!(
        check(schema),
        [
            format!(
                "{s}.properties[a].items.properties[k].type: Invalid value: \"object\": must be a scalar type if parent array's x-kubernetes-list-type is map"
            ),
            format!(
                "{s}.properties[a].items.properties[k].type: Invalid value: \"object\": must be a scalar type if parent array's x-kubernetes-list-type is map"
            ),
            format!(
                "{s}.properties[a].x-kubernetes-list-map-keys: Invalid value: []string{{\"k\", \"k\"}}: must not contain duplicate entries"
            ),
            format!(
                "{s}.properties[b].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"
            ),
            format!(
                "{s}.properties[b].items.type: Invalid value: \"string\": must be object if parent array's x-kubernetes-list-type is map"
            ),
            format!(
                "{s}.properties[c].items.x-kubernetes-map-type: Invalid value: (*string)(nil): must be atomic as item of a list with x-kubernetes-list-type=set"
            ),
            format!(
                "{s}.properties[c].items.nullable: Forbidden: cannot be nullable when x-kubernetes-list-type is set"
            ),
            format!(
                "{s}.properties[d].type: Invalid value: \"string\": must be array if x-kubernetes-list-type is specified"
            ),
            format!(
                "{s}.properties[d].x-kubernetes-list-type: Unsupported value: \"bag\": supported values: \"atomic\", \"set\", \"map\""
            ),
            format!(
                "{s}.properties[d].x-kubernetes-list-type: Invalid value: \"bag\": must be map if x-kubernetes-list-map-keys is non-empty"
            ),
            format!(
                "{s}.properties[e].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic"
            ),
            format!(
                "{s}.properties[e].type: Invalid value: \"array\": must be object if x-kubernetes-map-type is specified"
            ),
        ]
    );
}

#[test]
fn unsupported_keywords_and_root_nullable() {
    let schema = json!({"type": "object", "nullable": true, "properties": {"spec": {"type": "object",
        "$ref": "#/x", "properties": {"n": {"type": "null"}, "t": {"type": "strin"}}}}});
    let s = format!("{P}.properties[spec]");
    assert_eq!(
        check(schema),
        [
            format!("{P}.nullable: Forbidden: nullable cannot be true at the root"),
            format!("{s}.$ref: Forbidden: $ref is not supported"),
            format!(
                "{s}.properties[n].type: Unsupported value: \"null\": supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\""
            ),
            format!(
                "{s}.properties[n].type: Forbidden: type cannot be set to null, use nullable as an alternative"
            ),
            format!(
                "{s}.properties[t].type: Unsupported value: \"strin\": supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\""
            ),
        ]
    );
}

#[test]
fn object_meta_checks_labels_annotations_and_generate_name() {
    let long = "x".repeat(64);
    let big = "v".repeat(256 * 1024);
    let meta = json!({"name": "ok", "generateName": "ok-",
        "labels": {"example.com/fine": "", "/x": long, "Bad_Prefix/x": "-"},
        "annotations": {"Example.com/Upper": "fine", "big": big}});
    let errors: Vec<String> = validate_object_meta(&meta, true)
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message()))
        .collect();
    let label = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
    assert_eq!(
        errors,
        [
            "metadata.labels: Invalid value: \"/x\": prefix part must be non-empty".to_owned(),
            "metadata.labels: Invalid value: \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\": must be no more than 63 characters".to_owned(),
            "metadata.labels: Invalid value: \"Bad_Prefix/x\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_owned(),
            format!("metadata.labels: Invalid value: \"-\": {label}"),
            "metadata.annotations: Too long: may not be more than 262144 bytes".to_owned(),
        ]
    );
}

#[test]
fn patterns_must_compile() {
    let schema = spec(json!({"a": {"type": "string", "pattern": "^(abc$"},
        "b": {"type": "string", "pattern": "x[a-"}}));
    let s = format!("{P}.properties[spec]");
    assert_eq!(
        check(schema),
        [
            format!(
                "{s}.properties[a].pattern: Invalid value: \"^(abc$\": must be a valid regular expression, but isn't: error parsing regexp: missing closing ): `^(abc$`"
            ),
            format!(
                "{s}.properties[b].pattern: Invalid value: \"x[a-\": must be a valid regular expression, but isn't: error parsing regexp: missing closing ]: `[a-`"
            ),
        ]
    );
}

/// Cases of apiextensions-apiserver's own integration test (`TestNonStructuralSchemaCondition`),
/// whose expected violations are listed there unsorted; upstream reports them sorted.
#[test]
fn upstream_non_structural_cases() {
    let sorted = |v: &[&str]| {
        let mut v: Vec<String> = v.iter().map(|s| format!("{P}{s}")).collect();
        v.sort();
        v
    };
    let missing_types = json!({"properties": {
        "foo": {"properties": {"a": {}}},
        "bar": {"items": {"additionalProperties": {"properties": {"a": {}}, "items": {}}}},
        "abc": {"additionalProperties": {"properties": {"a": {"items": {"additionalProperties": {"items": null}}}}}},
        "json": {"x-kubernetes-preserve-unknown-fields": true, "properties": {"a": {}}},
        "int-or-string": {"x-kubernetes-int-or-string": true, "properties": {"a": {}}}
    }});
    let field = "Required value: must not be empty for specified object fields";
    let item = "Required value: must not be empty for specified array items";
    assert_eq!(
        check(missing_types),
        sorted(&[
            &format!(".properties[foo].properties[a].type: {field}"),
            &format!(".properties[foo].type: {field}"),
            &format!(".properties[int-or-string].properties[a].type: {field}"),
            &format!(".properties[json].properties[a].type: {field}"),
            &format!(
                ".properties[abc].additionalProperties.properties[a].items.additionalProperties.type: {field}"
            ),
            &format!(".properties[abc].additionalProperties.properties[a].items.type: {item}"),
            &format!(".properties[abc].additionalProperties.properties[a].type: {field}"),
            &format!(".properties[abc].additionalProperties.type: {field}"),
            &format!(".properties[abc].type: {field}"),
            &format!(".properties[bar].items.additionalProperties.items.type: {item}"),
            &format!(".properties[bar].items.additionalProperties.properties[a].type: {field}"),
            &format!(".properties[bar].items.additionalProperties.type: {field}"),
            &format!(".properties[bar].items.type: {item}"),
            &format!(".properties[bar].type: {field}"),
            ".type: Required value: must not be empty at the root",
        ])
    );

    let forbidden = json!({"type": "string", "additionalProperties": true, "title": "hello",
        "description": "world", "nullable": true});
    let nested = json!({"type": "object", "properties": {"foo": {"type": "string"}},
        "not": forbidden,
        "allOf": [{"properties": {"foo": forbidden}}],
        "anyOf": [{"items": forbidden}],
        "oneOf": [{"properties": {"foo": forbidden}}]});
    let mut expected = Vec::new();
    for at in [
        "anyOf[0].items",
        "allOf[0].properties[foo]",
        "oneOf[0].properties[foo]",
        "not",
    ] {
        expected.extend([
            format!(".{at}.type: Forbidden: must be empty to be structural"),
            format!(".{at}.additionalProperties: Forbidden: must be undefined to be structural"),
            format!(".{at}.title: Forbidden: must be empty to be structural"),
            format!(".{at}.description: Forbidden: must be empty to be structural"),
            format!(".{at}.nullable: Forbidden: must be false to be structural"),
        ]);
    }
    expected.push(format!(
        ".items: Required value: because it is defined in {P}.anyOf[0].items"
    ));
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(check(nested), sorted(&expected));

    let regex = spec(json!({"foo": {"type": "string", "pattern": "+"}}));
    assert_eq!(
        check(regex),
        [format!(
            "{P}.properties[spec].properties[foo].pattern: Invalid value: \"+\": must be a valid regular expression, but isn't: error parsing regexp: missing argument to repetition operator: `+`"
        )]
    );
}
