//! Our SMTP client's reply reader (the relay, talking to any server on
//! the internet): replies of any shape are read or refused, never a
//! panic, and an EHLO reply's extensions are read from whatever it says.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use relay::client::{Extensions, read_reply};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(async {
        let mut io = data;
        while let Ok(reply) = read_reply(&mut io).await {
            assert!(reply.code <= 999);
            let _ = Extensions::parse(&reply);
            let _ = reply.one_line();
        }
    });
});
