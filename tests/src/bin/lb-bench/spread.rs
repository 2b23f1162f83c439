//! The median and range of a few alternating runs: single runs on 2 shared
//! cores swing by tens of percent, so comparisons report this instead.

use crate::report::format_value;

/// The median of a few runs, and their range.
pub struct Spread {
    pub median: f64,
    low: f64,
    high: f64,
    runs: usize,
}

impl Spread {
    pub fn of(values: &[f64]) -> Self {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        let median = if sorted.len().is_multiple_of(2) {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        } else {
            sorted[middle]
        };
        Self {
            median,
            low: sorted[0],
            high: sorted[sorted.len() - 1],
            runs: sorted.len(),
        }
    }

    /// "median of 3 runs (1.2..1.5)": the runs alternate with the other
    /// side's, so the ranges show how much of a ratio is noise.
    pub fn describe(&self) -> String {
        format!(
            "median of {} runs ({}..{})",
            self.runs,
            format_value(self.low),
            format_value(self.high)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_the_median_and_range_of_the_runs() {
        let odd = Spread::of(&[3.0, 1.0, 2.0]);
        assert_eq!(
            (odd.median, odd.low, odd.high, odd.runs),
            (2.0, 1.0, 3.0, 3)
        );
        assert_eq!(Spread::of(&[4.0, 1.0]).median, 2.5);
        assert_eq!(odd.describe(), "median of 3 runs (1.00..3.00)");
    }
}
