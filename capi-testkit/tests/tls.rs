//! HTTPS on the socket, as kube-apiserver serves: the kubeconfig carries the CA, kube-rs and
//! kubectl trust it, kubectl sends a ServiceAccount's bearer token (which it would not over
//! plain HTTP) and gets upstream's 403 for what the role does not allow; `capi-testkit serve`
//! does the same. kubectl parts are skipped with a printed reason where it is not installed.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use capi_testkit::env::{Identity, TestEnv};
use capi_testkit::server::tls::ServingCert;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

const SA_NAME: &str = "system:serviceaccount:default:p";

fn sa() -> Identity {
    Identity::service_account("default", "p")
}

fn have_kubectl() -> bool {
    let ok = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok();
    if !ok {
        println!("skipped: kubectl is not installed");
    }
    ok
}

fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A Role letting the ServiceAccount default/p get and list ConfigMaps in `default`.
const GRANT: &str = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: cm-read
  namespace: default
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: cm-read
  namespace: default
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: cm-read
subjects:
- kind: ServiceAccount
  name: p
  namespace: default
"#;

fn refused() -> String {
    format!(
        r#"Error from server (Forbidden): secrets is forbidden: User "{SA_NAME}" cannot list resource "secrets" in API group "" in the namespace "default""#
    )
}

/// What a ServiceAccount's kubectl sees: its token authenticates it, the Role allows
/// ConfigMaps, Secrets are refused with upstream's message.
fn check_service_account_kubectl(admin: &Path, sa: &Path) {
    let (ok, out) = kubectl(admin, &["apply", "-f", "-"], Some(GRANT));
    assert!(ok, "{out}");
    let (ok, out) = kubectl(
        sa,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
        None,
    );
    assert!(ok && out.trim() == SA_NAME, "{out}");
    let (ok, out) = kubectl(sa, &["get", "configmaps"], None);
    assert!(ok, "{out}");
    let (ok, out) = kubectl(sa, &["get", "secrets"], None);
    assert!(!ok && out.contains(&refused()), "{out}");
    let (ok, out) = kubectl(sa, &["auth", "can-i", "list", "secrets"], None);
    assert!(!ok && out.trim() == "no", "{out}");
    let (ok, out) = kubectl(admin, &["get", "secrets", "-A"], None);
    assert!(ok, "{out}");
}

#[tokio::test]
async fn the_kubeconfig_carries_the_ca_and_clients_built_from_it_trust_the_server() {
    let env = TestEnv::start().await.unwrap();
    let url = env.url().unwrap();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let pem = env.ca_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");

    // In memory and from the file, as a provider binary reads it.
    let kubeconfig = env.kubeconfig();
    let cluster = kubeconfig.clusters[0].cluster.as_ref().unwrap();
    assert_eq!(cluster.server.as_deref(), Some(url.as_str()));
    assert!(cluster.certificate_authority_data.is_some());
    assert_eq!(cluster.insecure_skip_tls_verify, None);
    let from_file = Kubeconfig::read_from(env.kubeconfig_path()).unwrap();
    let read = from_file.clusters[0].cluster.as_ref().unwrap();
    assert_eq!(
        read.certificate_authority_data,
        cluster.certificate_authority_data
    );
    let config = Config::from_custom_kubeconfig(from_file, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = Client::try_from(config).unwrap();
    let names: Vec<_> = Api::<Namespace>::all(client)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.iter().any(|n| n == "kube-system"), "{names:?}");

    // `localhost` is in the certificate too.
    let port = env.url().unwrap().rsplit(':').next().unwrap().to_owned();
    let mut config = Config::new(format!("https://localhost:{port}").parse().unwrap());
    config.root_cert = env.ca_der().map(|d| vec![d.to_vec()]);
    Client::try_from(config)
        .unwrap()
        .apiserver_version()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_or_speaks_plain_http_is_refused() {
    let env = TestEnv::start().await.unwrap();
    let url: http::Uri = env.url().unwrap().parse().unwrap();
    // The system's roots: the self-signed CA is not among them.
    let untrusting = Client::try_from(Config::new(url.clone())).unwrap();
    let err = untrusting.apiserver_version().await.unwrap_err();
    assert!(format!("{err:?}").contains("UnknownIssuer"), "{err:?}");
    // Another CA does not do either.
    let other = ServingCert::generate(&[]).unwrap();
    let mut config = Config::new(url);
    config.root_cert = Some(vec![other.ca_der().to_vec()]);
    let err = Client::try_from(config)
        .unwrap()
        .apiserver_version()
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("BadSignature"), "{err:?}");

    // Plain HTTP on the TLS port gets no HTTP answer.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = env.url().unwrap().trim_start_matches("https://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut out)).await;
    assert!(!String::from_utf8_lossy(&out).contains("HTTP/1.1 200"));

    // The server still serves its trusting clients.
    env.client().apiserver_version().await.unwrap();
}

#[tokio::test]
async fn requests_without_credentials_are_anonymous_over_https_and_the_admin_over_http() {
    for insecure in [false, true] {
        let env = TestEnv::builder()
            .enforce_rbac(true)
            .insecure_http(insecure)
            .start()
            .await
            .unwrap();
        let mut config = Config::new(env.url().unwrap().parse().unwrap());
        config.root_cert = env.ca_der().map(|d| vec![d.to_vec()]);
        let no_token = Client::try_from(config).unwrap();
        let secrets = Api::<Secret>::all(no_token.clone())
            .list(&ListParams::default())
            .await;
        if insecure {
            secrets.unwrap();
        } else {
            let Err(kube::Error::Api(s)) = secrets else {
                panic!("{secrets:?}")
            };
            assert_eq!(s.code, 403);
            assert!(
                s.message.contains(r#"User "system:anonymous""#),
                "{}",
                s.message
            );
            // Anonymous may still read the version, as upstream's system:public-info-viewer.
            no_token.apiserver_version().await.unwrap();
        }
    }
}

#[tokio::test]
async fn identities_and_restarts_keep_working_over_https() {
    let mut env = TestEnv::builder().enforce_rbac(true).start().await.unwrap();
    let client = env.client_for(&sa()).unwrap();
    let denied = Api::<ConfigMap>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&denied, kube::Error::Api(s) if s.code == 403),
        "{denied:?}"
    );
    // Over HTTPS the identity's kubeconfig is its token alone, as one for kube-apiserver.
    let kubeconfig = env.kubeconfig_for(&sa());
    let user = kubeconfig.auth_infos[0].auth_info.as_ref().unwrap();
    assert!(user.token.is_some());
    assert_eq!(user.impersonate, None);
    assert_eq!(user.impersonate_groups, None);

    env.restart(capi_testkit::server::restart::Restart::KeepState)
        .await
        .unwrap();
    // Same certificate: the clients handed out before keep trusting the server.
    client.list_api_groups().await.unwrap();
    env.client().apiserver_version().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sends_a_service_accounts_token_over_https_and_gets_403_for_the_rest() {
    if !have_kubectl() {
        return;
    }
    let env = TestEnv::builder().enforce_rbac(true).start().await.unwrap();
    let admin = env.kubeconfig_path();
    let sa_kubeconfig = env.kubeconfig_path_for(&sa()).unwrap();
    let text = std::fs::read_to_string(&sa_kubeconfig).unwrap();
    assert!(text.contains("certificate-authority-data"), "{text}");
    assert!(!text.contains("as:"), "no impersonation over HTTPS: {text}");
    let port = env.url().unwrap().rsplit(':').next().unwrap().to_owned();
    let other_ca = admin.parent().unwrap().join("other-ca.crt");
    std::fs::write(&other_ca, ServingCert::generate(&[]).unwrap().ca_pem()).unwrap();
    tokio::task::spawn_blocking(move || {
        check_service_account_kubectl(&admin, &sa_kubeconfig);
        // Go's verifier accepts the certificate for localhost too.
        let server = format!("--server=https://localhost:{port}");
        let (ok, out) = kubectl(&sa_kubeconfig, &[&server, "get", "configmaps"], None);
        assert!(ok, "{out}");
        // Trusting another CA, kubectl refuses the server.
        let ca = format!("--certificate-authority={}", other_ca.display());
        let (ok, out) = kubectl(&sa_kubeconfig, &[&ca, "get", "configmaps"], None);
        assert!(
            !ok && out.contains("certificate signed by unknown authority"),
            "{out}"
        );
    })
    .await
    .unwrap();
}

/// The `capi-testkit` binary, when this test build has one (the `cli` feature, which
/// `cargo test --workspace` turns on through xtask).
fn binary() -> Option<PathBuf> {
    let bin = option_env!("CARGO_BIN_EXE_capi-testkit").map(PathBuf::from);
    if bin.is_none() {
        println!("skipped: no capi-testkit binary in this build (add --features cli)");
    }
    bin
}

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `capi-testkit serve` with `args` until every file of `wait_for` exists.
fn serve(bin: &Path, args: &[&str], wait_for: &[&Path]) -> Child {
    let mut child = Child(
        Command::new(bin)
            .arg("serve")
            .args(args)
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    // Written whole: a kubeconfig names its current context.
    let written =
        |p: &&Path| std::fs::read_to_string(p).is_ok_and(|t| t.contains("current-context"));
    while !wait_for.iter().all(written) {
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("capi-testkit serve exited: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "capi-testkit serve did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn serve_with_rbac_writes_service_account_kubeconfigs_kubectl_uses_over_https() {
    let Some(bin) = binary() else { return };
    if !have_kubectl() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("capi-testkit-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let admin = dir.join("admin.kubeconfig");
    let sa = dir.join("sa.kubeconfig");
    let sa_arg = format!("default/p={}", sa.display());
    let _server = serve(
        &bin,
        &[
            "--port",
            "0",
            "--rbac",
            "--kubeconfig",
            admin.to_str().unwrap(),
            "--kubeconfig-for-serviceaccount",
            &sa_arg,
        ],
        &[&admin, &sa],
    );
    let text = std::fs::read_to_string(&sa).unwrap();
    assert!(text.contains("server: https://127.0.0.1:"), "{text}");
    assert!(text.contains("certificate-authority-data"), "{text}");
    assert!(!text.contains("as:"), "{text}");
    check_service_account_kubectl(&admin, &sa);

    // `--insecure-http`: plain HTTP, no CA, and kubectl still acts as the ServiceAccount
    // (through impersonation, as it sends no token).
    let plain = dir.join("plain.kubeconfig");
    let plain_sa = dir.join("plain-sa.kubeconfig");
    let plain_sa_arg = format!("default/p={}", plain_sa.display());
    let _plain = serve(
        &bin,
        &[
            "--rbac",
            "--insecure-http",
            "--kubeconfig",
            plain.to_str().unwrap(),
            "--kubeconfig-for-serviceaccount",
            &plain_sa_arg,
        ],
        &[&plain, &plain_sa],
    );
    let text = std::fs::read_to_string(&plain).unwrap();
    assert!(text.contains("server: http://127.0.0.1:"), "{text}");
    assert!(!text.contains("certificate-authority-data"), "{text}");
    check_service_account_kubectl(&plain, &plain_sa);
    let _ = std::fs::remove_dir_all(&dir);
}
