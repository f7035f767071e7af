//! `onedb load --from convex EXPORT.zip`: the snapshot export of the
//! original Convex backend (docs/migrate-from-convex.md). Its tables are
//! read in dependency order, each document mapped to a onedb record and
//! fed through the same loader as a dump's lines — the same checks, the
//! same all-or-nothing staged ingest and index rebuild. A document that
//! breaks the ontology, or depends on one that does, is reported by table
//! and `_id`; nothing is loaded then, unless the caller skips them.

mod archive;
mod ids;
mod quotas;
mod records;
mod value;

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, ErrorCode, Result};
use crate::model::{Dim, Id, KnowledgeKind, PersonStatus, Props};
use crate::storage::{Durability, Storage};
use crate::transfer::line::LinkLine;
use crate::transfer::load::Loader;

use archive::Export;
use ids::{Ids, Ref};
use quotas::Quotas;
use records::Doc;

/// The tables read, in the order their references need.
pub const TABLES: [&str; 7] = [
    "organizations",
    "people",
    "things",
    "connections",
    "knowledge",
    "thingKnowledge",
    "events",
];

/// A document that was not loaded, and why.
#[derive(Debug, Clone)]
pub struct Invalid {
    pub table: &'static str,
    pub id: String,
    pub reason: String,
}

/// What an import read and did.
#[derive(Debug, Clone, Default)]
pub struct ConvexReport {
    /// Documents read, over all tables.
    pub documents: u64,
    /// Documents loaded (all but the invalid ones, when loaded).
    pub loaded: u64,
    /// The slugs of the orgs it created.
    pub orgs: Vec<String>,
    pub invalid: Vec<Invalid>,
    /// The commit the import became; None when nothing was loaded.
    pub commit: Option<u64>,
}

/// Imports the export at `path` into the data directory `dir` (created if
/// new; no other process may hold it). With invalid documents, loads
/// nothing unless `skip_invalid`; either way they are in the report.
pub fn import(
    dir: &Path,
    path: &Path,
    skip_invalid: bool,
    progress: &mut dyn FnMut(u64),
) -> Result<ConvexReport> {
    let mut export = Export::open(path)?;
    if !TABLES.iter().any(|t| export.has(t)) {
        return Err(Error::invalid(format!(
            "{}: holds none of the tables {} (as <table>/documents.jsonl): not a Convex export of the ontology",
            path.display(),
            TABLES.join(", ")
        )));
    }
    let linked = first_links(&mut export)?;
    let storage = Storage::open(dir, Durability::Sync)?;
    let mut import = Import {
        loader: Loader::new(&storage)?,
        ids: Ids::default(),
        quotas: Quotas::default(),
        linked,
        report: ConvexReport::default(),
    };
    for table in TABLES {
        export.each_line(table, &mut |n, line| {
            import.document(table, n, line)?;
            if import.report.documents.is_multiple_of(100_000) {
                progress(import.report.documents);
            }
            Ok(())
        })?;
    }
    let Import {
        loader, mut report, ..
    } = import;
    if !report.invalid.is_empty() && !skip_invalid {
        // Dropping the loader removes what it staged.
        return Ok(report);
    }
    let loaded = loader.finish(&storage, report.loaded)?;
    report.orgs = loaded.orgs;
    report.commit = Some(loaded.commit);
    Ok(report)
}

/// Why a document was not loaded: it is invalid (reported, the import
/// goes on), or the import cannot go on.
enum Fault {
    Invalid(String),
    Fatal(Error),
}

impl From<String> for Fault {
    fn from(reason: String) -> Fault {
        Fault::Invalid(reason)
    }
}

impl From<&str> for Fault {
    fn from(reason: &str) -> Fault {
        Fault::Invalid(reason.to_string())
    }
}

/// The loader's refusal of a record makes the document invalid; a failing
/// disk or store stops the import.
impl From<Error> for Fault {
    fn from(e: Error) -> Fault {
        match e.code() {
            ErrorCode::Io | ErrorCode::Corruption => Fault::Fatal(e),
            _ => Fault::Invalid(e.message),
        }
    }
}

/// The first thing `thingKnowledge` links each knowledge `_id` to: the org
/// of knowledge that names neither its org nor a source.
fn first_links(export: &mut Export) -> Result<HashMap<String, String>> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Link {
        knowledge_id: Option<String>,
        thing_id: Option<String>,
    }
    let mut linked = HashMap::new();
    export.each_line("thingKnowledge", &mut |n, line| {
        // A link of another shape is reported when it is loaded.
        if let Ok(Link {
            knowledge_id: Some(k),
            thing_id: Some(t),
        }) = serde_json::from_slice(line)
        {
            linked.entry(k).or_insert(t);
        } else {
            serde_json::from_slice::<Value>(line).map_err(|e| not_json("thingKnowledge", n, e))?;
        }
        Ok(())
    })?;
    Ok(linked)
}

fn not_json(table: &str, n: u64, e: impl std::fmt::Display) -> Error {
    Error::invalid(format!(
        "{table}/documents.jsonl line {n}: not a JSON document ({e}); the export is damaged"
    ))
}

struct Import<'s> {
    loader: Loader<'s>,
    ids: Ids,
    quotas: Quotas,
    linked: HashMap<String, String>,
    report: ConvexReport,
}

impl Import<'_> {
    /// One line of a table: a damaged line stops the import; an invalid
    /// document is reported and marked, so what refers to it is too.
    fn document(&mut self, table: &'static str, n: u64, line: &[u8]) -> Result<()> {
        let fields = match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(fields)) => fields,
            Ok(_) => return Err(not_json(table, n, "not an object")),
            Err(e) => return Err(not_json(table, n, e)),
        };
        let Some(Value::String(id)) = fields.get("_id") else {
            return Err(Error::invalid(format!(
                "{table}/documents.jsonl line {n}: a document without an _id; the export is damaged"
            )));
        };
        let id = id.clone();
        self.report.documents += 1;
        let result = match value::decode(Value::Object(fields)) {
            Ok(Value::Object(fields)) => self.record(table, &id, &fields, line.len()),
            Ok(_) => Err(Fault::Invalid("not an object".into())),
            Err(reason) => Err(Fault::Invalid(reason)),
        };
        match result {
            Ok(()) => self.report.loaded += 1,
            Err(Fault::Invalid(reason)) => {
                self.ids.invalid(&id, table);
                self.report.invalid.push(Invalid { table, id, reason });
            }
            Err(Fault::Fatal(e)) => {
                return Err(Error::new(e.code(), format!("{table}/{id}: {}", e.message)));
            }
        }
        Ok(())
    }

    /// The tenant of a record of `org` (None: the platform).
    fn tenant(&self, org: Option<Id>) -> std::result::Result<u32, Fault> {
        if org.is_none() && !self.loader.accepts_platform() {
            return Err(Fault::Invalid(
                "a record without an organization (a platform owner or global thing) loads only into a new data directory".into(),
            ));
        }
        Ok(self.loader.tenant(org)?)
    }

    fn record(
        &mut self,
        table: &'static str,
        id: &str,
        fields: &Props,
        len: usize,
    ) -> std::result::Result<(), Fault> {
        let doc = Doc::new(id, fields)?;
        let plain = |id: Id, org: Option<Id>| Ref {
            id,
            org,
            chunk: false,
        };
        let loaded = match table {
            "organizations" => {
                let org = records::org(&doc)?;
                let id = org.id;
                self.quotas.add_org(&org);
                self.loader.org(org)?;
                plain(id, Some(id))
            }
            "people" => {
                let person = records::person(&doc, &self.ids)?;
                let (id, org) = (person.id, person.org);
                let counts: &[&str] = match person.status {
                    PersonStatus::Active => &["people"],
                    PersonStatus::Removed => &[],
                };
                self.quotas.check(org, counts)?;
                let t = self.tenant(org)?;
                self.loader.person(t, person)?;
                self.quotas.count(org, counts);
                plain(id, org)
            }
            "things" => {
                let thing = records::thing(&doc, &self.ids)?;
                let (id, org, kind) = (thing.id, thing.org, thing.kind.clone());
                let names = ["things", kind.as_str()];
                let counts: &[&str] = match thing.deleted_at {
                    None => &names,
                    Some(_) => &[],
                };
                self.quotas.check(org, counts)?;
                let t = self.tenant(org)?;
                self.loader.thing(t, thing, len)?;
                self.quotas.count(org, counts);
                plain(id, org)
            }
            "connections" => {
                let (c, org) = records::connection(&doc, &self.ids)?;
                let id = c.id;
                self.quotas.check(org, &["connections"])?;
                let t = self.tenant(org)?;
                self.loader.connection(t, c, len)?;
                self.quotas.count(org, &["connections"]);
                plain(id, org)
            }
            "knowledge" => {
                let linked = self.linked.get(id).map(|thing| {
                    self.ids
                        .resolve("its thingKnowledge's thingId", thing, &[Dim::Thing])
                });
                let (k, org) = records::knowledge(&doc, &self.ids, linked)?;
                let r = Ref {
                    id: k.id,
                    org,
                    chunk: k.kind == KnowledgeKind::Chunk,
                };
                let counts: &[&str] = if k.deleted_at.is_none() {
                    &["knowledge"]
                } else {
                    &[]
                };
                self.quotas.check(org, counts)?;
                let t = self.tenant(org)?;
                self.loader.knowledge(t, k)?;
                self.quotas.count(org, counts);
                r
            }
            "thingKnowledge" => {
                let (knowledge, thing, role, org) = records::link(&doc, &self.ids)?;
                let t = self.tenant(org)?;
                self.loader.link(
                    t,
                    LinkLine {
                        knowledge,
                        thing,
                        role,
                    },
                )?;
                // Nothing refers to a link.
                return Ok(());
            }
            "events" => {
                let (e, org) = records::event(&doc, &self.ids)?;
                let id = e.id;
                let t = self.tenant(org)?;
                self.loader.event(t, e, len)?;
                plain(id, org)
            }
            other => return Err(Fault::Invalid(format!("an unknown table {other}"))),
        };
        self.ids.loaded(id, loaded);
        Ok(())
    }
}
