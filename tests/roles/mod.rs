//! The role matrix of RELIABILITY.md A1, shared by the local test
//! (tests/permissions.rs) and the one over the wire
//! (tests/permissions_wire.rs): the checked-in table (`table.txt`), its
//! parser, and the fixture every cell runs against.
#![allow(dead_code)]

use std::collections::BTreeMap;

use onedb::{
    Id, KnowledgeKind, NewConnection, NewKnowledge, NewPerson, NewToken, Role, Session, Status,
};
use serde_json::{Value as Json, json};

use crate::common::*;

/// Columns.
pub const ROOT: usize = 0;
pub const OWNER: usize = 1;
pub const USER: usize = 2;
pub const CUSTOMER: usize = 3;
pub const COLUMNS: [&str; 4] = ["platform_owner", "org_owner", "org_user", "customer"];

/// What a cell expects.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// Succeeds (a write changes the database; a read sees data, including
    /// other people's where the row reads "all").
    Allow,
    /// Fails with one of these codes and changes nothing.
    Deny(Vec<String>),
    /// A read that must show nothing: FORBIDDEN, NOT_FOUND or an empty
    /// result are all fine; any data is a leak.
    Hidden,
    /// A read that succeeds and shows only the actor's own records.
    OwnOnly,
    /// The cell does not apply (e.g. root has no edges of its own in an org).
    Skip,
}

/// What an operation observed when it succeeded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Seen {
    /// A write went through.
    Wrote,
    /// A read returned data, some of it not the actor's own.
    Data,
    /// A read returned only the actor's own records.
    Own,
    /// A read returned nothing.
    Nothing,
}

/// A success, or the error code.
pub type Outcome = Result<Seen, String>;

/// Whether `outcome` is what `expect` allows (for a read: whatever it
/// returned; a write's effect on the store is the caller's to check).
pub fn matches(expect: &Expect, outcome: &Outcome) -> bool {
    match (expect, outcome) {
        (Expect::Allow, Ok(Seen::Wrote | Seen::Data)) => true,
        (Expect::Deny(codes), Err(code)) => codes.contains(code),
        (Expect::Hidden, Err(code)) => code == "FORBIDDEN" || code == "NOT_FOUND",
        (Expect::Hidden, Ok(Seen::Nothing)) => true,
        (Expect::OwnOnly, Ok(Seen::Own)) => true,
        _ => false,
    }
}

/// Classifies a read by the owners of what it returned.
pub fn seen(owners: impl IntoIterator<Item = bool>) -> Seen {
    let mut any = false;
    for own in owners {
        if !own {
            return Seen::Data;
        }
        any = true;
    }
    if any { Seen::Own } else { Seen::Nothing }
}

/// One line of the table.
pub struct TableRow {
    pub op: String,
    pub expect: [Expect; 4],
    pub oql: String,
}

/// The checked-in table.
pub fn table() -> Vec<TableRow> {
    let text = include_str!("table.txt");
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = line.splitn(6, '|').map(str::trim).collect();
        assert_eq!(cells.len(), 6, "table.txt line {}: six cells", n + 1);
        let expect =
            |cell: &str| match cell {
                "allow" => Expect::Allow,
                "hidden" => Expect::Hidden,
                "own" => Expect::OwnOnly,
                "skip" => Expect::Skip,
                codes => {
                    let codes: Vec<String> = codes.split('/').map(str::to_string).collect();
                    assert!(
                        codes.iter().all(|c| !c.is_empty()
                            && c.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')),
                        "table.txt line {}: {cell:?} is no cell",
                        n + 1
                    );
                    Expect::Deny(codes)
                }
            };
        rows.push(TableRow {
            op: cells[0].to_string(),
            expect: [
                expect(cells[1]),
                expect(cells[2]),
                expect(cells[3]),
                expect(cells[4]),
            ],
            oql: cells[5].to_string(),
        });
    }
    let mut ops: Vec<&str> = rows.iter().map(|r| r.op.as_str()).collect();
    ops.sort_unstable();
    ops.dedup();
    assert_eq!(ops.len(), rows.len(), "an operation appears twice");
    rows
}

/// A fresh database: org acme with one person of each role (root works
/// inside acme), org globex with one thing, and fixtures in acme.
pub struct Fx {
    pub _dir: tempfile::TempDir,
    pub db: onedb::Database,
    /// root (in acme), org_owner, org_user, customer of acme.
    pub s: Vec<Session>,
    pub me: [Id; 4],
    /// Draft courses created by root, the owner and the user.
    pub course_root: Id,
    pub course_owner: Id,
    pub course_user: Id,
    /// A published course (owner's), a draft lesson (owner's).
    pub published: Id,
    pub lesson: Id,
    /// The customer's own message.
    pub message: Id,
    pub knowledge_owner: Id,
    pub knowledge_user: Id,
    /// A customer of acme nobody acts as (to remove).
    pub guest: Id,
    /// A thing of globex.
    pub foreign: Id,
    /// API tokens of the org_user and of the customer.
    pub token_user: Id,
    pub token_customer: Id,
}

fn thing(s: &Session, kind: &str, name: &str) -> Id {
    create(s, kind, name).id
}

fn connect(s: &Session, from: Id, kind: &str, to: Id) {
    s.run(|t| {
        t.connect(NewConnection {
            from: Some(from),
            to: Some(to),
            kind: kind.into(),
            ..Default::default()
        })
    })
    .unwrap_or_else(|e| panic!("fixture connect {kind}: {e}"));
}

fn knowledge(text: &str, source: Option<Id>) -> NewKnowledge {
    NewKnowledge {
        kind: KnowledgeKind::Label,
        text: text.into(),
        embedding: None,
        labels: vec!["topic:rust".into()],
        source,
        links: vec![],
    }
}

impl Fx {
    pub fn new() -> Fx {
        Self::on(open())
    }

    /// The fixture on RocksDB whatever `ONEDB_TEST_STORE` says: for tests
    /// that copy its data directory to a server.
    pub fn durable() -> Fx {
        Self::on(open_durable())
    }

    fn on((dir, db): (tempfile::TempDir, onedb::Database)) -> Fx {
        let globex = org(&db, "globex");
        let foreign = thing(&globex, "course", "Foreign course");
        let root = org(&db, "acme");
        let owner = person(&db, &root, "owner@acme.io", Role::OrgOwner);
        let user = person(&db, &root, "user@acme.io", Role::OrgUser);
        let customer = person(&db, &root, "customer@acme.io", Role::Customer);
        let guest = root
            .run(|t| {
                t.create_person(NewPerson {
                    email: "guest@acme.io".into(),
                    name: "Guest".into(),
                    role: Role::Customer,
                    password: None,
                })
            })
            .expect("guest")
            .id;
        let me = [
            root.actor().person,
            owner.actor().person,
            user.actor().person,
            customer.actor().person,
        ];
        let course_root = thing(&root, "course", "Root's course");
        let course_owner = thing(&owner, "course", "Owner's course");
        let course_user = thing(&user, "course", "User's course");
        let published = thing(&owner, "course", "Published course");
        owner
            .run(|t| t.set_status(published, Status::Active))
            .expect("active");
        owner
            .run(|t| t.set_status(published, Status::Published))
            .expect("published");
        let lesson = thing(&owner, "lesson", "Draft lesson");
        let message = thing(&customer, "message", "Customer's message");
        connect(&owner, lesson, "part_of", course_owner);
        for (n, s) in [&owner, &user, &customer].into_iter().enumerate() {
            connect(s, me[n + 1], "following", published);
            // Staff-made edges from each person (not a customer type).
            connect(&root, me[n + 1], "owns", published);
        }
        let knowledge_owner = owner
            .run(|t| t.create_knowledge(knowledge("owner's note", Some(lesson))))
            .expect("knowledge")
            .id;
        let knowledge_user = user
            .run(|t| t.create_knowledge(knowledge("user's note", Some(course_user))))
            .expect("knowledge")
            .id;
        let token = |s: &Session, name: &str| {
            s.run(|t| {
                t.create_token(NewToken {
                    name: name.into(),
                    expires_at: None,
                })
            })
            .expect("token")
            .token
            .id
        };
        let token_user = token(&user, "user's");
        let token_customer = token(&customer, "customer's");
        Fx {
            _dir: dir,
            db,
            s: vec![root, owner, user, customer],
            me,
            course_root,
            course_owner,
            course_user,
            published,
            lesson,
            message,
            knowledge_owner,
            knowledge_user,
            guest,
            foreign,
            token_user,
            token_customer,
        }
    }
}

/// The people of the fixture, by column, with their passwords (set by
/// `Fx::with_passwords`).
pub const PASSWORD: &str = "role-Matrix-2468";

impl Fx {
    /// Gives every acting person the password `PASSWORD`.
    pub fn with_passwords(self) -> Fx {
        for s in &self.s {
            self.db
                .set_password(&s.actor().email, PASSWORD)
                .expect("password");
        }
        self
    }

    /// The OQL parameters of the table, as the person of column `a` binds
    /// them (`$me` is every session's own).
    pub fn params(&self, a: usize) -> serde_json::Map<String, Json> {
        let id = |id: onedb::Id| json!(id.to_string());
        let pick = |ids: [onedb::Id; 4]| id(ids[a]);
        BTreeMap::from([
            (
                "mine",
                pick([
                    self.course_root,
                    self.course_owner,
                    self.course_user,
                    self.message,
                ]),
            ),
            (
                "anothers",
                pick([
                    self.course_owner,
                    self.course_user,
                    self.course_owner,
                    self.course_owner,
                ]),
            ),
            (
                "anothers_knowledge",
                pick([
                    self.knowledge_owner,
                    self.knowledge_user,
                    self.knowledge_owner,
                    self.knowledge_owner,
                ]),
            ),
            (
                "own_token",
                pick([
                    self.token_user,
                    self.token_user,
                    self.token_user,
                    self.token_customer,
                ]),
            ),
            (
                "other_person",
                id(self.me[if a == OWNER { USER } else { OWNER }]),
            ),
            ("course_root", id(self.course_root)),
            ("course_owner", id(self.course_owner)),
            ("course_user", id(self.course_user)),
            ("published", id(self.published)),
            ("lesson", id(self.lesson)),
            ("message", id(self.message)),
            ("guest", id(self.guest)),
            ("foreign", id(self.foreign)),
            ("knowledge_owner", id(self.knowledge_owner)),
            ("knowledge_user", id(self.knowledge_user)),
            ("token_user", id(self.token_user)),
            ("token_customer", id(self.token_customer)),
        ])
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}
