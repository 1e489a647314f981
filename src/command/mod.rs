//! The package's commands: `::smtp::sendmessage token ?option value ...?`,
//! `::smtp::mail ?option value ...?`, and for asynchronous sends `::smtp::cancel handle`
//! and `::smtp::wait handle`. Tcl words in, Tcl result out.

mod error;
mod hooks;
mod mail;
mod options;
mod outcome;
mod sends;

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::bridge::Bridge;
use crate::client::{self, Request};
use crate::message::{self, HeaderPlan, Input};
use crate::smtp::{AuthParams, Params, Timeouts};
use crate::spool::{self, Spool};
use crate::tcl::{Interp, Obj, TclError};
use crate::transport::{TlsConfig, TlsOptions};
use error::Error;
use options::Connection;
use sends::Sends;

/// Creates the commands in `interp`. They share the interpreter's registry of sends,
/// which cancels what still runs when the last of them is deleted (renaming is not
/// deleting).
pub fn register(interp: &Interp<'_>) -> Result<(), TclError> {
    let sends = Sends::new(interp);
    let for_send = Rc::clone(&sends);
    interp.create_command(
        "::smtp::sendmessage",
        &["-password"],
        move |interp, args| sendmessage(interp, args, &for_send),
        sends.command_added(),
    )?;
    let for_mail = Rc::clone(&sends);
    interp.create_command(
        "::smtp::mail",
        &["-password"],
        move |interp, args| mail(interp, args, &for_mail),
        sends.command_added(),
    )?;
    let for_cancel = Rc::clone(&sends);
    interp.create_command(
        "::smtp::cancel",
        &[],
        move |interp, args| {
            let id = for_cancel.lookup(&handle_argument(args, "cancel")?)?;
            for_cancel.cancel(interp, id);
            Ok(interp.new_string(""))
        },
        sends.command_added(),
    )?;
    let for_wait = Rc::clone(&sends);
    interp.create_command(
        "::smtp::wait",
        &[],
        move |interp, args| {
            let id = for_wait.lookup(&handle_argument(args, "wait")?)?;
            let delivery = for_wait.wait(interp, id)?;
            Ok(outcome::refusals(interp, &delivery.refused))
        },
        sends.command_added(),
    )
}

/// A fresh Message-ID value, `<pid.seconds.count.random@host>`: unique across the
/// interpreters and threads of this process (the count) and across processes and
/// machines (the pid, the time and 64 random bits).
fn message_id(host: &str) -> Result<String, TclError> {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let count = COUNT.fetch_add(1, Ordering::Relaxed);
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let random = client::random_hex(8).map_err(|e| TclError::new(e, &["SMTP", "INTERNAL", "RANDOM"]))?;
    Ok(format!("<{}.{seconds}.{count}.{random}@{host}>", std::process::id()))
}

/// Why the rendered message cannot be sent.
fn spool_error(e: spool::Error<message::Error>) -> TclError {
    match e {
        spool::Error::Header(e) => outcome::message_error(e),
        spool::Error::Io(e) => {
            TclError::new(format!("cannot read the rendered message: {e}"), &["SMTP", "MIME", "BUILD"])
        }
        spool::Error::HeadTooLarge => {
            TclError::new("the message's header block is larger than 16 MiB", &["SMTP", "MIME", "BUILD"])
        }
        spool::Error::PartHeadTooLarge(part) => {
            TclError::new(format!("the header block of {part} is larger than 1 MiB"), &["SMTP", "MIME", "BUILD"])
        }
        spool::Error::Nul(part) => TclError::new(
            format!(
                "{part} holds a NUL byte in its body, which SMTP cannot carry unencoded: \
                 create it with -encoding base64"
            ),
            &["SMTP", "MIME", "NUL"],
        ),
    }
}

/// The single argument of `::smtp::cancel` and `::smtp::wait`.
fn handle_argument(args: &[Obj], command: &str) -> Result<String, TclError> {
    match args {
        [handle] => Ok(handle.text()),
        _ => Err(TclError::new(format!("wrong # args: should be \"::smtp::{command} handle\""), &["TCL", "WRONGARGS"])),
    }
}

/// `::smtp::sendmessage`. Everything that can be checked is checked before the first
/// connection; with `-command`, it returns a handle as soon as the message is taken from
/// the token, else the send's result.
fn sendmessage(interp: &Interp<'_>, args: &[Obj], sends: &Sends) -> Result<Obj, TclError> {
    let Some((token, words)) = args.split_first() else {
        return Err(TclError::new(
            "wrong # args: should be \"::smtp::sendmessage token ?option value ...?\"",
            &["TCL", "WRONGARGS"],
        ));
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
    let envelope = message::envelope(&input, &mut bridge).map_err(outcome::message_error)?;

    let rendered = bridge.render(token)?;
    for (name, value) in &rendered.fields {
        message::check_message_field(name, value).map_err(outcome::message_error)?;
    }
    let plan =
        HeaderPlan::new(&options.headers, &envelope, &context.date, &message_id(&context.hostname)?, &rendered.fields);
    let message = Spool::new(
        rendered.file,
        |head| message::rewrite(head, &plan),
        |part, header| plan.part_header(&part.to_string(), header),
    )
    .map_err(spool_error)?;
    let envelope = (envelope.sender, envelope.recipients);
    send(interp, sends, options.connection, &context.hostname, envelope, message)
}

/// `::smtp::mail`: the message built from the options (or given whole), then sent as
/// `sendmessage` sends.
fn mail(interp: &Interp<'_>, args: &[Obj], sends: &Sends) -> Result<Obj, TclError> {
    let hostname = interp.eval_global(&[interp.new_string("info"), interp.new_string("hostname")])?.text();
    let date = chrono::Local::now().to_rfc2822();
    let message_id = message_id(&hostname)?;
    let mut boundary = || client::random_hex(12).map(|hex| format!("=_{hex}")).map_err(crate::compose::Error::Random);
    let request = mail::parse(interp, args, &date, &message_id, &mut boundary)?;
    let envelope = (request.sender, request.recipients);
    send(interp, sends, request.connection, &hostname, envelope, request.message)
}

/// Sends `message` from `envelope` (sender, recipients) as `connection` says: returns the
/// refused recipients, or with `-command` a handle at once. `hostname` is the default
/// `-client` (tcllib's: `localhost` when `-servers` is exactly `localhost`).
fn send(
    interp: &Interp<'_>,
    sends: &Sends,
    connection: Connection,
    hostname: &str,
    (sender, recipients): (String, Vec<String>),
    message: Spool,
) -> Result<Obj, TclError> {
    // Unreadable certificate files fail here, before any connection (also when TLS ends
    // up unused: a wrong path is a mistake worth reporting).
    let tls = if connection.usetls || connection.tlsimport || connection.tlsoptions != TlsOptions::default() {
        Some(TlsConfig::shared(&connection.tlsoptions).map_err(|e| connection.tls_error(&e))?)
    } else {
        None
    };
    let client = match connection.client {
        Some(name) => name,
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
            host: String::new(),
            cnonce: String::new(),
        }),
        loopback: false,
        sender,
        recipients,
        at_least_one: connection.atleastone,
        message_size: message.size(),
        eight_bit: message.eight_bit(),
        timeouts,
    };
    let request = Request { servers: connection.servers, params, tls, implicit_tls: connection.tlsimport, message };
    let asynchronous = connection.command.is_some();
    let id = sends.start(request, connection.debug, connection.tlspolicy, connection.command)?;
    if asynchronous {
        return Ok(interp.new_string(&Sends::handle_name(id)));
    }
    let delivery = sends.wait(interp, id)?;
    Ok(outcome::refusals(interp, &delivery.refused))
}
