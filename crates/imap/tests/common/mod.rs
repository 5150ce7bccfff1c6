//! The in-process harness for the IMAP door's tests: a door on a fresh
//! store, connections from any peer address (through `door::testing`),
//! and commands answered up to their tagged line.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use store::prelude::*;

use door::testing::{Client, connect};
use store::SqliteStore;

pub const USER: &str = "alice@example.test";
pub const PASSWORD: &str = "secret";

pub struct Door {
    _dir: tempfile::TempDir,
    pub server: Arc<imap::Server>,
    pub store: Arc<SqliteStore>,
}

/// A door whose store has one account, USER.
pub async fn door(settings: imap::Settings) -> Door {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    store.create_account(USER, PASSWORD, false).await.unwrap();
    let server = imap::Server::new(store.clone(), None, settings);
    Door {
        _dir: dir,
        server,
        store,
    }
}

impl Door {
    /// A connection from `peer`, past the greeting.
    pub async fn client(&self, peer: &str) -> Client {
        let peer: SocketAddr = peer.parse().unwrap();
        let mut c = connect(self.server.clone(), peer).await.unwrap();
        let greeting = c.line().await.unwrap();
        assert!(greeting.starts_with("* OK [CAPABILITY "), "{greeting}");
        c
    }

    /// A connection from loopback, logged in as USER.
    pub async fn logged_in(&self) -> Client {
        let mut c = self.client("127.0.0.1:40000").await;
        let done = command(&mut c, &format!("LOGIN {USER} {PASSWORD}")).await;
        assert!(done.last().unwrap().starts_with("t OK"), "{done:?}");
        c
    }
}

/// Sends `text` tagged `t` and returns every line up to the tagged one.
pub async fn command(c: &mut Client, text: &str) -> Vec<String> {
    c.send(&format!("t {text}")).await.unwrap();
    c.until("t ").await.unwrap()
}

/// The tagged line of `text`'s answer.
pub async fn status(c: &mut Client, text: &str) -> String {
    command(c, text).await.pop().unwrap()
}
