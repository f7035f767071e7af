//! Tenant capabilities: what a person's session can reach. It hands out
//! transactions of the person's own org only — not another org's, not the
//! platform tenant's, not with a forged org record — and nothing reachable
//! from it leads to root's or another person's rights. (That a session has
//! no way to its `Database` and a read transaction no write methods is
//! shown by compile-fail doc tests on `Session` and `ReadTxn`; that no
//! transaction writes a platform or meta key without the capability, by
//! the storage contract tests.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use onedb::{ErrorCode, OrgStatus, OrgUpdate, Role};

#[test]
fn a_person_reaches_only_their_own_org() {
    let (_dir, db) = open();
    let globex = org(&db, "globex");
    let secret = create(&globex, "course", "Globex secret").id;
    let root = org(&db, "acme");
    for role in [Role::OrgOwner, Role::OrgUser, Role::Customer] {
        let email = format!("{}@acme.io", role.as_str());
        let mut s = person(&db, &root, &email, role);
        // By name.
        assert_eq!(s.use_org("globex").unwrap_err().code, ErrorCode::Forbidden);
        assert_eq!(s.use_org("nowhere").unwrap_err().code, ErrorCode::Forbidden);
        assert_eq!(s.use_platform().unwrap_err().code, ErrorCode::Forbidden);
        // With the other org's record in hand (its fields are public).
        let other = Arc::new(globex.org().expect("globex").clone());
        assert_eq!(
            s.read_in(Some(other.clone())).err().map(|e| e.code),
            Some(ErrorCode::Forbidden)
        );
        assert_eq!(
            s.write_in(Some(other.clone())).err().map(|e| e.code),
            Some(ErrorCode::Forbidden)
        );
        let forbidden = s.run_in(Some(other), |t| t.create_thing(new_thing("course", "x")));
        assert_eq!(forbidden.unwrap_err().code, ErrorCode::Forbidden);
        // The platform tenant (global things, other orgs' records).
        assert_eq!(
            s.read_in(None).err().map(|e| e.code),
            Some(ErrorCode::Forbidden)
        );
        // In its own org, another org's thing does not exist.
        let read = s.read().expect("read");
        assert_eq!(read.thing(secret).expect("read"), None);
        let slugs: Vec<String> = read
            .orgs()
            .expect("orgs")
            .into_iter()
            .map(|o| o.slug)
            .collect();
        assert_eq!(slugs, ["acme"]);
    }
}

/// A writer re-reads its org for update: a forged copy of the person's own
/// org (active, where the stored one is suspended) does not let writes in.
#[test]
fn a_forged_org_record_grants_nothing() {
    let (_dir, db) = open();
    let root = org(&db, "acme");
    let owner = person(&db, &root, "owner@acme.io", Role::OrgOwner);
    let mut forged = owner.org().expect("acme").clone();
    root.run(|t| {
        t.update_org(
            "acme",
            OrgUpdate {
                status: Some(OrgStatus::Suspended),
                ..Default::default()
            },
        )
        .map(|_| ())
    })
    .expect("suspend");
    forged.status = OrgStatus::Active;
    forged.limits.insert("things".into(), -1);
    let err = owner
        .run_in(Some(Arc::new(forged)), |t| {
            t.create_thing(new_thing("course", "x"))
        })
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden, "{err}");
}

/// A person's session acts with that person's role whatever it asks for:
/// the `$me` of every write is the person, and root's powers stay root's.
#[test]
fn a_session_never_acts_with_someone_elses_rights() {
    let (_dir, db) = open();
    let root = org(&db, "acme");
    let user = person(&db, &root, "user@acme.io", Role::OrgUser);
    let t = user.write().expect("write");
    assert_eq!(t.actor().person, user.actor().person);
    assert_eq!(t.actor().role, Role::OrgUser);
    drop(t);
    let err = user
        .run(|t| t.create_org("mine", "Mine", onedb::Plan::Pro))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
    let err = user
        .run(|t| t.add_type(onedb::TypeKind::Thing, "widget"))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
    let err = user
        .run(|t| {
            t.create_person(onedb::NewPerson {
                email: "boss@acme.io".into(),
                name: "Boss".into(),
                role: Role::PlatformOwner,
                password: None,
            })
        })
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
}
