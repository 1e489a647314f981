//! `::smtp::sendmessage token ?option value ...?`: Tcl words in, Tcl result out.

mod options;
mod outcome;

use std::io::Write;
use std::time::Duration;

use crate::bridge::Bridge;
use crate::client::{self, Request};
use crate::message::{self, HeaderPlan, Input};
use crate::smtp::{self, Params, Timeouts};
use crate::tcl::{Interp, Obj, TclError};

/// The command. Everything that can be checked is checked before the first connection.
pub fn sendmessage(interp: &Interp<'_>, args: &[Obj]) -> Result<Obj, TclError> {
    let Some((token, words)) = args.split_first() else {
        return Err(TclError::new(
            "wrong # args: should be \"::smtp::sendmessage token ?option value ...?\"",
            &["TCL", "WRONGARGS"],
        ));
    };
    let options = options::parse(interp, words)?;
    if options.tlsimport {
        return Err(TclError::new(
            "-tlsimport: implicit TLS is not available in this build of smtp yet",
            &["SMTP", "TLS", "UNSUPPORTED"],
        ));
    }
    let bridge = Bridge::new(interp);
    let context = bridge.context()?;
    let input = Input {
        headers: &options.headers,
        originator: options.originator.as_deref(),
        recipients: &options.recipients,
        user: &context.user,
    };
    let envelope = message::envelope(&input, &mut Bridge::new(interp)).map_err(outcome::message_error)?;

    let rendered = bridge.render(token)?;
    for (name, value) in &rendered.fields {
        message::check_message_field(name, value).map_err(outcome::message_error)?;
    }
    let plan = HeaderPlan::new(&options.headers, &envelope, &context.date, &context.message_id);
    let message = message::rewrite(&rendered.bytes, &plan).map_err(outcome::message_error)?;

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
        sender: envelope.sender,
        recipients: envelope.recipients,
        at_least_one: options.atleastone,
        message_size: smtp::message_size(&message),
        timeouts,
    };
    let request = Request { servers: options.servers, params, message };
    let debug = options.debug;
    let mut trace = |line: &str| {
        if debug {
            // Not eprintln!, which panics when stderr is closed (a daemon); a lost trace
            // line must not fail the send.
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    };
    let delivery = client::send(&request, &mut trace).map_err(outcome::send_error)?;
    Ok(outcome::refusals(interp, &delivery.refused))
}
