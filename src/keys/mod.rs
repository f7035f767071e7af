//! The ONLY place key bytes are built and decoded.
//!
//! Layout (every integer big-endian, so byte order is value order):
//!
//! | key                                              | value                      |
//! |--------------------------------------------------|----------------------------|
//! | `00 'V'`                                         | format version, u32        |
//! | `00 'S'`                                         | commits so far, u64       |
//! | `00 'L' commit(8)`                               | records that commit changed (index log) |
//! | `00 'P'`                                         | index log pruned through, u64 |
//! | `01 01 org(16)`                                  | Org (JSON)                 |
//! | `01 02 slug 00`                                  | org id (16)                |
//! | `01 03 email 00`                                 | org(16) person(16)         |
//! | `01 04 kind(1) name 00`                          | category (UTF-8)           |
//! | `02 tenant(16) family(1) …`                      | tenant data, below         |
//!
//! Tenant data, after `02 tenant(16)` (tenant = the org's 16 id bytes; all
//! zeros is the platform tenant: global things, platform owners, and the
//! platform owner's property schemas, which hold in every org):
//!
//! | family | rest                                   | value                      |
//! |--------|----------------------------------------|----------------------------|
//! | 01     | thing(16)                              | Thing                      |
//! | 02     | type 00 thing(16)                      | empty                      |
//! | 03     | type 00 status(1) thing(16)            | empty                      |
//! | 04     | person(16)                             | Person                     |
//! | 05     | connection(16)                         | Connection                 |
//! | 06     | from(17) type 00 to(17) con(16)        | EdgeValue (validity)       |
//! | 07     | to(17) type 00 from(17) con(16)        | EdgeValue (validity)       |
//! | 08     | event(16)                              | Event                      |
//! | 09     | actor(17) event(16)                    | empty                      |
//! | 0A     | target(17) event(16)                   | empty                      |
//! | 0B     | type 00 event(16)                      | empty                      |
//! | 0C     | knowledge(16)                          | Knowledge                  |
//! | 0D     | source thing(16) knowledge(16)         | empty                      |
//! | 0E     | knowledge(16) thing(16)                | junction role (UTF-8)      |
//! | 0F     | thing(16) knowledge(16)                | junction role (UTF-8)      |
//! | 10     | counter name 00                        | i64                        |
//! | 11     | (nothing)                              | the org's triggers (JSON)  |
//! | 12     | setting name 00                        | JSON value                 |
//! | 13     | token(16)                              | API token (JSON)           |
//! | 14     | thing type 00                          | property schema (JSON)     |
//! | 15     | seq(8) event(16)                       | empty                      |
//!
//! Family 15 orders an org's events by `seq`, the number of the commit
//! that wrote them: the commit leader adds it (and the event record's
//! `seq` field) when it numbers the commit (`stamp_event`), so a
//! subscription can read "every event after commit N" with one bounded
//! scan. Events written before it existed have neither.
//!
//! A node reference (17 bytes) is the dimension tag then the 16 id bytes; the
//! `system` actor is all zeros. Names (types, slugs, emails, counters) never
//! contain NUL, so `name 00` keeps every family prefix-free; the tenant is
//! fixed-width, so no tenant's prefix is a prefix of another's.

use crate::error::{Error, Result};
use crate::model::{Dim, Id};
use crate::ontology::{Status, TypeKind};

pub const FORMAT_VERSION: u32 = 1;

const META: u8 = 0x00;
const PLATFORM: u8 = 0x01;
const TENANT: u8 = 0x02;

const META_VERSION: u8 = b'V';
const META_COMMIT_SEQ: u8 = b'S';
const META_INDEX_LOG: u8 = b'L';
const META_INDEX_LOG_PRUNED: u8 = b'P';

const P_ORG: u8 = 0x01;
const P_SLUG: u8 = 0x02;
const P_EMAIL: u8 = 0x03;
const P_VOCAB: u8 = 0x04;
const P_TOKEN: u8 = 0x05;
const P_LOGIN_FAILURES: u8 = 0x06;

/// The families of tenant data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Thing = 0x01,
    ThingByType = 0x02,
    ThingByStatus = 0x03,
    Person = 0x04,
    Connection = 0x05,
    EdgeOut = 0x06,
    EdgeIn = 0x07,
    Event = 0x08,
    EventByActor = 0x09,
    EventByTarget = 0x0A,
    EventByType = 0x0B,
    Knowledge = 0x0C,
    KnowledgeBySource = 0x0D,
    JunctionOut = 0x0E,
    JunctionIn = 0x0F,
    Counter = 0x10,
    Triggers = 0x11,
    Setting = 0x12,
    Token = 0x13,
    Schema = 0x14,
    EventBySeq = 0x15,
}

impl Family {
    const ALL: [Family; 21] = [
        Family::Thing,
        Family::ThingByType,
        Family::ThingByStatus,
        Family::Person,
        Family::Connection,
        Family::EdgeOut,
        Family::EdgeIn,
        Family::Event,
        Family::EventByActor,
        Family::EventByTarget,
        Family::EventByType,
        Family::Knowledge,
        Family::KnowledgeBySource,
        Family::JunctionOut,
        Family::JunctionIn,
        Family::Counter,
        Family::Triggers,
        Family::Setting,
        Family::Token,
        Family::Schema,
        Family::EventBySeq,
    ];

    fn from_byte(b: u8) -> Option<Family> {
        Family::ALL.into_iter().find(|f| *f as u8 == b)
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Thing => "thing",
            Family::ThingByType => "thing-by-type index",
            Family::ThingByStatus => "thing-by-status index",
            Family::Person => "person",
            Family::Connection => "connection",
            Family::EdgeOut => "out-edge index",
            Family::EdgeIn => "in-edge index",
            Family::Event => "event",
            Family::EventByActor => "event-by-actor index",
            Family::EventByTarget => "event-by-target index",
            Family::EventByType => "event-by-type index",
            Family::Knowledge => "knowledge",
            Family::KnowledgeBySource => "knowledge-by-source index",
            Family::JunctionOut => "knowledge-thing junction",
            Family::JunctionIn => "thing-knowledge junction",
            Family::Counter => "usage counter",
            Family::Triggers => "trigger set",
            Family::Setting => "org setting",
            Family::Token => "API token",
            Family::Schema => "property schema",
            Family::EventBySeq => "event-by-seq index",
        }
    }

    /// Families holding records whose size counts toward `storage_bytes`.
    pub fn is_record(self) -> bool {
        matches!(
            self,
            Family::Thing | Family::Person | Family::Connection | Family::Event | Family::Knowledge
        )
    }
}

/// An organization's key space. Obtained from a transaction, which refuses
/// keys of any tenant it was not opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant(u128);

impl Tenant {
    /// The platform's own tenant: global things and platform owners.
    pub const PLATFORM: Tenant = Tenant(0);

    pub(crate) fn of_org(org: Id) -> Tenant {
        Tenant(org.raw())
    }

    pub fn raw(self) -> u128 {
        self.0
    }

    /// A tenant read back from a derived index's file.
    pub(crate) fn from_raw(raw: u128) -> Tenant {
        Tenant(raw)
    }

    /// `02 tenant(16)`: every key of this tenant starts with these bytes.
    pub fn prefix(self) -> Vec<u8> {
        let mut k = Vec::with_capacity(17);
        k.push(TENANT);
        k.extend_from_slice(&self.0.to_be_bytes());
        k
    }

    pub(crate) fn family(self, family: Family) -> Vec<u8> {
        let mut k = Vec::with_capacity(64);
        k.push(TENANT);
        k.extend_from_slice(&self.0.to_be_bytes());
        k.push(family as u8);
        k
    }
}

/// The tenant a key belongs to, or None for meta and platform keys.
pub fn tenant_of(key: &[u8]) -> Option<Tenant> {
    if key.first() == Some(&TENANT) && key.len() >= 17 {
        let mut raw = [0u8; 16];
        raw.copy_from_slice(&key[1..17]);
        Some(Tenant(u128::from_be_bytes(raw)))
    } else {
        None
    }
}

/// True for keys of the platform tables (orgs, slugs, emails, vocabulary).
pub fn is_platform_table_key(key: &[u8]) -> bool {
    key.first() == Some(&PLATFORM)
}

/// True for keys outside every tenant (meta and platform tables).
pub fn is_platform_key(key: &[u8]) -> bool {
    matches!(key.first(), Some(&META) | Some(&PLATFORM))
}

/// The first key of tenant data: platform tables sort before it.
pub fn tenant_data_start() -> Vec<u8> {
    vec![TENANT]
}

/// The smallest key greater than every key starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.last_mut() {
        if *last < 0xFF {
            *last += 1;
            return end;
        }
        end.pop();
    }
    // All 0xFF (never built here): no upper bound short of the key space end.
    vec![0xFF; prefix.len() + 1]
}

fn push_id(k: &mut Vec<u8>, id: Id) {
    k.extend_from_slice(&id.raw().to_be_bytes());
}

fn push_node(k: &mut Vec<u8>, node: Option<Id>) {
    match node {
        Some(id) => {
            k.push(id.dim().tag());
            push_id(k, id);
        }
        None => k.extend_from_slice(&[0u8; 17]),
    }
}

fn push_name(k: &mut Vec<u8>, name: &str) {
    k.extend_from_slice(name.as_bytes());
    k.push(0);
}

// ---- meta and platform keys ----

pub fn format_version() -> Vec<u8> {
    vec![META, META_VERSION]
}

pub fn commit_seq() -> Vec<u8> {
    vec![META, META_COMMIT_SEQ]
}

/// The index log entry of commit `n`: which searchable records it wrote.
/// The derived indexes (name search, vectors) replay it after a crash.
pub fn index_log(n: u64) -> Vec<u8> {
    let mut k = vec![META, META_INDEX_LOG];
    k.extend_from_slice(&n.to_be_bytes());
    k
}

pub fn index_log_prefix() -> Vec<u8> {
    vec![META, META_INDEX_LOG]
}

/// Index log entries up to this commit were deleted: an index whose
/// watermark is older cannot catch up from the log and is rebuilt.
pub fn index_log_pruned() -> Vec<u8> {
    vec![META, META_INDEX_LOG_PRUNED]
}

/// A record the derived indexes follow: a thing, a person or a knowledge
/// item, in its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Changed {
    pub tenant: Tenant,
    pub id: Id,
}

const CHANGED_BYTES: usize = 33;

impl Changed {
    /// The record a written key holds, if it is one the indexes follow.
    /// Only the family byte and the length are looked at: this runs for
    /// every key of every commit.
    pub fn of_key(key: &[u8]) -> Option<Changed> {
        if key.len() != 34 || key[0] != TENANT {
            return None;
        }
        let dim = match key[17] {
            f if f == Family::Thing as u8 => Dim::Thing,
            f if f == Family::Person as u8 => Dim::Person,
            f if f == Family::Knowledge as u8 => Dim::Knowledge,
            _ => return None,
        };
        let mut r = Reader { bytes: &key[1..] };
        let tenant = Tenant(r.raw16()?);
        r.byte()?;
        Some(Changed {
            tenant,
            id: r.id(dim)?,
        })
    }

    /// The stored key of the record.
    pub fn key(self) -> Vec<u8> {
        match self.id.dim() {
            Dim::Person => self.tenant.person(self.id),
            Dim::Knowledge => self.tenant.knowledge(self.id),
            _ => self.tenant.thing(self.id),
        }
    }
}

/// An index log value: `tenant(16) dim(1) id(16)` per record.
pub fn encode_changes(changes: &[Changed]) -> Vec<u8> {
    let mut v = Vec::with_capacity(changes.len() * CHANGED_BYTES);
    for c in changes {
        v.extend_from_slice(&c.tenant.0.to_be_bytes());
        push_node(&mut v, Some(c.id));
    }
    v
}

pub fn decode_changes(bytes: &[u8]) -> Result<Vec<Changed>> {
    let bad = || Error::corruption("index log", "entry is not a list of records");
    if !bytes.len().is_multiple_of(CHANGED_BYTES) {
        return Err(bad());
    }
    bytes
        .chunks_exact(CHANGED_BYTES)
        .map(|chunk| {
            let mut r = Reader { bytes: chunk };
            let tenant = Tenant(r.raw16().ok_or_else(bad)?);
            let id = r.node().flatten().ok_or_else(bad)?;
            match id.dim() {
                Dim::Thing | Dim::Person | Dim::Knowledge => Ok(Changed { tenant, id }),
                _ => Err(bad()),
            }
        })
        .collect()
}

/// The tenant and id of an event record's key (`02 tenant 08 event`).
/// Only the family byte and the length are looked at: this runs for every
/// key of every commit.
pub fn event_of_key(key: &[u8]) -> Option<(Tenant, Id)> {
    if key.len() != 34 || key[0] != TENANT || key[17] != Family::Event as u8 {
        return None;
    }
    let mut r = Reader { bytes: &key[1..] };
    let tenant = Tenant(r.raw16()?);
    r.byte()?;
    Some((tenant, r.id(Dim::Event)?))
}

/// The event record's `seq` field, added by the commit leader: the stored
/// record is a JSON object written without one (`graph::events`), so the
/// field goes before its closing brace. Anything else is left alone (it
/// would not decode as an event anyway; `onedb check` reports it).
pub fn stamp_event(value: &mut Vec<u8>, seq: u64) {
    if value.last() == Some(&b'}') && value.len() > 2 {
        value.pop();
        value.extend_from_slice(b",\"seq\":");
        value.extend_from_slice(seq.to_string().as_bytes());
        value.push(b'}');
    }
}

/// The bytes `stamp_event` adds for `seq`.
pub fn event_stamp_len(seq: u64) -> usize {
    b",\"seq\":".len() + seq.to_string().len()
}

/// A usage counter's key (any tenant).
pub fn is_counter(key: &[u8]) -> bool {
    key.len() > 18 && key[0] == TENANT && key[17] == Family::Counter as u8
}

/// Records every write transaction reads and few commits write: an org, a
/// person, an org's trigger set, a property schema (or its absence). Only these may be served from the storage
/// layer's cache of decoded records (`storage/cache.rs`), whose commit
/// leader tracks writes of exactly these keys.
pub fn is_cached_record(key: &[u8]) -> bool {
    match key {
        [PLATFORM, P_ORG, id @ ..] => id.len() == 16,
        [TENANT, rest @ ..] if rest.len() == 17 => rest[16] == Family::Triggers as u8,
        [TENANT, rest @ ..] if rest.len() == 33 && rest[16] == Family::Person as u8 => true,
        [TENANT, rest @ ..] if rest.len() > 17 => {
            rest[16] == Family::Schema as u8 && rest.last() == Some(&0)
        }
        _ => false,
    }
}

pub fn org(id: Id) -> Vec<u8> {
    let mut k = vec![PLATFORM, P_ORG];
    push_id(&mut k, id);
    k
}

pub fn orgs_prefix() -> Vec<u8> {
    vec![PLATFORM, P_ORG]
}

pub fn org_slug(slug: &str) -> Vec<u8> {
    let mut k = vec![PLATFORM, P_SLUG];
    push_name(&mut k, slug);
    k
}

pub fn email(email: &str) -> Vec<u8> {
    let mut k = vec![PLATFORM, P_EMAIL];
    push_name(&mut k, email);
    k
}

pub fn vocab(kind: TypeKind, name: &str) -> Vec<u8> {
    let mut k = vec![PLATFORM, P_VOCAB, kind.tag()];
    push_name(&mut k, name);
    k
}

pub fn vocab_prefix() -> Vec<u8> {
    vec![PLATFORM, P_VOCAB]
}

/// Where an API token lives: its home tenant's raw id (16 bytes), so a
/// login by token finds the record without knowing the org.
pub fn token_home(id: Id) -> Vec<u8> {
    let mut k = vec![PLATFORM, P_TOKEN];
    push_id(&mut k, id);
    k
}

/// Failed-login counts of an account or a client address, kept in the
/// store when servers share it (`server/lockout.rs`).
pub fn login_failures(name: &str) -> Vec<u8> {
    let mut k = vec![PLATFORM, P_LOGIN_FAILURES];
    push_name(&mut k, name);
    k
}

// ---- tenant keys ----

impl Tenant {
    pub fn thing(self, id: Id) -> Vec<u8> {
        let mut k = self.family(Family::Thing);
        push_id(&mut k, id);
        k
    }

    pub fn things(self) -> Vec<u8> {
        self.family(Family::Thing)
    }

    pub fn thing_by_type(self, kind: &str, id: Id) -> Vec<u8> {
        let mut k = self.things_of_type(kind);
        push_id(&mut k, id);
        k
    }

    pub fn things_of_type(self, kind: &str) -> Vec<u8> {
        let mut k = self.family(Family::ThingByType);
        push_name(&mut k, kind);
        k
    }

    pub fn thing_by_status(self, kind: &str, status: Status, id: Id) -> Vec<u8> {
        let mut k = self.things_of_status(kind, status);
        push_id(&mut k, id);
        k
    }

    pub fn things_of_status(self, kind: &str, status: Status) -> Vec<u8> {
        let mut k = self.family(Family::ThingByStatus);
        push_name(&mut k, kind);
        k.push(status.tag());
        k
    }

    pub fn person(self, id: Id) -> Vec<u8> {
        let mut k = self.family(Family::Person);
        push_id(&mut k, id);
        k
    }

    pub fn people(self) -> Vec<u8> {
        self.family(Family::Person)
    }

    pub fn connection(self, id: Id) -> Vec<u8> {
        let mut k = self.family(Family::Connection);
        push_id(&mut k, id);
        k
    }

    pub fn connections(self) -> Vec<u8> {
        self.family(Family::Connection)
    }

    /// An adjacency entry: `node` is where the scan starts, `other` the far end.
    pub fn edge(self, dir: Direction, node: Id, kind: &str, other: Id, con: Id) -> Vec<u8> {
        let mut k = self.edges(dir, node, Some(kind));
        push_node(&mut k, Some(other));
        push_id(&mut k, con);
        k
    }

    /// All edges of a node in one direction, optionally of one type.
    pub fn edges(self, dir: Direction, node: Id, kind: Option<&str>) -> Vec<u8> {
        let family = match dir {
            Direction::Out => Family::EdgeOut,
            Direction::In => Family::EdgeIn,
        };
        let mut k = self.family(family);
        push_node(&mut k, Some(node));
        if let Some(kind) = kind {
            push_name(&mut k, kind);
        }
        k
    }

    pub fn event(self, id: Id) -> Vec<u8> {
        let mut k = self.family(Family::Event);
        push_id(&mut k, id);
        k
    }

    pub fn events(self) -> Vec<u8> {
        self.family(Family::Event)
    }

    pub fn event_by_actor(self, actor: Option<Id>, evt: Id) -> Vec<u8> {
        let mut k = self.events_by_actor(actor);
        push_id(&mut k, evt);
        k
    }

    pub fn events_by_actor(self, actor: Option<Id>) -> Vec<u8> {
        let mut k = self.family(Family::EventByActor);
        push_node(&mut k, actor);
        k
    }

    pub fn event_by_target(self, target: Id, evt: Id) -> Vec<u8> {
        let mut k = self.events_by_target(target);
        push_id(&mut k, evt);
        k
    }

    pub fn events_by_target(self, target: Id) -> Vec<u8> {
        let mut k = self.family(Family::EventByTarget);
        push_node(&mut k, Some(target));
        k
    }

    pub fn event_by_type(self, kind: &str, evt: Id) -> Vec<u8> {
        let mut k = self.events_by_type(kind);
        push_id(&mut k, evt);
        k
    }

    pub fn events_by_type(self, kind: &str) -> Vec<u8> {
        let mut k = self.family(Family::EventByType);
        push_name(&mut k, kind);
        k
    }

    /// The commit-order entry of an event: `seq` is its commit's number.
    pub fn event_by_seq(self, seq: u64, evt: Id) -> Vec<u8> {
        let mut k = self.events_by_seq();
        k.extend_from_slice(&seq.to_be_bytes());
        push_id(&mut k, evt);
        k
    }

    /// Where the commit-order entries of events with `seq` ≥ `from` begin.
    pub fn events_from_seq(self, from: u64) -> Vec<u8> {
        let mut k = self.events_by_seq();
        k.extend_from_slice(&from.to_be_bytes());
        k
    }

    pub fn events_by_seq(self) -> Vec<u8> {
        self.family(Family::EventBySeq)
    }

    pub fn knowledge(self, id: Id) -> Vec<u8> {
        let mut k = self.family(Family::Knowledge);
        push_id(&mut k, id);
        k
    }

    pub fn knowledge_all(self) -> Vec<u8> {
        self.family(Family::Knowledge)
    }

    pub fn knowledge_by_source(self, source: Id, kno: Id) -> Vec<u8> {
        let mut k = self.knowledge_of_source(source);
        push_id(&mut k, kno);
        k
    }

    pub fn knowledge_of_source(self, source: Id) -> Vec<u8> {
        let mut k = self.family(Family::KnowledgeBySource);
        push_id(&mut k, source);
        k
    }

    /// Junction, knowledge side first: the things a knowledge item is about.
    pub fn junction_out(self, kno: Id, thing: Id) -> Vec<u8> {
        let mut k = self.junctions_of_knowledge(kno);
        push_id(&mut k, thing);
        k
    }

    pub fn junctions_of_knowledge(self, kno: Id) -> Vec<u8> {
        let mut k = self.family(Family::JunctionOut);
        push_id(&mut k, kno);
        k
    }

    /// Junction, thing side first: the knowledge about a thing.
    pub fn junction_in(self, thing: Id, kno: Id) -> Vec<u8> {
        let mut k = self.junctions_of_thing(thing);
        push_id(&mut k, kno);
        k
    }

    pub fn junctions_of_thing(self, thing: Id) -> Vec<u8> {
        let mut k = self.family(Family::JunctionIn);
        push_id(&mut k, thing);
        k
    }

    pub fn counter(self, name: &str) -> Vec<u8> {
        let mut k = self.family(Family::Counter);
        push_name(&mut k, name);
        k
    }

    pub fn counters(self) -> Vec<u8> {
        self.family(Family::Counter)
    }

    pub fn triggers(self) -> Vec<u8> {
        self.family(Family::Triggers)
    }

    /// The property schema of a thing type in this tenant (the platform
    /// tenant's holds in every org).
    pub fn schema(self, kind: &str) -> Vec<u8> {
        let mut k = self.family(Family::Schema);
        push_name(&mut k, kind);
        k
    }

    pub fn schemas(self) -> Vec<u8> {
        self.family(Family::Schema)
    }

    /// Engine-kept facts about the org, e.g. its embedding dimension.
    pub fn setting(self, name: &str) -> Vec<u8> {
        let mut k = self.family(Family::Setting);
        push_name(&mut k, name);
        k
    }

    /// An API token of a person whose home is this tenant.
    pub fn token(self, id: Id) -> Vec<u8> {
        let mut k = self.family(Family::Token);
        push_id(&mut k, id);
        k
    }

    pub fn tokens(self) -> Vec<u8> {
        self.family(Family::Token)
    }
}

/// Direction of an adjacency scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Out,
    In,
}

impl Direction {
    pub fn reverse(self) -> Direction {
        match self {
            Direction::Out => Direction::In,
            Direction::In => Direction::Out,
        }
    }
}

// ---- decoding ----

/// A key, decoded. Every stored key must decode to one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    FormatVersion,
    CommitSeq,
    IndexLog(u64),
    IndexLogPruned,
    Org(Id),
    OrgSlug(String),
    Email(String),
    Vocab(TypeKind, String),
    TokenHome(Id),
    LoginFailures(String),
    Tenant(Tenant, TenantKey),
}

/// The part of a tenant key after the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantKey {
    Thing(Id),
    ThingByType {
        kind: String,
        thing: Id,
    },
    ThingByStatus {
        kind: String,
        status: Status,
        thing: Id,
    },
    Person(Id),
    Connection(Id),
    Edge {
        dir: Direction,
        node: Id,
        kind: String,
        other: Id,
        con: Id,
    },
    Event(Id),
    EventByActor {
        actor: Option<Id>,
        event: Id,
    },
    EventByTarget {
        target: Id,
        event: Id,
    },
    EventByType {
        kind: String,
        event: Id,
    },
    Knowledge(Id),
    KnowledgeBySource {
        source: Id,
        knowledge: Id,
    },
    JunctionOut {
        knowledge: Id,
        thing: Id,
    },
    JunctionIn {
        thing: Id,
        knowledge: Id,
    },
    Counter(String),
    Triggers,
    Setting(String),
    Token(Id),
    Schema(String),
    EventBySeq {
        seq: u64,
        event: Id,
    },
}

impl TenantKey {
    pub fn family(&self) -> Family {
        match self {
            TenantKey::Thing(_) => Family::Thing,
            TenantKey::ThingByType { .. } => Family::ThingByType,
            TenantKey::ThingByStatus { .. } => Family::ThingByStatus,
            TenantKey::Person(_) => Family::Person,
            TenantKey::Connection(_) => Family::Connection,
            TenantKey::Edge {
                dir: Direction::Out,
                ..
            } => Family::EdgeOut,
            TenantKey::Edge {
                dir: Direction::In, ..
            } => Family::EdgeIn,
            TenantKey::Event(_) => Family::Event,
            TenantKey::EventByActor { .. } => Family::EventByActor,
            TenantKey::EventByTarget { .. } => Family::EventByTarget,
            TenantKey::EventByType { .. } => Family::EventByType,
            TenantKey::Knowledge(_) => Family::Knowledge,
            TenantKey::KnowledgeBySource { .. } => Family::KnowledgeBySource,
            TenantKey::JunctionOut { .. } => Family::JunctionOut,
            TenantKey::JunctionIn { .. } => Family::JunctionIn,
            TenantKey::Counter(_) => Family::Counter,
            TenantKey::Triggers => Family::Triggers,
            TenantKey::Token(_) => Family::Token,
            TenantKey::Setting(_) => Family::Setting,
            TenantKey::Schema(_) => Family::Schema,
            TenantKey::EventBySeq { .. } => Family::EventBySeq,
        }
    }
}

/// Reads a key from left to right; every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(b)
    }
    fn raw16(&mut self) -> Option<u128> {
        if self.bytes.len() < 16 {
            return None;
        }
        let (head, rest) = self.bytes.split_at(16);
        self.bytes = rest;
        let mut raw = [0u8; 16];
        raw.copy_from_slice(head);
        Some(u128::from_be_bytes(raw))
    }
    fn u64(&mut self) -> Option<u64> {
        let raw: [u8; 8] = self.bytes.get(..8)?.try_into().ok()?;
        self.bytes = &self.bytes[8..];
        Some(u64::from_be_bytes(raw))
    }
    fn id(&mut self, dim: Dim) -> Option<Id> {
        Some(Id::from_raw(dim, self.raw16()?))
    }
    /// A node reference; Ok(None) is the system actor.
    fn node(&mut self) -> Option<Option<Id>> {
        let tag = self.byte()?;
        let raw = self.raw16()?;
        if tag == 0 && raw == 0 {
            return Some(None);
        }
        Some(Some(Id::from_raw(Dim::from_tag(tag)?, raw)))
    }
    fn name(&mut self) -> Option<String> {
        let end = self.bytes.iter().position(|&b| b == 0)?;
        let name = std::str::from_utf8(&self.bytes[..end]).ok()?.to_string();
        self.bytes = &self.bytes[end + 1..];
        Some(name)
    }
    fn done(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// An edge index entry's key, borrowed (an adjacency scan decodes one per
/// edge; `decode` would allocate the type name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeKey<'a> {
    pub dir: Direction,
    pub node: Id,
    pub kind: &'a str,
    pub other: Id,
    pub con: Id,
}

/// Decodes an edge index key; `CORRUPTION` for any other key.
pub fn decode_edge(key: &[u8]) -> Result<EdgeKey<'_>> {
    let bad = || Error::corruption("edge index", format!("undecodable key {}", hex(key)));
    let mut r = Reader { bytes: key };
    if r.byte() != Some(TENANT) || r.raw16().is_none() {
        return Err(bad());
    }
    let dir = match r.byte().and_then(Family::from_byte) {
        Some(Family::EdgeOut) => Direction::Out,
        Some(Family::EdgeIn) => Direction::In,
        _ => return Err(bad()),
    };
    let node = r.node().flatten().ok_or_else(bad)?;
    let end = r.bytes.iter().position(|&b| b == 0).ok_or_else(bad)?;
    let kind = std::str::from_utf8(&r.bytes[..end]).map_err(|_| bad())?;
    r.bytes = &r.bytes[end + 1..];
    let other = r.node().flatten().ok_or_else(bad)?;
    let con = r.id(Dim::Connection).ok_or_else(bad)?;
    if !r.done() {
        return Err(bad());
    }
    Ok(EdgeKey {
        dir,
        node,
        kind,
        other,
        con,
    })
}

/// Decodes any stored key; `CORRUPTION` names what did not decode.
pub fn decode(key: &[u8]) -> Result<Key> {
    decode_inner(key)
        .ok_or_else(|| Error::corruption("key", format!("undecodable key {}", hex(key))))
}

fn decode_inner(key: &[u8]) -> Option<Key> {
    let mut r = Reader { bytes: key };
    let decoded = match r.byte()? {
        META => match r.byte()? {
            META_VERSION => Key::FormatVersion,
            META_COMMIT_SEQ => Key::CommitSeq,
            META_INDEX_LOG_PRUNED => Key::IndexLogPruned,
            META_INDEX_LOG => {
                let raw: [u8; 8] = r.bytes.get(..8)?.try_into().ok()?;
                r.bytes = &r.bytes[8..];
                Key::IndexLog(u64::from_be_bytes(raw))
            }
            _ => return None,
        },
        PLATFORM => match r.byte()? {
            P_ORG => Key::Org(r.id(Dim::Org)?),
            P_SLUG => Key::OrgSlug(r.name()?),
            P_EMAIL => Key::Email(r.name()?),
            P_VOCAB => {
                let kind = TypeKind::from_tag(r.byte()?)?;
                Key::Vocab(kind, r.name()?)
            }
            P_TOKEN => Key::TokenHome(r.id(Dim::Token)?),
            P_LOGIN_FAILURES => Key::LoginFailures(r.name()?),
            _ => return None,
        },
        TENANT => {
            let tenant = Tenant(r.raw16()?);
            let entry = match Family::from_byte(r.byte()?)? {
                Family::Thing => TenantKey::Thing(r.id(Dim::Thing)?),
                Family::ThingByType => TenantKey::ThingByType {
                    kind: r.name()?,
                    thing: r.id(Dim::Thing)?,
                },
                Family::ThingByStatus => TenantKey::ThingByStatus {
                    kind: r.name()?,
                    status: Status::from_tag(r.byte()?)?,
                    thing: r.id(Dim::Thing)?,
                },
                Family::Person => TenantKey::Person(r.id(Dim::Person)?),
                Family::Connection => TenantKey::Connection(r.id(Dim::Connection)?),
                family @ (Family::EdgeOut | Family::EdgeIn) => TenantKey::Edge {
                    dir: if family == Family::EdgeOut {
                        Direction::Out
                    } else {
                        Direction::In
                    },
                    node: r.node()??,
                    kind: r.name()?,
                    other: r.node()??,
                    con: r.id(Dim::Connection)?,
                },
                Family::Event => TenantKey::Event(r.id(Dim::Event)?),
                Family::EventByActor => TenantKey::EventByActor {
                    actor: r.node()?,
                    event: r.id(Dim::Event)?,
                },
                Family::EventByTarget => TenantKey::EventByTarget {
                    target: r.node()??,
                    event: r.id(Dim::Event)?,
                },
                Family::EventByType => TenantKey::EventByType {
                    kind: r.name()?,
                    event: r.id(Dim::Event)?,
                },
                Family::Knowledge => TenantKey::Knowledge(r.id(Dim::Knowledge)?),
                Family::KnowledgeBySource => TenantKey::KnowledgeBySource {
                    source: r.id(Dim::Thing)?,
                    knowledge: r.id(Dim::Knowledge)?,
                },
                Family::JunctionOut => TenantKey::JunctionOut {
                    knowledge: r.id(Dim::Knowledge)?,
                    thing: r.id(Dim::Thing)?,
                },
                Family::JunctionIn => TenantKey::JunctionIn {
                    thing: r.id(Dim::Thing)?,
                    knowledge: r.id(Dim::Knowledge)?,
                },
                Family::Counter => TenantKey::Counter(r.name()?),
                Family::Triggers => TenantKey::Triggers,
                Family::Setting => TenantKey::Setting(r.name()?),
                Family::Token => TenantKey::Token(r.id(Dim::Token)?),
                Family::Schema => TenantKey::Schema(r.name()?),
                Family::EventBySeq => TenantKey::EventBySeq {
                    seq: r.u64()?,
                    event: r.id(Dim::Event)?,
                },
            };
            Key::Tenant(tenant, entry)
        }
        _ => return None,
    };
    r.done().then_some(decoded)
}

/// Hex for messages about bad keys.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Integers stored as values.
pub fn encode_i64(v: i64) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

pub fn decode_i64(bytes: &[u8]) -> Result<i64> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| Error::corruption("counter", "not 8 bytes"))?;
    Ok(i64::from_be_bytes(arr))
}

pub fn encode_u64(v: u64) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

pub fn decode_u64(bytes: &[u8]) -> Result<u64> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| Error::corruption("sequence", "not 8 bytes"))?;
    Ok(u64::from_be_bytes(arr))
}

#[cfg(test)]
mod tests;
