//! The POP3 command reader: any line is a command (perhaps an unknown
//! one), never a panic; a message number is never 0; an unknown keyword
//! is echoed back only as a few printable characters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pop3::command::{Command, parse};

fuzz_target!(|data: &[u8]| {
    let command = parse(data);
    let _ = (command.name(), command.state());
    match command {
        Command::Retr(n) | Command::Dele(n) | Command::Top(n, _) => assert_ne!(n, Some(0)),
        Command::List(Some(n)) | Command::Uidl(Some(n)) => assert_ne!(n, Some(0)),
        Command::Unknown(name) => {
            assert!(
                name.len() <= 20 && name.bytes().all(|b| b.is_ascii_graphic()),
                "{name:?}"
            );
        }
        _ => {}
    }
});
