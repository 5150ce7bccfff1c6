//! The store suite (`suite/`) on the PostgreSQL backend: a database of its
//! own per test on a throwaway server ([`pg`]).

mod pg;
mod suite;

use std::sync::Arc;

use store::PgStore;

async fn open() -> suite::Backend {
    let url = pg::fresh_database();
    let store = PgStore::open(&url).await.unwrap();
    suite::Backend {
        store: Arc::new(store),
        // Body rows: shared bodies count once, collected ones not at all.
        bodies: Box::new(move || {
            pg::query(&url, "SELECT count(*) FROM blobs")
                .parse()
                .unwrap()
        }),
        keep: Box::new(()),
    }
}

every_test!(open);
