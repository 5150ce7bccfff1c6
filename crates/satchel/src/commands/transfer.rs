//! `satchel import` and `satchel export`: mbox files and Maildirs in and out
//! of a mailbox, keeping flags, keywords and internal dates.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use store::{InternalDate, MAX_MESSAGE_SIZE, MailStore, Mailbox, NewMessage};

use super::say;
use crate::formats::{Item, maildir, mbox};

/// Import stores a batch per transaction when it holds this many messages
/// or this many bytes, whichever comes first (and holds no more in memory).
const BATCH_MESSAGES: usize = 200;
const BATCH_BYTES: usize = 64 * 1024 * 1024;

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
    let account = super::find_account(store, &args.address).await?;
    let path = &args.path;
    let cannot_read = || format!("cannot read {}", path.display());
    let meta = std::fs::metadata(path).with_context(cannot_read)?;
    let is_mbox = meta.is_file();
    if is_mbox {
        let mut head = [0u8; 5];
        let n = std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .with_context(cannot_read)?;
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

    let mut batch = Batch::default();
    if is_mbox {
        let file = std::fs::File::open(path).with_context(cannot_read)?;
        let bar = progress(meta.len(), "importing", true);
        let mut reader =
            mbox::Reader::new(std::io::BufReader::new(file), MAX_MESSAGE_SIZE as usize);
        while let Some(item) = reader.next() {
            batch.push(item.with_context(cannot_read)?);
            if batch.full() {
                batch.store(store, &mailbox).await?;
                bar.set_position(reader.position);
            }
        }
        batch.too_large = reader.skipped;
        bar.finish_and_clear();
    } else {
        let keyword_names = std::fs::read_to_string(path.join("dovecot-keywords"))
            .map(|t| maildir::parse_keyword_file(&t))
            .unwrap_or_default();
        let entries = maildir_entries(path, &keyword_names)?;
        let bar = progress(entries.len() as u64, "importing", false);
        for e in entries {
            if e.size > MAX_MESSAGE_SIZE {
                batch.too_large += 1;
                continue;
            }
            let raw = std::fs::read(&e.path)
                .with_context(|| format!("cannot read {}", e.path.display()))?;
            batch.push(Item { raw, ..e.item });
            if batch.full() {
                batch.store(store, &mailbox).await?;
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
    }
    batch.store(store, &mailbox).await?;
    say(&format!(
        "imported {} messages into {}",
        batch.imported, mailbox.name
    ))?;
    if batch.empty > 0 {
        eprintln!("satchel: skipped {} empty messages", batch.empty);
    }
    if batch.too_large > 0 {
        eprintln!(
            "satchel: skipped {} messages larger than {MAX_MESSAGE_SIZE} bytes",
            batch.too_large
        );
    }
    Ok(())
}

/// Messages waiting to be stored, and what import has done so far.
#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    bytes: usize,
    imported: usize,
    empty: usize,
    too_large: usize,
}

impl Batch {
    fn push(&mut self, item: Item) {
        if item.raw.is_empty() {
            self.empty += 1;
            return;
        }
        self.bytes += item.raw.len();
        self.items.push(item);
    }

    fn full(&self) -> bool {
        self.items.len() >= BATCH_MESSAGES || self.bytes >= BATCH_BYTES
    }

    /// Stores what is waiting in one transaction.
    async fn store(&mut self, store: &dyn MailStore, mailbox: &Mailbox) -> anyhow::Result<()> {
        if self.items.is_empty() {
            return Ok(());
        }
        let parsed: Vec<_> = self.items.iter().map(|i| mime::analyze(&i.raw)).collect();
        let messages: Vec<NewMessage> = self
            .items
            .iter()
            .zip(&parsed)
            .map(|(item, p)| NewMessage {
                raw: &item.raw,
                size: p.size,
                flags: item.flags,
                keywords: item.keywords.clone(),
                internal_date: item
                    .date
                    .map(|unix| InternalDate {
                        unix,
                        tz_minutes: 0,
                    })
                    .unwrap_or_else(InternalDate::now),
                cache: store::MessageCache::from(p),
                spam: None,
            })
            .collect();
        store.append_batch(mailbox.id, messages).await?;
        self.imported += self.items.len();
        self.items.clear();
        self.bytes = 0;
        Ok(())
    }
}

pub async fn export(args: ExportArgs, store: &dyn MailStore) -> anyhow::Result<()> {
    let account = super::find_account(store, &args.address).await?;
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
            let partial = temp_sibling(&args.path);
            let written = async {
                let file = std::fs::File::create_new(&partial)
                    .with_context(|| format!("cannot create {}", partial.display()))?;
                let mut out = std::io::BufWriter::new(file);
                let mut buf = Vec::new();
                for m in &messages {
                    let raw = store.read_blob(&m.blob).await?;
                    buf.clear();
                    let sender = envelope_sender(&raw);
                    mbox::write(
                        &mut buf,
                        &sender,
                        m.internal_date.unix,
                        &raw,
                        m.flags,
                        &m.keywords,
                    );
                    out.write_all(&buf)?;
                    bar.inc(1);
                }
                out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                std::fs::rename(&partial, &args.path)?;
                anyhow::Ok(())
            }
            .await;
            if let Err(e) = written {
                let _ = std::fs::remove_file(&partial);
                return Err(e.context(format!("cannot write {}", args.path.display())));
            }
        }
        Format::Maildir => {
            for sub in ["cur", "new", "tmp"] {
                let dir = args.path.join(sub);
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let mut keyword_names: Vec<String> = Vec::new();
            for m in &messages {
                for k in &m.keywords {
                    if !keyword_names.contains(k) && keyword_names.len() < maildir::MAX_KEYWORDS {
                        keyword_names.push(k.clone());
                    }
                }
            }
            if !keyword_names.is_empty() {
                let file = args.path.join("dovecot-keywords");
                write_durably(&file, maildir::keyword_file(&keyword_names).as_bytes())?;
            }
            let host = hostname_for_names();
            for m in &messages {
                let raw = store.read_blob(&m.blob).await?;
                let base = format!(
                    "{}.U{}V{}.{host}",
                    m.internal_date.unix, m.uid, mailbox.uidvalidity
                );
                // Maildir delivery: written in tmp/, then renamed into cur/.
                let tmp = args.path.join("tmp").join(&base);
                write_durably(&tmp, &raw)?;
                set_mtime(&tmp, m.internal_date.unix)?;
                let name = base + &maildir::info_suffix(m.flags, &m.keywords, &keyword_names);
                let dest = args.path.join("cur").join(name);
                std::fs::rename(&tmp, &dest)
                    .with_context(|| format!("cannot write {}", dest.display()))?;
                bar.inc(1);
            }
            for sub in ["cur", "tmp"] {
                let dir = args.path.join(sub);
                std::fs::File::open(&dir)
                    .and_then(|d| d.sync_all())
                    .with_context(|| format!("cannot write {}", dir.display()))?;
            }
        }
    }
    bar.finish_and_clear();
    say(&format!(
        "exported {} messages from {}",
        messages.len(),
        mailbox.name
    ))
}

/// A message file of a Maildir, not yet read.
struct MaildirEntry {
    path: PathBuf,
    /// Everything but the bytes.
    item: Item,
    size: u64,
}

/// The messages of a Maildir (cur/ and new/), oldest first.
fn maildir_entries(path: &Path, keyword_names: &[String]) -> anyhow::Result<Vec<MaildirEntry>> {
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
            let (flags, keywords) = if sub == "cur" {
                maildir::marks_from_name(&name, keyword_names)
            } else {
                Default::default()
            };
            let item = Item {
                raw: Vec::new(),
                flags,
                keywords,
                date,
            };
            entries.push((
                name,
                MaildirEntry {
                    path: e.path(),
                    item,
                    size: meta.len(),
                },
            ));
        }
    }
    // Delivery order: by date, then by name (names start with the time).
    entries.sort_by(|a, b| (a.1.item.date, &a.0).cmp(&(b.1.item.date, &b.0)));
    Ok(entries.into_iter().map(|(_, e)| e).collect())
}

/// The `From ` line sender: the message's Return-Path, or MAILER-DAEMON.
fn envelope_sender(raw: &[u8]) -> String {
    let header = mime::header::Header::parse(raw, 0, raw.len());
    header
        .get(raw, "Return-Path")
        .map(|v| {
            String::from_utf8_lossy(&v)
                .trim()
                .trim_matches(['<', '>'])
                .to_string()
        })
        .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
        .unwrap_or_else(|| "MAILER-DAEMON".to_string())
}

/// A name next to `path` that no other export picks.
fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.satchel-{}.partial", std::process::id()))
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
