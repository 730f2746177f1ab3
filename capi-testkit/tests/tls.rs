//! HTTPS on the socket, as kube-apiserver serves: the kubeconfig carries the CA, kube-rs and
//! kubectl trust it, kubectl sends a ServiceAccount's bearer token (which it would not over
//! plain HTTP) and gets upstream's 403 for what the role does not allow; `capi-testkit serve`
//! does the same. kubectl parts are skipped with a printed reason where it is not installed.

#![allow(clippy::unwrap_used)]

mod support;

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
    let (ok, out) = support::kubectl(admin, &["apply", "-f", "-"], Some(GRANT));
    assert!(ok, "{out}");
    let (ok, out) = support::kubectl(
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
    let (ok, out) = support::kubectl(sa, &["get", "configmaps"], None);
    assert!(ok, "{out}");
    let (ok, out) = support::kubectl(sa, &["get", "secrets"], None);
    assert!(!ok && out.contains(&refused()), "{out}");
    let (ok, out) = support::kubectl(sa, &["auth", "can-i", "list", "secrets"], None);
    assert!(!ok && out.trim() == "no", "{out}");
    let (ok, out) = support::kubectl(admin, &["get", "secrets", "-A"], None);
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

    // Plain HTTP on the TLS port gets Go's answer, then the connection closes.
    let addr = env.url().unwrap().trim_start_matches("https://").to_owned();
    let request = b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(
        raw_exchange(&addr, request).await,
        b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
    );
    let post = b"POST /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
    assert!(
        raw_exchange(&addr, post)
            .await
            .starts_with(b"HTTP/1.0 400 Bad Request\r\n")
    );
    // Starts net/http does not take for HTTP, and other bytes, are closed on with no answer.
    let patch = b"PATCH /api/v1/namespaces/x HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(raw_exchange(&addr, patch).await, b"");
    assert_eq!(raw_exchange(&addr, b"\x00\x01\x02\x03\x04hello").await, b"");
    let counts = env.server().connections();
    assert_eq!(counts.plain_http_refused(), 2);
    assert!(counts.handshakes_failed() >= 2);

    // The server still serves its trusting clients.
    env.client().apiserver_version().await.unwrap();
}

/// Sends `bytes` on a new connection to `addr` and reads until the server closes it.
async fn raw_exchange(addr: &str, bytes: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut out))
        .await
        .expect("the server closes the connection")
        .unwrap();
    out
}

/// A client of `url` trusting `env`'s CA, verifying the certificate for `server_name` (the
/// URL's host when `None`).
fn client_of(env: &TestEnv, url: &str, server_name: Option<&str>) -> Client {
    let mut config = Config::new(url.parse().unwrap());
    config.root_cert = env.ca_der().map(|d| vec![d.to_vec()]);
    config.tls_server_name = server_name.map(Into::into);
    config.auth_info.token = Some(env.server().auth().admin_token().to_owned().into());
    Client::try_from(config).unwrap()
}

#[tokio::test]
async fn a_server_bound_to_another_loopback_address_is_verified_for_it() {
    // 127.0.0.2 is loopback on Linux but not in the default names: the bound address is added.
    let env = TestEnv::builder()
        .address("127.0.0.2:0".parse().unwrap())
        .start()
        .await
        .unwrap();
    let url = env.url().unwrap();
    assert!(url.starts_with("https://127.0.0.2:"), "{url}");
    assert!(
        env.subject_alt_names()
            .unwrap()
            .iter()
            .any(|s| s == "127.0.0.2")
    );
    let kubeconfig = Kubeconfig::read_from(env.kubeconfig_path()).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config)
        .unwrap()
        .apiserver_version()
        .await
        .unwrap();
    env.client().apiserver_version().await.unwrap();
}

#[tokio::test]
async fn tls_sans_name_the_server_for_clients_reaching_it_by_other_names() {
    let env = TestEnv::builder()
        .address("0.0.0.0:0".parse().unwrap())
        .tls_san("127.0.0.3")
        .tls_san("API.capi-testkit.test")
        .start()
        .await
        .unwrap();
    // Bound to every address: clients here are pointed at loopback.
    let url = env.url().unwrap();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let port = url.rsplit(':').next().unwrap().to_owned();
    let names = env.subject_alt_names().unwrap();
    for name in [
        "localhost",
        "127.0.0.1",
        "127.0.0.3",
        "api.capi-testkit.test",
    ] {
        assert!(names.iter().any(|s| s == name), "{name} in {names:?}");
    }
    assert!(!names.iter().any(|s| s == "0.0.0.0"), "{names:?}");
    env.client().apiserver_version().await.unwrap();

    // Verification on: the SAN IP is accepted, another loopback address is not.
    let by_ip = client_of(&env, &format!("https://127.0.0.3:{port}"), None);
    by_ip.apiserver_version().await.unwrap();
    let err = client_of(&env, &format!("https://127.0.0.4:{port}"), None)
        .apiserver_version()
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("NotValidForName"), "{err:?}");
    // The DNS SAN, as a client resolving it to this machine verifies it.
    let by_name = client_of(&env, &url, Some("api.capi-testkit.test"));
    by_name.apiserver_version().await.unwrap();
    let err = client_of(&env, &url, Some("other.capi-testkit.test"))
        .apiserver_version()
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("NotValidForName"), "{err:?}");

    // A name that is neither an address nor a DNS name is refused at start.
    let bad = TestEnv::builder().tls_san("not a name").start().await;
    assert!(
        matches!(&bad, Err(capi_testkit::env::EnvError::Tls(_))),
        "{bad:?}"
    );
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
    if support::kubectl_missing() {
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
        let (ok, out) = support::kubectl(&sa_kubeconfig, &[&server, "get", "configmaps"], None);
        assert!(ok, "{out}");
        // Trusting another CA, kubectl refuses the server.
        let ca = format!("--certificate-authority={}", other_ca.display());
        let (ok, out) = support::kubectl(&sa_kubeconfig, &[&ca, "get", "configmaps"], None);
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
    if support::kubectl_missing() {
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

#[test]
fn serve_on_every_address_with_tls_sans_is_verified_by_kubectl_for_each_name() {
    let Some(bin) = binary() else { return };
    // A name that is neither an address nor a DNS name, and a SAN over plain HTTP, are refused.
    for args in [
        &["--tls-san", "not a name"][..],
        &["--tls-san", "10.0.0.1", "--insecure-http"],
    ] {
        let out = Command::new(&bin)
            .args(["serve", "--kubeconfig", "/nonexistent/kubeconfig"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}: {out:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
    if support::kubectl_missing() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("capi-testkit-tls-san-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    let _server = serve(
        &bin,
        &[
            "--address",
            "0.0.0.0",
            "--tls-san",
            "127.0.0.3",
            "--tls-san",
            "api.capi-testkit.test",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
        &[&kubeconfig],
    );
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    let server = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .unwrap()
        .to_owned();
    assert!(server.starts_with("https://127.0.0.1:"), "{text}");
    let port = server.rsplit(':').next().unwrap();
    let (ok, out) = support::kubectl(&kubeconfig, &["get", "namespaces"], None);
    assert!(ok && out.contains("kube-system"), "{out}");
    let by_ip = format!("--server=https://127.0.0.3:{port}");
    let (ok, out) = support::kubectl(&kubeconfig, &[&by_ip, "get", "namespaces"], None);
    assert!(ok && out.contains("kube-system"), "{out}");
    let (ok, out) = support::kubectl(
        &kubeconfig,
        &[
            "--tls-server-name=api.capi-testkit.test",
            "get",
            "namespaces",
        ],
        None,
    );
    assert!(ok && out.contains("kube-system"), "{out}");
    let (ok, out) = support::kubectl(
        &kubeconfig,
        &[
            "--tls-server-name=other.capi-testkit.test",
            "get",
            "namespaces",
        ],
        None,
    );
    assert!(
        !ok && out.contains("x509: certificate is valid for"),
        "{out}"
    );
    let not_named = format!("--server=https://127.0.0.4:{port}");
    let (ok, out) = support::kubectl(&kubeconfig, &[&not_named, "get", "namespaces"], None);
    assert!(!ok && out.contains("127.0.0.4"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
