//! `::smtp::sendmessage token ?option value ...?`: Tcl words in, Tcl result out.

mod background;
mod hooks;
mod options;
mod outcome;

use std::time::Duration;

use crate::bridge::Bridge;
use crate::client::Request;
use crate::message::{self, HeaderPlan, Input};
use crate::smtp::{self, AuthParams, Params, Timeouts};
use crate::tcl::{Interp, Obj, TclError};
use crate::transport::{TlsConfig, TlsOptions};

/// The command. Everything that can be checked is checked before the first connection.
pub fn sendmessage(interp: &Interp<'_>, args: &[Obj]) -> Result<Obj, TclError> {
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
        let config = TlsConfig::new(&options.tlsoptions)
            .map_err(|e| TclError::new(format!("-tlsoptions: {e}"), &["SMTP", "OPTION", "VALUE", "-tlsoptions"]))?;
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
        message_size: smtp::message_size(&message),
        eight_bit: smtp::is_8bit(&message),
        timeouts,
    };
    let request = Request { servers: options.servers, params, tls, implicit_tls: options.tlsimport, message };
    let delivery = background::send(interp, request, options.debug, options.tlspolicy)?;
    Ok(outcome::refusals(interp, &delivery.refused))
}
