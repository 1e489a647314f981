//! TLS over a connection, with OpenSSL: the client configuration (`-tlsoptions`), the
//! handshake, which verifies the chain, the host name (or IP address) and the dates, and
//! the session's clean end.

use std::fmt;
use std::net::TcpStream;

use super::tcp::DeadlineSocket;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use openssl::ssl::{HandshakeError, SslConnector, SslFiletype, SslMethod, SslStream, SslVerifyMode, SslVersion};
use openssl::x509::X509VerifyResult;

/// The TLS settings of a send (`-tlsoptions` over `tls::init`), named as in the Tcl `tls`
/// package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// Trusted CA certificates (PEM), in addition to the system's.
    pub cafile: Option<String>,
    /// A directory of hashed CA certificates, in addition to the system's.
    pub cadir: Option<String>,
    /// A client certificate chain (PEM) and its key.
    pub certfile: Option<String>,
    pub keyfile: Option<String>,
    /// Verify the server's certificate (default); false accepts any certificate.
    pub require: bool,
    /// The name sent as SNI and checked against the certificate, instead of the server's.
    pub servername: Option<String>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions { cafile: None, cadir: None, certfile: None, keyfile: None, require: true, servername: None }
    }
}

/// A ready client configuration.
pub struct TlsConfig {
    connector: SslConnector,
    require: bool,
    servername: Option<String>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig").field("require", &self.require).field("servername", &self.servername).finish()
    }
}

/// How a completed handshake went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The certificate verified for the expected name.
    Verified,
    /// Verification was turned off (`-require 0`).
    Skipped,
    /// The session is encrypted but the certificate did not verify: OpenSSL's reason.
    Failed(String),
}

/// How a send gets its TLS configuration: built already (from options, so that a bad
/// file fails before any connection), or the system trust store's, built (once per
/// process) only when a handshake needs it: loading the system's CA bundle costs tens of
/// milliseconds, wasted on a server that never offers STARTTLS.
#[derive(Debug, Clone)]
pub enum TlsSetup {
    Built(Arc<TlsConfig>),
    SystemTrustStore,
}

impl TlsSetup {
    /// The setup for `options`: built now unless they are the defaults.
    pub fn new(options: &TlsOptions) -> Result<TlsSetup, ConfigError> {
        if *options == TlsOptions::default() {
            return Ok(TlsSetup::SystemTrustStore);
        }
        TlsConfig::shared(options).map(TlsSetup::Built)
    }

    /// The configuration, built if need be.
    pub fn config(&self) -> Result<Arc<TlsConfig>, ConfigError> {
        match self {
            TlsSetup::Built(config) => Ok(Arc::clone(config)),
            TlsSetup::SystemTrustStore => TlsConfig::shared(&TlsOptions::default()),
        }
    }
}

/// The configuration for the default options, built once: loading and parsing the
/// system's trust store costs about 20 ms, far more than a whole send on a LAN.
static DEFAULT_CONFIG: OnceLock<Arc<TlsConfig>> = OnceLock::new();

impl TlsConfig {
    /// The configuration for `options`. The one for the default options (the system's
    /// trust store only) is built once per process and shared, so `SSL_CERT_FILE` and
    /// `SSL_CERT_DIR` are read at the first send that uses TLS.
    pub fn shared(options: &TlsOptions) -> Result<Arc<TlsConfig>, ConfigError> {
        if *options != TlsOptions::default() {
            return TlsConfig::new(options).map(Arc::new);
        }
        if let Some(config) = DEFAULT_CONFIG.get() {
            return Ok(Arc::clone(config));
        }
        let config = Arc::new(TlsConfig::new(options)?);
        // Two threads may have built one at once; either is as good.
        Ok(Arc::clone(DEFAULT_CONFIG.get_or_init(|| config)))
    }

    /// Builds the configuration: the system trust store (which honours `SSL_CERT_FILE`
    /// and `SSL_CERT_DIR`), plus the given CAs, TLS 1.2 at least, and the client
    /// certificate if any. Fails on unreadable files, before any connection.
    fn new(options: &TlsOptions) -> Result<TlsConfig, ConfigError> {
        let library = |e: openssl::error::ErrorStack| ConfigError::Library(describe_stack(&e));
        let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(library)?;
        builder.set_min_proto_version(Some(SslVersion::TLS1_2)).map_err(library)?;
        if let Some(file) = &options.cafile {
            readable("-cafile", file)?;
            builder.set_ca_file(file).map_err(|e| ConfigError::file("-cafile", file, &e))?;
        }
        if let Some(dir) = &options.cadir {
            readable("-cadir", dir)?;
            builder
                .load_verify_locations(None, Some(dir.as_ref()))
                .map_err(|e| ConfigError::file("-cadir", dir, &e))?;
        }
        match (&options.certfile, &options.keyfile) {
            (Some(cert), key) => {
                readable("-certfile", cert)?;
                builder.set_certificate_chain_file(cert).map_err(|e| ConfigError::file("-certfile", cert, &e))?;
                let key = key.as_ref().unwrap_or(cert);
                readable("-keyfile", key)?;
                builder
                    .set_private_key_file(key, SslFiletype::PEM)
                    .map_err(|e| ConfigError::file("-keyfile", key, &e))?;
                builder
                    .check_private_key()
                    .map_err(|e| ConfigError::KeyMismatch { key: key.clone(), why: e.to_string() })?;
            }
            (None, Some(_)) => return Err(ConfigError::KeyWithoutCertificate),
            (None, None) => {}
        }
        if options.require {
            // Finish the handshake whatever the verdict, and read the verdict afterwards:
            // an unverified session can then be offered to -tlspolicy without a second
            // handshake, and only the policy (never this callback) lets it be used.
            builder.set_verify_callback(SslVerifyMode::PEER, |_, _| true);
        } else {
            builder.set_verify(SslVerifyMode::NONE);
        }
        Ok(TlsConfig { connector: builder.build(), require: options.require, servername: options.servername.clone() })
    }

    /// Runs the client handshake over `tcp` for server `host` within `deadline`.
    pub(super) fn handshake(
        &self,
        tcp: TcpStream,
        host: &str,
        deadline: Instant,
    ) -> Result<(SslStream<DeadlineSocket>, Verification), String> {
        let name = self.servername.as_deref().unwrap_or(host);
        // An IPv6 literal may come bracketed; OpenSSL wants the bare address.
        let name = name.trim_start_matches('[').trim_end_matches(']');
        let tcp = DeadlineSocket::new(tcp, deadline);
        let config = self.connector.configure().map_err(|e| e.to_string())?;
        // SNI is sent for host names only (never for addresses, RFC 6066 §3); the name
        // or address is checked against the certificate when verifying.
        let stream = config.verify_hostname(self.require).connect(name, tcp).map_err(|e| match e {
            HandshakeError::WouldBlock(_) => "timed out".to_string(),
            HandshakeError::SetupFailure(e) => e.to_string(),
            HandshakeError::Failure(mid) => describe(mid.error()),
        })?;
        let verification = match (self.require, stream.ssl().verify_result()) {
            (false, _) => Verification::Skipped,
            (true, X509VerifyResult::OK) => Verification::Verified,
            (true, failure) => Verification::Failed(failure.error_string().to_string()),
        };
        Ok((stream, verification))
    }
}

/// Ends a TLS session cleanly with close_notify, so the server can tell the end from a
/// cut connection (Exim logs one without it as an unclean TLS end). The server's own
/// close_notify is not awaited: the socket is closed next, and each side may close its
/// half alone (RFC 8446 §6.1).
pub(super) fn close_notify(stream: &mut SslStream<DeadlineSocket>) {
    // A server already gone or a broken session leaves nothing to do but close.
    let _ = stream.shutdown();
}

/// A clear error for a path that cannot be read, before OpenSSL reports it obscurely.
fn readable(option: &'static str, path: &str) -> Result<(), ConfigError> {
    std::fs::metadata(path).map(drop).map_err(|e| ConfigError::File { option, path: path.into(), why: e.to_string() })
}

/// Why TLS settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file or directory setting (`-cafile`, `-cadir`, `-certfile`, `-keyfile`) that
    /// cannot be read or used.
    File { option: &'static str, path: String, why: String },
    /// The private key is not the certificate's.
    KeyMismatch { key: String, why: String },
    /// `-keyfile` without `-certfile`.
    KeyWithoutCertificate,
    /// OpenSSL could not make a TLS context at all.
    Library(String),
}

impl ConfigError {
    fn file(option: &'static str, path: &str, stack: &openssl::error::ErrorStack) -> ConfigError {
        ConfigError::File { option, path: path.into(), why: describe_stack(stack) }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::File { option, path, why } => write!(f, "{option} {path}: {why}"),
            ConfigError::KeyMismatch { key, why } => write!(f, "-keyfile {key} does not match -certfile: {why}"),
            ConfigError::KeyWithoutCertificate => f.write_str("-keyfile needs -certfile"),
            ConfigError::Library(why) => f.write_str(why),
        }
    }
}

/// The reasons in an OpenSSL error stack, without its noise (library, function, file).
fn describe_stack(stack: &openssl::error::ErrorStack) -> String {
    let reasons: Vec<&str> = stack.errors().iter().filter_map(|e| e.reason()).collect();
    if reasons.is_empty() {
        stack.to_string()
    } else {
        reasons.join("; ")
    }
}

/// OpenSSL's reason for a failed handshake, without the noise of its error stack.
fn describe(e: &openssl::ssl::Error) -> String {
    if let Some(stack) = e.ssl_error().filter(|s| !s.errors().is_empty()) {
        return describe_stack(stack);
    }
    match e.io_error() {
        Some(io) => io.to_string(),
        None => e.to_string(),
    }
}
