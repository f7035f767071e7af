//! The keys a stored record brings with it, for a bulk load (`onedb
//! load`): each record with its index entries, exactly as the mutation
//! pipeline writes them, and usage counted once per tenant at the end
//! instead of per record. The records are checked by the caller; `onedb
//! check` (validate.rs) holds the same rules from the other side.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::graph::connections::edge_entries;
use crate::graph::usage::type_counter;
use crate::keys::{self, Tenant};
use crate::model::time::month_of;
use crate::model::{
    Connection, Event, Id, JunctionRole, Knowledge, Org, Person, PersonStatus, Props, Thing, Token,
    Trigger,
};
use crate::ontology::TypeKind;
use crate::storage::{Stage, Storage};

/// What a tenant's usage counters and settings will hold.
#[derive(Default)]
struct TenantTotals {
    counters: BTreeMap<String, i64>,
    embedding_dim: Option<usize>,
}

impl TenantTotals {
    fn add(&mut self, counter: &str, delta: i64) {
        match self.counters.get_mut(counter) {
            Some(n) => *n += delta,
            None => {
                self.counters.insert(counter.to_string(), delta);
            }
        }
    }
}

/// A bulk load's writer: records go to a `Stage`, usage is summed per
/// tenant, and `finish` adds the counters, settings and the commit
/// counter before the stage is ingested in one step.
pub(crate) struct BulkWriter {
    stage: Stage,
    totals: BTreeMap<Tenant, TenantTotals>,
    /// The highest event `seq` loaded: the commit counter must pass it.
    max_seq: u64,
}

impl BulkWriter {
    pub fn new(storage: &Storage) -> Result<BulkWriter> {
        Ok(BulkWriter {
            stage: storage.stage()?,
            totals: BTreeMap::new(),
            max_seq: 0,
        })
    }

    fn totals(&mut self, tenant: Tenant) -> &mut TenantTotals {
        self.totals.entry(tenant).or_default()
    }

    /// A record key and its JSON, counted toward `storage_bytes` (an event
    /// as its transaction wrote it, before the commit leader's `seq`).
    fn record(&mut self, tenant: Tenant, key: Vec<u8>, value: Vec<u8>, stamp: usize) -> Result<()> {
        let size = (key.len() + value.len() - stamp) as i64;
        self.totals(tenant).add("storage_bytes", size);
        self.stage.put(key, value)
    }

    pub fn put_type(&mut self, kind: TypeKind, name: &str, category: &str) -> Result<()> {
        self.stage.put(keys::vocab(kind, name), category.as_bytes())
    }

    pub fn put_org(&mut self, org: &Org) -> Result<()> {
        self.stage
            .put(keys::org(org.id), crate::graph::encode(org)?)?;
        self.stage
            .put(keys::org_slug(&org.slug), org.id.raw().to_be_bytes())?;
        // Every tenant has its counters, even at zero.
        self.totals(Tenant::of_org(org.id));
        Ok(())
    }

    pub fn put_person(&mut self, t: Tenant, person: &Person) -> Result<()> {
        self.record(t, t.person(person.id), crate::graph::encode(person)?, 0)?;
        if person.status == PersonStatus::Active {
            self.totals(t).add("people", 1);
            let mut entry = Vec::with_capacity(32);
            entry.extend_from_slice(&person.org.map_or(0, |o| o.raw()).to_be_bytes());
            entry.extend_from_slice(&person.id.raw().to_be_bytes());
            self.stage.put(keys::email(&person.email), entry)?;
        }
        Ok(())
    }

    pub fn put_thing(&mut self, t: Tenant, thing: &Thing) -> Result<()> {
        self.record(t, t.thing(thing.id), crate::graph::encode(thing)?, 0)?;
        if thing.deleted_at.is_none() {
            let totals = self.totals(t);
            totals.add("things", 1);
            totals.add(&type_counter(&thing.kind), 1);
            self.stage
                .put(t.thing_by_type(&thing.kind, thing.id), Vec::new())?;
            self.stage.put(
                t.thing_by_status(&thing.kind, thing.status, thing.id),
                Vec::new(),
            )?;
        }
        Ok(())
    }

    /// `hidden`: an end is deleted, so the edge shows at no time.
    pub fn put_connection(&mut self, t: Tenant, c: &Connection, hidden: bool) -> Result<()> {
        self.record(t, t.connection(c.id), crate::graph::encode(c)?, 0)?;
        if c.ended_at.is_none() {
            self.totals(t).add("connections", 1);
        }
        for (key, value) in edge_entries(t, c, hidden) {
            self.stage.put(key, value)?;
        }
        Ok(())
    }

    pub fn put_knowledge(&mut self, t: Tenant, k: &Knowledge) -> Result<()> {
        self.record(t, t.knowledge(k.id), crate::graph::encode(k)?, 0)?;
        if let Some(e) = &k.embedding {
            self.totals(t).embedding_dim = Some(e.len());
        }
        if k.deleted_at.is_none() {
            self.totals(t).add("knowledge", 1);
            if let Some(source) = k.source {
                self.stage
                    .put(t.knowledge_by_source(source, k.id), Vec::new())?;
            }
        }
        Ok(())
    }

    pub fn put_link(
        &mut self,
        t: Tenant,
        knowledge: Id,
        thing: Id,
        role: JunctionRole,
    ) -> Result<()> {
        let role = role.as_str().as_bytes().to_vec();
        self.stage
            .put(t.junction_out(knowledge, thing), role.clone())?;
        self.stage.put(t.junction_in(thing, knowledge), role)
    }

    pub fn put_event(&mut self, t: Tenant, e: &Event) -> Result<()> {
        let stamp = e.seq.map_or(0, keys::event_stamp_len);
        self.record(t, t.event(e.id), crate::graph::encode(e)?, stamp)?;
        self.stage
            .put(t.event_by_actor(e.actor, e.id), Vec::new())?;
        if let Some(target) = e.target {
            self.stage
                .put(t.event_by_target(target, e.id), Vec::new())?;
        }
        self.stage.put(t.event_by_type(&e.kind, e.id), Vec::new())?;
        if let Some(seq) = e.seq {
            self.stage.put(t.event_by_seq(seq, e.id), Vec::new())?;
            self.max_seq = self.max_seq.max(seq);
        }
        if e.kind == "inference_request" {
            self.totals(t)
                .add(&format!("inference:{}", month_of(e.timestamp)), 1);
        }
        Ok(())
    }

    pub fn put_token(&mut self, t: Tenant, token: &Token) -> Result<()> {
        self.stage
            .put(t.token(token.id), crate::graph::encode(token)?)?;
        self.stage
            .put(keys::token_home(token.id), t.raw().to_be_bytes())
    }

    pub fn put_schema(&mut self, t: Tenant, kind: &str, schema: &Props) -> Result<()> {
        self.stage
            .put(t.schema(kind), crate::graph::encode(schema)?)
    }

    pub fn put_triggers(&mut self, t: Tenant, triggers: &[Trigger]) -> Result<()> {
        self.stage
            .put(t.triggers(), crate::graph::encode(&triggers)?)
    }

    /// Adds the usage counters, the embedding settings and the commit
    /// counter (past every loaded event's `seq`, and marking the index log
    /// pruned through it, so the search indexes are rebuilt from the store
    /// once, on the next open), then ingests everything at once. Returns
    /// the commit number the load became.
    pub fn finish(mut self, storage: &Storage) -> Result<u64> {
        for (tenant, totals) in std::mem::take(&mut self.totals) {
            for (name, value) in &totals.counters {
                self.stage
                    .put(tenant.counter(name), keys::encode_i64(*value))?;
            }
            if let Some(dim) = totals.embedding_dim {
                self.stage.put(
                    tenant.setting(crate::graph::knowledge::EMBEDDING_DIM),
                    keys::encode_i64(dim as i64),
                )?;
            }
        }
        let commit = storage.last_commit()?.max(self.max_seq) + 1;
        self.stage
            .put(keys::commit_seq(), keys::encode_u64(commit))?;
        let mut pruned = keys::encode_u64(commit);
        pruned.extend_from_slice(&keys::encode_u64(commit));
        self.stage.put(keys::index_log_pruned(), pruned)?;
        storage.ingest(self.stage)?;
        Ok(commit)
    }
}
