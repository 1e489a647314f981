//! The options of `::smtp::sendmessage`, parsed as tcllib smtp 1.5.1 does (reference §2),
//! and the connection options it shares with `::smtp::mail`:
//! names exact and case-sensitive, left to right, the last value wins except for the
//! accumulating `-header`, tcllib's messages for its errors. Values tcllib mishandles are
//! refused here with a clear message, before anything touches the network.

use super::asked::Asked;
use super::Error;
use crate::client::Server;
use crate::message::{self, HeaderOption};
use crate::sasl::Mechanism;
use crate::secret::Secret;
use crate::smtp::{Dsn, Notify, Ret};
use crate::tcl::{Interp, Obj, TclError};
use crate::transport::{ConfigError, TlsOptions};

/// The options of `sendmessage`, typed and checked.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub connection: Connection,
    pub headers: Vec<HeaderOption>,
    /// `None` when `-originator` was not given; `Some("")` asks for `MAIL FROM:<>`.
    pub originator: Option<String>,
    pub recipients: String,
}

/// The options of how a message goes, shared by `sendmessage` and `mail`.
#[derive(Debug, Clone)]
pub struct Connection {
    pub atleastone: bool,
    pub debug: bool,
    pub queue: bool,
    pub usetls: bool,
    pub tlsimport: bool,
    /// `-tlspolicy`: a command prefix, `None` when not given or empty.
    pub tlspolicy: Option<Obj>,
    /// `-command`: the callback prefix of an asynchronous send; `None` (not given or
    /// empty) for a synchronous one.
    pub command: Option<Obj>,
    /// `-tlsoptions` over the `tls::init` defaults.
    pub tlsoptions: TlsOptions,
    /// The names of the `tlsoptions` that came from `tls::init`, for error messages.
    pub tls_init_options: Vec<String>,
    /// The wait for the end-of-data reply, in seconds.
    pub maxsecs: u64,
    /// `-timeout`: a cap on every network wait, in seconds.
    pub timeout: Option<u64>,
    /// In order, empty entries already dropped with their ports.
    pub servers: Vec<Server>,
    /// The `-servers` value is exactly `localhost` (tcllib's rule for the default `-client`).
    pub servers_is_localhost: bool,
    pub client: Option<String>,
    pub username: String,
    pub password: Secret,
    /// `-authmechanisms`: the mechanisms allowed, in order; empty for the defaults.
    pub authmechanisms: Vec<Mechanism>,
    /// `-oauthtoken`: an OAuth 2.0 access token for the bearer mechanisms.
    pub oauthtoken: Option<Secret>,
    /// `-oauthcommand`: a command prefix that returns one, `None` when not given or empty.
    pub oauthcommand: Option<Obj>,
    /// `-session`: the handle of the session the message goes over.
    pub session: Option<String>,
    /// `-dsn`: the delivery status notifications asked for.
    pub dsn: Option<Dsn>,
    /// `-progress`: a command prefix told how far the message has gone.
    pub progress: Option<Obj>,
}

impl Default for Connection {
    fn default() -> Self {
        Connection {
            atleastone: false,
            debug: false,
            queue: false,
            usetls: true,
            tlsimport: false,
            tlspolicy: None,
            command: None,
            tlsoptions: TlsOptions::default(),
            tls_init_options: Vec::new(),
            maxsecs: 120,
            timeout: None,
            servers: vec![Server { host: "localhost".into(), port: 25 }],
            servers_is_localhost: true,
            client: None,
            username: String::new(),
            password: Secret::default(),
            authmechanisms: Vec::new(),
            oauthtoken: None,
            oauthcommand: None,
            session: None,
            dsn: None,
            progress: None,
        }
    }
}

impl Connection {
    /// The commands a send's worker may ask.
    pub fn asked(&self) -> Asked {
        Asked {
            tlspolicy: self.tlspolicy.clone(),
            oauthcommand: self.oauthcommand.clone(),
            progress: self.progress.clone(),
        }
    }

    /// The error for TLS settings that cannot be used (an unreadable file), naming those
    /// that `tls::init` supplied.
    pub fn tls_error(&self, error: ConfigError) -> Error {
        Error::Tls { from_tls_init: self.tls_init_options.clone(), error }
    }
}

/// The connection options of one call, collected word by word; [`ConnectionWords::finish`]
/// then reads what depends on several of them (servers and ports, TLS settings).
#[derive(Default)]
pub struct ConnectionWords {
    connection: Connection,
    /// The options taken, as typed, in order.
    given: Vec<String>,
    servers: Option<Obj>,
    ports: Option<Obj>,
    tlsoptions: Option<Obj>,
}

impl ConnectionWords {
    /// Takes option `name` with `value` if it is a connection option; `false` if not.
    pub fn take(&mut self, interp: &Interp<'_>, name: &str, value: &Obj) -> Result<bool, TclError> {
        self.take_as(interp, name, name, value)
    }

    /// [`ConnectionWords::take`] for option `name`, typed as `typed` (an alias).
    pub fn take_as(&mut self, interp: &Interp<'_>, typed: &str, name: &str, value: &Obj) -> Result<bool, TclError> {
        let c = &mut self.connection;
        match name {
            "-session" => c.session = Some(value.text()),
            "-dsn" => c.dsn = dsn(interp, value)?,
            "-progress" => {
                let words = interp.list_elements(value).map_err(|e| value_error(e.message, "-progress"))?;
                c.progress = (!words.is_empty()).then(|| value.clone());
            }
            "-atleastone" => c.atleastone = boolean(value)?,
            "-debug" => c.debug = boolean(value)?,
            "-queue" => c.queue = boolean(value)?,
            "-tlsimport" => c.tlsimport = boolean(value)?,
            "-usetls" => c.usetls = boolean(value)?,
            "-tlspolicy" => {
                let words = interp.list_elements(value).map_err(|e| value_error(e.message, "-tlspolicy"))?;
                c.tlspolicy = (!words.is_empty()).then(|| value.clone());
            }
            "-command" => {
                let words = interp.list_elements(value).map_err(|e| value_error(e.message, "-command"))?;
                c.command = (!words.is_empty()).then(|| value.clone());
            }
            "-oauthcommand" => {
                let words = interp.list_elements(value).map_err(|e| value_error(e.message, "-oauthcommand"))?;
                c.oauthcommand = (!words.is_empty()).then(|| value.clone());
            }
            "-oauthtoken" => {
                let token = value.text();
                c.oauthtoken = (!token.is_empty()).then(|| Secret::from_text(&token));
            }
            "-authmechanisms" => c.authmechanisms = mechanisms(interp, value)?,
            "-tlsoptions" => self.tlsoptions = Some(value.clone()),
            "-username" => c.username = line(value, "-username")?,
            "-password" => c.password = Secret::from_text(&value.text()),
            "-maxsecs" => c.maxsecs = seconds(value, "-maxsecs")?,
            "-timeout" => c.timeout = Some(seconds(value, "-timeout")?),
            "-servers" => self.servers = Some(value.clone()),
            "-ports" => self.ports = Some(value.clone()),
            "-client" => c.client = Some(client_name(value)?),
            _ => return Ok(false),
        }
        self.given.push(typed.to_string());
        Ok(true)
    }

    /// The connection options, once all words are taken, for a call that opens no
    /// connection of its own (`smtp::open` checks its options, `-session` sends use the
    /// session's): fails on an option in `refused`.
    pub fn refuse(&self, refused: impl Fn(&str) -> Option<Error>) -> Result<(), TclError> {
        match self.given.iter().find_map(|name| refused(name)) {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// The connection options, once all words are taken. With `-session` only the
    /// options of one message may be given.
    pub fn finish(self, interp: &Interp<'_>) -> Result<Connection, TclError> {
        if self.connection.session.is_some() {
            self.refuse(|name| {
                let message = format!(
                    "{name} cannot go with -session: the session's connections were set up by smtp::open \
                     (only -atleastone, -command, -dsn and -progress go with each message)"
                );
                (!PER_MESSAGE.contains(&name)).then(|| Error::Conflict { option: name.to_string(), message })
            })?;
            return Ok(self.connection);
        }
        let mut c = self.connection;
        check_authentication(&c)?;
        // tls::init sets the application's TLS policy: it applies when this send may use
        // TLS (with -usetls 0 its files are not even checked).
        let tls_init = if c.usetls || c.tlsimport { tls_init_defaults(interp) } else { None };
        (c.tlsoptions, c.tls_init_options) = tls_options(interp, tls_init.as_ref(), self.tlsoptions.as_ref())?;
        if let Some(servers) = self.servers {
            c.servers_is_localhost = servers.text() == "localhost";
            c.servers = server_list(interp, &servers, self.ports.as_ref())?;
        } else if let Some(ports) = self.ports {
            let localhost = interp.new_string("localhost");
            c.servers = server_list(interp, &localhost, Some(&ports))?;
        }
        Ok(c)
    }
}

/// The options of [`ConnectionWords`] that are about one message: they go with
/// `-session`, and not with `smtp::open`.
pub const PER_MESSAGE: [&str; 5] = ["-session", "-atleastone", "-command", "-dsn", "-progress"];

/// `-dsn {notify list ret full|hdrs envid id orcpt bool}`: what to ask of delivery status
/// notifications (RFC 3461); an empty dict asks nothing.
fn dsn(interp: &Interp<'_>, value: &Obj) -> Result<Option<Dsn>, TclError> {
    let bad = |message: String| Err(value_error(format!("-dsn: {message}"), "-dsn"));
    let words = interp.list_elements(value).map_err(|e| value_error(e.message, "-dsn"))?;
    if words.len() % 2 != 0 {
        return bad(format!("expects a dict of notify, ret, envid and orcpt, not {}", value.text()));
    }
    let mut dsn = Dsn::default();
    for pair in words.chunks(2) {
        let [key, value] = pair else { continue };
        match key.text().as_str() {
            "notify" => {
                let events: Vec<String> = interp
                    .list_elements(value)
                    .map_err(|e| value_error(e.message, "-dsn"))?
                    .iter()
                    .map(|e| e.text().to_ascii_lowercase())
                    .collect();
                let has = |name: &str| events.iter().any(|e| e == name);
                if let Some(other) =
                    events.iter().find(|e| !["success", "failure", "delay", "never"].contains(&e.as_str()))
                {
                    return bad(format!("notify: unknown event \"{other}\": must be success, failure, delay or never"));
                }
                dsn.notify = match (has("never"), events.len()) {
                    (true, 1) => Some(Notify::Never),
                    (true, _) => return bad("notify: never goes alone".into()),
                    (false, 0) => None,
                    (false, _) => {
                        Some(Notify::On { success: has("success"), failure: has("failure"), delay: has("delay") })
                    }
                };
            }
            "ret" => {
                dsn.ret = match value.text().to_ascii_lowercase().as_str() {
                    "full" => Some(Ret::Full),
                    "hdrs" => Some(Ret::Headers),
                    other => return bad(format!("ret: \"{other}\" must be full or hdrs")),
                }
            }
            "envid" => {
                let envid = value.text();
                if envid.chars().any(char::is_control) || envid.len() > 100 {
                    return bad("envid: at most 100 characters, none a control character".into());
                }
                dsn.envid = (!envid.is_empty()).then_some(envid);
            }
            "orcpt" => dsn.orcpt = boolean(value)?,
            other => return bad(format!("unknown key \"{other}\": must be notify, ret, envid or orcpt")),
        }
    }
    Ok((dsn != Dsn::default()).then_some(dsn))
}

/// `-authmechanisms`: known mechanism names, each once.
fn mechanisms(interp: &Interp<'_>, value: &Obj) -> Result<Vec<Mechanism>, TclError> {
    let mut list = Vec::new();
    for word in interp.list_elements(value).map_err(|e| value_error(e.message, "-authmechanisms"))? {
        let name = word.text();
        let known = || {
            let all = Mechanism::PASSWORD.iter().chain(&Mechanism::BEARER).map(|m| m.name());
            all.collect::<Vec<_>>().join(" ")
        };
        let mechanism = match Mechanism::from_name(&name) {
            Some(m) => m,
            None if name.to_ascii_uppercase().ends_with("-PLUS") => {
                let message = format!(
                    "-authmechanisms: {name} is not supported (this client does no channel binding); known: {}",
                    known()
                );
                return Err(value_error(message, "-authmechanisms"));
            }
            None => {
                let message = format!("-authmechanisms: unknown mechanism \"{name}\": must be one of {}", known());
                return Err(value_error(message, "-authmechanisms"));
            }
        };
        if !list.contains(&mechanism) {
            list.push(mechanism);
        }
    }
    Ok(list)
}

/// The authentication options that cannot go together: a token and a token command; a
/// token without the user name it is sent with; mechanisms of the other kind than the
/// credentials (bearer ones need a token, and with a token only they are used).
fn check_authentication(c: &Connection) -> Result<(), TclError> {
    let conflict = |option: &str, message: String| Err(Error::Conflict { option: option.into(), message }.into());
    let bearer = c.oauthtoken.is_some() || c.oauthcommand.is_some();
    if c.oauthtoken.is_some() && c.oauthcommand.is_some() {
        return conflict("-oauthcommand", "give either -oauthtoken or -oauthcommand, not both".into());
    }
    if bearer && c.username.is_empty() {
        let why = "the bearer mechanisms send the user name with the token";
        return Err(Error::MissingOption { option: "-username", why }.into());
    }
    if bearer && c.username.chars().any(char::is_control) {
        let message = "-username has a control character, which the bearer mechanisms cannot send".to_string();
        return Err(Error::Value { option: "-username".into(), message }.into());
    }
    if let Some(Err(e)) = c.oauthtoken.as_ref().map(crate::sasl::check_token) {
        return Err(Error::Value { option: "-oauthtoken".into(), message: format!("-oauthtoken: {e}") }.into());
    }
    if let Some(m) = c.authmechanisms.iter().find(|m| m.is_bearer() != bearer) {
        let message = if bearer {
            format!("-authmechanisms {}: with a token only OAUTHBEARER and XOAUTH2 are used", m.name())
        } else {
            format!("-authmechanisms {}: needs -oauthtoken or -oauthcommand", m.name())
        };
        return conflict("-authmechanisms", message);
    }
    Ok(())
}

/// `SMTP OPTION VALUE option`, with `message`.
pub fn value_error(message: String, option: &str) -> TclError {
    Error::Value { option: option.to_string(), message }.into()
}

/// tcllib's check that the option words come in pairs.
pub fn check_pairs(interp: &Interp<'_>, words: &[Obj]) -> Result<(), TclError> {
    if words.len() % 2 != 0 {
        return Err(Error::NoValue(interp.new_list(words).text()).into());
    }
    Ok(())
}

/// Parses the words after the token.
pub fn parse(interp: &Interp<'_>, words: &[Obj]) -> Result<Options, TclError> {
    check_pairs(interp, words)?;
    let mut o = Options::default();
    let mut connection = ConnectionWords::default();
    for pair in words.chunks(2) {
        let [name, value] = pair else { continue };
        let name = name.text();
        match name.as_str() {
            "-header" => add_header(interp, &mut o.headers, value)?,
            "-originator" => o.originator = Some(line(value, "-originator")?),
            "-recipients" => o.recipients = line(value, "-recipients")?,
            _ if connection.take(interp, &name, value)? => {}
            _ => return Err(Error::UnknownOption(name).into()),
        }
    }
    o.connection = connection.finish(interp)?;
    Ok(o)
}

/// tcllib's booleans: exactly `0 false no off 1 true yes on`, any case.
pub fn boolean(value: &Obj) -> Result<bool, TclError> {
    let text = value.text();
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::Boolean(text).into()),
    }
}

/// What `tls::init` last set (`::tls::defaults`, its option/value words) when the Tcl `tls`
/// package is loaded. Read at each send, so a later `tls::init` changes the next send.
fn tls_init_defaults(interp: &Interp<'_>) -> Option<Obj> {
    let words = ["package", "provide", "tls"].map(|w| interp.new_string(w));
    let loaded = interp.eval_global(&words).is_ok_and(|version| !version.text().is_empty());
    loaded.then(|| interp.variable("::tls::defaults")).flatten()
}

/// The `tls::init` options that apply to a send. `-servername` would name every server
/// alike; the others (`-ssl3`, `-command`, ...) are the `tls` package's own business.
const TLS_INIT_OPTIONS: [&str; 5] = ["-cafile", "-cadir", "-certfile", "-keyfile", "-require"];

/// The TLS settings, named as in the Tcl `tls` package: `-tlsoptions {-cafile F -cadir D
/// -certfile F -keyfile F -require BOOL -servername NAME}` over the `tls::init` defaults,
/// option by option (as the `tls` package merges its own defaults), and the names of
/// those that `tls::init` supplied.
fn tls_options(
    interp: &Interp<'_>,
    tls_init: Option<&Obj>,
    tlsoptions: Option<&Obj>,
) -> Result<(TlsOptions, Vec<String>), TclError> {
    let mut o = TlsOptions::default();
    let mut from_init = Vec::new();
    // Only tls::init writes this list, as pairs; anything else in it is not ours to judge.
    let defaults = tls_init.and_then(|list| interp.list_elements(list).ok()).unwrap_or_default();
    for pair in defaults.chunks(2) {
        let [name, value] = pair else { continue };
        let name = name.text();
        if TLS_INIT_OPTIONS.contains(&name.as_str()) {
            set_tls_option(&mut o, "tls::init", &name, value)?;
            from_init.retain(|n| *n != name);
            from_init.push(name);
        }
    }
    let Some(value) = tlsoptions else { return Ok((o, from_init)) };
    let words = interp.list_elements(value).map_err(|e| value_error(e.message, "-tlsoptions"))?;
    if words.len() % 2 != 0 {
        let msg = format!("-tlsoptions expects option/value pairs, not \"{}\"", value.text());
        return Err(value_error(msg, "-tlsoptions"));
    }
    for pair in words.chunks(2) {
        let [name, value] = pair else { continue };
        let name = name.text();
        if !set_tls_option(&mut o, "-tlsoptions", &name, value)? {
            return Err(value_error(
                format!(
                    "bad option \"{name}\" in -tlsoptions: must be -cafile, -cadir, -certfile, -keyfile, \
                     -require or -servername"
                ),
                "-tlsoptions",
            ));
        }
        from_init.retain(|n| *n != name);
    }
    Ok((o, from_init))
}

/// Sets option `name` from `source` (`-tlsoptions` or `tls::init`); false when there is
/// no such option. An empty path means none.
fn set_tls_option(o: &mut TlsOptions, source: &str, name: &str, value: &Obj) -> Result<bool, TclError> {
    let path = |v: &Obj| -> Result<Option<String>, TclError> {
        let text = line(v, source)?;
        Ok((!text.is_empty()).then_some(text))
    };
    match name {
        "-cafile" => o.cafile = path(value)?,
        "-cadir" => o.cadir = path(value)?,
        "-certfile" => o.certfile = path(value)?,
        "-keyfile" => o.keyfile = path(value)?,
        "-require" => {
            o.require =
                boolean(value).map_err(|e| TclError { message: format!("{source} -require: {}", e.message), ..e })?
        }
        "-servername" => o.servername = path(value)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// A whole number of seconds, at least 1 (tcllib silently misreads 0, 1.5 and `abc`).
fn seconds(value: &Obj, option: &str) -> Result<u64, TclError> {
    let text = value.text();
    match text.trim().parse::<u64>() {
        Ok(n) if n > 0 && text.trim().bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(value_error(
            format!("{option} must be a whole number of seconds greater than 0, not \"{text}\""),
            option,
        )),
    }
}

/// A value that goes into a command or header line: no CR, LF or NUL.
fn line(value: &Obj, option: &str) -> Result<String, TclError> {
    let text = value.text();
    if message::has_line_break_or_nul(&text) {
        return Err(Error::LineBreak { option: option.to_string(), value: text }.into());
    }
    Ok(text)
}

fn client_name(value: &Obj) -> Result<String, TclError> {
    let name = line(value, "-client")?;
    if name.is_empty() || name.contains([' ', '\t']) {
        return Err(value_error(format!("-client must be a host name without spaces, not \"{name}\""), "-client"));
    }
    // A domain or address literal has at most 255 octets (RFC 5321 4.5.3.1.2); more would
    // only be refused by the server, after the connection.
    if name.len() > 255 {
        return Err(value_error(format!("-client is longer than 255 bytes ({} bytes)", name.len()), "-client"));
    }
    Ok(name)
}

/// `-header {key value}`: tcllib's shape and reserved-name rules, plus a valid field name
/// and a value that cannot start a new header line.
fn add_header(interp: &Interp<'_>, headers: &mut Vec<HeaderOption>, value: &Obj) -> Result<(), TclError> {
    let shape_error = || TclError::from(Error::HeaderShape(value.text()));
    let pair = interp.list_elements(value).map_err(|_| shape_error())?;
    let [key, field_value] = pair.as_slice() else { return Err(shape_error()) };
    let (key, field_value) = (key.text(), field_value.text());
    let lower = key.to_ascii_lowercase();
    if ["content-type", "content-transfer-encoding", "content-md5", "mime-version"].contains(&lower.as_str()) {
        return Err(Error::TcllibReservedHeader.into());
    }
    message::check_field_name(&key).map_err(Error::Message)?;
    if message::has_line_break_or_nul(&field_value) {
        return Err(Error::HeaderLineBreak { key, value: field_value }.into());
    }
    match headers.iter_mut().find(|h| h.name.eq_ignore_ascii_case(&key)) {
        Some(h) => h.values.push(field_value),
        None => headers.push(HeaderOption { name: key, values: vec![field_value] }),
    }
    Ok(())
}

/// `-servers` and `-ports` in tandem (reference §4.1): an empty server is skipped with its
/// port, a missing or empty port means 25, extra ports are ignored.
fn server_list(interp: &Interp<'_>, servers: &Obj, ports: Option<&Obj>) -> Result<Vec<Server>, TclError> {
    let hosts = interp.list_elements(servers).map_err(|e| value_error(e.message, "-servers"))?;
    let ports = match ports {
        Some(p) => interp.list_elements(p).map_err(|e| value_error(e.message, "-ports"))?,
        None => Vec::new(),
    };
    let mut list = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let host = host.text();
        if host.is_empty() {
            continue;
        }
        if message::has_line_break_or_nul(&host) || host.contains([' ', '\t']) {
            return Err(value_error(format!("invalid server name \"{host}\""), "-servers"));
        }
        let port = ports.get(i).map(Obj::text).unwrap_or_default();
        list.push(Server { host, port: port_number(&port)? });
    }
    if list.is_empty() {
        return Err(value_error("no server to send to: -servers is empty".into(), "-servers"));
    }
    Ok(list)
}

/// A port number, or one of the SMTP service names.
fn port_number(text: &str) -> Result<u16, TclError> {
    match text {
        "" | "smtp" => return Ok(25),
        "submission" => return Ok(587),
        "submissions" | "smtps" | "urd" => return Ok(465),
        _ => {}
    }
    match text.parse::<u16>() {
        Ok(n) if n > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(value_error(
            format!("bad port \"{text}\": must be a number from 1 to 65535, or smtp, submission or submissions"),
            "-ports",
        )),
    }
}
