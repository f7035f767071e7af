//! Property test over `Mutation` values generated directly: random
//! sequences of every kind of write, by every role, on ids that exist, ids
//! of another org and ids that never existed, each through the one door
//! (`WriteTxn::apply`). After every step:
//! - a refused mutation changed nothing at all (every key and value equal);
//! - an accepted one was allowed by the permission table for the actor's
//!   role and logged at least one event in the same commit;
//! - `validate()` finds the database consistent (indexes both ways, usage
//!   recounted, no cross-tenant key).
//!
//! `MUTATION_CASES` changes the number of cases (default 24).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::*;
use onedb::ontology::roles::{Grant, grant};
use onedb::{
    Database, Id, KnowledgeKind, Mutation, NewConnection, NewKnowledge, NewPerson, NewThing,
    OrgUpdate, Plan, Props, Role, Session, Status, ThingUpdate, TriggerOn,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;

/// One write to make, with its choices as indexes into the live pools
/// (resolved when it runs, so generated sequences stay meaningful).
#[derive(Debug, Clone)]
enum Template {
    CreateThing(usize, usize),
    UpdateThing(usize, usize),
    SetStatus(usize, usize),
    DeleteThing(usize),
    Connect(usize, usize, usize),
    Disconnect(usize, usize, usize),
    CreateKnowledge(usize, usize),
    DeleteKnowledge(usize),
    Emit(usize, usize),
    CreatePerson(usize, usize),
    RemovePerson(usize),
    CreateTrigger(usize),
    DropTrigger(usize),
    UpdateOrg(usize),
    SetLimits(usize),
}

const THING_KINDS: &[&str] = &["course", "lesson", "message", "cours"];
const NAMES: &[&str] = &["Rust", "", "Go for everyone"];
const CONNECTION_KINDS: &[&str] = &["owns", "following", "references", "ownz"];
const EVENT_KINDS: &[&str] = &["payment_event", "entity_created", "nope"];
const ROLES: &[Role] = &[Role::OrgUser, Role::Customer, Role::OrgOwner];
const STATUSES: &[Status] = &[
    Status::Draft,
    Status::Active,
    Status::Published,
    Status::Inactive,
    Status::Archived,
];

fn template() -> impl Strategy<Value = Template> {
    let i = || 0..8usize;
    prop_oneof![
        4 => (i(), i()).prop_map(|(a, b)| Template::CreateThing(a, b)),
        2 => (i(), i()).prop_map(|(a, b)| Template::UpdateThing(a, b)),
        3 => (i(), i()).prop_map(|(a, b)| Template::SetStatus(a, b)),
        1 => i().prop_map(Template::DeleteThing),
        4 => (i(), i(), i()).prop_map(|(a, b, c)| Template::Connect(a, b, c)),
        1 => (i(), i(), i()).prop_map(|(a, b, c)| Template::Disconnect(a, b, c)),
        2 => (i(), i()).prop_map(|(a, b)| Template::CreateKnowledge(a, b)),
        1 => i().prop_map(Template::DeleteKnowledge),
        2 => (i(), i()).prop_map(|(a, b)| Template::Emit(a, b)),
        1 => (i(), i()).prop_map(|(a, b)| Template::CreatePerson(a, b)),
        1 => i().prop_map(Template::RemovePerson),
        1 => i().prop_map(Template::CreateTrigger),
        1 => i().prop_map(Template::DropTrigger),
        1 => i().prop_map(Template::UpdateOrg),
        1 => i().prop_map(Template::SetLimits),
    ]
}

/// The world one case runs in: actors of every role and pools of ids.
struct World {
    db: Database,
    _dir: tempfile::TempDir,
    /// (session, role); the last is another org's owner.
    actors: Vec<(Session, Role)>,
    things: Vec<Id>,
    people: Vec<Id>,
    knowledge: Vec<Id>,
    /// Connections made: (from, type, to).
    connections: Vec<(Id, String, Id)>,
    /// Emails made so far (new ones stay unique).
    emails: usize,
}

impl World {
    fn new() -> World {
        let (dir, db) = open();
        let root = org(&db, "acme");
        let owner = person(&db, &root, "owner@acme.io", Role::OrgOwner);
        let user = person(&db, &root, "user@acme.io", Role::OrgUser);
        let customer = person(&db, &root, "cust@acme.io", Role::Customer);
        let globex_root = org(&db, "globex");
        let stranger = person(&db, &globex_root, "owner@globex.io", Role::OrgOwner);
        // A thing of another org, and an id that never existed.
        let foreign = create(&stranger, "course", "Theirs").id;
        let never = Id::from_raw(onedb::Dim::Thing, 1);
        let ours = create(&owner, "course", "Ours").id;
        let mine = create(&user, "lesson", "Mine").id;
        let people = vec![
            owner.actor().person,
            user.actor().person,
            customer.actor().person,
        ];
        World {
            actors: vec![
                (root, Role::PlatformOwner),
                (owner, Role::OrgOwner),
                (user, Role::OrgUser),
                (customer, Role::Customer),
                (stranger, Role::OrgOwner),
            ],
            things: vec![ours, mine, ours, mine, foreign, never],
            people,
            knowledge: vec![Id::from_raw(onedb::Dim::Knowledge, 2)],
            connections: Vec::new(),
            emails: 0,
            db,
            _dir: dir,
        }
    }

    fn pick(pool: &[Id], i: usize) -> Id {
        pool[i % pool.len()]
    }

    fn node(&self, i: usize) -> Id {
        // People are nodes too (following, owns from a person).
        if i.is_multiple_of(3) {
            Self::pick(&self.people, i)
        } else {
            Self::pick(&self.things, i)
        }
    }

    fn mutation(&mut self, t: &Template) -> Mutation {
        match *t {
            Template::CreateThing(k, n) => Mutation::CreateThing(NewThing {
                kind: THING_KINDS[k % THING_KINDS.len()].into(),
                name: NAMES[n % NAMES.len()].into(),
                properties: Props::new(),
            }),
            Template::UpdateThing(x, n) => Mutation::UpdateThing {
                id: Self::pick(&self.things, x),
                update: ThingUpdate {
                    name: Some(NAMES[n % NAMES.len()].into()),
                    set: vec![(vec!["level".into()], json!(n))],
                    ..Default::default()
                },
            },
            Template::SetStatus(x, s) => Mutation::SetStatus {
                id: Self::pick(&self.things, x),
                status: STATUSES[s % STATUSES.len()],
            },
            Template::DeleteThing(x) => Mutation::DeleteThing(Self::pick(&self.things, x)),
            Template::Connect(a, k, b) => Mutation::Connect(NewConnection {
                from: Some(self.node(a)),
                to: Some(self.node(b + 1)),
                kind: CONNECTION_KINDS[k % CONNECTION_KINDS.len()].into(),
                ..Default::default()
            }),
            // Mostly a connection that was made; else any two nodes.
            Template::Disconnect(x, k, b) => match self.connections.get(x) {
                Some((from, kind, to)) if k != 0 => Mutation::Disconnect {
                    from: *from,
                    kind: kind.clone(),
                    to: *to,
                },
                _ => Mutation::Disconnect {
                    from: self.node(x),
                    kind: CONNECTION_KINDS[k % CONNECTION_KINDS.len()].into(),
                    to: self.node(b + 1),
                },
            },
            Template::CreateKnowledge(x, d) => Mutation::CreateKnowledge(NewKnowledge {
                kind: KnowledgeKind::Chunk,
                text: "a chunk".into(),
                // Mostly 3 dimensions; sometimes 4, which an org with
                // 3-dimension chunks must refuse.
                embedding: Some(vec![1.0; if d == 0 { 4 } else { 3 }]),
                labels: vec!["l".into()],
                source: Some(Self::pick(&self.things, x)),
                links: Vec::new(),
            }),
            Template::DeleteKnowledge(x) => {
                Mutation::DeleteKnowledge(Self::pick(&self.knowledge, x))
            }
            Template::Emit(k, x) => Mutation::Emit {
                kind: EVENT_KINDS[k % EVENT_KINDS.len()].into(),
                target: x.is_multiple_of(2).then(|| Self::pick(&self.things, x)),
                metadata: Props::new(),
            },
            Template::CreatePerson(r, dup) => {
                if dup != 0 {
                    self.emails += 1;
                }
                Mutation::CreatePerson(NewPerson {
                    email: format!("p{}@acme.io", self.emails),
                    name: "P".into(),
                    role: ROLES[r % ROLES.len()],
                    password: None,
                })
            }
            Template::RemovePerson(x) => Mutation::RemovePerson(Self::pick(&self.people, x)),
            Template::CreateTrigger(x) => Mutation::CreateTrigger {
                name: format!("t{}", x % 3),
                on: TriggerOn::Create,
                kind: THING_KINDS[x % THING_KINDS.len()].into(),
                emit: "payment_event".into(),
                metadata: Props::new(),
            },
            Template::DropTrigger(x) => Mutation::DropTrigger(format!("t{}", x % 3)),
            Template::UpdateOrg(x) => Mutation::UpdateOrg {
                slug: ["acme", "globex", "nowhere"][x % 3].into(),
                update: OrgUpdate {
                    name: Some("Renamed".into()),
                    plan: Some(Plan::Pro),
                    ..Default::default()
                },
            },
            Template::SetLimits(x) => Mutation::SetLimits {
                slug: "acme".into(),
                limits: BTreeMap::from([("things".to_string(), 4 + x as i64)]),
            },
        }
    }

    /// Adds what an accepted mutation created to the pools.
    fn remember(&mut self, applied: &onedb::Applied) {
        match applied {
            onedb::Applied::Thing(t) => self.things.push(t.id),
            onedb::Applied::Person(p) => self.people.push(p.id),
            onedb::Applied::Knowledge(k) => self.knowledge.push(k.id),
            onedb::Applied::Connection(c) => self.connections.push((c.from, c.kind.clone(), c.to)),
            _ => {}
        }
    }
}

fn run_case(steps: Vec<(usize, Template)>) -> Result<(), TestCaseError> {
    let mut world = World::new();
    for (who, template) in steps {
        let mutation = world.mutation(&template);
        let (session, role) = &world.actors[who % world.actors.len()];
        let role = *role;
        let before = all_entries(&world.db);
        let events_before = world.db.validate().expect("validate").events;
        let result = session.run(|t| t.apply(mutation.clone()));
        match result {
            Err(e) => prop_assert!(
                all_entries(&world.db) == before,
                "refused {mutation:?} ({}) by {role:?} changed the database",
                e.message
            ),
            Ok(applied) => {
                prop_assert!(
                    grant(role, mutation.action()) != Grant::Deny,
                    "{role:?} may not {:?}, yet {mutation:?} was accepted",
                    mutation.action()
                );
                let events = world.db.validate().expect("validate").events;
                prop_assert!(
                    events > events_before,
                    "{mutation:?} by {role:?} was accepted without an event"
                );
                world.remember(&applied);
            }
        }
        let report = world.db.validate().expect("validate");
        prop_assert!(
            report.is_ok(),
            "after {mutation:?} by {role:?}: {:#?}",
            report.problems
        );
    }
    Ok(())
}

#[test]
fn generated_mutations_keep_the_invariants() {
    let cases = std::env::var("MUTATION_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(24);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let steps = proptest::collection::vec((0..5usize, template()), 10..40);
    runner
        .run(&steps, run_case)
        .unwrap_or_else(|e| panic!("{e}"));
}
