//! The message builder behind `smtp::mail`: a [`Mail`] (addresses, subject, header
//! fields, text, HTML, attachments) becomes the pieces ([`Composed`]) of a [`Spool`]: headers
//! written here (RFC 5322, RFC 2047 encoded words, RFC 2231 file names), the text as 7bit
//! or quoted-printable, attachments as base64, streamed from their files when they are
//! files. No Tcl: the command layer turns options into a `Mail`.
//!
//! The shape, as mail clients make it: the text alone is the message; with HTML, a
//! multipart/alternative of the two; inline attachments go with the HTML in a
//! multipart/related; other attachments make a multipart/mixed around it all.

mod body;
mod error;
mod header;

use std::fs::File;
use std::path::PathBuf;

pub use body::{base64_lines, base64_size, Base64Text, QuotedPrintable, BASE64_LINE_INPUT};
pub use error::Error;
pub use header::{field, Mailbox};

use crate::spool::Composed;

/// What to send.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    /// The From field (the envelope sender is the command layer's business).
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub subject: Option<String>,
    /// Further header fields, as given (names already checked), in order.
    pub headers: Vec<(String, String)>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
}

/// One attachment.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub content: Content,
    /// The file name shown to the recipient (default: the file's own name).
    pub name: Option<String>,
    /// The media type (default: from the name's extension).
    pub media_type: Option<String>,
    /// Shown in the text (`Content-Disposition: inline`), and with HTML kept next to it.
    pub inline: bool,
    /// The Content-ID the HTML refers to as `cid:…`.
    pub cid: Option<String>,
}

/// Where an attachment's bytes come from.
#[derive(Debug, Clone)]
pub enum Content {
    /// A file, read (and encoded) a chunk at a time as the message is sent.
    Path(PathBuf),
    Data(Vec<u8>),
}

/// What a message needs from outside: the Date and Message-ID values, and boundaries.
pub struct Stamp<'a> {
    pub date: &'a str,
    pub message_id: &'a str,
    /// Makes a fresh multipart boundary each call.
    pub boundary: &'a mut dyn FnMut() -> Result<String, Error>,
}

/// A MIME entity being built: its own header fields and its body.
enum Entity {
    Leaf { fields: Vec<u8>, body: Body },
    Multipart { subtype: &'static str, parts: Vec<Entity> },
}

enum Body {
    Bytes(Vec<u8>),
    /// A file's first `len` bytes, as base64.
    File {
        file: File,
        len: u64,
    },
}

/// Builds the message: its pieces, ready for [`crate::spool::Spool::from_composed`].
pub fn build(mail: Mail, stamp: Stamp<'_>) -> Result<Vec<Composed>, Error> {
    let mut fields = Vec::new();
    let has = |name: &str| mail.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if !has("Date") {
        fields.extend(header::raw("Date", stamp.date)?);
    }
    if let Some(from) = mail.from.as_ref().filter(|_| !has("From")) {
        fields.extend(header::addresses("From", std::slice::from_ref(from))?);
    }
    if let Some(subject) = &mail.subject {
        fields.extend(header::unstructured("Subject", subject)?);
    }
    if !mail.to.is_empty() {
        fields.extend(header::addresses("To", &mail.to)?);
    }
    if !mail.cc.is_empty() {
        fields.extend(header::addresses("Cc", &mail.cc)?);
    }
    if !has("Message-ID") {
        fields.extend(header::raw("Message-ID", stamp.message_id)?);
    }
    for (name, value) in &mail.headers {
        fields.extend(header::field(name, value)?);
    }
    fields.extend(header::raw("MIME-Version", "1.0")?);

    let entity = structure(mail)?;
    let mut out = Emitter { pieces: Vec::new(), pending: fields };
    out.entity(entity, stamp.boundary)?;
    Ok(out.finish())
}

/// The entity tree for `mail`'s text, HTML and attachments.
fn structure(mail: Mail) -> Result<Entity, Error> {
    let text = mail.text.map(|t| text_entity("plain", &t));
    let (inline, attached): (Vec<Attachment>, Vec<Attachment>) =
        mail.attachments.into_iter().partition(|a| a.inline && mail.html.is_some());
    let html = match mail.html {
        Some(html) if inline.is_empty() => Some(text_entity("html", &html)?),
        Some(html) => {
            let mut parts = vec![text_entity("html", &html)?];
            for a in inline {
                parts.push(attachment_entity(a)?);
            }
            Some(Entity::Multipart { subtype: "related", parts })
        }
        None => None,
    };
    let main = match (text.transpose()?, html) {
        (Some(text), Some(html)) => Entity::Multipart { subtype: "alternative", parts: vec![text, html] },
        (Some(only), None) | (None, Some(only)) => only,
        (None, None) => text_entity("plain", "")?,
    };
    if attached.is_empty() {
        return Ok(main);
    }
    let mut parts = vec![main];
    for a in attached {
        parts.push(attachment_entity(a)?);
    }
    Ok(Entity::Multipart { subtype: "mixed", parts })
}

fn text_entity(subtype: &str, text: &str) -> Result<Entity, Error> {
    let encoded = body::text(text);
    let mut fields = header::raw("Content-Type", &format!("text/{subtype}; charset=utf-8"))?;
    fields.extend(header::raw("Content-Transfer-Encoding", encoded.encoding)?);
    Ok(Entity::Leaf { fields, body: Body::Bytes(encoded.bytes) })
}

fn attachment_entity(a: Attachment) -> Result<Entity, Error> {
    let (body, own_name) = match a.content {
        Content::Data(data) => {
            let mut bytes = Vec::with_capacity(body::base64_size(data.len() as u64) as usize);
            body::base64_lines(&data, &mut bytes);
            (Body::Bytes(bytes), None)
        }
        Content::Path(path) => {
            let opened = File::open(&path).and_then(|file| file.metadata().map(|m| (file, m)));
            let (file, metadata) = opened.map_err(|e| Error::File { path: path.clone(), why: e.to_string() })?;
            if !metadata.is_file() {
                return Err(Error::File { path, why: "not a regular file".into() });
            }
            let own = path.file_name().map(|n| n.to_string_lossy().into_owned());
            (Body::File { file, len: metadata.len() }, own)
        }
    };
    let name = a.name.or(own_name);
    let media_type = match (&a.media_type, &name) {
        (Some(t), _) => t.clone(),
        (None, Some(name)) => body::media_type(name).to_string(),
        (None, None) => "application/octet-stream".to_string(),
    };
    header::check_text("Content-Type", &media_type)?;
    let valid_type = media_type.split_once('/').is_some_and(|(t, s)| {
        let token =
            |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b));
        token(t) && token(s)
    });
    if !valid_type {
        return Err(Error::MediaType(media_type));
    }
    let disposition = if a.inline { "inline" } else { "attachment" };
    let (mut type_parameters, mut disposition_parameters) = (Vec::new(), Vec::new());
    if let Some(name) = &name {
        header::check_text("filename", name)?;
        type_parameters = header::parameter("name", name);
        disposition_parameters = header::parameter("filename", name);
    }
    let mut fields = header::parameters("Content-Type", &media_type, &type_parameters)?;
    fields.extend(header::parameters("Content-Disposition", disposition, &disposition_parameters)?);
    fields.extend(header::raw("Content-Transfer-Encoding", "base64")?);
    if let Some(cid) = &a.cid {
        header::check_text("Content-ID", cid)?;
        fields.extend(header::raw("Content-ID", &format!("<{}>", cid.trim_start_matches('<').trim_end_matches('>')))?);
    }
    Ok(Entity::Leaf { fields, body })
}

/// Writes entities out as pieces.
struct Emitter {
    pieces: Vec<Composed>,
    /// Bytes not yet pushed as a segment.
    pending: Vec<u8>,
}

impl Emitter {
    /// Writes `entity`'s header fields (after what is pending), the empty line, and its
    /// body.
    fn entity(&mut self, entity: Entity, boundary: &mut dyn FnMut() -> Result<String, Error>) -> Result<(), Error> {
        match entity {
            Entity::Leaf { fields, body } => {
                self.pending.extend(fields);
                self.pending.extend_from_slice(b"\r\n");
                match body {
                    Body::Bytes(bytes) => self.pending.extend(bytes),
                    Body::File { file, len } => {
                        self.pieces.push(Composed::Bytes(std::mem::take(&mut self.pending)));
                        self.pieces.push(Composed::Base64 { file, len });
                    }
                }
            }
            Entity::Multipart { subtype, parts } => {
                let b = boundary()?;
                self.pending.extend(header::raw("Content-Type", &format!("multipart/{subtype}; boundary=\"{b}\""))?);
                self.pending.extend_from_slice(b"\r\n");
                for part in parts {
                    // The CRLF before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
                    self.pending.extend_from_slice(format!("\r\n--{b}\r\n").as_bytes());
                    self.entity(part, boundary)?;
                }
                self.pending.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Vec<Composed> {
        if !self.pending.is_empty() {
            self.pieces.push(Composed::Bytes(self.pending));
        }
        self.pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::Spool;

    fn render(mail: Mail) -> String {
        let mut n = 0;
        let mut boundary = || {
            n += 1;
            Ok(format!("b{n}"))
        };
        let stamp = Stamp { date: "Thu, 03 Dec 2026 08:00:00 +0000", message_id: "<1@x>", boundary: &mut boundary };
        let spool = Spool::from_composed(build(mail, stamp).unwrap());
        let out = crate::spool::tests::collect(&spool);
        assert_eq!(spool.size(), crate::smtp::message_size(&out));
        String::from_utf8(out).unwrap()
    }

    fn mailbox(s: &str) -> Mailbox {
        Mailbox::parse(s, "-to").unwrap()
    }

    #[test]
    fn a_text_alone_is_the_message() {
        let out = render(Mail {
            from: Some(mailbox("me@x.test")),
            to: vec![mailbox("Ann Example <ann@y.test>"), mailbox("\"Doe, John\" <j@y.test>")],
            subject: Some("Hi".into()),
            text: Some("Hello\n".into()),
            ..Mail::default()
        });
        assert_eq!(
            out,
            "Date: Thu, 03 Dec 2026 08:00:00 +0000\r\nFrom: me@x.test\r\nSubject: Hi\r\n\
             To: Ann Example <ann@y.test>, \"Doe, John\" <j@y.test>\r\nMessage-ID: <1@x>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\nHello\r\n"
        );
    }

    #[test]
    fn non_ascii_goes_in_encoded_words_and_display_names_only() {
        let out = render(Mail {
            from: Some(mailbox("Zoë <zoe@x.test>")),
            subject: Some("Grüße".into()),
            headers: vec![("Reply-To".into(), "Jürgen <j@x.test>, plain@x.test".into())],
            ..Mail::default()
        });
        assert!(out.contains("From: =?UTF-8?B?Wm/Dqw==?= <zoe@x.test>\r\n"), "{out}");
        assert!(out.contains("Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n"), "{out}");
        assert!(out.contains("Reply-To: =?UTF-8?B?SsO8cmdlbg==?= <j@x.test>, plain@x.test\r\n"), "{out}");
    }

    #[test]
    fn long_headers_fold_under_78_where_words_allow() {
        let subject = ["word"; 60].join(" ");
        let out = render(Mail { subject: Some(subject.clone()), ..Mail::default() });
        let head = out.split("\r\n\r\n").next().unwrap();
        assert!(head.split("\r\n").all(|l| l.len() <= 78), "{head}");
        let unfolded = head.replace("\r\n ", " ");
        assert!(unfolded.contains(&format!("Subject: {subject}\r\n")));
        // Non-ASCII: one encoded word per line.
        let out = render(Mail { subject: Some("é".repeat(100)), ..Mail::default() });
        assert!(out.split("\r\n").all(|l| l.len() <= 78), "{out}");
    }

    #[test]
    fn html_inline_images_and_attachments_nest_as_mail_clients_do() {
        let out = render(Mail {
            text: Some("text".into()),
            html: Some("<img src=\"cid:logo\">".into()),
            attachments: vec![
                Attachment {
                    content: Content::Data(b"PNG".to_vec()),
                    name: Some("logo.png".into()),
                    media_type: None,
                    inline: true,
                    cid: Some("logo".into()),
                },
                Attachment {
                    content: Content::Data(b"%PDF".to_vec()),
                    name: Some("Überblick.pdf".into()),
                    media_type: None,
                    inline: false,
                    cid: None,
                },
            ],
            ..Mail::default()
        });
        let types: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("Content-Type: ")).collect();
        assert_eq!(
            types,
            [
                "multipart/mixed; boundary=\"b1\"",
                "multipart/alternative; boundary=\"b2\"",
                "text/plain; charset=utf-8",
                "multipart/related; boundary=\"b3\"",
                "text/html; charset=utf-8",
                "image/png; name=\"logo.png\"",
                "application/pdf; name*=UTF-8''%C3%9Cberblick.pdf",
            ]
        );
        assert!(out.contains("Content-Disposition: inline; filename=\"logo.png\"\r\n"));
        assert!(out.contains("Content-ID: <logo>\r\n"));
        assert!(out.contains("Content-Disposition: attachment; filename*=UTF-8''%C3%9Cberblick.pdf\r\n"));
        assert!(out.ends_with("\r\n--b1--\r\n"));
    }

    #[test]
    fn long_non_ascii_file_names_continue_in_pieces() {
        let params = header::parameter("filename", &"ü".repeat(40));
        assert_eq!(params.len(), 5);
        assert!(params[0].starts_with("filename*0*=UTF-8''%C3%BC"));
        assert!(params[1].starts_with("filename*1*=%C3"));
        assert!(params.iter().all(|p| p.len() < 78));
    }

    #[test]
    fn parameters_that_are_not_ascii_go_as_rfc_2231_values() {
        let text = |name: &str, value: &str| String::from_utf8(field(name, value).unwrap()).unwrap();
        assert_eq!(
            text("Content-Disposition", "attachment; filename=\"r\u{e9}sum\u{e9}.pdf\"; size=3"),
            "Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf;\r\n size=\"3\"\r\n"
        );
        assert_eq!(
            text("Content-Type", "text/plain; charset=utf-8; name=\"\u{fc}.txt\""),
            "Content-Type: text/plain; charset=\"utf-8\"; name*=UTF-8''%C3%BC.txt\r\n"
        );
        // An extended value already there stays as it is; a first word that is not ASCII
        // leaves nothing to do but encode the whole.
        assert_eq!(
            text("Content-Type", "a/b; x*=UTF-8''%C3%BC; y=\u{fc}"),
            "Content-Type: a/b; x*=UTF-8''%C3%BC; y*=UTF-8''%C3%BC\r\n"
        );
        assert!(text("Content-Type", "\u{fc}/b").starts_with("Content-Type: =?UTF-8?B?"));
    }

    #[test]
    fn an_address_with_an_ascii_local_part_gets_its_domain_as_an_a_label() {
        let out = String::from_utf8(
            field("To", "J\u{fc}rgen <j@m\u{fc}ller.example>, andr\u{e9}@caf\u{e9}.example").unwrap(),
        );
        assert_eq!(
            out.unwrap(),
            "To: =?UTF-8?B?SsO8cmdlbg==?= <j@xn--mller-kva.example>, andr\u{e9}@caf\u{e9}.example\r\n"
        );
    }

    #[test]
    fn addresses_must_look_like_addresses() {
        for bad in ["", "plain", "a b@c", "Name <>", "<a@b", "a@b>", "\"a\\\" <a@b>"] {
            assert!(Mailbox::parse(bad, "-to").is_err(), "{bad:?}");
        }
        assert_eq!(mailbox("<a@b>"), Mailbox { name: None, address: "a@b".into() });
        assert_eq!(mailbox("\"q\\\"x\" <a@b>"), Mailbox { name: Some("q\"x".into()), address: "a@b".into() });
    }

    #[test]
    fn header_text_with_line_breaks_is_refused() {
        let stamp_err = |mail: Mail| {
            let mut boundary = || Ok("b".to_string());
            build(mail, Stamp { date: "D", message_id: "<m>", boundary: &mut boundary }).unwrap_err()
        };
        assert!(matches!(
            stamp_err(Mail { subject: Some("a\r\nBcc: x".into()), ..Mail::default() }),
            Error::LineBreak { .. }
        ));
        let attachment = Attachment {
            content: Content::Data(vec![]),
            name: Some("a\nb".into()),
            media_type: None,
            inline: false,
            cid: None,
        };
        assert!(matches!(
            stamp_err(Mail { attachments: vec![attachment], ..Mail::default() }),
            Error::LineBreak { .. }
        ));
    }
}
