//! The graph: the six dimensions on top of storage, reached only through a
//! tenant-scoped transaction ([`ReadTxn`]). Every write runs the standard
//! pipeline of ONTOLOGY.md — authorize, validate, check limits, write the
//! entity and its index entries, run triggers, log the event(s), count usage —
//! inside that one transaction, so it commits whole or not at all.

pub(crate) mod bulk;
mod catalog;
pub(crate) mod connections;
mod events;
pub(crate) mod knowledge;
pub(crate) mod logins;
mod mutation;
pub(crate) mod orgs;
pub(crate) mod people;
mod schemas;
pub(crate) mod things;
mod tokens;
mod triggers;
mod usage;
pub mod validate;

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::keys::Tenant;
use crate::model::{Id, Org, Person};
use crate::ontology::{Action, Grant, Role, TypeKind, Vocabulary, roles};
use crate::storage::hash::FxHashMap;
use crate::storage::{Scope, Storage, Txn};

pub(crate) use catalog::Catalog;
pub use connections::{Edge, NewConnection};
use events::{Audit, AuditLog};
pub use events::{EventFilter, EventsAfter, event_json};
pub use knowledge::NewKnowledge;
pub use mutation::{Applied, Mutation};
pub use orgs::OrgUpdate;
pub use people::NewPerson;
pub use things::{NewThing, ThingUpdate};
pub use tokens::{IssuedToken, NewToken};
pub(crate) use tokens::{find_token, token_refused};
pub use usage::UsageRow;
pub(crate) use usage::limit_of;

pub(crate) use crate::model::codec::{decode, encode};
pub use crate::model::limits;

/// Who is acting: an authenticated person.
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    pub person: Id,
    pub email: String,
    pub role: Role,
    /// The person's own org; None for the platform owner.
    pub org: Option<Id>,
}

impl Actor {
    pub fn from_person(p: &Person) -> Actor {
        Actor {
            person: p.id,
            email: p.email.clone(),
            role: p.role,
            org: p.org,
        }
    }
}

/// A read transaction on one organization's data (or the platform
/// tenant's), acting as one person: one consistent snapshot. Its public
/// methods only read; the engine's write steps live here too, private to
/// `graph`, because a [`WriteTxn`] is a read transaction plus the right to
/// use them.
///
/// A reader has no write methods:
///
/// ```compile_fail,E0624
/// # fn f(session: &onedb::Session) -> onedb::Result<()> {
/// let mut read = session.read()?;
/// read.create_thing(onedb::NewThing::default())?;
/// # Ok(()) }
/// ```
///
/// where a writer has:
///
/// ```
/// # fn f(session: &onedb::Session) -> onedb::Result<()> {
/// let mut write = session.write()?;
/// write.create_thing(onedb::NewThing::default())?;
/// # Ok(()) }
/// ```
pub struct ReadTxn<'a> {
    catalog: &'a Catalog,
    txn: Txn<'a>,
    actor: Actor,
    /// The org the transaction works in; None is the platform tenant.
    org: Option<Arc<Org>>,
    vocabulary: Arc<Vocabulary>,
    vocabulary_changed: bool,
    /// A token was revoked or a person removed: sessions check again.
    access_changed: bool,
    /// Things and people this transaction created (and did not delete or
    /// remove since), with their tenant. Their ids are new: no stored key
    /// and no other transaction can name them yet. A map, so a bulk load
    /// that connects what it creates stays linear.
    created: FxHashMap<Id, Tenant>,
    /// The trigger set as read (for update) in this transaction, per
    /// tenant; forgotten when the transaction writes it.
    triggers: Option<(Tenant, Arc<Vec<crate::model::Trigger>>)>,
    /// The events the running mutation's own step recorded, for the
    /// pipeline to log (`WriteTxn::apply`).
    audits: Vec<events::Audit>,
    /// Property schemas read in this transaction, by key (None: the key
    /// holds none); forgotten when the transaction writes one.
    schemas: FxHashMap<Vec<u8>, Option<Arc<crate::ontology::PropertySchema>>>,
}

/// A write transaction: everything a [`ReadTxn`] reads (its own writes
/// included), the mutations, and `commit`. Nothing is stored until
/// `commit`; dropped uncommitted, it leaves no trace.
pub struct WriteTxn<'a>(ReadTxn<'a>);

impl<'a> std::ops::Deref for WriteTxn<'a> {
    type Target = ReadTxn<'a>;
    fn deref(&self) -> &ReadTxn<'a> {
        &self.0
    }
}

impl<'a> std::ops::DerefMut for WriteTxn<'a> {
    fn deref_mut(&mut self) -> &mut ReadTxn<'a> {
        &mut self.0
    }
}

impl<'a> WriteTxn<'a> {
    /// A write transaction as `actor` in `org` (see `ReadTxn::open`) over
    /// `txn`, a write transaction of the store: `Storage::write`, or
    /// `Storage::write_guessing` for a caller that runs it again on
    /// `CONFLICT` and when `guessed_wrong` says so.
    pub(crate) fn open(
        catalog: &'a Catalog,
        txn: Txn<'a>,
        actor: Actor,
        org: Option<Arc<Org>>,
    ) -> Result<WriteTxn<'a>> {
        ReadTxn::begin(catalog, txn, actor, org).map(WriteTxn)
    }

    /// See `Txn::assume_unchanged`.
    pub(crate) fn assume_unchanged(&self, keys: &[Vec<u8>], seq: u64) -> bool {
        self.txn.assume_unchanged(keys, seq)
    }

    /// Whether a copy this transaction used from an earlier one has
    /// changed since (`Txn::guessed_wrong`): an error it ended in may be
    /// that copy's doing.
    pub(crate) fn guessed_wrong(&self) -> bool {
        self.txn.guessed_wrong()
    }

    /// The transaction that creates the platform owner of a new database
    /// (who cannot be checked for yet).
    pub(crate) fn bootstrap(
        catalog: &'a Catalog,
        storage: &'a Storage,
        root: Actor,
    ) -> WriteTxn<'a> {
        let txn = storage.write(Scope::platform(Tenant::PLATFORM));
        WriteTxn(ReadTxn::new(catalog, txn, root))
    }

    /// Commits every write of this transaction atomically.
    pub fn commit(self) -> Result<u64> {
        let mut t = self.0;
        let created = std::mem::take(&mut t.created);
        t.txn.mark_created(
            created
                .into_iter()
                .map(|(id, tenant)| crate::keys::Changed { tenant, id }),
        );
        let storage = t.txn.storage();
        let seq = t.txn.commit()?;
        if t.vocabulary_changed {
            t.catalog.reload(storage)?;
        }
        if t.access_changed {
            t.catalog.access_changed();
        }
        Ok(seq)
    }

    /// Whether the transaction has anything to commit.
    pub fn is_dirty(&self) -> bool {
        self.txn.is_dirty()
    }
}

/// The first batch `batched` pulls; each next one is twice as big, up
/// to `MAX_BATCH`. Small at first so a statement that wants a few rows
/// reads few more than it needs.
pub(crate) const FIRST_BATCH: usize = 8;
const MAX_BATCH: usize = 128;

#[cfg(test)]
thread_local! {
    /// Tests: the entries `batched` has loaded on this thread.
    pub(crate) static LOADED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Pulls `entries` in growing batches, the first of `first` (at most
/// `MAX_BATCH`), and turns each batch into records with one call of `load`
/// (a multi-get), yielding them in order and skipping the Nones. Lazy:
/// what is not pulled is not read.
pub(crate) fn batched<E, T>(
    mut entries: impl Iterator<Item = E>,
    first: usize,
    mut load: impl FnMut(Vec<E>) -> Vec<Result<Option<T>>>,
) -> impl Iterator<Item = Result<T>> {
    let mut size = first.clamp(1, MAX_BATCH);
    let mut ready = Vec::new().into_iter();
    std::iter::from_fn(move || {
        loop {
            match ready.next() {
                Some(Ok(Some(record))) => return Some(Ok(record)),
                Some(Ok(None)) => continue,
                Some(Err(e)) => return Some(Err(e)),
                None => {}
            }
            let batch: Vec<E> = entries.by_ref().take(size).collect();
            if batch.is_empty() {
                return None;
            }
            size = (size * 2).min(MAX_BATCH);
            #[cfg(test)]
            LOADED.with(|n| n.set(n.get() + batch.len()));
            ready = load(batch).into_iter();
        }
    })
}

impl<'a> ReadTxn<'a> {
    /// A read transaction as `actor` in `org` (None: the platform tenant),
    /// which the actor must be allowed to act in; `scope` says which keys
    /// the storage transaction may touch.
    pub(crate) fn open(
        catalog: &'a Catalog,
        storage: &'a Storage,
        scope: Scope,
        actor: Actor,
        org: Option<Arc<Org>>,
    ) -> Result<ReadTxn<'a>> {
        ReadTxn::begin(catalog, storage.read(scope), actor, org)
    }

    fn new(catalog: &'a Catalog, txn: Txn<'a>, actor: Actor) -> ReadTxn<'a> {
        ReadTxn {
            catalog,
            vocabulary: catalog.vocabulary(),
            txn,
            actor,
            org: None,
            vocabulary_changed: false,
            access_changed: false,
            created: FxHashMap::default(),
            triggers: None,
            audits: Vec::new(),
            schemas: FxHashMap::default(),
        }
    }

    /// Checks that the actor may act in `org`. A writer re-reads the org
    /// for update, so its status and limits hold until the commit (a
    /// forged or stale copy counts for nothing), and checks that the actor
    /// is still active; a reader uses the session's copy.
    fn begin(
        catalog: &'a Catalog,
        txn: Txn<'a>,
        actor: Actor,
        org: Option<Arc<Org>>,
    ) -> Result<ReadTxn<'a>> {
        let mut t = ReadTxn::new(catalog, txn, actor);
        match t.open_in(org) {
            Ok(()) => Ok(t),
            // Refused on a copy that has changed since: run again.
            Err(_) if t.txn.guessed_wrong() => Err(crate::storage::out_of_date()),
            Err(e) => Err(e),
        }
    }

    /// Opens the transaction in `org` as the actor, if they may.
    fn open_in(&mut self, org: Option<Arc<Org>>) -> Result<()> {
        if self.actor.role != Role::PlatformOwner
            && (org.is_none() || self.actor.org != org.as_ref().map(|o| o.id))
        {
            return Err(Error::forbidden(
                "a person acts only inside their own organization",
            ));
        }
        self.org = match org {
            Some(o) if self.is_writable() => Some(self.load_org_for_update(o.id)?),
            other => other,
        };
        if self.is_writable() {
            self.check_actor_active()?;
        }
        Ok(())
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The org this transaction works in; None for the platform tenant.
    pub fn org(&self) -> Option<&Org> {
        self.org.as_deref()
    }

    /// Ok for a known type; `UNKNOWN_TYPE` otherwise. On a shared store
    /// the vocabulary this process keeps may lack a type another server
    /// added, so a miss is checked again against this snapshot's.
    pub fn check_type(&self, kind: TypeKind, name: &str) -> Result<()> {
        match self.vocabulary.check(kind, name) {
            Err(_) if self.txn.storage().engine().shared() => {
                self.catalog.reread(&self.txn)?.check(kind, name)
            }
            checked => checked,
        }
    }

    /// The vocabulary as this snapshot holds it (`SHOW TYPES`).
    pub fn current_vocabulary(&self) -> Result<Arc<Vocabulary>> {
        if self.txn.storage().engine().shared() {
            self.catalog.reread(&self.txn)
        } else {
            Ok(self.vocabulary.clone())
        }
    }

    /// The time on the database's clock.
    pub fn now(&self) -> crate::model::Millis {
        self.catalog.clock().now()
    }

    /// A new id made at the database clock's time.
    fn new_id(&self, dim: crate::model::Dim) -> Id {
        self.catalog.clock().new_id(dim)
    }

    pub(crate) fn tenant(&self) -> Tenant {
        self.txn.tenant()
    }

    /// The storage transaction underneath (for the search module's reads
    /// of what this transaction wrote).
    pub(crate) fn storage_txn(&self) -> &Txn<'a> {
        &self.txn
    }

    /// Whether this is a `WriteTxn`'s reader: reads for update only then.
    pub(crate) fn is_writable(&self) -> bool {
        self.txn.is_writable()
    }

    /// A writer's actor must still be an active person.
    fn check_actor_active(&self) -> Result<()> {
        let tenant = self.actor.org.map_or(Tenant::PLATFORM, Tenant::of_org);
        let person = self.load_shared::<Person>("person", &tenant.person(self.actor.person))?;
        match person {
            Some((p, _)) if p.status == crate::model::PersonStatus::Active => Ok(()),
            _ => Err(Error::new(
                crate::error::ErrorCode::NotAuthenticated,
                "this person no longer exists",
            )),
        }
    }

    fn load_org_for_update(&mut self, id: Id) -> Result<Arc<Org>> {
        self.load_shared_for_update::<Org>("org", &crate::keys::org(id))?
            .map(|(o, _)| o)
            .ok_or_else(|| Error::not_found(format!("organization {id} does not exist")))
    }

    // ---- authorization ----

    /// Whether this transaction created `id` (a thing or person, live).
    fn created_here(&self, id: Id) -> bool {
        self.created.contains_key(&id)
    }

    /// The permission table's answer for the actor; `FORBIDDEN` on Deny.
    fn authorize(&self, action: Action) -> Result<Grant> {
        let grant = roles::grant(self.actor.role, action);
        if grant == Grant::Deny {
            return Err(Error::forbidden(format!(
                "{} may not {}",
                self.actor.role.as_str(),
                describe(action)
            )));
        }
        Ok(grant)
    }

    /// Whether the actor reads everything in the org (all but customers).
    pub(crate) fn reads_all(&self) -> bool {
        roles::grant(self.actor.role, Action::ReadAll) == Grant::Allow
    }

    /// Whether the actor may see a node (a thing, person or knowledge item).
    pub(crate) fn node_visible(&self, id: Id) -> Result<bool> {
        use crate::model::Dim;
        Ok(match id.dim() {
            Dim::Thing => self.thing(id)?.is_some(),
            Dim::Person => self.person(id)?.is_some(),
            Dim::Knowledge => self.knowledge(id)?.is_some(),
            _ => false,
        })
    }

    /// Writes need an org that accepts them (active or trial).
    fn check_org_writable(&self) -> Result<()> {
        if let Some(org) = &self.org
            && !org.status.accepts_writes()
        {
            return Err(Error::forbidden(format!(
                "organization {} is {} and rejects writes",
                org.slug,
                org.status.as_str()
            )));
        }
        Ok(())
    }

    /// A name for messages: the org's slug or "platform".
    fn org_label(&self) -> &str {
        self.org.as_ref().map_or("platform", |o| o.slug.as_str())
    }

    fn org_id(&self) -> Option<Id> {
        self.org.as_ref().map(|o| o.id)
    }

    // ---- records ----

    fn load<T: DeserializeOwned>(&self, what: &str, key: &[u8]) -> Result<Option<T>> {
        match self.txn.get(key)? {
            Some(bytes) => decode(what, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Reads a record for update: the commit conflicts if it changed since.
    fn load_for_update<T: DeserializeOwned>(
        &mut self,
        what: &str,
        key: &[u8],
    ) -> Result<Option<(T, usize)>> {
        match self.txn.get_for_update(key)? {
            Some(bytes) => Ok(Some((decode(what, &bytes)?, bytes.len()))),
            None => Ok(None),
        }
    }

    /// `load` for the records every writer reads and few commits change
    /// (orgs, people, trigger sets): a shared decoded copy when the storage
    /// layer has one valid for this snapshot.
    fn load_shared<T: DeserializeOwned + Send + Sync + 'static>(
        &self,
        what: &str,
        key: &[u8],
    ) -> Result<Option<(Arc<T>, usize)>> {
        self.txn.get_decoded(key, |bytes| decode(what, bytes))
    }

    /// `load_shared`, read for update.
    fn load_shared_for_update<T: DeserializeOwned + Send + Sync + 'static>(
        &mut self,
        what: &str,
        key: &[u8],
    ) -> Result<Option<(Arc<T>, usize)>> {
        self.txn
            .get_decoded_for_update(key, |bytes| decode(what, bytes))
    }

    /// Writes a record and counts its size change toward `storage_bytes`.
    fn store<T: Serialize>(
        &mut self,
        key: Vec<u8>,
        record: &T,
        old_len: Option<usize>,
    ) -> Result<()> {
        let bytes = encode(record)?;
        let new_size = (key.len() + bytes.len()) as i64;
        let old_size = old_len.map_or(0, |len| (key.len() + len) as i64);
        self.txn.put(key, bytes)?;
        self.count_storage(new_size - old_size)
    }

    fn index(&mut self, key: Vec<u8>) -> Result<()> {
        self.txn.put(key, Vec::new())
    }

    fn unindex(&mut self, key: Vec<u8>) -> Result<()> {
        self.txn.delete(key)
    }
}

fn describe(action: Action) -> &'static str {
    match action {
        Action::ManageOrgs => "manage organizations",
        Action::ExtendVocabulary => "extend the vocabulary",
        Action::EnterAnyOrg => "enter another organization",
        Action::WriteGlobal => "write global platform things",
        Action::ManagePeople => "manage people",
        Action::ManageTriggers => "manage triggers",
        Action::ManageTokens => "manage API tokens",
        Action::ManageSchemas => "manage property schemas",
        Action::CreateThing => "create things",
        Action::UpdateThing => "update things",
        Action::ChangeStatus => "change the status of things",
        Action::DeleteThing => "delete things",
        Action::Connect => "create connections",
        Action::Disconnect => "end connections",
        Action::WriteKnowledge => "write knowledge",
        Action::DeleteKnowledge => "delete knowledge",
        Action::EmitEvent => "emit events",
        Action::ReadAll => "read everything in the organization",
        Action::ReadPublished => "read published things",
    }
}

/// A JSON map from pairs.
pub(crate) fn props<const N: usize>(pairs: [(&str, serde_json::Value); N]) -> crate::model::Props {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Checks a user-given name: not empty, bounded, no control characters.
pub(crate) fn check_text(what: &str, text: &str, max_bytes: usize) -> Result<()> {
    if text.trim().is_empty() {
        return Err(Error::invalid(format!("{what} may not be empty")));
    }
    if text.len() > max_bytes {
        return Err(Error::too_large(format!(
            "{what} is {} bytes; the limit is {max_bytes}",
            text.len()
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::invalid(format!(
            "{what} may not contain control characters"
        )));
    }
    Ok(())
}

/// Checks the encoded size of a JSON map (properties, metadata, settings).
pub(crate) fn check_json_size(
    what: &str,
    value: &serde_json::Map<String, serde_json::Value>,
    max_bytes: usize,
) -> Result<()> {
    let size = serde_json::to_vec(value)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > max_bytes {
        return Err(Error::too_large(format!(
            "{what} is {size} bytes; the limit is {max_bytes}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn batched_reads_a_first_batch_of_the_size_asked() {
        let pulled = Cell::new(0usize);
        let entries = (0..1000u32).inspect(|_| pulled.set(pulled.get() + 1));
        let loads = Cell::new(0usize);
        let load = |batch: Vec<u32>| -> Vec<Result<Option<u32>>> {
            loads.set(loads.get() + 1);
            batch.into_iter().map(|n| Ok(Some(n))).collect()
        };
        let fifty: Vec<u32> = batched(entries, 50, load).take(50).flatten().collect();
        assert_eq!(fifty, (0..50).collect::<Vec<_>>());
        assert_eq!((pulled.get(), loads.get()), (50, 1));
        // Zero asks for one; more than the largest batch gets the largest.
        let pulled = Cell::new(0usize);
        let entries = (0..1000u32).inspect(|_| pulled.set(pulled.get() + 1));
        let mut records = batched(entries, 0, |b: Vec<u32>| {
            b.into_iter().map(|n| Ok(Some(n))).collect()
        });
        assert!(matches!(records.next(), Some(Ok(0))));
        assert_eq!(pulled.get(), 1);
        let pulled = Cell::new(0usize);
        let entries = (0..1000u32).inspect(|_| pulled.set(pulled.get() + 1));
        let mut records = batched(entries, 10_000, |b: Vec<u32>| {
            b.into_iter().map(|n| Ok(Some(n))).collect()
        });
        assert!(matches!(records.next(), Some(Ok(0))));
        assert_eq!(pulled.get(), MAX_BATCH);
    }

    #[test]
    fn batched_keeps_order_skips_nones_reports_errors_and_reads_lazily() {
        let pulled = Cell::new(0usize);
        let entries = (0..1000u32).inspect(|_| pulled.set(pulled.get() + 1));
        let load = |batch: Vec<u32>| -> Vec<Result<Option<u32>>> {
            batch
                .into_iter()
                .map(|n| match n {
                    _ if n % 7 == 3 => Ok(None),
                    600 => Err(Error::invalid("entry 600")),
                    _ => Ok(Some(n)),
                })
                .collect()
        };
        let mut records = batched(entries, FIRST_BATCH, load);
        // Three records need only the first batch.
        let first: Vec<u32> = records
            .by_ref()
            .take(3)
            .map(|r| r.unwrap_or(u32::MAX))
            .collect();
        assert_eq!(first, vec![0, 1, 2]);
        assert_eq!(pulled.get(), FIRST_BATCH);
        let rest: Vec<Result<u32>> = records.collect();
        let want: Vec<u32> = (4..1000).filter(|n| n % 7 != 3).collect();
        let ok: Vec<u32> = rest
            .iter()
            .filter_map(|r| r.as_ref().ok().copied())
            .collect();
        assert_eq!(
            ok,
            want.iter()
                .copied()
                .filter(|n| *n != 600)
                .collect::<Vec<_>>()
        );
        // The error comes where its entry was, between 599 and 601.
        let at = rest.iter().position(|r| r.is_err()).unwrap_or(usize::MAX);
        assert!(matches!(rest[at - 1], Ok(599)) && matches!(rest[at + 1], Ok(601)));
        assert_eq!(pulled.get(), 1000);
    }
}
