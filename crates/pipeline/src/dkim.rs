//! DKIM for what leaves the server (RFC 6376): each local domain gets an
//! Ed25519 key (RFC 8463) and an RSA-2048 one the first time it signs, kept
//! in the store so every node signs alike; each outgoing message carries
//! both signatures, because many verifiers still know only RSA. A rotation
//! makes a new pair and retires the old one, which stays published so mail
//! signed before the rotation still verifies.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::generate::DkimKeyPair;
use mail_auth::dkim::{DkimSigner, Done};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer};
use store::{DkimAlgorithm, DkimKey, MailStore};

/// The fields each signature covers. mail-auth lists a field that is
/// absent in `h=` too, so nobody can add it later (RFC 6376 8.15).
const SIGNED_FIELDS: [&str; 15] = [
    "From",
    "Sender",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "To",
    "Cc",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Unsubscribe",
    "Auto-Submitted",
];

/// RSA modulus size: 2048 bits, what RFC 8301 asks signers for.
const RSA_BITS: usize = 2048;

/// How long `satchel dkim show` keeps printing a key after a rotation
/// retired it: mail signed just before may still be in queues, or be
/// verified again by a forwarder, for days.
pub const PUBLISH_RETIRED_SECS: i64 = 7 * 86_400;

/// How long a process signs with keys it read before it looks again (a
/// `satchel dkim rotate` from another process takes effect within this).
const CACHE_FOR: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("the DKIM key {selector} of {domain} is unusable: {reason}")]
    BadKey {
        domain: String,
        selector: String,
        reason: String,
    },
    #[error("a DKIM key could not be made: {0}")]
    Generate(String),
    #[error("the message could not be signed: {0}")]
    Sign(String),
}

/// One record to publish in DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxtRecord {
    /// `selector._domainkey.domain.`
    pub name: String,
    pub value: String,
    /// When a rotation replaced it (Unix seconds).
    pub retired: Option<i64>,
}

impl TxtRecord {
    /// The record as a zone file line, the value cut into strings of at
    /// most 255 octets (RFC 1035 3.3.14; an RSA key needs two).
    pub fn zone_line(&self) -> String {
        let strings: Vec<String> = self
            .value
            .as_bytes()
            .chunks(255)
            .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
            .collect();
        format!("{} IN TXT {}", self.name, strings.join(" "))
    }
}

/// The DNS records of a key.
pub fn txt_record(key: &DkimKey) -> TxtRecord {
    TxtRecord {
        name: format!("{}._domainkey.{}.", key.selector, key.domain),
        value: format!("v=DKIM1; k={}; p={}", key.algorithm.as_str(), key.public),
        retired: key.retired,
    }
}

/// The domain's keys, signing ones first; made and stored the first time
/// a domain has none.
pub async fn domain_keys(store: &dyn MailStore, domain: &str) -> Result<Vec<DkimKey>, DkimError> {
    let keys = store.dkim_keys(domain).await?;
    if keys.iter().any(|k| k.retired.is_none()) {
        return Ok(keys);
    }
    let fresh = new_pair(domain, &keys).await?;
    // Another process may have been first; then its keys stand.
    store.add_dkim_keys(&fresh, false).await?;
    Ok(store.dkim_keys(domain).await?)
}

/// A new pair for the domain; the keys it had stop signing but stay
/// published. Returns every key of the domain afterwards.
pub async fn rotate(store: &dyn MailStore, domain: &str) -> Result<Vec<DkimKey>, DkimError> {
    let keys = store.dkim_keys(domain).await?;
    let fresh = new_pair(domain, &keys).await?;
    store.add_dkim_keys(&fresh, true).await?;
    Ok(store.dkim_keys(domain).await?)
}

/// Signs outgoing mail with the keys in the store.
pub struct Signer {
    store: Arc<dyn MailStore>,
    cache: tokio::sync::Mutex<HashMap<String, (Instant, Arc<DomainSigners>)>>,
}

impl Signer {
    pub fn new(store: Arc<dyn MailStore>) -> Signer {
        Signer {
            store,
            cache: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The `DKIM-Signature:` fields (Ed25519 first, then RSA) to put in
    /// front of `raw`, signed as `domain`.
    pub async fn sign(&self, domain: &str, raw: &[u8]) -> Result<String, DkimError> {
        let signers = self.signers(domain).await?;
        let mut fields = String::new();
        if let Some(ed) = &signers.ed25519 {
            let sig = ed.sign(raw).map_err(|e| DkimError::Sign(e.to_string()))?;
            fields.push_str(&sig.to_header());
        }
        if let Some(rsa) = &signers.rsa {
            let sig = rsa.sign(raw).map_err(|e| DkimError::Sign(e.to_string()))?;
            fields.push_str(&sig.to_header());
        }
        Ok(fields)
    }

    async fn signers(&self, domain: &str) -> Result<Arc<DomainSigners>, DkimError> {
        let domain = domain.to_ascii_lowercase();
        // Held across the load: the first message of a domain makes its
        // keys once, not once per concurrent submission.
        let mut cache = self.cache.lock().await;
        if let Some((at, signers)) = cache.get(&domain)
            && at.elapsed() < CACHE_FOR
        {
            return Ok(signers.clone());
        }
        let keys = domain_keys(self.store.as_ref(), &domain).await?;
        let signers = Arc::new(DomainSigners::new(&keys)?);
        cache.insert(domain, (Instant::now(), signers.clone()));
        Ok(signers)
    }
}

/// A domain's signing keys, parsed.
struct DomainSigners {
    ed25519: Option<DkimSigner<Ed25519Key, Done>>,
    rsa: Option<DkimSigner<RsaKey<Sha256>, Done>>,
}

impl DomainSigners {
    /// The newest signing key of each algorithm.
    fn new(keys: &[DkimKey]) -> Result<DomainSigners, DkimError> {
        let newest = |alg| {
            keys.iter()
                .filter(|k| k.retired.is_none() && k.algorithm == alg)
                .max_by_key(|k| k.created)
        };
        let bad = |k: &DkimKey, e: mail_auth::Error| DkimError::BadKey {
            domain: k.domain.clone(),
            selector: k.selector.clone(),
            reason: e.to_string(),
        };
        let ed25519 = match newest(DkimAlgorithm::Ed25519) {
            Some(k) => Some(signer(
                Ed25519Key::from_pkcs8_der(&k.private).map_err(|e| bad(k, e))?,
                k,
            )),
            None => None,
        };
        // mail-auth makes RSA keys as PKCS#1 (`new_pair`).
        let rsa = match newest(DkimAlgorithm::Rsa) {
            Some(k) => {
                let der = PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(k.private.as_slice()));
                Some(signer(
                    RsaKey::<Sha256>::from_key_der(der).map_err(|e| bad(k, e))?,
                    k,
                ))
            }
            None => None,
        };
        Ok(DomainSigners { ed25519, rsa })
    }
}

/// A signer of the fields we sign, for one key.
fn signer<T: SigningKey>(key: T, k: &DkimKey) -> DkimSigner<T, Done> {
    DkimSigner::from_key(key)
        .domain(&k.domain)
        .selector(&k.selector)
        .headers(SIGNED_FIELDS)
}

/// An Ed25519 and an RSA key for the domain, with selectors not yet used
/// there: `sYYYYMMDD-ed` and `sYYYYMMDD-rsa`, a letter added on a second
/// rotation the same day.
async fn new_pair(domain: &str, existing: &[DkimKey]) -> Result<Vec<DkimKey>, DkimError> {
    let now = store::unix_now();
    let day = time::OffsetDateTime::from_unix_timestamp(now)
        .map(|t| format!("{:04}{:02}{:02}", t.year(), u8::from(t.month()), t.day()))
        .unwrap_or_else(|_| now.to_string());
    let taken = |base: &str| {
        existing
            .iter()
            .any(|k| k.selector.starts_with(&format!("{base}-")))
    };
    let base = std::iter::once(String::new())
        .chain(('b'..='z').map(String::from))
        .map(|suffix| format!("s{day}{suffix}"))
        .find(|b| !taken(b))
        .unwrap_or_else(|| format!("s{now}"));
    // RSA key generation takes a while of CPU: off the async workers.
    let (ed, rsa) = tokio::task::spawn_blocking(|| {
        let ed = DkimKeyPair::generate_ed25519().map_err(|e| DkimError::Generate(e.to_string()))?;
        let rsa =
            DkimKeyPair::generate_rsa(RSA_BITS).map_err(|e| DkimError::Generate(e.to_string()))?;
        Ok::<_, DkimError>((ed, rsa))
    })
    .await
    .map_err(|e| DkimError::Generate(e.to_string()))??;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let domain = domain.to_ascii_lowercase();
    Ok(vec![
        DkimKey {
            domain: domain.clone(),
            selector: format!("{base}-ed"),
            algorithm: DkimAlgorithm::Ed25519,
            public: b64(ed.public_key()),
            private: ed.private_key().to_vec(),
            created: now,
            retired: None,
        },
        DkimKey {
            domain,
            selector: format!("{base}-rsa"),
            algorithm: DkimAlgorithm::Rsa,
            public: b64(&rsa_spki(rsa.public_key())),
            private: rsa.private_key().to_vec(),
            created: now,
            retired: None,
        },
    ])
}

/// An RSAPublicKey (PKCS#1) wrapped as a SubjectPublicKeyInfo, the form
/// `openssl rsa -pubout` gives and every DKIM verifier reads (RFC 6376
/// 3.6.1 names RSAPublicKey, yet some verifiers, dkimpy among them, read
/// only the wrapped form).
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier { rsaEncryption, NULL }.
    const ALGORITHM: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0x00];
    bits.extend_from_slice(pkcs1);
    let mut inner = ALGORITHM.to_vec();
    inner.extend(der_tlv(0x03, &bits));
    der_tlv(0x30, &inner)
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_line_splits_long_values() {
        let record = TxtRecord {
            name: "s-rsa._domainkey.example.test.".into(),
            value: "a".repeat(300),
            retired: None,
        };
        let line = record.zone_line();
        assert!(line.starts_with("s-rsa._domainkey.example.test. IN TXT \""));
        assert!(line.contains(&format!("\"{}\" \"{}\"", "a".repeat(255), "a".repeat(45))));
    }

    #[test]
    fn spki_wraps_with_long_lengths() {
        let spki = rsa_spki(&[0x30; 270]);
        // 270 + 1 in the BIT STRING, 4 octets of its header, 15 of the
        // algorithm: 290 inside the outer SEQUENCE.
        assert_eq!(&spki[..4], &[0x30, 0x82, 0x01, 0x22]);
        assert_eq!(&spki[19..24], &[0x03, 0x82, 0x01, 0x0f, 0x00]);
        assert_eq!(spki.len(), 294);
    }
}
