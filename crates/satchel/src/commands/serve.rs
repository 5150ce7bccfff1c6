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
    store.watch_other_processes();
    store.collect_in_background();
    let housekeeper = store.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(MAINTENANCE_INTERVAL);
        loop {
            every.tick().await;
            if let Err(e) = housekeeper.maintenance().await {
                tracing::warn!("store maintenance failed: {e}");
            }
        }
    });
    tokio::spawn(pipeline::run_trainer(store.clone()));
    super::say(&format!(
        "store embedded {} (hostname {})",
        config.data_dir.display(),
        config.hostname
    ))?;

    let l = &config.listen;
    let addresses: Vec<std::net::IpAddr> = [
        &l.smtp,
        &l.imap,
        &l.imaps,
        &l.pop3,
        &l.pop3s,
        &l.managesieve,
    ]
    .into_iter()
    .flatten()
    .map(|a| a.ip())
    .collect();
    let tls = door::tls::server_config(
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

    // One count of failed logins for every door: guesses on IMAP slow
    // POP3 and ManageSieve down too.
    let throttle = door::LoginThrottle::new();
    let imap = imap::Server::new(store.clone(), Some(tls.clone()), {
        let d = imap::Settings::default();
        imap::Settings {
            plaintext_anywhere: config.auth.plaintext_anywhere,
            max_connections_per_ip: limits.imap_per_ip.unwrap_or(d.max_connections_per_ip),
            max_connections_per_user: limits.imap_per_user.unwrap_or(d.max_connections_per_user),
            throttle: throttle.clone(),
            ..d
        }
    });
    for (addrs, implicit_tls, name) in [
        (&config.listen.imap, false, "imap"),
        (&config.listen.imaps, true, "imaps"),
    ] {
        for addr in addrs {
            let listener = bind(*addr, name).await?;
            super::say(&format!("{name} {}", listener.local_addr()?))?;
            tokio::spawn(door::listen(
                imap.clone(),
                listener,
                implicit_tls,
                stopped.clone(),
            ));
        }
    }

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
            throttle: throttle.clone(),
            ..pop3::Settings::default()
        },
    );
    for (addrs, implicit_tls, name) in [
        (&config.listen.pop3, false, "pop3"),
        (&config.listen.pop3s, true, "pop3s"),
    ] {
        for addr in addrs {
            let listener = bind(*addr, name).await?;
            super::say(&format!("{name} {}", listener.local_addr()?))?;
            tokio::spawn(door::listen(
                pop3.clone(),
                listener,
                implicit_tls,
                stopped.clone(),
            ));
        }
    }

    let managesieve = managesieve::Server::new(
        store.clone(),
        Some(tls.clone()),
        managesieve::Settings {
            plaintext_anywhere: config.auth.plaintext_anywhere,
            max_connections_per_ip: limits
                .managesieve_per_ip
                .unwrap_or(managesieve::Settings::default().max_connections_per_ip),
            throttle,
            ..managesieve::Settings::default()
        },
    );
    for addr in &config.listen.managesieve {
        let listener = bind(*addr, "managesieve").await?;
        super::say(&format!("managesieve {}", listener.local_addr()?))?;
        tokio::spawn(door::listen(
            managesieve.clone(),
            listener,
            false,
            stopped.clone(),
        ));
    }

    let thresholds = config.spam.thresholds();
    let (before, global) = config.sieve.load()?;
    let mut pipeline = pipeline::Pipeline::new(store.clone(), &config.hostname, &config.domains)
        .with_spam(
            Box::new(pipeline::StoreScorer::resident(store.clone())),
            thresholds,
        )
        .with_sieve(before, global);
    match pipeline::SenderChecks::from_env() {
        Ok(checks) => {
            pipeline = pipeline
                .with_sender_checks(checks)
                .with_dnsbl(&config.spam.dnsbl)
        }
        // Mail still flows; it just carries no verdicts.
        Err(e) => tracing::warn!("no SPF/DKIM/DMARC checks: {e}"),
    }
    let pipeline = Arc::new(pipeline);
    let smtp_settings = smtp::Settings::default();
    let smtp = smtp::Server::new(
        pipeline,
        Some(tls.clone()),
        smtp::Settings {
            max_connections_per_ip: limits
                .smtp_per_ip
                .unwrap_or(smtp_settings.max_connections_per_ip),
            ..smtp_settings
        },
    );
    for addr in &config.listen.smtp {
        let listener = bind(*addr, "smtp").await?;
        super::say(&format!("smtp {}", listener.local_addr()?))?;
        tokio::spawn(door::listen(smtp.clone(), listener, false, stopped.clone()));
    }

    tokio::select! {
        _ = interrupt.recv() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    let _ = stop.send(true);
    tokio::time::sleep(SHUTDOWN_GRACE).await;
    Ok(())
}

async fn bind(addr: SocketAddr, door: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen for {door} on {addr}; is another server using the port?")
    })
}
