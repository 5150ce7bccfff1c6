//! The store suite (`suite/`) on the embedded backend: SQLite and body
//! files in a temporary folder.

mod suite;

use std::sync::Arc;

use store::SqliteStore;

async fn open() -> suite::Backend {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let blobs = dir.path().join("blobs");
    suite::Backend {
        store: Arc::new(store),
        // Body files, less those still being written.
        bodies: Box::new(move || files(&blobs) - files(&blobs.join("tmp"))),
        keep: Box::new(dir),
    }
}

fn files(p: &std::path::Path) -> usize {
    std::fs::read_dir(p)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        files(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

every_test!(open);
