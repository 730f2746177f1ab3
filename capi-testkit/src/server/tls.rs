//! HTTPS for the socket mode, as kube-apiserver serves: a CA and a serving certificate made
//! when the server starts (ECDSA P-256, by rcgen), served by rustls with the ring provider
//! (the one kube's `rustls-tls` + `ring` features already build), HTTP/1.1 by ALPN, no client
//! certificates asked for.
//!
//! The serving certificate names `localhost`, `127.0.0.1`, `::1` and the addresses it is made
//! for; clients trust it through the CA ([`ServingCert::ca_pem`], which
//! `TestEnv`'s kubeconfig carries as `certificate-authority-data`).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use capi_testkit::server::Server;
//! use capi_testkit::server::tls::ServingCert;
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let cert = ServingCert::generate(&[addr.ip()])?;
//! assert!(cert.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
//! let handle = Server::new().serve_tls(listener, &cert);
//!
//! let mut config = kube::Config::new(format!("https://{addr}").parse()?);
//! config.root_cert = Some(vec![cert.ca_der().to_vec()]);
//! let client = kube::Client::try_from(config)?;
//! client.apiserver_version().await?;
//! handle.abort();
//! # Ok(())
//! # }
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;

use super::connections::{CutIo, Cuttable};

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshaken connections waiting for the HTTP server to take them.
const BACKLOG: usize = 64;

/// Why the certificates or the TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Generating a key or signing a certificate failed.
    #[error("generating the serving certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A CA and the serving certificate it signed, with the rustls configuration serving it.
///
/// Cloning is cheap (the configuration is shared). The private keys stay inside the rustls
/// configuration: nothing here prints or returns them.
#[derive(Clone)]
pub struct ServingCert {
    ca_pem: Arc<str>,
    ca_der: Arc<[u8]>,
    sans: Arc<[String]>,
    config: Arc<ServerConfig>,
}

impl std::fmt::Debug for ServingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingCert")
            .field("sans", &self.sans)
            .finish_non_exhaustive()
    }
}

impl ServingCert {
    /// A fresh CA (`capi-testkit-ca`) and a serving certificate it signed for `localhost`,
    /// `127.0.0.1`, `::1` and `addresses` (unspecified ones, `0.0.0.0` and `::`, are left out:
    /// no client connects to them).
    ///
    /// ```
    /// use capi_testkit::server::tls::ServingCert;
    ///
    /// let cert = ServingCert::generate(&["10.0.0.7".parse()?])?;
    /// assert!(cert.subject_alt_names().iter().any(|s| s == "10.0.0.7"));
    /// assert!(cert.subject_alt_names().iter().any(|s| s == "localhost"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`TlsError`] when a key cannot be generated or a certificate signed.
    pub fn generate(addresses: &[IpAddr]) -> Result<Self, TlsError> {
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::default();
        ca.distinguished_name = rcgen::DistinguishedName::new();
        ca.distinguished_name
            .push(DnType::CommonName, "capi-testkit-ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca, ca_key);

        let mut ips = vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        for ip in addresses {
            if !ip.is_unspecified() && !ips.contains(ip) {
                ips.push(*ip);
            }
        }
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned()])?;
        leaf.subject_alt_names
            .extend(ips.iter().copied().map(SanType::IpAddress));
        leaf.distinguished_name = rcgen::DistinguishedName::new();
        leaf.distinguished_name
            .push(DnType::CommonName, "capi-testkit");
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.use_authority_key_identifier_extension = true;
        let leaf_key = KeyPair::generate()?;
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;

        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        // The provider named, not the process default: another crate turning on aws-lc-rs in
        // rustls must not make this ambiguous.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![leaf_cert.der().clone()], key)?;
        // The server speaks HTTP/1.1 only; clients offering h2 fall back to it.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];

        let mut sans = vec!["localhost".to_owned()];
        sans.extend(ips.iter().map(ToString::to_string));
        Ok(Self {
            ca_pem: ca_cert.pem().into(),
            ca_der: ca_cert.der().to_vec().into(),
            sans: sans.into(),
            config: Arc::new(config),
        })
    }

    /// The CA certificate, PEM-encoded (what a kubeconfig's `certificate-authority-data`
    /// holds, base64-encoded once more).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate, DER-encoded (for `kube::Config::root_cert`).
    pub fn ca_der(&self) -> &[u8] {
        &self.ca_der
    }

    /// The names and addresses the serving certificate is valid for.
    pub fn subject_alt_names(&self) -> &[String] {
        &self.sans
    }

    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.clone())
    }
}

/// Connections whose TLS handshake is done, as the HTTP server's listener.
struct Handshaken {
    rx: mpsc::Receiver<(TlsStream<CutIo>, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for Handshaken {
    type Io = TlsStream<CutIo>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // Only once the accept loop ended, which it does not while the server runs.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Serves `router` over TLS on `listener` until dropped. Handshakes run concurrently, each in
/// its own task (a slow or silent client does not hold up the others), then the connection
/// goes to axum as a plain one would.
pub(crate) async fn serve(
    listener: Cuttable,
    acceptor: TlsAcceptor,
    router: Router,
) -> std::io::Result<()> {
    let local = axum::serve::Listener::local_addr(&listener)?;
    let (tx, rx) = mpsc::channel(BACKLOG);
    let accept = async move {
        let mut listener = listener;
        loop {
            let (io, peer) = axum::serve::Listener::accept(&mut listener).await;
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send((stream, peer)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    };
    let http = axum::serve(Handshaken { rx, local }, router);
    tokio::select! {
        r = std::future::IntoFuture::into_future(http) => r,
        () = accept => Ok(()),
    }
}
