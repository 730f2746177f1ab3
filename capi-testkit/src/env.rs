//! `TestEnv`: the fake API server on a free loopback port, a ready client and a kubeconfig,
//! stopped on drop; or, for the fastest unit tests, a client with no socket at all.
//!
//! The socket serves HTTPS, as kube-apiserver (and envtest) do: a CA and a serving certificate
//! for `localhost`, `127.0.0.1`, `::1`, the bound address and any [`TestEnvBuilder::tls_san`]
//! are made at start ([`crate::server::tls`]), the kubeconfig carries the CA as
//! `certificate-authority-data`, and the clients handed out trust it. So every client sends its
//! bearer token (client-go sends none over plain HTTP), and a request without credentials is
//! `system:anonymous`, as upstream. kubectl speaks HTTP/2 to it, kube-rs HTTP/1.1.
//! [`TestEnvBuilder::insecure_http`] serves plain HTTP/1.1 instead.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use capi_testkit::env::TestEnv;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::api::{Api, PostParams};
//!
//! let env = TestEnv::builder().crds(capi_core::crd::core_crds()?).start().await?;
//! let cms: Api<ConfigMap> = Api::namespaced(env.client(), "default");
//! let mut cm = ConfigMap::default();
//! cm.metadata.name = Some("hello".into());
//! cms.create(&PostParams::default(), &cm).await?;
//! assert!(std::fs::read_to_string(env.kubeconfig_path())?.contains("127.0.0.1"));
//! # Ok(())
//! # }
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, PostParams};
use kube::config::{
    AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use crate::server::auth::Identity;
use crate::server::auth::Unauthenticated;
use crate::server::auth::client as auth_client;
use crate::server::faults::Faults;
use crate::server::restart::{Restart, RestartError};
use crate::server::tls::{ServingCert, SubjectAltName, TlsError};
use crate::server::{HttpTimeouts, Server};

/// How long a restarted server's port stays closed.
const RESTART_DOWNTIME: Duration = Duration::from_millis(100);

/// Why a test environment could not start.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// Binding or writing failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The client could not be built.
    #[error("client: {0}")]
    Client(#[from] kube::Error),
    /// A CRD file could not be read.
    #[error("CRD file {path}: {message}")]
    CrdFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A CRD did not become Established.
    #[error("CRD {0} was not established")]
    NotEstablished(String),
    /// The kubeconfig could not be written.
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    /// A restart needs a socket; this environment is in process.
    #[error("an in-process environment cannot restart")]
    InProcess,
    /// The restarted server could not be set up.
    #[error("restart: {0}")]
    Restart(#[from] RestartError),
    /// The serving certificate could not be made.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
}

/// Builds a [`TestEnv`].
#[derive(Debug, Default)]
pub struct TestEnvBuilder {
    crds: Vec<CustomResourceDefinition>,
    crd_paths: Vec<PathBuf>,
    in_process: bool,
    address: Option<SocketAddr>,
    enforce_rbac: bool,
    insecure_http: bool,
    tls_sans: Vec<String>,
    timeouts: HttpTimeouts,
}

impl TestEnvBuilder {
    /// CRDs to install before the client is handed out.
    pub fn crds(mut self, crds: impl IntoIterator<Item = CustomResourceDefinition>) -> Self {
        self.crds.extend(crds);
        self
    }

    /// A CRD YAML file or a folder of them (multi-document files are fine).
    pub fn crd_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.crd_paths.push(path.into());
        self
    }

    /// No socket: the client talks to the server as an in-process tower service.
    pub fn in_process(mut self) -> Self {
        self.in_process = true;
        self
    }

    /// Listen here instead of 127.0.0.1 on a free port.
    pub fn address(mut self, address: SocketAddr) -> Self {
        self.address = Some(address);
        self
    }

    /// Another name or address for the serving certificate: an IP address or a DNS name
    /// (`*.` wildcards allowed), for clients reaching the server by a name other than
    /// `localhost`, `127.0.0.1`, `::1` and the bound address (which are always in it; bound to
    /// `0.0.0.0` or `::`, so is the address of the interface of the default route, as
    /// kube-apiserver's advertise address). Repeatable; no effect over plain HTTP or in
    /// process.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use capi_testkit::env::TestEnv;
    ///
    /// let env = TestEnv::builder().tls_san("api.example.test").start().await?;
    /// // A client reaching 127.0.0.1 but verifying the name it was given.
    /// let mut config = kube::Config::new(env.url().unwrap_or_default().parse()?);
    /// config.root_cert = env.ca_der().map(|der| vec![der.to_vec()]);
    /// config.tls_server_name = Some("api.example.test".into());
    /// kube::Client::try_from(config)?.apiserver_version().await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// [`TestEnvBuilder::start`] fails with [`EnvError::Tls`] for a name that is neither.
    pub fn tls_san(mut self, name: impl Into<String>) -> Self {
        self.tls_sans.push(name.into());
        self
    }

    /// The socket's HTTP timeouts (kube-apiserver's by default: 32 s for a request's headers,
    /// 90 s idle, 60 s for a graceful [`TestEnv::shutdown`]); see [`HttpTimeouts`]. No effect
    /// in process.
    pub fn http_timeouts(mut self, timeouts: HttpTimeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Serve plain HTTP instead of HTTPS (off by default; no effect in process). As the
    /// insecure port of old kube-apiservers: no certificate, and a request without credentials
    /// is the administrator (client-go sends no token over plain HTTP, so identities other than
    /// the administrator reach kubectl as impersonation: see [`TestEnv::kubeconfig_for`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use capi_testkit::env::TestEnv;
    ///
    /// let env = TestEnv::builder().insecure_http(true).start().await?;
    /// assert!(env.url().is_some_and(|u| u.starts_with("http://")));
    /// assert!(env.ca_pem().is_none());
    /// env.client().apiserver_version().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn insecure_http(mut self, on: bool) -> Self {
        self.insecure_http = on;
        self
    }

    /// Enforce RBAC (off by default): requests are authorized from the stored Roles,
    /// ClusterRoles and bindings, as kube-apiserver's RBAC authorizer does. [`TestEnv::client`]
    /// and the kubeconfig stay all-powerful (`system:masters`); [`TestEnv::client_for`] and
    /// [`TestEnv::kubeconfig_for`] act as another identity.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use capi_testkit::env::{Identity, TestEnv};
    /// use k8s_openapi::api::core::v1::ConfigMap;
    /// use kube::api::{Api, ListParams};
    ///
    /// let env = TestEnv::builder().enforce_rbac(true).in_process().start().await?;
    /// let sa = env.client_for(&Identity::service_account("default", "provider"))?;
    /// let err = Api::<ConfigMap>::namespaced(sa, "default")
    ///     .list(&ListParams::default())
    ///     .await
    ///     .err();
    /// assert!(matches!(err, Some(kube::Error::Api(s)) if s.code == 403));
    /// # Ok(())
    /// # }
    /// ```
    pub fn enforce_rbac(mut self, on: bool) -> Self {
        self.enforce_rbac = on;
        self
    }

    /// Starts the server, installs the CRDs and returns the environment.
    pub async fn start(self) -> Result<TestEnv, EnvError> {
        let server = Server::new().http_timeouts(self.timeouts);
        if self.enforce_rbac {
            server.enable_rbac();
        }
        let admin_token = server.auth().admin_token().to_owned();
        let drain = CancellationToken::new();
        let (client, addr, task, tls) = if self.in_process {
            let router = server.router("in-process");
            (
                auth_client::in_process(router, &admin_token, "default"),
                None,
                None,
                None,
            )
        } else {
            let listener = tokio::net::TcpListener::bind(
                self.address
                    .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
            )
            .await?;
            let addr = listener.local_addr()?;
            let tls = if self.insecure_http {
                None
            } else {
                // Upstream's secure port: whoever sends no credentials is anonymous.
                server
                    .auth()
                    .set_unauthenticated(Unauthenticated::Anonymous);
                let mut names = vec![SubjectAltName::Ip(addr.ip())];
                if addr.ip().is_unspecified() {
                    names.extend(default_route_address(addr.ip()).map(SubjectAltName::Ip));
                }
                for s in &self.tls_sans {
                    names.push(s.parse()?);
                }
                Some(ServingCert::generate_for(&names)?)
            };
            let task = server.serve_draining(listener, tls.as_ref(), drain.clone());
            let client = socket_client(addr, tls.as_ref(), &admin_token, "default")?;
            (client, Some(addr), Some(task), tls)
        };
        let mut env = TestEnv {
            server,
            client,
            addr,
            task,
            drain,
            tls,
            kubeconfig_dir: None,
        };
        let mut crds = self.crds;
        for p in &self.crd_paths {
            crds.extend(read_crds(p)?);
        }
        env.install_crds(crds).await?;
        if addr.is_some() {
            env.write_kubeconfig()?;
        }
        Ok(env)
    }
}

/// Reads CRDs from a YAML file or every `.yaml`/`.yml` file of a folder.
pub fn read_crds(path: &Path) -> Result<Vec<CustomResourceDefinition>, EnvError> {
    let err = |message: String| EnvError::CrdFile {
        path: path.to_owned(),
        message,
    };
    let mut files = Vec::new();
    if path.is_dir() {
        for e in std::fs::read_dir(path)? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                files.push(p);
            }
        }
        files.sort();
    } else {
        files.push(path.to_owned());
    }
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f)?;
        let docs: Vec<serde_json::Value> =
            serde_saphyr::from_multiple(&text).map_err(|e| err(e.to_string()))?;
        for d in docs
            .into_iter()
            .filter(|d| d["kind"] == "CustomResourceDefinition")
        {
            out.push(serde_json::from_value(d).map_err(|e| err(e.to_string()))?);
        }
    }
    Ok(out)
}

/// The address of the interface the default route goes through, in the family of `bound`
/// (what kube-apiserver advertises when bound to `0.0.0.0`): the source address a UDP socket
/// connected towards a documentation address gets (no packet is sent). `None` without a
/// default route.
fn default_route_address(bound: IpAddr) -> Option<IpAddr> {
    let (local, remote): (IpAddr, IpAddr) = match bound {
        IpAddr::V4(_) => (
            Ipv4Addr::UNSPECIFIED.into(),
            Ipv4Addr::new(192, 0, 2, 1).into(),
        ),
        IpAddr::V6(_) => (
            Ipv6Addr::UNSPECIFIED.into(),
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).into(),
        ),
    };
    let socket = std::net::UdpSocket::bind(SocketAddr::new(local, 0)).ok()?;
    socket.connect(SocketAddr::new(remote, 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}

/// Where clients on this machine reach a server bound to `addr`: `addr`, or loopback for an
/// unspecified address (`0.0.0.0`, `::`), which is no destination.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

/// A client of the server at `addr` (HTTPS trusting `tls`'s CA, or plain HTTP) presenting
/// `token`, default namespace `namespace`, without kube's retries (injected 429/503s must reach
/// the test).
fn socket_client(
    addr: SocketAddr,
    tls: Option<&ServingCert>,
    token: &str,
    namespace: &str,
) -> Result<Client, EnvError> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let addr = reachable(addr);
    let url: http::Uri = format!("{scheme}://{addr}")
        .parse()
        .map_err(|e: http::uri::InvalidUri| EnvError::Kubeconfig(e.to_string()))?;
    let Some(cert) = tls else {
        return Ok(auth_client::over_http(url, token, namespace)?);
    };
    let mut config = kube::Config::new(url);
    config.default_retry = false;
    config.default_namespace = namespace.to_owned();
    config.auth_info.token = Some(token.to_owned().into());
    config.root_cert = Some(vec![cert.ca_der().to_vec()]);
    Ok(Client::try_from(config)?)
}

/// A running fake API server with a client; stopped on drop, at once (every connection
/// dropped, as when the process is killed: no test waits for a watch to end), or gracefully
/// with [`TestEnv::shutdown`].
pub struct TestEnv {
    server: Server,
    client: Client,
    addr: Option<SocketAddr>,
    task: Option<JoinHandle<()>>,
    /// Cancelled to stop the serving task gracefully.
    drain: CancellationToken,
    tls: Option<ServingCert>,
    kubeconfig_dir: Option<PathBuf>,
}

impl std::fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEnv")
            .field("addr", &self.addr)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl TestEnv {
    /// A builder.
    pub fn builder() -> TestEnvBuilder {
        TestEnvBuilder::default()
    }

    /// A server with no CRDs.
    pub async fn start() -> Result<Self, EnvError> {
        Self::builder().start().await
    }

    /// A client for the server (namespace `default`).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The server, for fault injection and looking underneath the API.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The server's fault-injection rules (`self.server().faults()`).
    pub fn faults(&self) -> &Faults {
        self.server.faults()
    }

    /// Restarts the server as an apiserver restart looks to clients: every connection drops
    /// (open watches end mid-stream, idle keep-alive connections close), the port is closed
    /// for a moment (100 ms), then the server listens again on the same address, with the
    /// state `how` says. [`TestEnv::client`] and the kubeconfig keep working; fault rules and
    /// request counts carry over. After a restart without [`Restart::KeepState`],
    /// [`TestEnv::server`] is the new server: a `Store` taken from it before is the old one.
    ///
    /// # Errors
    ///
    /// [`EnvError::InProcess`] for an in-process environment; [`EnvError::Io`] when the port
    /// cannot be bound again (within 5 s); [`EnvError::Restart`] when CRDs cannot be installed
    /// again.
    pub async fn restart(&mut self, how: Restart) -> Result<(), EnvError> {
        let addr = self.addr.ok_or(EnvError::InProcess)?;
        if let Some(task) = self.task.take() {
            task.abort();
            // Its end drops the listener and, through it, every connection.
            let _ = task.await;
        }
        self.server.faults().cut_watches(None);
        self.server = self.server.restarted(how).await?;
        tokio::time::sleep(RESTART_DOWNTIME).await;
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tracing::debug!(error = %e, %addr, "rebinding after restart");
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        // The same certificate: clients and kubeconfigs keep trusting the server.
        self.drain = CancellationToken::new();
        self.task = Some(self.server.serve_draining(
            listener,
            self.tls.as_ref(),
            self.drain.clone(),
        ));
        tracing::info!(%addr, ?how, "server restarted");
        Ok(())
    }

    /// Stops the server gracefully, as kube-apiserver does on SIGTERM, and returns once it has:
    /// the port closes at once (new connections are refused), idle connections close, HTTP/2
    /// connections get a `GOAWAY`, open watches end cleanly (HTTP/1.1: their last chunk;
    /// HTTP/2: `END_STREAM`) so watchers see a normal end of stream, and requests in flight are
    /// answered, within [`HttpTimeouts::shutdown`] (60 s by default; then what is left is cut).
    /// See [`crate::server`]'s connections for the details. Dropping a `TestEnv` instead drops
    /// every connection at once. In process, this is the drop.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use capi_testkit::env::TestEnv;
    /// use futures::StreamExt;
    /// use k8s_openapi::api::core::v1::ConfigMap;
    /// use kube::api::{Api, WatchParams};
    ///
    /// let env = TestEnv::start().await?;
    /// let cms: Api<ConfigMap> = Api::default_namespaced(env.client());
    /// let mut events = cms.watch(&WatchParams::default(), "0").await?.boxed();
    /// env.shutdown().await;
    /// // The watch ended as a watch times out: no error, only its end.
    /// while let Some(event) = events.next().await {
    ///     event?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn shutdown(mut self) {
        self.drain.cancel();
        if let Some(task) = self.task.take() {
            // Its end is bounded by the shutdown timeout; an abort is no error of the caller's.
            let _ = task.await;
        }
        tracing::info!(addr = ?self.addr, "server stopped");
    }

    /// `https://127.0.0.1:PORT` (`http://` with [`TestEnvBuilder::insecure_http`]; `None` in
    /// process): the bound address, or loopback when bound to `0.0.0.0` (`[::1]` for `::`).
    /// What the kubeconfig names as its server.
    pub fn url(&self) -> Option<String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        self.addr.map(|a| format!("{scheme}://{}", reachable(a)))
    }

    /// The names and addresses the serving certificate is valid for (`None` over plain HTTP
    /// and in process).
    pub fn subject_alt_names(&self) -> Option<&[String]> {
        self.tls.as_ref().map(ServingCert::subject_alt_names)
    }

    /// The PEM-encoded CA certificate the server's certificate is signed by (`None` over plain
    /// HTTP and in process): what the kubeconfig carries as `certificate-authority-data`, for
    /// clients built by hand.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use capi_testkit::env::TestEnv;
    ///
    /// let env = TestEnv::start().await?;
    /// let mut config = kube::Config::new(env.url().unwrap_or_default().parse()?);
    /// config.root_cert = env.ca_der().map(|der| vec![der.to_vec()]);
    /// // No token: anonymous, who may read the version (and, without RBAC, anything).
    /// kube::Client::try_from(config)?.apiserver_version().await?;
    /// assert!(env.ca_pem().is_some_and(|pem| pem.contains("BEGIN CERTIFICATE")));
    /// # Ok(())
    /// # }
    /// ```
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(ServingCert::ca_pem)
    }

    /// The CA certificate, DER-encoded (for `kube::Config::root_cert`); see [`TestEnv::ca_pem`].
    pub fn ca_der(&self) -> Option<&[u8]> {
        self.tls.as_ref().map(ServingCert::ca_der)
    }

    /// A client acting as `identity` (namespace `default`, or the ServiceAccount's): its
    /// requests are authorized as that identity's when RBAC is enforced
    /// ([`TestEnvBuilder::enforce_rbac`]).
    ///
    /// # Errors
    ///
    /// [`EnvError::Client`] when the client cannot be built.
    pub fn client_for(&self, identity: &Identity) -> Result<Client, EnvError> {
        let token = self.server.auth().tokens().issue(identity);
        let namespace = identity
            .as_service_account()
            .map_or("default", |(ns, _)| ns);
        match self.addr {
            None => Ok(auth_client::in_process(
                self.server.router("in-process"),
                &token,
                namespace,
            )),
            Some(addr) => socket_client(addr, self.tls.as_ref(), &token, namespace),
        }
    }

    /// A kubeconfig acting as `identity` (context and user named after it; namespace
    /// `default`, or the ServiceAccount's). Over HTTPS (the default) it carries the identity's
    /// bearer token, as a kubeconfig for kube-apiserver would, which every client sends.
    /// Over plain HTTP ([`TestEnvBuilder::insecure_http`]) it carries `as`/`as-groups` too,
    /// which client-go (kubectl, controller-runtime) sends as impersonation headers instead of
    /// the token it reads only for TLS: a request without credentials is then the
    /// administrator, who may impersonate (see [`crate::server::auth`]). Either way requests
    /// are authorized as `identity`.
    pub fn kubeconfig_for(&self, identity: &Identity) -> Kubeconfig {
        let token = self.server.auth().tokens().issue(identity);
        let namespace = identity
            .as_service_account()
            .map_or("default", |(ns, _)| ns);
        let act_as = self.tls.is_none().then_some(identity);
        self.kubeconfig_with(identity.name(), &token, namespace, act_as)
    }

    /// Writes [`TestEnv::kubeconfig_for`] to `path`.
    ///
    /// # Errors
    ///
    /// [`EnvError::Io`] or [`EnvError::Kubeconfig`] when it cannot be written.
    pub fn write_kubeconfig_for(&self, identity: &Identity, path: &Path) -> Result<(), EnvError> {
        let yaml = serde_saphyr::to_string(&self.kubeconfig_for(identity))
            .map_err(|e| EnvError::Kubeconfig(e.to_string()))?;
        std::fs::write(path, yaml)?;
        Ok(())
    }

    /// Writes [`TestEnv::kubeconfig_for`] next to the environment's kubeconfig (removed on
    /// drop) and returns its path, e.g. for `kubectl --kubeconfig`.
    ///
    /// # Errors
    ///
    /// [`EnvError::Kubeconfig`] in process (no socket to point kubectl at); [`EnvError::Io`].
    pub fn kubeconfig_path_for(&self, identity: &Identity) -> Result<PathBuf, EnvError> {
        let Some(dir) = &self.kubeconfig_dir else {
            return Err(EnvError::Kubeconfig(
                "an in-process environment has no kubeconfig file".into(),
            ));
        };
        let file: String = identity
            .name()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("kubeconfig-{file}"));
        self.write_kubeconfig_for(identity, &path)?;
        Ok(path)
    }

    /// The kubeconfig, in memory: the administrator's (`system:masters`), with its token and,
    /// over HTTPS, the CA (`certificate-authority-data`).
    pub fn kubeconfig(&self) -> Kubeconfig {
        self.kubeconfig_with(
            "capi-testkit",
            self.server.auth().admin_token(),
            "default",
            None,
        )
    }

    fn kubeconfig_with(
        &self,
        name: &str,
        token: &str,
        namespace: &str,
        act_as: Option<&Identity>,
    ) -> Kubeconfig {
        use base64::Engine as _;
        let server = self.url().unwrap_or_default();
        let ca = self
            .ca_pem()
            .map(|pem| base64::engine::general_purpose::STANDARD.encode(pem));
        Kubeconfig {
            clusters: vec![NamedCluster {
                name: "capi-testkit".into(),
                cluster: Some(Cluster {
                    server: Some(server),
                    certificate_authority_data: ca,
                    ..Cluster::default()
                }),
                other: Default::default(),
            }],
            auth_infos: vec![NamedAuthInfo {
                name: name.into(),
                auth_info: Some(AuthInfo {
                    token: Some(token.to_owned().into()),
                    impersonate: act_as.map(|i| i.name().to_owned()),
                    impersonate_groups: act_as.map(|i| i.groups().to_vec()),
                    ..AuthInfo::default()
                }),
                other: Default::default(),
            }],
            contexts: vec![NamedContext {
                name: name.into(),
                context: Some(Context {
                    cluster: "capi-testkit".into(),
                    user: Some(name.into()),
                    namespace: Some(namespace.into()),
                    ..Context::default()
                }),
                other: Default::default(),
            }],
            current_context: Some(name.into()),
            api_version: Some("v1".into()),
            kind: Some("Config".into()),
            ..Kubeconfig::default()
        }
    }

    /// Where the kubeconfig file is (empty in process).
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.kubeconfig_dir
            .as_ref()
            .map(|d| d.join("kubeconfig"))
            .unwrap_or_default()
    }

    /// Writes the kubeconfig to `path`.
    pub fn write_kubeconfig_to(&self, path: &Path) -> Result<(), EnvError> {
        let yaml = serde_saphyr::to_string(&self.kubeconfig())
            .map_err(|e| EnvError::Kubeconfig(e.to_string()))?;
        std::fs::write(path, yaml)?;
        Ok(())
    }

    fn write_kubeconfig(&mut self) -> Result<(), EnvError> {
        let port = self.addr.map(|a| a.port()).unwrap_or_default();
        let dir = std::env::temp_dir().join(format!("capi-testkit-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        self.kubeconfig_dir = Some(dir);
        self.write_kubeconfig_to(&self.kubeconfig_path())
    }

    /// Installs CRDs (POSTed as a user would) and waits until they are Established.
    pub async fn install_crds(
        &self,
        crds: impl IntoIterator<Item = CustomResourceDefinition>,
    ) -> Result<(), EnvError> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        for crd in crds {
            let name = crd.metadata.name.clone().unwrap_or_default();
            match api.create(&PostParams::default(), &crd).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
            let mut established = false;
            for _ in 0..200 {
                let c = api.get(&name).await?;
                if c.status.and_then(|s| s.conditions).is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                }) {
                    established = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if !established {
                return Err(EnvError::NotEstablished(name));
            }
        }
        Ok(())
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if let Some(d) = self.kubeconfig_dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
