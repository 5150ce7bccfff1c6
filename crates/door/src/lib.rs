//! The door kit, what every door shares: the accept loop and the [`Door`]
//! trait each protocol plugs its session into, TLS setup (a self-signed
//! certificate when none is configured), a stream that is plain until
//! STARTTLS, bounded line reading, logging in (SASL PLAIN and LOGIN, the
//! plaintext policy, the password check and its throttle), the limits on
//! connections and on messages in flight, the logged-in sessions by
//! account, and an in-process harness for door tests.

mod budget;
pub mod conn;
mod deflate;
mod limits;
mod lines;
pub mod login;
mod rate;
mod sessions;
mod stream;
pub mod testing;
mod throttle;
pub mod tls;

pub use budget::{DEFAULT_IN_FLIGHT, Held, InFlight};
pub use conn::{Deadlines, Door, listen, serve};
pub use deflate::Deflate;
pub use limits::{ConnectionGuard, ConnectionLimits};
pub use lines::{LineError, LineReader};
pub use rate::{HourlyLimit, OverLimit};
pub use sessions::{Sessions, Stop, Stopped};
pub use stream::Stream;
pub use throttle::LoginThrottle;
