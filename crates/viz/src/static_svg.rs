//! A run as one static SVG file, for documents (a README shows it as an image): the
//! whole run as the page first draws it, with the time axis drawn, no script, and the
//! log view at chosen instants under the lanes.

use crate::logs::{log_at, state_at};
use crate::render::{esc, lane_y, px, secs, svg_parts, Scale, LEFT, RIGHT, SVG_CSS, WIDTH};
use crate::{Role, Run};
use std::fmt::Write as _;

/// Indices shown per log row, and the width of one box.
const LOG_N: u64 = 120;
const BOX: f64 = 9.0;
/// Height of one log row, and of a log view's heading.
const ROW: f64 = 24.0;
const HEAD: f64 = 30.0;

/// Extra styles: the heading and the log view.
const EXTRA_CSS: &str = "\
svg { background: #fff; }
.title { font: bold 15px system-ui, sans-serif; fill: #222; }
.sub, .lvh { font: 12px system-ui, sans-serif; fill: #444; }
.lvi { font: 9px monospace; fill: #666; }
.lvn { font: bold 11px monospace; fill: #333; }
.cmt { stroke: #000; stroke-width: 2; }
.app { fill: #06c; }
.lvline { stroke: #06c; stroke-dasharray: 3 3; stroke-width: 1.2; }
";

/// The axis at the whole run's scale: about ten ticks at a round step.
fn axis(out: &mut String, sc: &Scale, height: f64) {
    let end = sc.end;
    let raw = (end as f64 / 10.0).max(1.0);
    let p = 10f64.powf(raw.log10().floor());
    let step = if raw / p > 5.0 {
        10.0 * p
    } else if raw / p > 2.0 {
        5.0 * p
    } else if raw / p > 1.0 {
        2.0 * p
    } else {
        p
    };
    let step = (step as u64).max(1);
    out.push_str("<g id=\"axis\">");
    let mut t = 0;
    while t <= end {
        let x = px(sc.x(t));
        let label = if step < 1_000 {
            format!("{}.{:03}ms", t / 1_000, t % 1_000)
        } else if step < 1_000_000 {
            format!("{}ms", t / 1_000)
        } else {
            format!("{}s", t / 1_000_000)
        };
        let _ = write!(
            out,
            "<g class=\"tick\"><line x1=\"{x}\" x2=\"{x}\" y1=\"18\" y2=\"{}\"/><text x=\"{x}\" y=\"12\">{label}</text></g>",
            px(height)
        );
        t += step;
    }
    out.push_str("</g>\n");
}

/// The colour of a term, as the page's log view gives it.
fn hue(term: u64) -> String {
    format!("hsl({},65%,72%)", (term * 67) % 360)
}

/// One log view: every node's log at `t_us`, from `y` down; returns its height.
fn log_view(out: &mut String, run: &Run, sc: &Scale, t_us: u64, y: f64) -> f64 {
    let logs: Vec<_> = run.nodes.iter().map(|n| log_at(run, *n, t_us)).collect();
    let hi = logs
        .iter()
        .map(|l| l.last_index())
        .max()
        .unwrap_or(0)
        .max(1);
    let lo = hi.saturating_sub(LOG_N - 1).max(1);
    let x0 = LEFT;
    let bx = |i: u64| x0 + (i - lo) as f64 * BOX;
    let _ = writeln!(
        out,
        "<g class=\"logview\" transform=\"translate(0,{})\"><text class=\"lvh\" x=\"8\" y=\"12\"><tspan font-weight=\"bold\">Logs at {}</tspan> (indices {lo}..{hi}; box colour = term, black bar after the commit index, blue triangle under the last applied)</text>",
        px(y),
        secs(t_us)
    );
    let mut x = lo.div_ceil(10) * 10;
    while x <= hi {
        let _ = write!(
            out,
            "<text class=\"lvi\" x=\"{}\" y=\"{}\">{x}</text>",
            px(bx(x)),
            px(HEAD - 4.0)
        );
        x += 10;
    }
    out.push('\n');
    for (row, (node, log)) in run.nodes.iter().zip(&logs).enumerate() {
        let ry = HEAD + row as f64 * ROW;
        let st = state_at(run, *node, t_us);
        let _ = write!(
            out,
            "<text class=\"lvn\" x=\"8\" y=\"{}\">n{node}</text>",
            px(ry + 12.0)
        );
        if log.base >= lo {
            let _ = write!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"16\" fill=\"#888\"/>",
                px(bx(log.base)),
                px(ry),
                px(BOX - 1.0)
            );
        }
        for (k, term) in log.terms.iter().enumerate() {
            let idx = log.base + 1 + k as u64;
            if idx < lo {
                continue;
            }
            let _ = write!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"16\" fill=\"{}\"/>",
                px(bx(idx)),
                px(ry),
                px(BOX - 1.0),
                hue(*term)
            );
        }
        let what = match st {
            Some(s) => {
                if s.commit >= lo {
                    let cx = bx(s.commit) + BOX - 0.5;
                    let _ = write!(
                        out,
                        "<line class=\"cmt\" x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\"/>",
                        px(cx),
                        px(ry - 2.0),
                        px(ry + 18.0)
                    );
                }
                if s.applied >= lo {
                    let ax = bx(s.applied) + BOX / 2.0;
                    let _ = write!(
                        out,
                        "<path class=\"app\" d=\"M{},{}l-4,6h8z\"/>",
                        px(ax),
                        px(ry + 17.0)
                    );
                }
                let role = match s.role {
                    Role::Leader => "leader",
                    Role::Candidate => "candidate",
                    Role::Follower => "follower",
                };
                format!("{role}, term {}", s.term)
            }
            None => "down".to_string(),
        };
        let _ = writeln!(
            out,
            "<text class=\"lvn\" x=\"{}\" y=\"{}\">{what}</text>",
            px(bx(lo) + LOG_N as f64 * BOX + 8.0),
            px(ry + 12.0)
        );
    }
    out.push_str("</g>\n");
    // Where this instant is on the timeline.
    let tx = px(sc.x(t_us));
    let _ = writeln!(
        out,
        "<line class=\"lvline\" x1=\"{tx}\" x2=\"{tx}\" y1=\"24\" y2=\"{}\"/>",
        px(lane_y(run.nodes.len()))
    );
    HEAD + run.nodes.len() as f64 * ROW + 10.0
}

/// Draws `run` as one static, self-contained SVG (no script, no external resource): the
/// heading, the time axis, the network row, the lanes and messages as the interactive
/// page first shows them, and under them the log view at each instant of `logs_at_us`
/// (virtual microseconds; a dashed blue line marks each on the timeline). The same input
/// always gives the same bytes.
pub fn render_svg(run: &Run, logs_at_us: &[u64]) -> String {
    let sc = Scale {
        end: run.end.time_us.max(1),
    };
    // The page puts the heading above the SVG; here it is inside, above the axis.
    let head = 44.0;
    let timeline_h = lane_y(run.nodes.len()) + 10.0;
    let log_h = HEAD + run.nodes.len() as f64 * ROW + 10.0;
    let height = head + timeline_h + logs_at_us.len() as f64 * log_h;
    let width = LEFT + WIDTH + RIGHT + 90.0;
    let mut out = String::with_capacity(4096 + run.messages.len() * 320);
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\">",
        px(width),
        px(height)
    );
    let _ = writeln!(out, "<style>\n{SVG_CSS}{EXTRA_CSS}</style>");
    let _ = writeln!(
        out,
        "<text class=\"title\" x=\"8\" y=\"18\">{}</text>",
        esc(&run.title)
    );
    if let Some(n) = run.notes.first() {
        let _ = writeln!(
            out,
            "<text class=\"sub\" x=\"8\" y=\"36\">{}</text>",
            esc(n)
        );
    }
    let _ = writeln!(out, "<g transform=\"translate(0,{})\">", px(head));
    let mut ax = String::new();
    axis(&mut ax, &sc, timeline_h);
    svg_parts(&mut out, run, &sc, timeline_h, &ax);
    let mut y = timeline_h;
    for t in logs_at_us {
        y += log_view(&mut out, run, &sc, *t, y);
    }
    out.push_str("</g>\n</svg>\n");
    out
}
