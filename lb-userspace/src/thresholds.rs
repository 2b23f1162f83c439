//! Connection thresholds (ipvsadm's `-x` / `-y`): a real at its upper
//! threshold takes no new connections until it drops below its lower one,
//! decided from the connection counts the daemon takes every second.

use lb_common::{Real, RealConns};

/// Whether a real should be marked overloaded, given whether it is now.
/// IPVS's rule (`ip_vs_dest_totalconns`, `__ip_vs_update_dest`): the total
/// is active plus inactive connections; without a lower threshold a real
/// comes back below three quarters of the upper one.
pub fn overloaded(currently: bool, conns: RealConns, real: &Real) -> bool {
    let upper = u64::from(real.upper_threshold);
    if upper == 0 {
        return false;
    }
    let total = u64::from(conns.active) + u64::from(conns.inactive);
    if total >= upper {
        return true;
    }
    if !currently {
        return false;
    }
    let back_below = match u64::from(real.lower_threshold) {
        0 => total * 4 < upper * 3,
        lower => total < lower,
    };
    !back_below
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real(upper: u32, lower: u32) -> Real {
        Real {
            upper_threshold: upper,
            lower_threshold: lower,
            ..Real::default()
        }
    }

    fn conns(active: u32, inactive: u32) -> RealConns {
        RealConns { active, inactive }
    }

    #[test]
    fn no_upper_threshold_never_overloads() {
        assert!(!overloaded(false, conns(1_000_000, 0), &real(0, 5)));
        assert!(!overloaded(true, conns(1_000_000, 0), &real(0, 5)));
    }

    #[test]
    fn reaching_the_upper_threshold_overloads_counting_inactive_too() {
        assert!(!overloaded(false, conns(5, 4), &real(10, 0)));
        assert!(overloaded(false, conns(6, 4), &real(10, 0)));
    }

    #[test]
    fn hysteresis_down_to_the_lower_threshold() {
        let limits = real(10, 4);
        assert!(
            overloaded(true, conns(5, 0), &limits),
            "still above the lower threshold"
        );
        assert!(overloaded(true, conns(4, 0), &limits));
        assert!(!overloaded(true, conns(3, 0), &limits));
        assert!(
            !overloaded(false, conns(9, 0), &limits),
            "not yet overloaded stays so"
        );
    }

    #[test]
    fn without_a_lower_threshold_three_quarters_of_the_upper_one() {
        let limits = real(100, 0);
        assert!(overloaded(true, conns(75, 0), &limits));
        assert!(!overloaded(true, conns(74, 0), &limits));
    }
}
