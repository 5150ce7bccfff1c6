//! The store-backed scorer: the server's model and users' own, looked up
//! or held in memory, and how soon each sees training done elsewhere.

use std::sync::Arc;

use pipeline::{RESIDENT_FRESH, SERVER_MODEL, SpamFacts, SpamScorer, StoreScorer};
use store::{MailStore, SqliteStore};

fn message(words: &str, n: usize) -> Vec<u8> {
    format!(
        "From: S <s{n}@sender.test>\r\nSubject: {words}\r\nDate: Tue, 02 Jan 2024 10:00:00 +0000\r\n\
         Message-ID: <{n}@sender.test>\r\n\r\n{words} {words}\r\n"
    )
    .into_bytes()
}

const SPAMMY: &str = "jackpot casino bonus";
const HAMMY: &str = "agenda minutes budget";
const NEW: &str = "lantern harvest orchard";

async fn teach(store: &dyn MailStore, scope: i64, words: &str, spam: bool, n: usize) {
    for i in 0..n {
        let tokens = spam::tokens::tokens(&message(words, i));
        store.bayes_train(scope, &tokens, spam).await.unwrap();
    }
}

async fn bayes(scorer: &StoreScorer, words: &str, accounts: &[store::AccountId]) -> Vec<String> {
    scorer
        .score(&message(words, 999), &SpamFacts::default(), accounts)
        .await
        .iter()
        .map(|v| {
            v.reasons
                .iter()
                .find(|r| r.name.starts_with("BAYES"))
                .map_or("none".to_string(), |r| r.name.to_string())
        })
        .collect()
}

#[tokio::test]
async fn both_scorers_see_training_from_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MailStore> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    teach(&*store, SERVER_MODEL, SPAMMY, true, 25).await;
    teach(&*store, SERVER_MODEL, HAMMY, false, 25).await;
    let lookup = StoreScorer::new(store.clone());
    let resident = StoreScorer::resident(store.clone());
    for s in [&lookup, &resident] {
        assert_eq!(bayes(s, SPAMMY, &[]).await, ["BAYES_999"]);
        assert_eq!(bayes(s, HAMMY, &[]).await, ["BAYES_00"]);
        assert_eq!(bayes(s, NEW, &[]).await, ["none"]);
    }

    // Another process (its own handle on the same files) teaches the server.
    let other = SqliteStore::open(dir.path()).await.unwrap();
    teach(&other, SERVER_MODEL, NEW, true, 25).await;
    // Looked up: at once, as the totals moved.
    assert_eq!(bayes(&lookup, NEW, &[]).await, ["BAYES_999"]);
    assert_eq!(bayes(&lookup, HAMMY, &[]).await, ["BAYES_00"]);
    // Held in memory: within RESIDENT_FRESH.
    tokio::time::sleep(RESIDENT_FRESH + std::time::Duration::from_millis(200)).await;
    assert_eq!(bayes(&resident, NEW, &[]).await, ["BAYES_999"]);
    assert_eq!(bayes(&resident, SPAMMY, &[]).await, ["BAYES_999"]);
}

#[tokio::test]
async fn a_users_own_model_counts_for_them_alone() {
    for resident in [false, true] {
        users_own_model(resident).await;
    }
}

async fn users_own_model(resident: bool) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MailStore> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let add = async |who: &str| store.create_account(who, "pw", false).await.unwrap().id;
    let (alice, bob) = (
        add("alice@example.test").await,
        add("bob@example.test").await,
    );
    teach(&*store, SERVER_MODEL, SPAMMY, true, 25).await;
    teach(&*store, SERVER_MODEL, HAMMY, false, 25).await;
    let scorer = if resident {
        StoreScorer::resident(store.clone())
    } else {
        StoreScorer::new(store.clone())
    };
    // Alice calls the newsletter spam; nobody else has an opinion.
    teach(&*store, alice.scope(), NEW, true, 5).await;
    // (Sure spam for her: 0.99 and up.)
    let both = bayes(&scorer, NEW, &[alice, bob]).await;
    assert!(
        both[0].starts_with("BAYES_99") && both[1] == "none",
        "{both:?}"
    );
    assert_eq!(bayes(&scorer, NEW, &[]).await, ["none"]);
    // Her own training shows at once, even to the resident scorer.
    teach(&*store, alice.scope(), HAMMY, true, 40).await;
    assert_ne!(bayes(&scorer, HAMMY, &[alice]).await, ["BAYES_00"]);
    assert_eq!(bayes(&scorer, HAMMY, &[bob]).await, ["BAYES_00"]);
    // A removed account's model goes with it, even if its id comes back.
    store.remove_account("alice@example.test").await.unwrap();
    let again = add("alice@example.test").await;
    assert_eq!(bayes(&scorer, NEW, &[again]).await, ["none"]);
    teach(&*store, again.scope(), NEW, true, 5).await;
    let own = bayes(&scorer, NEW, &[again]).await;
    assert!(own[0].starts_with("BAYES_99"), "{own:?}");
}
