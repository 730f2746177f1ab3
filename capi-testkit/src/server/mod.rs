//! An in-memory Kubernetes API server for tests and demos: what kube-rs, kubectl and
//! controllers observe of kube-apiserver (apiserver-semantics.md), plus the garbage collector
//! and namespace controller a real control plane runs beside it.
//!
//! Most users want [`crate::env::TestEnv`]; this module is the engine:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let server = capi_testkit::server::Server::new();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let addr = listener.local_addr().unwrap();
//! let handle = server.serve(listener);
//! let body = reqwest_free_get(addr).await;
//! assert!(body.contains("APIVersions"));
//! handle.abort();
//! # }
//! # async fn reqwest_free_get(addr: std::net::SocketAddr) -> String {
//! #     use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! #     let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
//! #     s.write_all(b"GET /api HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
//! #     let mut out = String::new();
//! #     s.read_to_string(&mut out).await.unwrap();
//! #     out
//! # }
//! ```

pub mod auth;
mod builtins;
mod coalesce;
mod connections;
mod discovery;
pub mod errors;
mod events;
pub mod faults;
mod gc;
mod handlers;
mod options;
mod partial;
mod protobuf;
pub mod requests;
pub mod resources;
pub mod restart;
pub mod selectors;
pub mod store;
mod table;
pub mod tls;
mod watch;
mod watch_map;

use std::sync::Arc;

use axum::Router;
use serde_json::json;

use auth::Auth;
pub use connections::{ConnectionCounter, HttpTimeouts};
use faults::Faults;
use requests::RequestCounter;
use store::Store;

/// Shared by every request.
#[derive(Debug)]
pub(crate) struct App {
    pub store: Arc<Store>,
    pub faults: Arc<Faults>,
    pub requests: Arc<RequestCounter>,
    pub auth: Arc<Auth>,
    pub address: String,
}

/// The server: a store, its in-server controllers, and the HTTP routes.
#[derive(Debug, Clone)]
pub struct Server {
    store: Arc<Store>,
    faults: Arc<Faults>,
    requests: Arc<RequestCounter>,
    auth: Arc<Auth>,
    connections: Arc<ConnectionCounter>,
    /// Its sockets' HTTP timeouts.
    timeouts: HttpTimeouts,
    /// Events kept for resumed watches (a restart with a fresh store keeps as many).
    history: usize,
    housekeeping:
        Arc<std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<store::Housekeeping>>>>,
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Server {
    /// A server with the `default`, `kube-system`, `kube-public` and `kube-node-lease` namespaces,
    /// keeping the last 100,000 events for watches.
    pub fn new() -> Self {
        Self::with_history(100_000)
    }

    /// A server keeping `history` events for resumed watches.
    pub fn with_history(history: usize) -> Self {
        Self::build(
            history,
            None,
            Arc::new(Faults::default()),
            Arc::new(RequestCounter::default()),
        )
    }

    /// A server whose resourceVersions start after `first_rv` (`None`: the store's default).
    fn build(
        history: usize,
        first_rv: Option<u64>,
        faults: Arc<Faults>,
        requests: Arc<RequestCounter>,
    ) -> Self {
        let (store, rx) = Store::new(history);
        if let Some(rv) = first_rv {
            let mut s = store.lock();
            s.rv = rv;
            s.compacted_rv = rv;
        }
        let namespaces = store.lock().registry.get("", "namespaces").cloned();
        if let Some(ns) = namespaces {
            for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
                let _ = store.create(&ns, "", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}), false);
            }
        }
        let server = Self {
            store,
            faults,
            requests,
            auth: Arc::new(Auth::default()),
            connections: Arc::default(),
            timeouts: HttpTimeouts::default(),
            history,
            housekeeping: Arc::new(std::sync::Mutex::new(Some(rx))),
        };
        server.start_housekeeping();
        server
    }

    /// Starts the garbage collector and namespace controller once a Tokio runtime is around
    /// (a server built outside one starts them with its first router).
    fn start_housekeeping(&self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let rx = self
            .housekeeping
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(rx) = rx {
            handle.spawn(gc::run(Arc::downgrade(&self.store), rx));
        }
    }

    /// The same server, its sockets (served from now on) with these HTTP timeouts instead of
    /// kube-apiserver's ([`HttpTimeouts::default`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use capi_testkit::server::{HttpTimeouts, Server};
    ///
    /// let timeouts = HttpTimeouts::default().shutdown(Duration::from_secs(5));
    /// let _server = Server::new().http_timeouts(timeouts);
    /// ```
    #[must_use]
    pub fn http_timeouts(mut self, timeouts: HttpTimeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The store (for tests that look underneath the API).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Fault-injection rules.
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// Counts of the requests answered so far.
    pub fn requests(&self) -> &Arc<RequestCounter> {
        &self.requests
    }

    /// Counts of the connections accepted so far, by protocol (HTTP/1.1, HTTP/2) and by
    /// refusal (plain HTTP on the TLS port, failed handshakes).
    pub fn connections(&self) -> &Arc<ConnectionCounter> {
        &self.connections
    }

    /// Authentication and authorization: tokens, RBAC enforcement (off by default).
    pub fn auth(&self) -> &Arc<Auth> {
        &self.auth
    }

    /// Enforces RBAC from now on, creating the default ClusterRoles and ClusterRoleBindings
    /// that are missing ([`auth::default_policy`]: discovery for every identity,
    /// `cluster-admin` for `system:masters`).
    pub fn enable_rbac(&self) {
        auth::bootstrap(&self.store);
        self.auth.set_enforcing(true);
    }

    /// The HTTP routes, as a tower service (usable with no socket: `kube::Client::new(router, ns)`).
    pub fn router(&self, address: &str) -> Router {
        self.start_housekeeping();
        let app = Arc::new(App {
            store: self.store.clone(),
            faults: self.faults.clone(),
            requests: self.requests.clone(),
            auth: self.auth.clone(),
            address: address.to_owned(),
        });
        Router::new().fallback(handlers::dispatch).with_state(app)
    }

    /// Serves plain HTTP/1.1 on `listener` until the returned task is aborted; then every
    /// connection it accepted (open watches included) drops too. No HTTP/2 (h2c): Go's server,
    /// so kube-apiserver's insecure port, speaks it only over TLS.
    pub fn serve(&self, listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<()> {
        self.serve_with(listener, None, None)
    }

    /// Serves HTTPS with `cert` on `listener` until the returned task is aborted; then every
    /// connection it accepted (open watches and HTTP/2 connections included) drops too.
    /// HTTP/2 for clients choosing `h2` by ALPN (kubectl), HTTP/1.1 for the others (kube-rs);
    /// plain HTTP gets Go's `400`. See [`tls`] for an example.
    pub fn serve_tls(
        &self,
        listener: tokio::net::TcpListener,
        cert: &tls::ServingCert,
    ) -> tokio::task::JoinHandle<()> {
        self.serve_with(listener, Some(cert.acceptor()), None)
    }

    /// Serves `listener` (HTTPS with `cert`, else plain HTTP) until the returned task is
    /// aborted, which drops every connection as [`Server::serve`]'s does, or `drain` is
    /// cancelled: then it stops gracefully, as kube-apiserver on SIGTERM (see
    /// [`connections`]'s doc), and the task ends once every connection has.
    pub(crate) fn serve_draining(
        &self,
        listener: tokio::net::TcpListener,
        cert: Option<&tls::ServingCert>,
        drain: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        self.serve_with(listener, cert.map(tls::ServingCert::acceptor), Some(drain))
    }

    fn serve_with(
        &self,
        listener: tokio::net::TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
        drain: Option<tokio_util::sync::CancellationToken>,
    ) -> tokio::task::JoinHandle<()> {
        let address = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let router = self.router(&address);
        let counter = self.connections.clone();
        let stop = tokio_util::sync::CancellationToken::new();
        let listener = connections::Cuttable::new(listener, stop.clone());
        let life = connections::Lifecycle::new(self.timeouts);
        // Never cancelled without one: the task only ends aborted.
        let drain = drain.unwrap_or_default();
        tokio::spawn(async move {
            let _stop_connections = stop.drop_guard();
            match tls {
                Some(acceptor) => {
                    tls::serve(listener, acceptor, router, counter, life, drain).await
                }
                None => connections::serve_plain(listener, router, counter, life, drain).await,
            }
        })
    }
}
