//! A session: one authenticated person, working in one org at a time. The
//! way to tenant-scoped transactions.

use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use serde_json::json;

use crate::db::Database;
use crate::db::api_calls::OrgCalls;
use crate::db::database::session_keys;
use crate::error::{Error, ErrorCode, Result};
use crate::graph::props;
use crate::graph::{Actor, ReadTxn, WriteTxn};
use crate::keys::Tenant;
use crate::model::{Id, Knowledge, Millis, Org};
use crate::ontology::Role;
use crate::ontology::Vocabulary;
use crate::search::{Found, Indexes, KnowledgeHit, KnowledgeSearch, NameHit, NameSearch};
use crate::storage::Scope;
use crate::vector::Method;

/// How often an autocommitted unit of work is retried after a `CONFLICT`.
pub(crate) const CONFLICT_RETRIES: usize = 32;

/// Before running a unit of work again after its `attempt`th `CONFLICT`:
/// exponential with jitter, so writers racing through two servers of a
/// shared store do not retry in step.
pub(crate) fn pause_before_retry(attempt: usize) {
    let ceiling = 50u64 << attempt.min(8);
    let pause = rand::Rng::gen_range(&mut rand::thread_rng(), ceiling / 2..=ceiling);
    std::thread::sleep(std::time::Duration::from_micros(pause));
}

/// A session holds a person's rights and nothing more: it hands out
/// transactions scoped to the person's org, never the `Database` it came
/// from (whose `local_session` is the platform owner).
///
/// ```compile_fail,E0599
/// # fn f(customer: &onedb::Session) -> onedb::Result<()> {
/// let root = customer.database().local_session()?;
/// # Ok(()) }
/// ```
pub struct Session {
    db: Database,
    actor: Actor,
    /// The org statements run in; None is the platform tenant.
    org: Option<Arc<Org>>,
    /// The API token the session logged in with, if any.
    token: Option<Id>,
    /// When `check_live` last found the session live: the access epoch,
    /// until when its token is, and the store sequence it read at.
    verified: Mutex<Option<Verified>>,
    /// The api_calls counter of the org it was first taken for.
    api_calls: OnceLock<(u128, Arc<OrgCalls>)>,
}

/// A liveness check that passed (`Session::check_live`).
#[derive(Clone, Copy)]
struct Verified {
    epoch: u64,
    until: Millis,
    seq: u64,
}

impl Session {
    pub(crate) fn new(db: Database, actor: Actor, org: Option<Arc<Org>>) -> Session {
        Session {
            db,
            actor,
            org,
            token: None,
            verified: Mutex::new(None),
            api_calls: OnceLock::new(),
        }
    }

    pub(crate) fn with_token(self, token: Id) -> Session {
        Session {
            token: Some(token),
            ..self
        }
    }

    /// Whether the session may go on: the person is still a member, and
    /// the token it logged in with (if any) is neither revoked nor
    /// expired. Reads the store only after a commit took someone's
    /// access away (the catalog's access epoch), or once the token's
    /// expiry has passed.
    pub fn check_live(&self) -> Result<()> {
        let epoch = self.db.shared().catalog().access_epoch();
        let now = self.db.shared().catalog().clock().now();
        let verified = *self.verified.lock();
        // The epoch counts this server's commits only: on a shared store
        // another server may have revoked the token, so it is read again.
        let shared = self.db.shared().storage.engine().shared();
        if !shared && verified.is_some_and(|v| v.epoch == epoch && now < v.until) {
            return Ok(());
        }
        let (until, seq) = self.db.session_live_until(self.token, &self.actor)?;
        *self.verified.lock() = Some(Verified { epoch, until, seq });
        Ok(())
    }

    /// On a shared store, instead of `check_live` before a unit of work
    /// that answers nothing until it commits (a block sent whole): the
    /// records the session's last check read, and the sequence it read
    /// them at. While none of them changed since, the session is as live
    /// as that check found it, so the unit's commit can carry them as
    /// guesses (`WriteTxn::assume_unchanged`) rather than the store being
    /// asked first. None when there is no such check to rest on.
    pub(crate) fn liveness_guesses(&self) -> Option<(Vec<Vec<u8>>, u64)> {
        if !self.db.shared().storage.engine().shared() {
            return None;
        }
        let verified = (*self.verified.lock())?;
        let now = self.db.shared().catalog().clock().now();
        (now < verified.until).then(|| (session_keys(self.token, &self.actor), verified.seq))
    }

    /// The database (engine use: subscriptions). Not `database`: a
    /// session hands out no way to another person's rights.
    pub(crate) fn shared_db(&self) -> &Database {
        &self.db
    }

    /// The same person in `org`, for work on another thread (a
    /// subscription's reader).
    pub(crate) fn fork(&self, org: Option<Arc<Org>>) -> Session {
        Session {
            db: self.db.clone(),
            actor: self.actor.clone(),
            org,
            token: self.token,
            verified: Mutex::new(None),
            api_calls: OnceLock::new(),
        }
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The current org; None for the platform tenant.
    pub fn org(&self) -> Option<&Org> {
        self.org.as_deref()
    }

    /// The data directory the session works on (for the shell's banner).
    /// A consistent copy of the whole data directory in `dir` (which must
    /// not exist), taken while the database serves: a RocksDB checkpoint
    /// (hard links where it can). The platform owner's alone.
    pub fn backup(&self, dir: impl AsRef<std::path::Path>) -> Result<()> {
        if self.actor.role != crate::ontology::Role::PlatformOwner {
            return Err(Error::forbidden("only the platform owner takes backups"));
        }
        self.db.backup(dir)
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.db.dir()
    }

    /// The database's search indexes (for the query layer).
    pub(crate) fn indexes(&self) -> &Indexes {
        self.db.shared().indexes()
    }

    /// The vocabulary in force.
    pub fn vocabulary(&self) -> Arc<Vocabulary> {
        self.db.vocabulary()
    }

    /// On a shared store, rereads the vocabulary; true if it was reread.
    pub(crate) fn reread_vocabulary(&self) -> bool {
        self.db.reread_vocabulary()
    }

    /// Things and people whose names match `q.text` best (BM25), seen
    /// through `txn` (its tenant, visibility and own writes), that `keep`
    /// accepts.
    pub fn search_names(
        &self,
        txn: &ReadTxn<'_>,
        q: &NameSearch<'_>,
        keep: &mut dyn FnMut(&Found) -> Result<bool>,
    ) -> Result<Vec<NameHit>> {
        self.indexes().search_names(txn, q, keep)
    }

    /// The `q.k` chunks nearest `q.vector` that pass the filter and `keep`,
    /// seen through `txn`, and whether the index searched exactly or by
    /// its graph.
    pub fn search_knowledge(
        &self,
        txn: &ReadTxn<'_>,
        q: &KnowledgeSearch<'_>,
        keep: &mut dyn FnMut(&Knowledge) -> Result<bool>,
    ) -> Result<(Vec<KnowledgeHit>, Method)> {
        self.indexes().search_knowledge(txn, q, keep)
    }

    fn scope(&self, org: Option<&Arc<Org>>) -> Scope {
        let tenant = org.map_or(Tenant::PLATFORM, |o| Tenant::of_org(o.id));
        if self.actor.role == Role::PlatformOwner {
            Scope::platform(tenant)
        } else {
            Scope::tenant(tenant)
        }
    }

    /// A read-only transaction on one consistent snapshot.
    pub fn read(&self) -> Result<ReadTxn<'_>> {
        self.read_in(self.org.clone())
    }

    /// A read-write transaction; nothing is stored until `commit`.
    pub fn write(&self) -> Result<WriteTxn<'_>> {
        self.write_in(self.org.clone())
    }

    /// A read-only transaction in `org` (as `resolve_org` returned it, or
    /// None for the platform tenant). `ReadTxn::open` refuses an org the
    /// person may not act in.
    pub fn read_in(&self, org: Option<Arc<Org>>) -> Result<ReadTxn<'_>> {
        let shared = self.db.shared();
        let scope = self.scope(org.as_ref());
        ReadTxn::open(
            shared.catalog(),
            &shared.storage,
            scope,
            self.actor.clone(),
            org,
        )
    }

    /// A read-write transaction in `org`.
    pub fn write_in(&self, org: Option<Arc<Org>>) -> Result<WriteTxn<'_>> {
        let shared = self.db.shared();
        let txn = shared.storage.write(self.scope(org.as_ref()));
        WriteTxn::open(shared.catalog(), txn, self.actor.clone(), org)
    }

    /// Runs `work` in a write transaction and commits it, retrying the whole
    /// unit when a concurrent commit conflicts with it.
    pub fn run<T>(&self, work: impl FnMut(&mut WriteTxn<'_>) -> Result<T>) -> Result<T> {
        self.run_in(self.org.clone(), work)
    }

    /// `run` in `org` (as `resolve_org` returned it, or None for the
    /// platform tenant).
    pub fn run_in<T>(
        &self,
        org: Option<Arc<Org>>,
        mut work: impl FnMut(&mut WriteTxn<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            // On a shared store the transaction may use copies of records
            // kept from earlier ones; a wrong one ends it in CONFLICT, or
            // in an error `guessed_wrong` then explains, and it runs again.
            let outcome = match self.write_guessing_in(org.clone()) {
                Ok(mut txn) => match work(&mut txn) {
                    Ok(value) => txn.commit().map(|_| value),
                    Err(_) if attempt < CONFLICT_RETRIES && txn.guessed_wrong() => {
                        Err(crate::storage::out_of_date())
                    }
                    Err(e) => return Err(e),
                },
                Err(e) => Err(e),
            };
            match outcome {
                Err(e) if e.code == ErrorCode::Conflict && attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    pause_before_retry(attempt);
                }
                outcome => return outcome,
            }
        }
    }

    /// `write_in` for a caller that runs the transaction again when it
    /// ends in `CONFLICT`, or in an error `WriteTxn::guessed_wrong`
    /// explains: on a shared store it may use copies of records kept from
    /// earlier transactions (`Storage::write_guessing`).
    pub(crate) fn write_guessing_in(&self, org: Option<Arc<Org>>) -> Result<WriteTxn<'_>> {
        let shared = self.db.shared();
        let txn = shared.storage.write_guessing(self.scope(org.as_ref()));
        WriteTxn::open(shared.catalog(), txn, self.actor.clone(), org)
    }

    /// `USE ORG slug`: the platform owner may enter any org; everyone else
    /// only their own (and is told FORBIDDEN, whether or not it exists).
    pub fn use_org(&mut self, slug: &str) -> Result<()> {
        self.org = Some(self.resolve_org(slug)?);
        self.api_calls = OnceLock::new();
        Ok(())
    }

    /// The org `slug` names, if this person may enter it.
    pub fn resolve_org(&self, slug: &str) -> Result<Arc<Org>> {
        match self.db.org_by_slug(slug)? {
            Some(org)
                if self.actor.role == Role::PlatformOwner || self.actor.org == Some(org.id) =>
            {
                Ok(Arc::new(org))
            }
            None if self.actor.role == Role::PlatformOwner => {
                Err(Error::not_found(format!("no organization {slug:?}")))
            }
            _ => Err(Error::forbidden(format!(
                "{} may not enter organization {slug}",
                self.actor.email
            ))),
        }
    }

    /// Leaves every org for the platform tenant (platform owners only).
    pub fn use_platform(&mut self) -> Result<()> {
        if self.actor.role != Role::PlatformOwner {
            return Err(Error::forbidden(
                "only the platform owner works outside an organization",
            ));
        }
        self.org = None;
        self.api_calls = OnceLock::new();
        Ok(())
    }

    /// Rereads the current org (after the session changed it).
    pub fn refresh_org(&mut self) -> Result<()> {
        if let Some(org) = &self.org {
            self.org =
                Some(Arc::new(self.db.org_by_id(org.id)?.ok_or_else(|| {
                    Error::not_found("the organization is gone")
                })?));
        }
        Ok(())
    }

    /// Counts one API call against the org's monthly `api_calls`
    /// (`LIMIT_REACHED` over the limit, and nothing counted). Counted in
    /// memory; `Database::store_api_calls` stores the counts (a server
    /// every second, `db/api_calls.rs`).
    pub fn count_api_call(&self) -> Result<()> {
        let org = self.org.as_ref().map_or(0, |o| o.id.raw());
        let label = self.org.as_ref().map_or("platform", |o| o.slug.as_str());
        // The limit comes from the session's copy of the org (the one its
        // transactions use): no store read when the org has no limit.
        let limit = crate::graph::limit_of(self.org.as_deref(), "api_calls");
        let stored = || self.read()?.api_calls();
        let meter = self.db.shared().api_calls();
        match self.api_calls.get_or_init(|| (org, meter.of(org))) {
            (kept, calls) if *kept == org => calls.count(label, limit, stored),
            _ => meter.of(org).count(label, limit, stored),
        }
    }

    /// The `user_login` event of a login attempt (`method`: password or
    /// token), in the person's org.
    pub(crate) fn log_login(&self, success: bool, method: &str) -> Result<()> {
        let person = self.actor.person;
        self.run(|t| {
            t.log(
                "user_login",
                Some(person),
                "person",
                props([("success", json!(success)), ("method", json!(method))]),
            )
            .map(|_| ())
        })
    }
}
