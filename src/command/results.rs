//! The Tcl values of a send's result: the list of refused recipients, and the dict a
//! `-command` callback gets.

use crate::client::Delivery;
use crate::smtp::Refusal;
use crate::tcl::{Interp, Obj, TclError};

/// The result of a send: a list of `{address code diagnostic}`, one per refused
/// recipient (an empty list, i.e. `""`, when every recipient was accepted).
pub fn refusals(interp: &Interp<'_>, refused: &[Refusal]) -> Obj {
    let items: Vec<Obj> = refused
        .iter()
        .map(|r| {
            interp.new_list(&[
                interp.new_string(&r.address),
                interp.new_int(i64::from(r.reply.code)),
                interp.new_string(r.reply.text()),
            ])
        })
        .collect();
    interp.new_list(&items)
}

/// What a `-command` callback gets: `status ok refused {…}` or
/// `status error refused {} error message errorcode {…}`.
pub fn callback_dict(interp: &Interp<'_>, result: &Result<Delivery, TclError>) -> Obj {
    let mut pairs = Vec::with_capacity(8);
    match result {
        Ok(delivery) => {
            pairs.extend([interp.new_string("status"), interp.new_string("ok")]);
            pairs.extend([interp.new_string("refused"), refusals(interp, &delivery.refused)]);
        }
        Err(e) => {
            let code: Vec<Obj> = e.errorcode.iter().map(|w| interp.new_string(w)).collect();
            pairs.extend([interp.new_string("status"), interp.new_string("error")]);
            pairs.extend([interp.new_string("refused"), interp.new_list(&[])]);
            pairs.extend([interp.new_string("error"), interp.new_string(&e.message)]);
            pairs.extend([interp.new_string("errorcode"), interp.new_list(&code)]);
        }
    }
    interp.new_list(&pairs)
}
