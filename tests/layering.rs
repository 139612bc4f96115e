//! The crate's top-level modules depend on each other without cycles, and the
//! records that cross module borders sit below the modules that exchange them.
//! Read from the sources: every `crate::<module>` outside comments counts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module name -> the other top-level modules it refers to.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(&src).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a UTF-8 file name")
            .to_string();
        if name == "lib" {
            continue; // the root re-exports everything
        }
        let mut uses = BTreeSet::new();
        for file in rust_files(&path) {
            let text = std::fs::read_to_string(&file).expect("a readable source file");
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (at, _) in line.match_indices("crate::") {
                    let used: String = line[at + "crate::".len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    if !used.is_empty() && used != name {
                        uses.insert(used);
                    }
                }
            }
        }
        graph.insert(name, uses);
    }
    graph
}

fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).expect("a readable directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// A cycle through `from`, if there is one, as the path that closes it.
fn cycle_from(
    graph: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    if let Some(start) = path.iter().position(|m| m == from) {
        let mut cycle = path[start..].to_vec();
        cycle.push(from.to_string());
        return Some(cycle);
    }
    path.push(from.to_string());
    for next in graph.get(from).into_iter().flatten() {
        if let Some(cycle) = cycle_from(graph, next, path) {
            return Some(cycle);
        }
    }
    path.pop();
    None
}

#[test]
fn top_level_modules_have_no_dependency_cycle() {
    let graph = module_graph();
    assert!(graph.contains_key("producer") && graph.contains_key("record"));
    for module in graph.keys() {
        if let Some(cycle) = cycle_from(&graph, module, &mut Vec::new()) {
            panic!("dependency cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn records_depend_on_no_client_module() {
    let graph = module_graph();
    let uses = &graph["record"];
    for client in [
        "producer",
        "consumer",
        "interceptor",
        "server",
        "component",
        "app",
    ] {
        assert!(!uses.contains(client), "record uses {client}: {uses:?}");
    }
    for exchanger in ["producer", "consumer", "interceptor"] {
        assert!(
            graph[exchanger].contains("record"),
            "{exchanger} does not use record"
        );
    }
}
