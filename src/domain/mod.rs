//! The contest state machine of lifecycle.md, pure: no I/O, no clock reads
//! (time comes in a [`Ctx`]), no randomness (ids come in the commands).
//!
//! `decide(contest, command, ctx)` says what happens, as events, or why it
//! may not; `apply(contest, event)` changes the state. A command that
//! decides at least one event is an accepted transition: the contest's
//! `version` grows by one and the transition log gets one row. A command
//! that decides none (a replayed join of a pending entry, a tick with nothing
//! due, a duplicate payment event) changes nothing.

mod contest;
mod error;

pub use contest::*;
pub use error::DomainError;
