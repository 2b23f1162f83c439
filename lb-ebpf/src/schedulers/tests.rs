use lb_common::{SCHED_FLAG_FALLBACK, SCHED_FLAG_PORT, Scheduler, Service};

use super::{pack, unpack};

/// Every field at a value whose bits would show a shift or a truncation.
fn service(id: u32, persistence_timeout: u32, row_len: u32) -> Service {
    Service {
        id,
        scheduler: Scheduler::NeverQueue as u8,
        sched_flags: SCHED_FLAG_FALLBACK | SCHED_FLAG_PORT,
        persistence_prefix: 128,
        _pad: 0,
        persistence_timeout,
        row_len,
    }
}

#[test]
fn the_service_crosses_the_call_in_two_registers_unchanged() {
    for original in [
        service(1, 0, 0),
        service(0x0001_ffff, 300, 256),
        service(u32::MAX, u32::MAX, u32::MAX),
    ] {
        let (low, high) = pack(&original);
        assert_eq!(unpack(low, high), original);
    }
}

#[test]
fn each_field_has_its_own_bits() {
    let (low, high) = pack(&service(0x1234_5678, 0x9abc_def0, 0x0fed_cba9));
    assert_eq!(low as u32, 0x1234_5678);
    assert_eq!((low >> 32) as u8, Scheduler::NeverQueue as u8);
    assert_eq!((low >> 40) as u8, SCHED_FLAG_FALLBACK | SCHED_FLAG_PORT);
    assert_eq!((low >> 48) as u8, 128);
    assert_eq!(low >> 56, 0);
    assert_eq!(high, 0x0fed_cba9_9abc_def0);
}
