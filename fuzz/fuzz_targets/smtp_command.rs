//! The SMTP door's command line reader (smtp-proto with our SIZE check):
//! any line is a request or a reply refusing it, never a panic; a
//! refusal is one printable line, so nothing a client sent can break the
//! reply's framing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(reply) = smtp::command::parse(data) {
        assert!(reply.len() >= 4 && reply.as_bytes()[..3].iter().all(u8::is_ascii_digit));
        assert!(!reply.contains(['\r', '\n']), "{reply:?}");
    }
});
