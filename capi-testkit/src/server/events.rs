//! Events: core/v1 and events.k8s.io/v1 are two views of one storage, as in kube-apiserver.
//!
//! kube-apiserver keeps every Event as the internal (core) type, so an Event written through one
//! API is read, listed and watched through the other: `kubectl get events` shows what a
//! controller recorded through events.k8s.io. The store keeps the core/v1 form; this module
//! converts between the two (`pkg/apis/events/v1/conversion.go`: `regarding` is
//! `involvedObject`, `note` is `message`, `deprecatedSource`, `deprecatedFirstTimestamp`,
//! `deprecatedLastTimestamp` and `deprecatedCount` are `source`, `firstTimestamp`,
//! `lastTimestamp` and `count`, `reportingController` is `reportingComponent`), writes each form
//! as Go's typed encoding does (`"eventTime": null`, `"source": {}`, zero values of `omitempty`
//! fields left out, times at their precision), checks writes as `ValidateEventCreate` and
//! `ValidateEventUpdate` do, and translates the field selectors of events.k8s.io into the
//! stored form's.

use serde_json::{Map, Value, json};

use super::errors::ApiError;
use super::resources::Resource;

/// The events.k8s.io/v1 names of the core/v1 fields that differ, core name first.
const RENAMED: [(&str, &str); 7] = [
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

/// What Go's encoding of a typed field writes when the field holds its zero value.
#[derive(Clone, Copy)]
enum Zero {
    /// `omitempty` on a scalar or a pointer: left out.
    Omitted,
    /// A struct (`omitempty` does not apply): `{}`.
    EmptyObject,
    /// A `metav1.Time` or `MicroTime`: `null`.
    Null,
    /// A string without `omitempty`: `""`.
    EmptyString,
}

/// How a field's time is written: `metav1.Time` to the second, `MicroTime` to the microsecond.
#[derive(Clone, Copy)]
enum Precision {
    Seconds,
    Micros,
}

/// The top-level fields of core/v1 Event (`k8s.io/api/core/v1`), with their zero encodings and,
/// for times, precision.
const CORE_FIELDS: [(&str, Zero, Option<Precision>); 14] = [
    ("involvedObject", Zero::EmptyObject, None),
    ("reason", Zero::Omitted, None),
    ("message", Zero::Omitted, None),
    ("source", Zero::EmptyObject, None),
    ("firstTimestamp", Zero::Null, Some(Precision::Seconds)),
    ("lastTimestamp", Zero::Null, Some(Precision::Seconds)),
    ("count", Zero::Omitted, None),
    ("type", Zero::Omitted, None),
    ("eventTime", Zero::Null, Some(Precision::Micros)),
    ("series", Zero::Omitted, None),
    ("action", Zero::Omitted, None),
    ("related", Zero::Omitted, None),
    ("reportingComponent", Zero::EmptyString, None),
    ("reportingInstance", Zero::EmptyString, None),
];

/// The same for events.k8s.io/v1 Event (`k8s.io/api/events/v1`).
const EVENTS_V1_FIELDS: [(&str, Zero, Option<Precision>); 14] = [
    ("eventTime", Zero::Null, Some(Precision::Micros)),
    ("series", Zero::Omitted, None),
    ("reportingController", Zero::Omitted, None),
    ("reportingInstance", Zero::Omitted, None),
    ("action", Zero::Omitted, None),
    ("reason", Zero::Omitted, None),
    ("regarding", Zero::EmptyObject, None),
    ("related", Zero::Omitted, None),
    ("note", Zero::Omitted, None),
    ("type", Zero::Omitted, None),
    ("deprecatedSource", Zero::EmptyObject, None),
    (
        "deprecatedFirstTimestamp",
        Zero::Null,
        Some(Precision::Seconds),
    ),
    (
        "deprecatedLastTimestamp",
        Zero::Null,
        Some(Precision::Seconds),
    ),
    ("deprecatedCount", Zero::Omitted, None),
];

/// The field labels events.k8s.io/v1 accepts, each with the stored (core) label it reads
/// (`AddFieldLabelConversionsForEvent` of `pkg/apis/events/v1`).
pub(crate) const EVENTS_V1_FIELD_LABELS: [(&str, &str); 13] = [
    ("metadata.name", "metadata.name"),
    ("metadata.namespace", "metadata.namespace"),
    ("reason", "reason"),
    ("regarding.kind", "involvedObject.kind"),
    ("regarding.namespace", "involvedObject.namespace"),
    ("regarding.name", "involvedObject.name"),
    ("regarding.uid", "involvedObject.uid"),
    ("regarding.apiVersion", "involvedObject.apiVersion"),
    (
        "regarding.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("regarding.fieldPath", "involvedObject.fieldPath"),
    ("reportingController", "reportingComponent"),
    ("source", "source"),
    ("type", "type"),
];

/// The field labels core/v1 Events accept (`AddFieldLabelConversionsForEvent` of core/v1).
pub(crate) const CORE_FIELD_LABELS: [&str; 13] = [
    "metadata.name",
    "metadata.namespace",
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

/// The value a stored Event's selectable field `label` has (`ToSelectableFields` of the event
/// registry): `source` is the source's component, or the reporting component without one.
pub(crate) fn selectable_field(obj: &Value, label: &str) -> Option<String> {
    if label == "source" {
        let component = obj["source"]["component"].as_str().unwrap_or_default();
        let source = if component.is_empty() {
            obj["reportingComponent"].as_str().unwrap_or_default()
        } else {
            component
        };
        return Some(source.to_owned());
    }
    None
}

/// Whether `res` is events.k8s.io's Events (the view converted from the stored form).
pub(crate) fn is_events_v1(res: &Resource) -> bool {
    res.builtin && res.group == "events.k8s.io" && res.plural == "events"
}

/// Whether `res` is either API's Events.
pub(crate) fn is_event(res: &Resource) -> bool {
    res.builtin && res.plural == "events" && (res.group.is_empty() || is_events_v1(res))
}

fn rename(obj: Value, events_v1: bool) -> Value {
    let Value::Object(mut m) = obj else {
        return obj;
    };
    // Take every field first: a rename must not clobber a field not yet moved.
    let moved: Vec<(&str, Option<Value>)> = RENAMED
        .iter()
        .map(|&(core, v1)| {
            let (from, to) = if events_v1 { (core, v1) } else { (v1, core) };
            (to, m.remove(from))
        })
        .collect();
    for (to, value) in moved {
        // A field of the other form that this one has no name for is dropped, as a typed
        // decode into the other type drops it.
        m.remove(to);
        if let Some(v) = value {
            m.insert(to.to_owned(), v);
        }
    }
    Value::Object(m)
}

/// `obj` as Go writes the typed object: zero values left out or written as their zero
/// encoding, times at their precision. A time that does not parse is a decoding error.
fn typed(
    mut obj: Value,
    fields: &[(&str, Zero, Option<Precision>)],
    version: &str,
) -> Result<Value, ApiError> {
    let Some(m) = obj.as_object_mut() else {
        return Ok(obj);
    };
    for &(name, zero, precision) in fields {
        let value = match (m.get(name).filter(|v| !is_zero(v)), precision) {
            (Some(Value::String(t)), Some(p)) => Some(Value::String(time(t, p, version)?)),
            (value, _) => value.cloned(),
        };
        match (value, zero) {
            (Some(v), _) => {
                m.insert(name.to_owned(), v);
            }
            (None, Zero::Omitted) => {
                m.remove(name);
            }
            (None, Zero::EmptyObject) => {
                m.insert(name.to_owned(), Value::Object(Map::new()));
            }
            (None, Zero::Null) => {
                m.insert(name.to_owned(), Value::Null);
            }
            (None, Zero::EmptyString) => {
                m.insert(name.to_owned(), json!(""));
            }
        }
    }
    Ok(obj)
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Bool(b) => !b,
        Value::Array(_) | Value::Object(_) => false,
    }
}

/// A time as `metav1.Time` (RFC 3339 to the second, UTC) or `metav1.MicroTime` (six
/// fractional digits) writes it.
fn time(text: &str, precision: Precision, version: &str) -> Result<String, ApiError> {
    let t: k8s_openapi::jiff::Timestamp = text.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "Event in version \"{version}\" cannot be handled as a Event: parsing time \"{text}\" as \"2006-01-02T15:04:05Z07:00\": cannot parse \"{text}\" as \"2006\""
        ))
    })?;
    Ok(match precision {
        Precision::Seconds => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Precision::Micros => t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
    })
}

/// The stored (core/v1) form of an Event written through `res` (either API), encoded as the
/// typed core object is.
pub(crate) fn to_storage(res: &Resource, obj: Value) -> Result<Value, ApiError> {
    let (obj, version) = if is_events_v1(res) {
        (rename(obj, false), "events.k8s.io/v1")
    } else {
        (obj, "v1")
    };
    let mut obj = typed(obj, &CORE_FIELDS, version)?;
    obj["apiVersion"] = json!("v1");
    obj["kind"] = json!("Event");
    Ok(obj)
}

/// A stored Event as `res` (either API) answers it.
pub(crate) fn from_storage(res: &Resource, obj: Value) -> Value {
    if !is_events_v1(res) {
        return obj;
    }
    let obj = rename(obj, true);
    // The stored form was written by `to_storage`, so its times parse.
    let mut obj = typed(obj.clone(), &EVENTS_V1_FIELDS, "events.k8s.io/v1").unwrap_or(obj);
    obj["apiVersion"] = json!("events.k8s.io/v1");
    obj["kind"] = json!("Event");
    obj
}

/// One 422 cause: `(field, reason, message)`.
type Cause = (String, &'static str, String);

fn required(field: &str) -> Cause {
    (field.into(), "FieldValueRequired", "Required value".into())
}

fn invalid(field: &str, value: &str, detail: &str) -> Cause {
    (
        field.into(),
        "FieldValueInvalid",
        format!("Invalid value: {}: {detail}", crate::gofmt::quote(value)),
    )
}

const REPORTING_INSTANCE_LENGTH_LIMIT: usize = 128;
const ACTION_LENGTH_LIMIT: usize = 128;
const REASON_LENGTH_LIMIT: usize = 128;
const NOTE_LENGTH_LIMIT: usize = 1024;

fn text<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj[field].as_str().unwrap_or_default()
}

fn is_set(obj: &Value, field: &str) -> bool {
    !is_zero(&obj[field])
}

/// The checks of `ValidateEventCreate` (`old` is `None`) and `ValidateEventUpdate` on the
/// stored form of the new Event and of the old one, in their order and with their (core) field
/// names. Writes through core/v1 get the legacy checks only; events.k8s.io/v1 ones get the
/// strict checks too.
pub(crate) fn validate(res: &Resource, new: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = legacy_checks(new);
    if !is_events_v1(res) {
        return causes;
    }
    let series_changed = old.is_none_or(|o| o["series"] != new["series"]);
    if series_changed && new["series"].is_object() {
        if new["series"]["count"].as_i64().unwrap_or(0) < 2 {
            causes.push(invalid("series.count", "", "should be at least 2"));
        }
        if !is_set(&new["series"], "lastObservedTime") {
            causes.push(required("series.lastObservedTime"));
        }
    }
    let Some(old) = old else {
        if !is_set(new, "eventTime") {
            causes.push(required("eventTime"));
        }
        let type_ = text(new, "type");
        if type_ != "Normal" && type_ != "Warning" {
            causes.push(invalid("type", "", &format!("has invalid value: {type_}")));
        }
        for field in ["firstTimestamp", "lastTimestamp", "count"] {
            if is_set(new, field) {
                causes.push(invalid(field, "", "needs to be unset"));
            }
        }
        if is_set(&new["source"], "component") || is_set(&new["source"], "host") {
            causes.push(invalid("source", "", "needs to be unset"));
        }
        return causes;
    };
    // `reason` is checked twice upstream, so a change is reported twice.
    for field in [
        "involvedObject",
        "reason",
        "message",
        "source",
        "firstTimestamp",
        "lastTimestamp",
        "count",
        "reason",
        "type",
        "eventTime",
        "action",
        "related",
        "reportingComponent",
        "reportingInstance",
    ] {
        if new[field] != old[field] {
            let name = if field == "reportingComponent" {
                "reportingController"
            } else {
                field
            };
            causes.push(immutable(name, &new[field]));
        }
    }
    causes
}

/// `ValidateImmutableField`'s error: the new value, printed as Go's `%#v`-less `Invalid` does
/// for a string, or as the JSON of anything else.
fn immutable(field: &str, value: &Value) -> Cause {
    let shown = match value {
        Value::String(s) => crate::gofmt::quote(s),
        Value::Null => "\"\"".into(),
        other => other.to_string(),
    };
    (
        field.into(),
        "FieldValueInvalid",
        format!("Invalid value: {shown}: field is immutable"),
    )
}

/// `legacyValidateEvent`: namespaces agree, and an Event with an eventTime says who reported
/// what.
fn legacy_checks(event: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let namespace = event["metadata"]["namespace"].as_str().unwrap_or_default();
    let involved_ns = text(&event["involvedObject"], "namespace");
    let mismatch = || {
        invalid(
            "involvedObject.namespace",
            involved_ns,
            "does not match event.namespace",
        )
    };
    if !is_set(event, "eventTime") {
        if involved_ns.is_empty() {
            if !namespace.is_empty() && namespace != "default" {
                causes.push(mismatch());
            }
        } else if namespace != involved_ns {
            causes.push(mismatch());
        }
    } else {
        if involved_ns.is_empty() && namespace != "default" && namespace != "kube-system" {
            causes.push(mismatch());
        }
        let controller = text(event, "reportingComponent");
        if controller.is_empty() {
            causes.push(required("reportingController"));
        }
        for msg in crate::schema::qualified_name(controller) {
            causes.push(invalid("reportingController", controller, &msg));
        }
        let lengths = [
            ("reportingInstance", REPORTING_INSTANCE_LENGTH_LIMIT),
            ("action", ACTION_LENGTH_LIMIT),
            ("reason", REASON_LENGTH_LIMIT),
        ];
        for (field, limit) in lengths {
            let value = text(event, field);
            if value.is_empty() {
                causes.push(required(field));
            }
            if value.len() > limit {
                causes.push(invalid(
                    field,
                    "",
                    &format!("can have at most {limit} characters"),
                ));
            }
        }
        if text(event, "message").len() > NOTE_LENGTH_LIMIT {
            causes.push(invalid(
                "message",
                "",
                &format!("can have at most {NOTE_LENGTH_LIMIT} characters"),
            ));
        }
    }
    for msg in crate::schema::dns1123_subdomain(namespace) {
        causes.push(invalid("namespace", namespace, &msg));
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::resources::Registry;

    fn resources() -> (Resource, Resource) {
        let r = Registry::new();
        (
            r.get("", "events").cloned().unwrap(),
            r.get("events.k8s.io", "events").cloned().unwrap(),
        )
    }

    #[test]
    fn events_v1_round_trips_through_the_core_form() {
        let (core, v1) = resources();
        let written = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e", "namespace": "ns"}, "eventTime": "2026-11-22T10:00:00Z", "note": "ok", "reason": "Provisioned", "regarding": {"kind": "Machine", "name": "m1", "namespace": "ns"}, "reportingController": "x.io/c", "reportingInstance": "x-1", "action": "Provision", "type": "Normal"});
        let stored = to_storage(&v1, written).unwrap();
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["message"], "ok");
        assert_eq!(stored["involvedObject"]["name"], "m1");
        assert_eq!(stored["reportingComponent"], "x.io/c");
        assert_eq!(stored["eventTime"], "2026-11-22T10:00:00.000000Z");
        assert_eq!(stored["source"], json!({}));
        assert_eq!(stored["firstTimestamp"], Value::Null);
        assert!(stored.get("note").is_none() && stored.get("count").is_none());
        // As the golden transcript's answer to the same create.
        let back = from_storage(&v1, stored.clone());
        assert_eq!(back["note"], "ok");
        assert_eq!(back["regarding"]["kind"], "Machine");
        assert_eq!(back["deprecatedSource"], json!({}));
        assert_eq!(back["deprecatedFirstTimestamp"], Value::Null);
        assert!(back.get("message").is_none() && back.get("reportingComponent").is_none());
        assert_eq!(from_storage(&core, stored.clone()), stored);
    }

    #[test]
    fn core_events_are_encoded_as_the_typed_object() {
        let (core, _) = resources();
        let stored = to_storage(&core, json!({"metadata": {"name": "e"}, "count": 0, "message": "", "firstTimestamp": "2026-01-02T03:04:05.678Z", "involvedObject": {"kind": "Pod"}})).unwrap();
        assert!(stored.get("count").is_none() && stored.get("message").is_none());
        assert_eq!(stored["firstTimestamp"], "2026-01-02T03:04:05Z");
        assert_eq!(stored["reportingInstance"], "");
        assert_eq!(stored["eventTime"], Value::Null);
        let bad = to_storage(&core, json!({"metadata": {}, "lastTimestamp": "yesterday"}));
        assert_eq!(bad.unwrap_err().code, 400);
    }

    #[test]
    fn strict_checks_apply_to_events_v1_writes_only() {
        let (core, v1) = resources();
        let event = json!({"metadata": {"name": "e", "namespace": "ns"}, "involvedObject": {"namespace": "ns"}, "type": "Bad", "firstTimestamp": "2026-01-01T00:00:00Z"});
        assert!(validate(&core, &event, None).is_empty());
        let causes: Vec<String> = validate(&v1, &event, None)
            .into_iter()
            .map(|c| format!("{}: {}", c.0, c.2))
            .collect();
        assert_eq!(
            causes,
            [
                "eventTime: Required value",
                "type: Invalid value: \"\": has invalid value: Bad",
                "firstTimestamp: Invalid value: \"\": needs to be unset",
            ]
        );
        let mut changed = event.clone();
        changed["reason"] = json!("Other");
        let causes = validate(&v1, &changed, Some(&event));
        assert_eq!(causes.len(), 2, "{causes:?}");
        assert_eq!(causes[0].2, "Invalid value: \"Other\": field is immutable");
    }

    #[test]
    fn an_event_with_an_event_time_names_its_reporter() {
        let (core, _) = resources();
        let event = json!({"metadata": {"name": "e", "namespace": "ns"}, "involvedObject": {"namespace": "ns"}, "eventTime": "2026-01-01T00:00:00.000000Z", "reportingComponent": "bad name!"});
        let fields: Vec<String> = validate(&core, &event, None)
            .into_iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(
            fields,
            [
                "reportingController",
                "reportingInstance",
                "action",
                "reason"
            ]
        );
    }

    #[test]
    fn source_selects_the_component_or_the_reporter() {
        let event = json!({"source": {}, "reportingComponent": "ctrl"});
        assert_eq!(selectable_field(&event, "source").as_deref(), Some("ctrl"));
        let event = json!({"source": {"component": "kubelet"}, "reportingComponent": "ctrl"});
        assert_eq!(
            selectable_field(&event, "source").as_deref(),
            Some("kubelet")
        );
        assert_eq!(selectable_field(&event, "reason"), None);
    }
}
