//! The protobuf messages of the built-in kinds the server serves, as tables: field number, JSON
//! name, type, and whether Go holds the field as a pointer. Numbers are those of upstream
//! `generated.proto` files (checked against the tags of the `k8s-pb` crate's prost types,
//! kube-rs/k8s-pb 0.9). Fields the server has no use for still decode when they are in a table;
//! fields missing from a table are skipped, as unknown fields are by upstream's decoder.
//!
//! Tables list their fields in field-number order, the order Go's generated marshallers write
//! them in (a test checks it).

/// A message: its fields.
#[derive(Debug)]
pub(super) struct Msg {
    pub fields: &'static [Field],
}

impl Msg {
    pub fn field(&self, tag: u64) -> Option<&'static Field> {
        self.fields.iter().find(|f| u64::from(f.tag) == tag)
    }
}

/// One field.
#[derive(Debug)]
pub(super) struct Field {
    pub tag: u32,
    pub json: &'static str,
    pub ty: Ty,
    pub repeated: bool,
    /// A pointer field in Go (`*bool`, `*int32`, `*string`, `*Time`, `*Struct`): written only
    /// when set, and a zero value read is kept. Go's marshallers write every other field, zero
    /// or not; read back, their zero values are dropped, as they are `omitempty` in JSON.
    pub pointer: bool,
}

/// A field's type, as it appears in JSON.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ty {
    Str,
    Bool,
    I32,
    I64,
    /// `metav1.Time`: RFC 3339, seconds.
    Time,
    /// `metav1.MicroTime`: RFC 3339, microseconds.
    MicroTime,
    /// `map[string]string`.
    StrMap,
    /// `map[string][]byte`.
    BytesMap,
    /// `metav1.FieldsV1`: its raw bytes are JSON.
    FieldsV1,
    Msg(&'static Msg),
}

const fn f(tag: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        tag,
        json,
        ty,
        repeated: false,
        pointer: false,
    }
}

/// A repeated field.
const fn many(tag: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        repeated: true,
        ..f(tag, json, ty)
    }
}

/// A pointer field.
const fn ptr(tag: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        pointer: true,
        ..f(tag, json, ty)
    }
}

use Ty::{Bool, BytesMap, FieldsV1, I32, I64, MicroTime, Str, StrMap, Time};

static OWNER_REFERENCE: Msg = Msg {
    fields: &[
        f(1, "kind", Str),
        f(3, "name", Str),
        f(4, "uid", Str),
        f(5, "apiVersion", Str),
        ptr(6, "controller", Bool),
        ptr(7, "blockOwnerDeletion", Bool),
    ],
};

static MANAGED_FIELDS_ENTRY: Msg = Msg {
    fields: &[
        f(1, "manager", Str),
        f(2, "operation", Str),
        f(3, "apiVersion", Str),
        ptr(4, "time", Time),
        f(6, "fieldsType", Str),
        ptr(7, "fieldsV1", FieldsV1),
        f(8, "subresource", Str),
    ],
};

static OBJECT_META: Msg = Msg {
    fields: &[
        f(1, "name", Str),
        f(2, "generateName", Str),
        f(3, "namespace", Str),
        f(4, "selfLink", Str),
        f(5, "uid", Str),
        f(6, "resourceVersion", Str),
        f(7, "generation", I64),
        f(8, "creationTimestamp", Time),
        ptr(9, "deletionTimestamp", Time),
        ptr(10, "deletionGracePeriodSeconds", I64),
        f(11, "labels", StrMap),
        f(12, "annotations", StrMap),
        many(13, "ownerReferences", Ty::Msg(&OWNER_REFERENCE)),
        many(14, "finalizers", Str),
        many(17, "managedFields", Ty::Msg(&MANAGED_FIELDS_ENTRY)),
    ],
};

const METADATA: Field = f(1, "metadata", Ty::Msg(&OBJECT_META));

static LABEL_SELECTOR_REQUIREMENT: Msg = Msg {
    fields: &[
        f(1, "key", Str),
        f(2, "operator", Str),
        many(3, "values", Str),
    ],
};

static LABEL_SELECTOR: Msg = Msg {
    fields: &[
        f(1, "matchLabels", StrMap),
        many(2, "matchExpressions", Ty::Msg(&LABEL_SELECTOR_REQUIREMENT)),
    ],
};

static OBJECT_REFERENCE: Msg = Msg {
    fields: &[
        f(1, "kind", Str),
        f(2, "namespace", Str),
        f(3, "name", Str),
        f(4, "uid", Str),
        f(5, "apiVersion", Str),
        f(6, "resourceVersion", Str),
        f(7, "fieldPath", Str),
    ],
};

static LOCAL_OBJECT_REFERENCE: Msg = Msg {
    fields: &[f(1, "name", Str)],
};

static EVENT_SOURCE: Msg = Msg {
    fields: &[f(1, "component", Str), f(2, "host", Str)],
};

static EVENT_SERIES: Msg = Msg {
    fields: &[f(1, "count", I32), f(2, "lastObservedTime", MicroTime)],
};

static CONFIG_MAP: Msg = Msg {
    fields: &[
        METADATA,
        f(2, "data", StrMap),
        f(3, "binaryData", BytesMap),
        ptr(4, "immutable", Bool),
    ],
};

static SECRET: Msg = Msg {
    fields: &[
        METADATA,
        f(2, "data", BytesMap),
        f(3, "type", Str),
        f(4, "stringData", StrMap),
        ptr(5, "immutable", Bool),
    ],
};

static NAMESPACE_CONDITION: Msg = Msg {
    fields: &[
        f(1, "type", Str),
        f(2, "status", Str),
        f(4, "lastTransitionTime", Time),
        f(5, "reason", Str),
        f(6, "message", Str),
    ],
};

static NAMESPACE: Msg = Msg {
    fields: &[
        METADATA,
        f(
            2,
            "spec",
            Ty::Msg(&Msg {
                fields: &[many(1, "finalizers", Str)],
            }),
        ),
        f(
            3,
            "status",
            Ty::Msg(&Msg {
                fields: &[
                    f(1, "phase", Str),
                    many(2, "conditions", Ty::Msg(&NAMESPACE_CONDITION)),
                ],
            }),
        ),
    ],
};

static SERVICE_ACCOUNT: Msg = Msg {
    fields: &[
        METADATA,
        many(2, "secrets", Ty::Msg(&OBJECT_REFERENCE)),
        many(3, "imagePullSecrets", Ty::Msg(&LOCAL_OBJECT_REFERENCE)),
        ptr(4, "automountServiceAccountToken", Bool),
    ],
};

static CORE_EVENT: Msg = Msg {
    fields: &[
        METADATA,
        f(2, "involvedObject", Ty::Msg(&OBJECT_REFERENCE)),
        f(3, "reason", Str),
        f(4, "message", Str),
        f(5, "source", Ty::Msg(&EVENT_SOURCE)),
        f(6, "firstTimestamp", Time),
        f(7, "lastTimestamp", Time),
        f(8, "count", I32),
        f(9, "type", Str),
        f(10, "eventTime", MicroTime),
        ptr(11, "series", Ty::Msg(&EVENT_SERIES)),
        f(12, "action", Str),
        ptr(13, "related", Ty::Msg(&OBJECT_REFERENCE)),
        f(14, "reportingComponent", Str),
        f(15, "reportingInstance", Str),
    ],
};

static EVENTS_EVENT: Msg = Msg {
    fields: &[
        METADATA,
        f(2, "eventTime", MicroTime),
        ptr(3, "series", Ty::Msg(&EVENT_SERIES)),
        f(4, "reportingController", Str),
        f(5, "reportingInstance", Str),
        f(6, "action", Str),
        f(7, "reason", Str),
        f(8, "regarding", Ty::Msg(&OBJECT_REFERENCE)),
        ptr(9, "related", Ty::Msg(&OBJECT_REFERENCE)),
        f(10, "note", Str),
        f(11, "type", Str),
        f(12, "deprecatedSource", Ty::Msg(&EVENT_SOURCE)),
        f(13, "deprecatedFirstTimestamp", Time),
        f(14, "deprecatedLastTimestamp", Time),
        f(15, "deprecatedCount", I32),
    ],
};

static LEASE: Msg = Msg {
    fields: &[
        METADATA,
        f(
            2,
            "spec",
            Ty::Msg(&Msg {
                fields: &[
                    ptr(1, "holderIdentity", Str),
                    ptr(2, "leaseDurationSeconds", I32),
                    ptr(3, "acquireTime", MicroTime),
                    ptr(4, "renewTime", MicroTime),
                    ptr(5, "leaseTransitions", I32),
                    ptr(6, "strategy", Str),
                    ptr(7, "preferredHolder", Str),
                ],
            }),
        ),
    ],
};

static POLICY_RULE: Msg = Msg {
    fields: &[
        many(1, "verbs", Str),
        many(2, "apiGroups", Str),
        many(3, "resources", Str),
        many(4, "resourceNames", Str),
        many(5, "nonResourceURLs", Str),
    ],
};

static ROLE: Msg = Msg {
    fields: &[METADATA, many(2, "rules", Ty::Msg(&POLICY_RULE))],
};

static CLUSTER_ROLE: Msg = Msg {
    fields: &[
        METADATA,
        many(2, "rules", Ty::Msg(&POLICY_RULE)),
        ptr(
            3,
            "aggregationRule",
            Ty::Msg(&Msg {
                fields: &[many(1, "clusterRoleSelectors", Ty::Msg(&LABEL_SELECTOR))],
            }),
        ),
    ],
};

static SUBJECT: Msg = Msg {
    fields: &[
        f(1, "kind", Str),
        f(2, "apiGroup", Str),
        f(3, "name", Str),
        f(4, "namespace", Str),
    ],
};

static ROLE_REF: Msg = Msg {
    fields: &[f(1, "apiGroup", Str), f(2, "kind", Str), f(3, "name", Str)],
};

static BINDING: Msg = Msg {
    fields: &[
        METADATA,
        many(2, "subjects", Ty::Msg(&SUBJECT)),
        f(3, "roleRef", Ty::Msg(&ROLE_REF)),
    ],
};

static LIST_META: Msg = Msg {
    fields: &[
        f(1, "selfLink", Str),
        f(2, "resourceVersion", Str),
        f(3, "continue", Str),
        ptr(4, "remainingItemCount", I64),
    ],
};

static STATUS_CAUSE: Msg = Msg {
    fields: &[
        f(1, "reason", Str),
        f(2, "message", Str),
        f(3, "field", Str),
    ],
};

static STATUS_DETAILS: Msg = Msg {
    fields: &[
        f(1, "name", Str),
        f(2, "group", Str),
        f(3, "kind", Str),
        many(4, "causes", Ty::Msg(&STATUS_CAUSE)),
        f(5, "retryAfterSeconds", I32),
        f(6, "uid", Str),
    ],
};

/// `meta/v1` `Status`, the body of every error.
pub(super) static STATUS: Msg = Msg {
    fields: &[
        f(1, "metadata", Ty::Msg(&LIST_META)),
        f(2, "status", Str),
        f(3, "message", Str),
        f(4, "reason", Str),
        ptr(5, "details", Ty::Msg(&STATUS_DETAILS)),
        f(6, "code", I32),
    ],
};

/// `<Kind>List` messages: list metadata (1) and the items (2), which carry no `apiVersion` or
/// `kind` of their own on the wire.
macro_rules! lists {
    ($($list:ident = $item:ident),* $(,)?) => {
        $(static $list: Msg = Msg {
            fields: &[
                f(1, "metadata", Ty::Msg(&LIST_META)),
                many(2, "items", Ty::Msg(&$item)),
            ],
        };)*
    };
}

lists!(
    NAMESPACE_LIST = NAMESPACE,
    CONFIG_MAP_LIST = CONFIG_MAP,
    SECRET_LIST = SECRET,
    SERVICE_ACCOUNT_LIST = SERVICE_ACCOUNT,
    CORE_EVENT_LIST = CORE_EVENT,
    EVENTS_EVENT_LIST = EVENTS_EVENT,
    LEASE_LIST = LEASE,
    ROLE_LIST = ROLE,
    CLUSTER_ROLE_LIST = CLUSTER_ROLE,
    BINDING_LIST = BINDING,
);

/// The message of a list kind (`ConfigMapList`), by its `apiVersion` and `kind`.
pub(super) fn list_message(api_version: &str, kind: &str) -> Option<&'static Msg> {
    Some(match (api_version, kind) {
        ("v1", "NamespaceList") => &NAMESPACE_LIST,
        ("v1", "ConfigMapList") => &CONFIG_MAP_LIST,
        ("v1", "SecretList") => &SECRET_LIST,
        ("v1", "ServiceAccountList") => &SERVICE_ACCOUNT_LIST,
        ("v1", "EventList") => &CORE_EVENT_LIST,
        ("events.k8s.io/v1", "EventList") => &EVENTS_EVENT_LIST,
        ("coordination.k8s.io/v1", "LeaseList") => &LEASE_LIST,
        ("rbac.authorization.k8s.io/v1", "RoleList") => &ROLE_LIST,
        ("rbac.authorization.k8s.io/v1", "ClusterRoleList") => &CLUSTER_ROLE_LIST,
        ("rbac.authorization.k8s.io/v1", "RoleBindingList" | "ClusterRoleBindingList") => {
            &BINDING_LIST
        }
        _ => return None,
    })
}

/// The message of a kind, by its `apiVersion` and `kind`.
pub(super) fn message(api_version: &str, kind: &str) -> Option<&'static Msg> {
    Some(match (api_version, kind) {
        ("v1", "Namespace") => &NAMESPACE,
        ("v1", "ConfigMap") => &CONFIG_MAP,
        ("v1", "Secret") => &SECRET,
        ("v1", "ServiceAccount") => &SERVICE_ACCOUNT,
        ("v1", "Event") => &CORE_EVENT,
        ("events.k8s.io/v1", "Event") => &EVENTS_EVENT,
        ("coordination.k8s.io/v1", "Lease") => &LEASE,
        ("rbac.authorization.k8s.io/v1", "Role") => &ROLE,
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => &CLUSTER_ROLE,
        ("rbac.authorization.k8s.io/v1", "RoleBinding" | "ClusterRoleBinding") => &BINDING,
        _ => return None,
    })
}

/// Every kind with a table, as `(apiVersion, kind)`.
#[cfg(test)]
pub(super) const KINDS: &[(&str, &str)] = &[
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "ServiceAccount"),
    ("v1", "Event"),
    ("events.k8s.io/v1", "Event"),
    ("coordination.k8s.io/v1", "Lease"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message reachable from `msg`, once.
    fn walk(msg: &'static Msg, seen: &mut Vec<&'static Msg>) {
        if seen.iter().any(|m| std::ptr::eq(*m, msg)) {
            return;
        }
        seen.push(msg);
        for f in msg.fields {
            if let Ty::Msg(m) = f.ty {
                walk(m, seen);
            }
        }
    }

    #[test]
    fn tables_list_fields_in_field_number_order() {
        let mut seen = Vec::new();
        for (v, k) in KINDS {
            let kind = message(v, k);
            let list = list_message(v, &format!("{k}List"));
            assert!(kind.is_some() && list.is_some(), "{v} {k}");
            walk(kind.unwrap_or(&STATUS), &mut seen);
            walk(list.unwrap_or(&STATUS), &mut seen);
        }
        walk(&STATUS, &mut seen);
        assert!(seen.len() > 30, "{}", seen.len());
        for m in seen {
            let tags: Vec<u32> = m.fields.iter().map(|f| f.tag).collect();
            assert!(tags.windows(2).all(|w| w[0] < w[1]), "{tags:?}");
        }
    }
}
