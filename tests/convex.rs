//! `onedb load --from convex` through the real binary, on an export zip
//! the test writes in Convex's layout (`<table>/documents.jsonl`, each
//! document with `_id` and `_creationTime`): loaded, then queried — counts
//! per org, edges and their validity, events by actor, vector search over
//! the imported embeddings; invalid documents reported by `_id` and
//! nothing loaded without `--skip-invalid`; the same export always gives
//! the same database; damaged archives stop with a clear error; a killed
//! import leaves the database as it was.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::path::Path;

use base64ct::{Base64, Encoding};
use common::binary::{ok, onedb, text};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The fixture's creation times start here (Convex writes float ms).
const T0: f64 = 1_700_000_000_000.25;

/// An export being written: its tables' documents in order.
#[derive(Default, Clone)]
struct Export {
    tables: Vec<(&'static str, Vec<String>)>,
}

impl Export {
    /// Adds a document with Convex's own fields.
    fn add(&mut self, table: &'static str, id: &str, at: f64, fields: Value) {
        let mut doc = json!({"_id": id, "_creationTime": T0 + at});
        for (k, v) in fields.as_object().unwrap() {
            doc[k] = v.clone();
        }
        self.raw(table, doc.to_string());
    }

    /// Adds a line as it is.
    fn raw(&mut self, table: &'static str, line: String) {
        match self.tables.iter_mut().find(|(t, _)| *t == table) {
            Some((_, lines)) => lines.push(line),
            None => self.tables.push((table, vec![line])),
        }
    }

    /// The zip `npx convex export` writes: a folder per table, and the
    /// `_tables` listing.
    fn write(&self, path: &Path) {
        let file = std::fs::File::create(path).unwrap();
        let mut zip = zip::ZipWriter::new(file);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let mut listing = String::new();
        for (n, (table, lines)) in self.tables.iter().enumerate() {
            listing.push_str(&format!("{}\n", json!({"name": table, "id": n + 10001})));
            zip.start_file(format!("{table}/documents.jsonl"), options)
                .unwrap();
            for line in lines {
                zip.write_all(line.as_bytes()).unwrap();
                zip.write_all(b"\n").unwrap();
            }
            zip.start_file(format!("{table}/generated_schema.jsonl"), options)
                .unwrap();
            zip.write_all(b"\"any\"\n").unwrap();
        }
        zip.start_file("_tables/documents.jsonl", options).unwrap();
        zip.write_all(listing.as_bytes()).unwrap();
        zip.finish().unwrap();
    }
}

fn int64(n: i64) -> Value {
    json!({"$integer": Base64::encode_string(&n.to_le_bytes())})
}

/// The onedb id a Convex document becomes: time bits from its creation
/// time, random bits from SHA-256 of its `_id`.
fn expected_id(prefix: &str, convex: &str, ms: i64) -> String {
    let digest = Sha256::digest(convex.as_bytes());
    let mut random = [0u8; 16];
    random[6..].copy_from_slice(&digest[..10]);
    let raw = ((ms as u128) << 80) | u128::from_be_bytes(random);
    format!("{prefix}_{}", ulid::Ulid(raw))
}

/// Two orgs of every table: acme (pro) with courses, lessons, people,
/// edges (one whose validity ended, one valid only from 2100), chunks
/// with 4-dimensional embeddings and events; globex (at most 2 users).
fn valid_export() -> Export {
    let mut x = Export::default();
    x.add(
        "organizations",
        "org_acme",
        0.0,
        json!({"name": "Acme", "slug": "acme", "plan": "pro", "status": "active",
               "limits": {"users": 25, "storage": 100, "apiCalls": 100000, "inference": 10000},
               "usage": {"users": 3}, "settings": {"theme": "dark"}, "createdAt": 1, "updatedAt": T0 + 5.0}),
    );
    x.add(
        "organizations",
        "org_globex",
        1.0,
        json!({"name": "Globex", "slug": "globex", "plan": "starter", "limits": {"users": 2}}),
    );
    let people = [
        ("p_alice", "Alice@Acme.io", "org_owner", "org_acme"),
        ("p_bob", "bob@acme.io", "org_user", "org_acme"),
        ("p_carol", "carol@acme.io", "customer", "org_acme"),
        ("p_gina", "gina@globex.io", "org_owner", "org_globex"),
        ("p_hank", "hank@globex.io", "org_user", "org_globex"),
    ];
    for (i, (id, email, role, org)) in people.iter().enumerate() {
        x.add(
            "people",
            id,
            10.0 + i as f64,
            json!({"email": email, "displayName": id, "role": role, "organizationId": org}),
        );
    }
    for i in 0..6 {
        let status = if i < 3 { "published" } else { "draft" };
        let mut properties = json!({"n": i});
        if i == 0 {
            properties["price"] = int64(39);
        }
        x.add(
            "things",
            &format!("c{i}"),
            100.0 + i as f64,
            json!({"type": "course", "name": format!("Course {i}"), "status": status,
                   "organizationId": "org_acme", "properties": properties}),
        );
        x.add(
            "things",
            &format!("l{i}"),
            200.0 + i as f64,
            json!({"type": "lesson", "name": format!("Lesson {i}"), "status": "active",
                   "organizationId": "org_acme", "properties": {}}),
        );
    }
    for i in 0..3 {
        x.add(
            "things",
            &format!("g{i}"),
            300.0 + i as f64,
            json!({"type": "blog_post", "name": format!("Post {i}"), "status": "draft",
                   "organizationId": "org_globex"}),
        );
    }
    for i in 0..6 {
        x.add(
            "connections",
            &format!("e_part{i}"),
            400.0 + i as f64,
            json!({"fromThingId": format!("l{i}"), "toThingId": format!("c{i}"), "relationshipType": "part_of"}),
        );
    }
    x.add(
        "connections",
        "e_enroll_alice",
        410.0,
        json!({"fromThingId": "p_alice", "toThingId": "c0", "relationshipType": "enrolled_in", "strength": 0.8,
               "metadata": {"via": "web"}}),
    );
    x.add(
        "connections",
        "e_enroll_bob",
        411.0,
        json!({"fromThingId": "p_bob", "toThingId": "c0", "relationshipType": "enrolled_in"}),
    );
    x.add(
        "connections",
        "e_enroll_bob_ended",
        412.0,
        json!({"fromThingId": "p_bob", "toThingId": "c1", "relationshipType": "enrolled_in",
               "validFrom": T0, "validTo": T0 + 1000.0}),
    );
    x.add(
        "connections",
        "e_future",
        413.0,
        json!({"fromThingId": "c1", "toThingId": "c2", "relationshipType": "references",
               "validFrom": 4_102_444_800_000i64}),
    );
    x.add(
        "connections",
        "e_globex",
        414.0,
        json!({"fromThingId": "g0", "toThingId": "g1", "relationshipType": "references", "organizationId": "org_globex"}),
    );
    for i in 0..4 {
        let mut embedding = vec![0.0; 4];
        embedding[i] = 1.0;
        let mut fields = json!({"knowledgeType": "chunk", "text": format!("chunk {i}"),
            "embedding": embedding, "embeddingDim": 4, "labels": ["topic:rust"]});
        match i {
            0 | 1 => {
                fields["organizationId"] = json!("org_acme");
                fields["sourceThingId"] = json!(format!("c{i}"));
            }
            // Its org from its source thing.
            2 => fields["sourceThingId"] = json!("c2"),
            // Its org from the thing thingKnowledge links it to.
            _ => {}
        }
        x.add("knowledge", &format!("k{i}"), 500.0 + i as f64, fields);
    }
    x.add(
        "knowledge",
        "k_label",
        510.0,
        json!({"knowledgeType": "label", "text": "rust", "organizationId": "org_acme"}),
    );
    for (id, thing, knowledge, role) in [
        ("tk0", "c0", "k0", Some("chunk_of")),
        ("tk1", "c1", "k1", None),
        ("tk3", "l0", "k3", None),
        ("tk_label", "c0", "k_label", Some("label")),
    ] {
        let mut fields = json!({"thingId": thing, "knowledgeId": knowledge});
        if let Some(role) = role {
            fields["role"] = json!(role);
        }
        x.add("thingKnowledge", id, 600.0, fields);
    }
    for i in 0..4 {
        x.add(
            "events",
            &format!("ev_alice{i}"),
            700.0 + i as f64,
            json!({"type": "course_enrolled", "actorId": "p_alice", "targetId": "c0",
                   "timestamp": T0 + 700.0 + i as f64, "metadata": {"n": i}}),
        );
    }
    x.add(
        "events",
        "ev_bob",
        710.0,
        json!({"type": "lesson_completed", "actorId": "p_bob", "targetId": "l0", "metadata": {}}),
    );
    x.add(
        "events",
        "ev_system",
        711.0,
        json!({"type": "entity_created", "targetId": "c0", "metadata": {"entityType": "course"}}),
    );
    x.add(
        "events",
        "ev_gina",
        712.0,
        json!({"type": "content_event", "actorId": "p_gina", "targetId": "g0", "metadata": {"action": "drafted"}}),
    );
    x
}

/// Documents that break the ontology, and those depending on them, by
/// table and `_id`, with a word of the reason each must give.
fn add_invalid(x: &mut Export) -> Vec<(&'static str, &'static str, &'static str)> {
    x.add(
        "people",
        "p_ivan",
        20.0,
        json!({"email": "ivan@globex.io", "displayName": "Ivan", "role": "org_user", "organizationId": "org_globex"}),
    );
    x.add(
        "things",
        "bad_type",
        350.0,
        json!({"type": "cours", "name": "Typo", "organizationId": "org_acme"}),
    );
    x.add(
        "things",
        "bad_bytes",
        351.0,
        json!({"type": "course", "name": "Blob", "organizationId": "org_acme", "properties": {"blob": {"$bytes": "AAE="}}}),
    );
    x.add(
        "connections",
        "bad_across",
        420.0,
        json!({"fromThingId": "c0", "toThingId": "g0", "relationshipType": "references"}),
    );
    x.add(
        "connections",
        "bad_missing",
        421.0,
        json!({"fromThingId": "c0", "toThingId": "nowhere", "relationshipType": "references"}),
    );
    x.add(
        "connections",
        "bad_self",
        422.0,
        json!({"fromThingId": "c0", "toThingId": "c0", "relationshipType": "references"}),
    );
    x.add(
        "connections",
        "bad_strength",
        423.0,
        json!({"fromThingId": "c0", "toThingId": "c1", "relationshipType": "references", "strength": 1.5}),
    );
    x.add(
        "connections",
        "bad_dependent",
        424.0,
        json!({"fromThingId": "bad_type", "toThingId": "c1", "relationshipType": "references"}),
    );
    x.add(
        "knowledge",
        "bad_dim",
        520.0,
        json!({"knowledgeType": "chunk", "text": "short", "embedding": [1.0, 0.0, 0.0], "organizationId": "org_acme"}),
    );
    x.add(
        "thingKnowledge",
        "bad_link",
        620.0,
        json!({"thingId": "c0", "knowledgeId": "bad_dim"}),
    );
    // Neither an org nor a source: its org would come from its link, to
    // an invalid thing.
    x.add(
        "knowledge",
        "bad_orphan",
        521.0,
        json!({"knowledgeType": "label", "text": "orphan"}),
    );
    x.add(
        "thingKnowledge",
        "bad_orphan_link",
        621.0,
        json!({"thingId": "bad_type", "knowledgeId": "bad_orphan"}),
    );
    x.add(
        "events",
        "bad_event",
        720.0,
        json!({"type": "spaceship_launched", "actorId": "p_alice", "targetId": "c0", "metadata": {}}),
    );
    vec![
        ("people", "p_ivan", "people limit 2 reached"),
        ("things", "bad_type", "unknown thing type"),
        ("things", "bad_bytes", "$bytes"),
        ("connections", "bad_across", "across organizations"),
        ("connections", "bad_missing", "missing endpoint"),
        ("connections", "bad_self", "self-connections"),
        ("connections", "bad_strength", "outside 0..1"),
        ("connections", "bad_dependent", "invalid things/bad_type"),
        ("knowledge", "bad_dim", "dimensions"),
        ("thingKnowledge", "bad_link", "invalid knowledge/bad_dim"),
        (
            "knowledge",
            "bad_orphan",
            "thingId bad_type names the invalid things/bad_type",
        ),
        (
            "thingKnowledge",
            "bad_orphan_link",
            "invalid things/bad_type",
        ),
        ("events", "bad_event", "unknown event type"),
    ]
}

/// The rows of each statement of an OQL script run with `--format json`.
fn rows(data: &Path, script: &str) -> Vec<Vec<Vec<Value>>> {
    let out = ok(onedb(
        data,
        &["run", "-", "--format", "json"],
        Some(script.as_bytes()),
    ));
    text(&out.stdout)
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            v["rows"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|r| r.as_array().cloned().unwrap())
                .collect()
        })
        .collect()
}

/// Counter → used, from `SHOW USAGE` in `org`.
fn usage(data: &Path, org: &str) -> std::collections::BTreeMap<String, i64> {
    let out = ok(onedb(
        data,
        &["run", "-", "--format", "json"],
        Some(format!("USE ORG {org};\nSHOW USAGE;").as_bytes()),
    ));
    let last = text(&out.stdout).lines().last().unwrap().to_string();
    let v: Value = serde_json::from_str(&last).unwrap();
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_i64().unwrap()))
        .collect()
}

fn load(data: &Path, zip: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["load", "--from", "convex", zip.to_str().unwrap()];
    args.extend_from_slice(extra);
    onedb(data, &args, None)
}

fn dump(data: &Path) -> String {
    text(&ok(onedb(data, &["dump", "--with-secrets"], None)).stdout)
}

/// Everything but the header line.
fn body(dump: &str) -> &str {
    dump.split_once('\n').unwrap().1
}

#[test]
fn an_export_loads_and_answers_queries() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("export.zip");
    valid_export().write(&zip);
    let data = dir.path().join("data");
    let out = ok(load(&data, &zip, &[]));
    let said = text(&out.stdout);
    assert!(
        said.starts_with("imported 49 of 49 documents (2 orgs: acme, globex)"),
        "{said}"
    );
    assert!(ok(onedb(&data, &["check"], None)).stdout.ends_with(b"ok\n"));

    // Counts per org, recounted from what loaded.
    let acme = usage(&data, "acme");
    assert_eq!(
        (
            acme["people"],
            acme["things"],
            acme["connections"],
            acme["knowledge"]
        ),
        (3, 12, 10, 5),
        "{acme:?}"
    );
    let globex = usage(&data, "globex");
    assert_eq!(
        (globex["people"], globex["things"], globex["connections"]),
        (2, 3, 1),
        "{globex:?}"
    );

    let alice = expected_id("per", "p_alice", (T0 + 10.0) as i64);
    let c0 = expected_id("thg", "c0", (T0 + 100.0) as i64);
    let r = rows(
        &data,
        &format!(
            r#"USE ORG acme;
MATCH (c:course) WHERE c.status = "published" RETURN count(c);
MATCH (l:lesson)-[:part_of]->(c:course) RETURN count(l);
MATCH (p:person)-[:enrolled_in]->(c) RETURN count(p);
MATCH (p:person)-[:enrolled_in AT "2023-11-14T22:13:20.500Z"]->(c) RETURN count(p);
MATCH (a)-[:references]->(b) RETURN count(a);
MATCH (a)-[:references AT "2101-01-01"]->(b) RETURN count(a);
MATCH (c:course) WHERE c.id = "{c0}" RETURN c.name, c.properties.price;
EVENTS WHERE actor = "{alice}";
EVENTS WHERE target = "{c0}" AND type = "entity_created";
SEARCH KNOWLEDGE NEAREST [0.0, 0.0, 0.1, 0.9] K 1 RETURN text;
SEARCH KNOWLEDGE NEAREST [0.0, 0.1, 0.9, 0.0] K 1 RETURN text, source;
MATCH (p:person) WHERE p.email = "alice@acme.io" RETURN p.name, p.role;
"#
        ),
    );
    let one = |i: usize| r[i][0].clone();
    assert_eq!(one(1), vec![json!(3)], "published courses");
    assert_eq!(one(2), vec![json!(6)], "lessons part of courses");
    // Bob's enrolment in c1 ended; both were valid just after they began.
    assert_eq!(one(3), vec![json!(2)], "enrolments now");
    assert_eq!(one(4), vec![json!(3)], "enrolments then");
    assert_eq!(one(5), vec![json!(0)], "references now (valid from 2100)");
    assert_eq!(one(6), vec![json!(1)], "references in 2101");
    // A Convex int64 ({"$integer": …}) is a number.
    assert_eq!(one(7), vec![json!("Course 0"), json!(39)]);
    // Events by actor: alice's four.
    assert_eq!(r[8].len(), 4, "{:?}", r[8]);
    assert!(r[8].iter().all(|e| e.contains(&json!("course_enrolled"))));
    assert_eq!(r[9].len(), 1, "the system event");
    assert_eq!(one(10), vec![json!("chunk 3")], "the chunk linked to l0");
    assert_eq!(
        one(11),
        vec![
            json!("chunk 2"),
            json!(expected_id("thg", "c2", (T0 + 102.0) as i64))
        ]
    );
    assert_eq!(one(12), vec![json!("p_alice"), json!("org_owner")]);

    // People come without passwords; links keep their roles.
    let all = dump(&data);
    assert!(!all.contains("passwordHash"));
    assert!(all.contains(r#""role":"chunk_of""#) && all.contains(r#""role":"label""#));
    // _creationTime is createdAt.
    assert!(all.contains(&format!(r#""id":"{c0}","type":"course""#)));
    assert!(all.contains(r#""createdAt":1700000000100"#));
}

#[test]
fn invalid_documents_are_reported_and_nothing_loads_without_skip() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = valid_export();
    let expected = add_invalid(&mut x);
    let zip = dir.path().join("export.zip");
    x.write(&zip);
    // A database that already holds data: the import must leave it as it was.
    let data = dir.path().join("data");
    ok(onedb(
        &data,
        &["run", "-"],
        Some(b"CREATE ORG initech NAME \"Initech\";\nUSE ORG initech;\nCREATE THING course \"Kept\" {};"),
    ));
    let before = dump(&data);

    let refused = load(&data, &zip, &[]);
    assert!(!refused.status.success());
    let err = text(&refused.stderr);
    assert!(!err.contains("panicked"), "{err}");
    for (table, id, reason) in &expected {
        let line = err
            .lines()
            .find(|l| l.starts_with(&format!("invalid {table}/{id}: ")))
            .unwrap_or_else(|| panic!("{table}/{id} not reported:\n{err}"));
        assert!(line.contains(reason), "{line}: expected {reason:?}");
    }
    assert_eq!(
        err.lines().filter(|l| l.starts_with("invalid ")).count(),
        expected.len(),
        "{err}"
    );
    assert!(
        err.contains(&format!("{} of 62 documents are invalid", expected.len())),
        "{err}"
    );
    assert!(
        body(&dump(&data)) == body(&before),
        "the refused import changed the database"
    );
    assert!(!data.join("load-staging").exists());

    // With --skip-invalid the rest loads, and the skipped are listed.
    let out = ok(load(&data, &zip, &["--skip-invalid"]));
    let said = text(&out.stdout);
    assert!(said.contains("imported 49 of 62 documents"), "{said}");
    assert!(said.contains("13 invalid skipped"), "{said}");
    let err = text(&out.stderr);
    assert_eq!(
        err.lines().filter(|l| l.starts_with("skipped ")).count(),
        expected.len(),
        "{err}"
    );
    let acme = usage(&data, "acme");
    assert_eq!(
        (acme["things"], acme["connections"], acme["knowledge"]),
        (12, 10, 5)
    );
    assert_eq!(usage(&data, "globex")["people"], 2);
    assert_eq!(usage(&data, "initech")["things"], 1);
    assert!(ok(onedb(&data, &["check"], None)).stdout.ends_with(b"ok\n"));
    // A second import of the same export finds its orgs there already.
    let again = load(&data, &zip, &["--skip-invalid"]);
    let err = text(&again.stderr);
    assert!(
        err.contains("skipped organizations/org_acme: organization acme already exists"),
        "{err}"
    );
}

#[test]
fn the_same_export_always_gives_the_same_database() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("export.zip");
    valid_export().write(&zip);
    let one = dir.path().join("one");
    let two = dir.path().join("two");
    ok(load(&one, &zip, &[]));
    ok(load(&two, &zip, &[]));
    // Each org's dump: the whole database's also holds the root person
    // the first open creates, which is no part of the import.
    for org in ["acme", "globex"] {
        let org_dump = |data: &Path| {
            text(&ok(onedb(data, &["dump", "--org", org, "--with-secrets"], None)).stdout)
        };
        let (a, b) = (org_dump(&one), org_dump(&two));
        assert!(body(&a).lines().count() > 5);
        assert!(body(&a) == body(&b), "two imports of {org} differ");
    }
    let a = dump(&one);
    // The ids are the export's: creation time and a hash of the _id.
    assert!(a.contains(&expected_id("org", "org_acme", T0 as i64)));
    assert!(a.contains(&expected_id("evt", "ev_alice0", (T0 + 700.0) as i64)));
}

#[test]
fn damaged_exports_stop_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let refused = |zip: &Path, expected: &str| {
        let out = load(&data, zip, &[]);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.contains(expected), "expected {expected:?} in {err}");
    };
    // Not a zip at all.
    let not_zip = dir.path().join("notes.zip");
    std::fs::write(&not_zip, "just some text\n").unwrap();
    refused(&not_zip, "not a readable zip archive");
    // A zip of something else.
    let other = dir.path().join("other.zip");
    let mut x = Export::default();
    x.raw("photos", "{}".into());
    x.write(&other);
    refused(&other, "holds none of the tables");
    // Cut in half.
    let whole = dir.path().join("whole.zip");
    valid_export().write(&whole);
    let bytes = std::fs::read(&whole).unwrap();
    let truncated = dir.path().join("truncated.zip");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    refused(&truncated, "not a readable zip archive");
    // A bad JSON line names its table and line.
    let mut x = valid_export();
    x.raw("things", r#"{"_id": "broken", "type": "#.into());
    let broken = dir.path().join("broken.zip");
    x.write(&broken);
    refused(
        &broken,
        "things/documents.jsonl line 16: not a JSON document",
    );
    // A document without an _id.
    let mut x = valid_export();
    x.raw("events", r#"{"type": "entity_created"}"#.into());
    let anonymous = dir.path().join("anonymous.zip");
    x.write(&anonymous);
    refused(
        &anonymous,
        "events/documents.jsonl line 8: a document without an _id",
    );
    // A damaged entry inside an intact archive: bytes of the things'
    // compressed documents flipped.
    let name = b"things/documents.jsonl";
    let at = bytes.windows(name.len()).position(|w| w == name).unwrap() + name.len() + 60;
    let mut damaged = bytes.clone();
    for b in &mut damaged[at..at + 8] {
        *b ^= 0x5a;
    }
    let flipped = dir.path().join("flipped.zip");
    std::fs::write(&flipped, &damaged).unwrap();
    refused(&flipped, "things/documents.jsonl line ");
    // --skip-invalid is the Convex import's.
    let dump_file = dir.path().join("dump.jsonl");
    std::fs::write(&dump_file, "").unwrap();
    let out = onedb(
        &data,
        &["load", dump_file.to_str().unwrap(), "--skip-invalid"],
        None,
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--skip-invalid applies to --from convex"));
}

/// How long the import took before its index build, as the command says
/// (`… as commit 1 in 812.5ms, …`).
fn import_time(said: &str) -> std::time::Duration {
    let at = said.find(" in ").unwrap() + 4;
    let figure = &said[at..at + said[at..].find(',').unwrap()];
    let (number, scale) = if let Some(ms) = figure.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(us) = figure.strip_suffix("µs") {
        (us, 1e-6)
    } else {
        (figure.strip_suffix('s').unwrap(), 1.0)
    };
    std::time::Duration::from_secs_f64(number.parse::<f64>().unwrap() * scale)
}

#[test]
fn a_killed_import_leaves_the_database_as_it_was() {
    use rand::{Rng, SeedableRng, rngs::StdRng};
    let seed: u64 = std::env::var("ONEDB_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("kill seed {seed} (ONEDB_KILL_SEED reruns it)");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    // Big enough that the import takes a while.
    let mut x = valid_export();
    for i in 0..20_000 {
        x.add(
            "things",
            &format!("bulk{i}"),
            1_000.0 + i as f64,
            json!({"type": "lesson", "name": format!("Bulk lesson {i}"), "organizationId": "org_acme"}),
        );
        x.add(
            "connections",
            &format!("bulk_edge{i}"),
            30_000.0 + i as f64,
            json!({"fromThingId": format!("bulk{i}"), "toThingId": "c0", "relationshipType": "part_of"}),
        );
    }
    let zip = dir.path().join("export.zip");
    x.write(&zip);
    // What a whole import gives, and how long it takes here.
    let whole = dir.path().join("whole");
    let took = import_time(&text(&ok(load(&whole, &zip, &[])).stdout));
    let acme = |data: &Path| {
        let out = ok(onedb(
            data,
            &["dump", "--org", "acme", "--with-secrets"],
            None,
        ));
        body(&text(&out.stdout)).to_string()
    };
    let expected = acme(&whole);

    let target = dir.path().join("target");
    ok(onedb(
        &target,
        &["run", "-"],
        Some(b"CREATE ORG initech NAME \"Initech\";"),
    ));
    let before = dump(&target);
    for round in 0..6 {
        let delay =
            std::time::Duration::from_millis(rng.gen_range(0..took.as_millis() as u64 + 50));
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_onedb"))
            .arg("--data")
            .arg(&target)
            .args(["load", "--from", "convex", zip.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        let after = dump(&target);
        assert!(!target.join("load-staging").exists());
        if body(&after) != body(&before) {
            // Killed after the one atomic step: all of it is there.
            assert!(
                acme(&target) == expected,
                "round {round}: a partial import (seed {seed})"
            );
            assert!(
                ok(onedb(&target, &["check"], None))
                    .stdout
                    .ends_with(b"ok\n")
            );
            eprintln!("round {round}: killed after {delay:?}, past the commit point ({status})");
            return;
        }
        eprintln!("round {round}: killed after {delay:?}, nothing loaded");
    }
}
