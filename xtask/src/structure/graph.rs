//! Rule 1: no import circle. The file-level graph of one crate has an edge
//! A -> B when file A uses an item of a module written in file B, through a
//! `use` tree, an inline path or a path inside a macro call. A child's
//! `super::X` is an edge to its parent's file and a parent's `child::Y` an
//! edge to the child's; `mod child;` alone is not an edge.

use std::collections::{BTreeMap, HashMap};

use proc_macro2::{Spacing, TokenStream, TokenTree};
use syn::{
    ImplItemFn, Item, ItemMod, ItemUse, Macro, Path, UseTree,
    ext::IdentExt as _,
    visit::{self, Visit},
};

use super::{
    attrs,
    tree::{CrateTree, ModulePath},
};

/// Where file `from` first uses file `to`.
pub struct Use {
    pub line: usize,
    /// The path as written, e.g. `crate::maps::FLOWS`.
    pub path: String,
}

/// Edges keyed by (from, to) file indices.
pub type Edges = BTreeMap<(usize, usize), Use>;

/// A strongly connected component of more than one file.
pub struct Circle {
    /// File indices, sorted.
    pub files: Vec<usize>,
    /// The edges between them.
    pub edges: Vec<(usize, usize)>,
}

/// Every edge of `tree`'s file graph.
pub fn edges(tree: &CrateTree) -> Edges {
    let mut edges = Edges::new();
    for (index, file) in tree.files.iter().enumerate() {
        let mut finder = EdgeFinder {
            tree,
            file: index,
            module: file.module.clone(),
            aliases: Vec::new(),
            edges: &mut edges,
        };
        finder.visit_scope(&file.syntax.items);
    }
    edges
}

/// The circles of `edges` over `file_count` files (Tarjan's algorithm).
pub fn circles(file_count: usize, edges: &Edges) -> Vec<Circle> {
    let mut successors = vec![Vec::new(); file_count];
    for &(from, to) in edges.keys() {
        successors[from].push(to);
    }
    let mut tarjan = Tarjan {
        successors: &successors,
        index: vec![None; file_count],
        low: vec![0; file_count],
        stack: Vec::new(),
        on_stack: vec![false; file_count],
        next: 0,
        components: Vec::new(),
    };
    for file in 0..file_count {
        if tarjan.index[file].is_none() {
            tarjan.connect(file);
        }
    }
    let mut circles: Vec<Circle> = tarjan
        .components
        .into_iter()
        .filter(|files| files.len() > 1)
        .map(|mut files| {
            files.sort_unstable();
            let inside = |&(from, to): &(usize, usize)| {
                files.binary_search(&from).is_ok() && files.binary_search(&to).is_ok()
            };
            let edges = edges.keys().copied().filter(inside).collect();
            Circle { files, edges }
        })
        .collect();
    circles.sort_by(|a, b| a.files.cmp(&b.files));
    circles
}

struct Tarjan<'a> {
    successors: &'a [Vec<usize>],
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    stack: Vec<usize>,
    on_stack: Vec<bool>,
    next: usize,
    components: Vec<Vec<usize>>,
}

impl Tarjan<'_> {
    fn connect(&mut self, file: usize) {
        self.index[file] = Some(self.next);
        self.low[file] = self.next;
        self.next += 1;
        self.stack.push(file);
        self.on_stack[file] = true;
        for &next in &self.successors[file] {
            match self.index[next] {
                None => {
                    self.connect(next);
                    self.low[file] = self.low[file].min(self.low[next]);
                }
                Some(index) if self.on_stack[next] => {
                    self.low[file] = self.low[file].min(index);
                }
                Some(_) => {}
            }
        }
        if Some(self.low[file]) == self.index[file] {
            let mut component = Vec::new();
            while let Some(member) = self.stack.pop() {
                self.on_stack[member] = false;
                component.push(member);
                if member == file {
                    break;
                }
            }
            self.components.push(component);
        }
    }
}

/// Walks one file, keeping track of the module it is in (inline modules
/// included) and of the names `use` gave to modules.
struct EdgeFinder<'a> {
    tree: &'a CrateTree,
    file: usize,
    module: ModulePath,
    /// One map per enclosing module scope: local name -> module.
    aliases: Vec<HashMap<String, ModulePath>>,
    edges: &'a mut Edges,
}

impl EdgeFinder<'_> {
    /// Visits the items of a module after learning its module aliases.
    fn visit_scope(&mut self, items: &[Item]) {
        let mut aliases = HashMap::new();
        for item in items {
            let Item::Use(item) = item else { continue };
            if attrs::is_cfg_test(&item.attrs) {
                continue;
            }
            for leaf in use_leaves(item) {
                let Some(name) = leaf.name else { continue };
                if let Some((module, rest)) = self.resolve(&leaf.segments)
                    && rest == 0
                {
                    aliases.insert(name, module);
                }
            }
        }
        self.aliases.push(aliases);
        for item in items {
            self.visit_item(item);
        }
        self.aliases.pop();
    }

    /// The module `segments` lead to, and how many segments are left after
    /// it (an item's name, or nothing if the path names the module itself).
    /// `None` for paths outside the crate.
    fn resolve(&self, segments: &[String]) -> Option<(ModulePath, usize)> {
        let (first, rest) = segments.split_first()?;
        let mut module = self.module.clone();
        let mut rest = match first.as_str() {
            "crate" => {
                module.clear();
                rest
            }
            "self" => rest,
            "super" => {
                let mut rest = segments;
                while rest.first().is_some_and(|segment| segment == "super") {
                    module.pop()?;
                    rest = &rest[1..];
                }
                rest
            }
            _ if self.is_module(&module, first) => segments,
            _ => {
                let mut scopes = self.aliases.iter().rev();
                module = scopes.find_map(|scope| scope.get(first))?.clone();
                rest
            }
        };
        while let Some((next, after)) = rest.split_first()
            && self.is_module(&module, next)
        {
            module.push(next.clone());
            rest = after;
        }
        Some((module, rest.len()))
    }

    fn is_module(&self, parent: &[String], name: &str) -> bool {
        let mut child = parent.to_vec();
        child.push(name.to_owned());
        self.tree.file_of(&child).is_some()
    }

    /// Records an edge if `segments` (written at `line`) use another file.
    fn add(&mut self, segments: &[String], line: usize) {
        let Some((module, _)) = self.resolve(segments) else {
            return;
        };
        let Some(to) = self.tree.file_of(&module) else {
            return;
        };
        if to == self.file {
            return;
        }
        let path = segments.join("::");
        let first = self.edges.entry((self.file, to)).or_insert(Use {
            line,
            path: path.clone(),
        });
        if line < first.line {
            *first = Use { line, path };
        }
    }

    /// Paths in macro input (`format!("{}", crate::x::Y)`): runs of
    /// `ident::ident...`, except `$crate::` and continuations.
    fn scan_tokens(&mut self, tokens: TokenStream) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut at = 0;
        while at < tokens.len() {
            let TokenTree::Ident(first) = &tokens[at] else {
                if let TokenTree::Group(group) = &tokens[at] {
                    self.scan_tokens(group.stream());
                }
                at += 1;
                continue;
            };
            let after_dollar = at > 0 && is_punct(&tokens[at - 1], '$');
            let mut segments = vec![first.unraw().to_string()];
            while is_path_sep(&tokens, at + 1)
                && let Some(TokenTree::Ident(next)) = tokens.get(at + 3)
            {
                segments.push(next.unraw().to_string());
                at += 3;
            }
            if segments.len() > 1 && !after_dollar {
                self.add(&segments, first.span().start().line);
            }
            at += 1;
        }
    }
}

impl<'ast> Visit<'ast> for EdgeFinder<'_> {
    fn visit_item(&mut self, item: &'ast Item) {
        if !attrs::is_cfg_test(attrs::item_attrs(item)) {
            visit::visit_item(self, item);
        }
    }

    fn visit_item_mod(&mut self, item: &'ast ItemMod) {
        // `mod name;` declares; only what is used makes an edge.
        if let Some((_, items)) = &item.content {
            self.module.push(item.ident.unraw().to_string());
            self.visit_scope(items);
            self.module.pop();
        }
    }

    fn visit_impl_item_fn(&mut self, item: &'ast ImplItemFn) {
        if !attrs::is_cfg_test(&item.attrs) {
            visit::visit_impl_item_fn(self, item);
        }
    }

    fn visit_item_use(&mut self, item: &'ast ItemUse) {
        for leaf in use_leaves(item) {
            self.add(&leaf.segments, leaf.line);
        }
    }

    fn visit_path(&mut self, path: &'ast Path) {
        // One segment is a local name or an item in scope; `a::b` may
        // reach into another file.
        if path.leading_colon.is_none() && path.segments.len() > 1 {
            let segments: Vec<String> = path
                .segments
                .iter()
                .map(|segment| segment.ident.unraw().to_string())
                .collect();
            self.add(&segments, path.segments[0].ident.span().start().line);
        }
        visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast Macro) {
        self.visit_path(&mac.path);
        self.scan_tokens(mac.tokens.clone());
    }

    // `pub(super)` and `#[attr]` name modules without using their items.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}
    fn visit_attribute(&mut self, _: &'ast syn::Attribute) {}
}

fn is_punct(token: &TokenTree, ch: char) -> bool {
    matches!(token, TokenTree::Punct(punct) if punct.as_char() == ch)
}

/// `::` starting at `tokens[at]`.
fn is_path_sep(tokens: &[TokenTree], at: usize) -> bool {
    matches!(
        (tokens.get(at), tokens.get(at + 1)),
        (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
            if a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':'
    )
}

/// One path a `use` item brings in: `use a::{b, c as d}` has two.
struct UseLeaf {
    segments: Vec<String>,
    /// The local name it is known by (`None` for globs and `_`).
    name: Option<String>,
    line: usize,
}

fn use_leaves(item: &ItemUse) -> Vec<UseLeaf> {
    let mut leaves = Vec::new();
    if item.leading_colon.is_none() {
        collect_leaves(&item.tree, &mut Vec::new(), &mut leaves);
    }
    leaves
}

fn collect_leaves(tree: &UseTree, prefix: &mut Vec<String>, leaves: &mut Vec<UseLeaf>) {
    let mut leaf = |ident: &syn::Ident, name: Option<String>| {
        let mut segments = prefix.clone();
        // `use a::{self}` brings in `a` itself.
        if ident != "self" {
            segments.push(ident.unraw().to_string());
        }
        let name = name
            .or_else(|| segments.last().cloned())
            .filter(|name| name != "_");
        let line = ident.span().start().line;
        leaves.push(UseLeaf {
            segments,
            name,
            line,
        });
    };
    match tree {
        UseTree::Path(path) => {
            prefix.push(path.ident.unraw().to_string());
            collect_leaves(&path.tree, prefix, leaves);
            prefix.pop();
        }
        UseTree::Name(name) => leaf(&name.ident, None),
        UseTree::Rename(rename) => leaf(&rename.ident, Some(rename.rename.unraw().to_string())),
        UseTree::Glob(glob) => leaves.push(UseLeaf {
            segments: prefix.clone(),
            name: None,
            line: glob.star_token.span.start().line,
        }),
        UseTree::Group(group) => {
            for tree in &group.items {
                collect_leaves(tree, prefix, leaves);
            }
        }
    }
}
