//! `onedb dump`: the database (or one org) as JSON lines, read from one
//! snapshot and streamed record by record, so memory stays flat. The
//! order is fixed — vocabulary additions, then each tenant (the platform
//! first, then orgs by id) family by family in key order — so two dumps of
//! the same data are the same bytes. Within a tenant, what a record refers
//! to comes before it (schemas before things, things before connections,
//! knowledge before its links), so the loader checks each line as it comes.

use std::io::Write;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::graph::decode;
use crate::keys::{self, Family, Key, Tenant, TenantKey};
use crate::model::{Id, Org, Person, Trigger};
use crate::storage::{Scope, Storage, Txn};
use crate::transfer::line::{DUMP_FORMAT, Header, LinkLine, SchemaLine, Tagged, TypeLine};

/// What to dump.
#[derive(Debug, Clone, Default)]
pub struct DumpOptions {
    /// One org by slug; None for the whole database.
    pub org: Option<String>,
    /// Include password hashes and API tokens (their hashes).
    pub with_secrets: bool,
}

/// What a dump wrote.
#[derive(Debug, Clone, Default)]
pub struct DumpReport {
    /// Lines after the header.
    pub records: u64,
    pub commit: u64,
}

/// A tenant's families in dump order.
const FAMILIES: [Family; 9] = [
    Family::Schema,
    Family::Triggers,
    Family::Person,
    Family::Thing,
    Family::Connection,
    Family::Knowledge,
    Family::JunctionOut,
    Family::Token,
    Family::Event,
];

struct Writer<'w> {
    out: &'w mut dyn Write,
    with_secrets: bool,
    records: u64,
    progress: &'w mut dyn FnMut(u64),
}

impl Writer<'_> {
    /// A line made of a stored record's own bytes: `{"kind":…,` (and the
    /// tenant's `org`), then the record's fields as stored. Records are
    /// stored as their serde JSON (an event with its `seq` appended the way
    /// serde writes the field), so this is the line `line` would write,
    /// without decoding and encoding it again.
    fn spliced(
        &mut self,
        kind: &str,
        org: Option<Option<Id>>,
        stored: &[u8],
        rename: Option<(&[u8], &[u8])>,
    ) -> Result<()> {
        let Some(fields) = stored
            .strip_prefix(b"{")
            .filter(|f| f.len() > 1 && f[0] == b'"')
        else {
            return Err(Error::corruption(kind, "not a JSON object"));
        };
        self.out.write_all(b"{\"kind\":\"")?;
        self.out.write_all(kind.as_bytes())?;
        self.out.write_all(b"\",")?;
        match org {
            None => {}
            Some(None) => self.out.write_all(b"\"org\":null,")?,
            Some(Some(id)) => write!(self.out, "\"org\":\"{id}\",")?,
        }
        match rename.and_then(|(from, _)| find(fields, from).map(|at| (at, from.len()))) {
            Some((at, len)) => {
                let to = rename.map_or(&b""[..], |(_, to)| to);
                self.out.write_all(&fields[..at])?;
                self.out.write_all(to)?;
                self.out.write_all(&fields[at + len..])?;
            }
            None => self.out.write_all(fields)?,
        }
        self.out.write_all(b"\n")?;
        self.count();
        Ok(())
    }

    fn count(&mut self) {
        self.records += 1;
        if self.records.is_multiple_of(100_000) {
            (self.progress)(self.records);
        }
    }

    fn line<T: Serialize>(
        &mut self,
        kind: &'static str,
        org: Option<Option<Id>>,
        record: &T,
    ) -> Result<()> {
        serde_json::to_writer(&mut *self.out, &Tagged { kind, org, record })
            .map_err(|e| Error::io(format!("writing the dump: {e}")))?;
        self.out.write_all(b"\n")?;
        self.count();
        Ok(())
    }

    /// One tenant's records, family by family.
    fn tenant(&mut self, txn: &Txn<'_>, tenant: Tenant, org: Option<Id>) -> Result<()> {
        let at = Some(org);
        for family in FAMILIES {
            if family == Family::Token && !self.with_secrets {
                continue;
            }
            let mut scan = txn.scan_prefix(&tenant.family(family), false)?;
            while let Some(entry) = scan.next_ref() {
                let (key, value) = entry?;
                match family {
                    Family::Schema => {
                        let Key::Tenant(_, TenantKey::Schema(kind)) = keys::decode(key)? else {
                            continue;
                        };
                        let schema = decode("property schema", value)?;
                        self.line("schema", at, &SchemaLine { kind, schema })?;
                    }
                    Family::Triggers => {
                        for trigger in decode::<Vec<Trigger>>("trigger set", value)? {
                            self.line("trigger", at, &trigger)?;
                        }
                    }
                    Family::Person => {
                        let mut person: Person = decode("person", value)?;
                        if !self.with_secrets {
                            person.password_hash = None;
                        }
                        self.line("person", None, &person)?;
                    }
                    Family::Thing => self.spliced("thing", None, value, None)?,
                    Family::Connection => self.spliced("connection", at, value, None)?,
                    // The item's own `kind` (the second field, after the
                    // id) is `knowledgeType` in a dump.
                    Family::Knowledge => self.spliced(
                        "knowledge",
                        at,
                        value,
                        Some((b"\"kind\":", b"\"knowledgeType\":")),
                    )?,
                    Family::JunctionOut => {
                        let Key::Tenant(_, TenantKey::JunctionOut { knowledge, thing }) =
                            keys::decode(key)?
                        else {
                            continue;
                        };
                        let role = crate::graph::knowledge::parse_role(value)?;
                        let link = LinkLine {
                            knowledge,
                            thing,
                            role,
                        };
                        self.line("link", at, &link)?;
                    }
                    Family::Token => self.spliced("token", None, value, None)?,
                    Family::Event => self.spliced("event", at, value, None)?,
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Writes the dump to `out`; `progress` hears the record count now and then.
pub(crate) fn dump(
    storage: &Storage,
    options: &DumpOptions,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<DumpReport> {
    let txn = storage.read(Scope::platform(Tenant::PLATFORM));
    let commit = match txn.get(&keys::commit_seq())? {
        Some(bytes) => keys::decode_u64(&bytes)?,
        None => 0,
    };
    let mut orgs: Vec<Org> = Vec::new();
    for entry in txn.scan_prefix(&keys::orgs_prefix(), false)? {
        let (_, value) = entry?;
        orgs.push(decode("org", &value)?);
    }
    if let Some(slug) = &options.org {
        orgs.retain(|o| &o.slug == slug);
        if orgs.is_empty() {
            return Err(Error::not_found(format!(
                "organization {slug} does not exist"
            )));
        }
    }
    let header = Header {
        onedb_dump: DUMP_FORMAT,
        version: env!("CARGO_PKG_VERSION").to_string(),
        commit,
        org: options.org.clone(),
    };
    serde_json::to_writer(&mut *out, &header)
        .map_err(|e| Error::io(format!("writing the dump: {e}")))?;
    out.write_all(b"\n")?;
    let mut w = Writer {
        out,
        with_secrets: options.with_secrets,
        records: 0,
        progress,
    };
    for entry in txn.scan_prefix(&keys::vocab_prefix(), false)? {
        let (key, value) = entry?;
        if let Key::Vocab(kind, name) = keys::decode(&key)? {
            let category = String::from_utf8(value)
                .map_err(|_| Error::corruption("vocabulary", "category is not UTF-8"))?;
            let line = TypeLine {
                of: kind.as_str().to_string(),
                name,
                category,
            };
            w.line("type", None, &line)?;
        }
    }
    if options.org.is_none() {
        w.tenant(&txn, Tenant::PLATFORM, None)?;
    }
    for org in &orgs {
        w.line("org", None, org)?;
        w.tenant(&txn, Tenant::of_org(org.id), Some(org.id))?;
    }
    w.out.flush()?;
    Ok(DumpReport {
        records: w.records,
        commit,
    })
}
