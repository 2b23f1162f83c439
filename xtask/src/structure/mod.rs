//! `cargo xtask structure`: keeps issue 19's "Done when" rules true on the
//! workspace's own sources. No import circle between the files of a crate;
//! no source file over 900 lines outside tests; no function over 80 lines in
//! the data plane or 100 elsewhere. The limits are in [`lengths`].
//!
//! Sources are read with syn, following `mod` declarations from every
//! crate root, so what is checked is what rustc compiles.

mod attrs;
mod graph;
mod lengths;
mod report;
mod targets;
mod tree;

#[cfg(test)]
mod tests;

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Result, bail};

use self::{
    report::Violation,
    targets::Target,
    tree::{CrateTree, Reader},
};

/// Checks the workspace at `workspace`, prints each violation, and fails if
/// there was any.
pub fn run(workspace: &Path) -> Result<()> {
    let targets = targets::discover(workspace)?;
    let read = |path: &Path| fs::read_to_string(workspace.join(path)).ok();
    let violations = check(&targets, &read)?;
    for violation in &violations {
        println!("{violation}");
    }
    let summary = report::summary(&violations);
    if !violations.is_empty() {
        bail!("structure check: {summary}");
    }
    eprintln!("structure check: {summary}");
    Ok(())
}

/// Every violation in `targets`, circles first, then long files, then long
/// functions. A file shared by several crates (a test fixture module) is
/// reported once.
fn check(targets: &[Target], read: Reader) -> Result<Vec<Violation>> {
    let mut violations = Vec::new();
    let mut circles_seen = BTreeSet::new();
    let mut lengths_seen = BTreeSet::new();
    for target in targets {
        let tree = CrateTree::load(target, read)?;
        let edges = graph::edges(&tree);
        for circle in graph::circles(tree.files.len(), &edges) {
            let files: Vec<PathBuf> = circle
                .files
                .iter()
                .map(|&f| tree.files[f].path.clone())
                .collect();
            if circles_seen.insert(files) {
                violations.push(Violation::circle(&tree, &circle, &edges));
            }
        }
        let long = lengths::long_files(&tree).into_iter();
        for violation in long.chain(lengths::long_functions(&tree)) {
            if lengths_seen.insert(violation.to_string()) {
                violations.push(violation);
            }
        }
    }
    violations.sort_by(|a, b| (&a.rule, &a.path, a.line).cmp(&(&b.rule, &b.path, b.line)));
    Ok(violations)
}
