//! Every role × every operation against one checked-in table (issue: "a
//! table-driven test covers every role × operation"; RELIABILITY.md A1).
//!
//! The table (tests/roles/table.txt, shared with the test over the wire)
//! is written from ONTOLOGY.md's roles table, not from
//! src/ontology/roles.rs. Each cell runs here through the Rust API against
//! a fresh database with the same fixture; a denied write must leave every
//! key and value as it was.
//! All mismatches are printed before the test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod roles;

use std::collections::BTreeMap;

use common::*;
use onedb::{
    Direction, ErrorCode, EventFilter, Id, KnowledgeKind, NewConnection, NewKnowledge, NewPerson,
    NewToken, Plan, Role, Status, ThingUpdate, TriggerOn, TypeKind,
};
use roles::{COLUMNS, CUSTOMER, Expect, Fx, OWNER, ROOT, Seen, USER, seen};

type Outcome = Result<Seen, ErrorCode>;

fn wrote<T>(r: onedb::Result<T>) -> Outcome {
    r.map(|_| Seen::Wrote).map_err(|e| e.code)
}

type Op = fn(&mut Fx, usize) -> Outcome;

struct Row {
    op: &'static str,
    run: Op,
    /// Reads must never change the database, whatever they return.
    read: bool,
}

fn row(op: &'static str, run: Op) -> Row {
    Row {
        op,
        run,
        read: false,
    }
}

fn read_row(op: &'static str, run: Op) -> Row {
    Row {
        op,
        run,
        read: true,
    }
}

/// How each operation of the table runs through the Rust API.
fn operations() -> Vec<Row> {
    vec![
        // org_user: "create, update and move through the lifecycle things";
        // customer: "create message and conversation things" only.
        row("create thing (course)", |fx, a| {
            wrote(fx.s[a].run(|t| t.create_thing(new_thing("course", "New"))))
        }),
        row("create message", |fx, a| {
            wrote(fx.s[a].run(|t| t.create_thing(new_thing("message", "Hi"))))
        }),
        row("update thing (owner's course)", |fx, a| {
            let id = fx.course_owner;
            let u = ThingUpdate {
                name: Some("Renamed".into()),
                ..Default::default()
            };
            wrote(fx.s[a].run(|t| t.update_thing(id, u.clone())))
        }),
        row("set status (owner's course draft -> active)", |fx, a| {
            let id = fx.course_owner;
            wrote(fx.s[a].run(|t| t.set_status(id, Status::Active)))
        }),
        // Customers have no delete right at all.
        row("delete own thing", |fx, a| {
            let id = [fx.course_root, fx.course_owner, fx.course_user, fx.message][a];
            wrote(fx.s[a].run(|t| t.delete_thing(id)))
        }),
        // org_user: "not: … deleting what others own".
        row("delete another's thing", |fx, a| {
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
        row("connect from self with a staff type (owns)", |fx, a| {
            let (me, to) = (fx.me[a], fx.course_root);
            wrote(fx.s[a].run(|t| {
                t.connect(NewConnection {
                    from: Some(me),
                    to: Some(to),
                    kind: "owns".into(),
                    ..Default::default()
                })
            }))
        }),
        row(
            "disconnect two things (lesson -part_of-> course)",
            |fx, a| {
                let (from, to) = (fx.lesson, fx.course_owner);
                wrote(fx.s[a].run(|t| t.disconnect(from, "part_of", to)))
            },
        ),
        row(
            "disconnect own connection (following from self)",
            |fx, a| {
                let (me, to) = (fx.me[a], fx.published);
                wrote(fx.s[a].run(|t| t.disconnect(me, "following", to)))
            },
        ),
        // What a customer may not make, they may not end either: an `owns`
        // edge staff made from them is not theirs.
        row("disconnect a staff-made owns edge from self", |fx, a| {
            let (me, to) = (fx.me[a], fx.published);
            wrote(fx.s[a].run(|t| t.disconnect(me, "owns", to)))
        }),
        row("create knowledge", |fx, a| {
            let src = fx.course_owner;
            wrote(fx.s[a].run(|t| t.create_knowledge(knowledge_for(src))))
        }),
        // org_user: "not: … deleting what others own" — knowledge too.
        row("delete another's knowledge", |fx, a| {
            let id = [
                fx.knowledge_owner,
                fx.knowledge_user,
                fx.knowledge_owner,
                fx.knowledge_owner,
            ][a];
            wrote(fx.s[a].run(|t| t.delete_knowledge(id)))
        }),
        // Customers have no EMIT right; org_user may write in the org.
        row("emit event", |fx, a| {
            let target = fx.published;
            wrote(fx.s[a].run(|t| t.emit("payment_event", Some(target), Default::default())))
        }),
        // org_owner manages triggers; org_user "not: … triggers".
        row("create trigger", |fx, a| {
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
        row("define schema", |fx, a| {
            let schema = serde_json::json!({"type": "object"});
            let schema = schema.as_object().cloned().unwrap_or_default();
            wrote(fx.s[a].run(|t| t.define_schema("lesson", schema.clone())))
        }),
        // org_owner manages people; org_user "not: people".
        row("create person (customer)", |fx, a| {
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
        row("create person (platform_owner)", |fx, a| {
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
        }),
        row("remove person (a customer)", |fx, a| {
            let id = fx.guest;
            wrote(fx.s[a].run(|t| t.remove_person(id)))
        }),
        // Platform owner only: "create, suspend and configure orgs, set
        // limits, extend the vocabulary, enter any org".
        row("set limits", |fx, a| {
            let limits = BTreeMap::from([("things".to_string(), 100)]);
            wrote(fx.s[a].run(|t| t.set_limits("acme", limits.clone())))
        }),
        row("suspend org", |fx, a| {
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
        row("create org", |fx, a| {
            wrote(fx.s[a].run(|t| t.create_org("newco", "NewCo", Plan::Pro)))
        }),
        row("add vocabulary type", |fx, a| {
            wrote(fx.s[a].run(|t| t.add_type(TypeKind::Thing, "workshop")))
        }),
        row("use another org", |fx, a| {
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
        row("write a global platform thing", |fx, a| {
            fx.s[a].use_platform().map_err(|e| e.code)?;
            wrote(fx.s[a].run(|t| t.create_thing(new_thing("template", "Global"))))
        }),
        row(
            "write into another org by id (update globex's thing)",
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
        read_row("read events (all)", |fx, a| {
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
        }),
        read_row("read events of another actor", |fx, a| {
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
        }),
        read_row("read usage", |fx, a| {
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
        read_row("read a draft thing by id", |fx, a| {
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
        }),
        read_row("read a published thing by id", |fx, a| {
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
        }),
        read_row("list all things", |fx, a| {
            let read = fx.s[a].read().map_err(|e| e.code)?;
            let n = read.all_things().map_err(|e| e.code)?.count();
            Ok(if n > 0 { Seen::Data } else { Seen::Nothing })
        }),
        read_row("list things: drafts among them", |fx, a| {
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
        }),
        // "Nobody but the platform owner ever sees another org's data" —
        // and a read binds one org: root inside acme sees acme only.
        read_row("read another org's thing by id", |fx, a| {
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
        }),
        // "credentials (… API tokens, revocable)": everyone makes and ends
        // their own; an org_owner manages its people's (DESIGN.md).
        row("create own API token", |fx, a| {
            let new = NewToken {
                name: "new".into(),
                expires_at: None,
            };
            wrote(fx.s[a].run(|t| t.create_token(new.clone())))
        }),
        row("revoke own API token", |fx, a| {
            let id = [
                fx.token_user,
                fx.token_user,
                fx.token_user,
                fx.token_customer,
            ][a];
            wrote(fx.s[a].run(|t| t.revoke_token(id)))
        }),
        row("revoke another's API token (the user's)", |fx, a| {
            let id = fx.token_user;
            wrote(fx.s[a].run(|t| t.revoke_token(id)))
        }),
        row("revoke another's API token (the customer's)", |fx, a| {
            let id = fx.token_customer;
            wrote(fx.s[a].run(|t| t.revoke_token(id)))
        }),
        read_row("list API tokens", |fx, a| {
            let me = fx.me[a];
            let tokens = fx.s[a]
                .read()
                .map_err(|e| e.code)?
                .tokens()
                .map_err(|e| e.code)?;
            Ok(seen(tokens.iter().map(|t| t.person == me)))
        }),
        // org_owner manages its people; customers see themselves.
        read_row("read people", |fx, a| {
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
        read_row("read knowledge", |fx, a| {
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
        read_row("read the edges of a draft thing", |fx, a| {
            let read = fx.s[a].read().map_err(|e| e.code)?;
            let n = read
                .edges(fx.lesson, Direction::Out, None, onedb::model::now_ms() + 1)
                .map_err(|e| e.code)?
                .count();
            Ok(if n > 0 { Seen::Data } else { Seen::Nothing })
        }),
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
fn run_cell(row: &Row, expect: &Expect, a: usize) -> Option<String> {
    if *expect == Expect::Skip {
        return None;
    }
    let mut fx = Fx::new();
    let before = all_entries(&fx.db);
    let outcome = (row.run)(&mut fx, a).map_err(|code| code.as_str().to_string());
    let changed = all_entries(&fx.db) != before;
    let wrote_as_allowed = outcome != Ok(Seen::Wrote) || row.read || changed;
    let mut problems = Vec::new();
    if !roles::matches(expect, &outcome) || !wrote_as_allowed {
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
    let table = roles::table();
    let operations = operations();
    let mut mismatches = Vec::new();
    for op in &operations {
        if !table.iter().any(|r| r.op == op.op) {
            mismatches.push(format!("{:<50} is not in tests/roles/table.txt", op.op));
        }
    }
    let mut cells = 0;
    for line in &table {
        let Some(op) = operations.iter().find(|o| o.op == line.op) else {
            mismatches.push(format!("{:<50} has no operation in this test", line.op));
            continue;
        };
        for a in [ROOT, OWNER, USER, CUSTOMER] {
            cells += 1;
            if let Some(m) = run_cell(op, &line.expect[a], a) {
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
