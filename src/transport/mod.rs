//! Getting bytes to and from a server: TCP connections with deadlines on every wait.
//! (TLS will live here too.) Knows nothing of SMTP.

mod tcp;

pub use tcp::{connect, Connection, Error};
