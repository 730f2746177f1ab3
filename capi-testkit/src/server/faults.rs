//! Fault injection by rule: for requests matching a verb and a path fragment, answer an error
//! (Conflict, 500, 429 with Retry-After) or add latency, a number of times or forever.
//!
//! ```
//! use capi_testkit::server::faults::{Fault, FaultRule};
//! let rule = FaultRule::new(Fault::Status(409)).verb("PATCH").path_contains("/devmachines/").times(2);
//! assert_eq!(rule.remaining, Some(2));
//! ```

use std::sync::Mutex;
use std::time::Duration;

use axum::http::Method;
use axum::response::{IntoResponse, Response};

use super::errors::ApiError;

/// What a matching request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// An error Status with this code (409 Conflict, 429 TooManyRequests, 500, 503...).
    Status(u16),
    /// The request is served after this delay.
    Latency(Duration),
}

/// One rule.
#[derive(Debug, Clone)]
pub struct FaultRule {
    /// Only this HTTP method (`None`: any).
    pub verb: Option<String>,
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
            path_contains: None,
            fault,
            remaining: None,
        }
    }

    /// Only this verb (GET, POST, PUT, PATCH, DELETE).
    pub fn verb(mut self, verb: &str) -> Self {
        self.verb = Some(verb.to_uppercase());
        self
    }

    /// Only paths containing `fragment` (e.g. `/namespaces/ns1/devmachines/`).
    pub fn path_contains(mut self, fragment: &str) -> Self {
        self.path_contains = Some(fragment.to_owned());
        self
    }

    /// Only the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.remaining = Some(n);
        self
    }
}

/// The active rules.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
    injected: std::sync::atomic::AtomicU64,
}

impl Faults {
    /// Adds a rule.
    pub fn add(&self, rule: FaultRule) {
        self.rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(rule);
    }

    /// How many requests a rule has answered or delayed so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn take(&self, method: &Method, path: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        let i = rules.iter().position(|r| {
            r.verb.as_deref().is_none_or(|v| v == method.as_str())
                && r.path_contains.as_deref().is_none_or(|p| path.contains(p))
                && r.remaining != Some(0)
        })?;
        let fault = rules[i].fault.clone();
        if let Some(n) = rules[i].remaining.as_mut() {
            *n -= 1;
        }
        rules.retain(|r| r.remaining != Some(0));
        self.injected
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(fault)
    }

    /// The response a request gets instead of being served, if a rule says so.
    pub(crate) async fn intercept(&self, method: &Method, path: &str) -> Option<Response> {
        match self.take(method, path)? {
            Fault::Latency(d) => {
                tokio::time::sleep(d).await;
                None
            }
            Fault::Status(code) => {
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
                        .insert("Retry-After", axum::http::HeaderValue::from_static("1"));
                }
                Some(resp)
            }
        }
    }
}
