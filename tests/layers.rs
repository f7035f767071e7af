//! The crate's modules depend on each other in one direction only, exactly
//! as docs/ARCHITECTURE.md draws it. This test reads every `crate::` path
//! outside unit tests and fails on an edge that points up (or sideways
//! within a layer), so the document and the code cannot drift apart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;

/// Bottom to top; a module may use only modules of lower layers.
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["crashpoint", "auth"],
    &["model"],
    &["ontology"],
    &["keys"],
    &["storage"],
    &["graph"],
    &["vector"],
    &["search"],
    &["db"],
    &["query", "transfer"],
    &["repl"],
    &["server"],
    &["bench"],
    &["cli"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level module a source file belongs to (`src/graph/things.rs` →
/// `graph`); None for the crate root.
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// The top-level modules named by `crate::` paths in `code`, before its
/// unit tests (`#[cfg(test)]`; tests may use the whole crate) and outside
/// comments.
fn used_modules(code: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        if line.starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                used.extend(group_heads(group));
            } else {
                used.insert(ident(rest).to_string());
            }
        }
    }
    used
}

/// The first path segment of each item in a `{a, b::c, d::{e}}` group.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut at_item = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => at_item = true,
            c if at_item && !c.is_whitespace() => {
                heads.push(ident(&group[i..]).to_string());
                at_item = false;
            }
            _ => {}
        }
    }
    heads
}

fn ident(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// Every edge `from → to` that breaks the layering, with the file it is in.
fn back_edges(files: &[(String, String)]) -> Vec<String> {
    let mut bad = Vec::new();
    for (path, code) in files {
        let Some(from) = module_of(Path::new(path)) else {
            continue;
        };
        if path.ends_with("/tests.rs") {
            continue; // a unit-test module in its own file
        }
        let Some(from_layer) = layer(&from) else {
            bad.push(format!("{path}: module {from} is in no layer"));
            continue;
        };
        for to in used_modules(code) {
            if to == from || to == "self" {
                continue;
            }
            match layer(&to) {
                Some(to_layer) if to_layer < from_layer => {}
                Some(_) => bad.push(format!("{path}: {from} → {to} points up or sideways")),
                None => bad.push(format!(
                    "{path}: crate::{to} is not a module (name the module, not a re-export)"
                )),
            }
        }
    }
    bad
}

fn sources(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).expect("under src");
            let code = std::fs::read_to_string(&path).expect("read source");
            out.push((relative.to_string_lossy().replace('\\', "/"), code));
        }
    }
}

fn crate_sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &root, &mut files);
    files
}

#[test]
fn dependencies_point_one_way() {
    let files = crate_sources();
    assert!(files.len() > 40, "found only {} source files", files.len());
    let bad = back_edges(&files);
    assert!(bad.is_empty(), "layering broken:\n{}", bad.join("\n"));
}

#[test]
fn every_top_level_module_has_a_layer() {
    let lib = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs"))
        .expect("lib.rs");
    for line in lib.lines() {
        let line = line.trim();
        let Some(decl) = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("mod "))
            .or_else(|| line.strip_prefix("pub(crate) mod "))
        else {
            continue;
        };
        if !decl.ends_with(';') {
            continue; // an inline module of lib.rs (re-exports), not a layer
        }
        let name = ident(decl);
        assert!(layer(name).is_some(), "module {name} is in no layer");
    }
}

#[test]
fn the_architecture_document_draws_the_same_order() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/ARCHITECTURE.md"))
        .expect("ARCHITECTURE.md");
    let drawn: String = LAYERS
        .iter()
        .map(|l| l.join(", "))
        .collect::<Vec<_>>()
        .join(" ← ");
    assert!(
        doc.contains(&drawn),
        "docs/ARCHITECTURE.md should draw the layers as:\n{drawn}"
    );
}

#[test]
fn a_back_edge_is_caught() {
    let file = |path: &str, code: &str| (path.to_string(), code.to_string());
    // The real tree plus one file of `model` that reaches up into `graph`.
    let mut files = crate_sources();
    files.push(file(
        "model/extra.rs",
        "use crate::error::Result;\nuse crate::{ontology::Role, graph::ReadTxn};\n",
    ));
    let bad = back_edges(&files);
    assert!(
        bad.iter().any(|b| b.contains("model → graph")),
        "not caught: {bad:?}"
    );
    assert!(bad.iter().any(|b| b.contains("model → ontology")));
    // Sideways within a layer, through a re-export, and in a test module
    // (allowed).
    let bad = back_edges(&[
        file("auth.rs", "fn f() { crate::crashpoint::hit(\"x\"); }"),
        file("query/x.rs", "use crate::Database;"),
        file(
            "keys/mod.rs",
            "use crate::model::Id;\n#[cfg(test)]\nmod tests { use crate::db::Database; }",
        ),
    ]);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].contains("auth → crashpoint"));
    assert!(bad[1].contains("crate::Database is not a module"));
}

/// The capability to write platform tables is made only on the org, person,
/// vocabulary and token paths, and for failed-login counts (kept in the
/// store when servers share it).
#[test]
fn only_the_org_person_vocabulary_token_and_login_paths_write_platform_tables() {
    let mut makers: Vec<String> = crate_sources()
        .into_iter()
        .filter(|(path, code)| {
            path != "storage/txn.rs"
                && !path.ends_with("/tests.rs")
                && code
                    .lines()
                    .take_while(|l| !l.trim_start().starts_with("#[cfg(test)]"))
                    .any(|l| l.contains("PlatformTables::grant()"))
        })
        .map(|(path, _)| path)
        .collect();
    makers.sort();
    assert_eq!(
        makers,
        [
            "graph/logins.rs",
            "graph/orgs.rs",
            "graph/people.rs",
            "graph/tokens.rs"
        ],
        "{makers:?}"
    );
}
