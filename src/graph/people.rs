//! People: persons with a role, members of one org (platform owners belong
//! to none). Emails are unique on the whole platform.

use serde_json::json;

use crate::auth;
use crate::error::{Error, Result};
use crate::graph::props;
use crate::graph::{Audit, ReadTxn, check_text, limits};
use crate::keys::{self, Family};
use crate::model::{Dim, Id, Person, PersonStatus};
use crate::ontology::{Action, Grant, Role};
use crate::storage::PlatformTables;

/// What `CREATE PERSON "email" NAME "…" ROLE r [IN ORG o] [PASSWORD "…"]`
/// asks for. The person joins the transaction's current org.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPerson {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub password: Option<String>,
}

/// Emails are compared lowercased and trimmed.
pub fn normalize_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= limits::EMAIL_BYTES
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((user, domain)) if !user.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if valid {
        Ok(email)
    } else {
        Err(Error::invalid(format!(
            "not a valid email address: {email:?}"
        )))
    }
}

impl ReadTxn<'_> {
    pub(super) fn create_person(&mut self, new: NewPerson) -> Result<Person> {
        if new.role == Role::PlatformOwner {
            self.authorize(Action::ManageOrgs)?;
            if self.org.is_some() {
                return Err(Error::invalid("platform owners belong to no organization"));
            }
        } else if self.org.is_none() {
            return Err(Error::invalid(
                "a person joins an organization: USE ORG first or say IN ORG",
            ));
        }
        let email = normalize_email(&new.email)?;
        check_text("a person's name", &new.name, limits::NAME_BYTES)?;
        let password_hash = new
            .password
            .as_deref()
            .map(auth::hash_password)
            .transpose()?;
        if self.txn.get_for_update(&keys::email(&email))?.is_some() {
            return Err(Error::conflict(format!(
                "{email} is already a person on this platform"
            )));
        }
        self.count_standard("people", 1)?;
        let now = self.now();
        let person = Person {
            id: self.new_id(Dim::Person),
            email,
            name: new.name,
            role: new.role,
            org: self.org_id(),
            status: PersonStatus::Active,
            password_hash,
            created_at: now,
            updated_at: now,
        };
        self.write_person(&person, None)?;
        let meta = props([
            ("role", json!(person.role.as_str())),
            ("email", json!(person.email)),
        ]);
        self.audit(Audit::new(
            "user_joined_org",
            Some(person.id),
            "person",
            meta,
        ));
        self.created.insert(person.id, self.tenant());
        Ok(person)
    }

    /// Writes a person record and its email entry (`org(16) person(16)`).
    pub(crate) fn write_person(&mut self, person: &Person, old_len: Option<usize>) -> Result<()> {
        let t = self.tenant();
        self.store(t.person(person.id), person, old_len)?;
        let mut entry = Vec::with_capacity(32);
        entry.extend_from_slice(&person.org.map_or(0, |o| o.raw()).to_be_bytes());
        entry.extend_from_slice(&person.id.raw().to_be_bytes());
        self.txn.put_platform(
            &PlatformTables::grant(),
            keys::email(&person.email),
            Some(entry),
        )
    }

    /// The first person of a new database: the platform owner, `root`.
    pub(crate) fn bootstrap_root(&mut self, root: &Person) -> Result<()> {
        self.count_standard("people", 1)?;
        self.write_person(root, None)?;
        self.log(
            "user_registered",
            Some(root.id),
            "person",
            props([("email", json!(root.email))]),
        )?;
        Ok(())
    }

    /// Replaces the actor's own password hash.
    pub(crate) fn set_own_password_hash(&mut self, hash: &str) -> Result<()> {
        let key = self.tenant().person(self.actor.person);
        let (mut person, old_len) = self
            .load_for_update::<Person>(Family::Person.name(), &key)?
            .ok_or_else(|| Error::not_found("no such person"))?;
        person.password_hash = Some(hash.to_string());
        person.updated_at = self.now();
        self.store(key, &person, Some(old_len))?;
        self.log(
            "password_reset_completed",
            Some(person.id),
            "person",
            props([]),
        )?;
        Ok(())
    }

    pub(super) fn remove_person(&mut self, id: Id) -> Result<Person> {
        let key = self.tenant().person(id);
        let (mut person, old_len) =
            match self.load_for_update::<Person>(Family::Person.name(), &key)? {
                Some((p, len)) if p.status == PersonStatus::Active => (p, len),
                _ => {
                    return Err(Error::not_found(format!(
                        "person {id} does not exist in organization {}",
                        self.org_label()
                    )));
                }
            };
        if person.role == Role::PlatformOwner || person.id == self.actor.person {
            return Err(Error::forbidden(
                "platform owners and oneself cannot be removed",
            ));
        }
        self.created.remove(&id);
        let now = self.now();
        person.status = PersonStatus::Removed;
        person.updated_at = now;
        self.access_changed = true;
        self.store(key, &person, Some(old_len))?;
        // Like a deleted thing, a removed person's edges vanish and end.
        let ended = self.hide_edges_of(id, now)?;
        // The email is free again for a new person.
        self.txn
            .put_platform(&PlatformTables::grant(), keys::email(&person.email), None)?;
        self.count_standard("people", -1)?;
        let meta = props([
            ("email", json!(person.email)),
            ("connectionsEnded", json!(ended)),
        ]);
        self.audit(Audit::new(
            "user_removed_from_org",
            Some(id),
            "person",
            meta,
        ));
        Ok(person)
    }

    // ---- reading ----

    /// An active person of this org. Customers see only themselves.
    pub fn person(&self, id: Id) -> Result<Option<Person>> {
        if id.dim() != Dim::Person {
            return Ok(None);
        }
        if crate::ontology::roles::grant(self.actor.role, Action::ReadAll) != Grant::Allow
            && id != self.actor.person
        {
            return Ok(None);
        }
        let p: Option<Person> = self.load(Family::Person.name(), &self.tenant().person(id))?;
        Ok(p.filter(|p| p.status == PersonStatus::Active))
    }

    /// Every active person of this org visible to the actor.
    pub fn people(&self) -> Result<Vec<Person>> {
        let mut out = Vec::new();
        for entry in self.txn.scan_prefix(&self.tenant().people(), false)? {
            let (_, value) = entry?;
            let p: Person = crate::graph::decode(Family::Person.name(), &value)?;
            if p.status == PersonStatus::Active && self.person(p.id)?.is_some() {
                out.push(p);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(normalize_email(" Alice@Acme.IO ").unwrap(), "alice@acme.io");
        for bad in [
            "", "alice", "@acme.io", "alice@", "a b@c.d", "a@b@c", "a\0@b.c",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }
}
