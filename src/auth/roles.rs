//! Roles. Everyone signed in is a `user`; the others are granted.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Organizer,
    Ops,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Organizer => "organizer",
            Role::Ops => "ops",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "organizer" => Some(Role::Organizer),
            "ops" => Some(Role::Ops),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user's roles; always holds [`Role::User`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles(BTreeSet<Role>);

impl Roles {
    /// From the granted roles stored in the database (unknown names, which
    /// the table's CHECK constraint forbids, are ignored).
    pub fn from_stored(granted: &[String]) -> Roles {
        let mut set: BTreeSet<Role> = granted.iter().filter_map(|r| Role::parse(r)).collect();
        set.insert(Role::User);
        Roles(set)
    }

    pub fn from_roles(roles: impl IntoIterator<Item = Role>) -> Roles {
        let mut set: BTreeSet<Role> = roles.into_iter().collect();
        set.insert(Role::User);
        Roles(set)
    }

    pub fn has(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    /// The granted roles as stored (without `user`).
    pub fn to_stored(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|r| **r != Role::User)
            .map(|r| r.as_str().to_owned())
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = Role> + '_ {
        self.0.iter().copied()
    }
}
