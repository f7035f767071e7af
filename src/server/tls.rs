//! `--tls-cert`/`--tls-key`: the same protocol inside TLS (rustls, with
//! ring's cryptography). Certificates and key are PEM files; errors name
//! the file, never its contents.

use std::fmt::Display;
use std::path::Path;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{ServerConfig, version};

use crate::error::{Error, Result};

fn bad(path: &Path, what: &str, e: impl Display) -> Error {
    Error::invalid(format!("{}: {what}: {e}", path.display()))
}

#[expect(
    deprecated,
    reason = "ring builds in seconds where aws-lc-rs (rustls' post-quantum default) needs \
              minutes of C on our 2 cores; post-quantum key exchange is a later choice"
)]
fn provider() -> CryptoProvider {
    ring::default_provider()
}

/// A TLS acceptor for the certificate chain in `cert` and the private key
/// in `key`.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, "cannot read certificates", e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(cert, "cannot read certificates", e))?;
    if chain.is_empty() {
        return Err(bad(
            cert,
            "no certificate",
            "the file has no PEM CERTIFICATE",
        ));
    }
    let private =
        PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, "cannot read a private key", e))?;
    let config = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&version::TLS13, &version::TLS12])
        .map_err(|e| Error::invalid(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| bad(cert, "the certificate and key do not fit", e))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
