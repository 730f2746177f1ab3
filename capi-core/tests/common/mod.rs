//! Random objects shaped by a CRD schema: the inputs of the serde and conversion proptests.
//!
//! Generating from the schema (rather than from the Rust types) means the test also catches a
//! Rust type that cannot hold something the API accepts.

#![allow(dead_code)]

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// The `openAPIV3Schema` of `version` in the capi-core CRD named `name`.
pub fn core_schema(name: &str, version: &str) -> JSONSchemaProps {
    let crds: Vec<CustomResourceDefinition> = capi_core::crd::core_crds().expect("core CRDs");
    let crd = crds
        .into_iter()
        .find(|c| c.metadata.name.as_deref() == Some(name))
        .expect("CRD exists");
    crd.spec
        .versions
        .into_iter()
        .find(|v| v.name == version)
        .and_then(|v| v.schema)
        .and_then(|s| s.open_api_v3_schema)
        .expect("version has a schema")
}

/// A whole object: `apiVersion`/`kind` as given, a small metadata, spec and status from the schema.
pub fn object(api_version: &str, kind: &str, schema: &JSONSchemaProps) -> BoxedStrategy<Value> {
    let props = schema.properties.clone().unwrap_or_default();
    let spec = props
        .get("spec")
        .map(|s| value(s, 0))
        .unwrap_or_else(|| Just(Value::Null).boxed());
    let status = props
        .get("status")
        .map(|s| prop::option::of(value(s, 0)).boxed())
        .unwrap_or_else(|| Just(None).boxed());
    let (api_version, kind) = (api_version.to_owned(), kind.to_owned());
    (metadata(), spec, status)
        .prop_map(move |(metadata, spec, status)| {
            let mut o = Map::new();
            o.insert("apiVersion".into(), Value::String(api_version.clone()));
            o.insert("kind".into(), Value::String(kind.clone()));
            o.insert("metadata".into(), metadata);
            if !spec.is_null() {
                o.insert("spec".into(), spec);
            }
            if let Some(status) = status {
                o.insert("status".into(), status);
            }
            Value::Object(o)
        })
        .boxed()
}

fn metadata() -> impl Strategy<Value = Value> {
    (
        "[a-z][a-z0-9-]{0,10}",
        prop::collection::btree_map("[a-z]{1,5}", "[a-z0-9]{0,5}", 0..3),
    )
        .prop_map(|(name, labels)| {
            let mut m = serde_json::json!({"name": name, "namespace": "default"});
            if !labels.is_empty() {
                m["labels"] = serde_json::to_value(labels).unwrap_or_default();
            }
            m
        })
}

/// A value valid in shape (types, required fields, enums, formats) for `schema`.
pub fn value(schema: &JSONSchemaProps, depth: u32) -> BoxedStrategy<Value> {
    if schema.x_kubernetes_int_or_string == Some(true) {
        return prop_oneof![
            any::<i32>().prop_map(Value::from),
            "[0-9]{1,2}%".prop_map(Value::String)
        ]
        .boxed();
    }
    if let Some(values) = &schema.enum_ {
        let values: Vec<Value> = values.iter().map(|v| v.0.clone()).collect();
        return prop::sample::select(values).boxed();
    }
    match schema.type_.as_deref() {
        Some("string") => match schema.format.as_deref() {
            Some("date-time") => (
                2000u32..2100,
                1u32..13,
                1u32..29,
                0u32..24,
                0u32..60,
                0u32..60,
            )
                .prop_map(|(y, mo, d, h, mi, s)| {
                    Value::String(format!("{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"))
                })
                .boxed(),
            _ => "[a-zA-Z0-9./_-]{0,12}".prop_map(Value::String).boxed(),
        },
        Some("integer") => match schema.format.as_deref() {
            Some("int32") => any::<i32>().prop_map(Value::from).boxed(),
            _ => any::<i64>().prop_map(Value::from).boxed(),
        },
        Some("number") => (-1.0e6f64..1.0e6).prop_map(Value::from).boxed(),
        Some("boolean") => any::<bool>().prop_map(Value::Bool).boxed(),
        Some("array") => {
            let Some(JSONSchemaPropsOrArray::Schema(items)) = &schema.items else {
                return Just(Value::Array(Vec::new())).boxed();
            };
            let max = if depth > 3 { 1 } else { 3 };
            prop::collection::vec(value(items, depth + 1), 0..max)
                .prop_map(Value::Array)
                .boxed()
        }
        _ => object_value(schema, depth),
    }
}

fn object_value(schema: &JSONSchemaProps, depth: u32) -> BoxedStrategy<Value> {
    if let Some(props) = &schema.properties {
        let required: Vec<String> = schema.required.clone().unwrap_or_default();
        let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = props
            .iter()
            .map(|(name, s)| {
                let name = name.clone();
                let v = value(s, depth + 1);
                if required.contains(&name) {
                    v.prop_map(move |v| Some((name.clone(), v))).boxed()
                } else {
                    // Deep optional fields are mostly absent, which keeps objects small.
                    let weight = if depth > 2 { 0.2 } else { 0.5 };
                    prop::option::weighted(weight, v)
                        .prop_map(move |v| v.map(|v| (name.clone(), v)))
                        .boxed()
                }
            })
            .collect();
        return fields
            .prop_map(|fields| {
                Value::Object(fields.into_iter().flatten().collect::<Map<String, Value>>())
            })
            .boxed();
    }
    if let Some(JSONSchemaPropsOrBool::Schema(ap)) = &schema.additional_properties {
        return prop::collection::btree_map("[a-z][a-z0-9.-]{0,8}", value(ap, depth + 1), 0..3)
            .prop_map(|m: BTreeMap<String, Value>| Value::Object(m.into_iter().collect()))
            .boxed();
    }
    // Free-form (x-kubernetes-preserve-unknown-fields): any small JSON.
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        "[a-z]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}
