//! The checker on small crates held in memory.

use std::{collections::HashMap, path::Path};

use super::{
    check,
    lengths::{MAX_DATA_PLANE_FN_LINES, MAX_FILE_LINES, MAX_FN_LINES},
    report::{Rule, Violation},
    targets::Target,
};

/// Checks the crate rooted at `root` whose files are `files`.
fn check_crate(root: &str, files: &[(&str, &str)]) -> Vec<Violation> {
    let files: HashMap<&Path, String> = files
        .iter()
        .map(|&(path, text)| (Path::new(path), text.to_owned()))
        .collect();
    let read = |path: &Path| files.get(path).cloned();
    let target = Target {
        root: root.into(),
        is_test: root.contains("/tests/"),
    };
    check(&[target], &read).unwrap()
}

/// The violations as printed.
fn printed(violations: &[Violation]) -> Vec<String> {
    violations.iter().map(ToString::to_string).collect()
}

/// A function spanning exactly `lines` lines.
fn function(name: &str, lines: usize) -> String {
    let body = "    let _ = 0;\n".repeat(lines - 2);
    format!("pub fn {name}() {{\n{body}}}\n")
}

#[test]
fn a_circle_between_two_files_is_reported_with_its_edges() {
    let violations = check_crate(
        "x/src/lib.rs",
        &[
            ("x/src/lib.rs", "mod a;\nmod b;\n"),
            ("x/src/a.rs", "use crate::b::B;\npub struct A;\n"),
            ("x/src/b.rs", "pub struct B;\npub fn f(_: crate::a::A) {}\n"),
        ],
    );
    assert_eq!(
        printed(&violations),
        [concat!(
            "x/src/a.rs:1: import circle of 2 files (crate x/src/lib.rs): x/src/a.rs, x/src/b.rs\n",
            "    x/src/a.rs:1: uses `crate::b::B` -> x/src/b.rs\n",
            "    x/src/b.rs:2: uses `crate::a::A` -> x/src/a.rs"
        )]
    );
}

#[test]
fn test_binaries_are_checked_and_path_attributes_followed() {
    let violations = check_crate(
        "x/tests/one.rs",
        &[
            (
                "x/tests/one.rs",
                "#[path = \"common/mod.rs\"]\nmod fixtures;\n",
            ),
            // A `#[path]` file's children live beside it, like a mod.rs's.
            (
                "x/tests/common/mod.rs",
                "mod frames;\npub use frames::Frame;\npub struct Mac;\n",
            ),
            (
                "x/tests/common/frames.rs",
                "pub struct Frame(pub super::Mac);\n",
            ),
        ],
    );
    let [circle] = &violations[..] else {
        panic!("{:#?}", printed(&violations));
    };
    assert_eq!(
        circle.details,
        [
            "x/tests/common/frames.rs:1: uses `super::Mac` -> x/tests/common/mod.rs",
            "x/tests/common/mod.rs:2: uses `frames::Frame` -> x/tests/common/frames.rs",
        ]
    );
}

#[test]
fn uses_in_one_direction_and_mod_declarations_are_no_circle() {
    let violations = check_crate(
        "x/src/lib.rs",
        &[
            // The root declares `a` and `b` but uses neither: no edge.
            ("x/src/lib.rs", "mod a;\nmod b;\npub struct Root;\n"),
            (
                "x/src/a.rs",
                "use crate::{Root, b::B};\npub fn f(_: Root, _: B) {}\n",
            ),
            ("x/src/b.rs", "pub struct B;\n"),
        ],
    );
    assert!(violations.is_empty(), "{:#?}", printed(&violations));
}

#[test]
fn a_child_using_its_parent_while_the_parent_calls_it_is_a_circle() {
    for parent in ["x/src/p/mod.rs", "x/src/p.rs"] {
        let violations = check_crate(
            "x/src/lib.rs",
            &[
                ("x/src/lib.rs", "mod p;\n"),
                (
                    parent,
                    "mod c;\npub struct X;\npub fn f() {\n    c::g();\n}\n",
                ),
                ("x/src/p/c.rs", "use super::X;\npub fn g() {}\n"),
            ],
        );
        let [circle] = &violations[..] else {
            panic!("{parent}: {:#?}", printed(&violations));
        };
        assert_eq!(circle.rule, Rule::ImportCircle);
        assert_eq!(
            circle.details,
            [
                format!("x/src/p/c.rs:1: uses `super::X` -> {parent}"),
                format!("{parent}:4: uses `c::g` -> x/src/p/c.rs"),
            ]
        );
    }
}

#[test]
fn module_aliases_and_macro_arguments_are_uses() {
    let violations = check_crate(
        "x/src/lib.rs",
        &[
            ("x/src/lib.rs", "mod a;\nmod b;\n"),
            ("x/src/a.rs", "use crate::b;\npub const A: u8 = b::B;\n"),
            (
                "x/src/b.rs",
                "pub const B: u8 = 1;\nfn f() {\n    log!(\"{}\", crate::a::A);\n}\n",
            ),
        ],
    );
    let [circle] = &violations[..] else {
        panic!("{:#?}", printed(&violations));
    };
    assert_eq!(
        circle.details,
        [
            "x/src/a.rs:1: uses `crate::b` -> x/src/b.rs",
            "x/src/b.rs:3: uses `crate::a::A` -> x/src/a.rs",
        ]
    );
}

#[test]
fn visibility_and_inline_modules_do_not_reach_other_files() {
    let violations = check_crate(
        "x/src/lib.rs",
        &[
            ("x/src/lib.rs", "mod m;\nfn f() -> m::S {\n    m::S\n}\n"),
            // `super` inside `inner` is `m` itself, not the root; `pub(super)`
            // and `pub(crate)` name modules without using them.
            (
                "x/src/m.rs",
                "pub(crate) struct S;\npub(super) fn g() {}\nmod inner {\n    use super::*;\n}\n",
            ),
        ],
    );
    assert!(violations.is_empty(), "{:#?}", printed(&violations));
}

#[test]
fn cfg_test_code_makes_no_edge_and_no_long_function() {
    let tests = format!(
        "#[cfg(test)]\nmod tests {{\n    use crate::a::A;\n    {}}}\n",
        function("long_helper", MAX_FN_LINES + 50)
    );
    let test_fn = format!("#[test]\n{}", function("long_test", MAX_FN_LINES + 1));
    let violations = check_crate(
        "lb-userspace/src/lib.rs",
        &[
            ("lb-userspace/src/lib.rs", "mod a;\nmod b;\n"),
            ("lb-userspace/src/a.rs", "use crate::b::B;\npub struct A;\n"),
            (
                "lb-userspace/src/b.rs",
                // The out-of-line test module is never read: it need not exist.
                &format!("pub struct B;\n{tests}{test_fn}#[cfg(test)]\nmod more_tests;\n"),
            ),
        ],
    );
    assert!(violations.is_empty(), "{:#?}", printed(&violations));
}

#[test]
fn functions_over_their_crates_limit_are_reported() {
    let control_plane = format!(
        "{}{}struct Reconciler;\nimpl Reconciler {{\n{}}}\n",
        function("at_limit", MAX_FN_LINES),
        function("long", MAX_FN_LINES + 1),
        function("apply", MAX_FN_LINES + 2),
    );
    let violations = check_crate(
        "lb-userspace/src/lib.rs",
        &[("lb-userspace/src/lib.rs", &control_plane)],
    );
    let long = MAX_FN_LINES + 1;
    let apply_line = MAX_FN_LINES + long + 3;
    assert_eq!(
        printed(&violations),
        [
            format!(
                "lb-userspace/src/lib.rs:{}: function `long` is {long} lines; the limit here is {MAX_FN_LINES}",
                MAX_FN_LINES + 1
            ),
            format!(
                "lb-userspace/src/lib.rs:{apply_line}: function `Reconciler::apply` is {} lines; the limit here is {MAX_FN_LINES}",
                MAX_FN_LINES + 2
            ),
        ]
    );

    let data_plane = function("long", MAX_DATA_PLANE_FN_LINES + 1);
    let violations = check_crate(
        "lb-ebpf/src/main.rs",
        &[("lb-ebpf/src/main.rs", &data_plane)],
    );
    assert_eq!(
        printed(&violations),
        [format!(
            "lb-ebpf/src/main.rs:1: function `long` is {} lines; the limit here is {MAX_DATA_PLANE_FN_LINES}",
            MAX_DATA_PLANE_FN_LINES + 1
        )]
    );
}

#[test]
fn integration_tests_are_exempt_from_length_limits() {
    let long = function("long_fixture", MAX_FN_LINES * 2) + &"// filler\n".repeat(MAX_FILE_LINES);
    let violations = check_crate("x/tests/fixtures.rs", &[("x/tests/fixtures.rs", &long)]);
    assert!(violations.is_empty(), "{:#?}", printed(&violations));
}

#[test]
fn long_files_are_counted_without_their_cfg_test_code() {
    let filler = "// line\n".repeat(MAX_FILE_LINES - 3);
    let tests = "#[cfg(test)]\nmod tests {\n    fn t() {}\n}\n";
    // 897 lines of code and 4 of tests: within the limit.
    let within = format!("{filler}{tests}");
    let violations = check_crate("x/src/lib.rs", &[("x/src/lib.rs", &within)]);
    assert!(violations.is_empty(), "{:#?}", printed(&violations));

    let over =
        format!("{filler}pub struct A;\npub struct B;\npub struct C;\npub struct D;\n{tests}");
    let violations = check_crate("x/src/lib.rs", &[("x/src/lib.rs", &over)]);
    assert_eq!(
        printed(&violations),
        [format!(
            "x/src/lib.rs:1: file is {} lines ({} with its #[cfg(test)] code); the limit is {MAX_FILE_LINES} outside tests",
            MAX_FILE_LINES + 1,
            MAX_FILE_LINES + 5
        )]
    );
}
