//! Any bytes as a Sieve script: compiling never panics, and a script that
//! compiles runs on a fixed message without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

const MESSAGE: &[u8] = b"From: Bob <bob+list@example.com>\r\nTo: alice@example.test\r\n\
Subject: [dev] =?utf-8?q?caf=C3=A9?=\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(script) = sieve::Script::compile(text) {
        let exists = |m: &str| m == "INBOX";
        let context = sieve::Context {
            envelope_from: "bob@example.com",
            envelope_to: "alice+x@example.test",
            mailbox_exists: &exists,
            spam: Some((70, 100)),
            environment: &[("phase", "during")],
            now: 1_700_000_000,
            zone: 60,
            include: &|_, _| None,
        };
        let _ = script.run(&sieve::Message::new(MESSAGE), &context);
    }
});
