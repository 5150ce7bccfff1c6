//! `satchel serve`: opens the store, starts the doors, runs until SIGINT or
//! SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use store::MailStore;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::config::Config;

/// How often the store's housekeeping runs (and once at start).
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(6 * 3600);
/// How long sessions get to say goodbye after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(300);

pub async fn run(config: &Config, store: Arc<dyn MailStore>) -> anyhow::Result<()> {
    // Taken first: a SIGTERM while the doors start must stop cleanly too.
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    store.watch_other_processes();
    store.collect_in_background();
    let housekeeper = store.clone();
    let trace_days = i64::from(config.trace.days);
    let imap = config.imap.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(MAINTENANCE_INTERVAL);
        loop {
            every.tick().await;
            if let Err(e) = housekeeper.maintenance().await {
                tracing::warn!("store maintenance failed: {e}");
            }
            // The message trace keeps `[trace] days`.
            let before = store::unix_now() - trace_days * 86_400;
            if let Err(e) = housekeeper.prune_trace(before).await {
                tracing::warn!("trace: cannot prune old entries: {e}");
            }
            // QRESYNC's expunge records keep `[imap] expunged_days` and
            // `expunged_kept`; past them, resyncs get the longer answer.
            let before = store::unix_now() - i64::from(imap.expunged_days) * 86_400;
            if let Err(e) = housekeeper.prune_expunged(before, imap.expunged_kept).await {
                tracing::warn!("cannot prune old expunge records: {e}");
            }
            // Failed logins past the throttle's window and addresses an
            // account stopped logging in from are forgotten.
            let (window, known) = (door::LoginThrottle::WINDOW, door::LoginThrottle::KNOWN_FOR);
            if let Err(e) = housekeeper.prune_logins(window, known).await {
                tracing::warn!("cannot prune the login throttle's records: {e}");
            }
        }
    });
    tokio::spawn(pipeline::run_trainer(store.clone()));
    let kept = match config.storage.backend {
        crate::config::Backend::Embedded => format!("embedded {}", config.data_dir.display()),
        crate::config::Backend::Postgres => format!(
            "postgres {}",
            store::without_password(config.storage.url.as_deref().unwrap_or_default())
        ),
    };
    super::say(&format!("store {kept} (hostname {})", config.hostname))?;

    let l = &config.listen;
    let addresses: Vec<std::net::IpAddr> = [
        &l.smtp,
        &l.submission,
        &l.submissions,
        &l.imap,
        &l.imaps,
        &l.pop3,
        &l.pop3s,
        &l.managesieve,
        &l.http,
        &l.https,
    ]
    .into_iter()
    .flatten()
    .map(|a| a.ip())
    .collect();
    let door::tls::Tls {
        config: tls,
        certificate,
    } = door::tls::server_config(
        &config.data_dir,
        config
            .tls
            .as_ref()
            .map(|t| (t.cert.as_path(), t.key.as_path())),
        &config.hostname,
        &addresses,
    )
    .context("cannot set up TLS")?;
    let (stop, stopped) = watch::channel(false);
    let limits = &config.limits;
    let totals = DoorTotals::new(limits, open_files_limit());

    // One count of failed logins for every door: guesses on IMAP slow
    // POP3 and ManageSieve down too.
    let throttle = door::LoginThrottle::new();
    // One register of logged-in sessions: removing an account ends them on
    // every door.
    let sessions = door::Sessions::default();
    // One budget of memory for messages being received, for every door.
    let in_flight = match limits.in_flight_mb {
        Some(mb) => door::InFlight::new((mb as u64) << 20),
        None => door::InFlight::default(),
    };
    let imap = imap::Server::new(store.clone(), Some(tls.clone()), {
        let d = imap::Settings::default();
        imap::Settings {
            plaintext_anywhere: config.auth.plaintext_anywhere,
            max_connections_per_ip: limits.imap_per_ip.unwrap_or(d.max_connections_per_ip),
            max_connections_per_user: limits.imap_per_user.unwrap_or(d.max_connections_per_user),
            max_connections: totals.imap,
            throttle: throttle.clone(),
            sessions: sessions.clone(),
            in_flight: in_flight.clone(),
            sent_copy: config.submission.sent_copy,
            ..d
        }
    });
    // The ports mail clients are told of (autoconfiguration): each door's
    // first, as bound.
    let mut ports = web::MailPorts {
        hostname: config.hostname.clone(),
        ..web::MailPorts::default()
    };
    ports.imap = open(imap.clone(), &config.listen.imap, false, "imap", &stopped).await?;
    ports.imaps = open(imap.clone(), &config.listen.imaps, true, "imaps", &stopped).await?;

    let pop3 = pop3::Server::new(
        store.clone(),
        Some(tls.clone()),
        pop3::Settings {
            delete: config.pop3.delete,
            mark_seen: config.pop3.mark_seen,
            plaintext_anywhere: config.auth.plaintext_anywhere,
            max_connections_per_ip: limits
                .pop3_per_ip
                .unwrap_or(pop3::Settings::default().max_connections_per_ip),
            max_connections: totals.pop3,
            throttle: throttle.clone(),
            sessions: sessions.clone(),
            ..pop3::Settings::default()
        },
    );
    ports.pop3 = open(pop3.clone(), &config.listen.pop3, false, "pop3", &stopped).await?;
    ports.pop3s = open(pop3.clone(), &config.listen.pop3s, true, "pop3s", &stopped).await?;

    let managesieve = managesieve::Server::new(
        store.clone(),
        Some(tls.clone()),
        managesieve::Settings {
            plaintext_anywhere: config.auth.plaintext_anywhere,
            max_connections_per_ip: limits
                .managesieve_per_ip
                .unwrap_or(managesieve::Settings::default().max_connections_per_ip),
            max_connections: totals.managesieve,
            throttle: throttle.clone(),
            sessions: sessions.clone(),
            ..managesieve::Settings::default()
        },
    );
    open(
        managesieve,
        &config.listen.managesieve,
        false,
        "managesieve",
        &stopped,
    )
    .await?;

    let thresholds = config.spam.thresholds();
    let (before, global) = config.sieve.load()?;
    let mut pipeline = pipeline::Pipeline::new(store.clone(), &config.hostname, &config.domains)
        .with_spam(
            Box::new(pipeline::StoreScorer::resident(store.clone())),
            thresholds,
        )
        .with_sieve(before, global)
        .with_postmaster(config.postmaster.clone());
    if let Some(p) = &config.postmaster
        && store.account(p).await?.is_none()
    {
        tracing::warn!(
            "postmaster = {p:?} names no account; postmaster@ goes to the oldest admin account instead"
        );
    }
    if pipeline.postmaster().await? == pipeline::Recipient::Unknown {
        tracing::warn!(
            "no postmaster account: mail to postmaster@ is refused until `postmaster` names an account or one has the admin role (satchel user add --admin)"
        );
    }
    let dns = match pipeline::Dns::from_env() {
        Ok(dns) => {
            let dns = Arc::new(dns);
            pipeline = pipeline
                .with_sender_checks(pipeline::SenderChecks::new(dns.clone()))
                .with_dnsbl(&config.spam.dnsbl);
            Some(dns)
        }
        // Mail still flows; it just carries no verdicts (and remote mail
        // waits in the queue).
        Err(e) => {
            tracing::warn!("no DNS: no SPF/DKIM/DMARC checks, no MX lookups: {e}");
            None
        }
    };
    let pipeline = Arc::new(pipeline);
    let web_dns = dns.clone();
    let relay = relay::Relay::new(
        store.clone(),
        pipeline.clone(),
        dns,
        relay_settings(config)?,
    );
    tokio::spawn(relay.run(stopped.clone()));
    // One count of messages per account for every door that sends.
    let hourly = Arc::new(door::HourlyLimit::new(config.submission.max_per_hour));
    // The junk reports and the retention of Junk, once a day; the web
    // checks the reports' release links with the same key.
    let links = Arc::new(quarantine::Links::open(store.as_ref()).await?);
    tokio::spawn(quarantine::run_daily(
        store.clone(),
        links.clone(),
        super::junk_report::settings(config),
        config.junk_report.hour,
    ));
    let web = web::Web::new(
        store.clone(),
        pipeline.clone(),
        throttle.clone(),
        hourly.clone(),
        links,
        web::Settings {
            plaintext_anywhere: config.auth.plaintext_anywhere,
            max_connections: totals.http,
            max_connections_per_ip: limits
                .http_per_ip
                .unwrap_or(web::Settings::default().max_connections_per_ip),
            sent_copy: config.submission.sent_copy,
            trusted_proxies: config.web.trusted_proxies.clone(),
            local_domains: config.domains.clone(),
            metrics: config.web.metrics,
            ..web::Settings::default()
        },
    );
    if let Some(dns) = web_dns {
        web.set_dns(dns);
    }
    tokio::spawn(end_removed_accounts(
        store.clone(),
        sessions.clone(),
        web.clone(),
    ));
    let smtp_settings = smtp::Settings {
        in_flight: in_flight.clone(),
        ..smtp::Settings::default()
    };
    let submission = smtp::Server::submission(
        pipeline.clone(),
        Some(tls.clone()),
        smtp::Settings {
            max_connections_per_ip: limits
                .smtp_per_ip
                .unwrap_or(smtp_settings.max_connections_per_ip),
            max_connections: totals.smtp,
            ..smtp_settings.clone()
        },
        smtp::Submit {
            store: store.clone(),
            throttle: throttle.clone(),
            sessions: sessions.clone(),
            plaintext_anywhere: config.auth.plaintext_anywhere,
            sent_copy: config.submission.sent_copy,
            hourly: hourly.clone(),
        },
    );
    ports.submission = open(
        submission.clone(),
        &config.listen.submission,
        false,
        "submission",
        &stopped,
    )
    .await?;
    ports.submissions = open(
        submission.clone(),
        &config.listen.submissions,
        true,
        "submissions",
        &stopped,
    )
    .await?;
    let smtp = smtp::Server::new(
        pipeline,
        Some(tls.clone()),
        smtp::Settings {
            max_connections_per_ip: limits
                .smtp_per_ip
                .unwrap_or(smtp_settings.max_connections_per_ip),
            max_connections: totals.smtp,
            ..smtp_settings
        },
    );
    open(smtp, &config.listen.smtp, false, "smtp", &stopped).await?;
    // The web door starts last, once every mail door's port is known: its
    // autoconfig answers name them, and a client that saw the web door
    // announced must get them, not a "starting" answer.
    web.set_mail_ports(ports);
    for addr in &config.listen.http {
        let listener = bind(*addr, "http").await?;
        super::say(&format!("http {}", listener.local_addr()?))?;
        tokio::spawn(web.clone().serve(listener, stopped.clone()));
    }
    for addr in &config.listen.https {
        let listener = bind(*addr, "https").await?;
        super::say(&format!("https {}", listener.local_addr()?))?;
        tokio::spawn(
            web.clone()
                .serve_tls(listener, tls.clone(), stopped.clone()),
        );
    }

    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = term.recv() => break,
            // SIGHUP: a renewed certificate (certbot's deploy hook) is
            // taken for new connections; open sessions go on.
            _ = hangup.recv() => match certificate.reload() {
                Ok(()) => tracing::info!(
                    "TLS: reloaded the certificate {}",
                    certificate.path().display()
                ),
                Err(e) => tracing::warn!("TLS: kept the certificate in use: {e}"),
            },
        }
    }
    tracing::info!("shutting down");
    let _ = stop.send(true);
    tokio::time::sleep(SHUTDOWN_GRACE).await;
    Ok(())
}

/// Ends the sessions of accounts removed while in use, on every door and
/// the web, whichever process removed them (`satchel user remove` runs in
/// its own; the store's feed relays it). A lagging feed may have lost a
/// removal, so then every account with sessions is looked up.
async fn end_removed_accounts(store: Arc<dyn MailStore>, sessions: door::Sessions, web: web::Web) {
    use tokio::sync::broadcast::error::RecvError;
    let mut feed = store.subscribe();
    loop {
        let gone = match feed.recv().await {
            Ok(change) if change.removes_account() => vec![change.account_id],
            Ok(_) => continue,
            Err(RecvError::Lagged(_)) => match store.list_accounts().await {
                Ok(accounts) => {
                    let live: std::collections::HashSet<_> =
                        accounts.iter().map(|a| a.id).collect();
                    sessions
                        .accounts()
                        .into_iter()
                        .filter(|a| !live.contains(a))
                        .collect()
                }
                Err(e) => {
                    tracing::warn!("cannot check for removed accounts: {e}");
                    continue;
                }
            },
            Err(RecvError::Closed) => return,
        };
        for account in gone {
            let on_doors = sessions.end(account);
            let on_web = match web.end_account(account).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!("cannot end the web sessions of removed account {account}: {e}");
                    0
                }
            };
            if on_doors || on_web > 0 {
                tracing::info!("account {account} removed: its open sessions were ended");
            }
        }
    }
}

/// How the queue runs, from `[relay]` and `[queue]`. `SATCHEL_MX_PORT`
/// (tests only) sends MX deliveries to another port than 25.
fn relay_settings(config: &Config) -> anyhow::Result<relay::Settings> {
    let mx_port = match std::env::var("SATCHEL_MX_PORT") {
        Ok(p) => p
            .parse()
            .with_context(|| format!("SATCHEL_MX_PORT={p:?} is not a port number"))?,
        Err(_) => relay::route::MX_PORT,
    };
    let auth = match (
        &config.relay.smarthost_user,
        &config.relay.smarthost_password,
    ) {
        (Some(user), Some(password)) => Some(relay::client::Credentials {
            user: user.clone(),
            password: password.clone(),
        }),
        (None, None) => None,
        _ => anyhow::bail!(
            "[relay] smarthost_user and smarthost_password go together; give both or neither"
        ),
    };
    let smarthost_tls = match &config.relay.smarthost_ca {
        Some(path) => Some(
            relay::client::verified_tls_with_ca(path)
                .map_err(|e| anyhow::anyhow!("[relay] smarthost_ca = {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let q = &config.queue;
    Ok(relay::Settings {
        hostname: config.hostname.clone(),
        smarthost: config.relay.smarthost.clone(),
        smarthost_auth: auth,
        smarthost_tls,
        mx_port,
        retry: q.retry.clone(),
        expire: q.expire,
        delay_notice: (!q.delay_notice.is_zero()).then_some(q.delay_notice),
        ..relay::Settings::default()
    })
}

/// Listens on each address for the door, says where on standard output
/// (`NAME ADDRESS`, the line tests and scripts read), and serves it until
/// `stopped`; the first port bound.
async fn open<D: door::Door>(
    server: Arc<D>,
    addrs: &[SocketAddr],
    implicit_tls: bool,
    name: &str,
    stopped: &watch::Receiver<bool>,
) -> anyhow::Result<Option<u16>> {
    let mut first = None;
    for addr in addrs {
        let listener = bind(*addr, name).await?;
        let bound = listener.local_addr()?;
        first.get_or_insert(bound.port());
        super::say(&format!("{name} {bound}"))?;
        tokio::spawn(door::listen(
            server.clone(),
            listener,
            implicit_tls,
            stopped.clone(),
        ));
    }
    Ok(first)
}

async fn bind(addr: SocketAddr, door: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen for {door} on {addr}; is another server using the port?")
    })
}

/// Descriptors kept for the store (index, WAL, blobs being written) and the
/// listeners, whatever the clients do.
const RESERVED_FILES: u64 = 256;

/// Raises the soft limit on open files to the hard one (a server needs one
/// descriptor per connection) and says so once; returns the limit now in
/// force.
fn open_files_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    let before = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    if lim.rlim_cur != before {
        tracing::info!(
            "open files: soft limit raised from {before} to {}",
            lim.rlim_cur
        );
    }
    lim.rlim_cur
}

/// Each door's cap on connections from everywhere: the configured (or
/// default) totals, scaled down together when they would not leave
/// [`RESERVED_FILES`] of the open-files limit for the store.
struct DoorTotals {
    imap: usize,
    pop3: usize,
    smtp: usize,
    managesieve: usize,
    http: usize,
}

impl DoorTotals {
    fn new(limits: &crate::config::Limits, open_files: u64) -> DoorTotals {
        let wanted = [
            limits
                .imap_total
                .unwrap_or(imap::Settings::default().max_connections),
            limits
                .pop3_total
                .unwrap_or(pop3::Settings::default().max_connections),
            limits
                .smtp_total
                .unwrap_or(smtp::Settings::default().max_connections),
            limits
                .managesieve_total
                .unwrap_or(managesieve::Settings::default().max_connections),
            limits
                .http_total
                .unwrap_or(web::Settings::default().max_connections),
        ];
        let budget = open_files.saturating_sub(RESERVED_FILES).max(4) as usize;
        let sum: usize = wanted.iter().sum();
        let scaled = wanted.map(|w| {
            if sum <= budget {
                w
            } else {
                (w as u128 * budget as u128 / sum as u128).max(1) as usize
            }
        });
        if sum > budget {
            tracing::warn!(
                "open files: the limit of {open_files} leaves room for {budget} connections, \
                 so the doors take at most imap {}, pop3 {}, smtp {}, managesieve {}, \
                 http {}; raise the hard limit (LimitNOFILE= in systemd) for more",
                scaled[0],
                scaled[1],
                scaled[2],
                scaled[3],
                scaled[4]
            );
        }
        DoorTotals {
            imap: scaled[0],
            pop3: scaled[1],
            smtp: scaled[2],
            managesieve: scaled[3],
            http: scaled[4],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_fit_the_open_files_limit() {
        let limits = crate::config::Limits::default();
        let roomy = DoorTotals::new(&limits, 1 << 20);
        assert_eq!(
            (
                roomy.imap,
                roomy.pop3,
                roomy.smtp,
                roomy.managesieve,
                roomy.http
            ),
            (20_000, 2_000, 500, 500, 2_000)
        );
        let tight = DoorTotals::new(&limits, 1024);
        let sum = tight.imap + tight.pop3 + tight.smtp + tight.managesieve + tight.http;
        assert!(sum <= 1024 - RESERVED_FILES as usize, "{sum}");
        assert!(tight.smtp >= 1 && tight.managesieve >= 1 && tight.http >= 1);
        assert!(tight.imap > tight.pop3, "the shares keep their order");
    }
}
