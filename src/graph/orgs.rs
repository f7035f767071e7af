//! Organizations (tenants) and the vocabulary: the platform owner's
//! administration, plus entering an org.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::{Error, ErrorCode, Result};
use crate::graph::{Audit, AuditLog, ReadTxn, check_json_size, check_text, limits};
use crate::graph::{encode, props};
use crate::keys::{self, Tenant};
use crate::model::{COUNTERS, Dim, Id, Org, OrgStatus, Plan, Props};
use crate::ontology::vocabulary::{EXTENSION_CATEGORY, hint, is_valid_type_name};
use crate::ontology::{Action, Role, TypeKind};
use crate::storage::PlatformTables;

/// What `ALTER ORG` may change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrgUpdate {
    pub name: Option<String>,
    pub plan: Option<Plan>,
    pub status: Option<OrgStatus>,
    pub settings: Option<Props>,
}

/// Slugs are short lowercase words: letters, digits, `-` and `_`.
pub(crate) fn check_slug(slug: &str) -> Result<()> {
    let ok = !slug.is_empty()
        && slug.len() <= limits::SLUG_BYTES
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && slug.as_bytes()[0].is_ascii_lowercase();
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "an org slug is 1 to {} lowercase letters, digits, - or _, starting with a letter: {slug:?}",
            limits::SLUG_BYTES
        )))
    }
}

impl ReadTxn<'_> {
    /// Moves this transaction into another org (`USE ORG`, `IN ORG`): the
    /// platform owner may enter any; everyone else only their own.
    pub fn enter_org(&mut self, slug: &str) -> Result<Org> {
        let org = self
            .org_by_slug(slug)?
            .ok_or_else(|| Error::not_found(format!("no organization {slug:?}")))?;
        if self.actor.org != Some(org.id) {
            self.authorize(Action::EnterAnyOrg)?;
        }
        self.enter(Some(org.clone()))?;
        Ok(org)
    }

    /// Back to the platform tenant (platform owners only).
    pub fn enter_platform(&mut self) -> Result<()> {
        self.authorize(Action::EnterAnyOrg)?;
        self.enter(None)
    }

    /// Moves the transaction's current tenant (callers check the right).
    pub(crate) fn enter(&mut self, org: Option<Org>) -> Result<()> {
        let tenant = org
            .as_ref()
            .map_or(Tenant::PLATFORM, |o| Tenant::of_org(o.id));
        self.txn.switch_tenant(tenant)?;
        // Writers depend on the org's status and limits: read it for update.
        self.org = match org {
            Some(o) if self.is_writable() => Some(self.load_org_for_update(o.id)?),
            other => other.map(Arc::new),
        };
        Ok(())
    }

    pub fn org_by_slug(&self, slug: &str) -> Result<Option<Org>> {
        let Some(bytes) = self.txn.get(&keys::org_slug(slug))? else {
            return Ok(None);
        };
        let raw: [u8; 16] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| Error::corruption("org slug", "not 16 bytes"))?;
        let id = Id::from_raw(Dim::Org, u128::from_be_bytes(raw));
        let org: Option<Org> = self.load("org", &keys::org(id))?;
        match org {
            Some(o) if self.actor.role == Role::PlatformOwner || self.actor.org == Some(o.id) => {
                Ok(Some(o))
            }
            Some(_) => Ok(None),
            None => Err(Error::corruption(
                "org slug",
                format!("{slug} points at missing {id}"),
            )),
        }
    }

    /// All orgs for the platform owner; one's own org for everyone else.
    pub fn orgs(&self) -> Result<Vec<Org>> {
        let mut out = Vec::new();
        for entry in self.txn.scan_prefix(&keys::orgs_prefix(), false)? {
            let (_, value) = entry?;
            let org: Org = crate::graph::decode("org", &value)?;
            if self.actor.role == Role::PlatformOwner || self.actor.org == Some(org.id) {
                out.push(org);
            }
        }
        Ok(out)
    }

    pub(super) fn create_org(&mut self, slug: &str, name: &str, plan: Plan) -> Result<Org> {
        check_slug(slug)?;
        check_text("an org's name", name, limits::NAME_BYTES)?;
        if self.txn.get_for_update(&keys::org_slug(slug))?.is_some() {
            return Err(Error::conflict(format!(
                "organization {slug} already exists"
            )));
        }
        let now = self.now();
        let org = Org {
            id: self.new_id(Dim::Org),
            slug: slug.to_string(),
            name: name.to_string(),
            plan,
            status: OrgStatus::Active,
            limits: plan.default_limits(),
            settings: Props::new(),
            created_at: now,
            updated_at: now,
        };
        let tables = PlatformTables::grant();
        self.txn
            .put_platform(&tables, keys::org(org.id), Some(encode(&org)?))?;
        let slug_entry = org.id.raw().to_be_bytes().to_vec();
        self.txn
            .put_platform(&tables, keys::org_slug(slug), Some(slug_entry))?;
        // The event belongs to the new org's log.
        let meta = props([("slug", json!(slug)), ("plan", json!(plan.as_str()))]);
        self.audit(
            Audit::new("organization_created", None, "organization", meta)
                .in_log(AuditLog::Org(Box::new(org.clone()))),
        );
        Ok(org)
    }

    pub(super) fn update_org(&mut self, slug: &str, update: OrgUpdate) -> Result<Org> {
        let mut org = self.org_for_update(slug)?;
        let mut changes = Props::new();
        if let Some(name) = update.name {
            check_text("an org's name", &name, limits::NAME_BYTES)?;
            changes.insert("name".into(), json!({"from": org.name, "to": name}));
            org.name = name;
        }
        if let Some(plan) = update.plan {
            changes.insert(
                "plan".into(),
                json!({"from": org.plan.as_str(), "to": plan.as_str()}),
            );
            org.plan = plan;
        }
        if let Some(status) = update.status {
            changes.insert(
                "status".into(),
                json!({"from": org.status.as_str(), "to": status.as_str()}),
            );
            org.status = status;
        }
        if let Some(settings) = update.settings {
            check_json_size("settings", &settings, limits::METADATA_BYTES)?;
            changes.insert("settings".into(), Value::Object(settings.clone()));
            org.settings = settings;
        }
        self.save_org(org, changes)
    }

    pub(super) fn set_limits(
        &mut self,
        slug: &str,
        new_limits: BTreeMap<String, i64>,
    ) -> Result<Org> {
        let mut org = self.org_for_update(slug)?;
        for (name, value) in &new_limits {
            if !COUNTERS.contains(&name.as_str()) && self.check_type(TypeKind::Thing, name).is_err()
            {
                let mut names: Vec<String> = COUNTERS.iter().map(|c| c.to_string()).collect();
                names.extend(
                    self.vocabulary
                        .types(TypeKind::Thing)
                        .into_iter()
                        .map(|(_, n)| n),
                );
                return Err(Error::new(
                    ErrorCode::UnknownType,
                    format!(
                        "{name:?} is neither a usage counter nor a thing type{}",
                        hint(name, &names)
                    ),
                ));
            }
            if *value < -1 {
                return Err(Error::invalid(format!(
                    "limit {name} must be -1 (unlimited) or more, not {value}"
                )));
            }
        }
        org.limits.extend(new_limits.clone());
        let changes = props([("limits", json!(new_limits))]);
        self.save_org(org, changes)
    }

    fn org_for_update(&mut self, slug: &str) -> Result<Org> {
        let org = self
            .org_by_slug(slug)?
            .ok_or_else(|| Error::not_found(format!("no organization {slug:?}")))?;
        let (org, _) = self
            .load_for_update::<Org>("org", &keys::org(org.id))?
            .ok_or_else(|| Error::not_found(format!("no organization {slug:?}")))?;
        Ok(org)
    }

    fn save_org(&mut self, mut org: Org, changes: Props) -> Result<Org> {
        org.updated_at = self.now();
        self.txn.put_platform(
            &PlatformTables::grant(),
            keys::org(org.id),
            Some(encode(&org)?),
        )?;
        let meta = props([("changes", Value::Object(changes))]);
        self.audit(
            Audit::new("organization_updated", None, "organization", meta)
                .in_log(AuditLog::Org(Box::new(org.clone()))),
        );
        Ok(org)
    }

    pub(super) fn add_type(&mut self, kind: TypeKind, name: &str) -> Result<()> {
        if !is_valid_type_name(name) {
            return Err(Error::invalid(format!(
                "a type name is a lowercase word of letters, digits and _: {name:?}"
            )));
        }
        if self.vocabulary.contains(kind, name)
            || self.txn.get_for_update(&keys::vocab(kind, name))?.is_some()
        {
            return Err(Error::conflict(format!(
                "{} type {name} already exists",
                kind.as_str()
            )));
        }
        self.txn.put_platform(
            &PlatformTables::grant(),
            keys::vocab(kind, name),
            Some(EXTENSION_CATEGORY.as_bytes().to_vec()),
        )?;
        self.vocabulary_changed = true;
        // Audited in the platform's own log.
        let meta = props([("vocabulary", json!({"kind": kind.as_str(), "name": name}))]);
        self.audit(
            Audit::new("settings_updated", None, "vocabulary", meta).in_log(AuditLog::Platform),
        );
        Ok(())
    }
}
