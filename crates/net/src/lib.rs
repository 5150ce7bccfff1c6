//! What every door shares: TLS setup (a self-signed certificate when none is
//! configured), a stream that is plain until STARTTLS, bounded line reading,
//! and the limits on logins and connections.

pub mod door;
pub mod limits;
pub mod lines;
pub mod stream;
pub mod tls;

pub use limits::{ConnectionGuard, ConnectionLimits, LoginThrottle};
pub use lines::{LineError, LineReader};
pub use stream::Stream;
