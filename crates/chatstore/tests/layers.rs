//! The core's layers (ARCHITECTURE.md, "Crates and modules"): each
//! top-level module of `src/` may import (`crate::...`) only modules of the
//! layers below its own, so no import cycle can form between them. This
//! test reads the sources and fails naming the import that breaks the
//! order; a new module must be placed in `LAYERS`.
#![allow(clippy::unwrap_used)] // a failed unwrap here is a failed test or run

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Bottom to top. A module imports only modules of earlier rows.
const LAYERS: &[&[&str]] = &[
    &["error", "model", "keys"],
    &["backend", "codec", "json", "limits", "trust"],
    &["options"],
    &["storage"],
    &["text"],
    &["write", "read"],
    &["render"],
    &["check", "jsonl"],
    &["command"],
    &["engine"],
    &["ipc"],
    &["store", "demo", "testing"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|row| row.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a source file names through `crate::` (comments
/// and its unit tests left out).
fn imports(text: &str) -> BTreeSet<String> {
    let text = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default();
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a, b::c, d::{e, f}}`: the names at depth 1.
            let mut depth = 1;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => start = true,
                    c if c.is_whitespace() => {}
                    _ if start && depth == 1 => {
                        found.insert(ident(&group[i..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(ident(rest));
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

#[test]
fn every_module_imports_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" {
            continue;
        }
        seen.insert(top.clone());
        let Some(own) = layer_of(&top) else {
            problems.push(format!("{}: module `{top}` is in no layer", rel.display()));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for dep in imports(&text) {
            if dep == top {
                continue;
            }
            match layer_of(&dep) {
                Some(l) if l < own => {}
                // Not a module of this crate (a re-exported item at the
                // root, such as `crate::Store` in docs): not a layer edge.
                None if !src.join(format!("{dep}.rs")).exists() && !src.join(&dep).is_dir() => {}
                _ => problems.push(format!(
                    "{}: `{top}` imports `{dep}`, which is not in a layer below it",
                    rel.display()
                )),
            }
        }
    }
    for row in LAYERS {
        for m in *row {
            assert!(seen.contains(*m), "LAYERS names `{m}`, which has no source");
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_import_reader_sees_grouped_and_plain_imports() {
    let text = "use crate::{a::B, c, d::{e, f}};\nuse crate::g::H; // crate::comment\nfn x() { crate::i::j(); }\n#[cfg(test)]\nmod tests { use crate::k; }";
    let found: Vec<_> = imports(text).into_iter().collect();
    assert_eq!(found, ["a", "c", "d", "g", "i"]);
}
