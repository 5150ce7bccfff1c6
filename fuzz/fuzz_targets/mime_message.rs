//! The MIME parser on arbitrary bytes: no panic, and the cached views are
//! always valid IMAP.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let a = mime::analyze(data);
    for view in [a.envelope, a.bodystructure] {
        assert!(mime::Value::parse(&view).is_some());
    }
    let served = mime::served(data);
    let root = mime::Part::parse(&served);
    for spec in [&b"1.2.MIME"[..], b"HEADER.FIELDS (From)", b"2.TEXT", b"1"] {
        if let Some(s) = mime::section::Section::parse(spec) {
            let _ = s.extract(&served, &root);
        }
    }
});
