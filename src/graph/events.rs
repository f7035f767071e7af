//! Events: the append-only audit log. The engine writes one for every
//! mutation, in the same commit; `EMIT` adds custom ones. Indexed by time
//! (the id), actor, target and type; read newest first.

use serde::ser::{Serialize, SerializeMap, SerializeStruct, Serializer};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::graph::{ReadTxn, check_json_size, limits};
use crate::keys::Family;
use crate::model::{Event, Id, Millis, Org, Props, TriggerOn};
use crate::ontology::{Action, Grant, TypeKind};

/// Event types the engine writes itself: emitting them by hand would let the
/// audit log lie, so `EMIT` refuses them.
pub const ENGINE_EVENTS: &[&str] = &[
    "entity_created",
    "entity_updated",
    "entity_deleted",
    "entity_archived",
    "connection_created",
    "connection_ended",
    "organization_created",
    "organization_updated",
    "user_joined_org",
    "user_removed_from_org",
    "user_login",
];

/// What `EVENTS WHERE …` asks for. Newest first, at most `limit`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    pub target: Option<Id>,
    /// Some(None) asks for events of the `system` actor.
    pub actor: Option<Option<Id>>,
    pub kind: Option<String>,
    /// Inclusive bounds on the timestamp.
    pub since: Option<Millis>,
    pub until: Option<Millis>,
    pub limit: usize,
}

impl EventFilter {
    /// Whether `event` passes the filter (its limit aside).
    pub fn matches(&self, event: &Event) -> bool {
        self.target.is_none_or(|x| event.target == Some(x))
            && self.actor.is_none_or(|a| event.actor == a)
            && self.kind.as_ref().is_none_or(|k| &event.kind == k)
            && self.since.is_none_or(|s| event.timestamp >= s)
            && self.until.is_none_or(|u| event.timestamp <= u)
    }
}

/// An event as reads show it: `EVENTS` rows hold these fields, and a
/// subscription line holds this object. The `system` actor is named so.
pub fn event_json(e: &Event) -> Value {
    let mut out = serde_json::Map::with_capacity(7);
    out.insert("id".into(), json!(e.id));
    out.insert("type".into(), json!(e.kind));
    out.insert(
        "actor".into(),
        e.actor.map_or(json!("system"), |a| json!(a)),
    );
    out.insert("target".into(), e.target.map_or(Value::Null, |x| json!(x)));
    out.insert("timestamp".into(), json!(e.timestamp));
    out.insert("metadata".into(), Value::Object(e.metadata.clone()));
    out.insert("seq".into(), e.seq.map_or(Value::Null, |s| json!(s)));
    Value::Object(out)
}

/// A chunk of an org's events in commit order (`ReadTxn::events_after`).
#[derive(Debug, Default)]
pub struct EventsAfter {
    /// The matching events, in commit order.
    pub events: Vec<Event>,
    /// Where the scan stopped: the position of the last entry it looked
    /// at, matching or not (None if it looked at none).
    pub last: Option<(u64, Id)>,
    /// Whether it reached the end of the log (else: its limit).
    pub done: bool,
}

/// The event that records one step of a mutation, queued by the step
/// (`ReadTxn::audit`) and logged by the pipeline after it, followed by the
/// triggers it fires.
pub(crate) struct Audit {
    pub kind: String,
    pub target: Option<Id>,
    pub entity_type: String,
    pub metadata: Props,
    /// Whose log holds it.
    pub log: AuditLog,
    /// The triggers on (this, the entity type) fire for the target.
    pub fires: Option<TriggerOn>,
}

/// Whose log an event goes to.
pub(crate) enum AuditLog {
    /// The transaction's org (or the platform's, outside one).
    Current,
    /// This org's (a new org's creation, a change of an org); the
    /// transaction stays in it when it is the current one.
    Org(Box<Org>),
    /// The platform's (vocabulary changes).
    Platform,
}

impl Audit {
    pub(crate) fn new(kind: &str, target: Option<Id>, entity_type: &str, metadata: Props) -> Audit {
        Audit {
            kind: kind.to_string(),
            target,
            entity_type: entity_type.to_string(),
            metadata,
            log: AuditLog::Current,
            fires: None,
        }
    }

    pub(crate) fn firing(self, on: TriggerOn) -> Audit {
        Audit {
            fires: Some(on),
            ..self
        }
    }

    pub(crate) fn in_log(self, log: AuditLog) -> Audit {
        Audit { log, ..self }
    }
}

impl ReadTxn<'_> {
    /// Queues the event that records a step of the running mutation.
    pub(crate) fn audit(&mut self, audit: Audit) {
        self.audits.push(audit);
    }

    /// The pipeline's last steps for every event the mutation's own step
    /// queued, in order: log it (in its log), then fire its triggers.
    /// Returns the last event logged (EMIT's result).
    pub(crate) fn record_audits(&mut self) -> Result<Option<Event>> {
        let mut last = None;
        for audit in std::mem::take(&mut self.audits) {
            // The org to go back to after logging elsewhere.
            let back = match &audit.log {
                AuditLog::Current => None,
                AuditLog::Org(org) => {
                    let stay = self.org.as_ref().is_some_and(|o| o.id == org.id);
                    let previous = self.org.as_deref().cloned();
                    self.enter(Some(Org::clone(org)))?;
                    (!stay).then_some(previous)
                }
                AuditLog::Platform => {
                    let previous = self.org.as_deref().cloned();
                    self.enter(None)?;
                    Some(previous)
                }
            };
            let org = self.org_id();
            let logged = self.write_event(
                &audit.kind,
                audit.target,
                &audit.entity_type,
                &audit.metadata,
            );
            if let Some(previous) = back {
                self.enter(previous)?;
            }
            let (id, timestamp) = logged?;
            if let (Some(on), Some(target)) = (audit.fires, audit.target) {
                self.fire_triggers(on, &audit.entity_type, target, &audit.entity_type)?;
            }
            last = Some((audit, id, timestamp, org));
        }
        Ok(last.map(|(audit, id, timestamp, org)| {
            let mut metadata = Props::new();
            metadata.insert("org".into(), org.map_or(Value::Null, |id| json!(id)));
            metadata.insert("entityType".into(), json!(audit.entity_type));
            metadata.extend(audit.metadata);
            Event {
                id,
                kind: audit.kind,
                actor: Some(self.actor.person),
                target: audit.target,
                timestamp,
                metadata,
                seq: None,
            }
        }))
    }

    /// Forgets what a failed mutation queued.
    pub(crate) fn forget_audits(&mut self) {
        self.audits.clear();
    }

    /// Writes one event with its index entries. `metadata` always carries the
    /// org and the entity type.
    pub(crate) fn log(
        &mut self,
        kind: &str,
        target: Option<Id>,
        entity_type: &str,
        extra: Props,
    ) -> Result<()> {
        self.write_event(kind, target, entity_type, &extra)
            .map(|_| ())
    }

    fn write_event(
        &mut self,
        kind: &str,
        target: Option<Id>,
        entity_type: &str,
        extra: &Props,
    ) -> Result<(Id, Millis)> {
        let event = StoredEvent {
            id: self.new_id(crate::model::Dim::Event),
            kind,
            actor: Some(self.actor.person),
            target,
            timestamp: self.now(),
            org: self.org_id(),
            entity_type,
            extra,
        };
        let t = self.tenant();
        self.store(t.event(event.id), &event, None)?;
        self.index(t.event_by_actor(event.actor, event.id))?;
        if let Some(target) = target {
            self.index(t.event_by_target(target, event.id))?;
        }
        self.index(t.event_by_type(kind, event.id))?;
        Ok((event.id, event.timestamp))
    }

    pub(super) fn emit(&mut self, kind: &str, target: Option<Id>, metadata: Props) -> Result<()> {
        self.check_type(TypeKind::Event, kind)?;
        if ENGINE_EVENTS.contains(&kind) {
            return Err(Error::invalid(format!(
                "{kind} events are written by the engine only"
            )));
        }
        check_json_size("event metadata", &metadata, limits::METADATA_BYTES)?;
        let entity_type = match target {
            Some(id) => self.entity_type_of(id)?,
            None => "none".to_string(),
        };
        if kind == "inference_request" {
            self.count_monthly("inference", 1)?;
        }
        self.audit(Audit::new(kind, target, &entity_type, metadata));
        Ok(())
    }

    /// The type name of an entity an event may target; `NOT_FOUND` if absent.
    fn entity_type_of(&self, id: Id) -> Result<String> {
        use crate::model::Dim;
        let missing = || Error::not_found(format!("{id} does not exist in this organization"));
        match id.dim() {
            Dim::Thing => self.thing(id)?.map(|t| t.kind).ok_or_else(missing),
            Dim::Person => self
                .person(id)?
                .map(|_| "person".to_string())
                .ok_or_else(missing),
            Dim::Knowledge => self
                .knowledge(id)?
                .map(|_| "knowledge".to_string())
                .ok_or_else(missing),
            Dim::Connection => self.connection(id)?.map(|c| c.kind).ok_or_else(missing),
            Dim::Org | Dim::Event | Dim::Token => {
                Err(Error::invalid(format!("{id} cannot be an event target")))
            }
        }
    }

    pub fn event(&self, id: Id) -> Result<Option<Event>> {
        let event: Option<Event> = self.load(Family::Event.name(), &self.tenant().event(id))?;
        Ok(event.filter(|e| self.may_see_event(e)))
    }

    fn may_see_event(&self, event: &Event) -> bool {
        match crate::ontology::roles::grant(self.actor.role, Action::ReadAll) {
            Grant::Allow => true,
            _ => event.actor == Some(self.actor.person),
        }
    }

    /// The filter narrowed to what the person may read: customers read the
    /// events they are the actor of, and only those. None: nothing.
    pub fn visible_events(&self, filter: &EventFilter) -> Option<EventFilter> {
        let mut filter = filter.clone();
        if crate::ontology::roles::grant(self.actor.role, Action::ReadAll) != Grant::Allow {
            match filter.actor {
                Some(Some(a)) if a == self.actor.person => {}
                Some(_) => return None,
                None => filter.actor = Some(Some(self.actor.person)),
            }
        }
        Some(filter)
    }

    /// Events matching the filter, newest first. The first step uses the
    /// most selective index given: target, then actor, then type, then time.
    pub fn events(&self, filter: &EventFilter) -> Result<Vec<Event>> {
        let Some(filter) = self.visible_events(filter) else {
            return Ok(Vec::new());
        };
        let t = self.tenant();
        let (prefix, index) = if let Some(target) = filter.target {
            (t.events_by_target(target), true)
        } else if let Some(actor) = filter.actor {
            (t.events_by_actor(actor), true)
        } else if let Some(kind) = &filter.kind {
            (t.events_by_type(kind), true)
        } else {
            (t.events(), false)
        };
        let lower = with_time(&prefix, filter.since.unwrap_or(0), false);
        let upper = match filter.until {
            Some(until) => with_time(&prefix, until, true),
            None => crate::keys::prefix_end(&prefix),
        };
        let mut out = Vec::new();
        for entry in self.txn.scan_range(&lower, &upper, true)? {
            if out.len() >= filter.limit {
                break;
            }
            let (key, value) = entry?;
            let event: Event = if index {
                let id = event_id_suffix(&key)?;
                match self.load(Family::Event.name(), &t.event(id))? {
                    Some(e) => e,
                    None => {
                        return Err(Error::corruption(
                            "event index",
                            format!("points at missing {id}"),
                        ));
                    }
                }
            } else {
                crate::graph::decode(Family::Event.name(), &value)?
            };
            if filter.matches(&event) {
                out.push(event);
            }
        }
        Ok(out)
    }

    /// The org's events after position `after` in commit order — after
    /// commit `after.0`, or after event `after.1` of it — that pass
    /// `filter` (already narrowed by `visible_events`), looking at no more
    /// than `limit` entries and the rest of the last commit they are in.
    /// Events written before `seq` existed have no position and are not
    /// found here.
    pub fn events_after(
        &self,
        filter: &EventFilter,
        after: (u64, Option<Id>),
        limit: usize,
    ) -> Result<EventsAfter> {
        let t = self.tenant();
        let lower = match after {
            (seq, Some(id)) => {
                let mut k = t.event_by_seq(seq, id);
                k.push(0); // the first key past it
                k
            }
            (seq, None) => match seq.checked_add(1) {
                Some(next) => t.events_from_seq(next),
                None => {
                    return Ok(EventsAfter {
                        done: true,
                        ..Default::default()
                    });
                }
            },
        };
        let upper = crate::keys::prefix_end(&t.events_by_seq());
        let mut out = EventsAfter::default();
        for (looked, entry) in self.txn.scan_range(&lower, &upper, false)?.enumerate() {
            let (key, _) = entry?;
            let (seq, id) = seq_entry(&key)?;
            // Past the limit, the commit in progress is finished: a chunk
            // holds whole commits.
            if looked >= limit.max(1) && out.last.is_some_and(|(s, _)| s != seq) {
                return Ok(out);
            }
            out.last = Some((seq, id));
            let event: Event = self
                .load(Family::Event.name(), &t.event(id))?
                .ok_or_else(|| {
                    Error::corruption("event-by-seq index", format!("points at missing {id}"))
                })?;
            if filter.matches(&event) {
                out.events.push(event);
            }
        }
        out.done = true;
        Ok(out)
    }
}

/// An event as `write_event` stores it: the bytes of `Event` whose metadata
/// is `{org, entityType}` extended by `extra` (whose keys replace those two
/// in place, as `Map::extend` does), without building that map.
struct StoredEvent<'a> {
    id: Id,
    kind: &'a str,
    actor: Option<Id>,
    target: Option<Id>,
    timestamp: Millis,
    org: Option<Id>,
    entity_type: &'a str,
    extra: &'a Props,
}

impl Serialize for StoredEvent<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut event = s.serialize_struct("Event", 6)?;
        event.serialize_field("id", &self.id)?;
        event.serialize_field("type", self.kind)?;
        event.serialize_field("actor", &self.actor)?;
        match &self.target {
            Some(target) => event.serialize_field("target", target)?,
            None => event.skip_field("target")?,
        }
        event.serialize_field("timestamp", &self.timestamp)?;
        event.serialize_field("metadata", &StoredMetadata(self))?;
        event.end()
    }
}

struct StoredMetadata<'e, 'a>(&'e StoredEvent<'a>);

impl Serialize for StoredMetadata<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let e = self.0;
        let mut map = s.serialize_map(Some(2 + e.extra.len()))?;
        match e.extra.get("org") {
            Some(v) => map.serialize_entry("org", v)?,
            None => map.serialize_entry("org", &e.org)?,
        }
        match e.extra.get("entityType") {
            Some(v) => map.serialize_entry("entityType", v)?,
            None => map.serialize_entry("entityType", e.entity_type)?,
        }
        for (k, v) in e.extra {
            if k != "org" && k != "entityType" {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

/// The key in an event index where ids of time `ms` begin (or, with `after`,
/// just past the ids of that millisecond).
fn with_time(prefix: &[u8], ms: Millis, after: bool) -> Vec<u8> {
    let ms = ms.max(0) as u128 + u128::from(after);
    let mut key = prefix.to_vec();
    key.extend_from_slice(&(ms.min((1u128 << 48) - 1) << 80).to_be_bytes());
    key
}

/// The position (seq, event) of an event-by-seq entry: its last 24 bytes.
fn seq_entry(key: &[u8]) -> Result<(u64, Id)> {
    let bad = || Error::corruption("event-by-seq index", "short key");
    let tail = key.get(key.len().saturating_sub(24)..).ok_or_else(bad)?;
    let seq: [u8; 8] = tail
        .get(..8)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(bad)?;
    Ok((u64::from_be_bytes(seq), event_id_suffix(key)?))
}

fn event_id_suffix(key: &[u8]) -> Result<Id> {
    let tail: [u8; 16] = key
        .get(key.len().saturating_sub(16)..)
        .and_then(|t| t.try_into().ok())
        .ok_or_else(|| Error::corruption("event index", "short key"))?;
    Ok(Id::from_raw(
        crate::model::Dim::Event,
        u128::from_be_bytes(tail),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored bytes must stay those of the `Event` record.
    #[test]
    fn stored_events_encode_as_event_records() {
        let extras = [
            json!({}),
            json!({"name": "x \" y", "n": 1.5}),
            json!({"from": "thg_1", "to": "thg_2", "changes": {"a": [1, {"b": null}]}}),
            json!({"entityType": "override", "z": 1, "org": "other", "a": 2}),
        ];
        for (i, extra) in extras.iter().enumerate() {
            let extra = extra.as_object().cloned().unwrap_or_default();
            let org = (i % 2 == 0).then(|| Id::generate(crate::model::Dim::Org));
            let target = (i % 3 != 2).then(|| Id::generate(crate::model::Dim::Thing));
            let stored = StoredEvent {
                id: Id::generate(crate::model::Dim::Event),
                kind: "entity_created",
                actor: Some(Id::generate(crate::model::Dim::Person)),
                target,
                timestamp: 1_700_000_000_000 + i as i64,
                org,
                entity_type: "course",
                extra: &extra,
            };
            let mut metadata = Props::new();
            metadata.insert("org".into(), org.map_or(Value::Null, |id| json!(id)));
            metadata.insert("entityType".into(), json!("course"));
            metadata.extend(extra.clone());
            let record = Event {
                id: stored.id,
                kind: stored.kind.to_string(),
                actor: stored.actor,
                target,
                timestamp: stored.timestamp,
                metadata,
                seq: None,
            };
            assert_eq!(
                crate::graph::encode(&stored).unwrap(),
                serde_json::to_vec(&record).unwrap(),
                "extra {i}"
            );
        }
    }
}
