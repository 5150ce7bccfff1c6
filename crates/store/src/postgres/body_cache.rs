//! Bodies a node read from PostgreSQL, kept to answer the next read of the
//! same body without a query: in memory (the embedded store's two-generation
//! cache of small bodies), and, when the node is given room for it
//! (`PgStore::with_disk_cache`), in files on its own disk. Bodies are named
//! by their content's hash and never change, so nothing kept can be stale;
//! a node that loses its cache loses nothing but speed.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::Result;
use crate::blob::{BlobStore, Recent, private_dir, private_file, unique_suffix};

#[derive(Debug, Default)]
pub(super) struct BodyCache {
    memory: Mutex<Recent>,
    disk: Option<Arc<DiskCache>>,
}

impl BodyCache {
    /// A cache in memory and in `dir`, which holds at most `budget` bytes.
    pub(super) fn with_disk(dir: &Path, budget: u64) -> Result<BodyCache> {
        Ok(BodyCache {
            memory: Mutex::default(),
            disk: Some(Arc::new(DiskCache::open(dir, budget)?)),
        })
    }

    /// The bodies of `wanted` the cache holds, by hash.
    pub(super) async fn get(&self, wanted: &[&str]) -> HashMap<String, Vec<u8>> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        {
            let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
            for h in wanted {
                match memory.get(h) {
                    Some(b) => {
                        found.insert(h.to_string(), b.to_vec());
                    }
                    None => missing.push(h.to_string()),
                }
            }
        }
        if let (Some(disk), false) = (&self.disk, missing.is_empty()) {
            let disk = disk.clone();
            let read = tokio::task::spawn_blocking(move || disk.get_all(&missing)).await;
            for (h, bytes) in read.unwrap_or_default() {
                self.remember(&h, &bytes);
                found.insert(h, bytes);
            }
        }
        found
    }

    /// Keeps bodies just read from the database.
    pub(super) async fn put(&self, bodies: &HashMap<String, Vec<u8>>) {
        for (h, bytes) in bodies {
            self.remember(h, bytes);
        }
        if let Some(disk) = &self.disk {
            let (disk, bodies) = (disk.clone(), bodies.clone());
            // The reader does not wait for the files: a cache write that
            // fails costs the next read a query, nothing else.
            tokio::task::spawn_blocking(move || {
                for (h, bytes) in bodies {
                    disk.put(&h, &bytes);
                }
            });
        }
    }

    fn remember(&self, hash: &str, bytes: &[u8]) {
        let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        memory.put(hash.to_string(), bytes.into());
    }

    /// Bytes the disk cache holds now (0 without one).
    #[cfg(test)]
    pub(super) fn disk_bytes(&self) -> u64 {
        self.disk.as_ref().map_or(0, |d| d.lock().bytes)
    }
}

/// Body files under `dir/ab/cdef...`, the least recently used removed past
/// the budget. Each file is checked against its name when read, so a file
/// a crash left short or a disk damaged is never served, only removed.
#[derive(Debug)]
struct DiskCache {
    dir: PathBuf,
    budget: u64,
    index: Mutex<Index>,
}

#[derive(Debug, Default)]
struct Index {
    /// Each file's size and when it was last used (a counter).
    files: HashMap<String, (u64, u64)>,
    bytes: u64,
    clock: u64,
}

impl DiskCache {
    /// Bodies larger than this share of the budget are not kept (one
    /// attachment would push out everything else).
    const LARGEST_SHARE: u64 = 16;

    /// Opens the folder and takes stock of the files a former run left
    /// (their order of use is lost: they start equal).
    fn open(dir: &Path, budget: u64) -> Result<DiskCache> {
        // Temp files a former run left half-written go with their folder.
        let _ = std::fs::remove_dir_all(dir.join("tmp"));
        private_dir(&dir.join("tmp"))?;
        let mut index = Index::default();
        for shard in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = shard.file_name().to_string_lossy().into_owned();
            if name.len() != 2 {
                continue;
            }
            for file in std::fs::read_dir(shard.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let size = file.metadata().map_or(0, |m| m.len());
                let hash = format!("{name}{}", file.file_name().to_string_lossy());
                index.bytes += size;
                index.files.insert(hash, (size, 0));
            }
        }
        let cache = DiskCache {
            dir: dir.to_path_buf(),
            budget,
            index: Mutex::new(index),
        };
        cache.trim();
        Ok(cache)
    }

    fn get_all(&self, wanted: &[String]) -> Vec<(String, Vec<u8>)> {
        wanted
            .iter()
            .filter_map(|h| Some((h.clone(), self.get(h)?)))
            .collect()
    }

    fn get(&self, hash: &str) -> Option<Vec<u8>> {
        {
            let mut index = self.lock();
            index.clock += 1;
            let clock = index.clock;
            index.files.get_mut(hash)?.1 = clock;
        }
        let path = self.path(hash)?;
        match std::fs::read(&path) {
            Ok(bytes) if BlobStore::hash_of(&bytes).0 == hash => Some(bytes),
            _ => {
                tracing::warn!("body cache: {} is damaged; removed", path.display());
                self.remove(hash);
                None
            }
        }
    }

    fn put(&self, hash: &str, bytes: &[u8]) {
        let size = bytes.len() as u64;
        if size > self.budget / Self::LARGEST_SHARE || self.lock().files.contains_key(hash) {
            return;
        }
        let Some(path) = self.path(hash) else { return };
        let temp = self
            .dir
            .join("tmp")
            .join(format!("{hash}.{}", unique_suffix()));
        // No fsync: a file a crash cuts short fails its check when read.
        let written = path
            .parent()
            .map_or(Ok(()), private_dir)
            .and_then(|()| private_file(&temp))
            .and_then(|mut f| {
                f.write_all(bytes).map_err(|e| crate::Error::Io {
                    path: temp.clone(),
                    source: e,
                })
            })
            .and_then(|()| {
                std::fs::rename(&temp, &path).map_err(|e| crate::Error::Io {
                    path: path.clone(),
                    source: e,
                })
            });
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            tracing::warn!("body cache: cannot keep a body: {e}");
            return;
        }
        {
            let mut index = self.lock();
            index.clock += 1;
            let clock = index.clock;
            if index
                .files
                .insert(hash.to_string(), (size, clock))
                .is_none()
            {
                index.bytes += size;
            }
        }
        self.trim();
    }

    /// Removes the least recently used files until the cache holds at most
    /// nine tenths of its budget (so trimming is not redone at every put).
    fn trim(&self) {
        let doomed: Vec<String> = {
            let index = self.lock();
            if index.bytes <= self.budget {
                return;
            }
            let mut by_use: Vec<(&String, &(u64, u64))> = index.files.iter().collect();
            by_use.sort_by_key(|(_, (_, used))| *used);
            let mut over = index.bytes - self.budget / 10 * 9;
            by_use
                .into_iter()
                .take_while(|(_, (size, _))| {
                    let more = over > 0;
                    over = over.saturating_sub(*size);
                    more
                })
                .map(|(h, _)| h.clone())
                .collect()
        };
        for hash in doomed {
            self.remove(&hash);
        }
    }

    fn remove(&self, hash: &str) {
        if let Some(path) = self.path(hash) {
            let _ = std::fs::remove_file(path);
        }
        let mut index = self.lock();
        if let Some((size, _)) = index.files.remove(hash) {
            index.bytes -= size;
        }
    }

    /// Where a body's file goes; `None` for a name that is not a hash (the
    /// database's names always are, and nothing else may name a path).
    fn path(&self, hash: &str) -> Option<PathBuf> {
        if hash.len() < 3 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let (shard, file) = hash.split_at(2);
        Some(self.dir.join(shard).join(file))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(i: usize) -> (String, Vec<u8>) {
        let bytes = format!("message {i} {}", "x".repeat(1000)).into_bytes();
        (BlobStore::hash_of(&bytes).0, bytes)
    }

    #[tokio::test]
    async fn bodies_come_back_from_disk_within_the_budget_and_damage_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BodyCache::with_disk(dir.path(), 20_000).unwrap();
        // One at a time, each written before the next, so their order of
        // use is known.
        for i in 0..30 {
            let (h, bytes) = body(i);
            cache.put(&HashMap::from([(h.clone(), bytes)])).await;
            let path = dir.path().join(&h[..2]).join(&h[2..]);
            for _ in 0..200 {
                if path.exists() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
        assert!(cache.disk_bytes() <= 20_000, "{}", cache.disk_bytes());
        // A new node process on the same folder: no memory, the files.
        let again = BodyCache::with_disk(dir.path(), 20_000).unwrap();
        let (h, bytes) = body(29);
        let found = again.get(&[h.as_str()]).await;
        assert_eq!(found.get(&h), Some(&bytes), "the newest body is kept");
        let (h0, _) = body(0);
        assert!(
            again.get(&[h0.as_str()]).await.is_empty(),
            "the oldest went"
        );
        // A damaged file is not served, and is gone after.
        let (h28, _) = body(28);
        let path = dir.path().join(&h28[..2]).join(&h28[2..]);
        std::fs::write(&path, b"short").unwrap();
        let other = BodyCache::with_disk(dir.path(), 20_000).unwrap();
        assert!(other.get(&[h28.as_str()]).await.is_empty());
        assert!(!path.exists());
        // A name that is no hash never reaches the file system.
        assert!(other.get(&["../../etc/passwd"]).await.is_empty());
    }
}
