//! What a path of the data plane decides, and how that decision crosses a
//! BPF-to-BPF call.
//!
//! The bigger paths (NAT, the ICMP answers) run as BPF functions of their
//! own rather than inlined into the balancer: inlined, the values they keep
//! alive across helper calls spill into the one stack frame every path of
//! the balancer shares, and it outgrows BPF's 512 bytes. As separate
//! functions their frames exist only while they run. A BPF function
//! returns one 64-bit register, so verdicts travel packed: the XDP action
//! in the high half, the counter in the low half, bit 63 for an error
//! (XDP actions are small), and all ones for "none".

use lb_common::GlobalCounter;

/// What to do with the packet (an XDP action), and the counter that says
/// why.
pub type Verdict = (u32, GlobalCounter);

/// Set on an `Err(counter)`.
const ERROR: u64 = 1 << 63;
/// `None`.
const NONE: u64 = u64::MAX;

/// A value no verdict packs into, free for a path's own signal (it has the
/// error bit and a counter far past the last one).
pub const SIGNAL: u64 = u64::MAX - 1;

/// The counter in the low half. Only ever one that a packing stored; should
/// anything else turn up, it reads as a header that went missing.
#[inline(always)]
fn counter(packed: u64) -> GlobalCounter {
    GlobalCounter::from_u32(packed as u32).unwrap_or(GlobalCounter::DropTruncatedL4)
}

#[inline(always)]
pub fn encode((action, counter): Verdict) -> u64 {
    ((action as u64) << 32) | counter as u32 as u64
}

#[inline(always)]
pub fn decode(packed: u64) -> Verdict {
    ((packed >> 32) as u32, counter(packed))
}

#[inline(always)]
pub fn encode_option(verdict: Option<Verdict>) -> u64 {
    verdict.map_or(NONE, encode)
}

#[inline(always)]
pub fn decode_option(packed: u64) -> Option<Verdict> {
    (packed != NONE).then(|| decode(packed))
}

#[inline(always)]
pub fn encode_result(result: Result<Verdict, GlobalCounter>) -> u64 {
    match result {
        Ok(verdict) => encode(verdict),
        Err(counter) => ERROR | counter as u32 as u64,
    }
}

#[inline(always)]
pub fn decode_result(packed: u64) -> Result<Verdict, GlobalCounter> {
    if packed & ERROR != 0 {
        return Err(counter(packed));
    }
    Ok(decode(packed))
}

#[cfg(test)]
mod tests {
    use aya_ebpf::bindings::xdp_action;
    use lb_common::GlobalCounter;

    use super::*;

    const ACTIONS: [u32; 5] = [
        xdp_action::XDP_ABORTED,
        xdp_action::XDP_DROP,
        xdp_action::XDP_PASS,
        xdp_action::XDP_TX,
        xdp_action::XDP_REDIRECT,
    ];

    #[test]
    fn every_verdict_survives_the_register() {
        for action in ACTIONS {
            for counter in GlobalCounter::ALL {
                let verdict = (action, counter);
                assert_eq!(decode(encode(verdict)), verdict);
                assert_eq!(decode_option(encode_option(Some(verdict))), Some(verdict));
                assert_eq!(decode_result(encode_result(Ok(verdict))), Ok(verdict));
                assert_eq!(decode_result(encode_result(Err(counter))), Err(counter));
                assert_ne!(encode(verdict), SIGNAL);
                assert_ne!(encode_result(Err(counter)), SIGNAL);
            }
        }
    }

    #[test]
    fn none_is_told_from_every_verdict() {
        assert_eq!(decode_option(encode_option(None)), None);
        let last = (
            xdp_action::XDP_REDIRECT,
            GlobalCounter::ALL[GlobalCounter::ALL.len() - 1],
        );
        assert_ne!(encode_option(Some(last)), encode_option(None));
    }

    #[test]
    fn the_packing_is_action_high_counter_low() {
        let packed = encode((xdp_action::XDP_TX, GlobalCounter::Forwarded));
        assert_eq!(packed, (3 << 32) | 1);
        let error = encode_result(Err(GlobalCounter::DropNoNextHop));
        assert_eq!(error, (1 << 63) | GlobalCounter::DropNoNextHop as u64);
    }
}
