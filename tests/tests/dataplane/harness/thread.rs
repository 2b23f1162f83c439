//! Where a fixture runs: a private network namespace for tests that make
//! interfaces, one CPU for tests that read per-CPU state.

use std::process::Command;

/// Runs `test` on a thread of its own inside a fresh network namespace: it
/// may create interfaces without touching the host's, and they go away with
/// the namespace when the thread ends, even if the test panics. XDP test
/// runs then use that namespace's loopback (ifindex 1) as ingress.
pub fn in_private_netns(test: impl FnOnce() + Send + 'static) {
    let thread = std::thread::spawn(move || {
        // SAFETY: a plain syscall; it moves only the calling thread.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET): {}",
            std::io::Error::last_os_error()
        );
        test();
    });
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Creates a veth pair in the current thread's namespace (children inherit
/// the calling thread's namespaces) and returns both ifindexes. veth rather
/// than dummy: this kernel has no dummy driver.
pub fn add_veth_pair(name: &str, peer: &str) -> (u32, u32) {
    let status = Command::new("ip")
        .args(["link", "add", name, "type", "veth", "peer", "name", peer])
        .status()
        .expect("running ip(8)");
    assert!(status.success(), "ip link add {name} type veth: {status}");
    let index = |name| lb_userspace::dataplane::ifindex(name).expect("the veth exists");
    (index(name), index(peer))
}

/// Keeps the calling thread on the CPU it is running on: per-CPU state
/// (the rr / wrr cursor) then carries over from one test run to the next,
/// as it does for the packets of one receive queue.
pub fn pin_to_current_cpu() {
    // SAFETY: plain syscalls on a zeroed, properly sized CPU set; pid 0 is
    // the calling thread.
    unsafe {
        let cpu = libc::sched_getcpu();
        assert!(
            cpu >= 0,
            "sched_getcpu: {}",
            std::io::Error::last_os_error()
        );
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        let rc = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(
            rc,
            0,
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        );
    }
}
