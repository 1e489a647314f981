//! Commands the client sends, as values that know their wire form.

use std::fmt;

use super::Step;
use crate::sasl::Mechanism;
use crate::secret::Secret;

/// Whether `s` holds a byte that would end a command line (or a header line) early.
pub fn has_line_break_or_nul(s: &str) -> bool {
    s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

/// One SMTP command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    /// Sendmail's "one transaction per connection" hint, sent when offered (as tcllib does).
    Onex,
    /// Ask the server to queue rather than deliver at once (`-queue`, when XQUE is offered).
    Qued,
    StartTls,
    Auth(Mechanism),
    /// One SASL response line (base64). Shown as `<credentials hidden>` in traces.
    AuthResponse(Secret),
    /// Cancels a SASL exchange (RFC 4954 §4).
    AuthCancel,
    /// MAIL FROM with its parameters: `SIZE=` (RFC 1870), `BODY=8BITMIME` (RFC 6152),
    /// `SMTPUTF8` (RFC 6531), each only when the server announced it, then `parameters`
    /// (DSN's `RET=`, `ENVID=`).
    Mail {
        from: String,
        size: Option<u64>,
        eight_bit: bool,
        smtputf8: bool,
        parameters: Vec<String>,
    },
    /// RCPT TO and its parameters (DSN's `NOTIFY=`, `ORCPT=`).
    Rcpt(String, Vec<String>),
    Data,
    /// The end-of-data line on its own: ends a DATA section that must stay empty, after a
    /// pipelined DATA got 354 although no recipient was accepted (RFC 2920 §3.1).
    Dot,
    Rset,
    Quit,
}

impl Command {
    /// Appends the command line, CRLF included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            // The only command whose wire form differs from its display: the one place a
            // credential is revealed.
            Command::AuthResponse(line) => out.extend_from_slice(line.expose()),
            command => out.extend_from_slice(command.to_string().as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
    }

    /// The dialogue step whose reply this command awaits.
    pub fn step(&self) -> Step {
        match self {
            Command::Ehlo(_) => Step::Ehlo,
            Command::Helo(_) => Step::Helo,
            Command::Onex => Step::Onex,
            Command::Qued => Step::Qued,
            Command::StartTls => Step::StartTls,
            Command::Auth(_) | Command::AuthResponse(_) | Command::AuthCancel => Step::Auth,
            Command::Mail { .. } => Step::Mail,
            Command::Rcpt(..) => Step::Rcpt,
            Command::Data => Step::Data,
            Command::Dot => Step::EndOfData,
            Command::Rset => Step::Rset,
            Command::Quit => Step::Quit,
        }
    }
}

/// The command line without its CRLF. Arguments were checked for CR, LF and NUL when the
/// session was created, so this is always exactly one line.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Ehlo(name) => write!(f, "EHLO {name}"),
            Command::Helo(name) => write!(f, "HELO {name}"),
            Command::Onex => f.write_str("ONEX"),
            Command::Qued => f.write_str("QUED"),
            Command::StartTls => f.write_str("STARTTLS"),
            Command::Auth(mechanism) => write!(f, "AUTH {}", mechanism.name()),
            Command::AuthResponse(_) => f.write_str("<credentials hidden>"),
            Command::AuthCancel => f.write_str("*"),
            Command::Mail { from, size, eight_bit, smtputf8, parameters } => {
                write!(f, "MAIL FROM:<{from}>")?;
                if let Some(n) = size {
                    write!(f, " SIZE={n}")?;
                }
                if *eight_bit {
                    f.write_str(" BODY=8BITMIME")?;
                }
                if *smtputf8 {
                    f.write_str(" SMTPUTF8")?;
                }
                parameters.iter().try_for_each(|p| write!(f, " {p}"))
            }
            Command::Rcpt(to, parameters) => {
                write!(f, "RCPT TO:<{to}>")?;
                parameters.iter().try_for_each(|p| write!(f, " {p}"))
            }
            Command::Data => f.write_str("DATA"),
            Command::Dot => f.write_str("."),
            Command::Rset => f.write_str("RSET"),
            Command::Quit => f.write_str("QUIT"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_declares_size_only_when_given() {
        let mut out = Vec::new();
        let mail = |from: &str, size| Command::Mail {
            from: from.into(),
            size,
            eight_bit: false,
            smtputf8: false,
            parameters: Vec::new(),
        };
        mail("a@b", None).encode(&mut out);
        mail("", Some(42)).encode(&mut out);
        assert_eq!(out, b"MAIL FROM:<a@b>\r\nMAIL FROM:<> SIZE=42\r\n");
    }

    #[test]
    fn mail_declares_body_and_smtputf8_when_asked() {
        let mut out = Vec::new();
        let parameters = vec!["RET=HDRS".to_string()];
        Command::Mail { from: "a@b".into(), size: Some(7), eight_bit: true, smtputf8: false, parameters }
            .encode(&mut out);
        Command::Mail { from: "é@b".into(), size: None, eight_bit: true, smtputf8: true, parameters: Vec::new() }
            .encode(&mut out);
        assert_eq!(
            out,
            "MAIL FROM:<a@b> SIZE=7 BODY=8BITMIME RET=HDRS\r\nMAIL FROM:<é@b> BODY=8BITMIME SMTPUTF8\r\n".as_bytes()
        );
    }

    #[test]
    fn a_lone_dot_ends_an_empty_data_section() {
        let mut out = Vec::new();
        Command::Dot.encode(&mut out);
        assert_eq!(out, b".\r\n");
        assert_eq!(Command::Dot.step(), Step::EndOfData);
    }

    #[test]
    fn auth_responses_are_sent_but_never_displayed() {
        let response = Command::AuthResponse(Secret::from_text("AGFsaWNlAHMzY3JldA=="));
        let mut out = Vec::new();
        response.encode(&mut out);
        assert_eq!(out, b"AGFsaWNlAHMzY3JldA==\r\n");
        assert_eq!(response.to_string(), "<credentials hidden>");
        assert!(!format!("{response:?}").contains("AGFs"));
    }

    #[test]
    fn utf8_arguments_are_sent_as_utf8_not_truncated() {
        let mut out = Vec::new();
        Command::Rcpt("café@exämple.org".into(), Vec::new()).encode(&mut out);
        Command::Rcpt("a@b".into(), vec!["NOTIFY=NEVER".into()]).encode(&mut out);
        assert_eq!(out, "RCPT TO:<café@exämple.org>\r\nRCPT TO:<a@b> NOTIFY=NEVER\r\n".as_bytes());
    }
}
