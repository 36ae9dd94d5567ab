//! The module layering holds: no two top-level modules of `src/` reach each other through
//! `crate::` paths (an import circle across files), so each layer can be read, tested and
//! changed with only the layers below it in mind (docs/architecture.md#module-map).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules its non-test code names through `crate::`.
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            // Unit-test modules in their own files (`tests.rs`, `properties.rs`) may reach anywhere.
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if path.extension().is_none_or(|e| e != "rs") || name == "tests.rs" || name == "properties.rs" {
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            let module = rel.split('/').next().unwrap().trim_end_matches(".rs").to_owned();
            if module == "lib" || module == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
            for line in code.lines().map(|l| l.split("//").next().unwrap()) {
                for (i, _) in line.match_indices("crate::") {
                    let name: String = line[i + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if !name.is_empty() && name != module {
                        edges.entry(module.clone()).or_default().insert(name);
                    }
                }
            }
        }
    }
    edges
}

fn reaches(edges: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_owned()];
    while let Some(m) = stack.pop() {
        if m == to {
            return true;
        }
        if seen.insert(m.clone()) {
            stack.extend(edges.get(&m).into_iter().flatten().cloned());
        }
    }
    false
}

#[test]
fn no_import_circle_crosses_files() {
    let edges = edges();
    assert!(edges.len() > 10, "the scan found the modules: {edges:?}");
    let circles: Vec<(String, String)> = edges
        .iter()
        .flat_map(|(a, targets)| targets.iter().map(move |b| (a.clone(), b.clone())))
        .filter(|(a, b)| reaches(&edges, b, a))
        .collect();
    assert!(circles.is_empty(), "modules that reach each other: {circles:?}");
}
