//! Medians, 95th percentiles and ratios, the way every table of
//! docs/benchmarks.md shows them.

/// One series of measurements (milliseconds, or counts).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Series(pub Vec<f64>);

impl Series {
    pub fn push(&mut self, v: f64) {
        self.0.push(v);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value below which `q` (0..=1) of the samples lie (nearest rank).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        let mut v = self.0.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        Some(v[rank - 1])
    }

    pub fn median(&self) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        let mut v = self.0.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        Some(if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        })
    }

    pub fn p95(&self) -> Option<f64> {
        self.quantile(0.95)
    }

    pub fn sum(&self) -> f64 {
        self.0.iter().sum()
    }
}

/// `a / b` as `0.52x`, or `-` when either is missing or b is zero.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

/// A number for a table cell: integers as such, else one decimal.
pub fn cell(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if (v - v.round()).abs() < 1e-9 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p95() {
        let s = Series((1..=20).map(f64::from).collect());
        assert_eq!(s.median(), Some(10.5));
        assert_eq!(s.p95(), Some(19.0));
        let one = Series(vec![7.0]);
        assert_eq!((one.median(), one.p95()), (Some(7.0), Some(7.0)));
        assert_eq!(Series::default().median(), None);
        assert_eq!(ratio(Some(1.0), Some(4.0)), "0.25x");
        assert_eq!(ratio(Some(1.0), None), "-");
        assert_eq!(cell(Some(3.0)), "3");
        assert_eq!(cell(Some(3.26)), "3.3");
    }
}
