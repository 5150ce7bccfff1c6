//! The TLS settings of the connections Satchel makes as a client: to a
//! smarthost or an MX (the relay) and to PostgreSQL (the store). Verified
//! connections check the server's certificate against Mozilla's roots
//! (webpki-root-certs, so that no system store is needed) or a CA the
//! admin names; opportunistic ones take any certificate and only keep
//! passive listeners out.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;

/// A verified connection: the server's certificate must be valid for its
/// name and signed by one of Mozilla's roots or by a CA in `extra_ca` (a
/// private relay's or database's).
pub fn verified_tls(
    extra_ca: &[rustls_pki_types::CertificateDer<'static>],
) -> Result<Arc<ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let (_, ignored) =
        roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
    if ignored > 0 {
        tracing::debug!("{ignored} built-in root certificates could not be read");
    }
    for ca in extra_ca {
        roots
            .add(ca.clone())
            .map_err(|e| format!("the CA certificate is not usable: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// [`verified_tls`] with the CA certificates of a PEM file.
pub fn verified_tls_with_ca(path: &std::path::Path) -> Result<Arc<ClientConfig>, String> {
    use rustls_pki_types::pem::PemObject;
    let cas = rustls_pki_types::CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read PEM certificates: {e}"))?;
    if cas.is_empty() {
        return Err("there is no certificate in it".into());
    }
    verified_tls(&cas)
}

/// An opportunistic connection (RFC 7435; for mail, RFC 3207 4.1). Without
/// MTA-STS or DANE a sender cannot know what name a server's certificate
/// ought to carry, and most MX certificates would fail a check; refusing
/// them would only push mail back to plaintext. So every certificate is
/// taken, and the session is encrypted against passive listeners.
pub fn opportunistic_tls() -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth()
        });
    match config {
        Ok(c) => Arc::new(c),
        // ring's default provider supports the default versions.
        Err(_) => Arc::new(
            ClientConfig::builder()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))))
                .with_no_client_auth(),
        ),
    }
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
