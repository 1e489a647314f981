//! `::smtp::mail ?option value ...?`: LuaSocket's `mail{from, rcpt, headers, body,
//! server}` for Tcl, with nodemailer's conveniences (`-to -cc -bcc -subject -html
//! -attachments`) and ready-made messages (`-message`, `-messagefile`). The message is
//! built by [`crate::compose`]; no mime token is involved.
//!
//! The recipient list alone decides who gets a copy: `-rcpt`, `-to`, `-cc` and `-bcc`
//! add recipients; `-headers` is never read for the envelope, and no Bcc field is ever
//! written.

use std::convert::Infallible;
use std::fs::File;
use std::path::PathBuf;

use super::error::Error;
use super::options::{self, value_error, Connection};
use crate::compose::{self, Attachment, Content, Mail, Mailbox};
use crate::spool::{self, Spool};
use crate::tcl::{Interp, Obj, TclError};

/// What `smtp::mail` sends: a message to build, or one given whole.
enum Source {
    Build(Mail),
    /// `-message`: text sent as it is (UTF-8).
    Text(String),
    /// `-messagefile`: a file's bytes sent as they are.
    File(PathBuf),
}

/// The parsed words of one `smtp::mail` call.
pub struct Request {
    pub connection: Connection,
    pub sender: String,
    pub recipients: Vec<String>,
    pub message: Spool,
}

/// Fields the command writes itself, and what to use instead of setting them.
const RESERVED: &[(&str, &str)] = &[
    ("content-type", "use -html or -attachments"),
    ("content-transfer-encoding", "it is chosen for the content"),
    ("mime-version", "it is always 1.0"),
];

/// Parses the words of `smtp::mail` and builds the message: every check is done here,
/// before any connection.
pub fn parse(
    interp: &Interp<'_>,
    words: &[Obj],
    date: &str,
    message_id: &str,
    boundary: &mut dyn FnMut() -> Result<String, compose::Error>,
) -> Result<Request, TclError> {
    options::check_pairs(interp, words)?;
    let mut connection = options::ConnectionWords::default();
    let mut mail = Mail::default();
    let mut rcpt: Vec<String> = Vec::new();
    let mut bcc: Vec<Mailbox> = Vec::new();
    let mut ready: Option<(&'static str, Source)> = None;
    // Message options given, for -message's conflicts.
    let mut composing: Vec<String> = Vec::new();
    for pair in words.chunks(2) {
        let [name, value] = pair else { continue };
        let name = name.text();
        match name.as_str() {
            "-from" => mail.from = Some(mailbox(&value.text(), "-from")?),
            "-rcpt" => rcpt = mailboxes(interp, value, "-rcpt")?.into_iter().map(|m| m.address).collect(),
            "-to" | "-cc" | "-bcc" | "-subject" | "-headers" | "-body" | "-html" | "-attachments" => {
                composing.push(name.clone());
                match name.as_str() {
                    "-to" => mail.to = mailboxes(interp, value, "-to")?,
                    "-cc" => mail.cc = mailboxes(interp, value, "-cc")?,
                    "-bcc" => bcc = mailboxes(interp, value, "-bcc")?,
                    "-subject" => mail.subject = Some(value.text()),
                    "-headers" => mail.headers = headers(interp, value)?,
                    "-body" => mail.text = Some(value.text()),
                    "-html" => mail.html = Some(value.text()),
                    _ => mail.attachments = attachments(interp, value)?,
                }
            }
            "-message" => ready = Some(("-message", Source::Text(value.text()))),
            "-messagefile" => ready = Some(("-messagefile", Source::File(PathBuf::from(value.text())))),
            // LuaSocket's `server` (and a port to go with it): one server.
            "-server" if connection.take_as(interp, "-server", "-servers", value)? => {}
            "-port" if connection.take_as(interp, "-port", "-ports", value)? => {}
            _ if connection.take(interp, &name, value)? => {}
            _ => return Err(Error::UnknownOption(name).into()),
        }
    }
    let Some(from) = mail.from.clone() else {
        return Err(Error::MissingOption {
            option: "-from",
            why: "the sender's address (for MAIL FROM and the From field)",
        }
        .into());
    };
    check_headers(&mail)?;

    // The envelope: every recipient once, in the order given (-rcpt, -to, -cc, -bcc).
    let mut recipients: Vec<String> = Vec::new();
    let all = rcpt.into_iter().chain(mail.to.iter().chain(&mail.cc).chain(&bcc).map(|m| m.address.clone()));
    for address in all {
        if !recipients.iter().any(|r| r.eq_ignore_ascii_case(&address)) {
            recipients.push(address);
        }
    }
    if recipients.is_empty() {
        let who = "the union of -rcpt, -to, -cc and -bcc".to_string();
        return Err(Error::Message(crate::message::Error::NoRecipients { who }).into());
    }

    let source = match ready {
        Some((option, source)) => {
            if let Some(other) = composing.first() {
                return Err(Error::Conflict {
                    option: other.clone(),
                    message: format!(
                        "{other} cannot be combined with {option}: a ready-made message is sent as it is (only \
                         -from, -rcpt and connection options go with it)"
                    ),
                }
                .into());
            }
            source
        }
        None => Source::Build(mail),
    };
    let message = match source {
        Source::Build(mail) => {
            let pieces = compose::build(mail, compose::Stamp { date, message_id, boundary }).map_err(Error::from)?;
            Spool::from_composed(pieces)
        }
        Source::Text(text) => {
            let file = spool::unlinked_file(text.as_bytes())
                .map_err(|e| Error::Render(format!("cannot store the message in a temporary file: {e}")))?;
            ready_made(file, "-message")?
        }
        Source::File(path) => {
            let file = File::open(&path).map_err(|e| Error::Value {
                option: "-messagefile".into(),
                message: format!("-messagefile: cannot read {}: {e}", path.display()),
            })?;
            ready_made(file, "-messagefile")?
        }
    };
    let connection = connection.finish(interp)?;
    Ok(Request { connection, sender: from.address, recipients, message })
}

/// A ready-made message (given by `option`) as it is, its parts walked like a token's
/// (for a NUL byte, and for the conversion to 7 bits a server without 8BITMIME needs).
fn ready_made(file: File, option: &str) -> Result<Spool, Error> {
    let value_error = |message: String| Error::Value { option: option.into(), message: format!("{option}: {message}") };
    Spool::new(file, |head| Ok::<_, Infallible>(head.to_vec()), |_, _, _| Ok(None)).map_err(|e| match e {
        spool::Error::Io(e) => value_error(format!("cannot read the message: {e}")),
        spool::Error::HeadTooLarge => value_error("the message's header block is larger than 16 MiB".into()),
        spool::Error::PartHeadTooLarge(part) => value_error(format!("the header block of {part} is larger than 1 MiB")),
        spool::Error::Nul(part) => value_error(format!(
            "{part} holds a NUL byte in its body, which SMTP cannot carry unencoded: encode that part (base64)"
        )),
        spool::Error::Header(never) => match never {},
    })
}

fn mailbox(text: &str, option: &str) -> Result<Mailbox, Error> {
    Ok(Mailbox::parse(text, option)?)
}

/// A Tcl list of addresses.
fn mailboxes(interp: &Interp<'_>, value: &Obj, option: &str) -> Result<Vec<Mailbox>, TclError> {
    let words = interp.list_elements(value).map_err(|e| value_error(e.message, option))?;
    Ok(words.iter().map(|w| mailbox(&w.text(), option)).collect::<Result<Vec<_>, _>>()?)
}

/// `-headers`: a dict of field names to values, names checked, each given once.
fn headers(interp: &Interp<'_>, value: &Obj) -> Result<Vec<(String, String)>, TclError> {
    let words = interp.list_elements(value).map_err(|e| value_error(e.message, "-headers"))?;
    if words.len() % 2 != 0 {
        let message = format!("-headers must be a dict of names and values, not {}", value.text());
        return Err(value_error(message, "-headers"));
    }
    let mut fields: Vec<(String, String)> = Vec::new();
    for pair in words.chunks(2) {
        let [name, value] = pair else { continue };
        let (name, value) = (name.text(), value.text());
        crate::message::check_field_name(&name).map_err(Error::from)?;
        if let Some((first, _)) = fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            return Err(Error::DuplicateHeader(format!(
                "-headers has the {first} field twice (names are compared without case): give it once"
            ))
            .into());
        }
        fields.push((name, value));
    }
    Ok(fields)
}

/// The rules between `-headers` and the other options.
fn check_headers(mail: &Mail) -> Result<(), Error> {
    let given = |field: &str| mail.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(field));
    for (field, option, set) in [
        ("To", "-to", !mail.to.is_empty()),
        ("Cc", "-cc", !mail.cc.is_empty()),
        ("Subject", "-subject", mail.subject.is_some()),
    ] {
        if set && given(field).is_some() {
            return Err(Error::DuplicateHeader(format!(
                "{field} is given both as {option} and in -headers: give it once"
            )));
        }
    }
    if given("Bcc").is_some_and(|(_, v)| !v.trim().is_empty()) {
        return Err(Error::BccHeader);
    }
    for (name, instead) in RESERVED {
        if let Some((given_name, _)) = given(name) {
            return Err(Error::ReservedHeader { name: given_name.clone(), instead });
        }
    }
    Ok(())
}

/// `-attachments`: each element a file path, or a dict with `path` or `data` and
/// optionally `name`, `type`, `inline`, `cid`.
fn attachments(interp: &Interp<'_>, value: &Obj) -> Result<Vec<Attachment>, TclError> {
    let items = interp.list_elements(value).map_err(|e| value_error(e.message, "-attachments"))?;
    items.iter().map(|item| attachment(interp, item)).collect()
}

const ATTACHMENT_KEYS: &[&str] = &["path", "data", "name", "type", "inline", "cid"];

fn attachment(interp: &Interp<'_>, item: &Obj) -> Result<Attachment, TclError> {
    let words = interp.list_elements(item).unwrap_or_default();
    let keys: Vec<String> = words.iter().step_by(2).map(Obj::text).collect();
    let is_dict = words.len() % 2 == 0
        && keys.iter().any(|k| k == "path" || k == "data")
        && keys.iter().all(|k| ATTACHMENT_KEYS.contains(&k.as_str()));
    if !is_dict {
        return Ok(Attachment {
            content: Content::Path(PathBuf::from(item.text())),
            name: None,
            media_type: None,
            inline: false,
            cid: None,
        });
    }
    let get = |key: &str| words.chunks(2).find(|p| p.first().is_some_and(|k| k.text() == key)).and_then(|p| p.get(1));
    let content = match (get("path"), get("data")) {
        (Some(_), Some(_)) => {
            return Err(value_error("an attachment has either path or data, not both".into(), "-attachments"))
        }
        (Some(path), None) => Content::Path(PathBuf::from(path.text())),
        (None, data) => Content::Data(data.map(Obj::bytes).unwrap_or_default()),
    };
    let inline = match get("inline") {
        Some(v) => options::boolean(v).map_err(|e| value_error(format!("inline: {}", e.message), "-attachments"))?,
        None => false,
    };
    Ok(Attachment {
        content,
        name: get("name").map(Obj::text),
        media_type: get("type").map(Obj::text),
        inline,
        cid: get("cid").map(Obj::text),
    })
}
