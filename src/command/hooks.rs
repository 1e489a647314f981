//! The Tcl side of a send's [`Hooks`]: the `-debug` trace and the `-tlspolicy` command.

use std::io::Write;

use crate::client::Hooks;
use crate::smtp::PolicyAnswer;
use crate::tcl::{Interp, Obj};

pub struct TclHooks<'a, 'i> {
    interp: &'a Interp<'i>,
    debug: bool,
    policy: Option<Obj>,
}

impl<'a, 'i> TclHooks<'a, 'i> {
    pub fn new(interp: &'a Interp<'i>, debug: bool, policy: Option<Obj>) -> Self {
        TclHooks { interp, debug, policy }
    }
}

impl Hooks for TclHooks<'_, '_> {
    fn trace(&mut self, line: &str) {
        if self.debug {
            // Not eprintln!, which panics when stderr is closed (a daemon); a lost trace
            // line must not fail the send.
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }

    /// Calls the policy prefix with the code and diagnostic appended, at global level,
    /// leaving the interpreter's result and error state as they were. Only the exact
    /// answer `insecure` lets the send go on without (verified) TLS; anything else, an
    /// error included, counts as `secure` (fail closed).
    fn tls_policy(&mut self, code: u16, diagnostic: &str) -> Option<PolicyAnswer> {
        let prefix = self.policy.as_ref()?;
        let interp = self.interp;
        let answer = interp.with_saved_state(|| {
            let mut words = interp.list_elements(prefix)?;
            words.push(interp.new_int(i64::from(code)));
            words.push(interp.new_string(diagnostic));
            interp.eval_global(&words)
        });
        Some(match answer {
            Ok(value) if value.text() == "insecure" => PolicyAnswer::Insecure,
            Ok(value) => PolicyAnswer::Secure { why: format!("-tlspolicy answered \"{}\"", value.text()) },
            Err(e) => PolicyAnswer::Secure { why: format!("-tlspolicy failed: {}", e.message) },
        })
    }
}
