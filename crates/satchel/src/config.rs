//! The TOML configuration of the contract (`docs/contract.md`, "Config").
//! Unknown keys are errors that name the key and the file.
//!
//! Settings for doors that have not landed yet are parsed and validated now,
//! so a config written today keeps working; the doors read them as they land.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use store::Pop3Delete;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_hostname")]
    pub hostname: String,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub domains: Vec<String>,
    /// The account that receives postmaster@ every local domain (RFC 5321
    /// 4.5.1); left out: the oldest account with the admin role.
    pub postmaster: Option<String>,
    /// With a config file, only the doors listed here start (contract,
    /// "Config"); the development doors are for `serve` without one.
    #[serde(default)]
    pub listen: Listen,
    pub tls: Option<Tls>,
    #[serde(default)]
    pub storage: Storage,
    #[serde(default)]
    pub spam: Spam,
    #[serde(default)]
    pub pop3: Pop3,
    #[serde(default)]
    pub relay: Relay,
    #[serde(default)]
    pub queue: Queue,
    #[serde(default)]
    pub submission: Submission,
    #[serde(default)]
    pub auth: Auth,
    #[serde(default)]
    pub sieve: Sieve,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub log: Log,
    #[serde(default)]
    pub web: Web,
    #[serde(default)]
    pub junk_report: JunkReport,
    #[serde(default)]
    pub trace: TraceConfig,
    #[serde(default)]
    pub imap: ImapConfig,
}

/// `[imap]`: what the IMAP door remembers for clients that resync.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapConfig {
    /// Days the UID of an expunged message is remembered, so a QRESYNC
    /// client (RFC 7162) back after that long is told exactly what went.
    #[serde(default = "default_expunged_days")]
    pub expunged_days: u32,
    /// Expunged UIDs remembered per mailbox at most (the newest).
    #[serde(default = "default_expunged_kept")]
    pub expunged_kept: u32,
}

impl Default for ImapConfig {
    fn default() -> ImapConfig {
        ImapConfig {
            expunged_days: default_expunged_days(),
            expunged_kept: default_expunged_kept(),
        }
    }
}

fn default_expunged_days() -> u32 {
    30
}
fn default_expunged_kept() -> u32 {
    50_000
}

/// `[trace]`: the message trace the admin pages search.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceConfig {
    /// Days an entry is kept.
    #[serde(default = "default_trace_days")]
    pub days: u32,
}

impl Default for TraceConfig {
    fn default() -> TraceConfig {
        TraceConfig {
            days: default_trace_days(),
        }
    }
}

fn default_trace_days() -> u32 {
    30
}

/// `[junk_report]`: the daily junk report and how long Junk and Possible
/// Junk keep mail.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JunkReport {
    /// The hour (UTC, 0 to 23) the reports go out and old junk is deleted.
    #[serde(default = "default_report_hour")]
    pub hour: u8,
    /// Days Junk and Possible Junk keep mail (0: for ever).
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// Days a release link works.
    #[serde(default = "default_link_days")]
    pub link_days: u32,
}

impl Default for JunkReport {
    fn default() -> JunkReport {
        JunkReport {
            hour: default_report_hour(),
            retention_days: default_retention_days(),
            link_days: default_link_days(),
        }
    }
}

fn default_report_hour() -> u8 {
    7
}
fn default_retention_days() -> u32 {
    30
}
fn default_link_days() -> u32 {
    14
}

/// `[web]`: the webmail door's settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Web {
    /// Proxies in front of the web door (nginx, Caddy on this machine:
    /// `["127.0.0.1", "::1"]`) whose `X-Forwarded-For` and
    /// `X-Forwarded-Proto` say who the client is and whether it came over
    /// HTTPS; nobody's by default.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// `GET /metrics` in Prometheus' text format.
    #[serde(default)]
    pub metrics: bool,
    /// The webmail as users reach it (`https://mail.example.test`), for the
    /// links in junk reports; left out: made from `hostname` and the first
    /// `https` (else `http`) door.
    pub url: Option<String>,
}

impl Config {
    /// The webmail's address for links in mail, without a trailing slash.
    pub fn web_url(&self) -> String {
        if let Some(url) = &self.web.url {
            return url.trim_end_matches('/').to_string();
        }
        let (scheme, addr, default) = match (self.listen.https.first(), self.listen.http.first()) {
            (Some(a), _) => ("https", Some(a), 443),
            (None, Some(a)) => ("http", Some(a), 80),
            (None, None) => ("http", None, 80),
        };
        match addr.map(|a| a.port()) {
            Some(port) if port != default && port != 0 => {
                format!("{scheme}://{}:{port}", self.hostname)
            }
            _ => format!("{scheme}://{}", self.hostname),
        }
    }
}

/// `[log]`: how the server writes its log (standard error).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    #[serde(default)]
    pub format: LogFormat,
}

/// Lines for people, or one JSON object a line for collectors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Connections each door takes at once from one client address (and, for
/// IMAP, for one user), and in all (`*_total`); a key left out keeps the
/// door's own default. A webmail or a proxy in front of Satchel speaks for
/// many users from one address, and needs more.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub imap_per_ip: Option<usize>,
    pub imap_per_user: Option<usize>,
    pub pop3_per_ip: Option<usize>,
    pub smtp_per_ip: Option<usize>,
    pub managesieve_per_ip: Option<usize>,
    /// The web doors (http and https together); a proxy in front speaks
    /// for many users from one address and needs more.
    pub http_per_ip: Option<usize>,
    pub imap_total: Option<usize>,
    pub pop3_total: Option<usize>,
    pub smtp_total: Option<usize>,
    pub managesieve_total: Option<usize>,
    pub http_total: Option<usize>,
    /// MiB of messages all doors together hold in memory while receiving
    /// them (SMTP DATA and BDAT, IMAP APPEND); past it a message is
    /// refused with a "try again later" (default 512).
    pub in_flight_mb: Option<usize>,
}

/// Server-wide Sieve scripts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sieve {
    /// A script run before every user's own, on all incoming mail.
    pub before: Option<PathBuf>,
    /// A folder of scripts users may `include :global "NAME"` (the file
    /// NAME.sieve).
    pub global_dir: Option<PathBuf>,
}

impl Sieve {
    /// The compiled `before` script and the global scripts by name, read
    /// now; a script that does not compile stops the server with its
    /// file, line and column.
    pub fn load(
        &self,
    ) -> anyhow::Result<(
        Option<sieve::Script>,
        std::collections::HashMap<String, String>,
    )> {
        let before = match &self.before {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("sieve.before: cannot read {}", path.display()))?;
                let script = sieve::Script::compile(&text)
                    .map_err(|e| anyhow::anyhow!("sieve.before: {}: {e}", path.display()))?;
                Some(script)
            }
            None => None,
        };
        let mut globals = std::collections::HashMap::new();
        if let Some(dir) = &self.global_dir {
            let list = std::fs::read_dir(dir)
                .with_context(|| format!("sieve.global_dir: cannot read {}", dir.display()))?;
            for entry in list.flatten() {
                let path = entry.path();
                let Some(name) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(".sieve"))
                else {
                    continue;
                };
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("sieve.global_dir: cannot read {}", path.display()))?;
                sieve::Script::compile(&text)
                    .map_err(|e| anyhow::anyhow!("sieve.global_dir: {}: {e}", path.display()))?;
                globals.insert(name.to_string(), text);
            }
        }
        Ok((before, globals))
    }
}

/// The doors and the addresses each listens on; a door left out is off.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    #[serde(default)]
    pub smtp: Vec<SocketAddr>,
    #[serde(default)]
    pub submission: Vec<SocketAddr>,
    #[serde(default)]
    pub submissions: Vec<SocketAddr>,
    #[serde(default)]
    pub imap: Vec<SocketAddr>,
    #[serde(default)]
    pub imaps: Vec<SocketAddr>,
    #[serde(default)]
    pub pop3: Vec<SocketAddr>,
    #[serde(default)]
    pub pop3s: Vec<SocketAddr>,
    #[serde(default)]
    pub http: Vec<SocketAddr>,
    /// The webmail over implicit TLS, with the `[tls]` certificate.
    #[serde(default)]
    pub https: Vec<SocketAddr>,
    #[serde(default)]
    pub managesieve: Vec<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    #[serde(default)]
    pub backend: Backend,
    pub url: Option<String>,
    /// PostgreSQL only: megabytes of message bodies a node keeps in
    /// `DATA/body-cache` (0, the default: none, only the memory cache).
    #[serde(default)]
    pub body_cache_mb: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Embedded,
    Postgres,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spam {
    #[serde(default = "default_possible_junk")]
    pub possible_junk: i64,
    #[serde(default = "default_junk")]
    pub junk: i64,
    /// DNS blocklists asked about every SMTP client's address
    /// (`zen.spamhaus.org`); none by default, as lookups leave the host.
    #[serde(default)]
    pub dnsbl: Vec<String>,
}

impl Spam {
    pub fn thresholds(&self) -> pipeline::Thresholds {
        pipeline::Thresholds {
            possible_junk: self.possible_junk,
            junk: self.junk,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pop3 {
    #[serde(default = "default_pop3_delete", deserialize_with = "pop3_delete")]
    pub delete: Pop3Delete,
    #[serde(default = "yes")]
    pub mark_seen: bool,
}

/// `[pop3] delete`: the store's own mode type, read by its name.
fn pop3_delete<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Pop3Delete, D::Error> {
    let name = String::deserialize(d)?;
    Pop3Delete::parse(&name).ok_or_else(|| {
        let choices: Vec<String> = Pop3Delete::ALL
            .iter()
            .map(|m| format!("\"{}\"", m.as_str()))
            .collect();
        serde::de::Error::invalid_value(
            serde::de::Unexpected::Str(&name),
            &format!("one of {}", choices.join(", ")).as_str(),
        )
    })
}

fn default_pop3_delete() -> Pop3Delete {
    Pop3Delete::Expunge
}

/// `[relay]`: where outgoing mail for remote domains goes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Relay {
    /// `host:port`; left out: each domain's MX hosts.
    pub smarthost: Option<String>,
    /// AUTH PLAIN at the smarthost (a provider's relay), only over TLS
    /// with a certificate valid for its name (or on loopback).
    pub smarthost_user: Option<String>,
    pub smarthost_password: Option<String>,
    /// A PEM file of CA certificates the smarthost's certificate may also
    /// be signed by (a private relay); Mozilla's roots are always trusted.
    pub smarthost_ca: Option<PathBuf>,
}

/// `[queue]`: how long undelivered mail is retried, and how often.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    /// Waits between attempts ("5m", "1h"); the last one repeats.
    #[serde(default = "default_retry", deserialize_with = "durations")]
    pub retry: Vec<std::time::Duration>,
    /// Bounced when still undelivered this long after it was queued.
    #[serde(default = "default_expire", deserialize_with = "duration")]
    pub expire: std::time::Duration,
    /// The sender is told of the delay once (0: never).
    #[serde(default = "default_delay_notice", deserialize_with = "duration")]
    pub delay_notice: std::time::Duration,
}

impl Default for Queue {
    fn default() -> Queue {
        Queue {
            retry: default_retry(),
            expire: default_expire(),
            delay_notice: default_delay_notice(),
        }
    }
}

fn default_retry() -> Vec<std::time::Duration> {
    relay::Settings::default().retry
}

fn default_expire() -> std::time::Duration {
    relay::Settings::default().expire
}

fn default_delay_notice() -> std::time::Duration {
    relay::Settings::default().delay_notice.unwrap_or_default()
}

/// A duration as "90s", "5m", "4h" or "5d".
fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let (n, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(secs))
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).ok_or_else(|| {
        serde::de::Error::invalid_value(
            serde::de::Unexpected::Str(&text),
            &"a duration such as \"90s\", \"5m\", \"4h\" or \"5d\"",
        )
    })
}

fn durations<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<std::time::Duration>, D::Error> {
    let texts = Vec::<String>::deserialize(d)?;
    if texts.is_empty() {
        return Err(serde::de::Error::invalid_length(0, &"at least one wait"));
    }
    texts
        .iter()
        .map(|t| {
            parse_duration(t).filter(|d| !d.is_zero()).ok_or_else(|| {
                serde::de::Error::invalid_value(
                    serde::de::Unexpected::Str(t),
                    &"a duration above zero such as \"90s\", \"5m\" or \"4h\"",
                )
            })
        })
        .collect()
}

/// `[submission]`: what the submission doors do with what users send.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    #[serde(default, deserialize_with = "sent_copy")]
    pub sent_copy: pipeline::SentCopy,
    /// Messages each user may send per hour (0: no limit).
    #[serde(default = "default_max_per_hour")]
    pub max_per_hour: usize,
}

fn default_max_per_hour() -> usize {
    500
}

impl Default for Submission {
    fn default() -> Submission {
        Submission {
            sent_copy: pipeline::SentCopy::default(),
            max_per_hour: default_max_per_hour(),
        }
    }
}

fn sent_copy<'de, D: serde::Deserializer<'de>>(d: D) -> Result<pipeline::SentCopy, D::Error> {
    let name = String::deserialize(d)?;
    pipeline::SentCopy::parse(&name).ok_or_else(|| {
        serde::de::Error::invalid_value(
            serde::de::Unexpected::Str(&name),
            &"one of \"always\", \"unless-appended\", \"never\"",
        )
    })
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    #[serde(default)]
    pub plaintext_anywhere: bool,
}

impl Config {
    /// Reads `path`, or gives the built-in development defaults when there is
    /// no config file.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let config: Config = toml::from_str(&text).map_err(|e| {
            // One line: file, line number, the line itself (it names the key
            // and the value), then what toml says was wrong with it.
            let at = e.span().map(|s| s.start).unwrap_or(0).min(text.len());
            let line_no = text[..at].matches('\n').count() + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
            let what = e.message().trim().replace('\n', "; ");
            anyhow::anyhow!("{}:{line_no}: {line}: {what}", path.display())
        })?;
        config
            .validate()
            .with_context(|| format!("{}: invalid configuration", path.display()))?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.hostname.is_empty() || self.hostname.contains(char::is_whitespace) {
            bail!(
                "hostname = {:?}: a host name is needed, without spaces",
                self.hostname
            );
        }
        for d in &self.domains {
            if let Err(e) = store::names::normalize_address(&format!("postmaster@{d}")) {
                bail!("domains: {d:?} is not a domain name ({e})");
            }
        }
        if let Some(p) = &self.postmaster
            && let Err(e) = store::names::normalize_address(p)
        {
            bail!("postmaster = {p:?} is not an address such as \"admin@example.com\" ({e})");
        }
        if self.spam.possible_junk > self.spam.junk {
            bail!(
                "spam.possible_junk = {} is above spam.junk = {}: Possible Junk must start at or below Junk",
                self.spam.possible_junk,
                self.spam.junk
            );
        }
        if self.junk_report.hour > 23 {
            bail!(
                "junk_report.hour = {}: give an hour of the day, 0 to 23 (UTC)",
                self.junk_report.hour
            );
        }
        if self.junk_report.link_days == 0 {
            bail!("junk_report.link_days = 0: release links need at least a day");
        }
        if let Some(url) = &self.web.url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            bail!(
                "web.url = {url:?}: give the webmail's address, such as \"https://mail.example.com\""
            );
        }
        for zone in &self.spam.dnsbl {
            if let Err(e) = store::names::normalize_address(&format!("postmaster@{zone}")) {
                bail!("spam.dnsbl: {zone:?} is not a DNS zone such as \"zen.spamhaus.org\" ({e})");
            }
        }
        let l = &self.limits;
        for (key, value) in [
            ("imap_per_ip", l.imap_per_ip),
            ("imap_per_user", l.imap_per_user),
            ("pop3_per_ip", l.pop3_per_ip),
            ("smtp_per_ip", l.smtp_per_ip),
            ("managesieve_per_ip", l.managesieve_per_ip),
            ("http_per_ip", l.http_per_ip),
            ("imap_total", l.imap_total),
            ("pop3_total", l.pop3_total),
            ("smtp_total", l.smtp_total),
            ("managesieve_total", l.managesieve_total),
            ("http_total", l.http_total),
            ("in_flight_mb", l.in_flight_mb),
        ] {
            if value == Some(0) {
                bail!(
                    "limits.{key} = 0 would refuse every connection or message; give at least 1, or leave it out for the default"
                );
            }
        }
        match (self.storage.backend, &self.storage.url) {
            (Backend::Postgres, None) => {
                bail!(
                    "storage.backend = \"postgres\" needs storage.url = \"postgres://user@host/db\""
                )
            }
            (Backend::Embedded, Some(url)) => bail!(
                "storage.url = {url:?} is only used with storage.backend = \"postgres\"; remove it or set the backend"
            ),
            (Backend::Embedded, None) if self.storage.body_cache_mb > 0 => bail!(
                "storage.body_cache_mb is for nodes on PostgreSQL; the embedded store reads its bodies from its own disk: remove it"
            ),
            _ => {}
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            hostname: default_hostname(),
            data_dir: default_data_dir(),
            domains: Vec::new(),
            postmaster: None,
            listen: Listen::dev(),
            tls: None,
            storage: Storage::default(),
            spam: Spam::default(),
            pop3: Pop3::default(),
            relay: Relay::default(),
            queue: Queue::default(),
            submission: Submission::default(),
            auth: Auth::default(),
            sieve: Sieve::default(),
            limits: Limits::default(),
            log: Log::default(),
            web: Web::default(),
            junk_report: JunkReport::default(),
            trace: TraceConfig::default(),
            imap: ImapConfig::default(),
        }
    }
}

impl Listen {
    /// Refuses a `[listen]` that starts no door: `serve` would run and
    /// answer nothing, which is never what was meant.
    pub fn check_some_door(&self) -> anyhow::Result<()> {
        let built = [
            &self.smtp,
            &self.submission,
            &self.submissions,
            &self.imap,
            &self.imaps,
            &self.pop3,
            &self.pop3s,
            &self.managesieve,
            &self.http,
            &self.https,
        ];
        if built.iter().all(|addrs| addrs.is_empty()) {
            bail!(
                "[listen] names no door, so serve would answer nothing: with a config file only \
                 the doors [listen] lists start (smtp, submission, submissions, imap, imaps, \
                 pop3, pop3s, managesieve, http, https); add one, for example \
                 [listen] imap = [\"127.0.0.1:1143\"], or run serve without --config for \
                 every door on its development port"
            );
        }
        Ok(())
    }

    /// Every door on loopback, on the contract's development ports.
    fn dev() -> Listen {
        let at = |port: u16| vec![SocketAddr::from(([127, 0, 0, 1], port))];
        Listen {
            smtp: at(2525),
            submission: at(2587),
            submissions: at(2465),
            imap: at(1143),
            imaps: at(1993),
            pop3: at(1110),
            pop3s: at(1995),
            http: at(8080),
            https: at(8443),
            managesieve: at(4190),
        }
    }
}

impl Default for Spam {
    fn default() -> Spam {
        Spam {
            possible_junk: default_possible_junk(),
            junk: default_junk(),
            dnsbl: Vec::new(),
        }
    }
}

impl Default for Pop3 {
    fn default() -> Pop3 {
        Pop3 {
            delete: default_pop3_delete(),
            mark_seen: true,
        }
    }
}

fn default_hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && !h.contains(char::is_whitespace))
        .unwrap_or_else(|| "localhost".to_string())
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("./satchel-data")
}
fn default_possible_junk() -> i64 {
    60
}
fn default_junk() -> i64 {
    100
}
fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("satchel.toml");
        std::fs::write(&path, text)?;
        Config::load(Some(&path)).map_err(|e| anyhow::anyhow!("{e:#}"))
    }

    #[test]
    fn connection_limits_override_the_defaults_and_zero_is_refused() {
        let c = parse("[limits]\nimap_per_ip = 20000\nimap_per_user = 5000\n").unwrap();
        assert_eq!(c.limits.imap_per_ip, Some(20000));
        assert_eq!(c.limits.imap_per_user, Some(5000));
        assert_eq!(c.limits.pop3_per_ip, None);
        let e = parse("[limits]\nsmtp_per_ip = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("limits.smtp_per_ip") && e.contains("at least 1"),
            "{e}"
        );
        let e = parse("[limits]\nimap_connections = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("imap_connections"), "{e}");
    }

    #[test]
    fn the_contract_example_parses() {
        let c = parse(
            r#"
hostname = "mail.example.test"
data_dir = "./satchel-data"
domains  = ["example.test"]
[listen]
smtp = ["127.0.0.1:2525"]
imap = ["127.0.0.1:1143", "[::1]:1143"]
[tls]
cert = "cert.pem"
key  = "key.pem"
[storage]
backend = "embedded"
[spam]
possible_junk = 60
junk = 100
dnsbl = ["zen.spamhaus.org", "bl.example.test"]
[pop3]
delete = "hide"
mark_seen = false
[relay]
smarthost = "127.0.0.1:10025"
[auth]
plaintext_anywhere = false
"#,
        )
        .unwrap();
        assert_eq!(c.listen.imap.len(), 2);
        assert!(c.listen.pop3.is_empty(), "a door left out is off");
        assert_eq!(c.pop3.delete, Pop3Delete::Hide);
        assert!(!c.pop3.mark_seen);
        assert_eq!(c.spam.dnsbl, ["zen.spamhaus.org", "bl.example.test"]);
    }

    #[test]
    fn a_config_file_starts_only_the_doors_it_lists() {
        let c = parse("hostname = \"mx.example.test\"\n").unwrap();
        assert!(c.listen.imap.is_empty() && c.listen.smtp.is_empty());
        let e = c.listen.check_some_door().unwrap_err().to_string();
        assert!(e.contains("[listen] names no door"), "{e}");
        let c = parse("[listen]\nhttp = [\"127.0.0.1:8080\"]\n").unwrap();
        c.listen.check_some_door().unwrap();
        let c = parse("[listen]\nsubmission = [\"127.0.0.1:2587\"]\n").unwrap();
        c.listen.check_some_door().unwrap();
        let c = parse("[queue]\nretry = [\"1s\", \"2m\"]\nexpire = \"1h\"\n").unwrap();
        assert_eq!(
            c.queue.retry,
            [
                std::time::Duration::from_secs(1),
                std::time::Duration::from_secs(120)
            ]
        );
        assert!(parse("[queue]\nexpire = \"soon\"\n").is_err());
        assert!(parse("[submission]\nsent_copy = \"twice\"\n").is_err());
        let c = parse("[listen]\npop3 = [\"127.0.0.1:1110\"]\n").unwrap();
        c.listen.check_some_door().unwrap();
        assert!(c.listen.imap.is_empty());
        // No config file at all: every door on its development port.
        let c = Config::load(None).unwrap();
        c.listen.check_some_door().unwrap();
        assert_eq!(
            c.listen.imap,
            vec![SocketAddr::from(([127, 0, 0, 1], 1143))]
        );
    }

    #[test]
    fn bad_values_name_key_value_and_choices() {
        let e = parse("[pop3]\ndelete = \"shred\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("satchel.toml"), "{e}");
        assert!(
            e.contains("delete") && e.contains("shred") && e.contains("expunge"),
            "{e}"
        );
        let e = parse("[spam]\npossible_junk = 120\njunk = 100\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("possible_junk = 120"), "{e}");
        let e = parse("[spam]\ndnsbl = [\"not a zone\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("spam.dnsbl") && e.contains("not a zone"), "{e}");
        let e = parse("[storage]\nbackend = \"postgres\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("storage.url"), "{e}");
        let e = parse("[storage]\nbody_cache_mb = 100\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("body_cache_mb") && e.contains("PostgreSQL"),
            "{e}"
        );
    }
}
