//! `cargo xtask demo`: builds a DR rig in network namespaces, starts lbd,
//! sends HTTP requests from the client to the VIPs, shows which real
//! answered each, then tears everything down (also on Ctrl-C).

use std::{
    collections::BTreeMap,
    process::Command,
    sync::{Mutex, atomic::AtomicBool},
};

use anyhow::{Context as _, Result};
use lb_tests::{
    lbd::binary,
    rig::{HTTP_PORT, Mode, Rig},
    traffic::http_get_many,
};

const REQUESTS_V4: usize = 300;
const REQUESTS_V6: usize = 90;
const WEIGHTS: [u32; 3] = [1, 1, 2];

/// What Ctrl-C must undo, recorded as soon as it exists.
static CLEANUP: Mutex<Vec<String>> = Mutex::new(Vec::new());
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn main() {
    if !lb_tests::is_root() {
        eprintln!("lb-demo needs root (network namespaces and XDP)");
        std::process::exit(1);
    }
    install_interrupt_handler();
    let keep = std::env::args().any(|arg| arg == "--keep");
    if let Err(error) = demo(keep) {
        eprintln!("demo failed: {error:#}");
        std::process::exit(1);
    }
}

/// With `--keep`, the rig stays up (namespaces, lbd) until Ctrl-C so it can
/// be inspected, e.g. `ip netns exec <name> ...`.
fn hold_until_interrupted(rig: &Rig) {
    println!("--keep: the rig stays up until Ctrl-C. Namespaces:");
    for netns in rig.namespaces() {
        println!("  {}", netns.name);
    }
    println!("pinned maps: {}", rig.pins.root.display());
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

fn demo(keep: bool) -> Result<()> {
    println!(
        "Building the rig: a client, the balancer and {} reals on one L2 segment...",
        WEIGHTS.len()
    );
    let mut rig = Rig::build(Mode::Dr, &WEIGHTS)?;
    remember_for_cleanup(&rig);
    rig.write_config(&rig.all_reals())?;
    println!(
        "\n--- {} ---\n{}",
        rig.config_path().display(),
        rig.config_yaml(&rig.all_reals())
    );
    rig.start_lbd().context("starting lbd")?;
    if let Some(lbd) = &rig.lbd {
        CLEANUP
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("pid:{}", lbd.pid()));
    }
    println!(
        "lbd is up (log: {}); XDP attached to the balancer's eth0 in native mode.\n",
        rig.log_path().display()
    );

    for (label, target, count) in [
        ("IPv4", rig.vip4(HTTP_PORT), REQUESTS_V4),
        ("IPv6", rig.vip6(HTTP_PORT), REQUESTS_V6),
    ] {
        match http_get_many(&rig.client, target, count) {
            Ok(answered) => print_share(&rig, label, target, count, &answered),
            Err(error) if keep => {
                eprintln!("{label} requests failed: {error:#}");
                hold_until_interrupted(&rig);
            }
            Err(error) => return Err(error),
        }
    }

    println!("lbadm -L -n --stats:");
    let lbadm = Command::new(binary("lbadm")?)
        .args(["-L", "-n", "--stats", "--pin-path"])
        .arg(&rig.pins.root)
        .output()?;
    print!("{}", String::from_utf8_lossy(&lbadm.stdout));
    eprint!("{}", String::from_utf8_lossy(&lbadm.stderr));

    if keep {
        hold_until_interrupted(&rig);
    }
    rig.stop_lbd()?;
    println!("\nTearing down the rig.");
    Ok(())
}

fn print_share(
    rig: &Rig,
    label: &str,
    target: std::net::SocketAddr,
    count: usize,
    answered: &BTreeMap<String, usize>,
) {
    let total_weight: u32 = rig.reals.iter().map(|r| r.weight).sum();
    println!("{count} {label} HTTP requests to {target} (DR, Maglev):");
    for real in &rig.reals {
        let got = answered.get(&real.name).copied().unwrap_or(0);
        let expected = count as f64 * real.weight as f64 / total_weight as f64;
        println!(
            "  {:<7} {:<16} weight {}  answered {:>4}  (expected ~{:.0})",
            real.name,
            if label == "IPv4" {
                real.v4.to_string()
            } else {
                real.v6.to_string()
            },
            real.weight,
            got,
            expected
        );
    }
    println!();
}

fn remember_for_cleanup(rig: &Rig) {
    let mut names = CLEANUP.lock().unwrap_or_else(|e| e.into_inner());
    for netns in rig.namespaces() {
        names.push(format!("netns:{}", netns.name));
    }
    names.push(format!("pins:{}", rig.pins.root.display()));
}

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// On Ctrl-C a watcher thread undoes the rig and exits; the main thread may
/// be blocked in a socket call and never get to its own cleanup.
fn install_interrupt_handler() {
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_interrupt as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_interrupt as *const () as libc::sighandler_t,
        );
    }
    std::thread::spawn(|| {
        loop {
            if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
                eprintln!("\ninterrupted: tearing the rig down");
                let items = CLEANUP.lock().unwrap_or_else(|e| e.into_inner()).clone();
                for item in items.iter().rev() {
                    if let Some(pid) = item.strip_prefix("pid:").and_then(|p| p.parse().ok()) {
                        // SAFETY: plain kill(2) of the lbd this demo started.
                        unsafe { libc::kill(pid, libc::SIGTERM) };
                        std::thread::sleep(std::time::Duration::from_millis(200));
                    } else if let Some(pins) = item.strip_prefix("pins:") {
                        let _ = lb_userspace::dataplane::teardown(
                            &lb_userspace::dataplane::PinLayout::new(pins),
                        );
                    } else if let Some(name) = item.strip_prefix("netns:") {
                        let _ = lb_tests::netns::run("ip", &["netns", "del", name]);
                    }
                }
                std::process::exit(130);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    });
}
