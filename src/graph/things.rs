//! Things: typed entities with a status lifecycle.

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::graph::{Audit, ReadTxn, check_json_size, check_text, limits, props};
use crate::keys::{Family, Tenant};
use crate::model::{Dim, Id, Props, Thing, TriggerOn};
use crate::ontology::roles::CUSTOMER_THING_TYPES;
use crate::ontology::{Action, Grant, Status, TypeKind};

/// What `CREATE THING type "name" {properties}` asks for. Created while the
/// session is in no org (the platform tenant), it is a global platform thing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewThing {
    pub kind: String,
    pub name: String,
    pub properties: Props,
}

/// What `UPDATE x SET …` asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThingUpdate {
    pub name: Option<String>,
    /// Replaces the whole properties map (applied before `set`).
    pub properties: Option<Props>,
    /// `properties.a.b = value` assignments: the path below `properties`.
    pub set: Vec<(Vec<String>, Value)>,
}

impl ReadTxn<'_> {
    pub(super) fn create_thing(&mut self, grant: Grant, mut new: NewThing) -> Result<Thing> {
        if grant == Grant::CustomerThingTypes && !CUSTOMER_THING_TYPES.contains(&new.kind.as_str())
        {
            return Err(Error::forbidden(format!(
                "customers may create only {} things",
                CUSTOMER_THING_TYPES.join(" and ")
            )));
        }
        if self.org.is_none() {
            self.authorize(Action::WriteGlobal)?;
        }
        self.check_type(TypeKind::Thing, &new.kind)?;
        check_text("a thing's name", &new.name, limits::NAME_BYTES)?;
        check_json_size("properties", &new.properties, limits::PROPERTIES_BYTES)?;
        self.check_properties(&new.kind, &mut new.properties)?;

        self.count_standard("things", 1)?;
        self.count_thing_type(&new.kind, 1)?;

        let now = self.now();
        let thing = Thing {
            id: self.new_id(Dim::Thing),
            kind: new.kind,
            name: new.name,
            properties: new.properties.into(),
            status: Status::Draft,
            org: self.org_id(),
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        let t = self.tenant();
        self.store(t.thing(thing.id), &thing, None)?;
        self.index(t.thing_by_type(&thing.kind, thing.id))?;
        self.index(t.thing_by_status(&thing.kind, thing.status, thing.id))?;
        let meta = props([("name", json!(thing.name))]);
        self.audit(
            Audit::new("entity_created", Some(thing.id), &thing.kind, meta)
                .firing(TriggerOn::Create),
        );
        self.created.insert(thing.id, t);
        Ok(thing)
    }

    pub(super) fn update_thing(&mut self, id: Id, update: ThingUpdate) -> Result<Thing> {
        let (mut thing, old_len) = self.live_thing_for_update(id)?;
        let mut changes = Props::new();
        if let Some(name) = update.name {
            check_text("a thing's name", &name, limits::NAME_BYTES)?;
            if name != thing.name {
                changes.insert("name".into(), json!({"from": thing.name, "to": name}));
                thing.name = name;
            }
        }
        let mut properties = std::mem::take(&mut thing.properties).into_inner();
        let before = Value::Object(properties.clone());
        if let Some(replacement) = update.properties {
            properties = replacement;
        }
        for (path, value) in update.set {
            set_path(&mut properties, &path, value)?;
        }
        check_json_size("properties", &properties, limits::PROPERTIES_BYTES)?;
        let after = Value::Object(properties.clone());
        if before != after {
            // Only a change of the properties is checked against the schemas:
            // a rename of a thing stored before its schema stays possible.
            self.check_properties(&thing.kind, &mut properties)?;
            changes.insert("properties".into(), json!({"from": before, "to": after}));
        }
        thing.properties = properties.into();
        thing.updated_at = self.now();
        let t = self.tenant();
        self.store(t.thing(id), &thing, Some(old_len))?;
        let meta = props([("changes", Value::Object(changes))]);
        self.audit(
            Audit::new("entity_updated", Some(id), &thing.kind, meta).firing(TriggerOn::Update),
        );
        Ok(thing)
    }

    pub(super) fn set_status(&mut self, id: Id, to: Status) -> Result<Thing> {
        let (mut thing, old_len) = self.live_thing_for_update(id)?;
        let from = thing.status;
        from.check_transition(to)?;
        thing.status = to;
        thing.updated_at = self.now();
        let t = self.tenant();
        self.store(t.thing(id), &thing, Some(old_len))?;
        self.unindex(t.thing_by_status(&thing.kind, from, id))?;
        self.index(t.thing_by_status(&thing.kind, to, id))?;
        let kind = if to == Status::Archived {
            "entity_archived"
        } else {
            "entity_updated"
        };
        let change = json!({"status": {"from": from.as_str(), "to": to.as_str()}});
        let meta = props([("changes", change)]);
        self.audit(Audit::new(kind, Some(id), &thing.kind, meta).firing(TriggerOn::Status));
        Ok(thing)
    }

    pub(super) fn delete_thing(&mut self, grant: Grant, id: Id) -> Result<()> {
        let (mut thing, old_len) = self.live_thing_for_update(id)?;
        if grant == Grant::OwnOnly && self.creator_of(id)? != Some(self.actor.person) {
            return Err(Error::forbidden(
                "org_user may delete only what they created",
            ));
        }
        self.created.remove(&id);
        let now = self.now();
        thing.deleted_at = Some(now);
        thing.updated_at = now;
        let t = self.tenant();
        self.store(t.thing(id), &thing, Some(old_len))?;
        self.unindex(t.thing_by_type(&thing.kind, id))?;
        self.unindex(t.thing_by_status(&thing.kind, thing.status, id))?;
        self.count_standard("things", -1)?;
        self.count_thing_type(&thing.kind, -1)?;
        let mut ended = self.hide_edges_of(id, now)?;
        if self.org.is_none() {
            // A global thing may be the target of any org's edges, kept in
            // that org's keys: end and hide them there too.
            for org in self.orgs()? {
                self.enter(Some(org))?;
                ended += self.hide_edges_of(id, now)?;
            }
            self.enter(None)?;
        }
        let meta = props([("connectionsEnded", json!(ended))]);
        self.audit(Audit::new("entity_deleted", Some(id), &thing.kind, meta));
        Ok(())
    }

    /// The person whose `entity_created` event made the entity.
    pub(crate) fn creator_of(&self, id: Id) -> Result<Option<Id>> {
        let prefix = self.tenant().events_by_target(id);
        // Oldest first: the creation event is the first one.
        if let Some(entry) = self.txn.scan_prefix(&prefix, false)?.next() {
            let (key, _) = entry?;
            if let crate::keys::Key::Tenant(_, crate::keys::TenantKey::EventByTarget { event, .. }) =
                crate::keys::decode(&key)?
                && let Some(e) = self.load::<crate::model::Event>(
                    Family::Event.name(),
                    &self.tenant().event(event),
                )?
                && e.kind == "entity_created"
            {
                return Ok(e.actor);
            }
        }
        Ok(None)
    }

    /// A live thing of this tenant, read for update.
    fn live_thing_for_update(&mut self, id: Id) -> Result<(Thing, usize)> {
        if id.dim() != Dim::Thing {
            return Err(Error::invalid(format!("{id} is not a thing")));
        }
        let key = self.tenant().thing(id);
        match self.load_for_update::<Thing>(Family::Thing.name(), &key)? {
            Some((thing, len)) if thing.deleted_at.is_none() => Ok((thing, len)),
            _ => Err(Error::not_found(format!(
                "thing {id} does not exist in organization {}",
                self.org_label()
            ))),
        }
    }

    // ---- reading ----

    /// A live thing visible to the actor: of this org, or a global platform
    /// thing. Customers see only published things.
    pub fn thing(&self, id: Id) -> Result<Option<Thing>> {
        if id.dim() != Dim::Thing {
            return Ok(None);
        }
        let mut found: Option<Thing> = self.load(Family::Thing.name(), &self.tenant().thing(id))?;
        if found.is_none() && self.tenant() != Tenant::PLATFORM {
            found = self.load(Family::Thing.name(), &Tenant::PLATFORM.thing(id))?;
        }
        Ok(found.filter(|t| t.deleted_at.is_none() && self.may_see(t)))
    }

    /// Several things of this org at once, as `thing` reads each (one
    /// batched read; global things are looked up one by one).
    pub fn things(&self, ids: &[Id]) -> Result<Vec<Option<Thing>>> {
        let keys: Vec<Vec<u8>> = ids.iter().map(|id| self.tenant().thing(*id)).collect();
        let values = self.txn.get_many(&keys)?;
        ids.iter()
            .zip(values)
            .map(|(id, value)| match value {
                Some(bytes) if id.dim() == Dim::Thing => {
                    let t: Thing = crate::graph::decode(Family::Thing.name(), &bytes)?;
                    Ok(Some(t).filter(|t| t.deleted_at.is_none() && self.may_see(t)))
                }
                _ => self.thing(*id),
            })
            .collect()
    }

    fn may_see(&self, thing: &Thing) -> bool {
        match crate::ontology::roles::grant(self.actor.role, Action::ReadAll) {
            Grant::Allow => true,
            _ => thing.status == Status::Published || thing.org.is_none(),
        }
    }

    /// Things of a type (and status), this org's first, then global ones, by
    /// creation. Lazy: stop pulling to stop reading.
    pub fn things_of_type<'s>(
        &'s self,
        kind: &str,
        status: Option<Status>,
    ) -> Result<impl Iterator<Item = Result<Thing>> + 's> {
        self.things_of_type_first(kind, status, crate::graph::FIRST_BATCH)
    }

    /// `things_of_type` reading the first `first` records in one batch:
    /// for a caller that knows how many it will take (a `LIMIT`), so that
    /// it reads neither more nor in more round trips.
    pub fn things_of_type_first<'s>(
        &'s self,
        kind: &str,
        status: Option<Status>,
        first: usize,
    ) -> Result<impl Iterator<Item = Result<Thing>> + 's> {
        let mut tenants = vec![self.tenant()];
        if self.tenant() != Tenant::PLATFORM {
            tenants.push(Tenant::PLATFORM);
        }
        let mut scans = Vec::new();
        for t in tenants {
            let prefix = match status {
                Some(s) => t.things_of_status(kind, s),
                None => t.things_of_type(kind),
            };
            scans.push(self.txn.scan_prefix(&prefix, false)?);
        }
        Ok(crate::graph::batched(
            scans.into_iter().flatten(),
            first,
            move |entries| self.things_of_index_entries(entries),
        ))
    }

    /// Every live thing of this org (not global ones), by creation.
    pub fn all_things<'s>(&'s self) -> Result<impl Iterator<Item = Result<Thing>> + 's> {
        let scan = self.txn.scan_prefix(&self.tenant().things(), false)?;
        Ok(scan.filter_map(move |entry| {
            let thing =
                entry.and_then(|(_, v)| crate::graph::decode::<Thing>(Family::Thing.name(), &v));
            match thing {
                Ok(t) if t.deleted_at.is_none() && self.may_see(&t) => Some(Ok(t)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            }
        }))
    }

    /// The things a batch of index entries points at, read together
    /// (one multi-get instead of a get each); None for one this reader
    /// may not see. A missing or deleted thing is a damaged index.
    fn things_of_index_entries(
        &self,
        entries: Vec<Result<(Vec<u8>, Vec<u8>)>>,
    ) -> Vec<Result<Option<Thing>>> {
        let ids: Vec<Result<(Id, Vec<u8>)>> = entries
            .into_iter()
            .map(|entry| {
                let (key, _) = entry?;
                let tail: [u8; 16] = key
                    .get(key.len().saturating_sub(16)..)
                    .and_then(|t| t.try_into().ok())
                    .ok_or_else(|| Error::corruption("thing index", "short key"))?;
                let id = Id::from_raw(Dim::Thing, u128::from_be_bytes(tail));
                let tenant = crate::keys::tenant_of(&key).unwrap_or(Tenant::PLATFORM);
                Ok((id, tenant.thing(id)))
            })
            .collect();
        let keys: Vec<Vec<u8>> = ids
            .iter()
            .filter_map(|r| r.as_ref().ok().map(|(_, key)| key.clone()))
            .collect();
        let mut values = match self.txn.get_many(&keys) {
            Ok(values) => values.into_iter(),
            Err(e) => return vec![Err(e)],
        };
        ids.into_iter()
            .map(|r| {
                let (id, _) = r?;
                let thing = values
                    .next()
                    .flatten()
                    .map(|bytes| crate::graph::decode::<Thing>(Family::Thing.name(), &bytes))
                    .transpose()?;
                match thing {
                    Some(t) if t.deleted_at.is_none() => Ok(self.may_see(&t).then_some(t)),
                    _ => Err(Error::corruption(
                        "thing index",
                        format!("points at missing or deleted {id}"),
                    )),
                }
            })
            .collect()
    }
}

/// Sets `properties.a.b…` to a value, creating objects on the way.
fn set_path(properties: &mut Props, path: &[String], value: Value) -> Result<()> {
    let Some((last, parents)) = path.split_last() else {
        return Err(Error::invalid("an empty property path"));
    };
    let mut map = properties;
    for (depth, key) in parents.iter().enumerate() {
        let slot = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Props::new()));
        map = match slot {
            Value::Object(inner) => inner,
            _ => {
                return Err(Error::invalid(format!(
                    "properties.{} is not an object",
                    path[..=depth].join(".")
                )));
            }
        };
    }
    map.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_path_creates_objects_and_refuses_scalars() {
        let mut p = Props::new();
        set_path(&mut p, &["a".into(), "b".into()], json!(1)).unwrap();
        assert_eq!(Value::Object(p.clone()), json!({"a": {"b": 1}}));
        let err = set_path(&mut p, &["a".into(), "b".into(), "c".into()], json!(2)).unwrap_err();
        assert_eq!(err.code, crate::error::ErrorCode::InvalidArgument);
    }
}
