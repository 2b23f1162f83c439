//! A crate's module tree: which file holds which module, found by following
//! `mod` declarations from the crate root the way rustc does. Modules under
//! `#[cfg(test)]` are left out: unit tests may use anything.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use syn::{Item, ext::IdentExt as _};

use super::{attrs, targets::Target};

/// A module's names from the crate root (`[]` is the root itself).
pub type ModulePath = Vec<String>;

/// Reads a file by its path relative to the workspace root; `None` if it
/// does not exist. The checks run on disk, their tests on strings.
pub type Reader<'a> = &'a dyn Fn(&Path) -> Option<String>;

pub struct SourceFile {
    /// Relative to the workspace root.
    pub path: PathBuf,
    /// The module the file holds.
    pub module: ModulePath,
    pub line_count: usize,
    pub syntax: syn::File,
}

pub struct CrateTree {
    pub root: PathBuf,
    /// The whole crate is test code (an integration test binary).
    pub is_test: bool,
    pub files: Vec<SourceFile>,
    /// Every module, with the index of the file it is written in (inline
    /// modules are written in their parent's file).
    modules: BTreeMap<ModulePath, usize>,
}

impl CrateTree {
    pub fn load(target: &Target, read: Reader) -> Result<Self> {
        let mut tree = CrateTree {
            root: target.root.clone(),
            is_test: target.is_test,
            files: Vec::new(),
            modules: BTreeMap::new(),
        };
        let text =
            read(&target.root).with_context(|| format!("cannot read {}", target.root.display()))?;
        let dir = parent_dir(&target.root);
        tree.add_file(target.root.clone(), text, Vec::new(), dir, read)?;
        Ok(tree)
    }

    /// The index of the file `module` is written in.
    pub fn file_of(&self, module: &[String]) -> Option<usize> {
        self.modules.get(module).copied()
    }

    /// Adds one file and, depth first, the files of the modules it declares.
    /// `children_dir` is where its `mod name;` files live: its own directory
    /// for crate roots, `mod.rs` and `#[path]` files, `dir/name/` for
    /// `dir/name.rs`.
    fn add_file(
        &mut self,
        path: PathBuf,
        text: String,
        module: ModulePath,
        children_dir: PathBuf,
        read: Reader,
    ) -> Result<()> {
        if self.files.iter().any(|file| file.path == path) {
            return Ok(());
        }
        let syntax =
            syn::parse_file(&text).with_context(|| format!("cannot parse {}", path.display()))?;
        let index = self.files.len();
        let mut declared = Vec::new();
        let scope = Scope {
            file: &path,
            module: module.clone(),
            children_dir,
            inline: false,
        };
        self.modules.insert(module.clone(), index);
        self.collect(index, &scope, &syntax.items, read, &mut declared)?;
        self.files.push(SourceFile {
            line_count: text.lines().count(),
            path,
            module,
            syntax,
        });
        for child in declared {
            self.add_file(
                child.path,
                child.text,
                child.module,
                child.children_dir,
                read,
            )?;
        }
        Ok(())
    }

    /// Registers the inline modules among `items` (file `index`) and lists
    /// the files of the out-of-line ones.
    fn collect(
        &mut self,
        index: usize,
        scope: &Scope,
        items: &[Item],
        read: Reader,
        declared: &mut Vec<DeclaredFile>,
    ) -> Result<()> {
        for item in items {
            let Item::Mod(decl) = item else { continue };
            if attrs::is_cfg_test(&decl.attrs) {
                continue;
            }
            let name = decl.ident.unraw().to_string();
            let mut module = scope.module.clone();
            module.push(name.clone());
            match &decl.content {
                Some((_, items)) => {
                    self.modules.insert(module.clone(), index);
                    let inner = Scope {
                        file: scope.file,
                        module,
                        children_dir: scope.children_dir.join(&name),
                        inline: true,
                    };
                    self.collect(index, &inner, items, read, declared)?;
                }
                None => {
                    let line = decl.ident.span().start().line;
                    declared.push(scope.declared_file(&name, module, &decl.attrs, line, read)?);
                }
            }
        }
        Ok(())
    }
}

/// Where module declarations are being read: a file, or an inline module
/// in it.
struct Scope<'a> {
    file: &'a Path,
    module: ModulePath,
    children_dir: PathBuf,
    inline: bool,
}

struct DeclaredFile {
    path: PathBuf,
    text: String,
    module: ModulePath,
    children_dir: PathBuf,
}

impl Scope<'_> {
    /// The file of `mod name;` (declared at `line`), read.
    fn declared_file(
        &self,
        name: &str,
        module: ModulePath,
        attrs: &[syn::Attribute],
        line: usize,
        read: Reader,
    ) -> Result<DeclaredFile> {
        let path_attr = attrs::path_attr(attrs);
        let candidates = match &path_attr {
            // Relative to the declaring file's directory, or to the inline
            // module's directory inside an inline module.
            Some(path) if self.inline => vec![self.children_dir.join(path)],
            Some(path) => vec![parent_dir(self.file).join(path)],
            None => vec![
                self.children_dir.join(format!("{name}.rs")),
                self.children_dir.join(name).join("mod.rs"),
            ],
        };
        for path in &candidates {
            if let Some(text) = read(path) {
                // A `#[path]` file owns its directory, like a `mod.rs`.
                let children_dir = if path_attr.is_some() {
                    parent_dir(path)
                } else {
                    self.children_dir.join(name)
                };
                return Ok(DeclaredFile {
                    path: path.clone(),
                    text,
                    module,
                    children_dir,
                });
            }
        }
        bail!(
            "{}:{line}: `mod {name};` but there is no {}",
            self.file.display(),
            candidates
                .iter()
                .map(|path| path.display().to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        )
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}
