//! The crate roots of the workspace, found the way Cargo finds targets by
//! default (every package here relies on that layout).

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};

/// One crate root: a library, binary, build script or test binary.
pub struct Target {
    /// Relative to the workspace root.
    pub root: PathBuf,
    /// An integration test or bench: its code is all test code.
    pub is_test: bool,
}

/// Every target of every package directly under `workspace`.
pub fn discover(workspace: &Path) -> Result<Vec<Target>> {
    let mut targets = Vec::new();
    for package in sorted_entries(workspace)? {
        if !workspace.join(&package).join("Cargo.toml").is_file() {
            continue;
        }
        let mut add = |root: PathBuf, is_test| targets.push(Target { root, is_test });
        for file in ["build.rs", "src/lib.rs", "src/main.rs"] {
            let root = package.join(file);
            if workspace.join(&root).is_file() {
                add(root, false);
            }
        }
        for (dir, is_test) in [
            ("src/bin", false),
            ("examples", false),
            ("tests", true),
            ("benches", true),
        ] {
            for root in targets_in(workspace, &package.join(dir))? {
                add(root, is_test);
            }
        }
    }
    Ok(targets)
}

/// Cargo's auto-discovery in one target directory: `NAME.rs` and
/// `NAME/main.rs`.
fn targets_in(workspace: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    if !workspace.join(dir).is_dir() {
        return Ok(Vec::new());
    }
    let mut roots = Vec::new();
    for entry in sorted_entries(&workspace.join(dir))? {
        let path = dir.join(&entry);
        let on_disk = workspace.join(&path);
        if on_disk.is_file() && path.extension().is_some_and(|ext| ext == "rs") {
            roots.push(path);
        } else if on_disk.join("main.rs").is_file() {
            roots.push(path.join("main.rs"));
        }
    }
    Ok(roots)
}

/// Names in `dir`, sorted so reports come out in a stable order.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let listing = fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    let mut names = Vec::new();
    for entry in listing {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        names.push(PathBuf::from(entry.file_name()));
    }
    names.sort();
    Ok(names)
}
