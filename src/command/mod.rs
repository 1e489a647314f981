//! The package's commands: `::smtp::sendmessage token ?option value ...?`,
//! `::smtp::mail ?option value ...?`, for asynchronous sends `::smtp::cancel handle`
//! and `::smtp::wait handle`, and for sessions `::smtp::open`, `::smtp::info` and
//! `::smtp::close`. Tcl words in, Tcl result out.

mod asked;
mod error;
mod mail;
mod options;
mod results;
mod sends;
mod sessions;

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::bridge::Bridge;
use crate::client::{Message, Setup};
use crate::message::{self, HeaderPlan, Input};
use crate::smtp::{AuthParams, Envelope, Params, Timeouts, Token};
use crate::spool::{self, Spool};
use crate::tcl::{Interp, Obj, TclError};
use crate::transport::{TlsOptions, TlsSetup};
use error::Error;
use options::Connection;
use sends::Sends;

/// Creates the commands in `interp`. They share the interpreter's registry of sends,
/// which cancels what still runs when the last of them is deleted (renaming is not
/// deleting).
pub fn register(interp: &Interp<'_>) -> Result<(), TclError> {
    let sends = Sends::new(interp);
    let for_send = Rc::clone(&sends);
    create(interp, "::smtp::sendmessage", &sends, move |interp, args| sendmessage(interp, args, &for_send))?;
    let for_mail = Rc::clone(&sends);
    create(interp, "::smtp::mail", &sends, move |interp, args| mail(interp, args, &for_mail))?;
    let for_cancel = Rc::clone(&sends);
    create(interp, "::smtp::cancel", &sends, move |interp, args| {
        let id = for_cancel.lookup(&handle_argument(args, "::smtp::cancel handle")?)?;
        for_cancel.cancel(interp, id);
        Ok(interp.new_string(""))
    })?;
    let for_wait = Rc::clone(&sends);
    create(interp, "::smtp::wait", &sends, move |interp, args| {
        let id = for_wait.lookup(&handle_argument(args, "::smtp::wait handle")?)?;
        let delivery = for_wait.wait_send(interp, id)?;
        Ok(results::refusals(interp, &delivery.refused))
    })?;
    let for_open = Rc::clone(&sends);
    create(interp, "::smtp::open", &sends, move |interp, args| {
        for_open.sessions.open(interp, &for_open, args, &hostname(interp)?)
    })?;
    let for_info = Rc::clone(&sends);
    create(interp, "::smtp::info", &sends, move |interp, args| {
        for_info.sessions.info(interp, &handle_argument(args, "::smtp::info session")?)
    })?;
    let for_close = Rc::clone(&sends);
    create(interp, "::smtp::close", &sends, move |interp, args| {
        let (handle, cancel) = match args {
            [handle] => (handle, false),
            [handle, option, value] if option.text() == "-cancel" => (handle, options::boolean(value)?),
            [_, option, _] => return Err(Error::UnknownOption(option.text()).into()),
            _ => return Err(Error::WrongArgs("::smtp::close session ?-cancel boolean?").into()),
        };
        for_close.sessions.close(interp, &for_close, &handle.text(), cancel)?;
        Ok(interp.new_string(""))
    })
}

/// `info hostname`: the default `-client` and the Message-ID's domain.
fn hostname(interp: &Interp<'_>) -> Result<String, TclError> {
    Ok(interp.eval_global(&[interp.new_string("info"), interp.new_string("hostname")])?.text())
}

/// Options whose values never show in `errorInfo`.
const SECRET_OPTIONS: &[&str] = &["-password", "-oauthtoken"];

/// Creates command `name` of the registry `sends`, implemented by `f` (which gets the
/// words after the name). Its errors carry an `errorInfo` of their own: the message and
/// the invocation, with the value of every [`SECRET_OPTIONS`] word replaced by `***`
/// (Tcl's own would show the command's source text, a password written in it included).
fn create(
    interp: &Interp<'_>,
    name: &str,
    sends: &Rc<Sends>,
    f: impl Fn(&Interp<'_>, &[Obj]) -> Result<Obj, TclError> + 'static,
) -> Result<(), TclError> {
    let body = move |interp: &Interp<'_>, words: &[Obj]| {
        f(interp, words.get(1..).unwrap_or_default()).map_err(|e| with_errorinfo(interp, e, words))
    };
    interp.create_command(name, body, sends.command_added(), panic_error)
}

/// `err` with the `errorInfo` that [`create`] describes for the invocation `words`.
fn with_errorinfo(interp: &Interp<'_>, err: TclError, words: &[Obj]) -> TclError {
    let mut shown = Vec::with_capacity(words.len());
    let mut hide_next = false;
    for word in words {
        shown.push(if hide_next { interp.new_string("***") } else { word.clone() });
        hide_next = SECRET_OPTIONS.contains(&word.text().as_str());
    }
    let mut command = interp.new_list(&shown).text();
    if command.chars().count() > 150 {
        command = command.chars().take(150).collect::<String>() + "...";
    }
    let errorinfo = format!("{}\n    while executing\n\"{command}\"", err.message);
    TclError { errorinfo: Some(errorinfo), ..err }
}

/// The error of a command that panicked (a bug).
pub fn panic_error(what: String) -> TclError {
    Error::Internal { what: "PANIC", why: format!("internal error in smtp (please report): {what}") }.into()
}

/// A fresh Message-ID value, `<pid.seconds.count.random@host>`: unique across the
/// interpreters and threads of this process (the count) and across processes and
/// machines (the pid, the time and 64 random bits).
fn message_id(host: &str) -> Result<String, TclError> {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let count = COUNT.fetch_add(1, Ordering::Relaxed);
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let random = crate::random::hex(8).map_err(|why| Error::Internal { what: "RANDOM", why })?;
    Ok(format!("<{}.{seconds}.{count}.{random}@{host}>", std::process::id()))
}

/// Why the rendered message cannot be sent.
fn spool_error(e: spool::Error<message::Error>) -> Error {
    match e {
        spool::Error::Header(e) => Error::Message(e),
        spool::Error::Io(e) => Error::Render(format!("cannot read the rendered message: {e}")),
        spool::Error::HeadTooLarge => Error::Render("the message's header block is larger than 16 MiB".into()),
        spool::Error::PartHeadTooLarge(part) => {
            Error::Render(format!("the header block of {part} is larger than 1 MiB"))
        }
        spool::Error::Nul(part) => Error::Nul(part.to_string()),
    }
}

/// The single argument of `::smtp::cancel`, `::smtp::wait` and `::smtp::info`.
fn handle_argument(args: &[Obj], usage: &'static str) -> Result<String, Error> {
    match args {
        [handle] => Ok(handle.text()),
        _ => Err(Error::WrongArgs(usage)),
    }
}

/// `::smtp::sendmessage`. Everything that can be checked is checked before the first
/// connection; with `-command`, it returns a handle as soon as the message is taken from
/// the token, else the send's result.
fn sendmessage(interp: &Interp<'_>, args: &[Obj], sends: &Sends) -> Result<Obj, TclError> {
    let Some((token, words)) = args.split_first() else {
        return Err(Error::WrongArgs("::smtp::sendmessage token ?option value ...?").into());
    };
    let options = options::parse(interp, words)?;
    let mut bridge = Bridge::new(interp);
    let context = bridge.context()?;
    let input = Input {
        headers: &options.headers,
        originator: options.originator.as_deref(),
        recipients: &options.recipients,
        user: &context.user,
    };
    let envelope = message::envelope(&input, &mut bridge).map_err(Error::Message)?;

    let rendered = bridge.render(token)?;
    for (name, value) in &rendered.fields {
        message::check_message_field(name, value).map_err(Error::Message)?;
    }
    let mut plan =
        HeaderPlan::new(&options.headers, &envelope, &context.date, &message_id(&context.hostname)?, &rendered.fields);
    // With ASCII local parts the message can go without SMTPUTF8 (domains as A-labels),
    // and then its header values must be ASCII (RFC 6532): the token's UTF-8 ones, in
    // its own header and its parts', become encoded words (RFC 2047, RFC 2231).
    let ascii_local_part = |a: &String| a.rsplit_once('@').map_or(a.as_str(), |(local, _)| local).is_ascii();
    if ascii_local_part(&envelope.sender) && envelope.recipients.iter().all(ascii_local_part) {
        plan = plan.encoding_with(|name, value| crate::compose::field(name, value).ok());
    }
    let message = Spool::from_mime(
        rendered.file,
        |head| message::rewrite(head, &plan),
        |part, header, forwarded| match forwarded {
            false => plan.part_header(&part.to_string(), header),
            true => Ok(message::forwarded_header(header)),
        },
    )
    .map_err(spool_error)?;
    let envelope = (envelope.sender, envelope.recipients);
    send(interp, sends, options.connection, &context.hostname, envelope, message)
}

/// `::smtp::mail`: the message built from the options (or given whole), then sent as
/// `sendmessage` sends.
fn mail(interp: &Interp<'_>, args: &[Obj], sends: &Sends) -> Result<Obj, TclError> {
    let hostname = hostname(interp)?;
    let date = chrono::Local::now().to_rfc2822();
    let message_id = message_id(&hostname)?;
    let mut boundary = || crate::random::hex(12).map(|hex| format!("=_{hex}")).map_err(crate::compose::Error::Random);
    let request = mail::parse(interp, args, &date, &message_id, &mut boundary)?;
    let envelope = (request.sender, request.recipients);
    send(interp, sends, request.connection, &hostname, envelope, request.message)
}

/// Sends `message` from `envelope` (sender, recipients) as `connection` says: returns the
/// refused recipients, or with `-command` a handle at once. `hostname` is the default
/// `-client`.
fn send(
    interp: &Interp<'_>,
    sends: &Sends,
    connection: Connection,
    hostname: &str,
    (sender, recipients): (String, Vec<String>),
    spool: Spool,
) -> Result<Obj, TclError> {
    let envelope = Envelope {
        sender,
        recipients,
        at_least_one: connection.atleastone,
        message_size: spool.size(),
        eight_bit: spool.eight_bit(),
        seven_bit: spool.seven_bit(),
        dsn: connection.dsn.clone(),
    };
    let message = Message { envelope, spool };
    if let Some(session) = &connection.session {
        return sends.sessions.send(interp, sends, session, message, (connection.command, connection.progress));
    }
    let setup = setup(&connection, hostname)?;
    let asynchronous = connection.command.is_some();
    let id = sends.start(setup, message, connection.debug, connection.asked(), connection.command)?;
    if asynchronous {
        return Ok(interp.new_string(&Sends::handle_name(id)));
    }
    let delivery = sends.wait_send(interp, id)?;
    Ok(results::refusals(interp, &delivery.refused))
}

/// Where and how `connection` connects. `hostname` is the default `-client` (tcllib's:
/// `localhost` when `-servers` is exactly `localhost`).
fn setup(connection: &Connection, hostname: &str) -> Result<Setup, TclError> {
    // Unreadable certificate files fail here, before any connection (also when TLS ends
    // up unused: a wrong path is a mistake worth reporting).
    let tls = if connection.usetls || connection.tlsimport || connection.tlsoptions != TlsOptions::default() {
        Some(TlsSetup::new(&connection.tlsoptions).map_err(|e| connection.tls_error(e))?)
    } else {
        None
    };
    let client = match &connection.client {
        Some(name) => name.clone(),
        None if connection.servers_is_localhost => "localhost".into(),
        None => hostname.to_string(),
    };
    let mut timeouts = Timeouts::standard(Duration::from_secs(connection.maxsecs));
    if let Some(cap) = connection.timeout {
        timeouts = timeouts.capped(Duration::from_secs(cap));
    }
    let params = Params {
        client,
        queue: connection.queue,
        starttls: connection.usetls && !connection.tlsimport,
        // Host and nonce are per connection: the driver fills them in.
        auth: (!connection.username.is_empty()).then(|| AuthParams {
            username: connection.username.clone(),
            password: connection.password.clone(),
            token: match (&connection.oauthtoken, &connection.oauthcommand) {
                (Some(token), _) => Some(Token::Given(token.clone())),
                (None, Some(_)) => Some(Token::Ask),
                (None, None) => None,
            },
            mechanisms: connection.authmechanisms.clone(),
            host: String::new(),
            cnonce: String::new(),
        }),
        loopback: false,
        timeouts,
    };
    Ok(Setup { servers: connection.servers.clone(), params, tls, implicit_tls: connection.tlsimport })
}
