//! Rejected mutations change nothing; successful ones log exactly one event.
//!
//! Issue: "every rejected mutation (each error kind) leaves the database
//! unchanged — compare a full scan before and after", and "every successful
//! mutation has exactly one engine event (plus trigger events) with actor,
//! target, timestamp and metadata" (ONTOLOGY.md "Events", "The standard
//! patterns"; RELIABILITY.md "Atomicity").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use onedb::{
    Database, ErrorCode, Event, EventFilter, Id, KnowledgeKind, NewConnection, NewKnowledge,
    NewPerson, Plan, Role, Session, Status, ThingUpdate, TriggerOn, TypeKind,
};
use serde_json::{Value, json};

/// The standard world each case starts from: org acme (enterprise) with
/// root, an org_owner, an org_user and a customer; a course, a lesson with a
/// part_of edge to it, a 3-dimension chunk; org globex with one thing.
struct Env {
    _dir: tempfile::TempDir,
    db: Database,
    root: Session,
    owner: Session,
    user: Session,
    customer: Session,
    globex: Session,
    course: Id,
    lesson: Id,
    part_of: Id,
    chunk: Id,
    foreign: Id,
    foreign_person: Id,
    /// Whatever a case's preparation made.
    ids: Vec<Id>,
    extra: Option<Session>,
}

impl Env {
    fn new() -> Env {
        let (dir, db) = open();
        let globex = org(&db, "globex");
        let foreign = create(&globex, "course", "Rust").id;
        let foreign_person = person(&db, &globex, "user@globex.io", Role::OrgUser)
            .actor()
            .person;
        let root = org(&db, "acme");
        let owner = person(&db, &root, "owner@acme.io", Role::OrgOwner);
        let user = person(&db, &root, "user@acme.io", Role::OrgUser);
        let customer = person(&db, &root, "customer@acme.io", Role::Customer);
        let course = create(&owner, "course", "Rust").id;
        let lesson = create(&owner, "lesson", "Ownership").id;
        let part_of = owner
            .run(|t| t.connect(edge(lesson, "part_of", course)))
            .expect("part_of")
            .id;
        let chunk = owner
            .run(|t| t.create_knowledge(chunk("Ownership moves values.", vec![0.1, 0.2, 0.3])))
            .expect("chunk")
            .id;
        Env {
            _dir: dir,
            db,
            root,
            owner,
            user,
            customer,
            globex,
            course,
            lesson,
            part_of,
            chunk,
            foreign,
            foreign_person,
            ids: Vec::new(),
            extra: None,
        }
    }

    fn used(&self, counter: &str) -> i64 {
        self.root
            .read()
            .expect("read")
            .usage()
            .expect("usage")
            .into_iter()
            .find(|r| r.counter == counter)
            .map_or(0, |r| r.used)
    }

    fn limit(&mut self, slug: &str, name: &str, value: i64) {
        let limits = BTreeMap::from([(name.to_string(), value)]);
        self.root
            .run(|t| t.set_limits(slug, limits.clone()).map(|_| ()))
            .expect("set limits");
        self.root.refresh_org().expect("refresh");
    }

    /// An org on the starter plan, with root inside it.
    fn starter(&mut self) -> Session {
        let mut root = self.db.local_session().expect("root");
        root.run(|t| t.create_org("tiny", "Tiny", Plan::Starter).map(|_| ()))
            .expect("tiny");
        root.use_org("tiny").expect("use tiny");
        root
    }
}

fn edge(from: Id, kind: &str, to: Id) -> NewConnection {
    NewConnection {
        from: Some(from),
        to: Some(to),
        kind: kind.into(),
        ..Default::default()
    }
}

fn chunk(text: &str, embedding: Vec<f32>) -> NewKnowledge {
    NewKnowledge {
        kind: KnowledgeKind::Chunk,
        text: text.into(),
        embedding: Some(embedding),
        labels: vec![],
        source: None,
        links: vec![],
    }
}

fn label(text: &str) -> NewKnowledge {
    NewKnowledge {
        kind: KnowledgeKind::Label,
        text: text.into(),
        embedding: None,
        labels: vec!["topic:rust".into()],
        source: None,
        links: vec![],
    }
}

fn new_person(email: &str, role: Role) -> NewPerson {
    NewPerson {
        email: email.into(),
        name: "Someone".into(),
        role,
        password: None,
    }
}

fn big_props(bytes: usize) -> onedb::Props {
    json!({"blob": "x".repeat(bytes)})
        .as_object()
        .expect("object")
        .clone()
}

fn rename(name: &str) -> ThingUpdate {
    ThingUpdate {
        name: Some(name.into()),
        ..Default::default()
    }
}

fn unit<T>(r: onedb::Result<T>) -> onedb::Result<()> {
    r.map(|_| ())
}

type Prepare = fn(&mut Env);
type Act = fn(&mut Env) -> onedb::Result<()>;

struct Case {
    name: &'static str,
    code: ErrorCode,
    prepare: Prepare,
    act: Act,
}

fn case(name: &'static str, code: ErrorCode, act: Act) -> Case {
    Case {
        name,
        code,
        prepare: |_| {},
        act,
    }
}

fn prepared(name: &'static str, code: ErrorCode, prepare: Prepare, act: Act) -> Case {
    Case {
        name,
        code,
        prepare,
        act,
    }
}

use ErrorCode::*;

fn cases() -> Vec<Case> {
    vec![
        // ---- UNKNOWN_TYPE: "A type outside them is rejected"
        case("create a thing of an unknown type", UnknownType, |e| {
            unit(e.user.run(|t| t.create_thing(new_thing("cours", "x"))))
        }),
        case("connect with an unknown type", UnknownType, |e| {
            let (a, b) = (e.lesson, e.course);
            unit(e.user.run(|t| t.connect(edge(a, "follows", b))))
        }),
        case("disconnect with an unknown type", UnknownType, |e| {
            let (a, b) = (e.lesson, e.course);
            unit(e.user.run(|t| t.disconnect(a, "part_off", b)))
        }),
        case("emit an unknown event type", UnknownType, |e| {
            unit(
                e.user
                    .run(|t| t.emit("bogus_event", None, Default::default())),
            )
        }),
        case("set a limit on an unknown counter", UnknownType, |e| {
            let limits = BTreeMap::from([("thingz".to_string(), 3)]);
            unit(e.root.run(|t| t.set_limits("acme", limits.clone())))
        }),
        case("a trigger on an unknown thing type", UnknownType, |e| {
            unit(e.owner.run(|t| {
                t.create_trigger(
                    "t",
                    TriggerOn::Create,
                    "cours",
                    "content_event",
                    Default::default(),
                )
            }))
        }),
        // ---- FORBIDDEN: "Every write checks the role first"
        case("a customer creates a course", Forbidden, |e| {
            unit(e.customer.run(|t| t.create_thing(new_thing("course", "x"))))
        }),
        case("an org_user creates a person", Forbidden, |e| {
            unit(
                e.user
                    .run(|t| t.create_person(new_person("p@acme.io", Role::Customer))),
            )
        }),
        case("an org_owner sets limits", Forbidden, |e| {
            let limits = BTreeMap::from([("things".to_string(), 1000)]);
            unit(e.owner.run(|t| t.set_limits("acme", limits.clone())))
        }),
        case("an org_owner creates an org", Forbidden, |e| {
            unit(e.owner.run(|t| t.create_org("newco", "NewCo", Plan::Pro)))
        }),
        case("an org_owner extends the vocabulary", Forbidden, |e| {
            unit(e.owner.run(|t| t.add_type(TypeKind::Thing, "workshop")))
        }),
        case("an org_owner creates a platform owner", Forbidden, |e| {
            unit(
                e.owner
                    .run(|t| t.create_person(new_person("p@acme.io", Role::PlatformOwner))),
            )
        }),
        case("an org_user deletes the owner's thing", Forbidden, |e| {
            let id = e.course;
            unit(e.user.run(|t| t.delete_thing(id)))
        }),
        case("an org_user creates a trigger", Forbidden, |e| {
            unit(e.user.run(|t| {
                t.create_trigger(
                    "t",
                    TriggerOn::Create,
                    "course",
                    "content_event",
                    Default::default(),
                )
            }))
        }),
        case("a customer connects from another node", Forbidden, |e| {
            let (a, b) = (e.lesson, e.course);
            unit(e.customer.run(|t| t.connect(edge(a, "following", b))))
        }),
        case("a customer writes knowledge", Forbidden, |e| {
            unit(e.customer.run(|t| t.create_knowledge(label("x"))))
        }),
        case("an org_user enters another org", Forbidden, |e| {
            e.user.use_org("globex")
        }),
        prepared(
            "an org_user writes in a suspended org",
            Forbidden,
            |e| {
                e.root
                    .run(|t| {
                        t.update_org(
                            "acme",
                            onedb::OrgUpdate {
                                status: Some(onedb::OrgStatus::Suspended),
                                ..Default::default()
                            },
                        )
                    })
                    .expect("suspend");
            },
            |e| unit(e.user.run(|t| t.create_thing(new_thing("video", "v")))),
        ),
        // ---- LIMIT_REACHED: "a write that would pass a limit … writes nothing"
        prepared(
            "create past the things limit",
            LimitReached,
            |e| {
                let n = e.used("things");
                e.limit("acme", "things", n);
            },
            |e| unit(e.user.run(|t| t.create_thing(new_thing("video", "v")))),
        ),
        prepared(
            "the 6th course on the starter plan",
            LimitReached,
            |e| {
                let tiny = e.starter();
                for n in 0..5 {
                    create(&tiny, "course", &format!("c{n}"));
                }
                e.extra = Some(tiny);
            },
            |e| {
                let tiny = e.extra.as_ref().expect("tiny");
                unit(tiny.run(|t| t.create_thing(new_thing("course", "c5"))))
            },
        ),
        prepared(
            "the 2nd ai_clone on the starter plan",
            LimitReached,
            |e| {
                let tiny = e.starter();
                create(&tiny, "ai_clone", "clone");
                e.extra = Some(tiny);
            },
            |e| {
                let tiny = e.extra.as_ref().expect("tiny");
                unit(tiny.run(|t| t.create_thing(new_thing("ai_clone", "clone 2"))))
            },
        ),
        prepared(
            "the 4th person on the starter plan",
            LimitReached,
            |e| {
                let tiny = e.starter();
                for n in 0..3 {
                    tiny.run(|t| {
                        t.create_person(new_person(&format!("p{n}@tiny.io"), Role::OrgUser))
                    })
                    .expect("person");
                }
                e.extra = Some(tiny);
            },
            |e| {
                let tiny = e.extra.as_ref().expect("tiny");
                unit(tiny.run(|t| t.create_person(new_person("p3@tiny.io", Role::OrgUser))))
            },
        ),
        prepared(
            "connect past the connections limit",
            LimitReached,
            |e| {
                let n = e.used("connections");
                e.limit("acme", "connections", n);
            },
            |e| {
                let (a, b) = (e.course, e.lesson);
                unit(e.user.run(|t| t.connect(edge(a, "references", b))))
            },
        ),
        prepared(
            "knowledge past the knowledge limit",
            LimitReached,
            |e| {
                let n = e.used("knowledge");
                e.limit("acme", "knowledge", n);
            },
            |e| unit(e.user.run(|t| t.create_knowledge(label("more")))),
        ),
        prepared(
            "an inference_request past the inference limit",
            LimitReached,
            |e| e.limit("acme", "inference", 0),
            |e| {
                unit(
                    e.user
                        .run(|t| t.emit("inference_request", None, Default::default())),
                )
            },
        ),
        // ---- INVALID_TRANSITION: the lifecycle table
        case("draft -> published", InvalidTransition, |e| {
            let id = e.course;
            unit(e.user.run(|t| t.set_status(id, Status::Published)))
        }),
        case("draft -> draft", InvalidTransition, |e| {
            let id = e.course;
            unit(e.user.run(|t| t.set_status(id, Status::Draft)))
        }),
        prepared(
            "archived -> active",
            InvalidTransition,
            |e| {
                let id = e.course;
                e.owner
                    .run(|t| t.set_status(id, Status::Archived))
                    .expect("archive");
            },
            |e| {
                let id = e.course;
                unit(e.user.run(|t| t.set_status(id, Status::Active)))
            },
        ),
        // ---- NOT_FOUND: another org's or a deleted entity
        case("update another org's thing", NotFound, |e| {
            let id = e.foreign;
            unit(e.owner.run(|t| t.update_thing(id, rename("mine now"))))
        }),
        case("root inside acme deletes globex's thing", NotFound, |e| {
            let id = e.foreign;
            unit(e.root.run(|t| t.delete_thing(id)))
        }),
        case(
            "set the status of an id that never existed",
            NotFound,
            |e| {
                let id = Id::generate(onedb::Dim::Thing);
                unit(e.user.run(|t| t.set_status(id, Status::Active)))
            },
        ),
        prepared(
            "delete a deleted thing",
            NotFound,
            |e| {
                let v = create(&e.user, "video", "gone");
                e.user.run(|t| t.delete_thing(v.id)).expect("delete");
                e.ids.push(v.id);
            },
            |e| {
                let id = e.ids[0];
                unit(e.user.run(|t| t.delete_thing(id)))
            },
        ),
        prepared(
            "connect to a deleted thing",
            NotFound,
            |e| {
                let v = create(&e.user, "video", "gone");
                e.user.run(|t| t.delete_thing(v.id)).expect("delete");
                e.ids.push(v.id);
            },
            |e| {
                let (a, b) = (e.lesson, e.ids[0]);
                unit(e.user.run(|t| t.connect(edge(a, "references", b))))
            },
        ),
        case("connect to another org's thing", NotFound, |e| {
            let (a, b) = (e.lesson, e.foreign);
            unit(e.user.run(|t| t.connect(edge(a, "references", b))))
        }),
        case(
            "disconnect a connection that does not exist",
            NotFound,
            |e| {
                let (a, b) = (e.course, e.lesson);
                unit(e.user.run(|t| t.disconnect(a, "part_of", b)))
            },
        ),
        case(
            "knowledge whose source is another org's thing",
            NotFound,
            |e| {
                let src = e.foreign;
                unit(e.user.run(|t| {
                    t.create_knowledge(NewKnowledge {
                        source: Some(src),
                        ..label("stolen")
                    })
                }))
            },
        ),
        case("remove a person of another org", NotFound, |e| {
            let id = e.foreign_person;
            unit(e.owner.run(|t| t.remove_person(id)))
        }),
        case("emit with another org's thing as target", NotFound, |e| {
            let id = e.foreign;
            unit(
                e.user
                    .run(|t| t.emit("payment_event", Some(id), Default::default())),
            )
        }),
        case("delete knowledge of another org (by id)", NotFound, |e| {
            let id = e.chunk;
            unit(e.globex.run(|t| t.delete_knowledge(id)))
        }),
        // ---- CONFLICT: uniqueness and overlap
        case("a duplicate org slug", Conflict, |e| {
            unit(
                e.root
                    .run(|t| t.create_org("globex", "Globex again", Plan::Pro)),
            )
        }),
        case("a duplicate email (other case)", Conflict, |e| {
            unit(
                e.owner
                    .run(|t| t.create_person(new_person("User@ACME.io", Role::Customer))),
            )
        }),
        case("an email used in another org", Conflict, |e| {
            unit(
                e.owner
                    .run(|t| t.create_person(new_person("user@globex.io", Role::Customer))),
            )
        }),
        case("an overlapping connection", Conflict, |e| {
            let (a, b) = (e.lesson, e.course);
            unit(e.user.run(|t| t.connect(edge(a, "part_of", b))))
        }),
        prepared(
            "a duplicate trigger name",
            Conflict,
            |e| {
                e.owner
                    .run(|t| {
                        t.create_trigger(
                            "t",
                            TriggerOn::Create,
                            "course",
                            "content_event",
                            Default::default(),
                        )
                    })
                    .expect("trigger");
            },
            |e| {
                unit(e.owner.run(|t| {
                    t.create_trigger(
                        "t",
                        TriggerOn::Create,
                        "lesson",
                        "content_event",
                        Default::default(),
                    )
                }))
            },
        ),
        case("adding a built-in type", Conflict, |e| {
            unit(e.root.run(|t| t.add_type(TypeKind::Thing, "course")))
        }),
        // ---- TOO_LARGE: bounded fields
        case("a 2 MiB properties map", TooLarge, |e| {
            unit(e.user.run(|t| {
                t.create_thing(onedb::NewThing {
                    properties: big_props(2 << 20),
                    ..new_thing("video", "big")
                })
            }))
        }),
        case("a 2 KiB name", TooLarge, |e| {
            let name = "n".repeat(2048);
            unit(e.user.run(|t| t.create_thing(new_thing("video", &name))))
        }),
        case("an update that grows properties to 2 MiB", TooLarge, |e| {
            let id = e.course;
            let u = ThingUpdate {
                set: vec![(vec!["blob".into()], json!("x".repeat(2 << 20)))],
                ..Default::default()
            };
            unit(e.user.run(|t| t.update_thing(id, u.clone())))
        }),
        case("a rename to 2 KiB", TooLarge, |e| {
            let id = e.course;
            let name = "n".repeat(2048);
            unit(e.user.run(|t| t.update_thing(id, rename(&name))))
        }),
        case("knowledge with 300 labels", TooLarge, |e| {
            let labels: Vec<String> = (0..300).map(|n| format!("l:{n}")).collect();
            unit(e.user.run(|t| {
                t.create_knowledge(NewKnowledge {
                    labels: labels.clone(),
                    ..label("many labels")
                })
            }))
        }),
        case("knowledge text of 2 MiB", TooLarge, |e| {
            let text = "t".repeat(2 << 20);
            unit(e.user.run(|t| t.create_knowledge(label(&text))))
        }),
        case("connection metadata of 100 KiB", TooLarge, |e| {
            let (a, b) = (e.course, e.lesson);
            unit(e.user.run(|t| {
                t.connect(NewConnection {
                    metadata: big_props(100 << 10),
                    ..edge(a, "references", b)
                })
            }))
        }),
        case("event metadata of 100 KiB", TooLarge, |e| {
            unit(
                e.user
                    .run(|t| t.emit("payment_event", None, big_props(100 << 10))),
            )
        }),
        // ---- INVALID_ARGUMENT: malformed values
        case("a self-loop", InvalidArgument, |e| {
            let a = e.lesson;
            unit(e.user.run(|t| t.connect(edge(a, "references", a))))
        }),
        case("a bad email", InvalidArgument, |e| {
            unit(
                e.owner
                    .run(|t| t.create_person(new_person("not-an-email", Role::Customer))),
            )
        }),
        case("strength 1.5", InvalidArgument, |e| {
            let (a, b) = (e.course, e.lesson);
            unit(e.user.run(|t| {
                t.connect(NewConnection {
                    strength: Some(1.5),
                    ..edge(a, "references", b)
                })
            }))
        }),
        case("strength -0.1", InvalidArgument, |e| {
            let (a, b) = (e.course, e.lesson);
            unit(e.user.run(|t| {
                t.connect(NewConnection {
                    strength: Some(-0.1),
                    ..edge(a, "references", b)
                })
            }))
        }),
        case("strength NaN", InvalidArgument, |e| {
            let (a, b) = (e.course, e.lesson);
            unit(e.user.run(|t| {
                t.connect(NewConnection {
                    strength: Some(f64::NAN),
                    ..edge(a, "references", b)
                })
            }))
        }),
        case("validTo before validFrom", InvalidArgument, |e| {
            let (a, b) = (e.course, e.lesson);
            let from = onedb::model::parse_iso("2030-01-01").expect("date");
            let to = onedb::model::parse_iso("2025-01-01").expect("date");
            unit(e.user.run(|t| {
                t.connect(NewConnection {
                    valid_from: Some(from),
                    valid_to: Some(to),
                    ..edge(a, "references", b)
                })
            }))
        }),
        case("an embedding of another dimension", InvalidArgument, |e| {
            unit(
                e.user
                    .run(|t| t.create_knowledge(chunk("four", vec![0.0; 4]))),
            )
        }),
        case("a NaN in an embedding", InvalidArgument, |e| {
            unit(
                e.user
                    .run(|t| t.create_knowledge(chunk("nan", vec![0.0, f32::NAN, 1.0]))),
            )
        }),
        case("an empty name", InvalidArgument, |e| {
            unit(e.user.run(|t| t.create_thing(new_thing("video", "  "))))
        }),
        case("a control character in a name", InvalidArgument, |e| {
            unit(
                e.user
                    .run(|t| t.create_thing(new_thing("video", "a\u{0}b"))),
            )
        }),
        case("emitting an engine event by hand", InvalidArgument, |e| {
            let id = e.part_of;
            unit(
                e.user
                    .run(|t| t.emit("connection_created", Some(id), Default::default())),
            )
        }),
        case("an org slug with spaces", InvalidArgument, |e| {
            unit(e.root.run(|t| t.create_org("Acme Inc", "Acme", Plan::Pro)))
        }),
        // ---- NOT_AUTHENTICATED: a removed person's session
        prepared(
            "a removed person writes",
            NotAuthenticated,
            |e| {
                let p = person(&e.db, &e.root, "gone@acme.io", Role::OrgUser);
                let id = p.actor().person;
                e.owner.run(|t| t.remove_person(id)).expect("remove");
                e.extra = Some(p);
            },
            |e| {
                let p = e.extra.as_ref().expect("person");
                unit(p.run(|t| t.create_thing(new_thing("video", "ghost"))))
            },
        ),
        // ---- a failure in the middle of a multi-step unit of work
        case("create ok, then create an unknown type", UnknownType, |e| {
            e.user.run(|t| {
                t.create_thing(new_thing("video", "first"))?;
                t.create_thing(new_thing("cours", "second"))?;
                Ok(())
            })
        }),
        case(
            "create and connect ok, then a self-loop",
            InvalidArgument,
            |e| {
                let course = e.course;
                e.user.run(|t| {
                    let v = t.create_thing(new_thing("video", "first"))?;
                    t.connect(edge(v.id, "references", course))?;
                    t.connect(edge(v.id, "references", v.id))?;
                    Ok(())
                })
            },
        ),
        case(
            "create ok, then an invalid transition",
            InvalidTransition,
            |e| {
                e.user.run(|t| {
                    let v = t.create_thing(new_thing("video", "first"))?;
                    t.set_status(v.id, Status::Active)?;
                    t.set_status(v.id, Status::Draft)?;
                    Ok(())
                })
            },
        ),
        case("a person, then the same email in one unit", Conflict, |e| {
            e.owner.run(|t| {
                t.create_person(new_person("twin@acme.io", Role::Customer))?;
                t.create_person(new_person("Twin@acme.io", Role::Customer))?;
                Ok(())
            })
        }),
        prepared(
            "two creates where the limit allows one",
            LimitReached,
            |e| {
                let n = e.used("things");
                e.limit("acme", "things", n + 1);
            },
            |e| {
                e.user.run(|t| {
                    t.create_thing(new_thing("video", "one"))?;
                    t.create_thing(new_thing("video", "two"))?;
                    Ok(())
                })
            },
        ),
        case("delete, then update the deleted thing", NotFound, |e| {
            let lesson = e.lesson;
            e.owner.run(|t| {
                t.delete_thing(lesson)?;
                t.update_thing(lesson, rename("after"))?;
                Ok(())
            })
        }),
        case(
            "knowledge ok, then an embedding of another dimension",
            InvalidArgument,
            |e| {
                e.user.run(|t| {
                    t.create_knowledge(chunk("three", vec![1.0, 2.0, 3.0]))?;
                    t.create_knowledge(chunk("two", vec![1.0, 2.0]))?;
                    Ok(())
                })
            },
        ),
    ]
}

#[test]
fn every_rejected_mutation_leaves_the_database_unchanged() {
    let cases = cases();
    let mut failures = Vec::new();
    let mut codes = BTreeSet::new();
    for c in &cases {
        let mut env = Env::new();
        (c.prepare)(&mut env);
        let before = all_entries(&env.db);
        let commits = env.db.last_commit().expect("last commit");
        let result = (c.act)(&mut env);
        let after = all_entries(&env.db);
        let mut problems = Vec::new();
        match &result {
            Err(e) if e.code == c.code => {}
            Err(e) => problems.push(format!("expected {}, got {e}", c.code)),
            Ok(()) => problems.push(format!("expected {}, but it succeeded", c.code)),
        }
        if after != before {
            let added = after.iter().filter(|kv| !before.contains(kv)).count();
            let removed = before.iter().filter(|kv| !after.contains(kv)).count();
            problems.push(format!(
                "the database changed: {added} entries added or changed, {removed} removed, {} commits",
                env.db.last_commit().expect("last commit") - commits
            ));
        }
        let report = env.db.validate().expect("validate");
        if !report.is_ok() {
            problems.push(format!("validate: {:?}", report.problems));
        }
        codes.insert(c.code.as_str());
        if !problems.is_empty() {
            failures.push(format!("{}: {}", c.name, problems.join("; ")));
        }
    }
    println!(
        "{} cases over {} error kinds: {codes:?}",
        cases.len(),
        codes.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} rejections misbehaved:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn a_transaction_dropped_without_commit_writes_nothing() {
    let env = Env::new();
    let before = all_entries(&env.db);
    {
        let mut t = env.user.write().expect("write");
        t.create_thing(new_thing("video", "never")).expect("create");
        t.connect(edge(env.lesson, "references", env.course))
            .expect("connect");
        assert!(t.is_dirty());
    }
    assert_eq!(all_entries(&env.db), before);
    assert_valid(&env.db);
}

// ---------------------------------------------------------------------------
// Every successful mutation: exactly one engine event (plus trigger events).

/// The engine's own event types (ONTOLOGY.md "Events").
const ENGINE_EVENTS: &[&str] = &[
    "entity_created",
    "entity_updated",
    "entity_deleted",
    "entity_archived",
    "connection_created",
    "connection_ended",
    "organization_created",
    "organization_updated",
    "user_joined_org",
    "user_removed_from_org",
    "user_login",
];

/// Every event of every tenant, read as root.
fn every_event(db: &Database) -> BTreeMap<Id, Event> {
    let mut root = db.local_session().expect("root");
    let orgs = root.read().expect("read").orgs().expect("orgs");
    let mut out = BTreeMap::new();
    let filter = EventFilter {
        limit: 1_000_000,
        ..Default::default()
    };
    for org in orgs {
        root.use_org(&org.slug).expect("use org");
        for e in root.read().expect("read").events(&filter).expect("events") {
            out.insert(e.id, e);
        }
    }
    root.use_platform().expect("platform");
    for e in root.read().expect("read").events(&filter).expect("events") {
        out.insert(e.id, e);
    }
    out
}

/// What the one event of a mutation must say.
struct Want {
    /// The event type; "*" when ONTOLOGY.md names none (any one event).
    kind: &'static str,
    actor: Id,
    /// The entity; for org events None is accepted too (the org is in
    /// metadata.org).
    target: Option<Id>,
    org_event: bool,
    /// metadata.entityType; None: any non-empty string.
    entity_type: Option<&'static str>,
    /// metadata.org.
    org: Value,
    /// Events that triggers add.
    triggered: usize,
    /// metadata says what changed.
    changes: bool,
}

fn want(kind: &'static str, actor: &Session, target: Id, entity_type: &'static str) -> Want {
    Want {
        kind,
        actor: actor.actor().person,
        target: Some(target),
        org_event: false,
        entity_type: Some(entity_type),
        org: json!(actor.org().map(|o| o.id)),
        triggered: 0,
        changes: false,
    }
}

type Mutation = fn(&mut Env) -> Want;

fn mutations() -> Vec<(&'static str, Mutation)> {
    vec![
        ("create a thing", |e| {
            let t = create(&e.user, "video", "clip");
            want("entity_created", &e.user, t.id, "video")
        }),
        ("create a thing that fires a trigger", |e| {
            // The trigger itself is made in `prepare_for`.
            let t = create(&e.user, "lesson", "Borrowing");
            Want {
                triggered: 1,
                ..want("entity_created", &e.user, t.id, "lesson")
            }
        }),
        ("update a thing", |e| {
            let id = e.course;
            e.user
                .run(|t| t.update_thing(id, rename("Rust 2")))
                .expect("update");
            Want {
                changes: true,
                ..want("entity_updated", &e.user, id, "course")
            }
        }),
        ("set a status", |e| {
            let id = e.course;
            e.user
                .run(|t| t.set_status(id, Status::Active))
                .expect("status");
            Want {
                changes: true,
                ..want("entity_updated", &e.user, id, "course")
            }
        }),
        ("archive", |e| {
            let id = e.course;
            e.user
                .run(|t| t.set_status(id, Status::Archived))
                .expect("archive");
            want("entity_archived", &e.user, id, "course")
        }),
        ("delete a thing with a connection", |e| {
            let id = e.lesson;
            e.owner.run(|t| t.delete_thing(id)).expect("delete");
            want("entity_deleted", &e.owner, id, "lesson")
        }),
        ("connect", |e| {
            let (a, b) = (e.course, e.lesson);
            let c = e
                .user
                .run(|t| t.connect(edge(a, "references", b)))
                .expect("connect");
            Want {
                entity_type: None,
                ..want("connection_created", &e.user, c.id, "")
            }
        }),
        ("disconnect", |e| {
            let (a, b, id) = (e.lesson, e.course, e.part_of);
            e.user
                .run(|t| t.disconnect(a, "part_of", b))
                .expect("disconnect");
            Want {
                entity_type: None,
                ..want("connection_ended", &e.user, id, "")
            }
        }),
        ("create knowledge", |e| {
            let k = e
                .user
                .run(|t| t.create_knowledge(label("note")))
                .expect("knowledge");
            want("entity_created", &e.user, k.id, "knowledge")
        }),
        ("delete knowledge", |e| {
            let id = e.chunk;
            e.owner.run(|t| t.delete_knowledge(id)).expect("delete");
            want("entity_deleted", &e.owner, id, "knowledge")
        }),
        ("emit", |e| {
            let id = e.course;
            let meta = json!({"amount": 5}).as_object().expect("object").clone();
            e.user
                .run(|t| t.emit("payment_event", Some(id), meta.clone()))
                .expect("emit");
            want("payment_event", &e.user, id, "course")
        }),
        ("create a person", |e| {
            let p = e
                .owner
                .run(|t| t.create_person(new_person("new@acme.io", Role::Customer)))
                .expect("person");
            want("user_joined_org", &e.owner, p.id, "person")
        }),
        ("remove a person", |e| {
            let id = e.customer.actor().person;
            e.owner.run(|t| t.remove_person(id)).expect("remove");
            want("user_removed_from_org", &e.owner, id, "person")
        }),
        ("create an org", |e| {
            let o = e
                .root
                .run(|t| t.create_org("newco", "NewCo", Plan::Pro))
                .expect("org");
            Want {
                target: Some(o.id),
                org_event: true,
                org: json!(o.id),
                ..want("organization_created", &e.root, o.id, "organization")
            }
        }),
        ("rename an org", |e| {
            let o = e
                .root
                .run(|t| {
                    t.update_org(
                        "globex",
                        onedb::OrgUpdate {
                            name: Some("Globex Corp".into()),
                            ..Default::default()
                        },
                    )
                })
                .expect("update org");
            Want {
                org_event: true,
                org: json!(o.id),
                changes: true,
                ..want("organization_updated", &e.root, o.id, "organization")
            }
        }),
        ("set limits", |e| {
            let limits = BTreeMap::from([("things".to_string(), 500)]);
            let o = e
                .root
                .run(|t| t.set_limits("acme", limits.clone()))
                .expect("limits");
            Want {
                org_event: true,
                org: json!(o.id),
                ..want("organization_updated", &e.root, o.id, "organization")
            }
        }),
        ("create a global platform thing", |e| {
            let mut root = e.db.local_session().expect("root");
            root.use_platform().expect("platform");
            let t = create(&root, "template", "Starter site");
            Want {
                org: Value::Null,
                ..want("entity_created", &root, t.id, "template")
            }
        }),
        ("log in", |e| {
            let p = e
                .owner
                .run(|t| {
                    t.create_person(NewPerson {
                        password: Some("correct horse".into()),
                        ..new_person("pw@acme.io", Role::OrgUser)
                    })
                })
                .expect("person");
            // Only the login counts: re-read the events after creating.
            e.ids.push(p.id);
            Want {
                kind: "user_login",
                ..want("user_login", &e.owner, p.id, "person")
            }
        }),
        // ONTOLOGY.md names no event type for these; one event is still due
        // ("the engine writes one for every successful mutation").
        ("create a trigger", |e| {
            e.owner
                .run(|t| {
                    t.create_trigger(
                        "on_video",
                        TriggerOn::Create,
                        "video",
                        "content_event",
                        Default::default(),
                    )
                })
                .expect("trigger");
            Want {
                kind: "*",
                target: None,
                entity_type: None,
                ..want("*", &e.owner, e.course, "")
            }
        }),
        ("drop a trigger", |e| {
            // Made in the world before the snapshot by `prepare_for`.
            e.owner.run(|t| t.drop_trigger("to_drop")).expect("drop");
            Want {
                kind: "*",
                target: None,
                entity_type: None,
                ..want("*", &e.owner, e.course, "")
            }
        }),
        ("add a vocabulary type", |e| {
            e.root
                .run(|t| t.add_type(TypeKind::Thing, "workshop"))
                .expect("add type");
            Want {
                kind: "*",
                target: None,
                entity_type: None,
                org: Value::Null,
                ..want("*", &e.root, e.course, "")
            }
        }),
    ]
}

/// Set-up a mutation needs before the "before" snapshot of events.
fn prepare_for(name: &str, e: &mut Env) {
    match name {
        "drop a trigger" => {
            e.owner
                .run(|t| {
                    t.create_trigger(
                        "to_drop",
                        TriggerOn::Create,
                        "video",
                        "content_event",
                        Default::default(),
                    )
                })
                .expect("trigger");
        }
        "create a thing that fires a trigger" => {
            e.owner
                .run(|t| {
                    t.create_trigger(
                        "on_lesson",
                        TriggerOn::Create,
                        "lesson",
                        "content_event",
                        Default::default(),
                    )
                })
                .expect("trigger");
        }
        _ => {}
    }
}

fn check_events(name: &str, want: &Want, new: &[Event], t0: i64, t1: i64) -> Vec<String> {
    let mut problems = Vec::new();
    let engine: Vec<&Event> = new
        .iter()
        .filter(|e| ENGINE_EVENTS.contains(&e.kind.as_str()))
        .collect();
    let others: Vec<&Event> = new
        .iter()
        .filter(|e| !ENGINE_EVENTS.contains(&e.kind.as_str()))
        .collect();
    let kinds: Vec<&str> = new.iter().map(|e| e.kind.as_str()).collect();
    let main: Option<&Event> = if want.kind == "*" {
        if new.len() != 1 {
            problems.push(format!(
                "{} events {kinds:?}, expected exactly one",
                new.len()
            ));
        }
        new.first()
    } else if ENGINE_EVENTS.contains(&want.kind) {
        if engine.len() != 1 || engine[0].kind != want.kind {
            problems.push(format!(
                "engine events {kinds:?}, expected one {}",
                want.kind
            ));
        }
        if others.len() != want.triggered {
            problems.push(format!(
                "{} other events {kinds:?}, expected {} from triggers",
                others.len(),
                want.triggered
            ));
        }
        for o in &others {
            if o.metadata.get("trigger").is_none() {
                problems.push(format!(
                    "event {} is neither the engine's nor a trigger's",
                    o.kind
                ));
            }
            if o.actor != Some(want.actor) || o.target != want.target {
                problems.push(format!(
                    "trigger event {} has actor {:?} target {:?}",
                    o.kind, o.actor, o.target
                ));
            }
        }
        engine.iter().find(|e| e.kind == want.kind).copied()
    } else {
        // EMIT: the custom event is the only one.
        if new.len() != 1 || new[0].kind != want.kind {
            problems.push(format!("events {kinds:?}, expected only {}", want.kind));
        }
        new.iter().find(|e| e.kind == want.kind)
    };
    let Some(e) = main else {
        problems.push("no event to check".into());
        return problems
            .into_iter()
            .map(|p| format!("{name}: {p}"))
            .collect();
    };
    if e.actor != Some(want.actor) {
        problems.push(format!("actor {:?}, expected {}", e.actor, want.actor));
    }
    let target_ok = if want.kind == "*" {
        true
    } else if want.org_event {
        e.target.is_none() || e.target == want.target
    } else {
        e.target == want.target
    };
    if !target_ok {
        problems.push(format!("target {:?}, expected {:?}", e.target, want.target));
    }
    if e.timestamp < t0 || e.timestamp > t1 {
        problems.push(format!("timestamp {} outside [{t0}, {t1}]", e.timestamp));
    }
    match e.metadata.get("org") {
        None => problems.push("metadata has no org".into()),
        Some(org) if want.kind != "*" && *org != want.org => {
            problems.push(format!("metadata.org {org}, expected {}", want.org))
        }
        Some(_) => {}
    }
    match e.metadata.get("entityType") {
        Some(Value::String(t)) if !t.is_empty() => {
            if let Some(w) = want.entity_type
                && t != w
            {
                problems.push(format!("metadata.entityType {t:?}, expected {w:?}"));
            }
        }
        other => problems.push(format!("metadata.entityType is {other:?}")),
    }
    if want.changes
        && e.metadata
            .get("changes")
            .is_none_or(|c| c.as_object().is_none_or(|o| o.is_empty()))
    {
        problems.push(format!(
            "metadata.changes missing or empty: {:?}",
            e.metadata
        ));
    }
    if want.kind == "user_login" && e.metadata.get("success") != Some(&json!(true)) {
        problems.push(format!(
            "metadata.success is {:?}",
            e.metadata.get("success")
        ));
    }
    problems
        .into_iter()
        .map(|p| format!("{name}: {p}"))
        .collect()
}

#[test]
fn every_successful_mutation_logs_exactly_one_event() {
    let mut failures = Vec::new();
    let list = mutations();
    for (name, mutate) in &list {
        let mut env = Env::new();
        prepare_for(name, &mut env);
        let (before, t0, want, t1) = if *name == "log in" {
            // The person is made first; the login is the mutation.
            let mut want = mutate(&mut env);
            let before = every_event(&env.db);
            let t0 = onedb::model::now_ms();
            let s = env.db.login("pw@acme.io", "correct horse").expect("login");
            want.actor = s.actor().person;
            (before, t0, want, onedb::model::now_ms())
        } else {
            let before = every_event(&env.db);
            let t0 = onedb::model::now_ms();
            let want = mutate(&mut env);
            (before, t0, want, onedb::model::now_ms())
        };
        let after = every_event(&env.db);
        let new: Vec<Event> = after
            .into_iter()
            .filter(|(id, _)| !before.contains_key(id))
            .map(|(_, e)| e)
            .collect();
        failures.extend(check_events(name, &want, &new, t0, t1));
        let report = env.db.validate().expect("validate");
        if !report.is_ok() {
            failures.push(format!("{name}: validate: {:?}", report.problems));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems over {} mutations:\n{}",
        failures.len(),
        list.len(),
        failures.join("\n")
    );
}
