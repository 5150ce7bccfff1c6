//! `satchel import` and `satchel export`: mbox files and Maildirs in and out
//! of a mailbox, keeping flags and internal dates.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use store::{InternalDate, MailStore, Mailbox, NewMessage};

use crate::commands::deliver::MAX_MESSAGE_SIZE;
use crate::formats::{self, Item, maildir, mbox};

/// Messages stored per transaction during import (and held in memory).
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
    let path = &args.path;
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let is_mbox = meta.is_file();
    if is_mbox {
        let mut head = [0u8; 5];
        let n = std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .with_context(|| format!("cannot read {}", path.display()))?;
        if &head[..n] != b"From " {
            bail!(
                "{} is not an mbox file: it does not start with a \"From \" line",
                path.display()
            );
        }
    } else if !path.join("cur").is_dir() && !path.join("new").is_dir() {
        bail!(
            "{} is neither an mbox file nor a Maildir (no cur/ or new/ inside)",
            path.display()
        );
    }
    let mailbox = match store.mailbox(account.id, &args.mailbox).await? {
        Some(m) => m,
        None => {
            store
                .create_mailbox(account.id, &args.mailbox, None)
                .await?
        }
    };

    let mut stats = ImportStats::default();
    if is_mbox {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let bar = progress(meta.len(), "importing", true);
        let mut reader =
            mbox::Reader::new(std::io::BufReader::new(file), MAX_MESSAGE_SIZE as usize);
        loop {
            let batch: Vec<Item> = reader
                .by_ref()
                .take(IMPORT_BATCH)
                .collect::<std::io::Result<_>>()
                .with_context(|| format!("cannot read {}", path.display()))?;
            if batch.is_empty() {
                break;
            }
            store_batch(store, &mailbox, &batch, &mut stats).await?;
            bar.set_position(reader.position);
        }
        stats.too_large = reader.skipped;
        bar.finish_and_clear();
    } else {
        let entries = maildir_entries(path)?;
        let bar = progress(entries.len() as u64, "importing", false);
        for chunk in entries.chunks(IMPORT_BATCH) {
            let mut batch = Vec::with_capacity(chunk.len());
            for e in chunk {
                if e.size > MAX_MESSAGE_SIZE {
                    stats.too_large += 1;
                    continue;
                }
                let raw = std::fs::read(&e.path)
                    .with_context(|| format!("cannot read {}", e.path.display()))?;
                batch.push(Item {
                    raw,
                    flags: e.flags,
                    date: e.date,
                });
            }
            store_batch(store, &mailbox, &batch, &mut stats).await?;
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
    }
    println!("imported {} messages into {}", stats.imported, mailbox.name);
    if stats.empty > 0 {
        eprintln!("satchel: skipped {} empty messages", stats.empty);
    }
    if stats.too_large > 0 {
        eprintln!(
            "satchel: skipped {} messages larger than {MAX_MESSAGE_SIZE} bytes",
            stats.too_large
        );
    }
    Ok(())
}

#[derive(Default)]
struct ImportStats {
    imported: usize,
    empty: usize,
    too_large: usize,
}

/// Stores one batch in one transaction; empty messages are counted, not stored.
async fn store_batch(
    store: &dyn MailStore,
    mailbox: &Mailbox,
    items: &[Item],
    stats: &mut ImportStats,
) -> anyhow::Result<()> {
    let parsed: Vec<_> = items.iter().map(|i| mime::analyze(&i.raw)).collect();
    let batch: Vec<NewMessage> = items
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
    stats.empty += items.len() - batch.len();
    stats.imported += batch.len();
    store.append_batch(mailbox.id, batch).await?;
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
    let bar = progress(messages.len() as u64, "exporting", false);
    match args.format {
        Format::Mbox => {
            // Written under a temporary name and renamed when complete, so
            // an interrupted export leaves no truncated mbox behind.
            let partial = args.path.with_extension("partial");
            let file = std::fs::File::create_new(&partial)
                .with_context(|| format!("cannot create {}", partial.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let mut buf = Vec::new();
            for m in &messages {
                let raw = store.read_blob(&m.blob).await?;
                buf.clear();
                mbox::write(
                    &mut buf,
                    &envelope_sender(&raw),
                    m.internal_date.unix,
                    &raw,
                    m.flags,
                );
                out.write_all(&buf)
                    .with_context(|| format!("cannot write {}", partial.display()))?;
                bar.inc(1);
            }
            out.into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_all())
                .and_then(|()| std::fs::rename(&partial, &args.path))
                .with_context(|| format!("cannot write {}", args.path.display()))?;
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

/// A message file of a Maildir, not yet read.
struct MaildirEntry {
    path: PathBuf,
    flags: store::Flags,
    date: Option<i64>,
    size: u64,
}

/// The messages of a Maildir (cur/ and new/), oldest first.
fn maildir_entries(path: &Path) -> anyhow::Result<Vec<MaildirEntry>> {
    let mut entries = Vec::new();
    for sub in ["cur", "new"] {
        let dir = path.join(sub);
        let Ok(list) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in list {
            let e = e.with_context(|| format!("cannot list {}", dir.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(meta) = e.metadata() else {
                continue;
            };
            if name.starts_with('.') || !meta.is_file() {
                continue;
            }
            let date = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64);
            let flags = if sub == "cur" {
                maildir::flags_from_name(&name)
            } else {
                store::Flags::empty()
            };
            entries.push((
                name,
                MaildirEntry {
                    path: e.path(),
                    flags,
                    date,
                    size: meta.len(),
                },
            ));
        }
    }
    // Delivery order: by date, then by name (names start with the time).
    entries.sort_by(|a, b| (a.1.date, &a.0).cmp(&(b.1.date, &b.0)));
    Ok(entries.into_iter().map(|(_, e)| e).collect())
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
fn progress(len: u64, what: &'static str, bytes: bool) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let template = if bytes {
        "{msg} {bar:40} {bytes}/{total_bytes} ({eta})"
    } else {
        "{msg} {bar:40} {pos}/{len} ({eta})"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message(what);
    bar
}
