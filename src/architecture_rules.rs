//! Unit tests that keep the shape ARCHITECTURE.md describes: no module
//! imports another that imports it back, no file in `src` over 400 lines,
//! no function over 60 lines. They read the source as text: `use crate::…`,
//! `use super::…` and inline `crate::…` paths name what a module imports.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::Path,
};

const MAX_FILE_LINES: usize = 400;
const MAX_FN_LINES: usize = 60;

/// Every source file: its module's path (`delivery::lease`), and its text.
fn sources() -> Vec<(String, String)> {
    let mut found = Vec::new();
    collect(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")),
        &[],
        &mut found,
    );
    found
}

/// Every module's source, by path, without its tests.
fn modules() -> BTreeMap<String, String> {
    sources()
        .into_iter()
        .map(|(module, text)| {
            let without_tests = text.split("#[cfg(test)]").next().unwrap_or("").to_owned();
            (module, without_tests)
        })
        .collect()
}

fn collect(dir: &Path, prefix: &[String], found: &mut Vec<(String, String)>) {
    for entry in fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("src is readable").path();
        let name = path.file_stem().and_then(|n| n.to_str()).unwrap_or("");
        let mut segments = prefix.to_vec();
        if path.is_dir() {
            segments.push(name.to_owned());
            collect(&path, &segments, found);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        if !matches!(name, "mod" | "lib" | "main") {
            segments.push(name.to_owned());
        }
        let text = fs::read_to_string(&path).expect("a source file is readable");
        found.push((segments.join("::"), text));
    }
}

/// The paths a module's imports name, as segments from the crate root.
fn imported_paths(module: &str, source: &str) -> Vec<Vec<String>> {
    let parent: Vec<String> = module
        .split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let parent = &parent[..parent.len().saturating_sub(1)];
    let mut paths = Vec::new();
    for statement in source.split(';') {
        let Some(at) = statement.find("use ") else {
            continue;
        };
        let tree: String = statement[at + 4..].split_whitespace().collect();
        for (root, base) in [("crate::", &[][..]), ("super::", parent)] {
            if let Some(rest) = tree.strip_prefix(root) {
                expand(base, rest, &mut paths);
            }
        }
    }
    // Inline paths, such as `crate::metrics::emails(…)`.
    for piece in source.split("crate::").skip(1) {
        let path: String = piece
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        paths.push(path.split("::").map(str::to_owned).collect());
    }
    paths
}

/// Expands a use tree (`a::{b, c::d}`) under `base` into whole paths.
fn expand(base: &[String], tree: &str, paths: &mut Vec<Vec<String>>) {
    let (head, group) = match tree.find('{') {
        Some(open) => (
            &tree[..open],
            Some(&tree[open + 1..tree.rfind('}').unwrap_or(tree.len())]),
        ),
        None => (tree, None),
    };
    let mut prefix = base.to_vec();
    prefix.extend(
        head.split("::")
            .filter(|s| !s.is_empty())
            .map(|s| s.split(" as ").next().unwrap_or(s).to_owned()),
    );
    let Some(group) = group else {
        paths.push(prefix);
        return;
    };
    let (mut depth, mut start) = (0, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand(&prefix, &group[start..i], paths);
                start = i + 1;
            }
            _ => {}
        }
    }
    expand(&prefix, &group[start..], paths);
}

/// Which modules each module imports; a module's own parents do not count
/// (a child may use what its parent declares or re-exports).
fn imports(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for (module, source) in modules {
        let mut targets = BTreeSet::new();
        for path in imported_paths(module, source) {
            let known = (1..=path.len())
                .rev()
                .map(|n| path[..n].join("::"))
                .find(|candidate| modules.contains_key(candidate));
            if let Some(target) = known
                && target != *module
                && !module.starts_with(&format!("{target}::"))
            {
                targets.insert(target);
            }
        }
        graph.insert(module.clone(), targets);
    }
    graph
}

/// Whether `to` is reachable from `from`.
fn reaches(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut next = vec![from.to_owned()];
    while let Some(module) = next.pop() {
        for target in graph.get(&module).into_iter().flatten() {
            if target == to {
                return true;
            }
            if seen.insert(target.clone()) {
                next.push(target.clone());
            }
        }
    }
    false
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = imports(&modules());
    let cycles: Vec<String> = graph
        .iter()
        .flat_map(|(module, targets)| {
            targets
                .iter()
                .filter(|target| reaches(&graph, target, module))
                .map(move |target| format!("{module} -> {target}"))
        })
        .collect();
    assert!(cycles.is_empty(), "imports on a cycle: {cycles:#?}");
    // The rule can fail: the graph does see imports.
    assert!(graph["delivery::worker"].contains("store::outbox"));
}

#[test]
fn no_source_file_is_over_the_limit() {
    let long: Vec<String> = sources()
        .into_iter()
        .map(|(module, text)| (module, text.lines().count()))
        .filter(|(_, lines)| *lines > MAX_FILE_LINES)
        .map(|(module, lines)| format!("{module}: {lines}"))
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_FILE_LINES} lines: {long:#?}"
    );
}

#[test]
fn no_function_is_over_the_limit() {
    let mut long = Vec::new();
    for (module, source) in modules() {
        let lines: Vec<&str> = source.lines().collect();
        for (start, line) in lines.iter().enumerate() {
            let code = line.trim_start();
            let signature = ["pub(crate) ", "pub(super) ", "pub ", "const ", "async "]
                .iter()
                .fold(code, |rest, word| rest.strip_prefix(word).unwrap_or(rest));
            if !signature.starts_with("fn ") || code.ends_with(';') {
                continue;
            }
            let indent = &line[..line.len() - code.len()];
            let closing = format!("{indent}}}");
            let end = lines[start..]
                .iter()
                .position(|l| l.trim_end() == closing)
                .map_or(lines.len(), |n| start + n);
            let length = end - start + 1;
            if length > MAX_FN_LINES {
                long.push(format!("{module}:{}: {length} lines", start + 1));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines: {long:#?}"
    );
}
