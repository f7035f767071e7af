//! API tokens (DESIGN.md "TCP protocol", RELIABILITY.md A3): made, listed
//! and revoked in OQL; a login with one; every bad token refused alike;
//! expiry and revocation end sessions; no secret kept anywhere.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use onedb::error::ErrorCode;
use onedb::model::Clock;
use onedb::query::run::Runner;
use onedb::{Database, EventFilter, Role, Session};
use serde_json::{Value as Json, json};

const START: i64 = 1_780_000_000_000;

/// `CREATE TOKEN` through OQL: (id, secret).
fn create_token(session: &Session, text: &str) -> (String, String) {
    let out = Runner::new(session).execute(text).unwrap();
    assert_eq!(out.columns, ["id", "token", "name", "expiresAt"]);
    let row = &out.rows[0];
    let (id, secret) = (row[0].as_str().unwrap(), row[1].as_str().unwrap());
    assert!(id.starts_with("tok_") && secret.starts_with(id), "{row:?}");
    (id.to_string(), secret.to_string())
}

fn run(session: &Session, text: &str) -> onedb::Result<onedb::query::run::Outcome> {
    Runner::new(session).execute(text)
}

fn login_events(db: &Database, org_session: &Session) -> Vec<Json> {
    let _ = db;
    org_session
        .read()
        .unwrap()
        .events(&EventFilter {
            kind: Some("user_login".into()),
            limit: 100,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|e| json!({"success": e.metadata["success"], "method": e.metadata["method"]}))
        .collect()
}

#[test]
fn a_token_logs_in_as_its_person_and_every_bad_token_is_refused_alike() {
    let (_dir, db) = common::open();
    let admin = common::org(&db, "acme");
    let ann = common::person(&db, &admin, "ann@acme.io", Role::OrgUser);
    let (id, secret) = create_token(&ann, "CREATE TOKEN \"ci-bot\";");

    let session = db.login_token(&secret).unwrap();
    assert_eq!(session.actor().email, "ann@acme.io");
    assert_eq!(session.org().unwrap().slug, "acme");
    session.check_live().unwrap();

    let mut tampered = secret.clone().into_bytes();
    let at = id.len() + 5;
    tampered[at] = if tampered[at] == b'a' { b'b' } else { b'a' };
    let tampered = String::from_utf8(tampered).unwrap();
    let unknown_id = secret.replacen(&id[..8], "tok_0000", 1);
    let bad = [
        tampered.as_str(),
        &secret[..secret.len() - 2],
        unknown_id.as_str(),
        &id,
        "",
        "tok_.",
        "not a token at all",
        &format!("{secret}{secret}"),
    ];
    let mut messages = Vec::new();
    for token in bad {
        let e = db.login_token(token).err().expect(token);
        assert_eq!(e.code, ErrorCode::NotAuthenticated, "{token}");
        assert!(!e.message.contains(&secret[id.len()..]), "{}", e.message);
        messages.push(e.message);
    }
    messages.dedup();
    assert_eq!(
        messages.len(),
        1,
        "bad tokens must look alike: {messages:?}"
    );

    // One success and one failure with the token's id are logged, with
    // the method and no secret.
    let logins = login_events(&db, &admin);
    assert_eq!(
        logins,
        [
            json!({"success": false, "method": "token"}),
            json!({"success": true, "method": "token"})
        ]
    );
}

#[test]
fn expiry_and_revocation_end_tokens_and_the_sessions_made_with_them() {
    let clock = Clock::manual(START);
    let (_dir, db) = common::open_at(clock.clone());
    let admin = common::org(&db, "acme");
    let ann = common::person(&db, &admin, "ann@acme.io", Role::OrgUser);

    // Expiry: good until the instant, refused from it on.
    let at = START + 60_000;
    let (_, short) = create_token(&ann, &format!("CREATE TOKEN \"short\" EXPIRES {at};"));
    let session = db.login_token(&short).unwrap();
    clock.advance(59_999);
    session.check_live().unwrap();
    clock.advance(1);
    assert_eq!(
        session.check_live().unwrap_err().code,
        ErrorCode::NotAuthenticated
    );
    assert_eq!(
        db.login_token(&short).err().unwrap().code,
        ErrorCode::NotAuthenticated
    );
    let past = run(&ann, "CREATE TOKEN \"old\" EXPIRES \"2020-01-01\";").unwrap_err();
    assert_eq!(past.code, ErrorCode::InvalidArgument);

    // Revocation: at once, also for a session already logged in.
    let (id, secret) = create_token(&ann, "CREATE TOKEN \"long\";");
    let live = db.login_token(&secret).unwrap();
    live.check_live().unwrap();
    let out = run(&ann, &format!("REVOKE TOKEN \"{id}\";")).unwrap();
    assert_eq!(out.rows, [[json!(id)]]);
    assert_eq!(
        live.check_live().unwrap_err().code,
        ErrorCode::NotAuthenticated
    );
    assert!(db.login_token(&secret).is_err());
    let again = run(&ann, &format!("REVOKE TOKEN \"{id}\";")).unwrap_err();
    assert_eq!(again.code, ErrorCode::InvalidArgument);
    common::assert_valid(&db);
}

#[test]
fn removing_a_person_ends_their_sessions_and_tokens() {
    let (_dir, db) = common::open();
    let admin = common::org(&db, "acme");
    let ann = common::person(&db, &admin, "ann@acme.io", Role::OrgUser);
    let bob = common::person(&db, &admin, "bob@acme.io", Role::OrgUser);
    let (_, secret) = create_token(&ann, "CREATE TOKEN \"ann\";");
    let by_token = db.login_token(&secret).unwrap();
    by_token.check_live().unwrap();
    ann.check_live().unwrap();
    bob.check_live().unwrap();

    let id = ann.actor().person;
    run(&admin, &format!("REMOVE PERSON \"{id}\";")).unwrap();
    for session in [&ann, &by_token] {
        let e = session.check_live().unwrap_err();
        assert_eq!(e.code, ErrorCode::NotAuthenticated, "{e}");
    }
    // Everybody else goes on, and their verification is cached again.
    bob.check_live().unwrap();
    admin.check_live().unwrap();
    assert_eq!(
        db.login_token(&secret).err().unwrap().code,
        ErrorCode::NotAuthenticated
    );
}

#[test]
fn people_see_and_end_their_own_tokens_and_org_owners_all_of_the_orgs() {
    let (_dir, db) = common::open();
    let root_in_acme = common::org(&db, "acme");
    let owner = common::person(&db, &root_in_acme, "olga@acme.io", Role::OrgOwner);
    let ann = common::person(&db, &root_in_acme, "ann@acme.io", Role::OrgUser);
    let cid = common::person(&db, &root_in_acme, "cid@acme.io", Role::Customer);
    let root_in_beta = common::org(&db, "beta");
    let bea = common::person(&db, &root_in_beta, "bea@beta.io", Role::OrgOwner);

    let (ann_tok, _) = create_token(&ann, "CREATE TOKEN \"ann\";");
    let (cid_tok, _) = create_token(&cid, "CREATE TOKEN \"cid\";");
    let (bea_tok, _) = create_token(&bea, "CREATE TOKEN \"bea\";");
    let (root_tok, root_secret) = create_token(&root_in_acme, "CREATE TOKEN \"root\";");

    let listed = |s: &Session| -> Vec<String> {
        let out = run(s, "SHOW TOKENS;").unwrap();
        assert_eq!(
            out.columns,
            [
                "id",
                "name",
                "person",
                "createdAt",
                "expiresAt",
                "revokedAt"
            ]
        );
        out.rows
            .iter()
            .map(|r| r[0].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(listed(&ann), vec![ann_tok.clone()]);
    assert_eq!(listed(&cid), vec![cid_tok.clone()]);
    assert_eq!(listed(&owner), [ann_tok.clone(), cid_tok.clone()]);
    assert_eq!(listed(&bea), vec![bea_tok.clone()]);
    // Root in acme: acme's tokens and its own (which live on the platform).
    assert_eq!(
        listed(&root_in_acme),
        [ann_tok.clone(), cid_tok.clone(), root_tok.clone()]
    );
    // Nothing in the listing is a secret.
    let shown = serde_json::to_string(&run(&owner, "SHOW TOKENS;").unwrap().rows).unwrap();
    assert!(!shown.contains(&root_secret[root_tok.len()..]));

    // Another person's token, or another org's: NOT_FOUND, as if absent.
    for (who, token) in [
        (&ann, &cid_tok),
        (&cid, &ann_tok),
        (&bea, &ann_tok),
        (&owner, &bea_tok),
    ] {
        let e = run(who, &format!("REVOKE TOKEN \"{token}\";")).unwrap_err();
        assert_eq!(e.code, ErrorCode::NotFound, "{token}");
    }
    run(&owner, &format!("REVOKE TOKEN \"{ann_tok}\";")).unwrap();
    run(&cid, &format!("REVOKE TOKEN {cid_tok};")).unwrap();
    run(&root_in_beta, &format!("REVOKE TOKEN \"{bea_tok}\";")).unwrap();
    let revoked = run(&owner, "SHOW TOKENS;").unwrap();
    assert!(
        revoked.rows.iter().all(|r| r[5].is_i64()),
        "{:?}",
        revoked.rows
    );

    // Each creation and revocation is an event of the token's org, with
    // its name and no secret.
    let events = admin_events(&root_in_acme, "settings_updated");
    let actions = |action: &str| -> Vec<Json> {
        events
            .iter()
            .filter(|m| m["action"] == json!(action))
            .map(|m| m["token"].clone())
            .collect()
    };
    // Newest first; root's own token is logged on the platform.
    assert_eq!(
        actions("api_token_created"),
        [json!(cid_tok), json!(ann_tok)]
    );
    assert_eq!(
        actions("api_token_revoked"),
        [json!(cid_tok), json!(ann_tok)]
    );
    assert!(
        !serde_json::to_string(&events)
            .unwrap()
            .contains(&root_secret[root_tok.len()..])
    );
    common::assert_valid(&db);
}

fn admin_events(session: &Session, kind: &str) -> Vec<Json> {
    session
        .read()
        .unwrap()
        .events(&EventFilter {
            kind: Some(kind.into()),
            limit: 100,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|e| Json::Object(e.metadata))
        .collect()
}

#[test]
fn no_token_secret_is_stored_and_let_binds_the_secret() {
    let (_dir, db) = common::open();
    let admin = common::org(&db, "acme");
    let mut runner = Runner::new(&admin);
    let out = runner.execute("LET $t = CREATE TOKEN \"script\";").unwrap();
    let secret = out.value.unwrap().as_str().unwrap().to_string();
    db.login_token(&secret).unwrap();
    let random = &secret[secret.find('.').unwrap() + 1..];
    for (key, value) in common::all_entries(&db) {
        for bytes in [&key, &value] {
            assert!(
                !bytes.windows(random.len()).any(|w| w == random.as_bytes()),
                "the secret is stored"
            );
        }
    }
}
