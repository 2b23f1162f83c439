//! Rules 2 and 3: files and functions a person can read in one sitting.

use std::path::Path;

use syn::{
    Block, ImplItemFn, Item, ItemFn, ItemImpl, ItemTrait, Signature, TraitItemFn, Type,
    spanned::Spanned as _,
    visit::{self, Visit},
};

use super::{
    attrs,
    report::{Rule, Violation},
    tree::CrateTree,
};

/// Issue 19, "Done when": "no source file over ~900 lines outside tests".
pub const MAX_FILE_LINES: usize = 900;

/// Issue 19, "Done when": "no function over ~80 lines in the data plane".
pub const MAX_DATA_PLANE_FN_LINES: usize = 80;

/// Issue 19, "Done when": "... or ~100 in the control plane"; the same
/// limit holds for lb-common, xtask and the test library.
pub const MAX_FN_LINES: usize = 100;

/// The data plane's package directory, held to [`MAX_DATA_PLANE_FN_LINES`].
const DATA_PLANE: &str = "lb-ebpf";

/// Files over [`MAX_FILE_LINES`], not counting lines in `#[cfg(test)]`
/// items. Test files are exempt: anything under a `tests` directory (the
/// tests package, integration tests) and sibling `tests.rs` files.
pub fn long_files(tree: &CrateTree) -> Vec<Violation> {
    let mut long = Vec::new();
    for file in &tree.files {
        if tree.is_test || is_test_path(&file.path) {
            continue;
        }
        let test_lines = test_lines(&file.syntax.items);
        let counted = file.line_count.saturating_sub(test_lines);
        if counted > MAX_FILE_LINES {
            let all = if test_lines > 0 {
                format!(" ({} with its #[cfg(test)] code)", file.line_count)
            } else {
                String::new()
            };
            long.push(Violation::new(
                Rule::LongFile,
                &file.path,
                1,
                format!(
                    "file is {counted} lines{all}; the limit is {MAX_FILE_LINES} outside tests"
                ),
            ));
        }
    }
    long
}

/// Functions and methods over their crate's limit, from the `fn` line to
/// the closing brace. Closures count toward the function they are in;
/// tests (`#[test]`, `#[cfg(test)]`, integration tests) are exempt.
pub fn long_functions(tree: &CrateTree) -> Vec<Violation> {
    if tree.is_test {
        return Vec::new();
    }
    let mut long = Vec::new();
    for file in &tree.files {
        let mut finder = FnFinder {
            path: &file.path,
            limit: fn_limit(&file.path),
            owner: None,
            long: &mut long,
        };
        finder.visit_file(&file.syntax);
    }
    long
}

/// The function length limit for a file.
pub fn fn_limit(path: &Path) -> usize {
    if path.starts_with(DATA_PLANE) {
        MAX_DATA_PLANE_FN_LINES
    } else {
        MAX_FN_LINES
    }
}

fn is_test_path(path: &Path) -> bool {
    let mut dirs = path.parent().into_iter().flat_map(Path::components);
    dirs.any(|dir| dir.as_os_str() == "tests") || path.file_name().is_some_and(|n| n == "tests.rs")
}

/// Lines taken by `#[cfg(test)]` items among `items`, inline modules
/// included.
fn test_lines(items: &[Item]) -> usize {
    let mut lines = 0;
    for item in items {
        if attrs::is_cfg_test(attrs::item_attrs(item)) {
            let span = item.span();
            lines += span.end().line + 1 - span.start().line;
        } else if let Item::Mod(module) = item
            && let Some((_, inner)) = &module.content
        {
            lines += test_lines(inner);
        }
    }
    lines
}

struct FnFinder<'a> {
    path: &'a Path,
    limit: usize,
    /// The type or trait whose methods are being visited.
    owner: Option<String>,
    long: &'a mut Vec<Violation>,
}

impl FnFinder<'_> {
    fn measure(&mut self, sig: &Signature, body: &Block) {
        let start = sig.fn_token.span.start().line;
        let lines = body.brace_token.span.close().end().line + 1 - start;
        if lines > self.limit {
            let name = match &self.owner {
                Some(owner) => format!("{owner}::{}", sig.ident),
                None => sig.ident.to_string(),
            };
            let limit = self.limit;
            self.long.push(Violation::new(
                Rule::LongFunction,
                self.path,
                start,
                format!("function `{name}` is {lines} lines; the limit here is {limit}"),
            ));
        }
    }

    /// Visits a function body: functions nested in it have no owner.
    fn visit_body(&mut self, body: &Block) {
        let owner = self.owner.take();
        self.visit_block(body);
        self.owner = owner;
    }
}

impl<'ast> Visit<'ast> for FnFinder<'_> {
    fn visit_item(&mut self, item: &'ast Item) {
        if !attrs::is_cfg_test(attrs::item_attrs(item)) {
            visit::visit_item(self, item);
        }
    }

    fn visit_item_fn(&mut self, item: &'ast ItemFn) {
        if !attrs::is_test_fn(&item.attrs) {
            self.measure(&item.sig, &item.block);
            self.visit_body(&item.block);
        }
    }

    fn visit_item_impl(&mut self, item: &'ast ItemImpl) {
        let owner = match &*item.self_ty {
            Type::Path(ty) => ty.path.segments.last().map(|s| s.ident.to_string()),
            _ => None,
        };
        let outer = std::mem::replace(&mut self.owner, owner);
        visit::visit_item_impl(self, item);
        self.owner = outer;
    }

    fn visit_impl_item_fn(&mut self, item: &'ast ImplItemFn) {
        if !attrs::is_cfg_test(&item.attrs) && !attrs::is_test_fn(&item.attrs) {
            self.measure(&item.sig, &item.block);
            self.visit_body(&item.block);
        }
    }

    fn visit_item_trait(&mut self, item: &'ast ItemTrait) {
        let outer = self.owner.replace(item.ident.to_string());
        visit::visit_item_trait(self, item);
        self.owner = outer;
    }

    fn visit_trait_item_fn(&mut self, item: &'ast TraitItemFn) {
        if let Some(body) = &item.default {
            self.measure(&item.sig, body);
            self.visit_body(body);
        }
    }
}
