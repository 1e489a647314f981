//! The commands a send's worker calls on the interpreter's thread: it asks `-tlspolicy`
//! about a TLS weakness and `-oauthcommand` for a bearer token, and tells `-progress` how
//! far the message has gone.

use crate::secret::Secret;
use crate::smtp::PolicyAnswer;
use crate::tcl::{Interp, Obj};

/// The commands of one send (a session's, for a send over it, and the send's own
/// `-progress`); `None` when not given.
#[derive(Clone, Default)]
pub struct Asked {
    pub tlspolicy: Option<Obj>,
    pub oauthcommand: Option<Obj>,
    pub progress: Option<Obj>,
}

/// Calls the `-tlspolicy` prefix with the code and diagnostic appended, at global level,
/// leaving the interpreter's result and error state as they were. Only the exact answer
/// `insecure` lets the send go on without (verified) TLS; anything else, an error
/// included, counts as `secure` (fail closed).
pub fn policy(interp: &Interp<'_>, prefix: &Obj, code: u16, diagnostic: &str) -> PolicyAnswer {
    let answer = interp.with_saved_state(|| {
        let mut words = interp.list_elements(prefix)?;
        words.push(interp.new_int(i64::from(code)));
        words.push(interp.new_string(diagnostic));
        interp.eval_global(&words)
    });
    match answer {
        Ok(value) if value.text() == "insecure" => PolicyAnswer::Insecure,
        Ok(value) => PolicyAnswer::Secure { why: format!("-tlspolicy answered \"{}\"", value.text()) },
        Err(e) => PolicyAnswer::Secure { why: format!("-tlspolicy failed: {}", e.message) },
    }
}

/// Calls the `-oauthcommand` prefix with the user name appended, at global level, as
/// `policy` does; its result is the token. An error, or an empty result, is why there
/// is none (its message, never the token).
pub fn token(interp: &Interp<'_>, prefix: &Obj, username: &str) -> Result<Secret, String> {
    let result = interp.with_saved_state(|| {
        let mut words = interp.list_elements(prefix)?;
        words.push(interp.new_string(username));
        interp.eval_global(&words)
    });
    match result {
        Ok(value) if value.text().is_empty() => Err("it returned no token".into()),
        Ok(value) => Ok(Secret::from_text(&value.text())),
        Err(e) => Err(e.message),
    }
}
