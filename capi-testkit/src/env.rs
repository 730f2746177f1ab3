//! `TestEnv`: the fake API server on a free loopback port, a ready client and a kubeconfig,
//! stopped on drop; or, for the fastest unit tests, a client with no socket at all.
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

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::config::{
    AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};
use kube::{Client, Config};
use tokio::task::JoinHandle;

use crate::server::Server;

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
}

/// Builds a [`TestEnv`].
#[derive(Debug, Default)]
pub struct TestEnvBuilder {
    crds: Vec<CustomResourceDefinition>,
    crd_paths: Vec<PathBuf>,
    in_process: bool,
    address: Option<SocketAddr>,
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

    /// Starts the server, installs the CRDs and returns the environment.
    pub async fn start(self) -> Result<TestEnv, EnvError> {
        let server = Server::new();
        let (client, addr, task) = if self.in_process {
            let router = server.router("in-process");
            (Client::new(router, "default"), None, None)
        } else {
            let listener = tokio::net::TcpListener::bind(
                self.address
                    .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
            )
            .await?;
            let addr = listener.local_addr()?;
            let task = server.serve(listener);
            let mut config = Config::new(
                format!("http://{addr}")
                    .parse()
                    .map_err(|e: http::uri::InvalidUri| EnvError::Kubeconfig(e.to_string()))?,
            );
            // Injected 429/503s must reach the test, not be retried for minutes.
            config.default_retry = false;
            (Client::try_from(config)?, Some(addr), Some(task))
        };
        let mut env = TestEnv {
            server,
            client,
            addr,
            task,
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

/// A running fake API server with a client; stopped on drop.
pub struct TestEnv {
    server: Server,
    client: Client,
    addr: Option<SocketAddr>,
    task: Option<JoinHandle<()>>,
    kubeconfig_dir: Option<PathBuf>,
}

impl std::fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEnv")
            .field("addr", &self.addr)
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

    /// `http://127.0.0.1:PORT` (`None` in process).
    pub fn url(&self) -> Option<String> {
        self.addr.map(|a| format!("http://{a}"))
    }

    /// The kubeconfig, in memory.
    pub fn kubeconfig(&self) -> Kubeconfig {
        let server = self.url().unwrap_or_default();
        Kubeconfig {
            clusters: vec![NamedCluster {
                name: "capi-testkit".into(),
                cluster: Some(Cluster {
                    server: Some(server),
                    ..Cluster::default()
                }),
                other: Default::default(),
            }],
            auth_infos: vec![NamedAuthInfo {
                name: "capi-testkit".into(),
                auth_info: Some(AuthInfo::default()),
                other: Default::default(),
            }],
            contexts: vec![NamedContext {
                name: "capi-testkit".into(),
                context: Some(Context {
                    cluster: "capi-testkit".into(),
                    user: Some("capi-testkit".into()),
                    namespace: Some("default".into()),
                    ..Context::default()
                }),
                other: Default::default(),
            }],
            current_context: Some("capi-testkit".into()),
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
