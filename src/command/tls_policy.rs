//! The `-tlspolicy` command, asked on the interpreter's thread.

use crate::smtp::PolicyAnswer;
use crate::tcl::{Interp, Obj};

/// A `-tlspolicy` command prefix in its interpreter.
pub struct PolicyCommand<'a, 'i> {
    interp: &'a Interp<'i>,
    prefix: Obj,
}

impl<'a, 'i> PolicyCommand<'a, 'i> {
    pub fn new(interp: &'a Interp<'i>, prefix: Obj) -> Self {
        PolicyCommand { interp, prefix }
    }

    /// Calls the prefix with the code and diagnostic appended, at global level, leaving
    /// the interpreter's result and error state as they were. Only the exact answer
    /// `insecure` lets the send go on without (verified) TLS; anything else, an error
    /// included, counts as `secure` (fail closed).
    pub fn ask(&self, code: u16, diagnostic: &str) -> PolicyAnswer {
        let interp = self.interp;
        let answer = interp.with_saved_state(|| {
            let mut words = interp.list_elements(&self.prefix)?;
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
}
