//! Field errors as apimachinery's `field.Error` words them (`k8s.io/apimachinery/pkg/util/validation/field`).

use serde_json::Value;

use crate::gofmt;

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

    /// The head of the message, `field.ErrorType.String()`.
    fn head(self) -> &'static str {
        match self {
            Self::Required => "Required value",
            Self::Invalid | Self::TypeInvalid => "Invalid value",
            Self::NotSupported => "Unsupported value",
            Self::TooLong => "Too long",
            Self::TooMany => "Too many",
            Self::Duplicate => "Duplicate value",
            Self::Forbidden => "Forbidden",
        }
    }

    /// Whether kube-apiserver skips CEL rules when such an error is present (`hasBlockingErr` in
    /// apiextensions-apiserver's `customresource/strategy.go`).
    pub fn blocks_cel(self) -> bool {
        matches!(
            self,
            Self::NotSupported | Self::Required | Self::TooLong | Self::TooMany | Self::TypeInvalid
        )
    }
}

/// One validation failure at one field path.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// The field path as kube-apiserver prints it, e.g. `spec.replicas`, `metadata.labels`, or
    /// `<nil>` for errors about the object as a whole.
    pub field: String,
    /// What is wrong.
    pub kind: FieldErrorType,
    /// The offending value, when kube-apiserver quotes it (`Some(Value::Null)` prints `null`).
    pub bad_value: Option<Value>,
    /// The detail sentence.
    pub detail: String,
}

impl FieldError {
    /// An error with a bad value.
    pub(crate) fn new(
        field: impl Into<String>,
        kind: FieldErrorType,
        bad_value: Value,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            kind,
            bad_value: Some(bad_value),
            detail: detail.into(),
        }
    }

    /// `field.Required(path, detail)`.
    pub(crate) fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            kind: FieldErrorType::Required,
            bad_value: None,
            detail: detail.into(),
        }
    }

    /// `field.Forbidden(path, detail)`.
    pub(crate) fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            kind: FieldErrorType::Forbidden,
            bad_value: None,
            detail: detail.into(),
        }
    }

    /// `field.TooLong(path, value, max)`: the value is never printed.
    pub(crate) fn too_long(field: impl Into<String>, max: i64) -> Self {
        let detail = if max >= 0 {
            format!(
                "may not be more than {max} {}",
                if max == 1 { "byte" } else { "bytes" }
            )
        } else {
            "value is too long".to_owned()
        };
        Self {
            field: field.into(),
            kind: FieldErrorType::TooLong,
            bad_value: None,
            detail,
        }
    }

    /// `field.TooMany(path, actual, max)`.
    pub(crate) fn too_many(field: impl Into<String>, actual: usize, max: i64) -> Self {
        let detail = if max >= 0 {
            format!(
                "must have at most {max} {}",
                if max == 1 { "item" } else { "items" }
            )
        } else {
            "has too many items".to_owned()
        };
        Self::new(field, FieldErrorType::TooMany, Value::from(actual), detail)
    }

    /// The `message` of this error's `StatusCause` (the field is reported beside it), worded as
    /// kube-apiserver words it, e.g. `Invalid value: "integer": spec.x in body must be of type string: "integer"`.
    pub fn message(&self) -> String {
        let head = self.kind.head();
        let value = match self.kind {
            FieldErrorType::Required | FieldErrorType::TooLong | FieldErrorType::Forbidden => None,
            _ => self.bad_value.as_ref().map(gofmt::error_value),
        };
        match (value, self.detail.is_empty()) {
            (Some(v), false) => format!("{head}: {v}: {}", self.detail),
            (Some(v), true) => format!("{head}: {v}"),
            (None, false) => format!("{head}: {}", self.detail),
            (None, true) => head.to_owned(),
        }
    }
}

/// The `message` of a 422 Invalid `Status`: `<Kind>.<group> "<name>" is invalid: ...`, with the
/// errors in brackets when there are several and each distinct error listed once (as
/// `errors.NewInvalid` and `ErrorList.ToAggregate` do).
pub fn invalid_message(qualified_kind: &str, name: &str, errors: &[FieldError]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in errors {
        let p = format!("{}: {}", e.field, e.message());
        if !parts.contains(&p) {
            parts.push(p);
        }
    }
    match parts.as_slice() {
        [one] => format!("{qualified_kind} \"{name}\" is invalid: {one}"),
        many => format!(
            "{qualified_kind} \"{name}\" is invalid: [{}]",
            many.join(", ")
        ),
    }
}
