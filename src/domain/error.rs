use super::{ContestState, Rule};

/// Why a command was refused. Each maps onto one code of api.md.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// `409 INVALID_TRANSITION`: the state does not allow the action.
    #[error("a {state} contest does not allow {action}")]
    InvalidTransition {
        state: ContestState,
        action: &'static str,
    },
    /// `409 CONTEST_FULL`.
    #[error("no seats left")]
    ContestFull,
    /// `409 ALREADY_ENTERED`: the user holds a confirmed entry.
    #[error("already entered")]
    AlreadyEntered,
    /// `404 NOT_FOUND`: the user holds no live entry to withdraw.
    #[error("no live entry")]
    NotEntered,
    /// No entry has this id or PaymentIntent.
    #[error("no such entry")]
    UnknownEntry,
    /// `422 VALIDATION_FAILED`, naming each broken rule.
    #[error("validation failed")]
    Validation(Vec<Rule>),
}

impl DomainError {
    pub fn invalid(state: ContestState, action: &'static str) -> Self {
        DomainError::InvalidTransition { state, action }
    }

    pub fn rule(field: &'static str, rule: &'static str) -> Self {
        DomainError::Validation(vec![Rule { field, rule }])
    }
}
