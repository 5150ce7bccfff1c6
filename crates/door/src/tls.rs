//! The server's TLS configuration: the configured certificate, or a
//! self-signed one generated in the data folder on first start; the
//! certificate can be read again while serving (SIGHUP).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("{} holds no certificate", .0.display())]
    NoCertificate(PathBuf),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the certificate and key do not work together: {0}")]
    Config(#[from] rustls::Error),
}

/// The doors' TLS: the configuration every door shares, and the
/// certificate it presents, which [`Certificate::reload`] can replace.
pub struct Tls {
    pub config: Arc<ServerConfig>,
    pub certificate: Arc<Certificate>,
}

/// TLS for the doors: `cert` and `key` PEM files when given, else
/// `data_dir/cert.pem` and `data_dir/key.pem`, generated for `hostname`
/// and the listening `addresses` if they do not exist yet.
pub fn server_config(
    data_dir: &Path,
    configured: Option<(&Path, &Path)>,
    hostname: &str,
    addresses: &[IpAddr],
) -> Result<Tls, TlsError> {
    let (cert_path, key_path) = match configured {
        Some((c, k)) => (c.to_path_buf(), k.to_path_buf()),
        None => {
            let c = data_dir.join("cert.pem");
            let k = data_dir.join("key.pem");
            if !c.exists() || !k.exists() {
                generate(&c, &k, hostname, addresses)?;
            }
            tracing::info!(
                "TLS: the self-signed certificate {} (for {hostname}); to use your own, set \
                 [tls] cert and key in the config",
                c.display()
            );
            (c, k)
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let current = load(&cert_path, &key_path, &provider)?;
    let certificate = Arc::new(Certificate {
        cert_path,
        key_path,
        provider: provider.clone(),
        current: RwLock::new(Arc::new(current)),
    });
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(certificate.clone());
    Ok(Tls {
        config: Arc::new(config),
        certificate,
    })
}

/// The certificate and key every handshake presents, read from their
/// files again on [`Certificate::reload`]: sessions already open keep the
/// one they started with, new ones get the new one.
#[derive(Debug)]
pub struct Certificate {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificate {
    /// Reads the certificate and key files again; on an error (a file
    /// half-written, a key that does not match) the one in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = load(&self.cert_path, &self.key_path, &self.provider)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
        Ok(())
    }

    /// The certificate file, for the log.
    pub fn path(&self) -> &Path {
        &self.cert_path
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

/// The chain and key of two PEM files, checked to belong together.
fn load(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .and_then(|i| i.collect())
        .map_err(|source| TlsError::Read {
            path: cert_path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(cert_path.to_path_buf()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|source| TlsError::Read {
        path: key_path.to_path_buf(),
        source,
    })?;
    Ok(CertifiedKey::from_der(certs, key, provider)?)
}

/// How long a generated certificate is valid: 825 days, the longest Apple
/// clients accept for a TLS server certificate.
const GENERATED_VALIDITY_DAYS: i64 = 825;

fn generate(
    cert_path: &Path,
    key_path: &Path,
    hostname: &str,
    addresses: &[IpAddr],
) -> Result<(), TlsError> {
    let mut names = vec![hostname.to_string()];
    let listening = addresses
        .iter()
        .filter(|a| !a.is_unspecified())
        .map(IpAddr::to_string);
    for n in ["localhost".to_string(), "127.0.0.1".into(), "::1".into()]
        .into_iter()
        .chain(listening)
    {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let mut params = rcgen::CertificateParams::new(names)?;
    // Clients that check the name (fetchmail) compare the CN too.
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostname);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(GENERATED_VALIDITY_DAYS);
    let signing_key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertifiedKey {
        cert: params.self_signed(&signing_key)?,
        signing_key,
    };
    write_private(key_path, cert.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(cert_path, cert.cert.pem()).map_err(|source| TlsError::Write {
        path: cert_path.to_path_buf(),
        source,
    })?;
    tracing::info!(
        "generated a self-signed certificate in {}",
        cert_path.display()
    );
    Ok(())
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|source| TlsError::Write {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_reuses() {
        let dir = tempfile::tempdir().unwrap();
        server_config(dir.path(), None, "mail.example.test", &[]).unwrap();
        let first = std::fs::read(dir.path().join("cert.pem")).unwrap();
        server_config(dir.path(), None, "mail.example.test", &[]).unwrap();
        assert_eq!(first, std::fs::read(dir.path().join("cert.pem")).unwrap());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let bad = dir.path().join("empty.pem");
        std::fs::write(&bad, "").unwrap();
        let e = server_config(dir.path(), Some((&bad, &bad)), "x", &[])
            .err()
            .unwrap();
        assert!(e.to_string().contains("holds no certificate"), "{e}");
    }

    #[test]
    fn reload_takes_new_files_and_keeps_the_old_on_a_bad_pair() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        generate(&c, &k, "one.example.test", &[]).unwrap();
        let tls = server_config(dir.path(), Some((&c, &k)), "x", &[]).unwrap();
        let served = || tls.certificate.current.read().unwrap().cert[0].clone();
        let first = served();
        generate(&c, &k, "two.example.test", &[]).unwrap();
        tls.certificate.reload().unwrap();
        let second = served();
        assert_ne!(first, second);
        // A new certificate beside the old key: refused, the pair in use stays.
        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        generate(&other.join("c.pem"), &other.join("k.pem"), "three", &[]).unwrap();
        std::fs::copy(other.join("c.pem"), &c).unwrap();
        let e = tls.certificate.reload().unwrap_err();
        assert!(e.to_string().contains("do not work together"), "{e}");
        assert_eq!(served(), second);
    }
}
