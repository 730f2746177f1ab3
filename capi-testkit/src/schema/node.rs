//! One schema node compiled from k8s-openapi's `JSONSchemaProps`.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use regex::Regex;
use serde_json::Value;

use super::formats::Format;

/// A `pattern`, compiled once. kube-openapi reports a pattern that does not compile at
/// validation time (`... should match '<p>, but pattern is invalid: <err>'`), so the error is kept.
#[derive(Debug, Clone)]
pub(super) struct Pattern {
    pub source: String,
    pub compiled: Result<Regex, String>,
}

impl Pattern {
    fn compile(source: &str) -> Self {
        let compiled = Regex::new(source).map_err(|e| {
            tracing::warn!(pattern = source, error = %e, "schema pattern does not compile");
            // The regex crate's message is multi-line; Go's is one line.
            e.to_string()
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
                .to_owned()
        });
        Self {
            source: source.to_owned(),
            compiled,
        }
    }
}

/// One compiled schema node.
#[derive(Debug, Clone, Default)]
pub(super) struct Node {
    pub type_: Option<String>,
    /// A format kube-apiserver validates (others are stripped, as upstream does).
    pub format: Option<(String, Format)>,
    pub properties: Option<BTreeMap<String, Node>>,
    pub items: Option<Box<Node>>,
    pub additional: Option<Box<Node>>,
    pub required: Vec<String>,
    pub enum_: Option<Vec<Value>>,
    pub default: Option<Value>,
    pub preserve_unknown: bool,
    pub int_or_string: bool,
    pub embedded: bool,
    pub nullable: bool,
    pub maximum: Option<f64>,
    pub exclusive_maximum: bool,
    pub minimum: Option<f64>,
    pub exclusive_minimum: bool,
    pub multiple_of: Option<f64>,
    pub max_length: Option<i64>,
    pub min_length: Option<i64>,
    pub pattern: Option<Pattern>,
    pub max_items: Option<i64>,
    pub min_items: Option<i64>,
    pub max_properties: Option<i64>,
    pub min_properties: Option<i64>,
    pub all_of: Vec<Node>,
    pub any_of: Vec<Node>,
    pub one_of: Vec<Node>,
    pub not: Option<Box<Node>>,
    pub list_type: Option<String>,
    pub list_map_keys: Vec<String>,
    pub map_type_atomic: bool,
    /// `x-kubernetes-validations` rules on this node or any node below it.
    pub has_cel: bool,
    /// The `format` as written, for CEL's conversion of `duration`/`date`/`date-time`/`byte`.
    pub raw_format: Option<String>,
    /// The compiled `x-kubernetes-validations` of this node (filled by `cel::attach`).
    pub cel_rules: super::cel::Rules,
}

impl Node {
    pub(super) fn compile(p: &JSONSchemaProps) -> Self {
        let compile_all = |v: &Option<Vec<JSONSchemaProps>>| -> Vec<Node> {
            v.iter().flatten().map(Node::compile).collect()
        };
        let mut node = Self {
            type_: p.type_.clone().filter(|t| !t.is_empty()),
            format: p
                .format
                .as_deref()
                .and_then(|f| Format::supported(f).map(|k| (f.to_owned(), k))),
            properties: p.properties.as_ref().map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), Node::compile(v)))
                    .collect()
            }),
            items: match &p.items {
                Some(JSONSchemaPropsOrArray::Schema(s)) => Some(Box::new(Node::compile(s))),
                _ => None,
            },
            additional: match &p.additional_properties {
                Some(JSONSchemaPropsOrBool::Schema(s)) => Some(Box::new(Node::compile(s))),
                _ => None,
            },
            required: p.required.clone().unwrap_or_default(),
            enum_: p
                .enum_
                .as_ref()
                .map(|e| e.iter().map(|v| v.0.clone()).collect()),
            default: p.default.as_ref().map(|d| d.0.clone()),
            preserve_unknown: p.x_kubernetes_preserve_unknown_fields == Some(true),
            int_or_string: p.x_kubernetes_int_or_string == Some(true),
            embedded: p.x_kubernetes_embedded_resource == Some(true),
            nullable: p.nullable == Some(true),
            maximum: p.maximum,
            exclusive_maximum: p.exclusive_maximum == Some(true),
            minimum: p.minimum,
            exclusive_minimum: p.exclusive_minimum == Some(true),
            multiple_of: p.multiple_of,
            max_length: p.max_length,
            min_length: p.min_length,
            pattern: p
                .pattern
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(Pattern::compile),
            max_items: p.max_items,
            min_items: p.min_items,
            max_properties: p.max_properties,
            min_properties: p.min_properties,
            all_of: compile_all(&p.all_of),
            any_of: compile_all(&p.any_of),
            one_of: compile_all(&p.one_of),
            not: p.not.as_deref().map(|n| Box::new(Node::compile(n))),
            list_type: p.x_kubernetes_list_type.clone(),
            list_map_keys: p.x_kubernetes_list_map_keys.clone().unwrap_or_default(),
            map_type_atomic: p.x_kubernetes_map_type.as_deref() == Some("atomic"),
            has_cel: p
                .x_kubernetes_validations
                .as_ref()
                .is_some_and(|v| !v.is_empty()),
            raw_format: p.format.clone(),
            cel_rules: super::cel::Rules::default(),
        };
        let below = node.children().any(|c| c.has_cel);
        node.has_cel |= below;
        node
    }

    /// Every direct sub-schema.
    fn children(&self) -> impl Iterator<Item = &Node> {
        self.properties
            .iter()
            .flat_map(|m| m.values())
            .chain(self.items.as_deref())
            .chain(self.additional.as_deref())
            .chain(&self.all_of)
            .chain(&self.any_of)
            .chain(&self.one_of)
            .chain(self.not.as_deref())
    }

    /// The types the value must have: `integer,string` for int-or-string (as kube-openapi sees
    /// it after apiextensions' conversion), else the declared type.
    pub(super) fn types(&self) -> Vec<&str> {
        if self.int_or_string {
            vec!["integer", "string"]
        } else {
            self.type_.as_deref().into_iter().collect()
        }
    }

    /// The sub-schema of property `key` (or of the map values).
    pub(super) fn child(&self, key: &str) -> Option<&Node> {
        match &self.properties {
            Some(props) => props.get(key),
            None => self.additional.as_deref(),
        }
    }
}
