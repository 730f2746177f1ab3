//! The checks kube-apiserver runs on a CRD version's `openAPIV3Schema` when the CRD is written:
//! apiextensions-apiserver's `ValidateStructural` (`pkg/apiserver/schema/validation.go` and
//! `complete.go`), `defaulting.ValidateDefaults`, and the per-node part of
//! `ValidateCustomResourceDefinitionOpenAPISchema` (`pkg/apis/apiextensions/validation`).
//!
//! Works on the schema as JSON, as sent; field paths are Go's `field.Path` spelling
//! (`properties[spec].items.type`) below the prefix given.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use serde_json::{Map, Value};

use super::field_error::{FieldError, FieldErrorType};
use super::node::Node;
use super::values;

const OPENAPI_V3_TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];
const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Where a schema sits in the structure (`level` in upstream's `validation.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

fn forbidden(field: String, detail: &str) -> FieldError {
    FieldError::forbidden(field, detail)
}

fn invalid(field: String, value: Value, detail: impl Into<String>) -> FieldError {
    FieldError::new(field, FieldErrorType::Invalid, value, detail)
}

/// `field.Invalid` of a Go value that prints raw (`%#v`), e.g. `[]string{"a", "b"}`.
fn invalid_raw(field: String, shown: String, detail: &str) -> FieldError {
    FieldError {
        field,
        kind: FieldErrorType::Invalid,
        bad_value: None,
        detail: format!("{shown}: {detail}"),
    }
}

fn not_supported(field: String, value: &str, supported: &[&str]) -> FieldError {
    let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
    FieldError::new(
        field,
        FieldErrorType::NotSupported,
        Value::from(value),
        format!("supported values: {}", list.join(", ")),
    )
}

fn text<'a>(s: &'a Value, key: &str) -> &'a str {
    s.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn flag(s: &Value, key: &str) -> bool {
    s.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Whether `key` is set to something other than Go's zero value.
fn set(s: &Value, key: &str) -> bool {
    match s.get(key) {
        None | Some(Value::Null | Value::Bool(false)) => false,
        Some(Value::String(t)) => !t.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

fn properties(s: &Value) -> Vec<(&String, &Value)> {
    s.get("properties")
        .and_then(Value::as_object)
        .map(|m| m.iter().collect())
        .unwrap_or_default()
}

/// `items` when it is one schema (an array of schemas is not structural at all).
fn items(s: &Value) -> Option<&Value> {
    s.get("items").filter(|i| i.is_object())
}

fn schemas<'a>(s: &'a Value, key: &str) -> &'a [Value] {
    s.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn key(path: &str, k: &str) -> String {
    format!("{path}.properties[{k}]")
}

/// Upstream's `ValidateStructural` at `path` (the `openAPIV3Schema` field): the errors sorted by
/// their text, as upstream sorts them.
pub(crate) fn validate_structural(schema: &Value, path: &str) -> Vec<FieldError> {
    let mut out = Vec::new();
    invariants(schema, Level::Root, path, &mut out);
    completeness_value(schema, Some(schema), path, path, &mut out);
    out.sort_by_cached_key(|e| format!("{}: {}", e.field, e.message()));
    out
}

fn is_int_or_string_any_of(any_of: &[Value]) -> bool {
    any_of.len() == 2
        && any_of[0] == serde_json::json!({"type": "integer"})
        && any_of[1] == serde_json::json!({"type": "string"})
}

fn invariants(s: &Value, lvl: Level, path: &str, out: &mut Vec<FieldError>) {
    let type_ = text(s, "type");
    if type_ == "array" && items(s).is_none() {
        out.push(FieldError::required(
            format!("{path}.items"),
            "must be specified",
        ));
    }
    if let Some(i) = items(s) {
        invariants(i, Level::Item, &format!("{path}.items"), out);
    }
    for (k, p) in properties(s) {
        invariants(p, Level::Field, &key(path, k), out);
    }
    let additional = s.get("additionalProperties").filter(|a| !a.is_null());
    if let Some(a) = additional {
        if lvl == Level::Root {
            out.push(forbidden(
                format!("{path}.additionalProperties"),
                "must not be used at the root",
            ));
        }
        if a.is_object() {
            invariants(
                a,
                Level::Field,
                &format!("{path}.additionalProperties"),
                out,
            );
        }
    }
    let int_or_string = flag(s, "x-kubernetes-int-or-string");
    let preserve = flag(s, "x-kubernetes-preserve-unknown-fields");
    let embedded = flag(s, "x-kubernetes-embedded-resource");
    if int_or_string && preserve {
        out.push(invalid(
            format!("{path}.x-kubernetes-preserve-unknown-fields"),
            Value::Bool(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if int_or_string && embedded {
        out.push(invalid(
            format!("{path}.x-kubernetes-embedded-resource"),
            Value::Bool(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    let skip_any_of = is_int_or_string_any_of(schemas(s, "anyOf"));
    let skip_first_all_of_any_of = schemas(s, "allOf")
        .first()
        .is_some_and(|a| is_int_or_string_any_of(schemas(a, "anyOf")));
    value_validation(s, skip_any_of, skip_first_all_of_any_of, path, out);

    let check_metadata = lvl == Level::Root || embedded;
    if embedded && type_ != "object" {
        let f = format!("{path}.type");
        let d = "must be object if x-kubernetes-embedded-resource is true";
        out.push(if type_.is_empty() {
            FieldError::required(f, d)
        } else {
            invalid(f, Value::from(type_), d)
        });
    } else if type_.is_empty() && !int_or_string && !preserve {
        let d = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        out.push(FieldError::required(format!("{path}.type"), d));
    }
    if embedded && additional.is_some() {
        out.push(forbidden(
            format!("{path}.additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !type_.is_empty() && type_ != "object" {
        out.push(invalid(
            format!("{path}.type"),
            Value::from(type_),
            "must be object at the root",
        ));
    }
    let props = s.get("properties").and_then(Value::as_object);
    for meta in ["kind", "apiVersion"] {
        if let Some(p) = props.and_then(|m| m.get(meta))
            && check_metadata
            && text(p, "type") != "string"
        {
            out.push(invalid(
                format!("{}.type", key(path, meta)),
                Value::from(text(p, "type")),
                "must be string",
            ));
        }
    }
    if let Some(m) = props.and_then(|m| m.get("metadata")) {
        metadata_invariants(m, check_metadata, lvl, &key(path, "metadata"), out);
    }
    if embedded && !preserve && props.is_none_or(Map::is_empty) {
        out.push(FieldError::required(
            format!("{path}.properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

/// The schema keywords a `Structural` keeps (anything else is dropped on conversion).
const STRUCTURAL_KEYS: [&str; 35] = [
    "description",
    "type",
    "title",
    "default",
    "additionalProperties",
    "nullable",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
    "format",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "enum",
    "maxProperties",
    "minProperties",
    "required",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    "items",
    "properties",
];

fn metadata_invariants(
    m: &Value,
    check_metadata: bool,
    lvl: Level,
    path: &str,
    out: &mut Vec<FieldError>,
) {
    if check_metadata && text(m, "type") != "object" {
        out.push(invalid(
            format!("{path}.type"),
            Value::from(text(m, "type")),
            "must be object",
        ));
    }
    if lvl != Level::Root {
        return;
    }
    let mut rest = m.clone();
    let names_only = {
        let p = properties(m);
        let has = |n: &str| p.iter().any(|(k, _)| k.as_str() == n);
        (has("name") && has("generateName") && p.len() == 2)
            || ((has("name") || has("generateName")) && p.len() == 1)
    };
    if let Some(o) = rest.as_object_mut() {
        if names_only {
            o.remove("properties");
        }
        o.remove("type");
        o.remove("default");
    }
    if STRUCTURAL_KEYS.iter().any(|k| set(&rest, k)) {
        out.push(forbidden(
            path.to_owned(),
            "must not specify anything other than name and generateName, but metadata is implicitly specified",
        ));
    }
}

fn value_validation(
    v: &Value,
    skip_any_of: bool,
    skip_first_all_of_any_of: bool,
    path: &str,
    out: &mut Vec<FieldError>,
) {
    if !skip_any_of {
        for (i, n) in schemas(v, "anyOf").iter().enumerate() {
            nested(n, false, &format!("{path}.anyOf[{i}]"), out);
        }
    }
    for (i, n) in schemas(v, "allOf").iter().enumerate() {
        nested(
            n,
            skip_first_all_of_any_of && i == 0,
            &format!("{path}.allOf[{i}]"),
            out,
        );
    }
    for (i, n) in schemas(v, "oneOf").iter().enumerate() {
        nested(n, false, &format!("{path}.oneOf[{i}]"), out);
    }
    if let Some(n) = v.get("not").filter(|n| n.is_object()) {
        nested(n, false, &format!("{path}.not"), out);
    }
    let pattern = text(v, "pattern");
    if !pattern.is_empty()
        && let Err(e) = regex::Regex::new(pattern)
    {
        out.push(invalid(
            format!("{path}.pattern"),
            Value::from(pattern),
            format!(
                "must be a valid regular expression, but isn't: {}",
                go_regexp_error(pattern, &e)
            ),
        ));
    }
}

/// Go's `regexp.Compile` error for the common mistakes (`error parsing regexp: <code>: `<expr>``);
/// other errors keep the regex crate's reason (Go's RE2 and the regex crate mostly agree on
/// what compiles, not on the words).
fn go_regexp_error(pattern: &str, e: &regex::Error) -> String {
    let text = e.to_string();
    let reason = text.lines().last().unwrap_or_default().trim();
    let reason = reason.strip_prefix("error: ").unwrap_or(reason);
    let go = match reason {
        "unclosed group" => format!("missing closing ): `{pattern}`"),
        "unopened group" => format!("unexpected ): `{pattern}`"),
        "unclosed character class" => {
            let from = pattern.rfind('[').unwrap_or(0);
            format!("missing closing ]: `{}`", &pattern[from..])
        }
        "repetition operator missing expression" => {
            // The operator with nothing before it: at the start, or after `(` or `|`.
            let bytes = pattern.as_bytes();
            let op = (0..bytes.len())
                .find(|&i| {
                    matches!(bytes[i], b'+' | b'*' | b'?')
                        && (i == 0 || matches!(bytes[i - 1], b'(' | b'|'))
                })
                .map_or("", |i| &pattern[i..=i]);
            format!("missing argument to repetition operator: `{op}`")
        }
        other => other.to_owned(),
    };
    format!("error parsing regexp: {go}")
}

/// A schema below `allOf`/`anyOf`/`oneOf`/`not`: value validations only.
fn nested(v: &Value, skip_any_of: bool, path: &str, out: &mut Vec<FieldError>) {
    value_validation(v, skip_any_of, false, path, out);
    if let Some(i) = items(v) {
        nested(i, false, &format!("{path}.items"), out);
    }
    for (k, p) in properties(v) {
        nested(p, false, &key(path, k), out);
    }
    let rules: [(&str, &str); 14] = [
        ("type", "must be empty to be structural"),
        ("additionalProperties", "must be undefined to be structural"),
        ("default", "must be undefined to be structural"),
        ("title", "must be empty to be structural"),
        ("description", "must be empty to be structural"),
        ("nullable", "must be false to be structural"),
        ("externalDocs", "must be undefined to be structural"),
        (
            "x-kubernetes-preserve-unknown-fields",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-embedded-resource",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-int-or-string",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        ),
        (
            "x-kubernetes-list-type",
            "must be undefined to be structural",
        ),
        (
            "x-kubernetes-map-type",
            "must be undefined to be structural",
        ),
        ("x-kubernetes-validations", "must be empty to be structural"),
    ];
    for (k, detail) in rules {
        let present = match k {
            // Pointers upstream: any value counts.
            "additionalProperties"
            | "default"
            | "externalDocs"
            | "x-kubernetes-list-type"
            | "x-kubernetes-map-type" => v.get(k).is_some_and(|x| !x.is_null()),
            _ => set(v, k),
        };
        if present {
            out.push(forbidden(format!("{path}.{k}"), detail));
        }
    }
    if properties(v).iter().any(|(k, _)| k.as_str() == "metadata") {
        out.push(forbidden(
            key(path, "metadata"),
            "must not be specified in a nested context",
        ));
    }
}

/// `validateValueValidationCompleteness`: every field or array a junctor speaks of must be
/// specified outside of it.
fn completeness_value(
    v: &Value,
    s: Option<&Value>,
    s_path: &str,
    v_path: &str,
    out: &mut Vec<FieldError>,
) {
    let Some(s) = s else {
        out.push(FieldError::required(
            s_path.to_owned(),
            format!("because it is defined in {v_path}"),
        ));
        return;
    };
    if let Some(n) = v.get("not").filter(|n| n.is_object()) {
        completeness_nested(n, Some(s), s_path, &format!("{v_path}.not"), out);
    }
    for junctor in ["allOf", "anyOf", "oneOf"] {
        for (i, n) in schemas(v, junctor).iter().enumerate() {
            completeness_nested(n, Some(s), s_path, &format!("{v_path}.{junctor}[{i}]"), out);
        }
    }
}

fn completeness_nested(
    v: &Value,
    s: Option<&Value>,
    s_path: &str,
    v_path: &str,
    out: &mut Vec<FieldError>,
) {
    let Some(s) = s else {
        out.push(FieldError::required(
            s_path.to_owned(),
            format!("because it is defined in {v_path}"),
        ));
        return;
    };
    completeness_value(v, Some(s), s_path, v_path, out);
    if let Some(i) = items(v) {
        completeness_nested(
            i,
            items(s),
            &format!("{s_path}.items"),
            &format!("{v_path}.items"),
            out,
        );
    }
    let s_props = s.get("properties").and_then(Value::as_object);
    for (k, p) in properties(v) {
        match s_props.and_then(|m| m.get(k)) {
            None => out.push(FieldError::required(
                key(s_path, k),
                format!("because it is defined in {}", key(v_path, k)),
            )),
            Some(sp) => completeness_nested(p, Some(sp), &key(s_path, k), &key(v_path, k), out),
        }
    }
}

/// `defaulting.ValidateDefaults` for a structural schema: every `default` must validate
/// against its schema and must not carry fields that pruning would drop. Defaults inside
/// `metadata`/`apiVersion`/`kind` of a resource are not checked here (the top-level ones are
/// forbidden by [`validate_openapi_schema`]).
pub(crate) fn validate_defaults(schema: &Value, path: &str) -> Vec<FieldError> {
    let mut out = Vec::new();
    defaults(schema, path, true, false, &mut out);
    out
}

fn defaults(s: &Value, path: &str, embedded: bool, inside_meta: bool, out: &mut Vec<FieldError>) {
    let embedded = embedded || flag(s, "x-kubernetes-embedded-resource");
    let inside_meta = inside_meta && !embedded;
    if let Some(d) = s.get("default").filter(|d| !d.is_null())
        && !inside_meta
        && let Ok(props) = serde_json::from_value::<JSONSchemaProps>(s.clone())
    {
        let node = Node::compile(&props);
        let at = format!("{path}.default");
        let mut pruned = d.clone();
        super::prune_node(&node, &mut pruned, embedded);
        if &pruned != d {
            out.push(invalid(
                at.clone(),
                d.clone(),
                "must not have unknown fields",
            ));
        }
        let mut outcome = values::Outcome::default();
        let ctx = values::Ctx { prefix: &at };
        values::validate(&node, d, None, "", false, ctx, &mut outcome);
        out.extend(outcome.errors);
    }
    // additionalProperties is not followed: defaults are forbidden there.
    if let Some(i) = items(s) {
        defaults(i, &format!("{path}.items"), false, inside_meta, out);
    }
    for (k, p) in properties(s) {
        let meta = inside_meta || (embedded && META_FIELDS.contains(&k.as_str()));
        defaults(p, &key(path, k), false, meta, out);
    }
}

/// How the walk of [`validate_openapi_schema`] is set (upstream's `specStandardValidatorV3`).
#[derive(Debug, Clone, Default)]
struct Walk {
    forbid_defaults: Option<String>,
    inside_resource_meta: bool,
}

/// The per-node checks of upstream's `ValidateCustomResourceDefinitionOpenAPISchema` (without
/// the CEL rules, which [`super::StructuralSchema::compile`] checks), in its order.
pub(crate) fn validate_openapi_schema(schema: &Value, path: &str) -> Vec<FieldError> {
    let mut out = Vec::new();
    openapi(schema, path, &Walk::default(), true, &mut out);
    out
}

fn standard(s: &Value, path: &str, walk: &Walk, out: &mut Vec<FieldError>) {
    let type_ = text(s, "type");
    if !type_.is_empty() && !OPENAPI_V3_TYPES.contains(&type_) {
        out.push(not_supported(
            format!("{path}.type"),
            type_,
            &OPENAPI_V3_TYPES,
        ));
    }
    if s.get("default").is_some_and(|d| !d.is_null())
        && let Some(reason) = &walk.forbid_defaults
    {
        out.push(forbidden(
            format!("{path}.default"),
            &format!("must not be set {reason}"),
        ));
    }
    if !text(s, "id").is_empty() {
        out.push(forbidden(format!("{path}.id"), "id is not supported"));
    }
    for (k, detail) in [
        ("additionalItems", "additionalItems is not supported"),
        ("patternProperties", "patternProperties is not supported"),
        ("definitions", "definitions is not supported"),
        ("dependencies", "dependencies is not supported"),
        ("$ref", "$ref is not supported"),
    ] {
        let present = match k {
            "patternProperties" | "definitions" => set(s, k),
            _ => s.get(k).is_some_and(|x| !x.is_null()),
        };
        if present {
            out.push(forbidden(format!("{path}.{k}"), detail));
        }
    }
    if type_ == "null" {
        out.push(forbidden(
            format!("{path}.type"),
            "type cannot be set to null, use nullable as an alternative",
        ));
    }
    if s.get("items").is_some_and(Value::is_array) {
        out.push(forbidden(
            format!("{path}.items"),
            "items must be a schema object and not an array",
        ));
    }
    if walk.inside_resource_meta && flag(s, "x-kubernetes-embedded-resource") {
        out.push(forbidden(
            format!("{path}.x-kubernetes-embedded-resource"),
            "must not be used inside of resource meta",
        ));
    }
}

fn openapi(s: &Value, path: &str, walk: &Walk, root: bool, out: &mut Vec<FieldError>) {
    if !s.is_object() {
        return;
    }
    standard(s, path, walk, out);
    if flag(s, "uniqueItems") {
        out.push(forbidden(
            format!("{path}.uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    let props = properties(s);
    if let Some(a) = s.get("additionalProperties").filter(|a| !a.is_null()) {
        if !props.is_empty() && (a.is_object() || a == &Value::Bool(false)) {
            out.push(forbidden(
                format!("{path}.additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        let mut sub = walk.clone();
        if walk.inside_resource_meta {
            sub.forbid_defaults =
                Some("inside additionalProperties applying to object metadata".into());
        }
        openapi(a, &format!("{path}.additionalProperties"), &sub, false, out);
    }
    let embedded = flag(s, "x-kubernetes-embedded-resource");
    for (k, p) in &props {
        let mut sub = walk.clone();
        if (root || embedded) && META_FIELDS.contains(&k.as_str()) {
            sub.inside_resource_meta = true;
            if root {
                sub.forbid_defaults = Some(format!("in top-level {k}"));
            }
        }
        openapi(p, &key(path, k), &sub, false, out);
    }
    if let Some(n) = s.get("not") {
        openapi(n, &format!("{path}.not"), walk, false, out);
    }
    for junctor in ["allOf", "oneOf", "anyOf"] {
        for (i, n) in schemas(s, junctor).iter().enumerate() {
            openapi(n, &format!("{path}.{junctor}[{i}]"), walk, false, out);
        }
    }
    if let Some(defs) = s.get("definitions").and_then(Value::as_object) {
        for (k, d) in defs {
            openapi(d, &format!("{path}.definitions[{k}]"), walk, false, out);
        }
    }
    match s.get("items") {
        Some(Value::Array(list)) => {
            for (i, n) in list.iter().enumerate() {
                openapi(n, &format!("{path}.items[{i}]"), walk, false, out);
            }
        }
        Some(i) => openapi(i, &format!("{path}.items"), walk, false, out),
        None => {}
    }
    if let Some(deps) = s.get("dependencies").and_then(Value::as_object) {
        for (k, d) in deps {
            openapi(d, &format!("{path}.dependencies[{k}]"), walk, false, out);
        }
    }
    list_and_map_types(s, path, out);
}

fn list_and_map_types(s: &Value, path: &str, out: &mut Vec<FieldError>) {
    let type_ = text(s, "type");
    if s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(false)) {
        out.push(invalid(
            format!("{path}.x-kubernetes-preserve-unknown-fields"),
            Value::Bool(false),
            "must be true or undefined",
        ));
    }
    let map_type = s.get("x-kubernetes-map-type").and_then(Value::as_str);
    if map_type.is_some() && type_ != "object" {
        let d = "must be object if x-kubernetes-map-type is specified";
        out.push(if type_.is_empty() {
            FieldError::required(format!("{path}.type"), d)
        } else {
            invalid(format!("{path}.type"), Value::from(type_), d)
        });
    }
    if let Some(m) = map_type
        && m != "atomic"
        && m != "granular"
    {
        out.push(not_supported(
            format!("{path}.x-kubernetes-map-type"),
            m,
            &["atomic", "granular"],
        ));
    }
    let list_type = s.get("x-kubernetes-list-type").and_then(Value::as_str);
    let item = items(s);
    if list_type.is_some() && type_ != "array" {
        let d = "must be array if x-kubernetes-list-type is specified";
        out.push(if type_.is_empty() {
            FieldError::required(format!("{path}.type"), d)
        } else {
            invalid(format!("{path}.type"), Value::from(type_), d)
        });
    } else if list_type == Some("set")
        && let Some(is) = item
    {
        match text(is, "type") {
            "array" => {
                if let Some(lt) = is.get("x-kubernetes-list-type").and_then(Value::as_str)
                    && lt != "atomic"
                {
                    out.push(invalid(
                        format!("{path}.items.x-kubernetes-list-type"),
                        Value::from(lt),
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    ));
                }
            }
            "object" => {
                let mt = is.get("x-kubernetes-map-type").and_then(Value::as_str);
                if mt != Some("atomic") {
                    // Upstream quotes the item's list type here, a `*string` (nil for an
                    // object item).
                    let shown = match is.get("x-kubernetes-list-type").and_then(Value::as_str) {
                        Some(lt) => crate::gofmt::quote(lt),
                        None => "(*string)(nil)".to_owned(),
                    };
                    out.push(invalid_raw(
                        format!("{path}.items.x-kubernetes-map-type"),
                        shown,
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    ));
                }
            }
            _ => {}
        }
    }
    if let Some(lt) = list_type
        && !["atomic", "set", "map"].contains(&lt)
    {
        out.push(not_supported(
            format!("{path}.x-kubernetes-list-type"),
            lt,
            &["atomic", "set", "map"],
        ));
    }
    let keys: Vec<&str> = schemas(s, "x-kubernetes-list-map-keys")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let keys_value = format!(
        "[]string{{{}}}",
        keys.iter()
            .map(|k| crate::gofmt::quote(k))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !keys.is_empty() {
        match list_type {
            None => out.push(FieldError::required(
                format!("{path}.x-kubernetes-list-type"),
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
            Some("map") => {}
            Some(lt) => out.push(invalid(
                format!("{path}.x-kubernetes-list-type"),
                Value::from(lt),
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
        }
    }
    if list_type == Some("map") {
        if keys.is_empty() {
            out.push(FieldError::required(
                format!("{path}.x-kubernetes-list-map-keys"),
                "must not be empty if x-kubernetes-list-type is map",
            ));
        }
        if s.get("items").is_none_or(Value::is_null) {
            out.push(FieldError::required(
                format!("{path}.items"),
                "must have a schema if x-kubernetes-list-type is map",
            ));
        }
        if let Some(is) = item {
            let item_type = text(is, "type");
            if item_type != "object" {
                out.push(invalid(
                    format!("{path}.items.type"),
                    Value::from(item_type),
                    "must be object if parent array's x-kubernetes-list-type is map",
                ));
            } else {
                let item_props = is.get("properties").and_then(Value::as_object);
                let mut seen: Vec<&str> = Vec::new();
                for k in &keys {
                    match item_props.and_then(|m| m.get(*k)) {
                        Some(p) => {
                            if matches!(text(p, "type"), "array" | "object") {
                                // Upstream quotes the item's type, not the key's.
                                out.push(invalid(
                                    format!("{}.type", key(&format!("{path}.items"), k)),
                                    Value::from(item_type),
                                    "must be a scalar type if parent array's x-kubernetes-list-type is map",
                                ));
                            }
                        }
                        None => out.push(invalid_raw(
                            format!("{path}.x-kubernetes-list-map-keys"),
                            keys_value.clone(),
                            "entries must all be names of item properties",
                        )),
                    }
                    if seen.contains(k) {
                        out.push(invalid_raw(
                            format!("{path}.x-kubernetes-list-map-keys"),
                            keys_value.clone(),
                            "must not contain duplicate entries",
                        ));
                    }
                    seen.push(k);
                }
            }
        }
    }
    map_list_keys_map_set(s, path, list_type, &keys, out);
}

/// `validateMapListKeysMapSet`: set and map items are not nullable, map keys are required or
/// defaulted and not nullable.
fn map_list_keys_map_set(
    s: &Value,
    path: &str,
    list_type: Option<&str>,
    keys: &[&str],
    out: &mut Vec<FieldError>,
) {
    let (Some(is), Some(lt @ ("set" | "map"))) = (items(s), list_type) else {
        return;
    };
    if flag(is, "nullable") {
        out.push(forbidden(
            format!("{path}.items.nullable"),
            &format!("cannot be nullable when x-kubernetes-list-type is {lt}"),
        ));
    }
    if lt != "map" {
        return;
    }
    let required: Vec<&str> = schemas(is, "required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let item_props = is.get("properties").and_then(Value::as_object);
    for k in keys {
        let Some(p) = item_props.and_then(|m| m.get(*k)) else {
            continue;
        };
        let at = key(&format!("{path}.items"), k);
        if !required.contains(k) && p.get("default").is_none_or(Value::is_null) {
            out.push(FieldError::required(
                format!("{at}.default"),
                "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
            ));
        }
        if flag(p, "nullable") {
            out.push(forbidden(
                format!("{at}.nullable"),
                "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
            ));
        }
    }
}
