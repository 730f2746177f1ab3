//! Structural schemas of CustomResourceDefinitions: defaulting, pruning and validation, worded as
//! kube-apiserver words them.
//!
//! INTERFACE STUB: the signatures here are the contract between the server and this module; the
//! bodies are placeholders to be replaced by the real engine.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use serde_json::Value;

use crate::patch::{FieldSchema, ListSemantics};

/// Why a schema could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The schema is not structural (kube-apiserver refuses such CRDs).
    #[error("schema is not structural: {0}")]
    NotStructural(String),
}

/// One CRD version's `openAPIV3Schema`, compiled for fast repeated use.
#[derive(Debug, Clone)]
pub struct StructuralSchema {
    raw: JSONSchemaProps,
}

impl StructuralSchema {
    /// Compiles a schema.
    pub fn compile(schema: &JSONSchemaProps) -> Result<Self, SchemaError> {
        Ok(Self {
            raw: schema.clone(),
        })
    }

    /// The schema as given.
    pub fn raw(&self) -> &JSONSchemaProps {
        &self.raw
    }

    /// Applies `default`s in place, as kube-apiserver does on decoding a request and reading storage.
    pub fn apply_defaults(&self, _obj: &mut Value) {}

    /// Drops fields the schema does not know (honouring `x-kubernetes-preserve-unknown-fields` and
    /// embedded resources) and returns their paths as kube-apiserver prints them in warnings and
    /// strict-validation errors, e.g. `.spec.foo`.
    pub fn prune(&self, _obj: &mut Value) -> Vec<String> {
        Vec::new()
    }

    /// Validates a whole object (after defaulting and pruning) against the schema.
    pub fn validate(&self, _obj: &Value) -> Vec<FieldError> {
        Vec::new()
    }
}

impl FieldSchema for StructuralSchema {
    fn list_semantics(&self, _path: &[&str]) -> ListSemantics {
        ListSemantics::Atomic
    }
}

/// The kind of a field error, as apimachinery's `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorType {
    /// `FieldValueRequired`: "Required value".
    Required,
    /// `FieldValueInvalid`: "Invalid value".
    Invalid,
    /// `FieldValueNotSupported`: "Unsupported value".
    NotSupported,
    /// `FieldValueTooLong`: "Too long".
    TooLong,
    /// `FieldValueTooMany`: "Too many".
    TooMany,
    /// `FieldValueDuplicate`: "Duplicate value".
    Duplicate,
    /// `FieldValueTypeInvalid`: "Invalid value" for a wrong type.
    TypeInvalid,
    /// `FieldValueForbidden`: "Forbidden".
    Forbidden,
}

impl FieldErrorType {
    /// The `reason` of the `StatusCause` kube-apiserver sends for this error type.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Required => "FieldValueRequired",
            Self::Invalid => "FieldValueInvalid",
            Self::NotSupported => "FieldValueNotSupported",
            Self::TooLong => "FieldValueTooLong",
            Self::TooMany => "FieldValueTooMany",
            Self::Duplicate => "FieldValueDuplicate",
            Self::TypeInvalid => "FieldValueTypeInvalid",
            Self::Forbidden => "FieldValueForbidden",
        }
    }
}

/// One validation failure at one field path.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// The field path as kube-apiserver prints it, e.g. `spec.replicas` or `metadata.labels`.
    pub field: String,
    /// What is wrong.
    pub kind: FieldErrorType,
    /// The offending value, when kube-apiserver quotes it.
    pub bad_value: Option<Value>,
    /// The detail sentence.
    pub detail: String,
}

impl FieldError {
    /// The `message` of this error's `StatusCause`, worded as kube-apiserver words it.
    pub fn message(&self) -> String {
        format!("{}: {}", self.field, self.detail)
    }
}

/// The `message` of a 422 Invalid `Status`: `<Kind>.<group> "<name>" is invalid: ...`.
pub fn invalid_message(qualified_kind: &str, name: &str, errors: &[FieldError]) -> String {
    let parts: Vec<String> = errors.iter().map(FieldError::message).collect();
    format!(
        "{qualified_kind} \"{name}\" is invalid: {}",
        parts.join(", ")
    )
}

/// Validates `metadata` (name, generateName, namespace, labels, annotations, finalizers,
/// ownerReferences) as kube-apiserver does for every object.
pub fn validate_object_meta(_meta: &Value, _namespaced: bool) -> Vec<FieldError> {
    Vec::new()
}
