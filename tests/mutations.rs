//! Mutations as data: every kind of write, built directly as a `Mutation`
//! and applied by every role through `WriteTxn::apply`, the one door every
//! write goes through. Where the permission table denies the mutation's
//! action the answer is FORBIDDEN and the transaction holds no write; the
//! typed methods answer as `apply` does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::*;
use onedb::ontology::roles::{Grant, grant};
use onedb::{
    Applied, ErrorCode, Id, KnowledgeKind, Mutation, NewConnection, NewKnowledge, NewPerson,
    NewToken, OrgUpdate, Plan, Role, Session, Status, ThingUpdate, TriggerOn, TypeKind,
};

/// Ids of the fixture's records that mutations aim at.
#[derive(Clone, Copy)]
struct Targets {
    course: Id,
    lesson: Id,
    guest: Id,
    note: Id,
    /// An API token of the org_user.
    token: Id,
}

/// One mutation of every kind. The match makes this list fail to compile
/// when a kind is added and not covered here.
fn every_kind(t: Targets) -> Vec<Mutation> {
    let all = vec![
        Mutation::CreateOrg {
            slug: "initech".into(),
            name: "Initech".into(),
            plan: Plan::Starter,
        },
        Mutation::UpdateOrg {
            slug: "acme".into(),
            update: OrgUpdate {
                name: Some("Acme 2".into()),
                ..Default::default()
            },
        },
        Mutation::SetLimits {
            slug: "acme".into(),
            limits: BTreeMap::from([("things".to_string(), 1_000)]),
        },
        Mutation::AddType {
            kind: TypeKind::Thing,
            name: "widget".into(),
        },
        Mutation::CreatePerson(NewPerson {
            email: "new@acme.io".into(),
            name: "New".into(),
            role: Role::OrgUser,
            password: None,
        }),
        Mutation::RemovePerson(t.guest),
        Mutation::CreateThing(new_thing("course", "Go")),
        Mutation::UpdateThing {
            id: t.course,
            update: ThingUpdate {
                name: Some("Rust 2".into()),
                ..Default::default()
            },
        },
        Mutation::SetStatus {
            id: t.course,
            status: Status::Active,
        },
        Mutation::DeleteThing(t.lesson),
        Mutation::Connect(NewConnection {
            from: Some(t.course),
            to: Some(t.lesson),
            kind: "references".into(),
            ..Default::default()
        }),
        Mutation::Disconnect {
            from: t.lesson,
            kind: "part_of".into(),
            to: t.course,
        },
        Mutation::CreateKnowledge(NewKnowledge {
            kind: KnowledgeKind::Label,
            text: "rust".into(),
            embedding: None,
            labels: vec!["topic:rust".into()],
            source: None,
            links: vec![],
        }),
        Mutation::DeleteKnowledge(t.note),
        Mutation::Emit {
            kind: "payment_event".into(),
            target: Some(t.course),
            metadata: Default::default(),
        },
        Mutation::CreateTrigger {
            name: "on_lesson".into(),
            on: TriggerOn::Create,
            kind: "lesson".into(),
            emit: "content_event".into(),
            metadata: Default::default(),
        },
        Mutation::DropTrigger("on_course".into()),
        Mutation::CreateToken(NewToken {
            name: "bot".into(),
            expires_at: None,
        }),
        Mutation::RevokeToken(t.token),
        Mutation::DefineSchema {
            kind: "lesson".into(),
            schema: schema(serde_json::json!({"type": "object"})),
        },
        Mutation::DropSchema("course".into()),
    ];
    for m in &all {
        match m {
            Mutation::CreateOrg { .. }
            | Mutation::UpdateOrg { .. }
            | Mutation::SetLimits { .. }
            | Mutation::AddType { .. }
            | Mutation::CreatePerson(_)
            | Mutation::RemovePerson(_)
            | Mutation::CreateThing(_)
            | Mutation::UpdateThing { .. }
            | Mutation::SetStatus { .. }
            | Mutation::DeleteThing(_)
            | Mutation::Connect(_)
            | Mutation::Disconnect { .. }
            | Mutation::CreateKnowledge(_)
            | Mutation::DeleteKnowledge(_)
            | Mutation::Emit { .. }
            | Mutation::CreateTrigger { .. }
            | Mutation::DropTrigger(_)
            | Mutation::CreateToken(_)
            | Mutation::RevokeToken(_) => {}
            Mutation::DefineSchema { .. } | Mutation::DropSchema(_) => {}
        }
    }
    all
}

fn schema(value: serde_json::Value) -> onedb::model::Props {
    value.as_object().cloned().expect("a map")
}

/// acme with a person of each role (root works inside acme), a course with
/// a lesson `part_of` it, a guest customer and a note.
fn fixture() -> (tempfile::TempDir, onedb::Database, Vec<Session>, Targets) {
    let (dir, db) = open();
    let root = org(&db, "acme");
    let owner = person(&db, &root, "owner@acme.io", Role::OrgOwner);
    let user = person(&db, &root, "user@acme.io", Role::OrgUser);
    let customer = person(&db, &root, "customer@acme.io", Role::Customer);
    let guest = person(&db, &root, "guest@acme.io", Role::Customer)
        .actor()
        .person;
    let course = create(&root, "course", "Rust").id;
    let lesson = create(&root, "lesson", "Ownership").id;
    root.run(|t| {
        t.connect(NewConnection {
            from: Some(lesson),
            to: Some(course),
            kind: "part_of".into(),
            ..Default::default()
        })
        .map(|_| ())
    })
    .expect("part_of");
    let note = root
        .run(|t| {
            t.create_knowledge(NewKnowledge {
                kind: KnowledgeKind::Label,
                text: "note".into(),
                embedding: None,
                labels: vec![],
                source: None,
                links: vec![],
            })
        })
        .expect("note")
        .id;
    root.run(|t| {
        t.create_trigger(
            "on_course",
            TriggerOn::Create,
            "course",
            "content_event",
            Default::default(),
        )
        .map(|_| ())
    })
    .expect("trigger");
    let token = user
        .run(|t| {
            t.create_token(NewToken {
                name: "user's".into(),
                expires_at: None,
            })
        })
        .expect("token")
        .token
        .id;
    root.run(|t| t.define_schema("course", schema(serde_json::json!({"required": []}))))
        .expect("schema");
    let targets = Targets {
        course,
        lesson,
        guest,
        note,
        token,
    };
    (dir, db, vec![root, owner, user, customer], targets)
}

#[test]
fn every_kind_is_authorized_by_the_permission_table_in_one_place() {
    let (_dir, db, sessions, targets) = fixture();
    let before = all_entries(&db);
    let mut checked = 0;
    for session in &sessions {
        let role = session.actor().role;
        for mutation in every_kind(targets) {
            let action = mutation.action();
            let mut t = session.write().expect("write");
            let result = t.apply(mutation.clone());
            if grant(role, action) == Grant::Deny {
                let err = result.expect_err(&format!("{role:?} may not {mutation:?}"));
                assert_eq!(
                    err.code,
                    ErrorCode::Forbidden,
                    "{role:?} {mutation:?}: {err}"
                );
                assert!(
                    !t.is_dirty(),
                    "{role:?} {mutation:?}: a refused write wrote"
                );
            } else if role == Role::PlatformOwner {
                // The platform owner may do everything the fixture aims at.
                result.unwrap_or_else(|e| panic!("root {mutation:?}: {e}"));
                assert!(t.is_dirty(), "root {mutation:?} wrote nothing");
            }
            checked += 1;
            // Dropped uncommitted: the next mutation sees the fixture again.
        }
    }
    assert_eq!(checked, 4 * every_kind(targets).len());
    assert_eq!(all_entries(&db), before, "an uncommitted mutation leaked");
}

#[test]
fn the_typed_methods_are_the_same_door() {
    let (_dir, _db, sessions, targets) = fixture();
    let owner = &sessions[1];
    let mut t = owner.write().expect("write");
    let via_apply = t
        .apply(Mutation::CreateThing(new_thing("course", "Go")))
        .expect("apply");
    let Applied::Thing(a) = via_apply else {
        panic!("a thing was created: {via_apply:?}");
    };
    let b = t.create_thing(new_thing("course", "Go")).expect("typed");
    assert_eq!((a.kind, a.name, a.status), (b.kind, b.name, b.status));
    // The same refusal through both doors.
    let customer = &sessions[3];
    let mut t = customer.write().expect("write");
    let apply = t.apply(Mutation::DeleteThing(targets.course)).unwrap_err();
    let typed = t.delete_thing(targets.course).unwrap_err();
    assert_eq!(
        (apply.code, typed.code),
        (ErrorCode::Forbidden, ErrorCode::Forbidden)
    );
}

#[test]
fn a_suspended_org_refuses_writes_inside_it_but_not_its_reactivation() {
    let (_dir, _db, sessions, targets) = fixture();
    let root = &sessions[0];
    let suspend = |status| Mutation::UpdateOrg {
        slug: "acme".into(),
        update: OrgUpdate {
            status: Some(status),
            ..Default::default()
        },
    };
    root.run(|t| t.apply(suspend(onedb::OrgStatus::Suspended)).map(|_| ()))
        .expect("suspend");
    let owner = &sessions[1];
    for mutation in every_kind(targets) {
        if !matches!(
            mutation,
            Mutation::CreateOrg { .. }
                | Mutation::UpdateOrg { .. }
                | Mutation::SetLimits { .. }
                | Mutation::AddType { .. }
                // Ending a credential is never refused.
                | Mutation::RevokeToken(_)
        ) {
            let err = owner
                .run(|t| t.apply(mutation.clone()).map(|_| ()))
                .expect_err("suspended");
            assert_eq!(err.code, ErrorCode::Forbidden, "{mutation:?}: {err}");
        }
    }
    owner
        .run(|t| t.revoke_token(targets.token))
        .expect("a suspended org's tokens can still be revoked");
    root.run(|t| t.apply(suspend(onedb::OrgStatus::Active)).map(|_| ()))
        .expect("reactivate");
    owner
        .run(|t| t.apply(Mutation::CreateThing(new_thing("course", "Back"))))
        .expect("writes again");
}
