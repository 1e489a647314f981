//! TCP connections whose every wait ends at a deadline.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use openssl::ssl::SslStream;

use super::tls::{TlsConfig, Verification};

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
    let deadline = deadline_after(timeout);
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs().map_err(|e| Error::Resolve(e.to_string()))?.collect();
    let mut last = Error::Resolve(format!("{host} has no address"));
    for addr in addrs {
        let Some(left) = remaining(deadline) else { return Err(Error::Timeout) };
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => {
                // Commands are written whole; waiting for more to coalesce only adds latency.
                stream.set_nodelay(true).map_err(Error::Io)?;
                return Ok(Connection { stream: Stream::Plain(stream) });
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => last = Error::Timeout,
            Err(e) => last = Error::Io(e),
        }
    }
    Err(last)
}

/// The moment `timeout` from now. A timeout too large to represent (`-maxsecs` of 2^64-1
/// seconds) means about a century, which is as good as forever.
pub fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout).or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600))).unwrap_or(now)
}

/// Time left until `deadline`, or `None` once it has passed. Never zero, because the
/// socket API reads a zero timeout as "wait forever".
pub(super) fn remaining(deadline: Instant) -> Option<Duration> {
    let left = deadline.checked_duration_since(Instant::now())?;
    (!left.is_zero()).then_some(left.max(Duration::from_millis(1)))
}

/// An open connection, plain or TLS.
#[derive(Debug)]
pub struct Connection {
    stream: Stream,
}

#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<SslStream<DeadlineSocket>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => &tls.get_ref().tcp,
        }
    }
}

/// The socket under a TLS session: every read and write ends at the current deadline.
/// OpenSSL reads a TLS record with as many reads as it takes, so a timeout per read
/// would start again with each byte a server trickles; this bounds them all.
#[derive(Debug)]
pub(super) struct DeadlineSocket {
    tcp: TcpStream,
    deadline: Instant,
}

impl DeadlineSocket {
    pub(super) fn new(tcp: TcpStream, deadline: Instant) -> DeadlineSocket {
        DeadlineSocket { tcp, deadline }
    }

    /// The time left, or a `TimedOut` error once the deadline has passed.
    fn left(&self) -> io::Result<Duration> {
        remaining(self.deadline).ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "timed out"))
    }
}

impl Read for DeadlineSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.set_read_timeout(Some(self.left()?))?;
        self.tcp.read(buf)
    }
}

impl Write for DeadlineSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.set_write_timeout(Some(self.left()?))?;
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

impl Connection {
    /// Upgrades to TLS (after STARTTLS's 220, or at once for implicit TLS). On failure the
    /// connection is gone; the error is OpenSSL's reason.
    pub fn start_tls(
        self,
        config: &TlsConfig,
        host: &str,
        deadline: Instant,
    ) -> Result<(Connection, Verification), String> {
        let Stream::Plain(tcp) = self.stream else {
            return Err("the connection is already TLS".into());
        };
        let (tls, verification) = config.handshake(tcp, host, deadline)?;
        Ok((Connection { stream: Stream::Tls(Box::new(tls)) }, verification))
    }

    /// Closes the connection; a TLS session first sends close_notify, within `deadline`.
    pub fn close(mut self, deadline: Instant) {
        if let Stream::Tls(session) = &mut self.stream {
            session.get_mut().deadline = deadline;
            super::tls::close_notify(session);
        }
    }

    /// The TLS protocol version and cipher in use, or `None` in plaintext.
    pub fn tls_details(&self) -> Option<(String, String)> {
        let Stream::Tls(tls) = &self.stream else { return None };
        let ssl = tls.ssl();
        let cipher = ssl.current_cipher().map_or_else(String::new, |c| c.name().to_string());
        Some((ssl.version_str().to_string(), cipher))
    }

    /// Whether the server's address is a loopback one (127.0.0.0/8, ::1): traffic to it
    /// never leaves the machine.
    pub fn peer_is_loopback(&self) -> bool {
        self.stream.tcp().peer_addr().is_ok_and(|a| match a.ip() {
            std::net::IpAddr::V4(ip) => ip.is_loopback(),
            std::net::IpAddr::V6(ip) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        })
    }

    /// Another handle to the socket under the connection (plain or TLS), so another
    /// thread can shut it down.
    pub fn socket(&self) -> io::Result<TcpStream> {
        self.stream.tcp().try_clone()
    }

    /// Reads whatever is available (at least one byte) into `buf`, waiting until `deadline`.
    pub fn read_some(&mut self, buf: &mut Vec<u8>, deadline: Instant) -> Result<usize, Error> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let left = remaining(deadline).ok_or(Error::Timeout)?;
            let read = match &mut self.stream {
                Stream::Plain(tcp) => tcp.set_read_timeout(Some(left)).and_then(|()| tcp.read(&mut chunk)),
                Stream::Tls(tls) => {
                    tls.get_mut().deadline = deadline;
                    tls.read(&mut chunk)
                }
            };
            match read {
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

    /// Reads what has already arrived into `buf`, without waiting: `Ok(0)` when nothing
    /// has (TLS records that carry no data, such as session tickets, count as nothing).
    pub fn read_arrived(&mut self, buf: &mut Vec<u8>) -> Result<usize, Error> {
        self.stream.tcp().set_nonblocking(true).map_err(Error::Io)?;
        let mut chunk = [0u8; 4096];
        let read = match &mut self.stream {
            Stream::Plain(tcp) => tcp.read(&mut chunk),
            Stream::Tls(tls) => tls.read(&mut chunk),
        };
        let restored = self.stream.tcp().set_nonblocking(false).map_err(Error::Io);
        let outcome = match read {
            Ok(0) => Err(Error::Closed),
            Ok(n) => {
                buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                Ok(n)
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(0),
            Err(e) => Err(Error::Io(e)),
        };
        restored.and(outcome)
    }

    /// Writes all of `data`, each write waiting at most until `deadline`.
    pub fn write_all(&mut self, mut data: &[u8], deadline: Instant) -> Result<(), Error> {
        while !data.is_empty() {
            let left = remaining(deadline).ok_or(Error::Timeout)?;
            let written = match &mut self.stream {
                Stream::Plain(tcp) => tcp.set_write_timeout(Some(left)).and_then(|()| tcp.write(data)),
                Stream::Tls(tls) => {
                    tls.get_mut().deadline = deadline;
                    tls.write(data)
                }
            };
            match written {
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
