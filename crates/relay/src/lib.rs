//! The outbound queue's runner: takes due recipients from the store's
//! queue, delivers them with our SMTP client (to the smarthost, or each
//! domain's MX hosts in order), records each recipient's outcome, retries
//! on a schedule, and bounces with a DSN (RFC 3464) what fails for good or
//! expires. Each round's messages for a domain go over one connection;
//! mail that comes due while a round runs starts another, so a busy domain
//! gets up to `concurrency` connections at once (Postfix's default
//! destination concurrency is the same 20).
//!
//! Delivery is at least once: a recipient's state is written before the
//! attempt (taken, with a lease) and after it (delivered, retried, failed).
//! If the server dies between the far end's 250 and our write, the lease
//! is given back at the next start and that recipient gets the message a
//! second time; the window is the time of one index commit, and at most
//! one message per open connection is in it.

pub mod client;
pub mod route;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use pipeline::dsn;
use pipeline::{Dns, Pipeline};
use store::{Attempt, MailStore, Outcome, Queued};
use tokio::sync::{Semaphore, watch};

use client::{Connection, Credentials, Dial, Verdict};
use route::{Hop, NoRoute};

/// How the queue is run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Our name in EHLO and in DSNs.
    pub hostname: String,
    /// Every message goes to this `host:port` instead of the MX hosts.
    pub smarthost: Option<String>,
    /// Logging in to the smarthost: then STARTTLS is required (unless it is
    /// on loopback) and its certificate checked against `smarthost_tls`.
    pub smarthost_auth: Option<Credentials>,
    /// How the smarthost's certificate is checked when we log in to it
    /// (`client::verified_tls`); `None`: Mozilla's roots only.
    pub smarthost_tls: Option<Arc<rustls::ClientConfig>>,
    /// The port MX hosts are reached on (25; tests use their own).
    pub mx_port: u16,
    /// Waits between attempts; the last one repeats.
    pub retry: Vec<Duration>,
    /// A message still undelivered this long after it was queued is
    /// bounced.
    pub expire: Duration,
    /// The sender hears that a message is delayed once it is this old.
    pub delay_notice: Option<Duration>,
    /// Domains delivered to at once.
    pub concurrency: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        let m = |n: u64| Duration::from_secs(n * 60);
        Settings {
            hostname: "localhost".into(),
            smarthost: None,
            smarthost_auth: None,
            smarthost_tls: None,
            mx_port: route::MX_PORT,
            retry: vec![m(5), m(15), m(30), m(60), m(120), m(240)],
            expire: Duration::from_secs(5 * 86_400),
            delay_notice: Some(m(240)),
            concurrency: 20,
        }
    }
}

/// Recipients taken from the queue in one go.
const BATCH: usize = 200;
/// How often the queue is looked at when nothing woke the runner (another
/// process queued mail, or `satchel queue retry`).
const POLL: Duration = Duration::from_secs(1);

pub struct Relay {
    store: Arc<dyn MailStore>,
    pipeline: Arc<Pipeline>,
    dns: Option<Arc<Dns>>,
    settings: Settings,
    tls: Arc<rustls::ClientConfig>,
    /// For a smarthost we log in to: certificates checked (none: they
    /// cannot be, and nothing is sent to it).
    verified_tls: Option<Arc<rustls::ClientConfig>>,
    slots: Arc<Semaphore>,
}

impl Relay {
    pub fn new(
        store: Arc<dyn MailStore>,
        pipeline: Arc<Pipeline>,
        dns: Option<Arc<Dns>>,
        settings: Settings,
    ) -> Arc<Relay> {
        Arc::new(Relay {
            store,
            pipeline,
            dns,
            slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            verified_tls: settings
                .smarthost_tls
                .clone()
                .or_else(|| client::verified_tls(&[]).ok()),
            settings,
            tls: client::opportunistic_tls(),
        })
    }

    /// Runs the queue until `shutdown`. Deliveries under way when it ends
    /// are not recorded; their leases are given back at the next start.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        if let Err(e) = self.store.release_leases().await {
            tracing::error!("queue: cannot take back earlier runs' recipients: {e}");
        }
        let wake = self.pipeline.queue_wake();
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.clone().round().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::error!("queue: cannot read the queue: {e}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = wake.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Takes what is due and starts its deliveries, one task per domain;
    /// returns how many recipients it took.
    async fn round(self: Arc<Self>) -> Result<usize, store::Error> {
        let due = self.store.claim_due(store::unix_now(), BATCH).await?;
        let taken = due.iter().map(|m| m.recipients.len()).sum();
        let mut by_domain: BTreeMap<String, Vec<Queued>> = BTreeMap::new();
        for message in due {
            let mut split: BTreeMap<String, Queued> = BTreeMap::new();
            for r in &message.recipients {
                let key = match &self.settings.smarthost {
                    Some(_) => String::new(),
                    None => domain_of(&r.address),
                };
                split
                    .entry(key)
                    .or_insert_with(|| Queued {
                        recipients: Vec::new(),
                        ..message.clone()
                    })
                    .recipients
                    .push(r.clone());
            }
            for (domain, part) in split {
                by_domain.entry(domain).or_default().push(part);
            }
        }
        for (domain, messages) in by_domain {
            let Ok(slot) = self.slots.clone().acquire_owned().await else {
                break;
            };
            let relay = self.clone();
            tokio::spawn(async move {
                relay.deliver_domain(&domain, messages).await;
                drop(slot);
            });
        }
        Ok(taken)
    }

    /// Delivers messages for one domain over one connection at a time,
    /// trying its servers in order.
    async fn deliver_domain(&self, domain: &str, messages: Vec<Queued>) {
        let hops = match &self.settings.smarthost {
            Some(spec) => route::smarthost(spec).await,
            None => match &self.dns {
                Some(dns) => route::hops(dns, domain, self.settings.mx_port).await,
                None => Err(NoRoute::Temporary(
                    "451 4.4.3 no DNS resolver is set up on this server".into(),
                )),
            },
        };
        let hops = match hops {
            Ok(h) => h,
            Err(no) => {
                let verdict = match no {
                    NoRoute::Permanent(why) => Verdict::Failed(why),
                    NoRoute::Temporary(why) => Verdict::Deferred(why),
                };
                for m in &messages {
                    let all = vec![verdict.clone(); m.recipients.len()];
                    self.settle(m, all, None, None).await;
                }
                return;
            }
        };
        let mut conn: Option<(Connection, usize)> = None;
        let mut next_hop = 0;
        for message in &messages {
            let body = match self.store.read_queued(message).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!("queue: {} cannot be read: {e}", message.qid);
                    let v =
                        Verdict::Deferred(format!("451 4.3.0 the queued copy cannot be read: {e}"));
                    self.settle(message, vec![v; message.recipients.len()], None, None)
                        .await;
                    continue;
                }
            };
            let rcpts: Vec<String> = message
                .recipients
                .iter()
                .map(|r| r.address.clone())
                .collect();
            if conn.is_none() {
                match self.connect(&hops, &mut next_hop).await {
                    Ok(c) => conn = Some(c),
                    Err(why) => {
                        // No server of the domain answers: the rest wait too.
                        for m in messages.iter().skip_while(|m| m.id != message.id) {
                            let v = Verdict::Deferred(why.clone());
                            self.settle(m, vec![v; m.recipients.len()], None, None)
                                .await;
                        }
                        return;
                    }
                }
            }
            let Some((c, hop)) = conn.as_mut() else {
                continue;
            };
            let host = hops[*hop].host.clone();
            match c
                .send(&message.sender, &rcpts, &body, message.eight_bit)
                .await
            {
                Ok(verdicts) => {
                    self.settle(message, verdicts, Some(&host), Some(&body))
                        .await
                }
                Err(e) => {
                    // The connection is gone; what was open on it waits.
                    let v = Verdict::Deferred(format!("451 4.4.2 {host}: {e}"));
                    self.settle(message, vec![v; rcpts.len()], Some(&host), Some(&body))
                        .await;
                    conn = None;
                }
            }
        }
        if let Some((c, _)) = conn {
            c.quit().await;
        }
    }

    /// A session with the first server from `next` on that takes one.
    async fn connect(&self, hops: &[Hop], next: &mut usize) -> Result<(Connection, usize), String> {
        let mut last = String::from("451 4.4.1 no server to try");
        while *next < hops.len() {
            let hop = &hops[*next];
            let auth = self
                .settings
                .smarthost
                .as_ref()
                .and(self.settings.smarthost_auth.as_ref());
            // A password goes only to a server that proved its name, over
            // TLS; a relay on loopback may take it in the clear.
            let tls = match (auth, &self.verified_tls) {
                (None, _) => self.tls.clone(),
                (Some(_), Some(verified)) => verified.clone(),
                (Some(_), None) => {
                    return Err(format!(
                        "451 4.7.0 {}: no certificates to check the smarthost with; the password is not sent",
                        hop.host
                    ));
                }
            };
            let dial = Dial {
                addr: hop.addr,
                host: &hop.host,
                helo: &self.settings.hostname,
                tls,
                auth,
                require_tls: auth.is_some() && !hop.addr.ip().is_loopback(),
            };
            match Connection::open(dial).await {
                Ok(c) => return Ok((c, *next)),
                Err(e) => {
                    tracing::info!("queue: {} ({}) not usable: {e}", hop.host, hop.addr);
                    last = match e {
                        client::ClientError::Refused(reply) if reply.permanent() => {
                            format!("{} {}: {}", 451, hop.host, reply.one_line())
                        }
                        e => format!("451 4.4.1 {} ({}): {e}", hop.host, hop.addr),
                    };
                }
            }
            *next += 1;
        }
        Err(last)
    }

    /// Records what happened to a message's recipients: delivered ones
    /// leave the queue, failed ones wait for the message's end, the others
    /// for their next try. The sender hears once of a long delay, and once
    /// the message is done, in one DSN, of every recipient it failed for.
    /// `body` is the queued copy when the caller has read it.
    async fn settle(
        &self,
        message: &Queued,
        verdicts: Vec<Verdict>,
        host: Option<&str>,
        body: Option<&[u8]>,
    ) {
        let now = store::unix_now();
        let expires = message.created + self.settings.expire.as_secs() as i64;
        let notice_at = self
            .settings
            .delay_notice
            .map(|d| message.created + d.as_secs() as i64);
        let mut attempts = Vec::new();
        let mut delayed: Vec<(String, String)> = Vec::new();
        for (r, verdict) in message.recipients.iter().zip(verdicts) {
            let via = host.unwrap_or("-");
            let (outcome, answer) = match verdict {
                Verdict::Delivered(answer) => {
                    tracing::info!(
                        "queue: {} to <{}> via {via}: delivered: {answer}",
                        message.qid,
                        r.address
                    );
                    (Outcome::Delivered, answer)
                }
                Verdict::Failed(answer) => {
                    tracing::info!(
                        "queue: {} to <{}> via {via}: failed: {answer}",
                        message.qid,
                        r.address
                    );
                    (Outcome::Failed, answer)
                }
                Verdict::Deferred(answer) if now >= expires => {
                    let days = self.settings.expire.as_secs() as f64 / 86_400.0;
                    let why = format!("{answer} (given up after {days:.1} days of trying)");
                    tracing::info!("queue: {} to <{}>: expired: {why}", message.qid, r.address);
                    (Outcome::Failed, why)
                }
                Verdict::Deferred(answer) => {
                    let wait = self.wait_after(r.attempts + 1);
                    let at = (now + wait.as_secs() as i64).min(expires.max(now + 1));
                    let notify = !r.delayed && notice_at.is_some_and(|t| now >= t);
                    if notify {
                        delayed.push((r.address.clone(), answer.clone()));
                    }
                    tracing::info!(
                        "queue: {} to <{}> via {via}: deferred, next try in {}s: {answer}",
                        message.qid,
                        r.address,
                        at - now
                    );
                    (
                        Outcome::Retry {
                            at,
                            delayed: r.delayed || notify,
                        },
                        answer,
                    )
                }
            };
            attempts.push(Attempt {
                address: r.address.clone(),
                outcome,
                answer,
            });
        }
        if !delayed.is_empty() {
            self.bounce(
                message,
                &delayed,
                dsn::Action::Delayed { until: expires },
                None,
            )
            .await;
        }
        // When nothing of this round waits, the record may finish the
        // message and hand its copy to the collector: a DSN needs it read
        // first.
        let may_finish = attempts
            .iter()
            .all(|a| !matches!(a.outcome, Outcome::Retry { .. }));
        let read;
        let original = match body {
            Some(b) => Some(b),
            None if may_finish && !message.sender.is_empty() => {
                read = self.store.read_queued(message).await.ok();
                read.as_deref()
            }
            None => None,
        };
        match self.store.record_attempts(message.id, &attempts).await {
            Ok(failed) if !failed.is_empty() => {
                let sent = self
                    .bounce(message, &failed, dsn::Action::Failed, original)
                    .await;
                let addresses: Vec<String> = failed.into_iter().map(|(a, _)| a).collect();
                if let Err(e) = self.store.reported(message.id, &addresses, sent).await {
                    tracing::error!("queue: cannot note the bounce of {}: {e}", message.qid);
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!("queue: cannot record the attempts on {}: {e}", message.qid)
            }
        }
    }

    /// The wait before attempt `n + 1` after `n` attempts.
    fn wait_after(&self, attempts: u32) -> Duration {
        let i = (attempts as usize).saturating_sub(1);
        self.settings
            .retry
            .get(i)
            .or(self.settings.retry.last())
            .copied()
            .unwrap_or(Duration::from_secs(3600))
    }

    /// Tells the message's sender, with a DSN from the null sender, into
    /// their INBOX when they are local, else through the queue. Never a
    /// bounce to a bounce (RFC 5321 4.5.5, RFC 3464 3). False: it could
    /// not be sent now.
    async fn bounce(
        &self,
        message: &Queued,
        about: &[(String, String)],
        action: dsn::Action,
        original: Option<&[u8]>,
    ) -> bool {
        if message.sender.is_empty() {
            tracing::info!(
                "queue: {} was a bounce itself; no bounce of it is sent",
                message.qid
            );
            return true;
        }
        let read;
        let original = match original {
            Some(o) => o,
            None => match self.store.read_queued(message).await {
                Ok(b) => {
                    read = b;
                    &read
                }
                // The report still goes, without the original's header.
                Err(e) => {
                    tracing::error!(
                        "queue: the bounce of {} goes without its header: its copy cannot be read: {e}",
                        message.qid
                    );
                    read = Vec::new();
                    &read
                }
            },
        };
        let failures: Vec<dsn::Failure> = about
            .iter()
            .map(|(recipient, answer)| dsn::Failure { recipient, answer })
            .collect();
        let raw = dsn::build(&dsn::Report {
            hostname: &self.settings.hostname,
            to: &message.sender,
            action,
            arrived: message.created,
            failures: &failures,
            original,
        });
        match self.pipeline.send_dsn(&message.sender, &raw).await {
            Ok(()) => {
                tracing::info!("queue: {} bounced to <{}>", message.qid, message.sender);
                true
            }
            Err(e) => {
                tracing::error!(
                    "queue: the bounce of {} to <{}> failed, to be tried again: {e}",
                    message.qid,
                    message.sender
                );
                false
            }
        }
    }
}

/// The domain of an address, lower case.
fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map_or(address, |(_, d)| d)
        .to_ascii_lowercase()
}
