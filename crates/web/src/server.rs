//! The server's figures: the admin's server page and, when `[web] metrics`
//! is on, `GET /metrics` in Prometheus' text format (`satchel_*` names).
//! Open connections and deliveries come from the process's own counts
//! (the stats crate); the model, the queue and the disk from the store.

use std::fmt::Write;
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::Web;
use crate::admin::{Admin, human_size};
use crate::pages::{Frame, PageResult, frame};

/// How long a measured disk use is shown before the folders are walked
/// again (a store of a million body files takes a while).
const DISK_FRESH: Duration = Duration::from_secs(300);
/// Hours the page's chart shows.
const CHART_HOURS: usize = 24;

/// Everything both views show.
struct Figures {
    snapshot: stats::Snapshot,
    model: store::ModelSummary,
    queued: usize,
    accounts: usize,
    /// Index and body files, in bytes (none without a data folder).
    disk: Option<(u64, u64)>,
}

async fn figures(web: &Web) -> Result<Figures, store::Error> {
    let store = &web.inner.store;
    Ok(Figures {
        snapshot: stats::global().snapshot(),
        model: store.model_summary().await?,
        queued: store.queue().await?.len(),
        accounts: store.list_accounts().await?.len(),
        disk: disk_use(web).await,
    })
}

/// The index's and the bodies' bytes, measured at most every
/// [`DISK_FRESH`].
async fn disk_use(web: &Web) -> Option<(u64, u64)> {
    {
        let cached = web.inner.disk.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, use_)) = *cached
            && at.elapsed() < DISK_FRESH
        {
            return Some(use_);
        }
    }
    let measured = match web.inner.store.disk_use().await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!("cannot measure the store's disk use: {e}");
            return None;
        }
    };
    *web.inner.disk.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), measured));
    Some(measured)
}

#[derive(Template)]
#[template(path = "admin_server.html")]
struct ServerPage {
    frame: Frame,
    version: &'static str,
    uptime: String,
    doors: Vec<(&'static str, u64)>,
    delivered: [u64; 3],
    chart: String,
    model: store::ModelSummary,
    queued: usize,
    accounts: usize,
    index: String,
    blobs: String,
    metrics: bool,
}

pub async fn page(State(web): State<Web>, Admin(s): Admin) -> PageResult {
    let f = figures(&web).await?;
    let (index, blobs) = match f.disk {
        Some((i, b)) => (human_size(i), human_size(b)),
        None => ("-".into(), "-".into()),
    };
    let page = ServerPage {
        frame: frame(&web, &s, None).await?,
        version: env!("CARGO_PKG_VERSION"),
        uptime: duration(f.snapshot.uptime_secs),
        doors: f.snapshot.doors.clone(),
        delivered: f.snapshot.delivered,
        chart: chart(&f.snapshot.hours[f.snapshot.hours.len().saturating_sub(CHART_HOURS)..]),
        model: f.model,
        queued: f.queued,
        accounts: f.accounts,
        index,
        blobs,
        metrics: web.inner.settings.metrics,
    }
    .render()?;
    Ok(Html(page).into_response())
}

/// `GET /metrics` (only with `[web] metrics = true`; 404 otherwise).
pub async fn metrics(State(web): State<Web>) -> Response {
    if !web.inner.settings.metrics {
        return (
            StatusCode::NOT_FOUND,
            "Metrics are off: set [web] metrics = true to serve them.",
        )
            .into_response();
    }
    let f = match figures(&web).await {
        Ok(f) => f,
        Err(e) => return crate::pages::PageError::Store(e).into_response(),
    };
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    family(
        "satchel_build_info",
        "gauge",
        "The running version.",
        &[(format!("{{version=\"{}\"}}", env!("CARGO_PKG_VERSION")), 1)],
    );
    family(
        "satchel_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        &[(String::new(), f.snapshot.uptime_secs)],
    );
    let doors: Vec<(String, u64)> = f
        .snapshot
        .doors
        .iter()
        .map(|(d, n)| (format!("{{door=\"{d}\"}}"), *n))
        .collect();
    family(
        "satchel_connections",
        "gauge",
        "Connections open now, per door.",
        &doors,
    );
    let delivered: Vec<(String, u64)> = stats::Verdict::ALL
        .iter()
        .map(|v| {
            (
                format!("{{verdict=\"{}\"}}", v.as_str()),
                f.snapshot.delivered[*v as usize],
            )
        })
        .collect();
    family(
        "satchel_deliveries_total",
        "counter",
        "Copies delivered since the start, by the spam verdict that filed them.",
        &delivered,
    );
    family(
        "satchel_store_body_reads_total",
        "counter",
        "Message bodies read from the store since the start (a SORT, THREAD or header SEARCH answered from the index reads none).",
        &[(String::new(), web.inner.store.body_reads())],
    );
    family(
        "satchel_spam_model_tokens",
        "gauge",
        "Tokens in the server's spam model.",
        &[(String::new(), f.model.tokens)],
    );
    family(
        "satchel_spam_trained_messages",
        "gauge",
        "Messages the server's spam model learnt from, by class.",
        &[
            ("{class=\"spam\"}".into(), f.model.spam),
            ("{class=\"ham\"}".into(), f.model.ham),
        ],
    );
    family(
        "satchel_queue_messages",
        "gauge",
        "Messages waiting in the outbound queue.",
        &[(String::new(), f.queued as u64)],
    );
    family(
        "satchel_accounts",
        "gauge",
        "Accounts on the server.",
        &[(String::new(), f.accounts as u64)],
    );
    if let Some((index, blobs)) = f.disk {
        family(
            "satchel_disk_bytes",
            "gauge",
            "Bytes on disk: the index, and the message bodies.",
            &[
                ("{part=\"index\"}".into(), index),
                ("{part=\"bodies\"}".into(), blobs),
            ],
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

/// Deliveries per hour as stacked bars (INBOX, Possible Junk, Junk), inline
/// SVG with a title per bar for the numbers.
fn chart(hours: &[(i64, [u64; 3])]) -> String {
    let (w, h, bar) = (480.0_f64, 120.0_f64, 480.0 / hours.len().max(1) as f64);
    let most = hours
        .iter()
        .map(|(_, c)| c.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let colours = ["#2857c5", "#e0a100", "#a4161a"];
    let mut svg = format!(
        "<svg id=\"deliveries\" viewBox=\"0 0 {w} {}\" width=\"{w}\" height=\"{}\" role=\"img\" \
         aria-label=\"Deliveries per hour, last {} hours\">",
        h + 16.0,
        h + 16.0,
        hours.len()
    );
    for (i, (start, counts)) in hours.iter().enumerate() {
        let x = i as f64 * bar;
        let mut y = h;
        let label = time::OffsetDateTime::from_unix_timestamp(*start)
            .map(|t| format!("{:02}:00 UTC", t.hour()))
            .unwrap_or_default();
        let _ = write!(
            svg,
            "<g><title>{label}: {} to INBOX, {} to Possible Junk, {} to Junk</title>",
            counts[0], counts[1], counts[2]
        );
        for (n, colour) in counts.iter().zip(colours) {
            let height = *n as f64 / most * h;
            y -= height;
            if *n > 0 {
                let _ = write!(
                    svg,
                    "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{height:.1}\" fill=\"{colour}\"/>",
                    x + 1.0,
                    (bar - 2.0).max(1.0)
                );
            }
        }
        svg.push_str("</g>");
        if i % 6 == 0 {
            let _ = write!(
                svg,
                "<text x=\"{x:.1}\" y=\"{}\" font-size=\"10\" fill=\"#5b6575\">{label}</text>",
                h + 12.0
            );
        }
    }
    let _ = write!(
        svg,
        "<line x1=\"0\" y1=\"{h}\" x2=\"{w}\" y2=\"{h}\" stroke=\"#dde2ea\"/></svg>"
    );
    svg
}

fn duration(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h) {
        (0, 0) => format!("{m} min"),
        (0, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_has_a_bar_title_per_hour() {
        let hours: Vec<(i64, [u64; 3])> = (0..24)
            .map(|i| (1_800_000_000 + i * 3600, [i as u64, 1, 0]))
            .collect();
        let svg = chart(&hours);
        assert_eq!(svg.matches("<title>").count(), 24);
        assert!(svg.contains("23 to INBOX, 1 to Possible Junk, 0 to Junk"));
        assert_eq!(duration(59), "0 min");
        assert_eq!(duration(3 * 86_400 + 7200), "3 d 2 h");
    }
}
