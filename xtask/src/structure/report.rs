//! What a broken rule looks like to the person who has to fix it: a
//! `file:line: message`, with the details under it.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use super::{
    graph::{Circle, Edges},
    tree::CrateTree,
};

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    ImportCircle,
    LongFile,
    LongFunction,
}

#[derive(Debug)]
pub struct Violation {
    pub rule: Rule,
    /// Relative to the workspace root.
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
    /// Lines shown indented under the message.
    pub details: Vec<String>,
}

impl Violation {
    pub fn new(rule: Rule, path: &Path, line: usize, message: String) -> Self {
        Violation {
            rule,
            path: path.to_path_buf(),
            line,
            message,
            details: Vec::new(),
        }
    }

    /// A circle of `tree`'s files, located at its first edge and listing
    /// every edge inside it with the use that makes it.
    pub fn circle(tree: &CrateTree, circle: &Circle, edges: &Edges) -> Self {
        let path = |file: usize| tree.files[file].path.display().to_string();
        let mut files: Vec<String> = circle.files.iter().map(|&file| path(file)).collect();
        files.sort();
        let mut inside = circle.edges.clone();
        inside.sort_by_key(|&(from, to)| (&tree.files[from].path, edges[&(from, to)].line));
        let details: Vec<String> = inside
            .iter()
            .map(|&(from, to)| {
                let used = &edges[&(from, to)];
                format!(
                    "{}:{}: uses `{}` -> {}",
                    path(from),
                    used.line,
                    used.path,
                    path(to)
                )
            })
            .collect();
        let (from, to) = inside[0];
        let message = format!(
            "import circle of {} files (crate {}): {}",
            files.len(),
            tree.root.display(),
            files.join(", ")
        );
        Violation {
            rule: Rule::ImportCircle,
            path: tree.files[from].path.clone(),
            line: edges[&(from, to)].line,
            message,
            details,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)?;
        for detail in &self.details {
            write!(f, "\n    {detail}")?;
        }
        Ok(())
    }
}

/// "2 import circles, 1 long file": how many of each rule were broken.
pub fn summary(violations: &[Violation]) -> String {
    let count = |rule: Rule, one: &str, many: &str| {
        let n = violations.iter().filter(|v| v.rule == rule).count();
        (n > 0).then(|| format!("{n} {}", if n == 1 { one } else { many }))
    };
    let parts: Vec<String> = [
        count(Rule::ImportCircle, "import circle", "import circles"),
        count(Rule::LongFile, "long file", "long files"),
        count(Rule::LongFunction, "long function", "long functions"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        "no violations".to_owned()
    } else {
        parts.join(", ")
    }
}
