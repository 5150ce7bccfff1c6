//! TLS to PostgreSQL, asked for in the URL as libpq users write it:
//! `sslmode` (`disable`, `prefer`, the default, `require` or `verify-full`)
//! and `sslrootcert` (a PEM file of the CA that signed the server's
//! certificate). tokio-postgres knows neither `verify-full` nor the root
//! file, so both are taken out of the URL here and become the connector's
//! settings.
//!
//! As libpq does, `prefer` and `require` encrypt without checking the
//! certificate (a listener is kept out, a man in the middle is not), and
//! `require` with `sslrootcert` checks it. `verify-full` checks that the
//! certificate is signed by Mozilla's roots or `sslrootcert`'s CA and
//! names the URL's host. `verify-ca` (a check without the name) is not
//! offered: rustls checks names, and a name is what a man in the middle
//! cannot fake.

use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{Error, Result};

/// The connection settings of `url` and the TLS connector it asks for.
pub(super) fn settings(url: &str) -> Result<(tokio_postgres::Config, MakeRustlsConnect)> {
    let (url, mode, root) = take_tls_params(url)?;
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| Error::Db(format!("the PostgreSQL URL is not valid ({e})")))?;
    let verify = match mode.as_deref() {
        None | Some("prefer") => {
            config.ssl_mode(SslMode::Prefer);
            root.is_some()
        }
        Some("disable") => {
            config.ssl_mode(SslMode::Disable);
            false
        }
        Some("require") => {
            config.ssl_mode(SslMode::Require);
            root.is_some()
        }
        Some("verify-full") => {
            config.ssl_mode(SslMode::Require);
            true
        }
        Some("verify-ca") => {
            return Err(Error::Db(
                "sslmode=verify-ca is not offered: Satchel checks the certificate's name too; \
                 use sslmode=verify-full with the name the certificate carries as the URL's host"
                    .into(),
            ));
        }
        Some(other) => {
            return Err(Error::Db(format!(
                "sslmode={other} is not a mode: use disable, prefer, require or verify-full"
            )));
        }
    };
    let tls = match (verify, &root) {
        (false, _) => tls_client::opportunistic_tls(),
        (true, None) => tls_client::verified_tls(&[]).map_err(Error::Db)?,
        (true, Some(path)) => tls_client::verified_tls_with_ca(std::path::Path::new(path))
            .map_err(|e| Error::Db(format!("sslrootcert={path}: {e}")))?,
    };
    Ok((config, MakeRustlsConnect::new((*tls).clone())))
}

/// The URL without its `sslmode` and `sslrootcert` parameters, and their
/// values. A URL in libpq's `key=value` form is left whole: tokio-postgres
/// reads its `sslmode` (not `verify-full`) itself.
fn take_tls_params(url: &str) -> Result<(String, Option<String>, Option<String>)> {
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let Some((base, query)) = url.split_once('?').filter(|_| is_url) else {
        return Ok((url.to_string(), None, None));
    };
    let (mut mode, mut root, mut kept) = (None, None, Vec::new());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => mode = Some(percent_decoded(value)?),
            "sslrootcert" => root = Some(percent_decoded(value)?),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, mode, root))
}

fn percent_decoded(value: &str) -> Result<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    Error::Db(format!("the PostgreSQL URL has a bad escape in {value:?}"))
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Error::Db(format!("{value:?} is not UTF-8 once decoded")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_leave_the_url_and_the_rest_stays() {
        let (url, mode, root) = take_tls_params(
            "postgres://u@db.example:5432/mail?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(url, "postgres://u@db.example:5432/mail?application_name=x");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/etc/ca.pem"));
        let (url, mode, _) = take_tls_params("postgres://u@h/db").unwrap();
        assert_eq!((url.as_str(), mode), ("postgres://u@h/db", None));
        assert!(take_tls_params("postgres://u@h/db?sslrootcert=%zz").is_err());
        // libpq's key=value form goes to tokio-postgres whole.
        let (url, mode, _) = take_tls_params("host=h sslmode=require").unwrap();
        assert_eq!((url.as_str(), mode), ("host=h sslmode=require", None));
    }

    #[test]
    fn modes_are_checked() {
        assert!(settings("postgres://u@h/db?sslmode=verify-full").is_ok());
        assert!(settings("postgres://u@h/db?sslmode=disable").is_ok());
        let e = settings("postgres://u@h/db?sslmode=verify-ca")
            .err()
            .unwrap();
        assert!(e.to_string().contains("verify-full"), "{e}");
        let e = settings("postgres://u@h/db?sslmode=always").err().unwrap();
        assert!(e.to_string().contains("sslmode=always"), "{e}");
        let e = settings("postgres://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent.pem")
            .err()
            .unwrap();
        assert!(e.to_string().contains("/nonexistent.pem"), "{e}");
    }
}
