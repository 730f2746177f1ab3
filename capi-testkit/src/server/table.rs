//! `Table` output for `kubectl get`, as kube-apiserver builds it: custom resources from their
//! CRD's printer columns (Age when there are none), the built-in kinds this server serves from
//! the printers kube-apiserver has for them (`pkg/printers/internalversion`: ConfigMap DATA,
//! Secret TYPE and DATA, Namespace STATUS, Lease HOLDER, bindings ROLE and subjects, events),
//! and kinds without one (Role, ClusterRole, CRDs) as its default table convertor: Name and
//! Created At. The server fills every column, priority-1 ones too (its printers run `Wide`).

use serde_json::{Value, json};

use super::handlers::Target;

/// `ObjectMeta`'s documentation of `name` and `creationTimestamp`, as the column descriptions.
const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATED_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// apimachinery's `duration.HumanDuration` of the time since `ts` (`<unknown>` without one).
fn age(ts: Option<&str>) -> String {
    let Some(ts) = ts.and_then(|c| c.parse::<k8s_openapi::jiff::Timestamp>().ok()) else {
        return "<unknown>".into();
    };
    human_duration(k8s_openapi::jiff::Timestamp::now().as_second() - ts.as_second())
}

/// `duration.HumanDuration` of `seconds`.
fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return match (hours / 24) % 365 {
            0 => format!("{}y", hours / 24 / 365),
            d => format!("{}y{d}d", hours / 24 / 365),
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn cell(obj: &Value, path: &str, type_: &str) -> Value {
    let v = path
        .trim_start_matches('.')
        .split('.')
        .try_fold(obj, |v, k| v.get(k))
        .cloned()
        .unwrap_or(Value::Null);
    match (type_, &v) {
        ("date", Value::String(s)) => json!(age(Some(s))),
        _ => v,
    }
}

/// A column: name, type, priority, description.
type Column = (&'static str, &'static str, i64, &'static str);

/// A built-in printer: its columns after Name (or, for events, all of them) and its cells.
struct Printer {
    /// Whether the first column is Name (every printer's but the events').
    named: bool,
    columns: &'static [Column],
    cells: fn(&Value) -> Vec<Value>,
}

fn count(v: &Value) -> usize {
    v.as_object()
        .map(serde_json::Map::len)
        .or_else(|| v.as_array().map(Vec::len))
        .unwrap_or(0)
}

fn created(o: &Value) -> Option<&str> {
    o["metadata"]["creationTimestamp"].as_str()
}

fn text(v: &Value) -> Value {
    json!(v.as_str().unwrap_or_default())
}

/// `rbac.SubjectsStrings`: users, groups and service accounts (`ns/name`), each `, `-joined.
fn subjects(o: &Value) -> [Value; 3] {
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for s in o["subjects"].as_array().into_iter().flatten() {
        let name = s["name"].as_str().unwrap_or_default();
        match s["kind"].as_str() {
            Some("User") => users.push(name.to_owned()),
            Some("Group") => groups.push(name.to_owned()),
            Some("ServiceAccount") => sas.push(format!(
                "{}/{name}",
                s["namespace"].as_str().unwrap_or_default()
            )),
            _ => {}
        }
    }
    [users, groups, sas].map(|l| json!(l.join(", ")))
}

fn binding_cells(o: &Value) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        o["roleRef"]["kind"].as_str().unwrap_or_default(),
        o["roleRef"]["name"].as_str().unwrap_or_default()
    );
    let [users, groups, sas] = subjects(o);
    vec![json!(role), json!(age(created(o))), users, groups, sas]
}

const BINDING_COLUMNS: &[Column] = &[
    (
        "Role",
        "string",
        0,
        "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.",
    ),
    ("Age", "string", 0, CREATED_DOC),
    ("Users", "string", 1, "Users in the roleBinding"),
    ("Groups", "string", 1, "Groups in the roleBinding"),
    (
        "ServiceAccounts",
        "string",
        1,
        "ServiceAccounts in the roleBinding",
    ),
];

/// `printEvent` for core/v1 Events and events.k8s.io/v1 ones (the same internal type upstream).
fn event_cells(o: &Value) -> Vec<Value> {
    let core = o["apiVersion"] == "v1";
    let field = |core_name: &str, events_name: &str| {
        if core {
            o[core_name].clone()
        } else {
            o[events_name].clone()
        }
    };
    let event_time = o["eventTime"].as_str();
    let first = match field("firstTimestamp", "deprecatedFirstTimestamp").as_str() {
        Some(t) => age(Some(t)),
        None => age(event_time),
    };
    let mut last = match field("lastTimestamp", "deprecatedLastTimestamp").as_str() {
        Some(t) => age(Some(t)),
        None => first.clone(),
    };
    let mut count = field("count", "deprecatedCount").as_i64().unwrap_or(0);
    if o["series"].is_object() {
        last = age(o["series"]["lastObservedTime"].as_str());
        count = o["series"]["count"].as_i64().unwrap_or(0);
    } else if count == 0 {
        count = 1;
    }
    let regarding = field("involvedObject", "regarding");
    let kind = regarding["kind"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    let target = match regarding["name"].as_str() {
        Some(n) if !n.is_empty() => format!("{kind}/{n}"),
        _ => kind,
    };
    let source = field("source", "deprecatedSource");
    let first_non_empty = |a: &Value, b: &Value| {
        a.as_str()
            .filter(|s| !s.is_empty())
            .or_else(|| b.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let component = first_non_empty(
        &source["component"],
        &field("reportingComponent", "reportingController"),
    );
    let instance = first_non_empty(&source["host"], &o["reportingInstance"]);
    let source = if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    };
    let message = field("message", "note");
    vec![
        json!(last),
        text(&o["type"]),
        text(&o["reason"]),
        json!(target),
        text(&regarding["fieldPath"]),
        json!(source),
        json!(message.as_str().unwrap_or_default().trim()),
        json!(first),
        json!(count),
        o["metadata"]["name"].clone(),
    ]
}

const EVENT_COLUMNS: &[Column] = &[
    (
        "Last Seen",
        "string",
        0,
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    (
        "Type",
        "string",
        0,
        "Type of this event (Normal, Warning), new types could be added in the future",
    ),
    (
        "Reason",
        "string",
        0,
        "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    (
        "Object",
        "string",
        0,
        "The object that this event is about.",
    ),
    (
        "Subobject",
        "string",
        1,
        "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.",
    ),
    (
        "Source",
        "string",
        1,
        "The component reporting this event. Should be a short machine understandable string.",
    ),
    (
        "Message",
        "string",
        0,
        "A human-readable description of the status of this operation.",
    ),
    (
        "First Seen",
        "string",
        1,
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
    ),
    (
        "Count",
        "string",
        1,
        "The number of times this event has occurred.",
    ),
    ("Name", "string", 1, NAME_DOC),
];

/// The printer kube-apiserver has for a built-in kind, if any.
fn printer(group: &str, plural: &str) -> Option<Printer> {
    let p = |columns, cells| Printer {
        named: true,
        columns,
        cells,
    };
    Some(match (group, plural) {
        ("", "configmaps") => p(
            &[
                (
                    "Data",
                    "string",
                    0,
                    "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.",
                ),
                ("Age", "string", 0, CREATED_DOC),
            ],
            |o| {
                vec![
                    json!(count(&o["data"]) + count(&o["binaryData"])),
                    json!(age(created(o))),
                ]
            },
        ),
        ("", "secrets") => p(
            &[
                (
                    "Type",
                    "string",
                    0,
                    "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
                ),
                (
                    "Data",
                    "string",
                    0,
                    "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4",
                ),
                ("Age", "string", 0, CREATED_DOC),
            ],
            |o| {
                vec![
                    text(&o["type"]),
                    json!(count(&o["data"])),
                    json!(age(created(o))),
                ]
            },
        ),
        ("", "namespaces") => p(
            &[
                ("Status", "string", 0, "The status of the namespace"),
                ("Age", "string", 0, CREATED_DOC),
            ],
            |o| vec![text(&o["status"]["phase"]), json!(age(created(o)))],
        ),
        ("", "serviceaccounts") => p(
            &[
                (
                    "Secrets",
                    "string",
                    0,
                    "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret",
                ),
                ("Age", "string", 0, CREATED_DOC),
            ],
            |o| vec![json!(count(&o["secrets"])), json!(age(created(o)))],
        ),
        ("coordination.k8s.io", "leases") => p(
            &[
                (
                    "Holder",
                    "string",
                    0,
                    "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.",
                ),
                ("Age", "string", 0, CREATED_DOC),
            ],
            |o| vec![text(&o["spec"]["holderIdentity"]), json!(age(created(o)))],
        ),
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
            p(BINDING_COLUMNS, binding_cells)
        }
        ("" | "events.k8s.io", "events") => Printer {
            named: false,
            columns: EVENT_COLUMNS,
            cells: event_cells,
        },
        _ => return None,
    })
}

/// The PartialObjectMetadata a row carries (`includeObject=Metadata`, the default).
fn row(cells: Vec<Value>, o: &Value) -> Value {
    json!({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}})
}

fn definition(name: &str, type_: &str, format: &str, priority: i64, description: &str) -> Value {
    json!({"name": name, "type": type_, "format": format, "description": description, "priority": priority})
}

/// Column definitions and rows for `items` (already in the requested version).
fn columns_and_rows(target: &Target, items: &[Value]) -> (Vec<Value>, Vec<Value>) {
    let name = definition("Name", "string", "name", 0, NAME_DOC);
    if target.res.builtin {
        if let Some(p) = printer(&target.res.group, &target.res.plural) {
            let mut defs = if p.named { vec![name] } else { Vec::new() };
            defs.extend(
                p.columns
                    .iter()
                    .map(|(n, t, prio, d)| definition(n, t, "", *prio, d)),
            );
            let rows = items
                .iter()
                .map(|o| {
                    let mut cells = if p.named {
                        vec![o["metadata"]["name"].clone()]
                    } else {
                        Vec::new()
                    };
                    cells.extend((p.cells)(o));
                    row(cells, o)
                })
                .collect();
            return (defs, rows);
        }
        // The default table convertor: the creation time itself.
        let defs = vec![name, definition("Created At", "date", "", 0, CREATED_DOC)];
        let rows = items
            .iter()
            .map(|o| row(vec![o["metadata"]["name"].clone(), json!(created(o))], o))
            .collect();
        return (defs, rows);
    }
    let columns = target
        .res
        .version(&target.version)
        .map(|v| v.columns.clone())
        .unwrap_or_default();
    let mut defs = vec![name];
    if columns.is_empty() {
        defs.push(definition("Age", "date", "", 0, CREATED_DOC));
    }
    for c in &columns {
        defs.push(definition(
            &c.name,
            &c.type_,
            "",
            c.priority,
            &c.description,
        ));
    }
    let rows = items
        .iter()
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            if columns.is_empty() {
                cells.push(json!(age(created(o))));
            }
            cells.extend(columns.iter().map(|c| cell(o, &c.json_path, &c.type_)));
            row(cells, o)
        })
        .collect();
    (defs, rows)
}

/// A Table of `items` (already in the requested version).
pub(crate) fn table(
    target: &Target,
    items: &[Value],
    continue_token: Option<&str>,
    rv: u64,
) -> Value {
    let (defs, rows) = columns_and_rows(target, items);
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if let Some(token) = continue_token.filter(|t| !t.is_empty()) {
        metadata["continue"] = json!(token);
    }
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
        "columnDefinitions": defs, "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_kubectl_prints_them() {
        for (secs, want) in [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (125, "2m5s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60, "3h1m"),
            (30 * 3600, "30h"),
            (49 * 3600, "2d1h"),
            (10 * 86400, "10d"),
            (800 * 86400, "2y70d"),
            (9 * 365 * 86400, "9y"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs} s");
        }
    }

    #[test]
    fn events_print_their_object_source_and_count() {
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"}, "type": "Normal", "reason": "Provisioned", "message": " done \n", "involvedObject": {"kind": "Machine", "name": "m1"}, "source": {"component": "capi"}, "count": 3});
        let cells = event_cells(&core);
        assert_eq!(
            cells[1..7],
            [
                json!("Normal"),
                json!("Provisioned"),
                json!("machine/m1"),
                json!(""),
                json!("capi"),
                json!("done")
            ]
        );
        assert_eq!(cells[8], json!(3));
        let new = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e2"}, "type": "Warning", "reason": "Failed", "note": "no", "regarding": {"kind": "Machine", "name": "m2"}, "reportingController": "ctrl", "reportingInstance": "pod-1", "series": {"count": 7, "lastObservedTime": "2026-01-01T00:00:00.000000Z"}});
        let cells = event_cells(&new);
        assert_eq!(cells[3], json!("machine/m2"));
        assert_eq!(cells[5], json!("ctrl, pod-1"));
        assert_eq!(cells[6], json!("no"));
        assert_eq!(cells[8], json!(7));
        assert_eq!(cells[9], json!("e2"));
    }

    #[test]
    fn bindings_list_their_subjects() {
        let b = json!({"metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"}, {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}, {"kind": "User", "name": "bob"}]});
        let cells = binding_cells(&b);
        assert_eq!(cells[0], "ClusterRole/view");
        assert_eq!(
            cells[2..],
            [json!("alice, bob"), json!("devs"), json!("ns/sa")]
        );
    }
}
