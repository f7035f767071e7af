//! Property schemas of thing types: `DEFINE SCHEMA`, `DROP SCHEMA`,
//! `SHOW SCHEMA`, and the check every create and update of a thing runs
//! inside its commit.
//!
//! A schema is stored under its tenant (`keys`: family 13, one key per
//! type): the platform tenant's holds in every org, an org's in that org
//! in addition, so a thing must satisfy both. Writers read the schema keys
//! for update, so a schema defined concurrently either checks a write or is
//! ordered after it (and then checks it as stored data). Compiled schemas
//! are shared between transactions by the storage layer's record cache
//! (`keys::is_cached_record`), which drops a copy when its key is written:
//! a write compiles nothing and parses nothing.

use std::sync::Arc;

use serde_json::json;

use crate::error::{Error, Result};
use crate::graph::{Audit, AuditLog, ReadTxn, props};
use crate::keys::{Family, Tenant};
use crate::model::{Dim, Id, Props, Thing};
use crate::ontology::{PropertySchema, TypeKind};

/// Offending ids a refused `DEFINE SCHEMA` lists (it counts them all).
const OFFENDERS_SHOWN: usize = 10;

impl ReadTxn<'_> {
    /// The schema `tenant` holds for `kind`, compiled (read for update by
    /// writers). Kept for the rest of the transaction.
    fn schema_in(&mut self, tenant: Tenant, kind: &str) -> Result<Option<Arc<PropertySchema>>> {
        let key = tenant.schema(kind);
        if let Some(found) = self.schemas.get(&key) {
            return Ok(found.clone());
        }
        let decode = |bytes: &[u8]| PropertySchema::decode(kind, bytes);
        let found = if self.is_writable() {
            self.txn.get_decoded_for_update(&key, decode)?
        } else {
            self.txn.get_decoded(&key, decode)?
        }
        .map(|(schema, _)| schema);
        self.schemas.insert(key, found.clone());
        Ok(found)
    }

    /// Checks a thing's properties against every schema in force for its
    /// type here: the platform's, then the org's. `INVALID_ARGUMENT` names
    /// the path and the rule of the first violation.
    pub(super) fn check_properties(&mut self, kind: &str, properties: &mut Props) -> Result<()> {
        let tenant = self.tenant();
        if let Some(schema) = self.schema_in(Tenant::PLATFORM, kind)? {
            schema.check(properties)?;
        }
        if tenant != Tenant::PLATFORM
            && let Some(schema) = self.schema_in(tenant, kind)?
        {
            schema.check(properties)?;
        }
        Ok(())
    }

    /// `DEFINE SCHEMA kind {…}`: outside an org (platform owner) for every
    /// org, inside one for that org. Refused while stored things it would
    /// hold for violate it.
    pub(super) fn define_schema(&mut self, kind: &str, schema: Props) -> Result<()> {
        self.check_type(TypeKind::Thing, kind)?;
        let compiled = PropertySchema::compile(kind, &schema)?;
        let tenants = if self.org.is_none() {
            let mut all = vec![Tenant::PLATFORM];
            for org in self.orgs()? {
                all.push(Tenant::of_org(org.id));
            }
            all
        } else {
            vec![self.tenant()]
        };
        let mut offenders: Vec<Id> = Vec::new();
        let mut count = 0usize;
        let mut first = None;
        for tenant in tenants {
            for thing in self.stored_things_of(tenant, kind)? {
                if let Some(why) = compiled.violation(&thing.properties) {
                    count += 1;
                    if offenders.len() < OFFENDERS_SHOWN {
                        offenders.push(thing.id);
                    }
                    first.get_or_insert(why);
                }
            }
        }
        if count > 0 {
            let ids: Vec<String> = offenders.iter().map(Id::to_string).collect();
            let more = if count > ids.len() { ", …" } else { "" };
            return Err(Error::invalid(format!(
                "{count} stored {kind} thing{} would violate this schema: {}{more}; {}: {}",
                if count == 1 { "" } else { "s" },
                ids.join(", "),
                ids.first().map_or("", String::as_str),
                first.unwrap_or_default()
            )));
        }
        let key = self.tenant().schema(kind);
        let replaced = self.txn.get_for_update(&key)?.is_some();
        self.txn.put(key, crate::graph::encode(&schema)?)?;
        self.schemas.clear();
        let action = if replaced { "replaced" } else { "defined" };
        self.audit_schema_change(action, kind);
        Ok(())
    }

    /// `DROP SCHEMA kind`: the schema of this tenant (org or platform).
    pub(super) fn drop_schema(&mut self, kind: &str) -> Result<()> {
        self.check_type(TypeKind::Thing, kind)?;
        let key = self.tenant().schema(kind);
        if self.txn.get_for_update(&key)?.is_none() {
            return Err(Error::not_found(format!(
                "{} has no schema for {kind}",
                self.org_label()
            )));
        }
        self.txn.delete(key)?;
        self.schemas.clear();
        self.audit_schema_change("dropped", kind);
        Ok(())
    }

    /// Schema changes are audited like every other write: the platform's
    /// in the platform log, an org's in the org's.
    fn audit_schema_change(&mut self, action: &str, kind: &str) {
        let scope = self.org_label().to_string();
        let meta = props([(
            "schema",
            json!({"action": action, "type": kind, "scope": scope}),
        )]);
        let audit = Audit::new("settings_updated", None, "schema", meta);
        self.audit(if self.org.is_none() {
            audit.in_log(AuditLog::Platform)
        } else {
            audit
        });
    }

    /// Live things of `kind` stored under `tenant` (its own, not global
    /// ones), by creation. Read for update: a thing of the type created or
    /// changed by a commit after our snapshot makes our commit conflict, so
    /// it is never stored unchecked beside the schema this transaction
    /// defines.
    fn stored_things_of(&mut self, tenant: Tenant, kind: &str) -> Result<Vec<Thing>> {
        let prefix = tenant.things_of_type(kind);
        drop(self.txn.scan_prefix_for_update(&prefix, false)?);
        let mut ids = Vec::new();
        for entry in self.txn.scan_prefix(&prefix, false)? {
            let (key, _) = entry?;
            let Some(tail) = key
                .get(key.len().saturating_sub(16)..)
                .and_then(|t| <[u8; 16]>::try_from(t).ok())
            else {
                return Err(Error::corruption("thing index", "short key"));
            };
            let id = Id::from_raw(Dim::Thing, u128::from_be_bytes(tail));
            ids.push(id);
        }
        // Each record too: an update committed after our snapshot conflicts.
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let thing = self.load_for_update::<Thing>(Family::Thing.name(), &tenant.thing(id))?;
            match thing {
                Some((t, _)) if t.deleted_at.is_none() => out.push(t),
                _ => {
                    return Err(Error::corruption(
                        "thing index",
                        format!("points at missing or deleted {id}"),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// `SHOW SCHEMA kind`: the schemas in force for `kind` here, each with
    /// where it was defined (`platform` or the org's slug).
    pub fn schemas_of(&self, kind: &str) -> Result<Vec<(String, Props)>> {
        self.check_type(TypeKind::Thing, kind)?;
        let mut out = Vec::new();
        let mut tenants = vec![(Tenant::PLATFORM, "platform".to_string())];
        if let Some(org) = &self.org {
            tenants.push((Tenant::of_org(org.id), org.slug.clone()));
        }
        for (tenant, label) in tenants {
            if let Some(bytes) = self.txn.get(&tenant.schema(kind))? {
                let schema: Props = crate::graph::decode(Family::Schema.name(), &bytes)?;
                out.push((label, schema));
            }
        }
        Ok(out)
    }
}
