//! The package's commands: `::smtp::sendmessage token ?option value ...?`, and for
//! asynchronous sends `::smtp::cancel handle` and `::smtp::wait handle`. Tcl words in,
//! Tcl result out.

mod hooks;
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
    // Unreadable certificate files fail here, before any connection (also when TLS ends
    // up unused: a wrong path is a mistake worth reporting).
    let tls = if options.usetls || options.tlsimport || options.tlsoptions != TlsOptions::default() {
        let config = TlsConfig::shared(&options.tlsoptions).map_err(|e| options.tls_error(&e))?;
        Some(config)
    } else {
        None
    };
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

    let client = match options.client {
        Some(name) => name,
        None if options.servers_is_localhost => "localhost".into(),
        None => context.hostname,
    };
    let mut timeouts = Timeouts::standard(Duration::from_secs(options.maxsecs));
    if let Some(cap) = options.timeout {
        timeouts = timeouts.capped(Duration::from_secs(cap));
    }
    let params = Params {
        client,
        queue: options.queue,
        starttls: options.usetls && !options.tlsimport,
        // Host and nonce are per connection: the driver fills them in.
        auth: (!options.username.is_empty()).then(|| AuthParams {
            username: options.username.clone(),
            password: options.password.clone(),
            host: String::new(),
            cnonce: String::new(),
        }),
        loopback: false,
        sender: envelope.sender,
        recipients: envelope.recipients,
        at_least_one: options.atleastone,
        message_size: message.size(),
        eight_bit: message.eight_bit(),
        timeouts,
    };
    let request = Request { servers: options.servers, params, tls, implicit_tls: options.tlsimport, message };
    let asynchronous = options.command.is_some();
    let id = sends.start(request, options.debug, options.tlspolicy, options.command)?;
    if asynchronous {
        return Ok(interp.new_string(&Sends::handle_name(id)));
    }
    let delivery = sends.wait(interp, id)?;
    Ok(outcome::refusals(interp, &delivery.refused))
}
