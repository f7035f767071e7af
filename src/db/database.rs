//! The public way in: open a data directory, get a session for a person.
//! `Database` has no data methods; data is reached through a session's
//! tenant-scoped transactions.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::db::Session;
use crate::db::api_calls::ApiCalls;
use crate::db::subscriptions::Hub;
use crate::error::{Error, ErrorCode, Result};
use crate::graph::validate::{self, Report};
use crate::graph::{Actor, Catalog, WriteTxn};
use crate::keys::{self, Tenant};
use crate::model::{Clock, Dim, Id, Millis, Org, Person, PersonStatus};
use crate::ontology::{Role, TypeKind, Vocabulary};
use crate::search::{IndexReport, Indexes};
use crate::storage::{Durability, Scope, Storage, Store};

/// The login of the platform owner a new data directory starts with.
pub const ROOT_EMAIL: &str = "root";

/// How to open a database.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub durability: Durability,
    /// Throw the search indexes away and rebuild them from the store
    /// (`onedb reindex`).
    pub rebuild_indexes: bool,
    /// Where timestamps come from (tests set a manual clock).
    pub clock: Clock,
    /// The storage engine: RocksDB in the data directory (default), or in
    /// memory (records are gone at close; the search indexes still live in
    /// the data directory).
    pub store: Store,
}

/// What every session and transaction of one open database shares.
pub(crate) struct Shared {
    /// Declared first so it is dropped first: its indexer thread stops
    /// before the store closes.
    indexes: Indexes,
    api_calls: ApiCalls,
    pub storage: Arc<Storage>,
    catalog: Catalog,
    dir: PathBuf,
    /// Made by the first subscription.
    subscriptions: Mutex<Option<Arc<Hub>>>,
}

impl Shared {
    pub fn indexes(&self) -> &Indexes {
        &self.indexes
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn api_calls(&self) -> &ApiCalls {
        &self.api_calls
    }
}

/// An open onedb data directory. Cheap to clone; share it between threads.
#[derive(Clone)]
pub struct Database {
    shared: Arc<Shared>,
}

impl Database {
    /// Opens (creating if new) the data directory with default options.
    pub fn open(dir: impl AsRef<Path>) -> Result<Database> {
        Self::open_with(dir, Options::default())
    }

    pub fn open_with(dir: impl AsRef<Path>, options: Options) -> Result<Database> {
        let dir = dir.as_ref().to_path_buf();
        let storage = Arc::new(Storage::open_store(
            &dir,
            options.durability,
            options.store.clone(),
        )?);
        // A memory store starts empty: indexes left by an earlier run
        // describe records it does not hold, so they start over too.
        let rebuild = options.rebuild_indexes || options.store == Store::Memory;
        let indexes = Indexes::open(storage.clone(), &crate::search::index_dir(&dir), rebuild)?;
        let shared = Shared {
            indexes,
            api_calls: ApiCalls::default(),
            catalog: Catalog::load(&storage, options.clock.clone())?,
            storage,
            dir,
            subscriptions: Mutex::new(None),
        };
        let db = Database {
            shared: Arc::new(shared),
        };
        db.ensure_root()?;
        Ok(db)
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The subscriptions' hub, started (and given the commit leader's
    /// events) on first use.
    pub(crate) fn subscription_hub(&self) -> Result<Arc<Hub>> {
        let mut hub = self.shared.subscriptions.lock();
        if let Some(hub) = &*hub {
            return Ok(hub.clone());
        }
        let started = Hub::start(&self.shared.storage)?;
        self.shared
            .storage
            .commits()
            .set_event_hook(started.clone());
        *hub = Some(started.clone());
        Ok(started)
    }

    /// How many subscriptions are open.
    pub fn subscriptions(&self) -> usize {
        self.shared
            .subscriptions
            .lock()
            .as_ref()
            .map_or(0, |hub| hub.count())
    }

    /// A new database holds the platform and its owner, `root`.
    fn ensure_root(&self) -> Result<()> {
        if self.find_person(ROOT_EMAIL)?.is_some() {
            return Ok(());
        }
        let now = self.shared.catalog.clock().now();
        let root = Person {
            id: self.shared.catalog.clock().new_id(Dim::Person),
            email: ROOT_EMAIL.to_string(),
            name: "Platform owner".to_string(),
            role: Role::PlatformOwner,
            org: None,
            status: PersonStatus::Active,
            password_hash: None,
            created_at: now,
            updated_at: now,
        };
        let shared = &self.shared;
        let mut t =
            WriteTxn::bootstrap(&shared.catalog, &shared.storage, Actor::from_person(&root));
        t.bootstrap_root(&root)?;
        t.commit()?;
        Ok(())
    }

    /// A person by email, from any org (engine use: login, `--as`).
    pub(crate) fn find_person(&self, email: &str) -> Result<Option<Person>> {
        let txn = self.shared.storage.read(Scope::platform(Tenant::PLATFORM));
        let Some(entry) = txn.get(&keys::email(email))? else {
            return Ok(None);
        };
        if entry.len() != 32 {
            return Err(Error::corruption("email index", "entry is not 32 bytes"));
        }
        let raw = |b: &[u8]| {
            b.try_into()
                .map(u128::from_be_bytes)
                .map_err(|_| Error::corruption("email index", "bad id"))
        };
        let (org, person) = (raw(&entry[..16])?, raw(&entry[16..])?);
        let tenant = if org == 0 {
            Tenant::PLATFORM
        } else {
            Tenant::of_org(Id::from_raw(Dim::Org, org))
        };
        match txn.get(&tenant.person(Id::from_raw(Dim::Person, person)))? {
            Some(bytes) => Ok(Some(crate::model::codec::decode("person", &bytes)?)),
            None => Err(Error::corruption(
                "email index",
                format!("{email} points at a missing person"),
            )),
        }
    }

    pub(crate) fn org_by_id(&self, id: Id) -> Result<Option<Org>> {
        let txn = self.shared.storage.read(Scope::platform(Tenant::PLATFORM));
        match txn.get(&keys::org(id))? {
            Some(bytes) => Ok(Some(crate::model::codec::decode("org", &bytes)?)),
            None => Ok(None),
        }
    }

    /// An org by slug (engine use: sessions check who may enter it).
    pub(crate) fn org_by_slug(&self, slug: &str) -> Result<Option<Org>> {
        let txn = self.shared.storage.read(Scope::platform(Tenant::PLATFORM));
        let Some(bytes) = txn.get(&keys::org_slug(slug))? else {
            return Ok(None);
        };
        let raw: [u8; 16] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| Error::corruption("org slug", "not 16 bytes"))?;
        self.org_by_id(Id::from_raw(Dim::Org, u128::from_be_bytes(raw)))
    }

    fn session_for(&self, person: Person) -> Result<Session> {
        if person.status != PersonStatus::Active {
            return Err(Error::new(
                ErrorCode::NotAuthenticated,
                "unknown person or wrong password",
            ));
        }
        let org = match person.org {
            Some(id) => {
                Some(Arc::new(self.org_by_id(id)?.ok_or_else(|| {
                    Error::corruption("person", "org is missing")
                })?))
            }
            None => None,
        };
        Ok(Session::new(self.clone(), Actor::from_person(&person), org))
    }

    /// Local mode: the operating-system user is trusted and acts as `root`.
    pub fn local_session(&self) -> Result<Session> {
        let root = self
            .find_person(ROOT_EMAIL)?
            .ok_or_else(|| Error::corruption("platform", "root is missing"))?;
        self.session_for(root)
    }

    /// Local mode with `--as EMAIL`: drop to that person's rights.
    pub fn session_as(&self, email: &str) -> Result<Session> {
        let email = email.trim().to_lowercase();
        match self.find_person(&email)? {
            Some(p) => self.session_for(p),
            None => Err(Error::not_found(format!("no person with email {email}"))),
        }
    }

    /// Checks a password. Unknown people and wrong passwords get the same
    /// error; every attempt on a known person is logged as `user_login`.
    pub fn login(&self, email: &str, password: &str) -> Result<Session> {
        let email = email.trim().to_lowercase();
        let denied = || {
            Error::new(
                ErrorCode::NotAuthenticated,
                "unknown person or wrong password",
            )
        };
        let Some(person) = self
            .find_person(&email)?
            .filter(|p| p.status == PersonStatus::Active)
        else {
            // Spend the time a real check takes, so timing does not tell.
            crate::auth::verify_password(password, crate::auth::dummy_hash());
            return Err(denied());
        };
        let ok = match person.password_hash.as_deref() {
            Some(hash) => crate::auth::verify_password(password, hash),
            // No password set (root before ONEDB_ROOT_PASSWORD): no login,
            // in the time a check takes.
            None => {
                crate::auth::verify_password(password, crate::auth::dummy_hash());
                false
            }
        };
        let session = self.session_for(person)?;
        session.log_login(ok, "password")?;
        if ok { Ok(session) } else { Err(denied()) }
    }

    /// Logs in with an API token. Unknown, tampered, expired and revoked
    /// tokens all get the same error; every attempt on a token that exists
    /// is logged as `user_login` (method `token`). The session remembers
    /// the token, so its revocation ends the session (`Session::check_live`).
    pub fn login_token(&self, secret: &str) -> Result<Session> {
        let secret = secret.trim();
        let Some(id) =
            crate::auth::token_id_of(secret).and_then(|id| Id::parse_as(id, Dim::Token).ok())
        else {
            return Err(crate::graph::token_refused());
        };
        let txn = self.shared.storage.read(Scope::platform(Tenant::PLATFORM));
        let Some(token) = crate::graph::find_token(&txn, id)? else {
            return Err(crate::graph::token_refused());
        };
        let now = self.shared.catalog.clock().now();
        let ok = crate::auth::token_matches(secret, &token.hash) && token.is_live(now);
        let person = self.person_by_id(token.org, token.person)?;
        let session = self
            .session_for(person)
            .map_err(|_| crate::graph::token_refused())?
            .with_token(id);
        session.log_login(ok, "token")?;
        if ok {
            Ok(session)
        } else {
            Err(crate::graph::token_refused())
        }
    }

    /// Until when a session's credentials hold, read on one snapshot in
    /// one round trip: its token (None: a password login, which holds
    /// until the person goes) must be live, and its person still an active
    /// member. `NOT_AUTHENTICATED` otherwise. Also the sequence it was read
    /// at: while `session_keys` are unchanged since, the answer holds.
    pub(crate) fn session_live_until(
        &self,
        token: Option<Id>,
        actor: &Actor,
    ) -> Result<(Millis, u64)> {
        let wanted = session_keys(token, actor);
        let (seq, found) = self
            .shared
            .storage
            .read_latest(Scope::platform(Tenant::PLATFORM), &wanted)?;
        let mut found = found.into_iter();
        let active = match found.next().flatten() {
            Some(bytes) => {
                let person: Person = crate::model::codec::decode("person", &bytes)?;
                person.status == PersonStatus::Active
            }
            None => false,
        };
        if !active {
            return Err(Error::new(
                ErrorCode::NotAuthenticated,
                "the person this session belongs to was removed",
            ));
        }
        let Some(id) = token else {
            return Ok((Millis::MAX, seq));
        };
        let now = self.shared.catalog.clock().now();
        let live = match found.next().flatten() {
            Some(bytes) => {
                let t: crate::model::Token = crate::model::codec::decode("token", &bytes)?;
                (t.id == id && t.person == actor.person && t.is_live(now))
                    .then(|| t.expires_at.unwrap_or(Millis::MAX))
            }
            None => None,
        };
        live.map(|until| (until, seq)).ok_or_else(|| {
            Error::new(
                ErrorCode::NotAuthenticated,
                "the token this session logged in with was revoked or expired",
            )
        })
    }

    fn person_by_id(&self, org: Option<Id>, id: Id) -> Result<Person> {
        let tenant = org.map_or(Tenant::PLATFORM, Tenant::of_org);
        let txn = self.shared.storage.read(Scope::platform(Tenant::PLATFORM));
        match txn.get(&tenant.person(id))? {
            Some(bytes) => crate::model::codec::decode("person", &bytes),
            None => Err(Error::corruption(
                "token",
                format!("its person {id} is missing"),
            )),
        }
    }

    /// Sets a person's password (local administration: `onedb passwd`).
    pub fn set_password(&self, email: &str, password: &str) -> Result<()> {
        let hash = crate::auth::hash_password(password)?;
        let person = self
            .find_person(email)?
            .ok_or_else(|| Error::not_found(format!("no person with email {email}")))?;
        let session = self.session_for(person.clone())?;
        session.run(|t| t.set_own_password_hash(&hash))
    }

    /// Stores the API calls counted in memory (a server asks every second
    /// and when it stops). Reads nothing when none are pending.
    pub fn store_api_calls(&self) -> Result<()> {
        let mut root = None;
        self.shared.api_calls.store_all(|org, calls| {
            let root = match &mut root {
                Some(root) => root,
                None => root.insert(self.local_session()?),
            };
            let org = match org {
                0 => None,
                raw => self.org_by_id(Id::from_raw(Dim::Org, raw))?.map(Arc::new),
            };
            root.run_in(org, |t| t.count_api_calls(calls))
        })
    }

    /// Whether other servers share this database's store (`--store etcd://`).
    pub fn shares_store(&self) -> bool {
        self.shared.storage.engine().shared()
    }

    /// Failed-login counts stored under `name` (shared stores).
    pub(crate) fn login_failures(&self, name: &str) -> Result<Option<Vec<u8>>> {
        crate::graph::logins::read(&self.shared.storage, name)
    }

    /// Changes the failed-login counts under `name` atomically.
    pub(crate) fn update_login_failures(
        &self,
        name: &str,
        change: impl Fn(Option<&[u8]>) -> Option<Vec<u8>>,
    ) -> Result<()> {
        crate::graph::logins::update(&self.shared.storage, name, change)
    }

    /// Checks the whole database (see [`validate`]).
    pub fn validate(&self) -> Result<Report> {
        validate::run(&self.shared.storage, &self.shared.catalog.vocabulary())
    }

    /// Applies every pending change to the search indexes and makes them
    /// durable (they do so on their own about once a second).
    pub fn flush_indexes(&self) -> Result<()> {
        self.shared.indexes.flush()
    }

    /// How many times the search indexer failed since open (it retries;
    /// the store is never affected).
    pub fn index_failures(&self) -> u64 {
        self.shared.indexes.failures()
    }

    /// Compares the search indexes with the store (`onedb check`).
    pub fn check_indexes(&self) -> Result<IndexReport> {
        self.shared.indexes.verify(&self.shared.storage)
    }

    /// A consistent online copy of the data directory into `dir`.
    pub fn backup(&self, dir: impl AsRef<Path>) -> Result<()> {
        self.shared.storage.checkpoint(dir.as_ref())
    }

    /// Every key and value, from one snapshot (`internals::raw_entries`).
    pub(crate) fn raw_entries(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let txn = self.shared.storage.read(Scope::platform(Tenant::PLATFORM));
        txn.scan_range(&[], &[0xFF], false)?.collect()
    }

    /// How many commits the database has applied.
    pub fn last_commit(&self) -> Result<u64> {
        self.shared.storage.last_commit()
    }

    pub fn durability(&self) -> Durability {
        self.shared.storage.durability()
    }

    /// The vocabulary in force (built-ins and additions), as this process
    /// last read it: on a shared store another server may have added a
    /// type since (`reread_vocabulary`).
    pub fn vocabulary(&self) -> Arc<Vocabulary> {
        self.shared.catalog.vocabulary()
    }

    /// On a shared store, rereads the vocabulary (another server may have
    /// added a type); true if it was reread.
    pub(crate) fn reread_vocabulary(&self) -> bool {
        self.shares_store() && self.shared.catalog.reload(&self.shared.storage).is_ok()
    }

    /// Whether a type name is known (for tools that check before sending).
    pub fn knows_type(&self, kind: TypeKind, name: &str) -> bool {
        self.vocabulary().contains(kind, name)
            || (self.reread_vocabulary() && self.vocabulary().contains(kind, name))
    }
}

/// The records a session's liveness rests on: its person and, for a token
/// login, the token (in the person's home tenant).
pub(crate) fn session_keys(token: Option<Id>, actor: &Actor) -> Vec<Vec<u8>> {
    let tenant = actor.org.map_or(Tenant::PLATFORM, Tenant::of_org);
    let mut keys = vec![tenant.person(actor.person)];
    keys.extend(token.map(|id| tenant.token(id)));
    keys
}
