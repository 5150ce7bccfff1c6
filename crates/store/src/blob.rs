//! Content-addressed blob files: `blobs/ab/cdef...` named by SHA-256, so one
//! file serves every copy of a message in every mailbox and account.
//!
//! Writing is split in two so the store can keep a blob and its index rows
//! consistent: [`BlobStore::stage`] writes and fsyncs a temp file (slow, done
//! outside any lock), and [`BlobStore::place`] renames it into place (fast,
//! done inside the index's write transaction, the same lock the garbage
//! collector holds while it unlinks unreferenced blobs); the store fsyncs
//! the folders before that transaction commits.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::Error;
use crate::types::BlobHash;

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    recent: std::sync::Arc<std::sync::Mutex<Recent>>,
}

/// Bodies kept in memory at most, in bytes: clients read the same messages
/// again and again (a page of headers on every check, then BODYSTRUCTURE,
/// then the body), and a hit costs a copy instead of an open and a read.
const RECENT_BYTES: usize = 64 << 20;
/// Bodies larger than this are never kept (attachments read once).
const RECENT_LARGEST: usize = 256 << 10;

/// The bodies read lately, in two generations: lookups look in both and
/// move a hit into the newer; when the newer holds half the budget it
/// becomes the older and the older is dropped. Blobs never change (a
/// name is its content's hash), so nothing kept can be stale.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    newer: std::collections::HashMap<String, std::sync::Arc<[u8]>>,
    older: std::collections::HashMap<String, std::sync::Arc<[u8]>>,
    newer_bytes: usize,
}

impl Recent {
    pub(crate) fn get(&mut self, hash: &str) -> Option<std::sync::Arc<[u8]>> {
        if let Some(b) = self.newer.get(hash) {
            return Some(b.clone());
        }
        let b = self.older.remove(hash)?;
        self.put(hash.to_string(), b.clone());
        Some(b)
    }

    pub(crate) fn put(&mut self, hash: String, bytes: std::sync::Arc<[u8]>) {
        if bytes.len() > RECENT_LARGEST {
            return;
        }
        if self.newer_bytes + bytes.len() > RECENT_BYTES / 2 {
            self.older = std::mem::take(&mut self.newer);
            self.newer_bytes = 0;
        }
        self.newer_bytes += bytes.len();
        if let Some(old) = self.newer.insert(hash, bytes) {
            self.newer_bytes -= old.len();
        }
    }

    fn forget(&mut self, hash: &str) {
        if let Some(old) = self.newer.remove(hash) {
            self.newer_bytes -= old.len();
        }
        self.older.remove(hash);
    }
}

/// A blob written and fsync'd to a temp file, not yet visible under its name.
#[derive(Debug)]
pub struct Staged {
    pub hash: BlobHash,
    temp: Option<PathBuf>,
    dest: PathBuf,
}

impl BlobStore {
    /// Opens the blob folder, creating it with its 256 shard folders (made
    /// up front and made durable once, so no append ever depends on a new
    /// directory entry that a power cut could lose).
    pub fn open(root: impl Into<PathBuf>) -> Result<BlobStore, Error> {
        let root = root.into();
        let marker = root.join("tmp");
        if !marker.is_dir() {
            for i in 0..=255u8 {
                let shard = root.join(format!("{i:02x}"));
                private_dir(&shard)?;
            }
            fsync_dir(&root)?;
            private_dir(&marker)?;
            fsync_dir(&root)?;
            if let Some(parent) = root.parent() {
                fsync_dir(parent)?;
            }
        }
        Ok(BlobStore {
            root,
            recent: Default::default(),
        })
    }

    /// The folder of the blob files.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn hash_of(bytes: &[u8]) -> BlobHash {
        BlobHash(hex::encode(Sha256::digest(bytes)))
    }

    pub fn path(&self, hash: &BlobHash) -> PathBuf {
        let h = &hash.0;
        let (dir, file) = h.split_at(2.min(h.len()));
        self.root.join(dir).join(file)
    }

    /// Writes `bytes` to a temp file and fsyncs it.
    pub fn stage(&self, bytes: &[u8]) -> Result<Staged, Error> {
        let hash = Self::hash_of(bytes);
        let dest = self.path(&hash);
        let temp = self.root.join("tmp").join(format!(
            "{}.{}.{}",
            hash.0,
            std::process::id(),
            unique_suffix()
        ));
        let mut f = private_file(&temp)?;
        if let Err(e) = f.write_all(bytes).and_then(|()| f.sync_all()) {
            // A half-written file would only hold the space that ran out.
            let _ = fs::remove_file(&temp);
            return Err(io_err(&temp, e));
        }
        Ok(Staged {
            hash,
            temp: Some(temp),
            dest,
        })
    }

    pub fn read(&self, hash: &BlobHash) -> Result<Vec<u8>, Error> {
        if let Some(bytes) = self.cached(hash) {
            return Ok(bytes);
        }
        let p = self.path(hash);
        let bytes = fs::read(&p).map_err(|e| io_err(&p, e))?;
        if bytes.len() <= RECENT_LARGEST {
            self.lock().put(hash.0.clone(), bytes.as_slice().into());
        }
        Ok(bytes)
    }

    /// The body if it was read lately, without touching the disk.
    pub fn cached(&self, hash: &BlobHash) -> Option<Vec<u8>> {
        self.lock().get(&hash.0).map(|b| b.to_vec())
    }

    /// Reads the file itself, never the memory: for checks of what is on the disk.
    pub fn read_file(&self, hash: &BlobHash) -> Result<Vec<u8>, Error> {
        let p = self.path(hash);
        fs::read(&p).map_err(|e| io_err(&p, e))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes a blob file; a file already gone is not an error.
    pub fn remove(&self, hash: &BlobHash) -> Result<(), Error> {
        self.lock().forget(&hash.0);
        let p = self.path(hash);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&p, e)),
        }
    }

    /// Every blob file older than `age`, with its hash: candidates for the
    /// orphan sweep (a writer that died between rename and commit).
    pub fn older_than(&self, age: std::time::Duration) -> Vec<BlobHash> {
        let Some(cutoff) = std::time::SystemTime::now().checked_sub(age) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let Ok(shards) = fs::read_dir(&self.root) else {
            return out;
        };
        for shard in shards.flatten() {
            let name = shard.file_name().to_string_lossy().into_owned();
            if name.len() != 2 {
                continue;
            }
            let Ok(files) = fs::read_dir(shard.path()) else {
                continue;
            };
            for f in files.flatten() {
                let old = f
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(|t| t < cutoff)
                    .unwrap_or(false);
                if old {
                    out.push(BlobHash(format!(
                        "{name}{}",
                        f.file_name().to_string_lossy()
                    )));
                }
            }
        }
        out
    }

    /// Deletes temp files left by writers that died before committing.
    pub fn clean_temp(&self) {
        let Ok(entries) = fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| t < hour_ago)
                .unwrap_or(false);
            if old {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

impl BlobStore {
    /// Moves staged blobs into place; an existing file of the same name has
    /// the same content and is simply replaced. The renames are durable
    /// only once the folders returned (each once) are fsync'd.
    pub fn place(&self, staged: Vec<Staged>) -> Result<(Vec<BlobHash>, Vec<PathBuf>), Error> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut hashes = Vec::with_capacity(staged.len());
        for mut s in staged {
            if let Some(temp) = s.temp.take() {
                let dir = s.dest.parent().unwrap_or(Path::new(".")).to_path_buf();
                if !dirs.contains(&dir) {
                    dirs.push(dir);
                }
                fs::rename(&temp, &s.dest).map_err(|e| io_err(&s.dest, e))?;
            }
            hashes.push(s.hash.clone());
        }
        Ok((hashes, dirs))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let _ = fs::remove_file(temp);
        }
    }
}

fn fsync_dir(dir: &Path) -> Result<(), Error> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

pub(crate) fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn io_err(path: &Path, source: io::Error) -> Error {
    match source.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            Error::NoSpace("a message file".into())
        }
        _ => Error::Io {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// A folder only the server's user can enter, whatever the umask (the
/// bodies are people's mail).
pub(crate) fn private_dir(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| io_err(path, e))
}

/// A new file only the server's user can read, whatever the umask.
pub(crate) fn private_file(path: &Path) -> Result<fs::File, Error> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_err(path, e))
}
