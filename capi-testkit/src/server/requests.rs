//! Counts of the requests the server answered, by method and resource, so that tests and
//! benchmarks can tell how many API calls (and writes) a controller made.
//!
//! ```
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let env = capi_testkit::env::TestEnv::start().await?;
//! let before = env.server().requests().snapshot();
//! let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = kube::Api::default_namespaced(env.client());
//! cms.list(&Default::default()).await?;
//! let after = env.server().requests().snapshot();
//! assert_eq!(after.since(&before).count("GET", "configmaps"), 1);
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The live counters of a server, by method then resource (so that counting a request looks
/// its keys up without allocating them).
#[derive(Debug, Default)]
pub struct RequestCounter {
    counts: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
}

/// Request counts at one moment, by `(method, resource)`; the resource is the plural name
/// (with `/status` or `/scale` for subresources), or the path for non-resource URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCounts(pub BTreeMap<(String, String), u64>);

/// The resource a request path names: `/api/v1/namespaces/ns/configmaps/x` → `configmaps`,
/// `/apis/g/v/namespaces/ns/things/x/status` → `things/status`.
fn resource_of(path: &str) -> Cow<'_, str> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match parts.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => return Cow::Borrowed(path),
    };
    let rest = match rest {
        ["namespaces", _ns, rest @ ..] if !rest.is_empty() => rest,
        r => r,
    };
    match rest {
        [plural] | [plural, _] => Cow::Borrowed(plural),
        [plural, _, sub, ..] => Cow::Owned(format!("{plural}/{sub}")),
        [] => Cow::Borrowed(path),
    }
}

impl RequestCounter {
    pub(crate) fn record(&self, method: &str, path: &str) {
        let resource = resource_of(path);
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if !counts.contains_key(method) {
            counts.insert(method.to_owned(), BTreeMap::new());
        }
        let Some(by_resource) = counts.get_mut(method) else {
            return;
        };
        match by_resource.get_mut(resource.as_ref()) {
            Some(n) => *n += 1,
            None => {
                by_resource.insert(resource.into_owned(), 1);
            }
        }
    }

    /// The counts so far.
    pub fn snapshot(&self) -> RequestCounts {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        RequestCounts(
            counts
                .iter()
                .flat_map(|(method, by_resource)| {
                    by_resource
                        .iter()
                        .map(|(resource, n)| ((method.clone(), resource.clone()), *n))
                })
                .collect(),
        )
    }
}

impl RequestCounts {
    /// Requests with `method` to `resource` (`"*"` for any method).
    pub fn count(&self, method: &str, resource: &str) -> u64 {
        self.0
            .iter()
            .filter(|((m, r), _)| (method == "*" || m == method) && r == resource)
            .map(|(_, n)| n)
            .sum()
    }

    /// Writes (POST, PUT, PATCH, DELETE) to `resource` and its subresources.
    pub fn writes(&self, resource: &str) -> u64 {
        self.0
            .iter()
            .filter(|((m, r), _)| {
                matches!(m.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
                    && (r == resource
                        || r.strip_prefix(resource).is_some_and(|s| s.starts_with('/')))
            })
            .map(|(_, n)| n)
            .sum()
    }

    /// As kube-apiserver's `/metrics` names them: `apiserver_request_total{verb, resource,
    /// subresource}` (the verb is the HTTP method), which the server serves at `/metrics`.
    pub fn prometheus(&self) -> String {
        let mut out = String::from(
            "# HELP apiserver_request_total Counter of apiserver requests broken out by verb and resource.\n\
             # TYPE apiserver_request_total counter\n",
        );
        for ((method, resource), n) in &self.0 {
            let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
            out.push_str(&format!(
                "apiserver_request_total{{verb=\"{method}\",resource=\"{resource}\",subresource=\"{sub}\"}} {n}\n"
            ));
        }
        out
    }

    /// Reads what [`prometheus`](Self::prometheus) wrote (another process's server, say);
    /// lines it does not know are skipped.
    pub fn from_prometheus(text: &str) -> Self {
        let label = |line: &str, name: &str| -> Option<String> {
            let start = line.find(&format!("{name}=\""))? + name.len() + 2;
            let end = line[start..].find('"')? + start;
            Some(line[start..end].to_owned())
        };
        let mut counts = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| l.starts_with("apiserver_request_total{"))
        {
            let (Some(verb), Some(resource), Some(sub), Some(n)) = (
                label(line, "verb"),
                label(line, "resource"),
                label(line, "subresource"),
                line.rsplit_once(' ')
                    .and_then(|(_, n)| n.parse::<u64>().ok()),
            ) else {
                continue;
            };
            let key = if sub.is_empty() {
                resource
            } else {
                format!("{resource}/{sub}")
            };
            counts.insert((verb, key), n);
        }
        Self(counts)
    }

    /// What happened between `earlier` and these counts.
    pub fn since(&self, earlier: &RequestCounts) -> RequestCounts {
        RequestCounts(
            self.0
                .iter()
                .map(|(k, n)| {
                    (
                        k.clone(),
                        n - earlier.0.get(k).copied().unwrap_or(0).min(*n),
                    )
                })
                .filter(|(_, n)| *n > 0)
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_resource() {
        assert_eq!(
            resource_of("/api/v1/namespaces/d/configmaps/x"),
            "configmaps"
        );
        assert_eq!(resource_of("/api/v1/namespaces"), "namespaces");
        assert_eq!(resource_of("/api/v1/namespaces/d"), "namespaces");
        assert_eq!(
            resource_of("/apis/g.io/v1/namespaces/d/things/x/status"),
            "things/status"
        );
        assert_eq!(resource_of("/apis/g.io/v1/things"), "things");
        assert_eq!(resource_of("/healthz"), "/healthz");
    }

    #[test]
    fn prometheus_text_round_trips() {
        let counter = RequestCounter::default();
        counter.record("PATCH", "/apis/g.io/v1/namespaces/d/things/x/status");
        counter.record("PATCH", "/apis/g.io/v1/namespaces/d/things/x/status");
        counter.record("GET", "/api/v1/namespaces/d/configmaps");
        let counts = counter.snapshot();
        let text = counts.prometheus();
        assert!(text.contains(
            "apiserver_request_total{verb=\"PATCH\",resource=\"things\",subresource=\"status\"} 2"
        ));
        assert_eq!(RequestCounts::from_prometheus(&text), counts);
        assert_eq!(counts.writes("things"), 2);
    }
}
