//! The table: for each ratio the min/median/max of the per-round ratios, both variants' median
//! time per operation, the goal and PASS/MISS; the allocation checks; the failed variants'
//! errors.

use std::fmt::Write as _;

use crate::MIB;
use crate::groups::{Goal, Group};
use crate::run::Measured;

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn sorted(v: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = v.collect();
    v.sort_by(f64::total_cmp);
    v
}

/// A time per operation, in a unit that keeps three significant digits.
pub(crate) fn fmt_time(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.1} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

/// Pads by characters, not bytes (the table has µ, ÷, ≤).
fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    format!("{s}{}", " ".repeat(width.saturating_sub(n)))
}

fn lpad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    format!("{}{s}", " ".repeat(width.saturating_sub(n)))
}

pub(crate) fn print_table(out: &mut String, report: &[(Group, Measured)]) {
    let mut rows: Vec<[String; 9]> = vec![[
        "row".into(),
        "ratio B/A".into(),
        "A (median)".into(),
        "B (median)".into(),
        "min".into(),
        "median".into(),
        "max".into(),
        "goal".into(),
        "result".into(),
    ]];
    let mut errors = Vec::new();
    for (g, m) in report {
        for r in &g.ratios {
            let (den, num) = (&g.variants[r.den], &g.variants[r.num]);
            let failed: Vec<String> = [r.den, r.num]
                .iter()
                .filter_map(|&i| {
                    m.errors[i]
                        .as_ref()
                        .map(|e| format!("{}: {}", g.variants[i].name, e))
                })
                .collect();
            let goal_text = match r.goal {
                Goal::AtMost(x) => format!("≤ {x:.2}"),
                Goal::AtLeast(x) => format!("≥ {x:.2}"),
                Goal::Info => "—".into(),
            };
            if !failed.is_empty() {
                let mut row: [String; 9] = Default::default();
                row[0] = r.row.into();
                row[1] = r.what.clone();
                row[7] = goal_text;
                row[8] = "ERROR".into();
                rows.push(row);
                for e in failed {
                    if !errors.contains(&e) {
                        errors.push(e);
                    }
                }
                continue;
            }
            let pairs: Vec<(f64, f64)> = m.times[r.den]
                .iter()
                .zip(&m.times[r.num])
                .filter_map(|(a, b)| Some(((*a)?, (*b)?)))
                .collect();
            let ratios = sorted(pairs.iter().map(|(a, b)| b / a));
            let a = sorted(pairs.iter().map(|p| p.0));
            let b = sorted(pairs.iter().map(|p| p.1));
            if ratios.is_empty() {
                continue;
            }
            let med = median(&ratios);
            let verdict = match r.goal {
                Goal::AtMost(x) if med <= x => "PASS",
                Goal::AtLeast(x) if med >= x => "PASS",
                Goal::Info => "",
                _ => "MISS",
            };
            rows.push([
                r.row.into(),
                r.what.clone(),
                fmt_time(median(&a) / den.ops as f64),
                fmt_time(median(&b) / num.ops as f64),
                format!("{:.3}", ratios[0]),
                format!("{med:.3}"),
                format!("{:.3}", ratios[ratios.len() - 1]),
                goal_text,
                verdict.into(),
            ]);
        }
        for c in &g.blocks {
            let Some(max) = m.blocks[c.variant] else {
                continue;
            };
            let mib = |b: u64| format!("{:.2} MiB", b as f64 / MIB as f64);
            let (goal, verdict) = match c.limit {
                Some(l) => (
                    format!("≤ {}", mib(l)),
                    if max <= l { "PASS" } else { "MISS" },
                ),
                None => ("—".into(), ""),
            };
            let mut row: [String; 9] = Default::default();
            row[0] = c.row.into();
            row[1] = c.what.clone();
            row[3] = mib(max);
            row[5] = "(largest)".into();
            row[7] = goal;
            row[8] = verdict.into();
            rows.push(row);
        }
    }
    let widths: Vec<usize> = (0..9)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let _ = writeln!(
        out,
        "A and B medians are per operation (one whole-file copy, one call, one exec)."
    );
    for (k, r) in rows.iter().enumerate() {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            // Text columns left-aligned, numbers right-aligned.
            let c = if i <= 1 || i >= 7 {
                pad(cell, widths[i])
            } else {
                lpad(cell, widths[i])
            };
            line.push_str(&c);
            line.push_str("  ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
        if k == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * 8;
            let _ = writeln!(out, "{}", "-".repeat(total));
        }
    }
    for e in errors {
        let _ = writeln!(out, "error: {e}");
    }
}
