//! Every role × every operation against one checked-in table (issue: "a
//! table-driven test covers every role × operation"; RELIABILITY.md A1).
//!
//! The table is written from ONTOLOGY.md's roles table, not from
//! src/ontology/roles.rs. Each cell runs against a fresh database with the
//! same fixture; a denied write must leave every key and value as it was.
//! All mismatches are printed before the test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::*;
use onedb::{
    Direction, ErrorCode, EventFilter, Id, KnowledgeKind, NewConnection, NewKnowledge, NewPerson,
    NewToken, Plan, Role, Session, Status, ThingUpdate, TriggerOn, TypeKind,
};

use ErrorCode::{Forbidden, InvalidArgument, NotFound};

/// What a cell expects.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Succeeds (a write changes the database; a read sees data, including
    /// other people's where the row reads "all").
    Allow,
    /// Fails with one of these codes and changes nothing.
    Deny(&'static [ErrorCode]),
    /// A read that must show nothing: FORBIDDEN, NOT_FOUND or an empty
    /// result are all fine; any data is a leak.
    Hidden,
    /// A read that succeeds and shows only the actor's own records.
    OwnOnly,
    /// The cell does not apply (e.g. root has no edges of its own in an org).
    Skip,
}

use Expect::{Allow, Deny, Hidden, OwnOnly, Skip};

const F: Expect = Deny(&[Forbidden]);

/// What an operation observed when it succeeded.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Seen {
    /// A write went through.
    Wrote,
    /// A read returned data, some of it not the actor's own.
    Data,
    /// A read returned only the actor's own records.
    Own,
    /// A read returned nothing.
    Nothing,
}

type Outcome = Result<Seen, ErrorCode>;

/// Columns.
const ROOT: usize = 0;
const OWNER: usize = 1;
const USER: usize = 2;
const CUSTOMER: usize = 3;
const COLUMNS: [&str; 4] = ["platform_owner", "org_owner", "org_user", "customer"];

/// A fresh database: org acme with one person of each role (root works
/// inside acme), org globex with one thing, and fixtures in acme.
struct Fx {
    _dir: tempfile::TempDir,
    db: onedb::Database,
    /// root (in acme), org_owner, org_user, customer of acme.
    s: Vec<Session>,
    me: [Id; 4],
    /// Draft courses created by root, the owner and the user.
    course_root: Id,
    course_owner: Id,
    course_user: Id,
    /// A published course (owner's), a draft lesson (owner's).
    published: Id,
    lesson: Id,
    /// The customer's own message.
    message: Id,
    knowledge_owner: Id,
    knowledge_user: Id,
    /// A customer of acme nobody acts as (to remove).
    guest: Id,
    /// A thing of globex.
    foreign: Id,
    /// API tokens of the org_user and of the customer.
    token_user: Id,
    token_customer: Id,
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
    fn new() -> Fx {
        let (dir, db) = open();
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

fn wrote<T>(r: onedb::Result<T>) -> Outcome {
    r.map(|_| Seen::Wrote).map_err(|e| e.code)
}

/// Classifies a read by the owners of what it returned.
fn seen(owners: impl IntoIterator<Item = bool>) -> Seen {
    let mut any = false;
    for own in owners {
        if !own {
            return Seen::Data;
        }
        any = true;
    }
    if any { Seen::Own } else { Seen::Nothing }
}

type Op = fn(&mut Fx, usize) -> Outcome;

struct Row {
    op: &'static str,
    /// platform_owner, org_owner, org_user, customer
    expect: [Expect; 4],
    run: Op,
    /// Reads must never change the database, whatever they return.
    read: bool,
}

fn row(op: &'static str, expect: [Expect; 4], run: Op) -> Row {
    Row {
        op,
        expect,
        run,
        read: false,
    }
}

fn read_row(op: &'static str, expect: [Expect; 4], run: Op) -> Row {
    Row {
        op,
        expect,
        run,
        read: true,
    }
}

/// The table. Each line cites the ONTOLOGY.md rule it comes from.
fn table() -> Vec<Row> {
    vec![
        // org_user: "create, update and move through the lifecycle things";
        // customer: "create message and conversation things" only.
        row(
            "create thing (course)",
            [Allow, Allow, Allow, F],
            |fx, a| wrote(fx.s[a].run(|t| t.create_thing(new_thing("course", "New")))),
        ),
        row("create message", [Allow, Allow, Allow, Allow], |fx, a| {
            wrote(fx.s[a].run(|t| t.create_thing(new_thing("message", "Hi"))))
        }),
        row(
            "update thing (owner's course)",
            [Allow, Allow, Allow, F],
            |fx, a| {
                let id = fx.course_owner;
                let u = ThingUpdate {
                    name: Some("Renamed".into()),
                    ..Default::default()
                };
                wrote(fx.s[a].run(|t| t.update_thing(id, u.clone())))
            },
        ),
        row(
            "set status (owner's course draft -> active)",
            [Allow, Allow, Allow, F],
            |fx, a| {
                let id = fx.course_owner;
                wrote(fx.s[a].run(|t| t.set_status(id, Status::Active)))
            },
        ),
        // Customers have no delete right at all.
        row("delete own thing", [Allow, Allow, Allow, F], |fx, a| {
            let id = [fx.course_root, fx.course_owner, fx.course_user, fx.message][a];
            wrote(fx.s[a].run(|t| t.delete_thing(id)))
        }),
        // org_user: "not: … deleting what others own".
        row("delete another's thing", [Allow, Allow, F, F], |fx, a| {
            let id = [
                fx.course_owner,
                fx.course_user,
                fx.course_owner,
                fx.course_owner,
            ][a];
            wrote(fx.s[a].run(|t| t.delete_thing(id)))
        }),
        // Customers "connect from themselves with … purchased …". Root is
        // a person of no org, so it cannot be an end of an org's edge
        // ("things or people of the same org").
        row(
            "connect from self (purchased -> published course)",
            [Deny(&[NotFound, InvalidArgument]), Allow, Allow, Allow],
            |fx, a| {
                let (me, to) = (fx.me[a], fx.published);
                wrote(fx.s[a].run(|t| {
                    t.connect(NewConnection {
                        from: Some(me),
                        to: Some(to),
                        kind: "purchased".into(),
                        ..Default::default()
                    })
                }))
            },
        ),
        row(
            "connect two things (lesson -references-> course)",
            [Allow, Allow, Allow, F],
            |fx, a| {
                let (from, to) = (fx.lesson, fx.course_owner);
                wrote(fx.s[a].run(|t| {
                    t.connect(NewConnection {
                        from: Some(from),
                        to: Some(to),
                        kind: "references".into(),
                        ..Default::default()
                    })
                }))
            },
        ),
        // Customers connect with following/purchased/… from themselves only.
        row(
            "connect from self with a staff type (owns)",
            [Skip, Allow, Allow, F],
            |fx, a| {
                let (me, to) = (fx.me[a], fx.course_root);
                wrote(fx.s[a].run(|t| {
                    t.connect(NewConnection {
                        from: Some(me),
                        to: Some(to),
                        kind: "owns".into(),
                        ..Default::default()
                    })
                }))
            },
        ),
        row(
            "disconnect two things (lesson -part_of-> course)",
            [Allow, Allow, Allow, F],
            |fx, a| {
                let (from, to) = (fx.lesson, fx.course_owner);
                wrote(fx.s[a].run(|t| t.disconnect(from, "part_of", to)))
            },
        ),
        row(
            "disconnect own connection (following from self)",
            [Skip, Allow, Allow, Allow],
            |fx, a| {
                let (me, to) = (fx.me[a], fx.published);
                wrote(fx.s[a].run(|t| t.disconnect(me, "following", to)))
            },
        ),
        // What a customer may not make, they may not end either: an `owns`
        // edge staff made from them is not theirs.
        row(
            "disconnect a staff-made owns edge from self",
            [Skip, Allow, Allow, F],
            |fx, a| {
                let (me, to) = (fx.me[a], fx.published);
                wrote(fx.s[a].run(|t| t.disconnect(me, "owns", to)))
            },
        ),
        row("create knowledge", [Allow, Allow, Allow, F], |fx, a| {
            let src = fx.course_owner;
            wrote(fx.s[a].run(|t| t.create_knowledge(knowledge_for(src))))
        }),
        // org_user: "not: … deleting what others own" — knowledge too.
        row(
            "delete another's knowledge",
            [Allow, Allow, F, F],
            |fx, a| {
                let id = [
                    fx.knowledge_owner,
                    fx.knowledge_user,
                    fx.knowledge_owner,
                    fx.knowledge_owner,
                ][a];
                wrote(fx.s[a].run(|t| t.delete_knowledge(id)))
            },
        ),
        // Customers have no EMIT right; org_user may write in the org.
        row("emit event", [Allow, Allow, Allow, F], |fx, a| {
            let target = fx.published;
            wrote(fx.s[a].run(|t| t.emit("payment_event", Some(target), Default::default())))
        }),
        // org_owner manages triggers; org_user "not: … triggers".
        row("create trigger", [Allow, Allow, F, F], |fx, a| {
            wrote(fx.s[a].run(|t| {
                t.create_trigger(
                    "on_lesson",
                    TriggerOn::Create,
                    "lesson",
                    "content_event",
                    Default::default(),
                )
            }))
        }),
        // Property schemas (issue 19): the platform owner's hold in every
        // org, an org_owner's in the own org; nobody else defines one.
        row("define schema", [Allow, Allow, F, F], |fx, a| {
            let schema = serde_json::json!({"type": "object"});
            let schema = schema.as_object().cloned().unwrap_or_default();
            wrote(fx.s[a].run(|t| t.define_schema("lesson", schema.clone())))
        }),
        // org_owner manages people; org_user "not: people".
        row("create person (customer)", [Allow, Allow, F, F], |fx, a| {
            wrote(fx.s[a].run(|t| {
                t.create_person(NewPerson {
                    email: "new@acme.io".into(),
                    name: "New".into(),
                    role: Role::Customer,
                    password: None,
                })
            }))
        }),
        // org_owner manages "its people (not platform owners)".
        row(
            "create person (platform_owner)",
            [Allow, F, F, F],
            |fx, a| {
                if a == ROOT {
                    // Platform owners belong to no org: root makes one on
                    // the platform.
                    if let Err(e) = fx.s[a].use_platform() {
                        return Err(e.code);
                    }
                }
                wrote(fx.s[a].run(|t| {
                    t.create_person(NewPerson {
                        email: "root2@platform.io".into(),
                        name: "Second owner".into(),
                        role: Role::PlatformOwner,
                        password: None,
                    })
                }))
            },
        ),
        row(
            "remove person (a customer)",
            [Allow, Allow, F, F],
            |fx, a| {
                let id = fx.guest;
                wrote(fx.s[a].run(|t| t.remove_person(id)))
            },
        ),
        // Platform owner only: "create, suspend and configure orgs, set
        // limits, extend the vocabulary, enter any org".
        row("set limits", [Allow, F, F, F], |fx, a| {
            let limits = BTreeMap::from([("things".to_string(), 100)]);
            wrote(fx.s[a].run(|t| t.set_limits("acme", limits.clone())))
        }),
        row("suspend org", [Allow, F, F, F], |fx, a| {
            wrote(fx.s[a].run(|t| {
                t.update_org(
                    "acme",
                    onedb::OrgUpdate {
                        status: Some(onedb::OrgStatus::Suspended),
                        ..Default::default()
                    },
                )
            }))
        }),
        row("create org", [Allow, F, F, F], |fx, a| {
            wrote(fx.s[a].run(|t| t.create_org("newco", "NewCo", Plan::Pro)))
        }),
        row("add vocabulary type", [Allow, F, F, F], |fx, a| {
            wrote(fx.s[a].run(|t| t.add_type(TypeKind::Thing, "workshop")))
        }),
        row("use another org", [Allow, F, F, F], |fx, a| {
            fx.s[a].use_org("globex").map_err(|e| e.code)?;
            // Inside, root sees globex's thing.
            let id = fx.foreign;
            let found = fx.s[a].read().map_err(|e| e.code)?.thing(id);
            found
                .map(|t| {
                    if t.is_some() {
                        Seen::Data
                    } else {
                        Seen::Nothing
                    }
                })
                .map_err(|e| e.code)
        }),
        row(
            "write a global platform thing",
            [Allow, F, F, F],
            |fx, a| {
                fx.s[a].use_platform().map_err(|e| e.code)?;
                wrote(fx.s[a].run(|t| t.create_thing(new_thing("template", "Global"))))
            },
        ),
        row(
            "write into another org by id (update globex's thing)",
            [Deny(&[NotFound]), Deny(&[NotFound]), Deny(&[NotFound]), F],
            |fx, a| {
                let id = fx.foreign;
                let u = ThingUpdate {
                    name: Some("Hijacked".into()),
                    ..Default::default()
                };
                wrote(fx.s[a].run(|t| t.update_thing(id, u.clone())))
            },
        ),
        // org_owner: "read all its events"; org_user "read everything in
        // the org"; customer: "read events they are the actor of".
        read_row(
            "read events (all)",
            [Allow, Allow, Allow, OwnOnly],
            |fx, a| {
                let me = fx.me[a];
                let events = fx.s[a]
                    .read()
                    .map_err(|e| e.code)?
                    .events(&EventFilter {
                        limit: 10_000,
                        ..Default::default()
                    })
                    .map_err(|e| e.code)?;
                Ok(seen(events.iter().map(|e| e.actor == Some(me))))
            },
        ),
        read_row(
            "read events of another actor",
            [Allow, Allow, Allow, Hidden],
            |fx, a| {
                let other = fx.me[if a == OWNER { USER } else { OWNER }];
                let events = fx.s[a]
                    .read()
                    .map_err(|e| e.code)?
                    .events(&EventFilter {
                        actor: Some(Some(other)),
                        limit: 10_000,
                        ..Default::default()
                    })
                    .map_err(|e| e.code)?;
                let me = fx.me[a];
                Ok(seen(events.iter().map(|e| e.actor == Some(me))))
            },
        ),
        read_row("read usage", [Allow, Allow, Allow, Hidden], |fx, a| {
            let rows = fx.s[a]
                .read()
                .map_err(|e| e.code)?
                .usage()
                .map_err(|e| e.code)?;
            Ok(if rows.iter().any(|r| r.used != 0) {
                Seen::Data
            } else {
                Seen::Nothing
            })
        }),
        // Customers "read published things of the own org".
        read_row(
            "read a draft thing by id",
            [Allow, Allow, Allow, Hidden],
            |fx, a| {
                let id = fx.course_owner;
                let t = fx.s[a].read().map_err(|e| e.code)?.thing(id);
                t.map(|t| {
                    if t.is_some() {
                        Seen::Data
                    } else {
                        Seen::Nothing
                    }
                })
                .map_err(|e| e.code)
            },
        ),
        read_row(
            "read a published thing by id",
            [Allow, Allow, Allow, Allow],
            |fx, a| {
                let id = fx.published;
                let t = fx.s[a].read().map_err(|e| e.code)?.thing(id);
                t.map(|t| {
                    if t.is_some() {
                        Seen::Data
                    } else {
                        Seen::Nothing
                    }
                })
                .map_err(|e| e.code)
            },
        ),
        read_row("list all things", [Allow, Allow, Allow, Allow], |fx, a| {
            let read = fx.s[a].read().map_err(|e| e.code)?;
            let n = read.all_things().map_err(|e| e.code)?.count();
            Ok(if n > 0 { Seen::Data } else { Seen::Nothing })
        }),
        read_row(
            "list things: drafts among them",
            [Allow, Allow, Allow, Hidden],
            |fx, a| {
                let read = fx.s[a].read().map_err(|e| e.code)?;
                let mut drafts = 0;
                for t in read.all_things().map_err(|e| e.code)? {
                    if t.map_err(|e| e.code)?.status != Status::Published {
                        drafts += 1;
                    }
                }
                Ok(if drafts > 0 {
                    Seen::Data
                } else {
                    Seen::Nothing
                })
            },
        ),
        // "Nobody but the platform owner ever sees another org's data" —
        // and a read binds one org: root inside acme sees acme only.
        read_row(
            "read another org's thing by id",
            [Hidden, Hidden, Hidden, Hidden],
            |fx, a| {
                let id = fx.foreign;
                let t = fx.s[a].read().map_err(|e| e.code)?.thing(id);
                t.map(|t| {
                    if t.is_some() {
                        Seen::Data
                    } else {
                        Seen::Nothing
                    }
                })
                .map_err(|e| e.code)
            },
        ),
        // "credentials (… API tokens, revocable)": everyone makes and ends
        // their own; an org_owner manages its people's (DESIGN.md).
        row(
            "create own API token",
            [Allow, Allow, Allow, Allow],
            |fx, a| {
                let new = NewToken {
                    name: "new".into(),
                    expires_at: None,
                };
                wrote(fx.s[a].run(|t| t.create_token(new.clone())))
            },
        ),
        row(
            "revoke own API token",
            [Skip, Skip, Allow, Allow],
            |fx, a| {
                let id = [
                    fx.token_user,
                    fx.token_user,
                    fx.token_user,
                    fx.token_customer,
                ][a];
                wrote(fx.s[a].run(|t| t.revoke_token(id)))
            },
        ),
        row(
            "revoke another's API token (the user's)",
            [Allow, Allow, Skip, Deny(&[NotFound])],
            |fx, a| {
                let id = fx.token_user;
                wrote(fx.s[a].run(|t| t.revoke_token(id)))
            },
        ),
        row(
            "revoke another's API token (the customer's)",
            [Allow, Allow, Deny(&[NotFound]), Skip],
            |fx, a| {
                let id = fx.token_customer;
                wrote(fx.s[a].run(|t| t.revoke_token(id)))
            },
        ),
        read_row(
            "list API tokens",
            [Allow, Allow, OwnOnly, OwnOnly],
            |fx, a| {
                let me = fx.me[a];
                let tokens = fx.s[a]
                    .read()
                    .map_err(|e| e.code)?
                    .tokens()
                    .map_err(|e| e.code)?;
                Ok(seen(tokens.iter().map(|t| t.person == me)))
            },
        ),
        // org_owner manages its people; customers see themselves.
        read_row("read people", [Allow, Allow, Allow, OwnOnly], |fx, a| {
            let me = fx.me[a];
            let people = fx.s[a]
                .read()
                .map_err(|e| e.code)?
                .people()
                .map_err(|e| e.code)?;
            Ok(seen(people.iter().map(|p| p.id == me)))
        }),
        // Knowledge is not in the customer's list of reads (and can quote
        // draft things).
        read_row("read knowledge", [Allow, Allow, Allow, Hidden], |fx, a| {
            let read = fx.s[a].read().map_err(|e| e.code)?;
            let n = read.all_knowledge().map_err(|e| e.code)?.count();
            let one = read.knowledge(fx.knowledge_owner).map_err(|e| e.code)?;
            Ok(if n > 0 || one.is_some() {
                Seen::Data
            } else {
                Seen::Nothing
            })
        }),
        // A draft thing's edges are part of what customers may not read.
        read_row(
            "read the edges of a draft thing",
            [Allow, Allow, Allow, Hidden],
            |fx, a| {
                let read = fx.s[a].read().map_err(|e| e.code)?;
                let n = read
                    .edges(fx.lesson, Direction::Out, None, onedb::model::now_ms() + 1)
                    .map_err(|e| e.code)?
                    .count();
                Ok(if n > 0 { Seen::Data } else { Seen::Nothing })
            },
        ),
    ]
}

fn knowledge_for(source: Id) -> NewKnowledge {
    NewKnowledge {
        kind: KnowledgeKind::Label,
        text: "a new note".into(),
        embedding: None,
        labels: vec!["topic:new".into()],
        source: Some(source),
        links: vec![],
    }
}

/// Runs one cell on a fresh fixture; None when it matches the table.
fn run_cell(row: &Row, a: usize) -> Option<String> {
    let expect = row.expect[a];
    if matches!(expect, Skip) {
        return None;
    }
    let mut fx = Fx::new();
    let before = all_entries(&fx.db);
    let outcome = (row.run)(&mut fx, a);
    let changed = all_entries(&fx.db) != before;
    let matches = match (expect, outcome) {
        (Allow, Ok(Seen::Wrote)) => row.read || changed,
        (Allow, Ok(Seen::Data)) => true,
        (Deny(codes), Err(code)) => codes.contains(&code) && !changed,
        (Hidden, Err(Forbidden | NotFound) | Ok(Seen::Nothing)) => true,
        (OwnOnly, Ok(Seen::Own)) => true,
        _ => false,
    };
    let mut problems = Vec::new();
    if !matches {
        problems.push(format!("expected {expect:?}, got {outcome:?}"));
    }
    if changed && (row.read || outcome.is_err()) {
        problems.push("the database changed".to_string());
    }
    let report = fx.db.validate().expect("validate");
    if !report.is_ok() {
        problems.push(format!("validate: {:?}", report.problems));
    }
    (!problems.is_empty())
        .then(|| format!("{:<50} {:<15} {}", row.op, COLUMNS[a], problems.join("; ")))
}

#[test]
fn every_role_and_operation_follows_the_table() {
    let table = table();
    let mut mismatches = Vec::new();
    let mut cells = 0;
    for row in &table {
        for a in [ROOT, OWNER, USER, CUSTOMER] {
            cells += 1;
            if let Some(m) = run_cell(row, a) {
                mismatches.push(m);
            }
        }
    }
    println!(
        "{} rows, {cells} cells, {} mismatches",
        table.len(),
        mismatches.len()
    );
    if !mismatches.is_empty() {
        panic!(
            "{} of {cells} cells differ from the table:\n{}",
            mismatches.len(),
            mismatches.join("\n")
        );
    }
}
