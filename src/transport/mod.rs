//! Getting bytes to and from a server: TCP connections with deadlines on every wait, and
//! TLS over them (OpenSSL). Knows nothing of SMTP.

mod tcp;
mod tls;

pub use tcp::{connect, deadline_after, Connection, Error};
pub use tls::{ConfigError, TlsOptions, TlsSetup, Verification};
