//! The runtime's layering, checked: every file's `crate::…` paths (in `use` lines and inline) name only
//! its own layer or a lower one, and layers that share a rank (the faces, the bottom) never import each
//! other. A new upward import fails this test with the file, the line and the two layers.

use std::path::{Path, PathBuf};

/// The layers of `runtime/src`, lowest first. Modules in one entry share a rank and must not import
/// each other.
const LAYERS: &[&[&str]] = &[
    &["env", "config"],
    &["security", "telemetry"],
    &["rpc"],
    &["raft"],
    &["node"],
    &["http", "dns"],
    &["agent"],
    &["cli"],
    &["main"],
];

/// The rank of a top-level module, or None for a name that is not a layer.
fn rank_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The top-level module a file of `runtime/src` belongs to: its first folder, or its stem.
fn module_of(relative: &Path) -> String {
    let first = relative.components().next().expect("a path inside src").as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_string()
}

/// The top-level modules a source line names through `crate::` (also inside `crate::{a, b::c}`), or
/// through `conclave::` when the file is the binary.
fn modules_named(line: &str, crate_name: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let prefix = format!("{crate_name}::");
    let mut named = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(&prefix) {
        let before = rest[..at].chars().next_back();
        let after = &rest[at + prefix.len()..];
        rest = after;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = after.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or("");
            let mut depth = 0;
            let mut item = String::new();
            for c in inner.chars().chain(std::iter::once(',')) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        named.push(first_ident(item.trim()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
        } else {
            named.push(first_ident(after));
        }
    }
    named.retain(|m| !m.is_empty() && m != "self");
    named
}

fn first_ident(text: &str) -> String {
    text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

/// Every violation in one file: `file:line: layer imports higher layer`.
fn violations_in(relative: &Path, text: &str) -> Vec<String> {
    let module = module_of(relative);
    let Some(own_rank) = rank_of(&module) else {
        return if module == "lib" {
            Vec::new()
        } else {
            vec![format!("{}: module {module} is in no layer", relative.display())]
        };
    };
    let crate_name = if module == "main" { "conclave" } else { "crate" };
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        for named in modules_named(line, crate_name) {
            if named == module {
                continue;
            }
            let allowed = rank_of(&named).is_some_and(|rank| rank < own_rank);
            if !allowed {
                found.push(format!(
                    "{}:{}: `{module}` imports `{named}`, which is not below it",
                    relative.display(),
                    number + 1
                ));
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_a_higher_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(files.len() > 40, "found only {} files under {}", files.len(), src.display());
    let violations: Vec<String> = files
        .iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(path).expect("read source");
            violations_in(path.strip_prefix(&src).expect("inside src"), &text)
        })
        .collect();
    assert!(violations.is_empty(), "upward imports:\n{}", violations.join("\n"));
}

#[test]
fn every_top_level_module_is_in_a_layer() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).expect("lib.rs");
    for line in lib.lines().filter(|l| l.starts_with("pub mod ") || l.starts_with("mod ")) {
        let module = line.trim_start_matches("pub ").trim_start_matches("mod ").trim_end_matches(';');
        assert!(rank_of(module).is_some(), "module {module} of lib.rs is in no layer of LAYERS");
    }
}

#[test]
fn an_upward_use_is_caught() {
    let file = Path::new("node/gossip.rs");
    assert_eq!(violations_in(file, "use crate::env::Env;\nuse crate::raft::NodeId;\n"), Vec::<String>::new());
    assert_eq!(violations_in(file, "use crate::http::router;").len(), 1);
    assert_eq!(violations_in(file, "use crate::{env::Env, dns::serve};").len(), 1);
    assert_eq!(violations_in(file, "    tokio::spawn(crate::cli::agent::run(x));").len(), 1);
    assert_eq!(violations_in(file, "// crate::http is mentioned in a comment only").len(), 0);
}

#[test]
fn siblings_of_one_rank_may_not_import_each_other() {
    assert_eq!(violations_in(Path::new("http/mod.rs"), "use crate::dns::upstream;").len(), 1);
    assert_eq!(violations_in(Path::new("config/dns.rs"), "use crate::env::Env;").len(), 1);
    assert_eq!(violations_in(Path::new("dns/mod.rs"), "use crate::node::Node;").len(), 0);
}

#[test]
fn the_binary_reaches_the_library_through_its_crate_name() {
    assert_eq!(violations_in(Path::new("main.rs"), "use conclave::cli::{Cli, Command};").len(), 0);
    assert_eq!(modules_named("use conclave::cli::{commands, Cli};", "conclave"), vec!["cli".to_string()]);
}
