//! The core engine through its public API: the standard mutation patterns,
//! their events and usage, and the errors of each rejected write.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::*;
use onedb::{
    Database, Direction, ErrorCode, EventFilter, JunctionRole, KnowledgeKind, NewConnection,
    NewKnowledge, Role, Status, ThingUpdate, TriggerOn, TypeKind,
};
use serde_json::json;

fn events_of(session: &onedb::Session, target: onedb::Id) -> Vec<onedb::Event> {
    session
        .read()
        .unwrap()
        .events(&EventFilter {
            target: Some(target),
            limit: 100,
            ..Default::default()
        })
        .unwrap()
}

fn usage(session: &onedb::Session, counter: &str) -> i64 {
    session
        .read()
        .unwrap()
        .usage()
        .unwrap()
        .into_iter()
        .find(|r| r.counter == counter)
        .map_or(0, |r| r.used)
}

#[test]
fn a_new_database_has_root_and_checks_clean() {
    let (_dir, db) = open();
    let root = db.local_session().unwrap();
    assert_eq!(root.actor().role, Role::PlatformOwner);
    assert!(root.org().is_none());
    assert_valid(&db);
}

#[test]
fn creating_a_thing_writes_record_indexes_event_and_usage_in_one_commit() {
    let (_dir, db) = open();
    let acme = org(&db, "acme");
    let before = db.last_commit().unwrap();
    let course = acme
        .run(|t| {
            t.create_thing(onedb::NewThing {
                kind: "course".into(),
                name: "Rust".into(),
                properties: json!({"price": 49}).as_object().unwrap().clone(),
            })
        })
        .unwrap();
    assert_eq!(db.last_commit().unwrap(), before + 1, "one commit");
    assert_eq!(course.status, Status::Draft);
    assert!(course.id.to_string().starts_with("thg_"));
    let events = events_of(&acme, course.id);
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.kind, "entity_created");
    assert_eq!(e.actor, Some(acme.actor().person));
    assert!(e.timestamp > 0);
    assert_eq!(e.metadata["entityType"], json!("course"));
    assert_eq!(e.metadata["org"], json!(acme.org().unwrap().id));
    assert_eq!(usage(&acme, "things"), 1);
    assert_eq!(usage(&acme, "course"), 1);
    let read = acme.read().unwrap();
    assert_eq!(read.thing(course.id).unwrap(), Some(course.clone()));
    let of_type: Vec<_> = read
        .things_of_type("course", Some(Status::Draft))
        .unwrap()
        .map(|t| t.unwrap().id)
        .collect();
    assert_eq!(of_type, vec![course.id]);
    assert_eq!(
        read.things_of_type("course", Some(Status::Active))
            .unwrap()
            .count(),
        0
    );
    drop(read);
    assert_valid(&db);
}

#[test]
fn updates_record_what_changed() {
    let (_dir, db) = open();
    let acme = org(&db, "acme");
    let course = create(&acme, "course", "Rust for Beginners");
    let update = ThingUpdate {
        name: Some("Rust for Everyone".into()),
        set: vec![
            (vec!["price".into()], json!(39)),
            (vec!["meta".into(), "level".into()], json!("any")),
        ],
        ..Default::default()
    };
    let updated = acme
        .run(|t| t.update_thing(course.id, update.clone()))
        .unwrap();
    assert_eq!(updated.name, "Rust for Everyone");
    assert_eq!(updated.properties["meta"]["level"], json!("any"));
    let events = events_of(&acme, course.id);
    assert_eq!(events[0].kind, "entity_updated", "newest first");
    assert_eq!(
        events[0].metadata["changes"]["name"]["from"],
        json!("Rust for Beginners")
    );
    assert_eq!(
        events[0].metadata["changes"]["properties"]["to"]["price"],
        json!(39)
    );
    assert_valid(&db);
}

#[test]
fn every_lifecycle_transition_follows_the_table() {
    let (_dir, db) = open();
    let acme = org(&db, "acme");
    // The shortest legal path from draft to each status.
    let path_to = |s: Status| -> Vec<Status> {
        match s {
            Status::Draft => vec![],
            Status::Active => vec![Status::Active],
            Status::Published => vec![Status::Active, Status::Published],
            Status::Inactive => vec![Status::Active, Status::Inactive],
            Status::Archived => vec![Status::Archived],
        }
    };
    let allowed: BTreeMap<&str, Vec<&str>> = BTreeMap::from([
        ("draft", vec!["active", "archived"]),
        ("active", vec!["published", "inactive", "archived"]),
        ("published", vec!["active", "archived"]),
        ("inactive", vec!["active", "archived"]),
        ("archived", vec![]),
    ]);
    for from in Status::ALL {
        for to in Status::ALL {
            let thing = create(&acme, "video", "clip");
            for step in path_to(from) {
                acme.run(|t| t.set_status(thing.id, step)).unwrap();
            }
            let snapshot = all_entries(&db);
            let result = acme.run(|t| t.set_status(thing.id, to));
            if allowed[from.as_str()].contains(&to.as_str()) {
                assert_eq!(result.unwrap().status, to, "{from:?} -> {to:?}");
                let newest = &events_of(&acme, thing.id)[0];
                let expected = if to == Status::Archived {
                    "entity_archived"
                } else {
                    "entity_updated"
                };
                assert_eq!(newest.kind, expected);
            } else {
                assert_eq!(
                    result.unwrap_err().code,
                    ErrorCode::InvalidTransition,
                    "{from:?} -> {to:?}"
                );
                assert_eq!(
                    all_entries(&db),
                    snapshot,
                    "a refused transition writes nothing"
                );
            }
        }
    }
    assert_valid(&db);
}

#[test]
fn delete_hides_the_thing_and_its_edges_but_keeps_events() {
    let (_dir, db) = open();
    let acme = org(&db, "acme");
    let a = create(&acme, "creator", "Ada");
    let b = create(&acme, "creator", "Grace");
    acme.run(|t| {
        t.connect(NewConnection {
            from: Some(a.id),
            to: Some(b.id),
            kind: "following".into(),
            ..Default::default()
        })
    })
    .unwrap();
    assert_eq!(usage(&acme, "connections"), 1);
    acme.run(|t| t.delete_thing(b.id)).unwrap();
    let read = acme.read().unwrap();
    assert_eq!(read.thing(b.id).unwrap(), None);
    assert_eq!(read.things_of_type("creator", None).unwrap().count(), 1);
    assert_eq!(
        read.edges(a.id, Direction::Out, None, onedb::model::now_ms())
            .unwrap()
            .count(),
        0
    );
    // Hidden at every time, not only now.
    assert_eq!(
        read.edges(a.id, Direction::Out, None, 0).unwrap().count(),
        0
    );
    drop(read);
    let kinds: Vec<String> = events_of(&acme, b.id).into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec!["entity_deleted", "entity_created"]);
    assert_eq!(usage(&acme, "things"), 1);
    assert_eq!(usage(&acme, "connections"), 0);
    assert_eq!(
        acme.run(|t| t.delete_thing(b.id)).unwrap_err().code,
        ErrorCode::NotFound
    );
    assert_valid(&db);
}

#[test]
fn connections_are_temporal_and_disconnect_keeps_history() {
    let (_dir, db) = open();
    let acme = org(&db, "acme");
    let course = create(&acme, "course", "Rust");
    let lesson = create(&acme, "lesson", "Ownership");
    let t2025 = onedb::model::parse_iso("2025-01-01").unwrap();
    let t2030 = onedb::model::parse_iso("2030-01-01").unwrap();
    let con = acme
        .run(|t| {
            t.connect(NewConnection {
                from: Some(lesson.id),
                to: Some(course.id),
                kind: "part_of".into(),
                metadata: json!({"order": 1}).as_object().unwrap().clone(),
                valid_from: Some(t2025),
                valid_to: Some(t2030),
                ..Default::default()
            })
        })
        .unwrap();
    let read = acme.read().unwrap();
    let at = |ms| {
        read.edges(course.id, Direction::In, Some("part_of"), ms)
            .unwrap()
            .map(|e| e.unwrap().from)
            .collect::<Vec<_>>()
    };
    assert_eq!(at(t2025), vec![lesson.id]);
    assert_eq!(at(t2025 - 1), vec![]);
    assert_eq!(at(t2030), vec![], "validTo is exclusive");
    drop(read);
    // The same pair and type again, overlapping: refused.
    let again = acme.run(|t| {
        t.connect(NewConnection {
            from: Some(lesson.id),
            to: Some(course.id),
            kind: "part_of".into(),
            ..Default::default()
        })
    });
    assert_eq!(again.unwrap_err().code, ErrorCode::Conflict);
    let ended = acme
        .run(|t| t.disconnect(lesson.id, "part_of", course.id))
        .unwrap();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].id, con.id);
    let read = acme.read().unwrap();
    assert_eq!(
        read.edges(course.id, Direction::In, None, onedb::model::now_ms() + 1)
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        read.edges(course.id, Direction::In, None, t2025)
            .unwrap()
            .count(),
        1,
        "history stays"
    );
    drop(read);
    let kinds: Vec<String> = events_of(&acme, con.id)
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, vec!["connection_ended", "connection_created"]);
    assert_eq!(
        acme.run(|t| t.disconnect(lesson.id, "part_of", course.id))
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
    assert_valid(&db);
}

#[test]
fn bad_connections_are_refused() {
    let (_dir, db) = open();
    let acme = org(&db, "acme");
    let globex = org(&db, "globex");
    let a = create(&acme, "creator", "a");
    let foreign = create(&globex, "creator", "f");
    let connect = |from, to, kind: &str| {
        acme.run(|t| {
            t.connect(NewConnection {
                from: Some(from),
                to: Some(to),
                kind: kind.into(),
                ..Default::default()
            })
        })
    };
    let snapshot = all_entries(&db);
    assert_eq!(
        connect(a.id, a.id, "following").unwrap_err().code,
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        connect(a.id, foreign.id, "following").unwrap_err().code,
        ErrorCode::NotFound
    );
    let unknown = connect(a.id, foreign.id, "follows").unwrap_err();
    assert_eq!(unknown.code, ErrorCode::UnknownType);
    assert!(unknown.message.contains("following"), "{}", unknown.message);
    assert_eq!(all_entries(&db), snapshot);
}

#[test]
fn limits_are_enforced_per_counter_and_per_type() {
    let (_dir, db) = open();
    let mut root = org(&db, "acme");
    root.run(|t| {
        t.set_limits(
            "acme",
            BTreeMap::from([("things".into(), 3), ("course".into(), 1)]),
        )
        .map(|_| ())
    })
    .unwrap();
    root.refresh_org().unwrap();
    create(&root, "course", "one");
    let snapshot = all_entries(&db);
    let err = root
        .run(|t| t.create_thing(new_thing("course", "two")))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::LimitReached);
    assert!(err.message.contains("course limit 1"), "{}", err.message);
    assert_eq!(
        all_entries(&db),
        snapshot,
        "a refused create writes nothing"
    );
    create(&root, "lesson", "l1");
    create(&root, "lesson", "l2");
    let err = root
        .run(|t| t.create_thing(new_thing("lesson", "l3")))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::LimitReached);
    assert_eq!(err.message, "organization acme: things limit 3 reached");
    let bad = root
        .run(|t| {
            t.set_limits("acme", BTreeMap::from([("thingz".into(), 3)]))
                .map(|_| ())
        })
        .unwrap_err();
    assert_eq!(bad.code, ErrorCode::UnknownType);
    assert!(bad.message.contains("things"), "{}", bad.message);
    assert_valid(&db);
}

#[test]
fn a_suspended_org_rejects_writes() {
    let (_dir, db) = open();
    let acme = org(&db, "acme");
    let user = person(&db, &acme, "u@acme.io", Role::OrgUser);
    acme.run(|t| {
        t.update_org(
            "acme",
            onedb::OrgUpdate {
                status: Some(onedb::OrgStatus::Suspended),
                ..Default::default()
            },
        )
        .map(|_| ())
    })
    .unwrap();
    let err = user
        .run(|t| t.create_thing(new_thing("video", "v")))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
    assert!(err.message.contains("suspended"), "{}", err.message);
    assert_valid(&db);
}

#[test]
fn unknown_types_are_refused_with_a_hint_until_the_owner_adds_them() {
    let (dir, db) = open_durable();
    let acme = org(&db, "acme");
    let err = acme
        .run(|t| t.create_thing(new_thing("cours", "x")))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::UnknownType);
    assert!(
        err.message.contains("did you mean course"),
        "{}",
        err.message
    );
    let err = acme
        .run(|t| t.create_thing(new_thing("workshop", "x")))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::UnknownType);
    let owner = person(&db, &acme, "o@acme.io", Role::OrgOwner);
    assert_eq!(
        owner
            .run(|t| t.add_type(TypeKind::Thing, "workshop"))
            .unwrap_err()
            .code,
        ErrorCode::Forbidden
    );
    acme.run(|t| t.add_type(TypeKind::Thing, "workshop"))
        .unwrap();
    create(&owner, "workshop", "Hands-on");
    drop((acme, owner, db));
    // The addition persists.
    let db = Database::open(dir.path()).unwrap();
    assert!(db.knows_type(TypeKind::Thing, "workshop"));
    assert_valid(&db);
}

#[test]
fn knowledge_links_both_ways_and_keeps_one_dimension_per_org() {
    let (_dir, db) = open();
    let acme = org(&db, "acme");
    let lesson = create(&acme, "lesson", "Ownership");
    let chunk = acme
        .run(|t| {
            t.create_knowledge(NewKnowledge {
                kind: KnowledgeKind::Chunk,
                text: "Ownership moves values between bindings.".into(),
                embedding: Some(vec![0.12, -0.5, 0.33]),
                labels: vec!["rust".into(), "memory".into()],
                source: Some(lesson.id),
                links: vec![],
            })
        })
        .unwrap();
    let read = acme.read().unwrap();
    assert_eq!(
        read.things_of_knowledge(chunk.id).unwrap(),
        vec![(lesson.id, JunctionRole::ChunkOf)]
    );
    assert_eq!(
        read.knowledge_of_thing(lesson.id).unwrap(),
        vec![(chunk.id, JunctionRole::ChunkOf)]
    );
    assert_eq!(read.embedding_dim().unwrap(), Some(3));
    drop(read);
    let mismatch = acme.run(|t| {
        t.create_knowledge(NewKnowledge {
            kind: KnowledgeKind::Chunk,
            text: "four dims".into(),
            embedding: Some(vec![0.0; 4]),
            labels: vec![],
            source: None,
            links: vec![],
        })
    });
    assert_eq!(mismatch.unwrap_err().code, ErrorCode::InvalidArgument);
    assert_eq!(usage(&acme, "knowledge"), 1);
    acme.run(|t| t.delete_knowledge(chunk.id)).unwrap();
    assert!(
        acme.read()
            .unwrap()
            .knowledge_of_thing(lesson.id)
            .unwrap()
            .is_empty()
    );
    assert_valid(&db);
}

#[test]
fn triggers_emit_inside_the_same_commit() {
    let (_dir, db) = open();
    let acme = org(&db, "acme");
    acme.run(|t| {
        t.create_trigger(
            "enroll_mail",
            TriggerOn::Connect,
            "enrolled_in",
            "communication_event",
            json!({"channel": "email"}).as_object().unwrap().clone(),
        )
        .map(|_| ())
    })
    .unwrap();
    let a = create(&acme, "creator", "Ada");
    let course = create(&acme, "course", "Rust");
    let before = db.last_commit().unwrap();
    let con = acme
        .run(|t| {
            t.connect(NewConnection {
                from: Some(a.id),
                to: Some(course.id),
                kind: "enrolled_in".into(),
                ..Default::default()
            })
        })
        .unwrap();
    assert_eq!(db.last_commit().unwrap(), before + 1);
    let kinds: Vec<String> = events_of(&acme, con.id)
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        kinds.contains(&"communication_event".to_string())
            && kinds.contains(&"connection_created".to_string()),
        "{kinds:?}"
    );
    let mail = events_of(&acme, con.id)
        .into_iter()
        .find(|e| e.kind == "communication_event")
        .unwrap();
    assert_eq!(mail.metadata["channel"], json!("email"));
    assert_eq!(mail.metadata["trigger"], json!("enroll_mail"));
    // A trigger whose name exists is refused; engine events cannot be emitted.
    let dup = acme.run(|t| {
        t.create_trigger(
            "enroll_mail",
            TriggerOn::Create,
            "course",
            "content_event",
            Default::default(),
        )
        .map(|_| ())
    });
    assert_eq!(dup.unwrap_err().code, ErrorCode::Conflict);
    let forged = acme.run(|t| {
        t.emit("entity_created", Some(course.id), Default::default())
            .map(|_| ())
    });
    assert_eq!(forged.unwrap_err().code, ErrorCode::InvalidArgument);
    assert_valid(&db);
}

#[test]
fn events_filter_by_actor_type_and_time_newest_first() {
    let clock = onedb::model::Clock::manual(1_700_000_000_000);
    let (_dir, db) = common::open_at(clock.clone());
    let acme = org(&db, "acme");
    let user = person(&db, &acme, "u@acme.io", Role::OrgUser);
    let course = create(&acme, "course", "Rust");
    // Keep the creation out of the `since` window.
    clock.advance(3);
    let start = clock.now();
    for amount in [1, 2, 3] {
        clock.advance(1);
        user.run(|t| {
            t.emit(
                "payment_event",
                Some(course.id),
                json!({"amount": amount}).as_object().unwrap().clone(),
            )
            .map(|_| ())
        })
        .unwrap();
    }
    let read = acme.read().unwrap();
    let by_actor = read
        .events(&EventFilter {
            actor: Some(Some(user.actor().person)),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    let amounts: Vec<_> = by_actor
        .iter()
        .map(|e| e.metadata["amount"].clone())
        .collect();
    assert_eq!(amounts, vec![json!(3), json!(2), json!(1)]);
    let by_type = read
        .events(&EventFilter {
            kind: Some("payment_event".into()),
            limit: 2,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_type.len(), 2);
    let since = read
        .events(&EventFilter {
            target: Some(course.id),
            since: Some(start),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert!(since.iter().all(|e| e.kind == "payment_event") && since.len() == 3);
    let until = read
        .events(&EventFilter {
            target: Some(course.id),
            until: Some(start - 1),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert!(until.iter().all(|e| e.kind == "entity_created"));
}

#[test]
fn data_survives_reopening() {
    let (dir, db) = open_durable();
    let acme = org(&db, "acme");
    let course = create(&acme, "course", "Rust");
    drop((acme, db));
    let db = Database::open(dir.path()).unwrap();
    let mut root = db.local_session().unwrap();
    root.use_org("acme").unwrap();
    assert_eq!(
        root.read().unwrap().thing(course.id).unwrap().unwrap().name,
        "Rust"
    );
    assert_valid(&db);
}

#[test]
fn a_second_process_cannot_open_the_same_directory() {
    let (dir, _db) = open_durable();
    let err = Database::open(dir.path())
        .err()
        .expect("second open must fail");
    assert_eq!(err.code, ErrorCode::Conflict, "{}", err.message);
}

#[test]
fn login_checks_passwords_and_logs_each_attempt() {
    let (_dir, db) = open();
    let acme = org(&db, "acme");
    acme.run(|t| {
        t.create_person(onedb::NewPerson {
            email: "Alice@Acme.io".into(),
            name: "Alice".into(),
            role: Role::OrgOwner,
            password: Some("s3cret-pass".into()),
        })
        .map(|_| ())
    })
    .unwrap();
    let alice = db.login("alice@acme.io", "s3cret-pass").unwrap();
    assert_eq!(alice.org().unwrap().slug, "acme");
    let wrong = db.login("alice@acme.io", "wrong-pass").err().unwrap();
    let unknown = db.login("nobody@acme.io", "wrong-pass").err().unwrap();
    assert_eq!(wrong.code, ErrorCode::NotAuthenticated);
    assert_eq!(
        wrong, unknown,
        "the same error for unknown people and wrong passwords"
    );
    let logins = alice
        .read()
        .unwrap()
        .events(&EventFilter {
            kind: Some("user_login".into()),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    let outcomes: Vec<_> = logins
        .iter()
        .map(|e| e.metadata["success"].clone())
        .collect();
    assert_eq!(outcomes, vec![json!(false), json!(true)]);
    assert_valid(&db);
}

#[test]
fn removing_a_person_hides_and_ends_their_connections() {
    let (_dir, db) = open();
    let acme = org(&db, "acme");
    let user = person(&db, &acme, "u@acme.io", Role::OrgUser);
    let lesson = create(&acme, "lesson", "Ownership");
    let me = user.actor().person;
    acme.run(|t| {
        t.connect(NewConnection {
            from: Some(me),
            to: Some(lesson.id),
            kind: "completed".into(),
            ..Default::default()
        })
    })
    .unwrap();
    assert_eq!(usage(&acme, "connections"), 1);
    acme.run(|t| t.remove_person(me).map(|_| ())).unwrap();
    let read = acme.read().unwrap();
    assert_eq!(
        read.edges(lesson.id, Direction::In, None, onedb::model::now_ms())
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        read.edges(lesson.id, Direction::In, None, 0)
            .unwrap()
            .count(),
        0
    );
    drop(read);
    assert_eq!(usage(&acme, "connections"), 0);
    assert_eq!(usage(&acme, "people"), 0);
    // The removed person can no longer write, and the email is free again.
    assert_eq!(
        user.run(|t| t.create_thing(new_thing("video", "v")))
            .unwrap_err()
            .code,
        ErrorCode::NotAuthenticated
    );
    person(&db, &acme, "u@acme.io", Role::OrgUser);
    assert_valid(&db);
}

/// A connect to or from a thing made in the same transaction checks for
/// duplicates among that transaction's own writes only (nothing stored can
/// name the new id): the checks must come out as for stored things.
#[test]
fn connections_of_things_made_in_the_same_transaction_follow_the_rules() {
    let (_dir, db) = open();
    let acme = org(&db, "acme");
    let a = create(&acme, "creator", "a");
    let link = |from, to| NewConnection {
        from: Some(from),
        to: Some(to),
        kind: "following".into(),
        ..Default::default()
    };
    let snapshot = all_entries(&db);
    let mut t = acme.write().unwrap();
    let b = t.create_thing(new_thing("creator", "b")).unwrap();
    t.connect(link(a.id, b.id)).unwrap();
    assert_eq!(
        t.connect(link(a.id, b.id)).unwrap_err().code,
        ErrorCode::Conflict
    );
    t.connect(link(b.id, a.id)).unwrap();
    assert_eq!(
        t.connect(link(b.id, a.id)).unwrap_err().code,
        ErrorCode::Conflict
    );
    let c = t.create_thing(new_thing("creator", "c")).unwrap();
    t.delete_thing(c.id).unwrap();
    assert_eq!(
        t.connect(link(a.id, c.id)).unwrap_err().code,
        ErrorCode::NotFound
    );
    assert_eq!(
        t.connect(link(c.id, a.id)).unwrap_err().code,
        ErrorCode::NotFound
    );
    drop(t);
    assert_eq!(all_entries(&db), snapshot, "nothing committed");
    let b = acme
        .run(|t| {
            let b = t.create_thing(new_thing("creator", "b"))?;
            t.connect(link(a.id, b.id))?;
            t.connect(link(b.id, a.id))?;
            t.disconnect(a.id, "following", b.id)?;
            t.connect(link(a.id, b.id))?;
            Ok(b)
        })
        .unwrap();
    let read = acme.read().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 1;
    let out: Vec<_> = read
        .edges(a.id, Direction::Out, Some("following"), now)
        .unwrap()
        .map(|e| e.unwrap().to)
        .collect();
    assert_eq!(out, vec![b.id]);
    assert_valid(&db);
}

/// A transaction remembers the trigger set it read: a trigger it creates
/// (or drops) after that must still fire (or not) for its later writes.
#[test]
fn triggers_changed_inside_a_transaction_apply_to_its_later_writes() {
    let (_dir, db) = open();
    let acme = org(&db, "acme");
    let (early, late, after_drop) = acme
        .run(|t| {
            let early = t.create_thing(new_thing("course", "early"))?;
            t.create_trigger(
                "course_made",
                TriggerOn::Create,
                "course",
                "content_event",
                Default::default(),
            )?;
            let late = t.create_thing(new_thing("course", "late"))?;
            t.drop_trigger("course_made")?;
            let after_drop = t.create_thing(new_thing("course", "after drop"))?;
            Ok((early.id, late.id, after_drop.id))
        })
        .unwrap();
    let fired = |id| {
        events_of(&acme, id)
            .into_iter()
            .any(|e| e.kind == "content_event")
    };
    assert!(!fired(early));
    assert!(fired(late));
    assert!(!fired(after_drop));
    assert_valid(&db);
}
