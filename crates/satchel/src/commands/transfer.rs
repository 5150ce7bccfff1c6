//! `satchel import` and `satchel export`: mbox files and Maildirs in and out
//! of a mailbox, keeping flags and internal dates.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use store::{InternalDate, MailStore, Mailbox, NewMessage};

use crate::formats::{self, Item, maildir, mbox};

/// Messages stored per transaction during import.
const IMPORT_BATCH: usize = 200;

#[derive(Args)]
pub struct ImportArgs {
    address: String,
    /// The mailbox to import into; created if missing.
    #[arg(long, value_name = "NAME")]
    mailbox: String,
    /// An mbox file or a Maildir (a folder with cur/ and new/).
    path: PathBuf,
}

#[derive(Args)]
pub struct ExportArgs {
    address: String,
    #[arg(long, value_name = "NAME")]
    mailbox: String,
    #[arg(long, value_enum)]
    format: Format,
    /// The mbox file or Maildir folder to write; must not exist yet.
    path: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Mbox,
    Maildir,
}

pub async fn import(args: ImportArgs, store: &dyn MailStore) -> anyhow::Result<()> {
    let account = store.account(&args.address).await?.with_context(|| {
        format!(
            "no account {}; `satchel user list` shows the accounts",
            args.address
        )
    })?;
    let items = read_source(&args.path)?;
    let mailbox = match store.mailbox(account.id, &args.mailbox).await? {
        Some(m) => m,
        None => {
            store
                .create_mailbox(account.id, &args.mailbox, None)
                .await?
        }
    };
    let bar = progress(items.len() as u64, "importing");
    let mut skipped_empty = 0;
    for chunk in items.chunks(IMPORT_BATCH) {
        let parsed: Vec<_> = chunk.iter().map(|i| mime::analyze(&i.raw)).collect();
        let batch: Vec<NewMessage> = chunk
            .iter()
            .zip(&parsed)
            .filter(|(item, _)| !item.raw.is_empty())
            .map(|(item, p)| NewMessage {
                raw: &item.raw,
                size: p.size,
                flags: item.flags,
                keywords: Vec::new(),
                internal_date: item
                    .date
                    .map(|unix| InternalDate {
                        unix,
                        tz_minutes: 0,
                    })
                    .unwrap_or_else(InternalDate::now),
                cache: p.cache.clone(),
            })
            .collect();
        skipped_empty += chunk.len() - batch.len();
        store.append_batch(mailbox.id, batch).await?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let imported = items.len() - skipped_empty;
    println!("imported {imported} messages into {}", mailbox.name);
    if skipped_empty > 0 {
        eprintln!("satchel: skipped {skipped_empty} empty messages");
    }
    Ok(())
}

pub async fn export(args: ExportArgs, store: &dyn MailStore) -> anyhow::Result<()> {
    let account = store.account(&args.address).await?.with_context(|| {
        format!(
            "no account {}; `satchel user list` shows the accounts",
            args.address
        )
    })?;
    let mailbox: Mailbox = store
        .mailbox(account.id, &args.mailbox)
        .await?
        .with_context(|| format!("{} has no mailbox {:?}", account.address, args.mailbox))?;
    if args.path.exists() {
        bail!(
            "{} exists already; export writes a new file or folder",
            args.path.display()
        );
    }
    let messages = store.messages(mailbox.id).await?;
    let bar = progress(messages.len() as u64, "exporting");
    match args.format {
        Format::Mbox => {
            let mut out = Vec::new();
            for m in &messages {
                let raw = store.read_blob(&m.blob).await?;
                mbox::write(
                    &mut out,
                    &envelope_sender(&raw),
                    m.internal_date.unix,
                    &raw,
                    m.flags,
                );
                bar.inc(1);
            }
            write_durably(&args.path, &out)?;
        }
        Format::Maildir => {
            for sub in ["cur", "new", "tmp"] {
                let dir = args.path.join(sub);
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let host = hostname_for_names();
            for m in &messages {
                let raw = store.read_blob(&m.blob).await?;
                let name = format!(
                    "{}.U{}V{}.{host}{}",
                    m.internal_date.unix,
                    m.uid,
                    mailbox.uidvalidity,
                    maildir::info_suffix(m.flags)
                );
                let path = args.path.join("cur").join(name);
                write_durably(&path, &raw)?;
                set_mtime(&path, m.internal_date.unix)?;
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    println!("exported {} messages from {}", messages.len(), mailbox.name);
    Ok(())
}

/// Reads every message of an mbox file or a Maildir, oldest first.
fn read_source(path: &Path) -> anyhow::Result<Vec<Item>> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_file() {
        let data =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        if !data.starts_with(b"From ") {
            bail!(
                "{} is not an mbox file: it does not start with a \"From \" line",
                path.display()
            );
        }
        return Ok(mbox::split(&data));
    }
    if !path.join("cur").is_dir() && !path.join("new").is_dir() {
        bail!(
            "{} is neither an mbox file nor a Maildir (no cur/ or new/ inside)",
            path.display()
        );
    }
    let mut items = Vec::new();
    for sub in ["cur", "new"] {
        let dir = path.join(sub);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let e = e.with_context(|| format!("cannot list {}", dir.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !e.file_type().map(|t| t.is_file()).unwrap_or(false) {
                continue;
            }
            let raw = std::fs::read(e.path())
                .with_context(|| format!("cannot read {}", e.path().display()))?;
            let date = e
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64);
            let flags = if sub == "cur" {
                maildir::flags_from_name(&name)
            } else {
                store::Flags::empty()
            };
            items.push((date.unwrap_or(0), name, Item { raw, flags, date }));
        }
    }
    // Delivery order: by date, then by name (names start with the time).
    items.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    Ok(items.into_iter().map(|(_, _, item)| item).collect())
}

/// The `From ` line sender: the message's Return-Path, or MAILER-DAEMON.
fn envelope_sender(raw: &[u8]) -> String {
    formats::header_fields(raw)
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(b"Return-Path"))
        .map(|(_, v)| {
            String::from_utf8_lossy(v)
                .trim()
                .trim_matches(['<', '>'])
                .to_string()
        })
        .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
        .unwrap_or_else(|| "MAILER-DAEMON".to_string())
}

fn write_durably(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create_new(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn set_mtime(path: &Path, unix: i64) -> anyhow::Result<()> {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64);
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(t))
        .with_context(|| format!("cannot set the date of {}", path.display()))
}

fn hostname_for_names() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().replace(['/', ':'], "_"))
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "satchel".into())
}

/// A progress bar on a terminal (stderr), nothing otherwise.
fn progress(len: u64, what: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} ({eta})") {
        bar.set_style(style);
    }
    bar.set_message(what);
    bar
}
