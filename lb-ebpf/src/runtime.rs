//! What each of this crate's binaries needs around its programs: on BPF, a
//! panic handler (which the verifier proves unreachable); on the host,
//! where the crate builds only for its unit tests, a `main` that says where
//! the objects come from. `main.rs` and `bin/lb-bench-xdp.rs` both use it.

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any path that could reach here.
    loop {}
}

#[cfg(not(target_arch = "bpf"))]
pub fn main() {
    panic!("lb-ebpf only builds for the BPF target; lb-userspace's build script compiles it");
}
