//! Roles and what each may do (ONTOLOGY.md "People"): one table that every
//! write and read consults. An action missing from the table is denied.

pub use crate::model::Role;

impl Role {
    fn column(self) -> usize {
        match self {
            Role::PlatformOwner => 0,
            Role::OrgOwner => 1,
            Role::OrgUser => 2,
            Role::Customer => 3,
        }
    }
}

/// Everything a session can ask to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Create, suspend and configure orgs; set limits.
    ManageOrgs,
    ExtendVocabulary,
    /// `USE ORG` into an org other than one's own.
    EnterAnyOrg,
    /// Write global platform things (organization-less).
    WriteGlobal,
    ManagePeople,
    ManageTriggers,
    /// Make, list and end API tokens (OwnOnly: one's own).
    ManageTokens,
    /// Define and drop property schemas (an org_owner: for the own org).
    ManageSchemas,
    CreateThing,
    UpdateThing,
    ChangeStatus,
    DeleteThing,
    Connect,
    Disconnect,
    WriteKnowledge,
    /// Delete knowledge (org_user: only what they created).
    DeleteKnowledge,
    EmitEvent,
    /// Read every thing (any status), every event and the usage of the org.
    ReadAll,
    /// Read published things and global platform things.
    ReadPublished,
}

impl Action {
    pub const ALL: [Action; 19] = [
        Action::ManageOrgs,
        Action::ExtendVocabulary,
        Action::EnterAnyOrg,
        Action::WriteGlobal,
        Action::ManagePeople,
        Action::ManageTriggers,
        Action::ManageTokens,
        Action::ManageSchemas,
        Action::CreateThing,
        Action::UpdateThing,
        Action::ChangeStatus,
        Action::DeleteThing,
        Action::Connect,
        Action::Disconnect,
        Action::WriteKnowledge,
        Action::DeleteKnowledge,
        Action::EmitEvent,
        Action::ReadAll,
        Action::ReadPublished,
    ];
}

/// What the table says for one role and action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    Allow,
    Deny,
    /// Allowed only on what the actor created.
    OwnOnly,
    /// Customers: only `message` and `conversation` things.
    CustomerThingTypes,
    /// Customers: only from themselves, with the customer connection types.
    FromSelf,
}

use Grant::{Allow, CustomerThingTypes, Deny, FromSelf, OwnOnly};

/// Columns: platform_owner, org_owner, org_user, customer.
pub const PERMISSIONS: &[(Action, [Grant; 4])] = &[
    (Action::ManageOrgs, [Allow, Deny, Deny, Deny]),
    (Action::ExtendVocabulary, [Allow, Deny, Deny, Deny]),
    (Action::EnterAnyOrg, [Allow, Deny, Deny, Deny]),
    (Action::WriteGlobal, [Allow, Deny, Deny, Deny]),
    (Action::ManagePeople, [Allow, Allow, Deny, Deny]),
    (Action::ManageTriggers, [Allow, Allow, Deny, Deny]),
    (Action::ManageTokens, [Allow, Allow, OwnOnly, OwnOnly]),
    (Action::ManageSchemas, [Allow, Allow, Deny, Deny]),
    (
        Action::CreateThing,
        [Allow, Allow, Allow, CustomerThingTypes],
    ),
    (Action::UpdateThing, [Allow, Allow, Allow, Deny]),
    (Action::ChangeStatus, [Allow, Allow, Allow, Deny]),
    (Action::DeleteThing, [Allow, Allow, OwnOnly, Deny]),
    (Action::Connect, [Allow, Allow, Allow, FromSelf]),
    (Action::Disconnect, [Allow, Allow, Allow, FromSelf]),
    (Action::WriteKnowledge, [Allow, Allow, Allow, Deny]),
    (Action::DeleteKnowledge, [Allow, Allow, OwnOnly, Deny]),
    (Action::EmitEvent, [Allow, Allow, Allow, Deny]),
    (Action::ReadAll, [Allow, Allow, Allow, Deny]),
    (Action::ReadPublished, [Allow, Allow, Allow, Allow]),
];

/// Thing types a customer may create.
pub const CUSTOMER_THING_TYPES: &[&str] = &["message", "conversation"];

/// Connection types a customer may make from themselves.
pub const CUSTOMER_CONNECTION_TYPES: &[&str] = &[
    "following",
    "purchased",
    "enrolled_in",
    "completed",
    "participated_in",
    "communicated",
];

/// The table's answer; an action absent from the table is denied.
pub fn grant(role: Role, action: Action) -> Grant {
    PERMISSIONS
        .iter()
        .find(|(a, _)| *a == action)
        .map(|(_, grants)| grants[role.column()])
        .unwrap_or(Deny)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_exactly_one_row() {
        for action in Action::ALL {
            assert_eq!(
                PERMISSIONS.iter().filter(|(a, _)| *a == action).count(),
                1,
                "{action:?}"
            );
        }
    }

    #[test]
    fn platform_owner_may_do_everything() {
        assert!(
            Action::ALL
                .iter()
                .all(|a| grant(Role::PlatformOwner, *a) == Allow)
        );
    }

    #[test]
    fn roles_parse_with_hints() {
        assert_eq!(Role::parse("org_user"), Ok(Role::OrgUser));
        let err = Role::parse("org_owners").unwrap_err();
        assert!(
            err.message.contains("did you mean org_owner"),
            "{}",
            err.message
        );
    }
}
