//! The access matrix of api.md, typed: (caller column × action × whether
//! the contest is a draft) → allow, 403 or 404, as one exhaustive `match`
//! with no catch-all arm. Every contest and entry route asks [`check`].
//!
//! A caller may fit several columns (an ops user who also entered the
//! contest): the answer is "allow" when any of their columns allows; else
//! 404 when any says 404 (existence must not leak), else 403. One exception,
//! from the table's own note: nobody enters their own contest, whatever
//! other roles they hold.

use super::roles::{Role, Roles};
use crate::error::{ApiError, ErrorCode};

/// A column of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    User,
    Entrant,
    OwnOrganizer,
    OtherOrganizer,
    Ops,
    Admin,
}

/// A row of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    ReadContest,
    CreateContest,
    /// Edit, open, lock, cancel, settle.
    ManageContest,
    /// Join or withdraw one's own entry.
    Enter,
    ListEntries,
    GrantRoles,
    Operate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Allow,
    Forbidden,
    NotFound,
}

/// One cell. `draft` matters only to reading.
pub fn cell(column: Column, action: Action, draft: bool) -> Access {
    use Access::*;
    use Column::*;
    match (action, column) {
        (Action::ReadContest, Admin | OwnOrganizer) => Allow,
        (Action::ReadContest, User | Entrant | OtherOrganizer | Ops) => {
            if draft {
                NotFound
            } else {
                Allow
            }
        }
        (Action::CreateContest, OwnOrganizer | OtherOrganizer | Admin) => Allow,
        (Action::CreateContest, User | Entrant | Ops) => Forbidden,
        (Action::ManageContest, OwnOrganizer | Admin) => Allow,
        (Action::ManageContest, User | Entrant | OtherOrganizer | Ops) => Forbidden,
        (Action::Enter, User | Entrant | OtherOrganizer | Ops | Admin) => Allow,
        (Action::Enter, OwnOrganizer) => Forbidden,
        (Action::ListEntries, OwnOrganizer | Admin) => Allow,
        (Action::ListEntries, User | Entrant | OtherOrganizer | Ops) => Forbidden,
        (Action::GrantRoles, Admin) => Allow,
        (Action::GrantRoles, User | Entrant | OwnOrganizer | OtherOrganizer | Ops) => Forbidden,
        (Action::Operate, Ops | Admin) => Allow,
        (Action::Operate, User | Entrant | OwnOrganizer | OtherOrganizer) => Forbidden,
    }
}

/// The caller's relation to a contest.
#[derive(Debug, Clone, Copy, Default)]
pub struct Relation {
    /// The caller organizes this contest.
    pub own: bool,
    /// The caller holds (or held) an entry in it.
    pub entrant: bool,
}

/// The columns a caller fits.
pub fn columns(roles: &Roles, relation: Relation) -> Vec<Column> {
    let mut columns = vec![Column::User];
    if relation.entrant {
        columns.push(Column::Entrant);
    }
    // Owning a contest counts while one is an organizer: a demoted
    // organizer keeps no power over the contests they made (admins do).
    if roles.has(Role::Organizer) {
        columns.push(if relation.own {
            Column::OwnOrganizer
        } else {
            Column::OtherOrganizer
        });
    }
    if roles.has(Role::Ops) {
        columns.push(Column::Ops);
    }
    if roles.has(Role::Admin) {
        columns.push(Column::Admin);
    }
    columns
}

/// The answer for a caller: see the module comment.
pub fn decide(roles: &Roles, relation: Relation, action: Action, draft: bool) -> Access {
    if action == Action::Enter && relation.own {
        return Access::Forbidden;
    }
    let answers: Vec<Access> = columns(roles, relation)
        .into_iter()
        .map(|c| cell(c, action, draft))
        .collect();
    if answers.contains(&Access::Allow) {
        Access::Allow
    } else if answers.contains(&Access::NotFound) {
        Access::NotFound
    } else {
        Access::Forbidden
    }
}

/// [`decide`] as a route's guard.
pub fn check(
    roles: &Roles,
    relation: Relation,
    action: Action,
    draft: bool,
) -> Result<(), ApiError> {
    match decide(roles, relation, action, draft) {
        Access::Allow => Ok(()),
        Access::Forbidden => Err(ApiError::new(ErrorCode::Forbidden)),
        Access::NotFound => Err(ApiError::new(ErrorCode::NotFound).with_message("no such contest")),
    }
}
