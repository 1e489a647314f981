//! TCP connections whose every wait ends at a deadline.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Why a connection could not be made or used.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The host name did not resolve.
    Resolve(String),
    /// The deadline passed.
    Timeout,
    /// The peer closed the connection.
    Closed,
    /// Any other socket error.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Resolve(e) => write!(f, "cannot resolve host name: {e}"),
            Error::Timeout => f.write_str("timed out"),
            Error::Closed => f.write_str("connection closed by the server"),
            Error::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Connects to `host:port`, trying each address the name resolves to until one answers,
/// all within `timeout`.
pub fn connect(host: &str, port: u16, timeout: Duration) -> Result<Connection, Error> {
    let deadline = Instant::now() + timeout;
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs().map_err(|e| Error::Resolve(e.to_string()))?.collect();
    let mut last = Error::Resolve(format!("{host} has no address"));
    for addr in addrs {
        let Some(left) = remaining(deadline) else { return Err(Error::Timeout) };
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => {
                // Commands are written whole; waiting for more to coalesce only adds latency.
                stream.set_nodelay(true).map_err(Error::Io)?;
                return Ok(Connection { stream });
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => last = Error::Timeout,
            Err(e) => last = Error::Io(e),
        }
    }
    Err(last)
}

/// Time left until `deadline`, or `None` once it has passed. Never zero, because the
/// socket API reads a zero timeout as "wait forever".
fn remaining(deadline: Instant) -> Option<Duration> {
    let left = deadline.checked_duration_since(Instant::now())?;
    (!left.is_zero()).then_some(left.max(Duration::from_millis(1)))
}

/// An open connection.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
}

impl Connection {
    /// Reads whatever is available (at least one byte) into `buf`, waiting until `deadline`.
    pub fn read_some(&mut self, buf: &mut Vec<u8>, deadline: Instant) -> Result<usize, Error> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let left = remaining(deadline).ok_or(Error::Timeout)?;
            self.stream.set_read_timeout(Some(left)).map_err(Error::Io)?;
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(Error::Closed),
                Ok(n) => {
                    buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => return Err(Error::Timeout),
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    /// Writes all of `data`, each write waiting at most until `deadline`.
    pub fn write_all(&mut self, mut data: &[u8], deadline: Instant) -> Result<(), Error> {
        while !data.is_empty() {
            let left = remaining(deadline).ok_or(Error::Timeout)?;
            self.stream.set_write_timeout(Some(left)).map_err(Error::Io)?;
            match self.stream.write(data) {
                Ok(0) => return Err(Error::Closed),
                Ok(n) => data = data.get(n..).unwrap_or_default(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => return Err(Error::Timeout),
                Err(e) => return Err(Error::Io(e)),
            }
        }
        Ok(())
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}
