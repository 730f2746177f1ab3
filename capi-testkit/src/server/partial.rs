//! Objects as `PartialObjectMetadata`: only their metadata, which client-go's metadata client
//! and kube-rs's `get_metadata` / `list_metadata` / `watch_metadata` (so `metadata_watcher`)
//! ask for with `Accept: application/json;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1`.
//!
//! As kube-apiserver's `transformResponseObject` does it: a single object becomes
//! `{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{...}}`, a list a
//! `PartialObjectMetadataList` of those (its `items` `null` when empty, as Go encodes a nil
//! slice), each watch event's object the same (Status objects of ERROR events stay Status),
//! and asking for the list form of one object, or the single form of a list, is a 406.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::errors::ApiError;
use super::watch_map::MappedEvents;

/// What the client asked its objects converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Partial {
    /// `PartialObjectMetadataList` rather than `PartialObjectMetadata`.
    pub list: bool,
    /// `meta.k8s.io/v1` or `meta.k8s.io/v1beta1`.
    pub api_version: &'static str,
    /// The objects are custom resources (unstructured, as the 406 names them).
    pub custom: bool,
}

impl Partial {
    /// The conversion an `Accept` clause's `as` and `v` ask for, if it is this one.
    pub(crate) fn of(kind: &str, version: &str) -> Option<Self> {
        let list = match kind {
            "PartialObjectMetadata" => false,
            "PartialObjectMetadataList" => true,
            _ => return None,
        };
        let api_version = match version {
            "v1" => "meta.k8s.io/v1",
            "v1beta1" => "meta.k8s.io/v1beta1",
            _ => return None,
        };
        Some(Self {
            list,
            api_version,
            custom: false,
        })
    }

    /// One object's metadata as a `PartialObjectMetadata`.
    fn object(&self, obj: &Value) -> Value {
        json!({"kind": "PartialObjectMetadata", "apiVersion": self.api_version, "metadata": obj["metadata"]})
    }

    /// A handler's answer converted: a Status as it is, a list or an object as asked, or the
    /// 406 for the wrong one of the two.
    pub(crate) fn convert(&self, body: Value) -> Result<Value, ApiError> {
        if body["kind"] == "Status" {
            return Ok(body);
        }
        let is_list = body.get("items").is_some_and(Value::is_array)
            && body["kind"].as_str().is_some_and(|k| k.ends_with("List"));
        match (is_list, self.list) {
            (true, true) => {
                let items: Vec<Value> = body["items"]
                    .as_array()
                    .map(|items| items.iter().map(|o| self.object(o)).collect())
                    .unwrap_or_default();
                let items = if items.is_empty() {
                    Value::Null
                } else {
                    Value::Array(items)
                };
                Ok(json!({
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": self.api_version,
                    "metadata": body["metadata"],
                    "items": items,
                }))
            }
            (false, false) => Ok(self.object(&body)),
            (true, false) => Err(not_acceptable(format!(
                "you requested PartialObjectMetadata, but the requested object is a list ({})",
                go_type(&body, self.custom)
            ))),
            (false, true) => Err(not_acceptable(format!(
                "you requested PartialObjectMetadataList, but the requested object is not a list ({})",
                go_type(&body, self.custom)
            ))),
        }
    }

    /// A successful answer converted (a watch's events one by one).
    pub(crate) async fn answer(&self, resp: Response, watch: bool) -> Response {
        let (parts, body) = resp.into_parts();
        if watch {
            let partial = *self;
            let events = MappedEvents::new(body, move |mut event: Value| {
                if event["object"]["kind"] != "Status" {
                    event["object"] = partial.object(&event["object"]);
                }
                event
            });
            return Response::from_parts(parts, Body::new(events));
        }
        let bytes = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(b) => b,
            Err(e) => {
                return ApiError::internal(format!("reading the answer: {e}")).into_response();
            }
        };
        let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
            return Response::from_parts(parts, Body::from(bytes));
        };
        match self.convert(value) {
            Ok(v) => {
                let mut resp = Response::from_parts(parts, Body::from(v.to_string()));
                resp.headers_mut()
                    .remove(axum::http::header::CONTENT_LENGTH);
                resp
            }
            Err(e) => e.into_response(),
        }
    }
}

/// The Go type kube-apiserver names in its 406: custom resources are unstructured, built-in
/// kinds their internal type (events.k8s.io's Events are core's).
fn go_type(body: &Value, custom: bool) -> String {
    let kind = body["kind"].as_str().unwrap_or_default();
    if custom {
        let list = if kind.ends_with("List") { "List" } else { "" };
        return format!("*unstructured.Unstructured{list}");
    }
    let api_version = body["apiVersion"].as_str().unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let package = match group.split('.').next() {
        None | Some("" | "events") => "core",
        Some(g) => g,
    };
    format!("*{package}.{kind}")
}

fn not_acceptable(message: String) -> ApiError {
    ApiError {
        code: 406,
        reason: "NotAcceptable",
        message,
        details: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: Partial = Partial {
        list: false,
        api_version: "meta.k8s.io/v1",
        custom: false,
    };

    #[test]
    fn objects_lists_and_mismatches_convert_as_upstream() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "5"}, "data": {"k": "v"}});
        assert_eq!(
            V1.convert(cm.clone()).unwrap(),
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {"name": "a", "resourceVersion": "5"}})
        );
        let list = json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": "9"}, "items": [cm]});
        let as_list = Partial { list: true, ..V1 };
        let converted = as_list.convert(list.clone()).unwrap();
        assert_eq!(converted["kind"], "PartialObjectMetadataList");
        assert_eq!(converted["metadata"]["resourceVersion"], "9");
        assert_eq!(converted["items"][0]["kind"], "PartialObjectMetadata");
        assert_eq!(converted["items"][0]["metadata"]["name"], "a");
        let empty = json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": "9"}, "items": []});
        assert_eq!(as_list.convert(empty).unwrap()["items"], Value::Null);
        assert_eq!(
            V1.convert(list).unwrap_err().message,
            "you requested PartialObjectMetadata, but the requested object is a list (*core.ConfigMapList)"
        );
        let widget =
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
        let custom = Partial {
            custom: true,
            ..as_list
        };
        let err = custom.convert(widget).unwrap_err();
        assert_eq!((err.code, err.reason), (406, "NotAcceptable"));
        assert_eq!(
            err.message,
            "you requested PartialObjectMetadataList, but the requested object is not a list (*unstructured.Unstructured)"
        );
        let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Success"});
        assert_eq!(V1.convert(status.clone()).unwrap(), status);
    }
}
