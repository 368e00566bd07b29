//! Bar charts as SVG drawn on the server (no script, no inline style: colours come from the
//! stylesheet's classes), from the store's per-minute and per-hour rollups.

use maud::{html, Markup};

/// The ranges a chart covers: bucket size and count.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Hour,
    Day,
    Month,
}

impl Range {
    pub fn parse(s: Option<&str>) -> Range {
        match s {
            Some("day") => Range::Day,
            Some("month") => Range::Month,
            _ => Range::Hour,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Range::Hour => "hour",
            Range::Day => "day",
            Range::Month => "month",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Range::Hour => "last hour",
            Range::Day => "last day",
            Range::Month => "last 30 days",
        }
    }

    /// (bucket length in ms, number of buckets)
    pub fn buckets(self) -> (i64, usize) {
        match self {
            Range::Hour => (60_000, 60),
            Range::Day => (3_600_000, 24),
            Range::Month => (86_400_000, 30),
        }
    }

    /// The first bucket's start, aligned to the bucket length.
    pub fn start(self, now_ms: i64) -> i64 {
        let (len, n) = self.buckets();
        (now_ms.div_euclid(len) - n as i64 + 1) * len
    }
}

/// Counts per bucket (of `len` ms, `n` of them from `start`) of the series `pick` selects.
pub fn line(buckets: &[kevlar_store::Bucket], start: i64, len: i64, n: usize, pick: impl Fn(&str) -> bool) -> Vec<i64> {
    let mut v = vec![0; n];
    for b in buckets.iter().filter(|b| pick(&b.series)) {
        let i = (b.start_ms - start).div_euclid(len);
        if (0..n as i64).contains(&i) {
            v[i as usize] += b.n;
        }
    }
    v
}

/// One chart's bars: counts per bucket, oldest first.
pub fn bars(title: &str, class: &str, counts: &[i64], start_ms: i64, bucket_ms: i64) -> Markup {
    const W: f64 = 600.0;
    const H: f64 = 100.0;
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let n = counts.len().max(1) as f64;
    let bw = W / n;
    let total: i64 = counts.iter().sum();
    html! {
        figure.chart {
            figcaption { (title) ": " strong { (total) } }
            svg viewBox={ "0 0 " (W) " " (H) } role="img" aria-label={ (title) ", " (total) " in all" } {
                @for (i, c) in counts.iter().enumerate() {
                    @let h = (*c as f64 / max * (H - 2.0)).max(if *c > 0 { 1.0 } else { 0.0 });
                    rect class=(class) x=(format!("{:.1}", i as f64 * bw + 0.5)) y=(format!("{:.1}", H - h))
                        width=(format!("{:.1}", (bw - 1.0).max(0.5))) height=(format!("{:.1}", h)) {
                        title { (crate::format::ms_time(start_ms + i as i64 * bucket_ms)) ": " (c) }
                    }
                }
                line.axis x1="0" y1=(H) x2=(W) y2=(H) {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_align_and_bars_scale() {
        let (len, n) = Range::Day.buckets();
        let start = Range::Day.start(10 * 86_400_000 + 5);
        assert_eq!(start % len, 0);
        assert_eq!(start + (n as i64 - 1) * len, 10 * 86_400_000);
        let svg = bars("Requests", "req", &[0, 5, 10], 0, 60_000).into_string();
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("<strong>15</strong>"), "{svg}");
    }
}
