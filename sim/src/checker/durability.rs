//! Durability: an acknowledged registration must be what a later linearizable read of its key sees,
//! unless another write of that key may have intervened. This is implied by linearizability; checking it
//! first gives the clearer message when a crash loses data.

use super::{describe, Op, Outcome, Violation};

pub fn check_key(key: &str, ops: &[&Op]) -> Result<(), Violation> {
    for write in ops.iter().filter(|op| op.outcome == Outcome::WriteOk) {
        let Some(value) = write.written_value() else {
            continue;
        };
        for read in ops.iter().filter(|op| op.is_linearizable_read() && op.invoke_us > write.complete_us) {
            let seen = read.read_value().expect("linearizable reads are ReadOk");
            if seen.as_deref() == Some(value) {
                continue;
            }
            // Another write that might have taken effect before the read finished explains it.
            let explained = ops.iter().any(|other| {
                !std::ptr::eq(*other, *write)
                    && other.is_write()
                    && other.invoke_us < read.complete_us
                    && (other.outcome == Outcome::Unknown || other.complete_us > write.invoke_us)
            });
            if !explained {
                return Err(Violation {
                    check: "durability",
                    key: key.to_string(),
                    what: format!("acknowledged write lost: {} but later {}", describe(write), describe(read)),
                });
            }
        }
    }
    Ok(())
}
