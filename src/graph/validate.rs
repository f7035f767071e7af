//! `validate()`: a whole-database check. Every key decodes under a valid
//! tenant, every index entry points at a live record that agrees with it,
//! every record has its index entries, every edge has its reverse entry, and
//! usage equals a recount of what is stored, and every live thing satisfies
//! the property schemas of its type (the platform's and its org's).
//! Reachable as `onedb check`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;

use crate::error::Result;
use crate::graph::connections::EdgeValue;
use crate::graph::decode;
use crate::graph::knowledge::parse_role;
use crate::graph::usage::type_counter;
use crate::keys::{self, Direction, Key, Tenant, TenantKey};
use crate::model::{
    Connection, Event, Id, Knowledge, Org, Person, PersonStatus, Thing, Token, Trigger,
    time::month_of,
};
use crate::ontology::{PropertySchema, Vocabulary};
use crate::storage::{Scope, Storage};

/// Problems shown in full; past this only counted.
const MAX_PROBLEMS: usize = 1000;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub keys: u64,
    pub tenants: usize,
    pub things: u64,
    pub connections: u64,
    pub events: u64,
    pub problems: Vec<String>,
    pub more_problems: u64,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, text: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(text);
        } else {
            self.more_problems += 1;
        }
    }
}

/// What one tenant holds, gathered in key order (records sort before their
/// index entries, so each entry can be checked as it comes).
#[derive(Default)]
struct TenantState {
    things: HashMap<Id, Thing>,
    people: HashMap<Id, Person>,
    connections: HashMap<Id, Connection>,
    events: HashMap<Id, Event>,
    knowledge: HashMap<Id, Knowledge>,
    by_type: HashSet<Id>,
    by_status: HashSet<Id>,
    edges: HashSet<(Direction, Id)>,
    event_index: HashSet<(u8, Id)>,
    /// Commit-order entries: event → seq.
    by_seq: HashMap<Id, u64>,
    by_source: HashSet<Id>,
    junction_out: BTreeSet<(Id, Id, String)>,
    junction_in: BTreeSet<(Id, Id, String)>,
    counters: BTreeMap<String, i64>,
    storage_bytes: i64,
    embedding_dim: Option<i64>,
    /// Property schemas stored under the tenant, compiled, by type.
    schemas: HashMap<String, PropertySchema>,
}

/// The platform tenant's schemas, which hold in every org.
type PlatformSchemas = HashMap<String, PropertySchema>;

pub(crate) fn run(storage: &Storage, vocabulary: &Vocabulary) -> Result<Report> {
    let txn = storage.read(Scope::platform(Tenant::PLATFORM));
    let mut report = Report::default();
    let mut orgs: HashMap<u128, Org> = HashMap::new();
    let mut slugs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut emails: Vec<(String, Vec<u8>)> = Vec::new();
    let mut people_seen: HashMap<(u128, Id), String> = HashMap::new();
    // API tokens: their platform entries, and where their records are.
    let mut token_homes: Vec<(Id, Vec<u8>)> = Vec::new();
    let mut tokens_seen: HashMap<Id, u128> = HashMap::new();
    let mut current: Option<(Tenant, TenantState)> = None;
    // Deleted global things (the platform tenant sorts first): org edges to
    // them must be hidden.
    let mut global_deleted: HashSet<Id> = HashSet::new();
    // The platform tenant sorts first: its schemas are known before any
    // org's things are checked.
    let mut platform_schemas = PlatformSchemas::new();

    for entry in txn.scan_range(&[], &[0xFF], false)? {
        let (key, value) = entry?;
        report.keys += 1;
        let decoded = match keys::decode(&key) {
            Ok(k) => k,
            Err(e) => {
                report.problem(e.message);
                continue;
            }
        };
        let Key::Tenant(tenant, entry) = decoded else {
            match decoded {
                Key::Org(id) => match decode::<Org>("org", &value) {
                    Ok(org) if org.id == id => {
                        orgs.insert(id.raw(), org);
                    }
                    Ok(_) => report.problem(format!("org record {id} holds another id")),
                    Err(e) => report.problem(e.message),
                },
                Key::OrgSlug(slug) => slugs.push((slug, value)),
                Key::Email(email) => emails.push((email, value)),
                Key::TokenHome(id) => token_homes.push((id, value)),
                Key::IndexLog(n) => {
                    if let Err(e) = keys::decode_changes(&value) {
                        report.problem(format!("index log entry {n}: {}", e.message));
                    }
                }
                _ => {}
            }
            continue;
        };
        if current.as_ref().is_none_or(|(t, _)| *t != tenant) {
            if let Some((t, mut state)) = current.take() {
                if t == Tenant::PLATFORM {
                    global_deleted.extend(
                        state
                            .things
                            .values()
                            .filter(|t| t.deleted_at.is_some())
                            .map(|t| t.id),
                    );
                    finish(
                        t,
                        &mut state,
                        &PlatformSchemas::new(),
                        &mut report,
                        &mut people_seen,
                    );
                    platform_schemas = std::mem::take(&mut state.schemas);
                } else {
                    finish(
                        t,
                        &mut state,
                        &platform_schemas,
                        &mut report,
                        &mut people_seen,
                    );
                }
            }
            if tenant != Tenant::PLATFORM && !orgs.contains_key(&tenant.raw()) {
                report.problem(format!(
                    "keys under tenant {:032x}, which is no organization",
                    tenant.raw()
                ));
            }
            report.tenants += 1;
            current = Some((tenant, TenantState::default()));
        }
        if let TenantKey::Token(id) = &entry {
            tokens_seen.insert(*id, tenant.raw());
        }
        if let Some((_, state)) = current.as_mut() {
            check_entry(
                state,
                &key,
                entry,
                &value,
                vocabulary,
                &global_deleted,
                &mut report,
            );
        }
    }
    if let Some((t, mut state)) = current.take() {
        let platform = if t == Tenant::PLATFORM {
            PlatformSchemas::new()
        } else {
            platform_schemas
        };
        finish(t, &mut state, &platform, &mut report, &mut people_seen);
    }
    for (slug, value) in slugs {
        let raw = value.as_slice().try_into().map(u128::from_be_bytes).ok();
        if raw
            .and_then(|r| orgs.get(&r))
            .is_none_or(|o| o.slug != slug)
        {
            report.problem(format!("slug {slug} does not point at its organization"));
        }
    }
    let mut emailed = HashSet::new();
    for (email, value) in emails {
        let ok = value.len() == 32 && {
            let org = u128::from_be_bytes(value[..16].try_into().unwrap_or([0; 16]));
            let person = u128::from_be_bytes(value[16..].try_into().unwrap_or([0; 16]));
            let id = Id::from_raw(crate::model::Dim::Person, person);
            emailed.insert((org, id));
            people_seen.get(&(org, id)).is_some_and(|e| *e == email)
        };
        if !ok {
            report.problem(format!(
                "email {email} does not point at an active person with that email"
            ));
        }
    }
    for (id, value) in token_homes {
        let home = value.as_slice().try_into().map(u128::from_be_bytes).ok();
        if home.is_none() || tokens_seen.remove(&id) != home {
            report.problem(format!("token entry {id} does not point at its token"));
        }
    }
    for id in tokens_seen.keys() {
        report.problem(format!("token {id} has no platform entry"));
    }
    for (key, email) in &people_seen {
        if !emailed.contains(key) {
            report.problem(format!(
                "active person {} ({email}) has no email entry",
                key.1
            ));
        }
    }
    Ok(report)
}

fn check_entry(
    state: &mut TenantState,
    key: &[u8],
    entry: TenantKey,
    value: &[u8],
    vocabulary: &Vocabulary,
    global_deleted: &HashSet<Id>,
    report: &mut Report,
) {
    let family = entry.family();
    if family.is_record() {
        state.storage_bytes += (key.len() + value.len()) as i64;
    }
    let mut problem = |text: String| report.problem(text);
    match entry {
        TenantKey::Thing(id) => match decode::<Thing>("thing", value) {
            Ok(t) if t.id == id => {
                if !vocabulary.contains(crate::ontology::TypeKind::Thing, &t.kind) {
                    problem(format!("thing {id} has unknown type {}", t.kind));
                }
                state.things.insert(id, t);
            }
            Ok(_) => problem(format!("thing record {id} holds another id")),
            Err(e) => problem(e.message),
        },
        TenantKey::ThingByType { kind, thing } => {
            if !state
                .things
                .get(&thing)
                .is_some_and(|t| t.deleted_at.is_none() && t.kind == kind)
            {
                problem(format!(
                    "type index entry {kind}/{thing} points at no live {kind}"
                ));
            }
            state.by_type.insert(thing);
        }
        TenantKey::ThingByStatus {
            kind,
            status,
            thing,
        } => {
            if !state
                .things
                .get(&thing)
                .is_some_and(|t| t.deleted_at.is_none() && t.kind == kind && t.status == status)
            {
                problem(format!(
                    "status index entry {kind}/{}/{thing} disagrees with the record",
                    status.as_str()
                ));
            }
            state.by_status.insert(thing);
        }
        TenantKey::Person(id) => match decode::<Person>("person", value) {
            Ok(p) if p.id == id => {
                state.people.insert(id, p);
            }
            Ok(_) => problem(format!("person record {id} holds another id")),
            Err(e) => problem(e.message),
        },
        TenantKey::Connection(id) => match decode::<Connection>("connection", value) {
            Ok(c) if c.id == id => {
                state.connections.insert(id, c);
            }
            Ok(_) => problem(format!("connection record {id} holds another id")),
            Err(e) => problem(e.message),
        },
        TenantKey::Edge {
            dir,
            node,
            kind,
            other,
            con,
        } => {
            let Some(c) = state.connections.get(&con) else {
                problem(format!("edge entry points at missing connection {con}"));
                return;
            };
            let (from, to) = if dir == Direction::Out {
                (node, other)
            } else {
                (other, node)
            };
            if c.from != from || c.to != to || c.kind != kind {
                problem(format!("edge entry of {con} disagrees with the record"));
            }
            let dead = |id: Id| {
                global_deleted.contains(&id)
                    || state
                        .things
                        .get(&id)
                        .is_some_and(|t| t.deleted_at.is_some())
                    || state
                        .people
                        .get(&id)
                        .is_some_and(|p| p.status != PersonStatus::Active)
            };
            let expected = EdgeValue::of(c, dead(c.from) || dead(c.to));
            if EdgeValue::decode(value).ok() != Some(expected) {
                problem(format!("edge entry of {con} holds a stale validity"));
            }
            state.edges.insert((dir, con));
        }
        TenantKey::Event(id) => match decode::<Event>("event", value) {
            Ok(e) if e.id == id => {
                // Usage counts the event as its transaction wrote it: the
                // commit leader's `seq` came after the count.
                if let Some(seq) = e.seq {
                    state.storage_bytes -= keys::event_stamp_len(seq) as i64;
                }
                state.events.insert(id, e);
            }
            Ok(_) => problem(format!("event record {id} holds another id")),
            Err(e) => problem(e.message),
        },
        TenantKey::EventByActor { actor, event } => {
            if state.events.get(&event).is_none_or(|e| e.actor != actor) {
                problem(format!(
                    "actor index entry of {event} disagrees with the event"
                ));
            }
            state.event_index.insert((1, event));
        }
        TenantKey::EventByTarget { target, event } => {
            if state
                .events
                .get(&event)
                .is_none_or(|e| e.target != Some(target))
            {
                problem(format!(
                    "target index entry of {event} disagrees with the event"
                ));
            }
            state.event_index.insert((2, event));
        }
        TenantKey::EventByType { kind, event } => {
            if state.events.get(&event).is_none_or(|e| e.kind != kind) {
                problem(format!(
                    "type index entry of {event} disagrees with the event"
                ));
            }
            state.event_index.insert((3, event));
        }
        TenantKey::EventBySeq { seq, event } => {
            if state.events.get(&event).is_none_or(|e| e.seq != Some(seq)) {
                problem(format!(
                    "commit-order entry of {event} (seq {seq}) disagrees with the event"
                ));
            }
            if state.by_seq.insert(event, seq).is_some() {
                problem(format!("{event} has two commit-order entries"));
            }
        }
        TenantKey::Knowledge(id) => match decode::<Knowledge>("knowledge", value) {
            Ok(k) if k.id == id => {
                if let (Some(e), Some(dim)) = (&k.embedding, state.embedding_dim)
                    && e.len() as i64 != dim
                {
                    problem(format!(
                        "knowledge {id} has {} dimensions, the org {dim}",
                        e.len()
                    ));
                }
                state.knowledge.insert(id, k);
            }
            Ok(_) => problem(format!("knowledge record {id} holds another id")),
            Err(e) => problem(e.message),
        },
        TenantKey::KnowledgeBySource { source, knowledge } => {
            if !state
                .knowledge
                .get(&knowledge)
                .is_some_and(|k| k.deleted_at.is_none() && k.source == Some(source))
            {
                problem(format!(
                    "source index entry of {knowledge} disagrees with the record"
                ));
            }
            state.by_source.insert(knowledge);
        }
        TenantKey::JunctionOut { knowledge, thing } => {
            let role = parse_role(value)
                .map(|r| r.as_str().to_string())
                .unwrap_or_default();
            if state
                .knowledge
                .get(&knowledge)
                .is_none_or(|k| k.deleted_at.is_some())
            {
                problem(format!(
                    "junction entry of {knowledge} points at no live knowledge"
                ));
            }
            state.junction_out.insert((knowledge, thing, role));
        }
        TenantKey::JunctionIn { thing, knowledge } => {
            let role = parse_role(value)
                .map(|r| r.as_str().to_string())
                .unwrap_or_default();
            state.junction_in.insert((knowledge, thing, role));
        }
        TenantKey::Counter(name) => match keys::decode_i64(value) {
            Ok(v) => {
                state.counters.insert(name, v);
            }
            Err(e) => problem(e.message),
        },
        TenantKey::Triggers => {
            if let Err(e) = decode::<Vec<Trigger>>("trigger set", value) {
                problem(e.message);
            }
        }
        TenantKey::Token(id) => match decode::<Token>("API token", value) {
            Ok(token) if token.id == id => {}
            Ok(_) => problem(format!("token record {id} holds another id")),
            Err(e) => problem(e.message),
        },
        TenantKey::Schema(kind) => {
            if !vocabulary.contains(crate::ontology::TypeKind::Thing, &kind) {
                problem(format!("a property schema for unknown type {kind}"));
            }
            match PropertySchema::decode(&kind, value) {
                Ok(schema) => {
                    state.schemas.insert(kind, schema);
                }
                Err(e) => problem(e.message),
            }
        }
        TenantKey::Setting(name) => {
            if name == "embedding_dim" {
                match keys::decode_i64(value) {
                    Ok(v) => state.embedding_dim = Some(v),
                    Err(e) => problem(e.message),
                }
            }
        }
    }
}

/// The checks that need the whole tenant: missing index entries, reverse
/// edges, usage recounts.
fn finish(
    tenant: Tenant,
    state: &mut TenantState,
    platform_schemas: &PlatformSchemas,
    report: &mut Report,
    people_seen: &mut HashMap<(u128, Id), String>,
) {
    let label = if tenant == Tenant::PLATFORM {
        "platform".to_string()
    } else {
        format!("{:032x}", tenant.raw())
    };
    let own = if tenant == Tenant::PLATFORM {
        "the platform's"
    } else {
        "its org's"
    };
    let mut live_by_type: BTreeMap<String, i64> = BTreeMap::new();
    for t in state.things.values().filter(|t| t.deleted_at.is_none()) {
        *live_by_type.entry(t.kind.clone()).or_default() += 1;
        if !state.by_type.contains(&t.id) || !state.by_status.contains(&t.id) {
            report.problem(format!("thing {} lacks an index entry", t.id));
        }
        let schemas = [
            ("the platform's", platform_schemas.get(&t.kind)),
            (own, state.schemas.get(&t.kind)),
        ];
        for (whose, schema) in schemas {
            if let Some(why) = schema.and_then(|s| s.violation(&t.properties)) {
                report.problem(format!(
                    "thing {} violates {whose} schema of {}: {why}",
                    t.id, t.kind
                ));
            }
        }
    }
    for c in state.connections.values() {
        if !state.edges.contains(&(Direction::Out, c.id))
            || !state.edges.contains(&(Direction::In, c.id))
        {
            report.problem(format!("connection {} lacks an edge entry", c.id));
        }
        for end in [c.from, c.to] {
            let known = state.things.contains_key(&end) || state.people.contains_key(&end);
            // A global platform thing may be the `to` of an org's edge.
            if !(known || (end == c.to && end.dim() == crate::model::Dim::Thing)) {
                report.problem(format!("connection {} joins missing {end}", c.id));
            }
        }
    }
    for e in state.events.values() {
        let has = |tag: u8| state.event_index.contains(&(tag, e.id));
        if !has(1) || !has(3) || (e.target.is_some() && !has(2)) {
            report.problem(format!("event {} lacks an index entry", e.id));
        }
        // Events from before `seq` was kept have neither.
        if e.seq.is_some() && !state.by_seq.contains_key(&e.id) {
            report.problem(format!("event {} lacks its commit-order entry", e.id));
        }
    }
    for k in state.knowledge.values().filter(|k| k.deleted_at.is_none()) {
        if k.source.is_some() && !state.by_source.contains(&k.id) {
            report.problem(format!("knowledge {} lacks its source entry", k.id));
        }
    }
    if state.junction_out != state.junction_in {
        report.problem(format!(
            "tenant {label}: the knowledge-thing junction differs between its two directions"
        ));
    }
    for (id, p) in &state.people {
        if p.status == PersonStatus::Active {
            people_seen.insert((tenant.raw(), *id), p.email.clone());
        }
    }

    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    expected.insert("things".into(), live_by_type.values().sum());
    for (kind, n) in live_by_type {
        expected.insert(type_counter(&kind), n);
    }
    expected.insert(
        "connections".into(),
        state
            .connections
            .values()
            .filter(|c| c.ended_at.is_none())
            .count() as i64,
    );
    expected.insert(
        "people".into(),
        state
            .people
            .values()
            .filter(|p| p.status == PersonStatus::Active)
            .count() as i64,
    );
    expected.insert(
        "knowledge".into(),
        state
            .knowledge
            .values()
            .filter(|k| k.deleted_at.is_none())
            .count() as i64,
    );
    expected.insert("storage_bytes".into(), state.storage_bytes);
    for e in state
        .events
        .values()
        .filter(|e| e.kind == "inference_request")
    {
        *expected
            .entry(format!("inference:{}", month_of(e.timestamp)))
            .or_default() += 1;
    }
    for (name, want) in &expected {
        let have = state.counters.get(name).copied().unwrap_or(0);
        if have != *want {
            report.problem(format!(
                "tenant {label}: usage {name} is {have}, a recount finds {want}"
            ));
        }
    }
    for (name, have) in &state.counters {
        let derived = !name.starts_with("api_calls:");
        if derived && !expected.contains_key(name) && *have != 0 {
            report.problem(format!(
                "tenant {label}: usage {name} is {have}, a recount finds 0"
            ));
        }
    }
    report.things += state
        .things
        .values()
        .filter(|t| t.deleted_at.is_none())
        .count() as u64;
    report.connections += state.connections.len() as u64;
    report.events += state.events.len() as u64;
}
