//! `lb-bench --quick` end to end: the harness still builds its rigs, runs
//! every section and writes a table, JSON and SVG with sane figures. Speed
//! is not asserted (that is the benchmark's job, not a test's).

use std::process::Command;

#[test]
fn quick_bench_measures_every_section() {
    if !lb_tests::require_root("quick_bench_measures_every_section") {
        return;
    }
    let out = std::env::temp_dir().join(format!("lb-bench-quick-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_lb-bench"))
        .args(["--quick", "--out"])
        .arg(&out)
        .output()
        .expect("running lb-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "lb-bench failed:\n{stdout}\n{stderr}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bench.json")).unwrap()).unwrap();
    let figures = json["figures"].as_array().expect("figures");
    // A host may refuse BPF_PROG_RUN's live-frames mode (the rate and the
    // nftables pps comparison use it): the bench then says so, and that is
    // the only measurement it may leave out.
    let not_measured = json["not_measured"].as_array().cloned().unwrap_or_default();
    for skipped in &not_measured {
        let section = skipped["section"].as_str().unwrap_or_default();
        let why = skipped["why"].as_str().unwrap_or_default();
        assert!(
            ["rate", "nftables"].contains(&section) && why.contains("live frames"),
            "a section left out for another reason: {skipped}\n{stderr}"
        );
        assert!(
            stdout.contains(&format!("{section}: not measured on this host: {why}")),
            "{skipped} missing from the table:\n{stdout}"
        );
    }
    for section in [
        "cost",
        "rate",
        "nftables",
        "end_to_end",
        "control_plane",
        "conn_table",
    ] {
        assert!(
            figures.iter().any(|f| f["section"] == section)
                || not_measured.iter().any(|s| s["section"] == section),
            "no figure for {section}:\n{stdout}"
        );
    }
    for figure in figures {
        let value = figure["value"].as_f64().expect("a numeric value");
        assert!(
            value.is_finite() && value > 0.0,
            "not a sane figure: {figure}"
        );
        if let Some(reference) = figure.get("compared_to") {
            let value = reference["value"].as_f64().expect("a numeric reference");
            assert!(
                value.is_finite() && value > 0.0,
                "not a sane reference: {figure}"
            );
        }
        assert!(
            stdout.contains(figure["name"].as_str().unwrap()),
            "{figure} missing from the table:\n{stdout}"
        );
    }
    let svg = std::fs::read_to_string(out.join("bench.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("</svg>"));
    let _ = std::fs::remove_dir_all(&out);
}
