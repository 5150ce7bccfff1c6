//! The data folder is the server user's alone, whatever the umask: the
//! index holds password hashes and the blobs hold people's mail.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use store::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

async fn append_one(store: &SqliteStore) {
    let account = store
        .create_account("f@example.test", "pw", false)
        .await
        .unwrap();
    let inbox = store.mailbox(account.id, "INBOX").await.unwrap().unwrap();
    let raw = b"Subject: private\r\n\r\nbody\r\n";
    store
        .append(
            inbox.id,
            NewMessage {
                raw,
                size: raw.len() as u64,
                flags: Flags::empty(),
                keywords: vec![],
                internal_date: InternalDate::now(),
                cache: MessageCache::default(),
                spam: None,
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_new_store_is_private_under_a_permissive_umask() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    // The usual umask (022) would make files 0644 and folders 0755.
    let old = unsafe { libc_umask(0o022) };
    let store = SqliteStore::open(&dir).await.unwrap();
    append_one(&store).await;
    unsafe { libc_umask(old) };
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("index.sqlite")), 0o600);
    for entry in walk(&dir.join("blobs")) {
        let m = mode(&entry);
        if entry.is_dir() {
            assert_eq!(m, 0o700, "{}", entry.display());
        } else {
            assert_eq!(m, 0o600, "{}", entry.display());
        }
    }
    assert!(
        walk(&dir.join("blobs")).iter().any(|p| p.is_file()),
        "a body was written"
    );
}

#[tokio::test]
async fn an_existing_store_is_tightened_at_open() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    drop(SqliteStore::open(&dir).await.unwrap());
    let loosen =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    loosen(&dir, 0o755);
    loosen(&dir.join("index.sqlite"), 0o644);
    let store = SqliteStore::open(&dir).await.unwrap();
    append_one(&store).await;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("index.sqlite")), 0o600);
    let wal = dir.join("index.sqlite-wal");
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600);
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

unsafe extern "C" {
    #[link_name = "umask"]
    fn libc_umask(mask: u32) -> u32;
}
