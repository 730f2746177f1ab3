//! HTTPS for the socket mode, as kube-apiserver serves: a CA and a serving certificate made
//! when the server starts (ECDSA P-256, by rcgen), served by rustls with the ring provider
//! (the one kube's `rustls-tls` + `ring` features already build), no client certificates asked
//! for. ALPN offers `h2` then `http/1.1`, as Go's server does: kubectl and other Go clients
//! speak HTTP/2 (watches are streams of one connection), kube-rs and clients offering no ALPN
//! HTTP/1.1. Plain HTTP sent to the port is answered as Go's `net/http` answers it:
//! `HTTP/1.0 400 Bad Request` and `Client sent an HTTP request to an HTTPS server.`, then the
//! connection closes.
//!
//! The serving certificate names `localhost`, `127.0.0.1`, `::1` and the names and addresses it
//! is made for ([`ServingCert::generate_for`]; `TestEnv` adds its bound address and
//! [`crate::env::TestEnvBuilder::tls_san`]s); clients trust it through the CA
//! ([`ServingCert::ca_pem`], which `TestEnv`'s kubeconfig carries as
//! `certificate-authority-data`).
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

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};

use super::connections::{self, ConnectionCounter, CutIo, Cuttable, Lifecycle, Protocol};

/// What Go's `net/http` writes on a TLS connection whose first record looks like plain HTTP,
/// before closing it (`(*conn).serve` in `server.go`).
const PLAIN_HTTP_ANSWER: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// How long the rest of such a request is read (and dropped) after the answer, so that closing
/// with unread bytes does not reset the connection before the client reads the answer.
const PLAIN_HTTP_DRAIN: Duration = Duration::from_secs(1);

/// Why the certificates or the TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Generating a key or signing a certificate failed.
    #[error("generating the serving certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// A subject alternative name that is neither an IP address nor a DNS name.
    #[error("{0:?} is neither an IP address nor a DNS name")]
    InvalidName(String),
}

/// A name the serving certificate is valid for: an IP address or a DNS name (`*.` wildcards
/// allowed), as `capi-testkit serve --tls-san` takes them.
///
/// ```
/// use capi_testkit::server::tls::SubjectAltName;
///
/// assert_eq!("10.0.0.7".parse::<SubjectAltName>()?, SubjectAltName::Ip("10.0.0.7".parse()?));
/// assert_eq!("API.example.test.".parse::<SubjectAltName>()?, SubjectAltName::Dns("api.example.test".into()));
/// assert!("not a name".parse::<SubjectAltName>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubjectAltName {
    /// An IP address (IPv4 or IPv6).
    Ip(IpAddr),
    /// A DNS name, lower case, without a trailing dot.
    Dns(String),
}

impl std::str::FromStr for SubjectAltName {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, TlsError> {
        let s = s.trim();
        // `[::1]`, as a URL writes an IPv6 host, is taken too.
        let bare = s
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(s);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(Self::Ip(ip));
        }
        let name = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
        let labels = name.strip_prefix("*.").unwrap_or(&name);
        let valid = !labels.is_empty()
            && name.len() <= 253
            && labels.split('.').all(|l| {
                (1..=63).contains(&l.len())
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if valid {
            Ok(Self::Dns(name))
        } else {
            Err(TlsError::InvalidName(s.to_owned()))
        }
    }
}

impl From<IpAddr> for SubjectAltName {
    fn from(ip: IpAddr) -> Self {
        Self::Ip(ip)
    }
}

impl std::fmt::Display for SubjectAltName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ip(ip) => ip.fmt(f),
            Self::Dns(name) => f.write_str(name),
        }
    }
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
    /// no client connects to them). [`ServingCert::generate_for`] takes DNS names too.
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
        let names: Vec<SubjectAltName> = addresses.iter().copied().map(Into::into).collect();
        Self::generate_for(&names)
    }

    /// A fresh CA (`capi-testkit-ca`) and a serving certificate it signed for `localhost`,
    /// `127.0.0.1`, `::1` and `names` (unspecified addresses left out, duplicates once).
    ///
    /// ```
    /// use capi_testkit::server::tls::{ServingCert, SubjectAltName};
    ///
    /// let names: Vec<SubjectAltName> =
    ///     vec!["192.168.1.20".parse()?, "api.example.test".parse()?];
    /// let cert = ServingCert::generate_for(&names)?;
    /// assert_eq!(
    ///     cert.subject_alt_names(),
    ///     ["localhost", "api.example.test", "127.0.0.1", "::1", "192.168.1.20"]
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`TlsError`] when a key cannot be generated or a certificate signed.
    pub fn generate_for(names: &[SubjectAltName]) -> Result<Self, TlsError> {
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
        let mut dns = vec!["localhost".to_owned()];
        for name in names {
            match name {
                SubjectAltName::Ip(ip) if !ip.is_unspecified() && !ips.contains(ip) => {
                    ips.push(*ip);
                }
                SubjectAltName::Dns(d) if !dns.contains(d) => dns.push(d.clone()),
                _ => {}
            }
        }
        let mut leaf = CertificateParams::new(dns.clone())?;
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
        // As Go's server once x/net/http2 is configured (kube-apiserver's): h2 first.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

        let mut sans = dns;
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

    /// The names and addresses the serving certificate is valid for: DNS names first
    /// (`localhost` the first), then IP addresses.
    pub fn subject_alt_names(&self) -> &[String] {
        &self.sans
    }

    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.clone())
    }
}

/// How much of a connection's first bytes is read at once to tell TLS from plain HTTP (Go
/// reads its first record header into a buffer too, and so takes a small request whole).
const FIRST_READ: usize = 4096;

/// A connection whose first bytes were read to tell TLS from plain HTTP, replaying them.
struct Replay<IO> {
    head: Vec<u8>,
    /// How much of `head` was read again already.
    pos: usize,
    io: IO,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Replay<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Some(rest) = this.head.get(this.pos..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.pos += n;
            if this.pos == this.head.len() {
                // Replayed: its buffer is not kept for the life of the connection.
                this.head = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Replay<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// What the first record header of a connection says it is, by crypto/tls's and net/http's
/// checks.
#[derive(Debug, PartialEq, Eq)]
enum FirstRecord {
    /// A TLS handshake or alert record (or an SSLv2 hello, which rustls refuses itself).
    Tls,
    /// One of the five starts net/http takes for a plain HTTP request
    /// (`tlsRecordHeaderLooksLikeHTTP`).
    PlainHttp,
    /// Anything else: crypto/tls's "first record does not look like a TLS handshake", closed
    /// without an answer.
    Other,
}

fn first_record(head: &[u8]) -> FirstRecord {
    match head.first_chunk::<5>().unwrap_or(&[0; 5]) {
        b"GET /" | b"HEAD " | b"POST " | b"PUT /" | b"OPTIO" => FirstRecord::PlainHttp,
        [0x80, ..] => FirstRecord::Tls,
        [0x15 | 0x16, major, ..] if *major < 0x10 => FirstRecord::Tls,
        _ => FirstRecord::Other,
    }
}

/// Answers a plain HTTP request on the TLS port as Go does, then closes the connection once
/// the client has had the answer (its request read to the end, for at most a second).
async fn refuse_plain_http(mut io: CutIo) {
    if io.write_all(PLAIN_HTTP_ANSWER).await.is_err() || io.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(PLAIN_HTTP_DRAIN, async {
        while matches!(io.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// A TLS connection ready for HTTP, or why there is none.
enum Accepted {
    Tls(Box<tokio_rustls::server::TlsStream<Replay<CutIo>>>),
    PlainHttp(CutIo),
    Failed(std::io::Error),
}

/// Reads the first record header of `io` and, if it is TLS, runs the handshake.
async fn accept(mut io: CutIo, acceptor: &TlsAcceptor) -> Accepted {
    let mut head = Vec::with_capacity(FIRST_READ);
    while head.len() < 5 {
        match io.read_buf(&mut head).await {
            Ok(0) => {
                return Accepted::Failed(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "closed before a first record header",
                ));
            }
            Ok(_) => {}
            Err(e) => return Accepted::Failed(e),
        }
    }
    match first_record(&head) {
        FirstRecord::PlainHttp => Accepted::PlainHttp(io),
        FirstRecord::Other => Accepted::Failed(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "first record does not look like a TLS handshake",
        )),
        FirstRecord::Tls => {
            let replay = Replay { head, pos: 0, io };
            match acceptor.accept(replay).await {
                Ok(stream) => Accepted::Tls(Box::new(stream)),
                Err(e) => Accepted::Failed(e),
            }
        }
    }
}

/// Serves `router` over TLS on `listener` until dropped or drained
/// ([`connections::serve_all`]). Each connection runs in its own task (a slow or silent client
/// does not hold up the others): its handshake, within the read-header timeout (as Go bounds
/// it), then HTTP/2 if ALPN chose `h2`, else HTTP/1.1.
pub(crate) async fn serve(
    listener: Cuttable,
    acceptor: TlsAcceptor,
    router: Router,
    counter: Arc<ConnectionCounter>,
    life: Lifecycle,
    drain: tokio_util::sync::CancellationToken,
) {
    let handshake_timeout: Duration = life.timeouts.read_header_timeout();
    connections::serve_all(listener, &life.clone(), drain, move |io, peer| {
        let (acceptor, router, counter, life) = (
            acceptor.clone(),
            router.clone(),
            counter.clone(),
            life.clone(),
        );
        async move {
            let accepted = tokio::time::timeout(handshake_timeout, accept(io, &acceptor)).await;
            match accepted {
                Ok(Accepted::Tls(stream)) => {
                    let protocol = match stream.get_ref().1.alpn_protocol() {
                        Some(b"h2") => Protocol::Http2,
                        _ => Protocol::Http1,
                    };
                    connections::serve(stream, peer, protocol, router, &counter, &life).await;
                }
                Ok(Accepted::PlainHttp(io)) => {
                    tracing::debug!(%peer, "plain HTTP on the TLS port: 400");
                    counter.count_plain_http_refused();
                    refuse_plain_http(io).await;
                }
                Ok(Accepted::Failed(e)) => {
                    counter.count_handshake_failed();
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                }
                Err(_) => {
                    counter.count_handshake_failed();
                    tracing::debug!(%peer, "TLS handshake timed out");
                }
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::{FirstRecord, SubjectAltName, first_record};

    #[test]
    fn first_records_are_told_apart_as_go_does() {
        assert_eq!(first_record(b"GET /"), FirstRecord::PlainHttp);
        assert_eq!(first_record(b"OPTIO"), FirstRecord::PlainHttp);
        assert_eq!(first_record(b"PUT /"), FirstRecord::PlainHttp);
        // net/http answers only these five starts; others close silently.
        assert_eq!(first_record(b"PATCH"), FirstRecord::Other);
        assert_eq!(first_record(b"GET h"), FirstRecord::Other);
        assert_eq!(first_record(&[0x16, 3, 1, 0, 200]), FirstRecord::Tls);
        assert_eq!(first_record(&[0x16, 0x10, 1, 0, 200]), FirstRecord::Other);
        assert_eq!(first_record(&[0x17, 3, 3, 0, 200]), FirstRecord::Other);
    }

    #[test]
    fn names_are_ips_or_dns_names() {
        let parse = |s: &str| s.parse::<SubjectAltName>().ok();
        assert_eq!(
            parse("[::1]"),
            Some(SubjectAltName::Ip(
                "::1"
                    .parse()
                    .unwrap_or(std::net::Ipv6Addr::UNSPECIFIED.into())
            ))
        );
        assert_eq!(
            parse("*.Example.test"),
            Some(SubjectAltName::Dns("*.example.test".into()))
        );
        for bad in [
            "",
            "a..b",
            "-a.b",
            "a_b",
            "*.",
            "has space",
            &"x".repeat(64),
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
