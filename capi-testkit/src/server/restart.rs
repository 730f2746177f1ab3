//! What comes back from a server restart: the same store (a kube-apiserver restart with etcd
//! intact) or a fresh one (a new cluster), keeping the CRDs or not. Dropping connections and
//! rebinding the port is [`crate::env::TestEnv::restart`]'s part.

use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::Server;
use super::faults::Faults;
use super::requests::RequestCounter;

/// How much a fresh store's resourceVersions jump past the old store's last one.
const RV_GAP: u64 = 1000;

/// What survives a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// A kube-apiserver restart with etcd intact: every object, the resourceVersion counter and
    /// the watch history survive, so watchers resume from their last resourceVersion.
    KeepState,
    /// A new, empty cluster with the same CRDs installed (Established again, with new uids):
    /// custom resources, built-in objects and watch history are gone. What most tests of "the
    /// cluster was recreated" want: controllers' watches of custom resources get 410 Expired,
    /// relist and see their objects disappear, rather than failing on 404s.
    KeepCrds,
    /// A new, empty cluster: nothing but the four namespaces every apiserver creates (`default`,
    /// `kube-system`, `kube-public`, `kube-node-lease`); CRDs are gone too, so their resources
    /// answer 404 until they are installed again.
    EmptyStore,
}

/// Why a restart could not bring the server back.
#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    /// A CRD could not be installed again in the fresh store.
    #[error("re-installing CRD {name}: {code} {message}")]
    Crd {
        /// The CRD.
        name: String,
        /// The HTTP status the fresh server answered.
        code: u16,
        /// Its message.
        message: String,
    },
}

/// The CRDs of `server` that are not being deleted, as a user would POST them again.
fn crds_of(server: &Server) -> Vec<Value> {
    let res = server
        .store
        .lock()
        .registry
        .get("apiextensions.k8s.io", "customresourcedefinitions")
        .cloned();
    let Some(res) = res else {
        return Vec::new();
    };
    let (items, _) = server.store.list(&res, None);
    items
        .into_iter()
        .filter(|c| c["metadata"]["deletionTimestamp"].is_null())
        .map(|c| {
            let mut metadata = json!({"name": c["metadata"]["name"]});
            for k in ["labels", "annotations"] {
                if c["metadata"][k].is_object() {
                    metadata[k] = c["metadata"][k].clone();
                }
            }
            json!({
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": metadata,
                "spec": c["spec"],
            })
        })
        .collect()
}

impl Server {
    /// The server that comes back after a restart, sharing this one's fault rules and request
    /// counts. [`Restart::KeepState`] is this server; the others are a fresh store whose
    /// resourceVersions start above every one this server handed out, with no history before
    /// that, so a client resuming an old watch gets 410 Expired and relists (upstream, a wiped
    /// etcd restarts its counter and clients get "too large resource version" errors instead; the
    /// 410 is the deterministic equivalent).
    pub async fn restarted(&self, how: Restart) -> Result<Server, RestartError> {
        if how == Restart::KeepState {
            return Ok(self.clone());
        }
        let first_rv = self.store.lock().rv + RV_GAP;
        let crds = if how == Restart::KeepCrds {
            crds_of(self)
        } else {
            Vec::new()
        };
        // Installed with no fault rules and uncounted: the restart is not the test's traffic.
        let mut fresh = Server::build(
            self.history,
            Some(first_rv),
            std::sync::Arc::new(Faults::default()),
            std::sync::Arc::new(RequestCounter::default()),
        );
        let router = fresh.router("restart");
        for crd in crds {
            let name = crd["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let fail = |code: u16, message: String| RestartError::Crd {
                name: name.clone(),
                code,
                message,
            };
            let request =
                http::Request::post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(axum::body::Body::from(crd.to_string()))
                    .map_err(|e| fail(0, e.to_string()))?;
            let resp = router
                .clone()
                .oneshot(request)
                .await
                .map_err(|e| fail(0, e.to_string()))?;
            let code = resp.status().as_u16();
            if code != 201 {
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                    .unwrap_or_default();
                return Err(fail(code, body));
            }
        }
        fresh.faults = self.faults.clone();
        fresh.requests = self.requests.clone();
        fresh.timeouts = self.timeouts;
        // Tokens survive (they live in the apiserver's configuration, not in etcd); an enforcing
        // server bootstraps its default RBAC policy in the new store, as at first start.
        fresh.auth = self.auth.clone();
        if fresh.auth.is_enforcing() {
            fresh.enable_rbac();
        }
        // Tokens and RBAC enforcement survive; a fresh store gets the default policy again.
        fresh.auth = self.auth.clone();
        if fresh.auth.is_enforcing() {
            super::auth::bootstrap(&fresh.store);
        }
        tracing::info!(?how, first_rv, "server restarted with a fresh store");
        Ok(fresh)
    }
}
