//! `onedb load`: a dump (docs/dump-format.md) into a database that does not
//! hold its orgs yet. Every line is checked against the ontology and what
//! came before it; the first bad one stops the load with its line number.
//! The records and their index entries are staged as sorted table files
//! beside the database and ingested in one atomic step at the end, with
//! usage counted once per tenant — nothing of a failed or killed load is
//! ever visible. The search indexes are rebuilt from the store on the next
//! open (the load marks the index log pruned through its commit).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Read};

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::graph::bulk::BulkWriter;
use crate::graph::{check_json_size, check_text, decode, limits};
use crate::keys::{self, Key, Tenant};
use crate::model::{
    Connection, Dim, Event, Id, Knowledge, Org, Person, PersonStatus, Role, Thing, Token, Trigger,
    TriggerOn,
};
use crate::ontology::vocabulary::is_valid_type_name;
use crate::ontology::{PropertySchema, TypeKind, Vocabulary};
use crate::storage::{Scope, Storage, Txn};
use crate::transfer::line::{
    DUMP_FORMAT, Head, Header, KnowledgeLine, LinkLine, SchemaLine, TypeLine,
};

/// The longest line a dump may hold (a record's fields are bounded well
/// below it: 1 MiB of properties, 1 MiB of text, 65,536 dimensions).
const MAX_LINE_BYTES: u64 = 32 << 20;

/// What a load brought in.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Record lines read (after the header).
    pub records: u64,
    /// The slugs of the orgs it created.
    pub orgs: Vec<String>,
    /// The commit number the load became.
    pub commit: u64,
}

/// A thing or person seen so far, or another record's id.
#[derive(Clone, Copy)]
struct Node {
    tenant: u32,
    dim: Dim,
    /// A deleted thing, a removed person, deleted knowledge.
    dead: bool,
}

/// What the loader keeps of one tenant until the end.
struct TenantState {
    tenant: Tenant,
    triggers: Vec<Trigger>,
    schemas: HashMap<String, PropertySchema>,
    embedding_dim: Option<usize>,
}

impl TenantState {
    fn new(tenant: Tenant) -> TenantState {
        TenantState {
            tenant,
            triggers: Vec::new(),
            schemas: HashMap::new(),
            embedding_dim: None,
        }
    }
}

const PLATFORM: u32 = 0;

/// The record-by-record loader, shared by `onedb load` and the Convex
/// import (convex/), so both check and stage records the same way.
pub(super) struct Loader<'s> {
    /// The database before the load, for what it already holds.
    before: Txn<'s>,
    /// Whether the platform's own records (global things, platform owners)
    /// may be loaded: only into a new data directory.
    platform_open: bool,
    additions: Vec<(TypeKind, String, String)>,
    vocabulary: Vocabulary,
    /// Index 0 is the platform; orgs follow in the order their lines came.
    tenants: Vec<TenantState>,
    tenant_of_org: HashMap<u128, u32>,
    /// Every id loaded so far.
    ids: HashMap<u128, Node>,
    links: HashSet<(u128, u128)>,
    emails: HashSet<String>,
    slugs: Vec<String>,
    writer: BulkWriter,
}

/// Reads the dump from `input` and loads it into `storage`.
pub(crate) fn load(
    storage: &Storage,
    mut input: impl BufRead,
    progress: &mut dyn FnMut(u64),
) -> Result<LoadReport> {
    let mut buf = Vec::new();
    let mut n = 0u64;
    let header: Header = match next_line(&mut input, &mut buf, &mut n)? {
        Some(line) => serde_json::from_slice(line)
            .map_err(|e| at(1, format!("not a onedb dump header: {e}")))?,
        None => return Err(at(1, "the dump is empty")),
    };
    if header.onedb_dump != DUMP_FORMAT {
        return Err(at(
            1,
            format!(
                "dump format {} (this onedb reads format {DUMP_FORMAT})",
                header.onedb_dump
            ),
        ));
    }
    let mut loader = Loader::new(storage)?;
    let mut records = 0u64;
    while let Some(line) = next_line(&mut input, &mut buf, &mut n)? {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        loader.line(line).map_err(|e| at_line(n, e))?;
        records += 1;
        if records.is_multiple_of(100_000) {
            progress(records);
        }
    }
    loader.finish(storage, records)
}

/// The next line (without its newline), or None at the end.
fn next_line<'b>(
    input: &mut impl BufRead,
    buf: &'b mut Vec<u8>,
    n: &mut u64,
) -> Result<Option<&'b [u8]>> {
    buf.clear();
    *n += 1;
    let read = input
        .by_ref()
        .take(MAX_LINE_BYTES + 1)
        .read_until(b'\n', buf)
        .map_err(|e| at(*n, format!("cannot read: {e}")))?;
    if read == 0 {
        return Ok(None);
    }
    if buf.len() as u64 > MAX_LINE_BYTES {
        return Err(Error::too_large(format!(
            "line {n}: longer than {MAX_LINE_BYTES} bytes"
        )));
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    Ok(Some(buf.as_slice()))
}

fn at(line: u64, reason: impl std::fmt::Display) -> Error {
    Error::invalid(format!("line {line}: {reason}"))
}

/// The line number in front of an error, its code kept.
fn at_line(line: u64, e: Error) -> Error {
    Error::new(e.code(), format!("line {line}: {}", e.message))
}

/// `kind` and `org` read off the front of a line as `dump` writes it
/// (`{"kind":"…","org":…,`), sparing a parse of the whole line; None for
/// any other shape (then the line is parsed for them).
fn fast_head(line: &[u8]) -> Option<(String, Option<Id>)> {
    let rest = line.strip_prefix(b"{\"kind\":\"")?;
    let end = rest.iter().position(|b| *b == b'"')?;
    let kind = std::str::from_utf8(&rest[..end]).ok()?;
    if !kind.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    let rest = &rest[end + 1..];
    let org = if let Some(after) = rest.strip_prefix(b",\"org\":null,") {
        let _ = after;
        None
    } else if let Some(after) = rest.strip_prefix(b",\"org\":\"") {
        let end = after.iter().position(|b| *b == b'"')?;
        let text = std::str::from_utf8(&after[..end]).ok()?;
        Some(text.parse::<Id>().ok()?)
    } else if matches!(kind, "type" | "org" | "person" | "thing" | "token") {
        // Their tenant comes from the record itself.
        None
    } else {
        return None;
    };
    Some((kind.to_string(), org))
}

fn parse<T: DeserializeOwned>(kind: &str, line: &[u8]) -> Result<T> {
    serde_json::from_slice(line).map_err(|e| Error::invalid(format!("a bad {kind} line: {e}")))
}

impl<'s> Loader<'s> {
    pub(super) fn new(storage: &'s Storage) -> Result<Loader<'s>> {
        let before = storage.read(Scope::platform(Tenant::PLATFORM));
        let mut additions = Vec::new();
        for entry in before.scan_prefix(&keys::vocab_prefix(), false)? {
            let (key, value) = entry?;
            if let Key::Vocab(kind, name) = keys::decode(&key)? {
                let category = String::from_utf8(value)
                    .map_err(|_| Error::corruption("vocabulary", "category is not UTF-8"))?;
                additions.push((kind, name, category));
            }
        }
        // The platform's schemas hold in every org, loaded or not.
        let mut platform = TenantState::new(Tenant::PLATFORM);
        for entry in before.scan_prefix(&Tenant::PLATFORM.schemas(), false)? {
            let (key, value) = entry?;
            if let Key::Tenant(_, keys::TenantKey::Schema(kind)) = keys::decode(&key)? {
                let schema = PropertySchema::decode(&kind, &value)?;
                platform.schemas.insert(kind, schema);
            }
        }
        let platform_open = storage.last_commit()? == 0;
        Ok(Loader {
            vocabulary: Vocabulary::with_extensions(additions.clone()),
            additions,
            platform_open,
            before,
            tenants: vec![platform],
            tenant_of_org: HashMap::new(),
            ids: HashMap::new(),
            links: HashSet::new(),
            emails: HashSet::new(),
            slugs: Vec::new(),
            writer: BulkWriter::new(storage)?,
        })
    }

    fn line(&mut self, line: &[u8]) -> Result<()> {
        let (kind, org) = match fast_head(line) {
            Some(head) => head,
            None => {
                let head: Head = serde_json::from_slice(line)
                    .map_err(|e| Error::invalid(format!("not a dump line: {e}")))?;
                (head.kind, head.org)
            }
        };
        match kind.as_str() {
            "type" => self.type_line(parse("type", line)?),
            "org" => self.org(parse("org", line)?),
            // These records name their org themselves.
            "person" => {
                let person: Person = parse("person", line)?;
                let t = self.tenant(person.org)?;
                self.person(t, person)
            }
            "thing" => {
                let thing: Thing = parse("thing", line)?;
                let t = self.tenant(thing.org)?;
                self.thing(t, thing, line.len())
            }
            "token" => {
                let token: Token = parse("token", line)?;
                let t = self.tenant(token.org)?;
                self.token(t, token)
            }
            kind => {
                let t = self.tenant(org)?;
                match kind {
                    "schema" => self.schema(t, parse(kind, line)?),
                    "trigger" => self.trigger(t, parse(kind, line)?),
                    "connection" => self.connection(t, parse(kind, line)?, line.len()),
                    "knowledge" => self.knowledge(t, parse::<KnowledgeLine>(kind, line)?.into()),
                    "link" => self.link(t, parse(kind, line)?),
                    "event" => self.event(t, parse(kind, line)?, line.len()),
                    other => Err(Error::invalid(format!(
                        "unknown line kind {other:?} (type, org, schema, trigger, person, thing, connection, knowledge, link, token or event)"
                    ))),
                }
            }
        }
    }

    /// The tenant a record line belongs to: an org loaded by an earlier
    /// line, or the platform (org null) when the directory is new.
    pub(super) fn tenant(&self, org: Option<Id>) -> Result<u32> {
        match org {
            None if self.platform_open => Ok(PLATFORM),
            None => Err(Error::conflict(
                "a platform record (org null) loads only into a new data directory; dump one org with --org to load it here",
            )),
            Some(org) => self.tenant_of_org.get(&org.raw()).copied().ok_or_else(|| {
                Error::invalid(format!("org {org} is not loaded by an earlier org line"))
            }),
        }
    }

    /// Whether records of the platform (org null) may load: only into a
    /// new data directory.
    pub(super) fn accepts_platform(&self) -> bool {
        self.platform_open
    }

    fn org_of(&self, t: u32) -> Option<Id> {
        (t != PLATFORM).then(|| Id::from_raw(Dim::Org, self.tenants[t as usize].tenant.raw()))
    }

    /// Registers a new id; a second record with it is refused.
    fn new_id(&mut self, id: Id, dim: Dim, t: u32, dead: bool) -> Result<()> {
        if id.dim() != dim {
            return Err(Error::invalid(format!(
                "{id} is not a {} id",
                dim.prefix().trim_end_matches('_')
            )));
        }
        if self
            .ids
            .insert(
                id.raw(),
                Node {
                    tenant: t,
                    dim,
                    dead,
                },
            )
            .is_some()
        {
            return Err(Error::conflict(format!("duplicate id {id}")));
        }
        Ok(())
    }

    fn type_line(&mut self, line: TypeLine) -> Result<()> {
        let kind = TypeKind::parse(&line.of)?;
        if !is_valid_type_name(&line.name) {
            return Err(Error::invalid(format!(
                "a type name is a lowercase word of letters, digits and _: {:?}",
                line.name
            )));
        }
        check_text("a type's category", &line.category, limits::NAME_BYTES)?;
        if self.vocabulary.contains(kind, &line.name) {
            return Ok(());
        }
        self.writer.put_type(kind, &line.name, &line.category)?;
        self.additions.push((kind, line.name, line.category));
        self.vocabulary = Vocabulary::with_extensions(self.additions.clone());
        Ok(())
    }

    pub(super) fn org(&mut self, org: Org) -> Result<()> {
        crate::graph::orgs::check_slug(&org.slug)?;
        check_text("an org's name", &org.name, limits::NAME_BYTES)?;
        if org.id.dim() != Dim::Org {
            return Err(Error::invalid(format!("{} is not an org id", org.id)));
        }
        if self.before.get(&keys::org_slug(&org.slug))?.is_some()
            || self.before.get(&keys::org(org.id))?.is_some()
            || self.slugs.contains(&org.slug)
        {
            return Err(Error::conflict(format!(
                "organization {} already exists",
                org.slug
            )));
        }
        self.writer.put_org(&org)?;
        self.tenant_of_org
            .insert(org.id.raw(), self.tenants.len() as u32);
        self.tenants.push(TenantState::new(Tenant::of_org(org.id)));
        self.slugs.push(org.slug);
        Ok(())
    }

    fn schema(&mut self, t: u32, line: SchemaLine) -> Result<()> {
        self.vocabulary.check(TypeKind::Thing, &line.kind)?;
        check_json_size("a property schema", &line.schema, limits::SCHEMA_BYTES)?;
        let compiled = PropertySchema::compile(&line.kind, &line.schema)?;
        let state = &mut self.tenants[t as usize];
        if state.schemas.insert(line.kind.clone(), compiled).is_some() {
            return Err(Error::conflict(format!("a second schema of {}", line.kind)));
        }
        self.writer
            .put_schema(state.tenant, &line.kind, &line.schema)
    }

    fn trigger(&mut self, t: u32, trigger: Trigger) -> Result<()> {
        let on = match trigger.on {
            TriggerOn::Connect => TypeKind::Connection,
            _ => TypeKind::Thing,
        };
        self.vocabulary.check(on, &trigger.kind)?;
        self.vocabulary.check(TypeKind::Event, &trigger.emit)?;
        check_text("a trigger's name", &trigger.name, limits::NAME_BYTES)?;
        check_json_size(
            "a trigger's metadata",
            &trigger.metadata,
            limits::METADATA_BYTES,
        )?;
        let state = &mut self.tenants[t as usize];
        if state.triggers.iter().any(|x| x.name == trigger.name) {
            return Err(Error::conflict(format!(
                "trigger {} already exists",
                trigger.name
            )));
        }
        if state.triggers.len() >= limits::TRIGGERS_PER_ORG {
            return Err(Error::too_large(format!(
                "an organization has at most {} triggers",
                limits::TRIGGERS_PER_ORG
            )));
        }
        state.triggers.push(trigger);
        Ok(())
    }

    pub(super) fn person(&mut self, t: u32, person: Person) -> Result<()> {
        if person.org != self.org_of(t) {
            return Err(Error::invalid(format!(
                "person {} names another org than its line",
                person.id
            )));
        }
        if (t == PLATFORM) != (person.role == Role::PlatformOwner) {
            return Err(Error::invalid(format!(
                "person {}: platform owners, and only they, belong to the platform",
                person.id
            )));
        }
        // Root's login is no address; every other email is one.
        let email = if person.email == crate::db::ROOT_EMAIL && t == PLATFORM {
            person.email.clone()
        } else {
            crate::graph::people::normalize_email(&person.email)?
        };
        if email != person.email {
            return Err(Error::invalid(format!(
                "email {:?} is not normalized",
                person.email
            )));
        }
        check_text("a person's name", &person.name, limits::NAME_BYTES)?;
        let active = person.status == PersonStatus::Active;
        if active
            && (self.before.get(&keys::email(&email))?.is_some()
                || !self.emails.insert(email.clone()))
        {
            return Err(Error::conflict(format!("email {email} is already taken")));
        }
        self.new_id(person.id, Dim::Person, t, !active)?;
        self.writer
            .put_person(self.tenants[t as usize].tenant, &person)
    }

    pub(super) fn thing(&mut self, t: u32, mut thing: Thing, line_len: usize) -> Result<()> {
        if thing.org != self.org_of(t) {
            return Err(Error::invalid(format!(
                "thing {} names another org than its line",
                thing.id
            )));
        }
        self.vocabulary.check(TypeKind::Thing, &thing.kind)?;
        check_text("a thing's name", &thing.name, limits::NAME_BYTES)?;
        if line_len > limits::PROPERTIES_BYTES {
            check_json_size("properties", &thing.properties, limits::PROPERTIES_BYTES)?;
        }
        if thing.deleted_at.is_none() {
            for state in [&self.tenants[PLATFORM as usize], &self.tenants[t as usize]] {
                if let Some(schema) = state.schemas.get(&thing.kind) {
                    let mut properties = std::mem::take(&mut thing.properties).into_inner();
                    schema.check(&mut properties).map_err(|e| {
                        Error::new(e.code(), format!("thing {}: {}", thing.id, e.message))
                    })?;
                    thing.properties = properties.into();
                }
            }
        }
        self.new_id(thing.id, Dim::Thing, t, thing.deleted_at.is_some())?;
        self.writer
            .put_thing(self.tenants[t as usize].tenant, &thing)
    }

    /// Whether `id` is an end a connection of tenant `t` may have, and if
    /// so whether it is deleted.
    fn endpoint(&self, t: u32, id: Id, may_be_global: bool) -> Result<bool> {
        if let Some(node) = self.ids.get(&id.raw())
            && matches!(node.dim, Dim::Thing | Dim::Person)
            && id.dim() == node.dim
        {
            if node.tenant == t
                || (may_be_global && node.tenant == PLATFORM && id.dim() == Dim::Thing)
            {
                return Ok(node.dead);
            }
            return Err(Error::invalid(format!(
                "{id} belongs to another organization: a connection joins two records of one org"
            )));
        }
        if may_be_global
            && id.dim() == Dim::Thing
            && let Some(bytes) = self.before.get(&Tenant::PLATFORM.thing(id))?
        {
            let global: Thing = decode("thing", &bytes)?;
            return Ok(global.deleted_at.is_some());
        }
        Err(Error::not_found(format!(
            "{id} is not loaded before the connection that joins it"
        )))
    }

    pub(super) fn connection(&mut self, t: u32, c: Connection, line_len: usize) -> Result<()> {
        self.vocabulary.check(TypeKind::Connection, &c.kind)?;
        if line_len > limits::METADATA_BYTES {
            check_json_size("metadata", &c.metadata, limits::METADATA_BYTES)?;
        }
        if c.strength.is_some_and(|s| !s.is_finite()) {
            return Err(Error::invalid("a connection's strength is a finite number"));
        }
        let hidden = self.endpoint(t, c.from, false)? | self.endpoint(t, c.to, true)?;
        self.new_id(c.id, Dim::Connection, t, false)?;
        self.writer
            .put_connection(self.tenants[t as usize].tenant, &c, hidden)
    }

    pub(super) fn knowledge(&mut self, t: u32, k: Knowledge) -> Result<()> {
        check_text("knowledge text", &k.text, limits::TEXT_BYTES)?;
        if k.labels.len() > limits::LABELS {
            return Err(Error::too_large(format!(
                "at most {} labels",
                limits::LABELS
            )));
        }
        for label in &k.labels {
            check_text("a label", label, limits::LABEL_BYTES)?;
        }
        if let Some(e) = &k.embedding {
            if e.is_empty() || e.len() > limits::EMBEDDING_DIMS {
                return Err(Error::invalid(format!(
                    "an embedding has 1 to {} dimensions",
                    limits::EMBEDDING_DIMS
                )));
            }
            if e.iter().any(|x| !x.is_finite()) {
                return Err(Error::invalid("an embedding holds finite numbers only"));
            }
            if let Some(dim) = self.tenants[t as usize].embedding_dim
                && dim != e.len()
            {
                return Err(Error::invalid(format!(
                    "knowledge {}: an embedding of {} dimensions, the org's have {dim}",
                    k.id,
                    e.len()
                )));
            }
        }
        if let Some(source) = k.source
            && !self
                .ids
                .get(&source.raw())
                .is_some_and(|n| n.tenant == t && n.dim == Dim::Thing && source.dim() == Dim::Thing)
        {
            return Err(Error::not_found(format!(
                "knowledge {}: its source {source} is no thing loaded before it in its org",
                k.id
            )));
        }
        self.new_id(k.id, Dim::Knowledge, t, k.deleted_at.is_some())?;
        // Set only once the record passed every check (the Convex import
        // goes on past an invalid one).
        if let Some(e) = &k.embedding {
            self.tenants[t as usize]
                .embedding_dim
                .get_or_insert(e.len());
        }
        self.writer
            .put_knowledge(self.tenants[t as usize].tenant, &k)
    }

    pub(super) fn link(&mut self, t: u32, link: LinkLine) -> Result<()> {
        let known = |id: Id, dim: Dim| {
            id.dim() == dim
                && self
                    .ids
                    .get(&id.raw())
                    .is_some_and(|n| n.tenant == t && n.dim == dim)
        };
        if !known(link.knowledge, Dim::Knowledge) || !known(link.thing, Dim::Thing) {
            return Err(Error::not_found(format!(
                "a link of {} and {}, not both loaded before it in its org",
                link.knowledge, link.thing
            )));
        }
        if !self.links.insert((link.knowledge.raw(), link.thing.raw())) {
            return Err(Error::conflict(format!(
                "a second link of {} and {}",
                link.knowledge, link.thing
            )));
        }
        self.writer.put_link(
            self.tenants[t as usize].tenant,
            link.knowledge,
            link.thing,
            link.role,
        )
    }

    fn token(&mut self, t: u32, token: Token) -> Result<()> {
        let owner = self.ids.get(&token.person.raw());
        if token.org != self.org_of(t)
            || !owner.is_some_and(|n| n.tenant == t && n.dim == Dim::Person)
        {
            return Err(Error::invalid(format!(
                "token {}: its person is not loaded before it in its org",
                token.id
            )));
        }
        if token.hash.len() != 64 || !token.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(format!(
                "token {}: its hash is not 64 hex digits",
                token.id
            )));
        }
        check_text("a token's name", &token.name, limits::NAME_BYTES)?;
        if self.before.get(&keys::token_home(token.id))?.is_some() {
            return Err(Error::conflict(format!("duplicate id {}", token.id)));
        }
        self.new_id(token.id, Dim::Token, t, false)?;
        self.writer
            .put_token(self.tenants[t as usize].tenant, &token)
    }

    pub(super) fn event(&mut self, t: u32, e: Event, line_len: usize) -> Result<()> {
        self.vocabulary.check(TypeKind::Event, &e.kind)?;
        if e.actor.is_some_and(|a| a.dim() != Dim::Person) {
            return Err(Error::invalid(format!(
                "event {}: its actor is no person",
                e.id
            )));
        }
        if line_len > limits::METADATA_BYTES {
            check_json_size("metadata", &e.metadata, limits::METADATA_BYTES)?;
        }
        self.new_id(e.id, Dim::Event, t, false)?;
        self.writer.put_event(self.tenants[t as usize].tenant, &e)
    }

    pub(super) fn finish(mut self, storage: &Storage, records: u64) -> Result<LoadReport> {
        for state in &self.tenants {
            if !state.triggers.is_empty() {
                self.writer.put_triggers(state.tenant, &state.triggers)?;
            }
        }
        drop(self.before);
        let commit = self.writer.finish(storage)?;
        Ok(LoadReport {
            records,
            orgs: self.slugs,
            commit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_of_a_line_is_read_off_its_front() {
        let org = "org_01M944R3T924XH1R36RE36WQDA";
        let line = format!(r#"{{"kind":"event","org":"{org}","id":"x"}}"#);
        let (kind, at) = fast_head(line.as_bytes()).unwrap();
        assert_eq!(
            (kind.as_str(), at.map(|o| o.to_string())),
            ("event", Some(org.to_string()))
        );
        let (kind, at) = fast_head(br#"{"kind":"link","org":null,"thing":1}"#).unwrap();
        assert_eq!((kind.as_str(), at), ("link", None));
        let (kind, _) = fast_head(br#"{"kind":"thing","id":"thg_1"}"#).unwrap();
        assert_eq!(kind, "thing");
        // Any other shape is parsed in full.
        assert!(fast_head(br#"{"kind":"event","id":"x","org":null}"#).is_none());
        assert!(fast_head(br#"{"org":null,"kind":"event"}"#).is_none());
        assert!(fast_head(br#"{"kind":"Event","org":null,"#).is_none());
        assert!(fast_head(br#"{"kind":"event","org":"nonsense","#).is_none());
        assert!(fast_head(b"{\"kind\":\"ev").is_none());
    }
}
