//! The IMAP command parser and literal framing on arbitrary bytes: no
//! panic, and a parsed command always has a non-empty tag.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = imap_proto::frame::literal_at_end(data);
    let _ = imap_proto::frame::command_name(data);
    if let Ok(cmd) = imap_proto::parse_command(data) {
        assert!(!cmd.tag.is_empty());
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = imap_proto::utf7::decode(s);
        let round = imap_proto::utf7::encode(s);
        assert_eq!(imap_proto::utf7::decode(&round).as_deref(), Some(s));
    }
});
