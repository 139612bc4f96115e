//! The crate's modules depend on each other without cycles, at every level:
//! the top-level modules among themselves, and the files of every folder of
//! src/ among themselves. The records that cross module borders sit below the
//! modules that exchange them. Read from the sources (comments left out).

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
    files.sort();
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

fn first_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    graph
        .keys()
        .find_map(|unit| cycle_from(graph, unit, &mut Vec::new()))
}

#[test]
fn top_level_modules_have_no_dependency_cycle() {
    let graph = module_graph();
    assert!(graph.contains_key("producer") && graph.contains_key("record"));
    if let Some(cycle) = first_cycle(&graph) {
        panic!("dependency cycle: {}", cycle.join(" -> "));
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

// ---- Inside folders ----
//
// A folder's units are its child modules (`x.rs` together with `x/`) and its
// front: the folder's own module file (`mod.rs`, or `x.rs` beside `x/`). A
// unit depends on another when one of its files names a path into it:
// `crate::…`, `super::…`, `self::…`, or in the front a child's name. A
// child naming an item of the front depends on the child the front imported
// it from, else on the front. The front's `pub use` lines are the folder's
// face, not a dependency. Unit tests (`mod tests`) are left out.

/// One source file: its module path from the crate root, and its text
/// without comments.
struct Source {
    module: Vec<String>,
    text: String,
    /// True for a folder's own module file (`mod.rs`, `lib.rs`, or `x.rs`
    /// beside a folder `x/`).
    is_front: bool,
}

fn sources() -> Vec<Source> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    rust_files(&src)
        .into_iter()
        .map(|file| {
            let relative = file.strip_prefix(&src).expect("under src");
            let mut module: Vec<String> = relative
                .with_extension("")
                .iter()
                .map(|part| part.to_str().expect("a UTF-8 path").to_string())
                .collect();
            let stem = module.last().cloned().unwrap_or_default();
            let is_front = stem == "mod" || stem == "lib" || file.with_extension("").is_dir();
            if stem == "mod" || stem == "lib" {
                module.pop();
            }
            let text = without_comments(&std::fs::read_to_string(&file).expect("readable"));
            Source {
                module,
                text,
                is_front,
            }
        })
        .filter(|s| s.module.last().is_none_or(|m| m != "tests"))
        .collect()
}

fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Inline `mod name { … }` blocks of `text`: (name, start, end) byte spans.
fn inline_modules(text: &str) -> Vec<(String, usize, usize)> {
    let mut spans = Vec::new();
    let bytes = text.as_bytes();
    for (at, _) in text.match_indices("mod ") {
        if at > 0 && is_ident(bytes[at - 1] as char) {
            continue;
        }
        let rest = &text[at + 4..];
        let name: String = rest.chars().take_while(|c| is_ident(*c)).collect();
        let after = rest[name.len()..].trim_start();
        if name.is_empty() || !after.starts_with('{') {
            continue;
        }
        let open = text.len() - after.len();
        if let Some(close) = matching_brace(text, open) {
            spans.push((name, open, close));
        }
    }
    spans
}

/// Where the `{` at `open` is closed, skipping braces inside string and
/// character literals.
fn matching_brace(text: &str, open: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let (mut depth, mut at) = (0usize, open);
    while at < bytes.len() {
        match bytes[at] {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(at);
                }
            }
            b'"' => {
                // A raw string (`r"…"`, `r#"…"#`) ends at its quote and hashes;
                // another at the first unescaped quote.
                let hashes = bytes[..at].iter().rev().take_while(|&&b| b == b'#').count();
                let raw = at > hashes && bytes[at - hashes - 1] == b'r';
                let end = if raw {
                    let closing = format!("\"{}", "#".repeat(hashes));
                    text[at + 1..]
                        .find(&closing)
                        .map(|n| at + 1 + n + closing.len() - 1)
                } else {
                    let mut end = at + 1;
                    while end < bytes.len() && bytes[end] != b'"' {
                        end += if bytes[end] == b'\\' { 2 } else { 1 };
                    }
                    Some(end)
                };
                at = end?;
            }
            // A character literal holding a brace or a quote.
            b'\'' if bytes.get(at + 2) == Some(&b'\'') => at += 2,
            b'\'' if bytes.get(at + 1) == Some(&b'\\') => {
                at += bytes[at + 2..]
                    .iter()
                    .position(|&b| b == b'\'')
                    .map_or(0, |n| n + 2);
            }
            _ => {}
        }
        at += 1;
    }
    None
}

/// The first identifier of each top-level item of a `{ … }` use list that
/// starts at `text[0] == '{'`.
fn use_list_heads(text: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let (mut depth, mut expecting) = (0, true);
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '{' => {
                depth += 1;
                if depth == 1 {
                    expecting = true;
                }
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => expecting = true,
            c if depth == 1 && expecting && (is_ident(c) || c == '*') => {
                let head: String = text[at..]
                    .chars()
                    .take_while(|c| is_ident(*c) || *c == '*')
                    .collect();
                for _ in 1..head.chars().count() {
                    chars.next();
                }
                heads.push(head);
                expecting = false;
            }
            _ => {}
        }
    }
    heads
}

/// A path named in a file, resolved from the crate root, and whether it is
/// part of a `pub use` (a re-export).
struct Named {
    path: Vec<String>,
    reexport: bool,
}

/// Every path `source` names that starts at `crate`, `super` or `self`, or,
/// in a front, at one of `children`.
fn named_paths(source: &Source, children: &BTreeSet<String>) -> Vec<Named> {
    let text = &source.text;
    let bytes = text.as_bytes();
    let spans = inline_modules(text);
    let mut named = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let starts_word = at == 0 || !(is_ident(bytes[at - 1] as char) || bytes[at - 1] == b':');
        let word: String = text[at..].chars().take_while(|c| is_ident(*c)).collect();
        if !starts_word || word.is_empty() || !text[at + word.len()..].starts_with("::") {
            at += text[at..].chars().next().map_or(1, char::len_utf8);
            continue;
        }
        // The module this occurrence is written in (inline modules included).
        let mut module = source.module.clone();
        for (name, start, end) in &spans {
            if *start < at && at < *end {
                module.push(name.clone());
            }
        }
        let mut base = match word.as_str() {
            "crate" => Some(Vec::new()),
            "self" => Some(module.clone()),
            "super" => Some(module[..module.len().saturating_sub(1)].to_vec()),
            child if source.is_front && children.contains(child) && module == source.module => {
                let mut base = module.clone();
                base.push(child.to_string());
                Some(base)
            }
            _ => None,
        };
        let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
        let reexport = text[line_start..at].trim_start().starts_with("pub")
            && text[line_start..at].contains("use ");
        // Follow `::segment` (and `super`s) as far as they go.
        let mut end = at + word.len();
        while let Some(base_path) = base.as_mut() {
            if !text[end..].starts_with("::") {
                break;
            }
            end += 2;
            if text[end..].starts_with('{') {
                for head in use_list_heads(&text[end..]) {
                    let mut path = base_path.clone();
                    if head != "self" {
                        path.push(head);
                    }
                    named.push(Named { path, reexport });
                }
                base = None;
                break;
            }
            let segment: String = text[end..]
                .chars()
                .take_while(|c| is_ident(*c) || *c == '*')
                .collect();
            if segment.is_empty() {
                break;
            }
            end += segment.len();
            if segment == "super" {
                base_path.pop();
            } else {
                base_path.push(segment);
            }
        }
        if let Some(path) = base {
            named.push(Named { path, reexport });
        }
        at = end.max(at + 1);
    }
    named
}

/// For the folder at `folder` (a module path): unit -> units it depends on.
fn folder_graph(folder: &[String], sources: &[Source]) -> BTreeMap<String, BTreeSet<String>> {
    const FRONT: &str = "(front)";
    let inside = |module: &[String]| module.len() > folder.len() && module.starts_with(folder);
    let children: BTreeSet<String> = sources
        .iter()
        .filter(|s| inside(&s.module))
        .map(|s| s.module[folder.len()].clone())
        .collect();
    let front = sources.iter().find(|s| s.is_front && s.module == folder);
    // Names the front imports from a child: a child naming them through the
    // front depends on that child.
    let mut imported_from = BTreeMap::new();
    if let Some(front) = front {
        for named in named_paths(front, &children) {
            if inside(&named.path) && named.path.len() > folder.len() + 1 {
                let (child, item) = (&named.path[folder.len()], named.path.last().unwrap());
                imported_from.insert(item.clone(), child.clone());
            }
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = children
        .iter()
        .map(|c| (c.clone(), BTreeSet::new()))
        .collect();
    graph.insert(FRONT.to_string(), BTreeSet::new());
    for source in sources {
        let unit = if source.module == folder {
            FRONT.to_string()
        } else if inside(&source.module) {
            source.module[folder.len()].clone()
        } else {
            continue;
        };
        for named in named_paths(source, &children) {
            if !named.path.starts_with(folder) || named.path.len() == folder.len() {
                continue;
            }
            if unit == FRONT && named.reexport {
                continue;
            }
            let head = &named.path[folder.len()];
            let target = if children.contains(head) {
                head.clone()
            } else if let Some(child) = imported_from.get(head) {
                child.clone()
            } else {
                FRONT.to_string()
            };
            if target != unit {
                graph.get_mut(&unit).expect("a unit").insert(target);
            }
        }
    }
    graph
}

#[test]
fn no_folder_of_src_has_an_import_cycle_among_its_files() {
    let sources = sources();
    let folders: BTreeSet<Vec<String>> = sources
        .iter()
        .filter(|s| s.is_front && !s.module.is_empty())
        .map(|s| s.module.clone())
        .collect();
    assert!(folders.contains(&vec!["server".to_string()]), "{folders:?}");
    let mut cycles = Vec::new();
    for folder in &folders {
        if let Some(cycle) = first_cycle(&folder_graph(folder, &sources)) {
            cycles.push(format!("src/{}: {}", folder.join("/"), cycle.join(" -> ")));
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

/// The reader above sees what it must: a circle written into a folder is
/// found, and a child's use of what the front re-exports is not one.
#[test]
fn the_folder_reader_finds_a_circle_and_only_a_circle() {
    let source = |module: &[&str], is_front: bool, text: &str| Source {
        module: module.iter().map(|m| m.to_string()).collect(),
        text: text.to_string(),
        is_front,
    };
    let folder = vec!["f".to_string()];
    let circle = [
        source(&["f"], true, "mod a;\nmod b;\npub use a::Thing;\n"),
        source(&["f", "a"], false, "use super::b::{self, Other};\n"),
        source(&["f", "b"], false, "fn g() { crate::f::a::h(); }\n"),
    ];
    let graph = folder_graph(&folder, &circle);
    assert_eq!(graph["a"], BTreeSet::from(["b".to_string()]));
    assert!(first_cycle(&graph).is_some(), "{graph:?}");

    let no_circle = [
        source(&["f"], true, "mod a;\nmod b;\npub use a::Thing;\n"),
        source(&["f", "a"], false, "pub struct Thing;\n"),
        source(
            &["f", "b"],
            false,
            "use super::Thing;\nmod tests {\n use super::*;\n}\n",
        ),
    ];
    let graph = folder_graph(&folder, &no_circle);
    assert_eq!(graph["b"], BTreeSet::from(["a".to_string()]), "{graph:?}");
    assert!(first_cycle(&graph).is_none(), "{graph:?}");

    // A brace inside a string does not end the inline module early or late.
    let strings = [
        source(&["f"], true, "mod a;\nmod b;\nfn go() { a::run(); }\n"),
        source(
            &["f", "a"],
            false,
            "fn s() -> &'static str { \"{\" }\nfn c() -> char { '}' }\n\
             mod tests {\n use super::*;\n fn t() { let _ = (\"x{\", '{', r#\"\"{\"#); }\n}\n",
        ),
        source(&["f", "b"], false, ""),
    ];
    let graph = folder_graph(&folder, &strings);
    assert!(graph["a"].is_empty(), "{graph:?}");

    let front_item = [
        source(
            &["f"],
            true,
            "mod a;\npub struct Shared;\nfn go() { a::run(); }\n",
        ),
        source(&["f", "a"], false, "use super::Shared;\n"),
    ];
    let graph = folder_graph(&folder, &front_item);
    assert!(first_cycle(&graph).is_some(), "{graph:?}");
}

#[test]
fn the_native_layer_stands_below_every_other_module() {
    let graph = module_graph();
    assert!(
        graph["native"].is_empty(),
        "native uses {:?}",
        graph["native"]
    );
}

/// `unsafe` is denied crate-wide; the native layer is the one exception, and
/// no other module may grant itself one.
#[test]
fn only_the_native_layer_may_hold_unsafe_code() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    assert!(lib.contains("#![deny(unsafe_code)]"));
    let mut allowed = Vec::new();
    for file in rust_files(&src) {
        let text = std::fs::read_to_string(&file).expect("readable");
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            if line.contains("allow(unsafe_code)") {
                let next = lines.get(n + 1).copied().unwrap_or_default();
                allowed.push(format!("{}: {}", file.display(), next.trim()));
            }
        }
    }
    assert_eq!(allowed.len(), 1, "{allowed:?}");
    assert!(allowed[0].ends_with("mod native;"), "{allowed:?}");
}
