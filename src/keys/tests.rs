//! T3: the key encoder is injective, round-trips, and keeps tenants apart.

use proptest::prelude::*;

use super::*;

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,12}"
}

fn id(dim: Dim) -> impl Strategy<Value = Id> {
    any::<u128>().prop_map(move |raw| Id::from_raw(dim, raw))
}

fn node() -> impl Strategy<Value = Id> {
    prop_oneof![id(Dim::Thing), id(Dim::Person)]
}

fn status() -> impl Strategy<Value = Status> {
    prop::sample::select(Status::ALL.to_vec())
}

fn tenant_key() -> impl Strategy<Value = TenantKey> {
    prop_oneof![
        id(Dim::Thing).prop_map(TenantKey::Thing),
        (name(), id(Dim::Thing)).prop_map(|(kind, thing)| TenantKey::ThingByType { kind, thing }),
        (name(), status(), id(Dim::Thing)).prop_map(|(kind, status, thing)| {
            TenantKey::ThingByStatus {
                kind,
                status,
                thing,
            }
        }),
        id(Dim::Person).prop_map(TenantKey::Person),
        id(Dim::Connection).prop_map(TenantKey::Connection),
        (any::<bool>(), node(), name(), node(), id(Dim::Connection)).prop_map(
            |(out, node, kind, other, con)| {
                TenantKey::Edge {
                    dir: if out { Direction::Out } else { Direction::In },
                    node,
                    kind,
                    other,
                    con,
                }
            }
        ),
        id(Dim::Event).prop_map(TenantKey::Event),
        (prop::option::of(id(Dim::Person)), id(Dim::Event))
            .prop_map(|(actor, event)| TenantKey::EventByActor { actor, event }),
        (node(), id(Dim::Event))
            .prop_map(|(target, event)| TenantKey::EventByTarget { target, event }),
        (name(), id(Dim::Event)).prop_map(|(kind, event)| TenantKey::EventByType { kind, event }),
        id(Dim::Knowledge).prop_map(TenantKey::Knowledge),
        (id(Dim::Thing), id(Dim::Knowledge))
            .prop_map(|(source, knowledge)| TenantKey::KnowledgeBySource { source, knowledge }),
        (id(Dim::Knowledge), id(Dim::Thing))
            .prop_map(|(knowledge, thing)| TenantKey::JunctionOut { knowledge, thing }),
        (id(Dim::Thing), id(Dim::Knowledge))
            .prop_map(|(thing, knowledge)| TenantKey::JunctionIn { thing, knowledge }),
        name().prop_map(TenantKey::Counter),
        Just(TenantKey::Triggers),
        name().prop_map(TenantKey::Setting),
        id(Dim::Token).prop_map(TenantKey::Token),
        name().prop_map(TenantKey::Schema),
        (any::<u64>(), id(Dim::Event))
            .prop_map(|(seq, event)| TenantKey::EventBySeq { seq, event }),
    ]
}

/// Builds the bytes of a decoded key with the public builders.
fn encode(tenant: Tenant, key: &TenantKey) -> Vec<u8> {
    match key {
        TenantKey::Thing(id) => tenant.thing(*id),
        TenantKey::ThingByType { kind, thing } => tenant.thing_by_type(kind, *thing),
        TenantKey::ThingByStatus {
            kind,
            status,
            thing,
        } => tenant.thing_by_status(kind, *status, *thing),
        TenantKey::Person(id) => tenant.person(*id),
        TenantKey::Connection(id) => tenant.connection(*id),
        TenantKey::Edge {
            dir,
            node,
            kind,
            other,
            con,
        } => tenant.edge(*dir, *node, kind, *other, *con),
        TenantKey::Event(id) => tenant.event(*id),
        TenantKey::EventByActor { actor, event } => tenant.event_by_actor(*actor, *event),
        TenantKey::EventByTarget { target, event } => tenant.event_by_target(*target, *event),
        TenantKey::EventByType { kind, event } => tenant.event_by_type(kind, *event),
        TenantKey::Knowledge(id) => tenant.knowledge(*id),
        TenantKey::KnowledgeBySource { source, knowledge } => {
            tenant.knowledge_by_source(*source, *knowledge)
        }
        TenantKey::JunctionOut { knowledge, thing } => tenant.junction_out(*knowledge, *thing),
        TenantKey::JunctionIn { thing, knowledge } => tenant.junction_in(*thing, *knowledge),
        TenantKey::Counter(name) => tenant.counter(name),
        TenantKey::Triggers => tenant.triggers(),
        TenantKey::Setting(name) => tenant.setting(name),
        TenantKey::Token(id) => tenant.token(*id),
        TenantKey::Schema(name) => tenant.schema(name),
        TenantKey::EventBySeq { seq, event } => tenant.event_by_seq(*seq, *event),
    }
}

proptest! {
    #[test]
    fn tenant_keys_round_trip(raw in any::<u128>(), key in tenant_key()) {
        let tenant = Tenant::from_raw(raw);
        let bytes = encode(tenant, &key);
        prop_assert_eq!(decode(&bytes)?, Key::Tenant(tenant, key.clone()));
        prop_assert_eq!(tenant_of(&bytes), Some(tenant));
        prop_assert!(bytes.starts_with(&tenant.prefix()));
    }

    #[test]
    fn encoding_is_injective(a in (any::<u128>(), tenant_key()), b in (any::<u128>(), tenant_key())) {
        let ka = encode(Tenant::from_raw(a.0), &a.1);
        let kb = encode(Tenant::from_raw(b.0), &b.1);
        if (a.0, &a.1) != (b.0, &b.1) {
            prop_assert_ne!(ka, kb);
        }
    }

    #[test]
    fn no_tenant_prefix_is_a_prefix_of_another(a in any::<u128>(), b in any::<u128>(), key in tenant_key()) {
        prop_assume!(a != b);
        let pa = Tenant::from_raw(a).prefix();
        let kb = encode(Tenant::from_raw(b), &key);
        prop_assert!(!kb.starts_with(&pa));
        // A scan bounded by [prefix, prefix_end) never reaches the other tenant.
        let end = prefix_end(&pa);
        prop_assert!(!(kb.as_slice() >= pa.as_slice() && kb.as_slice() < end.as_slice()));
    }

    #[test]
    fn scan_prefixes_cover_exactly_their_entries(raw in any::<u128>(), kind in name(), other in name(), thing in id(Dim::Thing)) {
        // `kind` must not capture the entries of a type it is a prefix of.
        prop_assume!(kind != other);
        let t = Tenant::from_raw(raw);
        let prefix = t.things_of_type(&kind);
        prop_assert!(t.thing_by_type(&kind, thing).starts_with(&prefix));
        prop_assert!(!t.thing_by_type(&other, thing).starts_with(&prefix));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
        let _ = decode(&bytes);
    }
}

#[test]
fn platform_keys_round_trip() {
    let org = Id::generate(Dim::Org);
    assert_eq!(decode(&super::org(org)), Ok(Key::Org(org)));
    assert_eq!(decode(&org_slug("acme")), Ok(Key::OrgSlug("acme".into())));
    assert_eq!(decode(&email("a@b.c")), Ok(Key::Email("a@b.c".into())));
    assert_eq!(
        decode(&vocab(TypeKind::Event, "x")),
        Ok(Key::Vocab(TypeKind::Event, "x".into()))
    );
    let token = Id::generate(Dim::Token);
    assert_eq!(decode(&token_home(token)), Ok(Key::TokenHome(token)));
    assert_eq!(
        decode(&login_failures("account:ann@x.io")),
        Ok(Key::LoginFailures("account:ann@x.io".into()))
    );
    assert_eq!(decode(&format_version()), Ok(Key::FormatVersion));
    assert_eq!(decode(&commit_seq()), Ok(Key::CommitSeq));
    assert!(is_platform_key(&super::org(org)));
    assert_eq!(tenant_of(&super::org(org)), None);
}

#[test]
fn index_log_keys_sort_by_commit_and_round_trip() {
    assert_eq!(decode(&index_log(7)), Ok(Key::IndexLog(7)));
    assert_eq!(decode(&index_log_pruned()), Ok(Key::IndexLogPruned));
    assert!(!index_log_pruned().starts_with(&index_log_prefix()));
    assert!(index_log(255) < index_log(256));
    assert!(index_log(1).starts_with(&index_log_prefix()));
    assert!(is_platform_key(&index_log(1)));
}

#[test]
fn events_by_seq_sort_by_commit_and_only_event_records_are_stamped() {
    let t = Tenant::from_raw(9);
    let (a, b) = (Id::generate(Dim::Event), Id::generate(Dim::Event));
    assert!(t.event_by_seq(255, b) < t.event_by_seq(256, a));
    assert!(t.events_from_seq(256) <= t.event_by_seq(256, a));
    assert!(t.events_from_seq(257) > t.event_by_seq(256, a));
    assert!(t.event_by_seq(1, a).starts_with(&t.events_by_seq()));
    assert_eq!(event_of_key(&t.event(a)), Some((t, a)));
    assert_eq!(event_of_key(&t.thing(Id::generate(Dim::Thing))), None);
    assert_eq!(event_of_key(&t.event_by_seq(1, a)), None);
    assert_eq!(event_of_key(&t.event_by_type("x", a)), None);

    let mut value = br#"{"id":"evt_1","metadata":{}}"#.to_vec();
    stamp_event(&mut value, 1042);
    assert_eq!(
        value,
        br#"{"id":"evt_1","metadata":{},"seq":1042}"#.to_vec()
    );
    for odd in [&b""[..], b"{}", b"}", b"[1]", b"not json"] {
        let mut v = odd.to_vec();
        stamp_event(&mut v, 1);
        assert_eq!(v, odd, "left alone");
    }
}

#[test]
fn only_searchable_records_are_changes() {
    let t = Tenant::from_raw(9);
    let thing = Id::generate(Dim::Thing);
    let person = Id::generate(Dim::Person);
    let knowledge = Id::generate(Dim::Knowledge);
    for (key, id) in [
        (t.thing(thing), thing),
        (t.person(person), person),
        (t.knowledge(knowledge), knowledge),
    ] {
        let changed = Changed::of_key(&key).unwrap();
        assert_eq!(changed, Changed { tenant: t, id });
        assert_eq!(changed.key(), key);
    }
    assert_eq!(Changed::of_key(&t.thing_by_type("course", thing)), None);
    assert_eq!(
        Changed::of_key(&t.connection(Id::generate(Dim::Connection))),
        None
    );
    assert_eq!(Changed::of_key(&t.event(Id::generate(Dim::Event))), None);
    assert_eq!(Changed::of_key(&commit_seq()), None);
}

proptest! {
    #[test]
    fn change_lists_round_trip(raws in prop::collection::vec((any::<u128>(), any::<u128>(), 0usize..3), 0..20)) {
        let dims = [Dim::Thing, Dim::Person, Dim::Knowledge];
        let changes: Vec<Changed> = raws
            .iter()
            .map(|(t, id, d)| Changed { tenant: Tenant::from_raw(*t), id: Id::from_raw(dims[*d], *id) })
            .collect();
        prop_assert_eq!(decode_changes(&encode_changes(&changes)).unwrap(), changes);
    }

    #[test]
    fn bad_change_lists_are_errors(bytes in prop::collection::vec(any::<u8>(), 0..100)) {
        let _ = decode_changes(&bytes);
    }
}

#[test]
fn trailing_bytes_are_corruption() {
    let mut k = Tenant::from_raw(7).thing(Id::generate(Dim::Thing));
    k.push(0);
    assert_eq!(
        decode(&k).unwrap_err().code,
        crate::error::ErrorCode::Corruption
    );
}

#[test]
fn prefix_end_is_the_tightest_bound() {
    assert_eq!(prefix_end(&[1, 2]), vec![1, 3]);
    assert_eq!(prefix_end(&[1, 0xFF]), vec![2]);
}

#[test]
fn borrowed_edge_keys_decode_as_edge_keys() {
    let t = Tenant::from_raw(42);
    let node = Id::generate(Dim::Thing);
    let other = Id::generate(Dim::Person);
    let con = Id::generate(Dim::Connection);
    for dir in [Direction::Out, Direction::In] {
        let key = t.edge(dir, node, "part_of", other, con);
        let borrowed = decode_edge(&key).unwrap();
        assert_eq!(
            decode(&key).unwrap(),
            Key::Tenant(
                t,
                TenantKey::Edge {
                    dir: borrowed.dir,
                    node: borrowed.node,
                    kind: borrowed.kind.to_string(),
                    other: borrowed.other,
                    con: borrowed.con,
                }
            )
        );
        assert_eq!((borrowed.dir, borrowed.kind), (dir, "part_of"));
        let mut longer = key.clone();
        longer.push(0);
        assert!(decode_edge(&longer).is_err());
        assert!(decode_edge(&key[..key.len() - 1]).is_err());
    }
    assert!(decode_edge(&t.thing(node)).is_err());
    assert!(decode_edge(&t.connection(con)).is_err());
}
