//! SEARCH's view of a message on arbitrary bytes: parsing (with nesting
//! cut at the depth limit) and every kind of text match, never a panic or
//! a stack overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mime::search::{Searchable, fold};

fuzz_target!(|data: &[u8]| {
    let Some(s) = Searchable::parse(data) else {
        return;
    };
    let needle = fold("needle");
    let _ = s.body_contains(&needle);
    let _ = s.text_contains(&needle);
    let _ = s.header_contains("subject", &needle);
    let _ = s.header_contains("message-id", "");
    let _ = s.sent_date();
});
