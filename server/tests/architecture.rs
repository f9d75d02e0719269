//! The server's layering, checked on its source text (ARCHITECTURE.md, "server"):
//!
//! - the top-level modules import one another without a cycle;
//! - `domain/` imports nothing of the server but `domain/`, and no web, SQL or async crate;
//! - `rusqlite` and SQL text appear only under `store/`;
//! - `store/` does not reach up into the layers that use it.
//!
//! A text check rather than a compiler one: Rust allows cycles between the modules of one
//! crate, so only a test can keep them out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `server/src`, with its text.
fn sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    walk(&root, &mut out);
    out.into_iter()
        .map(|(p, t)| (p.strip_prefix(&root).unwrap().to_owned(), t))
        .collect()
}

/// The top-level module a file belongs to (`lib.rs` is the root, `crate`).
fn module_of(path: &Path) -> String {
    let first = path
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    match first.strip_suffix(".rs") {
        Some("lib") => "crate".to_owned(),
        Some(name) => name.to_owned(),
        None => first.into_owned(),
    }
}

/// The text without comments (line comments, doc comments) so that prose naming a module or a
/// SQL keyword is not counted, and without the unit tests at the bottom of the file: a test
/// may set rows up or tamper with them the way an attacker with the file would.
fn code(text: &str) -> String {
    let text = text
        .split("\n#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or(text);
    text.lines()
        .map(|line| match line.find("//") {
            // A `//` inside a string literal (a URL) is rare in this code; a line that holds
            // one keeps its text up to the first `//`, which only loses a little.
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the root re-exports (`pub use crate::state::{AppState, ..}` in lib.rs): the name and
/// the module that defines it, so that `crate::AppState` counts as a use of `state`.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use crate::") else {
            continue;
        };
        let Some((module, names)) = rest.split_once("::") else {
            continue;
        };
        let names = names
            .trim_end_matches(';')
            .trim_matches(|c| c == '{' || c == '}');
        for name in names.split(',') {
            out.insert(name.trim().to_owned(), module.to_owned());
        }
    }
    out
}

/// The top-level modules that `text` names through `crate::NAME`; a name the root re-exports
/// counts as its defining module, any other item of the root as `crate`.
fn imports(
    text: &str,
    modules: &BTreeSet<String>,
    reexports: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let code = code(text);
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if modules.contains(&name) {
            found.insert(name);
        } else if let Some(module) = reexports.get(&name) {
            found.insert(module.clone());
        } else if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{A, B}`: each name on its own.
            let group: String = group.chars().take_while(|c| *c != '}').collect();
            for name in group.split(',').map(str::trim) {
                let head = name.split("::").next().unwrap_or("");
                found.insert(if modules.contains(head) {
                    head.to_owned()
                } else {
                    reexports
                        .get(head)
                        .cloned()
                        .unwrap_or_else(|| "crate".to_owned())
                });
            }
        } else if !name.is_empty() {
            found.insert("crate".to_owned());
        }
    }
    found
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let files = sources();
    let modules: BTreeSet<String> = files.iter().map(|(p, _)| module_of(p)).collect();
    let lib = &files
        .iter()
        .find(|(p, _)| p == Path::new("lib.rs"))
        .unwrap()
        .1;
    let reexports = root_reexports(lib);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in &files {
        let from = module_of(path);
        let to = imports(text, &modules, &reexports);
        graph
            .entry(from.clone())
            .or_default()
            .extend(to.into_iter().filter(|m| *m != from));
    }
    // The root declares every module; only what it *uses* (AppState's fields, launch) counts,
    // which `imports` already found in lib.rs. `mod x;` lines are not `crate::` paths.
    graph
}

/// Every module `start` reaches.
fn reach(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![start.to_owned()];
    while let Some(m) = todo.pop() {
        for next in graph.get(&m).into_iter().flatten() {
            if seen.insert(next.clone()) {
                todo.push(next.clone());
            }
        }
    }
    seen
}

#[test]
fn top_level_modules_import_one_another_without_a_cycle() {
    let graph = graph();
    let mut cycles = Vec::new();
    for (module, deps) in &graph {
        for dep in deps {
            if reach(&graph, dep).contains(module) {
                cycles.push(format!("{module} -> {dep} -> ... -> {module}"));
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_domain_is_pure() {
    for (path, text) in sources() {
        if module_of(&path) != "domain" {
            continue;
        }
        let code = code(&text);
        let mut rest = code.as_str();
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            assert!(
                rest.starts_with("domain::"),
                "{} imports crate::{}",
                path.display(),
                rest.lines().next().unwrap_or("")
            );
        }
        for forbidden in [
            "axum",
            "rusqlite",
            "tokio",
            "hyper",
            "maud",
            "SystemTime",
            "Instant::now",
        ] {
            assert!(
                !code.contains(forbidden),
                "{} uses {forbidden}",
                path.display()
            );
        }
    }
}

/// SQL statements as they start in a string literal.
const SQL: &[&str] = &[
    "\"SELECT ",
    "\"INSERT ",
    "\"UPDATE ",
    "\"DELETE ",
    "\"CREATE ",
    "\"PRAGMA ",
    "\"WITH ",
    "\"BEGIN",
    "\"SAVEPOINT",
];

#[test]
fn rusqlite_and_sql_stay_in_the_store() {
    let mut found = Vec::new();
    for (path, text) in sources() {
        if module_of(&path) == "store" {
            continue;
        }
        let code = code(&text);
        if code.contains("rusqlite") {
            found.push(format!("{}: rusqlite", path.display()));
        }
        for sql in SQL {
            if code.contains(sql) {
                found.push(format!("{}: SQL {sql}", path.display()));
            }
        }
    }
    assert!(found.is_empty(), "outside store/:\n{}", found.join("\n"));
}

#[test]
fn the_store_does_not_reach_up() {
    let graph = graph();
    let up: BTreeSet<&str> = [
        "api", "web", "service", "auth", "audit", "jobs", "metrics", "cli", "crate", "state",
    ]
    .into();
    let reached: Vec<_> = graph["store"]
        .iter()
        .filter(|m| up.contains(m.as_str()))
        .collect();
    assert!(reached.is_empty(), "store imports {reached:?}");
}
