//! New connections: which real of its service gets one, by the service's
//! IPVS scheduler, after its persistence template if it has one.
//!
//! Every scheduler reads the service's row of `LB_MAGLEV` (`table_size`
//! slots of real ids, built by the daemon's `rows::build_row`):
//! - the hash schedulers ([`hash`]: mh, sh, dh) hash the packet to a slot;
//! - rr and wrr ([`round_robin`]) go round the first `row_len` slots;
//! - lc, wlc, sed and nq ([`least_connection`]) compare the connection
//!   counts of the first `row_len` slots' reals.
//!
//! The work runs as a BPF function of its own (see `wire/verdict.rs` for
//! why): its loops and lookups would otherwise keep values in the
//! balancer's stack frame. Unlike the NAT and ICMP functions it is a *global*
//! function ([`lb_new_connection`]), verified once rather than per caller
//! state, and its two loops of up to 256 rounds (rr, least connection) run
//! under `bpf_loop`: as a static function with plain loops it took the
//! verifier past its million instructions; as a static function with
//! `bpf_loop` 815 000 of them; as it is, the whole balancer takes about
//! 97 000. The service travels packed in two scalars, the flow key as a
//! pointer to the balancer's own copy (a global function may take a
//! pointer to a struct of scalars; the verifier checks its size).
//!
//! Stack (bytes, as the verifier counts them): the balancer 280, this
//! function 144, a `bpf_loop` callback 8 or 12; rounded up to 32 each,
//! 288 + 160 + 32 = 480 of the 512, as much as the NAT ICMP error path
//! (288 + 192).

mod hash;
mod least_connection;
mod round_robin;
mod row;

use lb_common::{
    FlowKey, GlobalCounter, NO_REAL, RealConns, SCHED_FLAG_FALLBACK, SCHED_FLAG_PORT, Scheduler,
    Service,
    flow_hash::{addr_hash, addr_port_hash, flow_hash},
};

use self::row::Row;
use crate::{counters::count, maps::LB_REAL_CONNS, persistence};

/// The real for a new connection (`key`) of `service`: its persistence
/// template's, else the scheduler's choice. `NO_REAL` when there is none.
/// Counts the connection in `LB_REAL_CONNS` and, for a persistent service,
/// writes or refreshes the template.
#[inline(always)]
pub fn new_connection(key: &FlowKey, service: &Service, now: u64) -> u32 {
    let (low, high) = pack(service);
    lb_new_connection(key, low, high, now) as u32
}

/// A global BPF function (external linkage, so its BTF says "global"): the
/// verifier checks it once, on its own, with its arguments as their BTF
/// types say (`key` memory of a `FlowKey`'s size, or null; scalars), rather
/// than once per state of the balancer that reaches the call, as it does
/// static functions. Its loops (up to 256 rounds) would otherwise be
/// explored hundreds of times over and exceed the verifier's budget of a
/// million instructions.
///
/// Exported only in the BPF object: on the host, where nothing calls it, it
/// is an ordinary function, never compiled, so [`count_connection`]'s BPF
/// instruction is not handed to the host's assembler.
#[cfg_attr(target_arch = "bpf", unsafe(no_mangle))]
#[inline(never)]
pub extern "C" fn lb_new_connection(key: *const FlowKey, low: u64, high: u64, now: u64) -> u64 {
    if key.is_null() {
        return NO_REAL as u64;
    }
    // SAFETY: not null, and the verifier checked the memory is a
    // `FlowKey`'s size; it is the caller's flow key, in its frame.
    let key = unsafe { &*key };
    let service = unpack(low, high);
    let real_id = choose(key, &service, now);
    if real_id != NO_REAL {
        count_connection(real_id);
    }
    real_id as u64
}

/// IPVS's persistence (`ip_vs_sched_persist`) around the scheduler: a
/// persistent service's client goes where its template says, if that is
/// still good; else where the scheduler says, which becomes its template.
/// (One call of [`schedule`] either way: the verifier then checks its
/// loops once.)
#[inline(always)]
fn choose(key: &FlowKey, service: &Service, now: u64) -> u32 {
    let persistent = service.persistence_timeout != 0;
    let template = persistence::key(&key.src, service.persistence_prefix, service.id);
    if persistent && let Some(real_id) = persistence::lookup(&template, service, now) {
        count(GlobalCounter::PersistenceHit);
        return real_id;
    }
    let real_id = schedule(key, service);
    if persistent && real_id != NO_REAL {
        persistence::remember(&template, real_id, now);
    }
    real_id
}

/// The scheduler's choice for a new connection.
#[inline(always)]
fn schedule(key: &FlowKey, service: &Service) -> u32 {
    let Some(row) = Row::of(service.id) else {
        return NO_REAL;
    };
    let fallback = service.sched_flags & SCHED_FLAG_FALLBACK != 0;
    let port = service.sched_flags & SCHED_FLAG_PORT != 0;
    match Scheduler::from_u8(service.scheduler) {
        Some(Scheduler::Maglev) => {
            let hash = if port {
                flow_hash(key)
            } else {
                addr_hash(&key.src)
            };
            hash::pick(&row, hash, fallback)
        }
        Some(Scheduler::SourceHash) => {
            let hash = if port {
                addr_port_hash(&key.src, key.src_port)
            } else {
                addr_hash(&key.src)
            };
            hash::pick(&row, hash, fallback)
        }
        // IPVS's dh has no fallback: an unavailable real is no real.
        Some(Scheduler::DestinationHash) => hash::pick(&row, addr_hash(&key.dst), false),
        Some(Scheduler::RoundRobin | Scheduler::WeightedRoundRobin) => {
            round_robin::pick(&row, service.row_len)
        }
        Some(scheduler) => least_connection::pick(&row, scheduler, service.row_len),
        // A service entry from before schedulers existed: Maglev over the
        // 5-tuple, as the data plane always did.
        None => hash::pick(&row, flow_hash(key), false),
    }
}

/// One more connection for the real, until the daemon's next recount, in
/// `inactive` (where IPVS counts a connection until its handshake
/// completes): BPF's 32-bit atomic add (XADD), other CPUs add too.
///
/// Written out as the instruction: Rust's BPF target offers no atomic
/// read-modify-write operations (no compare-and-swap), and, being
/// single-threaded to LLVM, would lower atomics to plain loads and stores.
#[inline(always)]
fn count_connection(real_id: u32) {
    const INACTIVE: usize = core::mem::offset_of!(RealConns, inactive);
    const _: () = assert!(INACTIVE == 4, "the offset in the instruction below");
    if let Some(conns) = LB_REAL_CONNS.get_ptr_mut(real_id) {
        // SAFETY: `conns` points to a valid map value (a `RealConns`, 4-byte
        // aligned); the instruction adds 1 to the u32 at offset 4 atomically
        // and touches nothing else.
        unsafe {
            core::arch::asm!(
                "lock *(u32 *)({conns} + 4) += {one}",
                conns = in(reg) conns,
                one = in(reg) 1u64,
                options(nostack, preserves_flags),
            );
        }
    }
}

/// The service in two registers: id, scheduler, flags and prefix in one,
/// timeout and row length in the other.
#[inline(always)]
fn pack(service: &Service) -> (u64, u64) {
    let low = service.id as u64
        | (service.scheduler as u64) << 32
        | (service.sched_flags as u64) << 40
        | (service.persistence_prefix as u64) << 48;
    let high = service.persistence_timeout as u64 | (service.row_len as u64) << 32;
    (low, high)
}

#[inline(always)]
fn unpack(low: u64, high: u64) -> Service {
    Service {
        id: low as u32,
        scheduler: (low >> 32) as u8,
        sched_flags: (low >> 40) as u8,
        persistence_prefix: (low >> 48) as u8,
        _pad: 0,
        persistence_timeout: high as u32,
        row_len: (high >> 32) as u32,
    }
}

#[cfg(test)]
mod tests;
