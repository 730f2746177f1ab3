//! RBAC enforcement: bearer tokens per identity, rules from stored Roles/ClusterRoles and their
//! bindings, 401/403 bodies as kube-apiserver writes them, self reviews, impersonation, and
//! kubectl with an identity's kubeconfig.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

use capi_testkit::env::{Identity, TestEnv};
use capi_testkit::server::auth::Unauthenticated;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    SelfSubjectRulesReview, SelfSubjectRulesReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, PostParams, WatchEvent, WatchParams,
};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Config};
use serde_json::{Value, json};

fn sa() -> Identity {
    Identity::service_account("default", "p")
}

const SA_NAME: &str = "system:serviceaccount:default:p";

async fn apply<K>(client: &Client, ns: Option<&str>, obj: Value) -> K
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns.unwrap_or("default"));
    api.create(
        &PostParams::default(),
        &serde_json::from_value(obj).unwrap(),
    )
    .await
    .unwrap()
}

async fn apply_cluster<K>(client: &Client, obj: Value) -> K
where
    K: kube::Resource<Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::all(client.clone());
    api.create(
        &PostParams::default(),
        &serde_json::from_value(obj).unwrap(),
    )
    .await
    .unwrap()
}

/// A Role in `ns` with `rules`, bound to the ServiceAccount default/p.
async fn grant(admin: &Client, ns: &str, name: &str, rules: Value) {
    apply::<Role>(
        admin,
        Some(ns),
        json!({"metadata": {"name": name, "namespace": ns}, "rules": rules}),
    )
    .await;
    apply::<RoleBinding>(
        admin,
        Some(ns),
        json!({
            "metadata": {"name": name, "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": "p", "namespace": "default"}],
        }),
    )
    .await;
}

async fn namespace(admin: &Client, name: &str) {
    apply_cluster::<Namespace>(admin, json!({"metadata": {"name": name}})).await;
}

fn status(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("not an API error: {other}"),
    }
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"a": "b"}})).unwrap()
}

async fn rbac_env() -> TestEnv {
    TestEnv::builder()
        .enforce_rbac(true)
        .crds(capi_core::crd::core_crds().unwrap())
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_service_account_may_do_what_its_role_grants_and_gets_upstreams_403_for_the_rest() {
    let env = rbac_env().await;
    let admin = env.client();
    grant(&admin, "default", "cm-rw", json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch", "create"]}])).await;
    let client = env.client_for(&sa()).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("c1")).await.unwrap();
    assert_eq!(cms.get("c1").await.unwrap().data.unwrap()["a"], "b");
    assert_eq!(
        cms.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );

    let denied = status(
        cms.delete("c1", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(denied.code, 403);
    assert_eq!(denied.reason, "Forbidden");
    assert_eq!(
        denied.message,
        format!(
            r#"configmaps "c1" is forbidden: User "{SA_NAME}" cannot delete resource "configmaps" in API group "" in the namespace "default""#
        )
    );
    let details = denied.details.unwrap();
    assert_eq!(
        (
            details.name.as_str(),
            details.group.as_str(),
            details.kind.as_str()
        ),
        ("c1", "", "configmaps")
    );

    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let denied = status(secrets.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(
        denied.message,
        format!(
            r#"secrets is forbidden: User "{SA_NAME}" cannot list resource "secrets" in API group "" in the namespace "default""#
        )
    );
    let elsewhere: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    let denied = status(elsewhere.list(&ListParams::default()).await.unwrap_err());
    assert!(
        denied
            .message
            .ends_with(r#"in the namespace "kube-system""#),
        "{}",
        denied.message
    );
    let all: Api<ConfigMap> = Api::all(client.clone());
    let denied = status(all.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(
        denied.message,
        format!(
            r#"configmaps is forbidden: User "{SA_NAME}" cannot list resource "configmaps" in API group "" at the cluster scope"#
        )
    );
    let namespaces: Api<Namespace> = Api::all(client);
    let denied = status(namespaces.get("default").await.unwrap_err());
    assert_eq!(
        denied.message,
        format!(
            r#"namespaces "default" is forbidden: User "{SA_NAME}" cannot get resource "namespaces" in API group "" in the namespace "default""#
        )
    );
}

#[tokio::test]
async fn watches_and_lists_obey_the_same_rules() {
    let env = rbac_env().await;
    let admin = env.client();
    grant(
        &admin,
        "default",
        "cm-watch",
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list", "watch"]}]),
    )
    .await;
    let client = env.client_for(&sa()).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let rv = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    Api::<ConfigMap>::namespaced(admin.clone(), "default")
        .create(&PostParams::default(), &cm("seen"))
        .await
        .unwrap();
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(event, Some(WatchEvent::Added(c)) if c.metadata.name.as_deref() == Some("seen"))
    );

    // A get is another verb; a watch elsewhere is refused before it starts.
    let denied = status(cms.get("seen").await.unwrap_err());
    assert!(
        denied
            .message
            .contains("cannot get resource \"configmaps\""),
        "{}",
        denied.message
    );
    let other: Api<ConfigMap> = Api::namespaced(client, "kube-system");
    let denied = status(
        other
            .watch(&WatchParams::default(), "0")
            .await
            .err()
            .unwrap(),
    );
    assert_eq!(
        denied.message,
        format!(
            r#"configmaps is forbidden: User "{SA_NAME}" cannot watch resource "configmaps" in API group "" in the namespace "kube-system""#
        )
    );
}

#[tokio::test]
async fn a_cluster_role_bound_by_a_role_binding_grants_only_in_that_namespace() {
    let env = rbac_env().await;
    let admin = env.client();
    namespace(&admin, "team-a").await;
    apply_cluster::<ClusterRole>(&admin, json!({"metadata": {"name": "cm-reader"}, "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]})).await;
    apply::<RoleBinding>(
        &admin,
        Some("team-a"),
        json!({
            "metadata": {"name": "read", "namespace": "team-a"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cm-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "p", "namespace": "default"}],
        }),
    )
    .await;
    let client = env.client_for(&sa()).unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), "team-a")
        .list(&ListParams::default())
        .await
        .unwrap();
    let denied = status(
        Api::<ConfigMap>::namespaced(client.clone(), "default")
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(denied.code, 403);
    let denied = status(
        Api::<ConfigMap>::all(client.clone())
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert!(
        denied.message.ends_with("at the cluster scope"),
        "{}",
        denied.message
    );

    // A ClusterRoleBinding grants everywhere, all namespaces at once included.
    apply_cluster::<ClusterRoleBinding>(
        &admin,
        json!({
            "metadata": {"name": "read-all"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cm-reader"},
            "subjects": [{"kind": "Group", "name": "system:serviceaccounts:default"}],
        }),
    )
    .await;
    Api::<ConfigMap>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    Api::<ConfigMap>::namespaced(client, "default")
        .list(&ListParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn subresources_resource_names_and_missing_roles_are_judged_as_upstream() {
    let env = rbac_env().await;
    let admin = env.client();
    grant(
        &admin,
        "default",
        "machines",
        json!([
            {"apiGroups": ["cluster.x-k8s.io"], "resources": ["machines"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["mine"], "verbs": ["get", "list"]},
        ]),
    )
    .await;
    let client = env.client_for(&sa()).unwrap();
    let gvk = GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta2", "Machine");
    let machines: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &ApiResource::from_gvk(&gvk));
    // Allowed, so the store answers: there is no such machine.
    assert_eq!(status(machines.get("m1").await.unwrap_err()).code, 404);
    let denied = status(machines.get_status("m1").await.unwrap_err());
    assert_eq!(
        denied.message,
        format!(
            r#"machines.cluster.x-k8s.io "m1" is forbidden: User "{SA_NAME}" cannot get resource "machines/status" in API group "cluster.x-k8s.io" in the namespace "default""#
        )
    );
    let details = denied.details.unwrap();
    assert_eq!(
        (
            details.name.as_str(),
            details.group.as_str(),
            details.kind.as_str()
        ),
        ("m1", "cluster.x-k8s.io", "machines")
    );

    // resourceNames: one object, also through a list narrowed to it by metadata.name.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    assert_eq!(status(cms.get("mine").await.unwrap_err()).code, 404);
    assert_eq!(status(cms.get("theirs").await.unwrap_err()).code, 403);
    cms.list(&ListParams::default().fields("metadata.name=mine"))
        .await
        .unwrap();
    assert_eq!(
        status(cms.list(&ListParams::default()).await.unwrap_err()).code,
        403
    );

    // A binding to a role that does not exist says so in the denial.
    apply::<RoleBinding>(
        &admin,
        Some("default"),
        json!({
            "metadata": {"name": "ghostly", "namespace": "default"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ghost"},
            "subjects": [{"kind": "User", "name": SA_NAME}],
        }),
    )
    .await;
    let denied = status(
        Api::<Secret>::namespaced(client, "default")
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        denied.message,
        format!(
            r#"secrets is forbidden: User "{SA_NAME}" cannot list resource "secrets" in API group "" in the namespace "default": RBAC: role.rbac.authorization.k8s.io "ghost" not found"#
        )
    );
}

#[tokio::test]
async fn aggregated_cluster_roles_grant_the_rules_of_the_roles_they_select() {
    let env = rbac_env().await;
    let admin = env.client();
    apply_cluster::<ClusterRole>(
        &admin,
        json!({"metadata": {"name": "view-ish"}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"example.com/aggregate-to-view": "true"}}]}}),
    )
    .await;
    apply_cluster::<ClusterRoleBinding>(
        &admin,
        json!({
            "metadata": {"name": "view-ish"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view-ish"},
            "subjects": [{"kind": "ServiceAccount", "name": "p", "namespace": "default"}],
        }),
    )
    .await;
    let client = env.client_for(&sa()).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    assert_eq!(
        status(cms.list(&ListParams::default()).await.unwrap_err()).code,
        403
    );
    apply_cluster::<ClusterRole>(
        &admin,
        json!({"metadata": {"name": "cm-view", "labels": {"example.com/aggregate-to-view": "true"}}, "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]}),
    )
    .await;
    cms.list(&ListParams::default()).await.unwrap();
}

#[tokio::test]
async fn unknown_tokens_get_401_and_requests_without_one_are_anonymous_if_asked() {
    // Plain HTTP: over HTTPS (the default) a request without credentials is anonymous from the
    // start (tests/tls.rs).
    let env = TestEnv::builder()
        .enforce_rbac(true)
        .insecure_http(true)
        .start()
        .await
        .unwrap();
    // Without credentials: the administrator by default (client-go sends none over HTTP).
    let url: http::Uri = env.url().unwrap().parse().unwrap();
    let no_token = Client::try_from(Config::new(url)).unwrap();
    Api::<Secret>::all(no_token.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    env.server()
        .auth()
        .set_unauthenticated(Unauthenticated::Anonymous);
    let mut config = Config::new(env.url().unwrap().parse().unwrap());
    config.auth_info.token = Some("not-issued".to_owned().into());
    let bad = Client::try_from(config).unwrap();
    let denied = status(
        Api::<ConfigMap>::namespaced(bad, "default")
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (denied.code, denied.reason.as_str(), denied.message.as_str()),
        (401, "Unauthorized", "Unauthorized")
    );

    let anonymous = no_token;
    // system:public-info-viewer is bound to system:unauthenticated; discovery is not.
    anonymous.apiserver_version().await.unwrap();
    let denied = status(anonymous.list_api_groups().await.unwrap_err());
    assert_eq!(
        denied.message,
        r#"forbidden: User "system:anonymous" cannot get path "/apis""#
    );
    let denied = status(
        Api::<ConfigMap>::namespaced(anonymous, "default")
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert!(
        denied
            .message
            .contains(r#"User "system:anonymous" cannot list"#),
        "{}",
        denied.message
    );
}

#[tokio::test]
async fn any_identity_can_discover_and_the_admin_stays_all_powerful() {
    let env = TestEnv::builder()
        .enforce_rbac(true)
        .in_process()
        .crds(capi_core::crd::core_crds().unwrap())
        .start()
        .await
        .unwrap();
    let client = env.client_for(&Identity::user("jane")).unwrap();
    let discovery = kube::discovery::Discovery::new(client).run().await.unwrap();
    assert!(discovery.groups().any(|g| g.name() == "cluster.x-k8s.io"));
    // The admin: every namespace, every kind, RBAC objects included.
    let admin = env.client();
    Api::<ConfigMap>::all(admin.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    let roles = Api::<ClusterRole>::all(admin)
        .list(&ListParams::default())
        .await
        .unwrap();
    let names: Vec<_> = roles
        .items
        .iter()
        .filter_map(|r| r.metadata.name.as_deref())
        .collect();
    assert!(
        names.contains(&"system:discovery") && names.contains(&"cluster-admin"),
        "{names:?}"
    );
}

#[tokio::test]
async fn self_reviews_answer_for_the_caller() {
    let env = rbac_env().await;
    grant(
        &env.client(),
        "default",
        "cm-list",
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]),
    )
    .await;
    let client = env.client_for(&sa()).unwrap();
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let ask = |verb: &str, resource: &str| SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some("default".into()),
                verb: Some(verb.into()),
                resource: Some(resource.into()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let yes = reviews
        .create(&PostParams::default(), &ask("list", "configmaps"))
        .await
        .unwrap();
    let yes = yes.status.unwrap();
    assert!(yes.allowed);
    assert_eq!(
        yes.reason.as_deref(),
        Some(
            r#"RBAC: allowed by RoleBinding "cm-list/default" of Role "cm-list" to ServiceAccount "p/default""#
        )
    );
    let no = reviews
        .create(&PostParams::default(), &ask("delete", "configmaps"))
        .await
        .unwrap();
    assert!(!no.status.unwrap().allowed);

    let rules: Api<SelfSubjectRulesReview> = Api::all(client.clone());
    let review = SelfSubjectRulesReview {
        spec: SelfSubjectRulesReviewSpec {
            namespace: Some("default".into()),
        },
        ..SelfSubjectRulesReview::default()
    };
    let status = rules
        .create(&PostParams::default(), &review)
        .await
        .unwrap()
        .status
        .unwrap();
    assert!(
        status
            .resource_rules
            .iter()
            .any(|r| r.resources.as_deref() == Some(&["configmaps".to_owned()][..]))
    );
    assert!(status.non_resource_rules.iter().any(|r| {
        r.non_resource_urls
            .as_ref()
            .is_some_and(|u| u.contains(&"/apis/*".to_owned()))
    }));

    let whoami: Value = client
        .request(
            http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
                .header("Content-Type", "application/json")
                .body(
                    br#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#
                        .to_vec(),
                )
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(whoami["status"]["userInfo"]["username"], SA_NAME);
}

#[tokio::test]
async fn impersonation_needs_permission_and_then_acts_as_the_impersonated_identity() {
    let env = rbac_env().await;
    let admin = env.client();
    grant(
        &admin,
        "default",
        "cm-list",
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]),
    )
    .await;
    let as_sa = |path: &str| {
        http::Request::get(path)
            .header("Impersonate-User", SA_NAME)
            .body(Vec::new())
            .unwrap()
    };
    // The admin may impersonate anyone, and is then refused what the ServiceAccount is.
    let list: Value = admin
        .request(as_sa("/api/v1/namespaces/default/configmaps"))
        .await
        .unwrap();
    assert_eq!(list["kind"], "ConfigMapList");
    let denied = status(
        admin
            .request::<Value>(as_sa("/api/v1/namespaces/default/secrets"))
            .await
            .unwrap_err(),
    );
    assert!(
        denied
            .message
            .starts_with(&format!(r#"secrets is forbidden: User "{SA_NAME}""#)),
        "{}",
        denied.message
    );
    // The ServiceAccount may not impersonate.
    let client = env.client_for(&sa()).unwrap();
    let req = http::Request::get("/api/v1/namespaces/default/configmaps")
        .header("Impersonate-User", "jane")
        .body(Vec::new())
        .unwrap();
    let denied = status(client.request::<Value>(req).await.unwrap_err());
    assert_eq!(
        denied.message,
        format!(
            r#"users "jane" is forbidden: User "{SA_NAME}" cannot impersonate resource "users" in API group "" at the cluster scope"#
        )
    );
}

#[tokio::test]
async fn without_enforcement_every_identity_may_do_anything() {
    let env = TestEnv::builder().in_process().start().await.unwrap();
    let client = env.client_for(&sa()).unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "kube-system");
    secrets.list(&ListParams::default()).await.unwrap();
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some("delete".into()),
                resource: Some("nodes".into()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let answer = Api::<SelfSubjectAccessReview>::all(client)
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    assert!(answer.status.unwrap().allowed);
}

fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_with_a_service_accounts_kubeconfig_is_refused_as_upstream() {
    if support::kubectl_missing() {
        return;
    }
    let env = rbac_env().await;
    grant(
        &env.client(),
        "default",
        "cm-list",
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]),
    )
    .await;
    let sa_kubeconfig = env.kubeconfig_path_for(&sa()).unwrap();
    let admin_kubeconfig = env.kubeconfig_path();
    tokio::task::spawn_blocking(move || {
        let (ok, out) = kubectl(&sa_kubeconfig, &["auth", "can-i", "list", "configmaps"]);
        assert!(ok && out.trim() == "yes", "{out}");
        let (ok, out) = kubectl(&sa_kubeconfig, &["auth", "can-i", "list", "secrets"]);
        assert!(!ok && out.trim() == "no", "{out}");
        let (ok, out) = kubectl(&sa_kubeconfig, &["get", "configmaps"]);
        assert!(ok, "{out}");
        let refused = format!(r#"Error from server (Forbidden): secrets is forbidden: User "{SA_NAME}" cannot list resource "secrets" in API group "" in the namespace "default""#);
        let (ok, out) = kubectl(&sa_kubeconfig, &["get", "secrets"]);
        assert!(!ok && out.contains(&refused), "{out}");
        let (ok, out) = kubectl(&sa_kubeconfig, &["auth", "whoami"]);
        assert!(ok && out.contains(SA_NAME), "{out}");
        // The admin impersonating the ServiceAccount is refused the same.
        let (ok, out) = kubectl(&admin_kubeconfig, &["--as", SA_NAME, "get", "secrets"]);
        assert!(!ok && out.contains(&refused), "{out}");
        let (ok, out) = kubectl(&admin_kubeconfig, &["auth", "can-i", "list", "secrets", "--as", SA_NAME]);
        assert!(!ok && out.trim() == "no", "{out}");
        let (ok, out) = kubectl(&admin_kubeconfig, &["get", "secrets", "-A"]);
        assert!(ok, "{out}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn tokens_and_enforcement_survive_a_restart_with_an_empty_store() {
    let mut env = rbac_env().await;
    let client = env.client_for(&sa()).unwrap();
    env.restart(capi_testkit::server::restart::Restart::EmptyStore)
        .await
        .unwrap();
    // The token still authenticates, the default policy is back (discovery), and the
    // bindings of the old store are gone.
    client.list_api_groups().await.unwrap();
    let denied = status(
        Api::<ConfigMap>::namespaced(client, "default")
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(denied.code, 403);
    Api::<Secret>::all(env.client())
        .list(&ListParams::default())
        .await
        .unwrap();
}
