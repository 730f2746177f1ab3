//! Fault injection by rule: for requests matching a verb, a resource, a namespace, a name or a
//! path fragment, answer an error (Conflict, 500, 429 with Retry-After), add latency, cut watch
//! streams mid-flight or expire the watch history they resume from; a number of times or forever.
//!
//! ```
//! use std::time::Duration;
//! use capi_testkit::server::faults::{Cut, Fault, FaultRule};
//! // The next two patches of a devmachine conflict.
//! let rule = FaultRule::new(Fault::Status(409)).verb("PATCH").resource("devmachines").times(2);
//! assert_eq!(rule.remaining, Some(2));
//! // Every watch of configmaps in `ns1` drops its connection after three events.
//! let rule = FaultRule::new(Fault::CutWatch(Cut::AfterEvents(3))).resource("configmaps").namespace("ns1");
//! // The next watch resuming from a resourceVersion gets 410 Expired, and its client relists.
//! let rule = FaultRule::new(Fault::ExpireWatch).times(1);
//! # let _ = (rule, Duration::ZERO);
//! ```
//!
//! Rules are checked in the order they were added; the first one that matches a request and
//! applies to it (an [`Fault::ExpireWatch`] only applies to resumed watches, a
//! [`Fault::CutWatch`] only to watches) is used and counted. Watches already open are cut with
//! [`Faults::cut_watches`]; restarts are [`crate::env::TestEnv::restart`]. Rules can also come
//! from a file ([`parse_rules`], the binary's `--faults`).

mod cut;
mod file;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::errors::ApiError;

pub use file::{FaultFileError, parse_rules};

/// What a matching request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// An error Status with this code (409 Conflict, 429 TooManyRequests, 500, 503...).
    Status(u16),
    /// The request is served after this delay.
    Latency(Duration),
    /// A matching watch is opened as usual, then its connection is dropped mid-stream, with no
    /// end of stream (as when an apiserver or a load balancer goes away). With
    /// [`FaultRule::times`] it hits that many watches, else every matching watch, reconnects
    /// included.
    CutWatch(Cut),
    /// A matching watch that resumes from a resourceVersion (one set and not `0`, not a streaming
    /// list) gets `200` and one `ERROR` event with a `410 Expired` Status, as upstream after etcd
    /// compaction: the client relists. Use [`FaultRule::times`]; a rule hitting forever keeps its
    /// watchers relisting. To expire every resource's history at once, see
    /// [`crate::server::store::Store::compact`].
    ExpireWatch,
}

/// When a [`Fault::CutWatch`] drops a watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// After this many events (`ADDED`, `MODIFIED`, `DELETED`, `ERROR`; bookmarks do not count).
    /// `0`: right after the response headers.
    AfterEvents(u32),
    /// This long after the watch opened.
    After(Duration),
}

/// One rule: what it matches and what matching requests get.
#[derive(Debug, Clone)]
pub struct FaultRule {
    /// Only this verb (`None`: any): an HTTP method (`GET`, `POST`, `PUT`, `PATCH`, `DELETE`) or
    /// a Kubernetes verb (`GET`, `LIST`, `WATCH`, `CREATE`, `UPDATE`, `PATCH`, `DELETE`,
    /// `DELETECOLLECTION`), upper case.
    pub verb: Option<String>,
    /// Only this resource (plural, e.g. `configmaps`; it covers its subresources) or subresource
    /// (`devmachines/status`). `None`: any.
    pub resource: Option<String>,
    /// Only requests in this namespace (`None`: any).
    pub namespace: Option<String>,
    /// Only requests for the object of this name, by URL or by a `metadata.name=` field selector
    /// (`None`: any).
    pub name: Option<String>,
    /// Only paths containing this (`None`: any).
    pub path_contains: Option<String>,
    /// The fault.
    pub fault: Fault,
    /// How many more requests it hits (`None`: forever).
    pub remaining: Option<u32>,
}

impl FaultRule {
    /// A rule hitting every request, forever.
    pub fn new(fault: Fault) -> Self {
        Self {
            verb: None,
            resource: None,
            namespace: None,
            name: None,
            path_contains: None,
            fault,
            remaining: None,
        }
    }

    /// Only this verb: an HTTP method or a Kubernetes verb (`watch`, `list`, `create`...), any case.
    #[must_use]
    pub fn verb(mut self, verb: &str) -> Self {
        self.verb = Some(verb.to_uppercase());
        self
    }

    /// Only this resource (`configmaps`, which covers `configmaps/...` subresources) or
    /// subresource (`devmachines/status`).
    #[must_use]
    pub fn resource(mut self, resource: &str) -> Self {
        self.resource = Some(resource.to_owned());
        self
    }

    /// Only requests in this namespace.
    #[must_use]
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self
    }

    /// Only requests for the object named `name`.
    #[must_use]
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Only paths containing `fragment` (e.g. `/namespaces/ns1/devmachines/`).
    #[must_use]
    pub fn path_contains(mut self, fragment: &str) -> Self {
        self.path_contains = Some(fragment.to_owned());
        self
    }

    /// Only the next `n` matching requests.
    #[must_use]
    pub fn times(mut self, n: u32) -> Self {
        self.remaining = Some(n);
        self
    }

    fn matches(&self, req: &RequestInfo<'_>) -> bool {
        self.remaining != Some(0)
            && self
                .verb
                .as_deref()
                .is_none_or(|v| v == req.method.as_str() || v == req.verb)
            && self
                .resource
                .as_deref()
                .is_none_or(|r| match r.split_once('/') {
                    Some((plural, sub)) => {
                        plural == req.resource && req.subresource.is_some_and(|s| s == sub)
                    }
                    None => r == req.resource,
                })
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| req.namespace == Some(ns))
            && self.name.as_deref().is_none_or(|n| req.name == Some(n))
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| req.path.contains(p))
    }
}

/// What a rule sees of a request, from its method, path and query.
#[derive(Debug, Clone)]
pub(crate) struct RequestInfo<'a> {
    method: &'a Method,
    path: &'a str,
    /// The Kubernetes verb, upper case (`LIST`, `WATCH`...); empty for non-resource paths.
    verb: &'static str,
    resource: &'a str,
    subresource: Option<&'a str>,
    namespace: Option<&'a str>,
    name: Option<&'a str>,
    /// `resourceVersion` of a watch that resumes from one.
    resume_rv: Option<&'a str>,
}

impl<'a> RequestInfo<'a> {
    pub(crate) fn parse(
        method: &'a Method,
        path: &'a str,
        params: &'a HashMap<String, String>,
    ) -> Self {
        let mut info = Self {
            method,
            path,
            verb: "",
            resource: "",
            subresource: None,
            namespace: None,
            name: None,
            resume_rv: None,
        };
        let segs: Vec<&'a str> = path.trim_matches('/').split('/').collect();
        let rest: &[&'a str] = match segs.as_slice() {
            ["api", _, rest @ ..] => rest,
            ["apis", _, _, rest @ ..] => rest,
            _ => return info,
        };
        let rest = match rest {
            ["namespaces", ns, r, more @ ..] if !matches!(*r, "status" | "finalize") => {
                info.namespace = Some(*ns);
                let mut v = vec![*r];
                v.extend_from_slice(more);
                v
            }
            other => other.to_vec(),
        };
        match rest.as_slice() {
            [r] => info.resource = r,
            [r, n] => (info.resource, info.name) = (r, Some(*n)),
            [r, n, s] => (info.resource, info.name, info.subresource) = (r, Some(*n), Some(*s)),
            _ => return info,
        }
        let watch = matches!(params.get("watch").map(String::as_str), Some("true" | "1"));
        info.verb = match (method.as_str(), info.name.is_some()) {
            ("GET", true) => "GET",
            ("GET", false) if watch => "WATCH",
            ("GET", false) => "LIST",
            ("POST", _) => "CREATE",
            ("PUT", _) => "UPDATE",
            ("PATCH", _) => "PATCH",
            ("DELETE", true) => "DELETE",
            ("DELETE", false) => "DELETECOLLECTION",
            _ => "",
        };
        if info.name.is_none() {
            info.name = params.get("fieldSelector").and_then(|s| {
                s.split(',').find_map(|t| {
                    t.strip_prefix("metadata.name==")
                        .or_else(|| t.strip_prefix("metadata.name="))
                })
            });
        }
        if info.verb == "WATCH" {
            info.resume_rv = params
                .get("resourceVersion")
                .map(String::as_str)
                .filter(|rv| !rv.is_empty() && *rv != "0")
                .filter(|_| params.get("sendInitialEvents").is_none_or(|v| v != "true"));
        }
        info
    }
}

/// The active rules, and the watches open right now.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
    injected: AtomicU64,
    watches: cut::OpenWatches,
}

impl Faults {
    /// Adds a rule (after the existing ones).
    pub fn add(&self, rule: FaultRule) {
        self.rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(rule);
    }

    /// How many times a rule has answered, delayed, cut or expired a request so far, plus the
    /// watches cut by [`Faults::cut_watches`].
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    /// Removes every rule (open watches stay open).
    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Drops the connection of every open watch of `resource` (plural; `None`: every watch) now,
    /// mid-stream. Returns how many were cut.
    pub fn cut_watches(&self, resource: Option<&str>) -> usize {
        let n = self.watches.cut(resource);
        self.injected.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// How many watches of `resource` (plural; `None`: any) are open right now.
    pub fn open_watches(&self, resource: Option<&str>) -> usize {
        self.watches.count(resource)
    }

    /// Takes the first rule that matches `req` and whose fault `applies`.
    fn take(&self, req: &RequestInfo<'_>, applies: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        let i = rules
            .iter()
            .position(|r| applies(&r.fault) && r.matches(req))?;
        let fault = rules[i].fault.clone();
        if let Some(n) = rules[i].remaining.as_mut() {
            *n = n.saturating_sub(1);
        }
        rules.retain(|r| r.remaining != Some(0));
        self.injected.fetch_add(1, Ordering::Relaxed);
        Some(fault)
    }

    /// The response a request gets instead of being served, if a rule says so.
    pub(crate) async fn intercept(&self, req: &RequestInfo<'_>) -> Option<Response> {
        let fault = self.take(req, |f| match f {
            Fault::Status(_) | Fault::Latency(_) => true,
            Fault::ExpireWatch => req.resume_rv.is_some(),
            Fault::CutWatch(_) => false,
        })?;
        match fault {
            Fault::Latency(d) => {
                tokio::time::sleep(d).await;
                None
            }
            Fault::Status(code) => Some(status_response(code)),
            Fault::ExpireWatch => {
                let rv = req.resume_rv.unwrap_or_default();
                tracing::debug!(path = req.path, rv, "injected: watch history expired");
                let status = ApiError::expired(format!(
                    "too old resource version: {rv} (injected compaction)"
                ))
                .status();
                let mut line = json!({"type": "ERROR", "object": status}).to_string();
                line.push('\n');
                Some(
                    (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, "application/json")],
                        line,
                    )
                        .into_response(),
                )
            }
            Fault::CutWatch(_) => None,
        }
    }

    /// A served response, as the client gets it: an open watch is registered (so that
    /// [`Faults::cut_watches`] and restarts can drop it) and cut if a rule says so.
    pub(crate) fn tap(&self, req: &RequestInfo<'_>, resp: Response) -> Response {
        if req.verb != "WATCH" || resp.status() != StatusCode::OK {
            return resp;
        }
        let plan = match self.take(req, |f| matches!(f, Fault::CutWatch(_))) {
            Some(Fault::CutWatch(c)) => Some(c),
            _ => None,
        };
        self.watches.wrap(req.resource, plan, resp)
    }
}

/// The Status answer of an injected error.
fn status_response(code: u16) -> Response {
    let (reason, message) = match code {
        409 => (
            "Conflict",
            "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again (injected)",
        ),
        429 => (
            "TooManyRequests",
            "Too many requests, please try again later (injected)",
        ),
        503 => (
            "ServiceUnavailable",
            "the server is currently unable to handle the request (injected)",
        ),
        _ => ("InternalError", "Internal error occurred: injected fault"),
    };
    let mut resp = ApiError {
        code,
        reason,
        message: message.into(),
        details: None,
    }
    .into_response();
    if code == 429 {
        resp.headers_mut()
            .insert("Retry-After", HeaderValue::from_static("1"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info<'a>(
        method: &'a Method,
        path: &'a str,
        params: &'a HashMap<String, String>,
    ) -> RequestInfo<'a> {
        RequestInfo::parse(method, path, params)
    }

    #[test]
    fn requests_are_parsed_into_verb_resource_namespace_and_name() {
        let none = HashMap::new();
        let watch: HashMap<String, String> = [
            ("watch".to_owned(), "true".to_owned()),
            ("resourceVersion".to_owned(), "12".to_owned()),
            ("fieldSelector".to_owned(), "metadata.name=x".to_owned()),
        ]
        .into();
        let get = Method::GET;
        let r = info(&get, "/api/v1/namespaces/a/configmaps", &watch);
        assert_eq!(
            (r.verb, r.resource, r.namespace, r.name, r.resume_rv),
            ("WATCH", "configmaps", Some("a"), Some("x"), Some("12"))
        );
        let patch = Method::PATCH;
        let r = info(
            &patch,
            "/apis/infrastructure.cluster.x-k8s.io/v1beta2/namespaces/a/devmachines/m/status",
            &none,
        );
        assert_eq!(
            (r.verb, r.resource, r.subresource, r.name),
            ("PATCH", "devmachines", Some("status"), Some("m"))
        );
        let r = info(&get, "/api/v1/namespaces/a", &none);
        assert_eq!(
            (r.verb, r.resource, r.namespace, r.name),
            ("GET", "namespaces", None, Some("a"))
        );
        let r = info(&get, "/healthz", &none);
        assert_eq!(r.verb, "");
    }

    #[test]
    fn rules_match_on_every_given_criterion() {
        let none = HashMap::new();
        let post = Method::POST;
        let create_a = info(&post, "/api/v1/namespaces/a/configmaps", &none);
        let rule = FaultRule::new(Fault::Status(500))
            .verb("create")
            .resource("configmaps")
            .namespace("a");
        assert!(rule.matches(&create_a));
        assert!(!rule.clone().namespace("b").matches(&create_a));
        assert!(!rule.clone().resource("secrets").matches(&create_a));
        assert!(!rule.clone().verb("PUT").matches(&create_a));
        assert!(rule.clone().verb("POST").matches(&create_a));
        let put = Method::PUT;
        let status = info(&put, "/apis/g/v1/namespaces/a/devmachines/m/status", &none);
        assert!(
            FaultRule::new(Fault::Status(409))
                .resource("devmachines")
                .matches(&status)
        );
        assert!(
            FaultRule::new(Fault::Status(409))
                .resource("devmachines/status")
                .matches(&status)
        );
        let main = info(&put, "/apis/g/v1/namespaces/a/devmachines/m", &none);
        assert!(
            !FaultRule::new(Fault::Status(409))
                .resource("devmachines/status")
                .matches(&main)
        );
    }

    #[test]
    fn expiry_applies_only_to_resumed_watches() {
        let faults = Faults::default();
        faults.add(FaultRule::new(Fault::ExpireWatch).times(1));
        let get = Method::GET;
        let fresh: HashMap<String, String> = [("watch".to_owned(), "true".to_owned())].into();
        let r = info(&get, "/api/v1/configmaps", &fresh);
        assert!(
            faults
                .take(&r, |f| matches!(f, Fault::ExpireWatch)
                    && r.resume_rv.is_some())
                .is_none()
        );
        let mut resumed = fresh.clone();
        resumed.insert("resourceVersion".into(), "5".into());
        let r = info(&get, "/api/v1/configmaps", &resumed);
        assert!(r.resume_rv.is_some());
        assert_eq!(
            faults.take(&r, |f| matches!(f, Fault::ExpireWatch)),
            Some(Fault::ExpireWatch)
        );
        assert_eq!(faults.take(&r, |_| true), None, "used up");
    }
}
