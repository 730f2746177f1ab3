//! kube clients that present a bearer token: over HTTP (kube's own token auth) or in process
//! (a tower layer setting the `Authorization` header on each request).

use std::task::{Context, Poll};

use axum::Router;
use axum::http::{HeaderValue, Request, header};
use kube::{Client, Config};

/// Sets `Authorization: Bearer <token>` on every request to the inner service.
#[derive(Debug, Clone)]
pub(crate) struct WithBearer<S> {
    inner: S,
    value: HeaderValue,
}

impl<S, B> tower::Service<Request<B>> for WithBearer<S>
where
    S: tower::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        req.headers_mut()
            .insert(header::AUTHORIZATION, self.value.clone());
        self.inner.call(req)
    }
}

/// A client of `router` (no socket) presenting `token`, default namespace `namespace`.
pub(crate) fn in_process(router: Router, token: &str, namespace: &str) -> Client {
    match HeaderValue::from_str(&format!("Bearer {token}")) {
        Ok(mut value) => {
            value.set_sensitive(true);
            Client::new(
                WithBearer {
                    inner: router,
                    value,
                },
                namespace,
            )
        }
        // Issued tokens are hex; anything else would be anonymous rather than a panic.
        Err(_) => Client::new(router, namespace),
    }
}

/// A client of `url` presenting `token`, default namespace `namespace`, without kube's
/// retries (injected 429/503s must reach the test).
pub(crate) fn over_http(
    url: http::Uri,
    token: &str,
    namespace: &str,
) -> Result<Client, kube::Error> {
    let mut config = Config::new(url);
    config.default_retry = false;
    config.default_namespace = namespace.to_owned();
    config.auth_info.token = Some(token.to_owned().into());
    Client::try_from(config)
}
