//! Drawing a [`Run`] as one self-contained HTML page.
//!
//! The SVG is drawn here for the whole run; every element that sits at a time carries
//! it in `data-a` (and its end in `data-b`), so that the page's script can move it when
//! the view is zoomed or panned, and hide it when it is out of view.

use crate::{At, Fate, Message, MsgKind, NodeId, Role, Run, StateChange};
use std::fmt::Write as _;

/// Left margin (lane names), plot width and right margin, in pixels.
pub(crate) const LEFT: f64 = 70.0;
pub(crate) const WIDTH: f64 = 1200.0;
pub(crate) const RIGHT: f64 = 20.0;
/// Top of the first lane; lane height and pitch.
const TOP: f64 = 64.0;
const LANE_H: f64 = 40.0;
const PITCH: f64 = 72.0;

/// Styles of the SVG (also used by the static SVG) and of the page around it.
pub(crate) const SVG_CSS: &str = include_str!("svg.css");
const PAGE_CSS: &str = include_str!("viewer.css");
const JS: &str = include_str!("viewer.js");

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// Fixed formatting of a pixel coordinate (one decimal), so output is byte-stable.
pub(crate) fn px(x: f64) -> String {
    format!("{x:.1}")
}

/// Virtual time as seconds with six decimals.
pub(crate) fn secs(t: u64) -> String {
    format!("{}.{:06}s", t / 1_000_000, t % 1_000_000)
}

fn at_str(a: At) -> String {
    format!("step {} at {}", a.step, secs(a.time_us))
}

/// Maps times to x positions for the initial view (the whole run).
pub(crate) struct Scale {
    pub(crate) end: u64,
}

impl Scale {
    pub(crate) fn x(&self, t: u64) -> f64 {
        LEFT + (t as f64) * WIDTH / (self.end as f64)
    }
}

pub(crate) fn lane_y(i: usize) -> f64 {
    TOP + i as f64 * PITCH
}

/// One stretch of a lane with the same role and term.
struct Band {
    start: At,
    end: At,
    role: Role,
    term: u64,
}

/// Cuts a node's state changes into bands; a crash ends the current band.
fn bands(run: &Run, node: NodeId, states: &[&StateChange]) -> Vec<Band> {
    let mut cuts: Vec<(At, Option<(Role, u64)>)> = states
        .iter()
        .map(|s| (s.at, Some((s.role, s.term))))
        .collect();
    for c in run.crashes.iter().filter(|c| c.node == node) {
        cuts.push((c.start, None));
    }
    cuts.sort_by_key(|(at, _)| *at);
    let mut out: Vec<Band> = Vec::new();
    let mut open: Option<(At, Role, u64)> = None;
    for (at, what) in cuts {
        match (open, what) {
            (Some((_, r, t)), Some((r2, t2))) if r == r2 && t == t2 => {}
            (o, w) => {
                if let Some((s, r, t)) = o {
                    out.push(Band {
                        start: s,
                        end: at,
                        role: r,
                        term: t,
                    });
                }
                open = w.map(|(r, t)| (at, r, t));
            }
        }
    }
    if let Some((s, r, t)) = open {
        out.push(Band {
            start: s,
            end: run.end,
            role: r,
            term: t,
        });
    }
    out
}

fn lane(out: &mut String, run: &Run, sc: &Scale, i: usize, node: NodeId) {
    let y = lane_y(i);
    let _ = writeln!(
        out,
        r#"<g class="lane" data-node="{node}" transform="translate(0,{})">"#,
        px(y)
    );
    let _ = writeln!(
        out,
        r#"<text class="lname" x="8" y="{}">n{node}</text><g clip-path="url(#plot)"><rect class="lanebg" x="{}" y="0" width="{}" height="{}"/>"#,
        px(LANE_H / 2.0 + 4.0),
        px(LEFT),
        px(WIDTH),
        px(LANE_H)
    );
    let states: Vec<&StateChange> = run.states.iter().filter(|s| s.node == node).collect();
    for b in bands(run, node, &states) {
        let (x0, x1) = (sc.x(b.start.time_us), sc.x(b.end.time_us));
        let tip = format!(
            "n{node} {} in term {} from {} to {}",
            b.role.name(),
            b.term,
            at_str(b.start),
            at_str(b.end)
        );
        let _ = writeln!(
            out,
            r#"<rect class="band {}" data-a="{}" data-b="{}" x="{}" y="0" width="{}" height="{}" data-tip="{}"/><text class="term" data-a="{}" data-b="{}" x="{}" y="13">t{}</text>"#,
            b.role.name(),
            b.start.time_us,
            b.end.time_us,
            px(x0),
            px((x1 - x0).max(0.5)),
            px(LANE_H),
            esc(&tip),
            b.start.time_us,
            b.end.time_us,
            px(x0 + 2.0),
            b.term
        );
    }
    for c in run.crashes.iter().filter(|c| c.node == node) {
        let end = c.end.unwrap_or(run.end);
        let (x0, x1) = (sc.x(c.start.time_us), sc.x(end.time_us));
        let tip = format!(
            "n{node} down from {} to {}: {}",
            at_str(c.start),
            c.end.map_or("the end".to_string(), at_str),
            c.detail
        );
        let _ = writeln!(
            out,
            r#"<rect class="crash" data-a="{}" data-b="{}" x="{}" y="0" width="{}" height="{}" data-tip="{}"/>"#,
            c.start.time_us,
            end.time_us,
            px(x0),
            px((x1 - x0).max(1.0)),
            px(LANE_H),
            esc(&tip)
        );
    }
    for p in run.partitions.iter().filter(|p| p.nodes.contains(&node)) {
        let end = p.end.unwrap_or(run.end);
        let (x0, x1) = (sc.x(p.start.time_us), sc.x(end.time_us));
        let _ = writeln!(
            out,
            r#"<rect class="cut" data-a="{}" data-b="{}" x="{}" y="{}" width="{}" height="6" data-tip="{}"/>"#,
            p.start.time_us,
            end.time_us,
            px(x0),
            px(LANE_H - 6.0),
            px((x1 - x0).max(1.0)),
            esc(&p.label)
        );
    }
    // Commit advances as ticks under the band; the tooltip and the cursor give values.
    let mut last_commit = 0;
    for s in &states {
        if s.commit != last_commit {
            last_commit = s.commit;
            let x = sc.x(s.at.time_us);
            let _ = writeln!(
                out,
                r#"<line class="ci" data-a="{}" x1="{}" x2="{}" y1="{}" y2="{}" data-tip="n{node} commit {} applied {} ({})"/>"#,
                s.at.time_us,
                px(x),
                px(x),
                px(LANE_H - 10.0),
                px(LANE_H),
                s.commit,
                s.applied,
                at_str(s.at)
            );
        }
    }
    for s in run.snapshots.iter().filter(|s| s.node == node) {
        let x = sc.x(s.at.time_us);
        let what = if s.installed {
            "installed a snapshot"
        } else {
            "took a snapshot"
        };
        let _ = writeln!(
            out,
            r#"<path class="snap" data-a="{}" data-y="{}" transform="translate({},{})" d="M-4,-4h8v8h-8z" data-tip="n{node} {what} through index {} ({})"/>"#,
            s.at.time_us,
            px(LANE_H / 2.0),
            px(x),
            px(LANE_H / 2.0),
            s.index,
            at_str(s.at)
        );
    }
    // Elections: where a node becomes leader of a new term.
    let mut led: Option<u64> = None;
    for s in &states {
        if s.role == Role::Leader && led != Some(s.term) {
            led = Some(s.term);
            let x = sc.x(s.at.time_us);
            let _ = writeln!(
                out,
                r#"<path class="elec" data-a="{}" data-y="-1" transform="translate({},-1)" d="M-6,0L0,-8L6,0z" data-tip="n{node} elected leader of term {} ({})"/>"#,
                s.at.time_us,
                px(x),
                s.term,
                at_str(s.at)
            );
        }
    }
    out.push_str("</g></g>\n");
}

fn message(out: &mut String, run: &Run, sc: &Scale, m: &Message) {
    let index_of = |n: NodeId| run.nodes.iter().position(|x| *x == n).unwrap_or(0);
    let y1 = lane_y(index_of(m.from)) + LANE_H / 2.0;
    let y2full = lane_y(index_of(m.to)) + LANE_H / 2.0;
    let x1 = sc.x(m.sent.time_us);
    let (b, y2, dx, fate_class, fate_text) = match &m.fate {
        Fate::Delivered(at) => (
            at.time_us,
            y2full,
            0.0,
            "",
            format!("delivered {}", at_str(*at)),
        ),
        Fate::Lost(at, why) => (
            at.time_us,
            y2full,
            0.0,
            " lost",
            format!("LOST {} ({why})", at_str(*at)),
        ),
        Fate::Dropped => (
            m.sent.time_us,
            y1 + (y2full - y1) * 0.35,
            10.0,
            " dropped",
            "DROPPED when sent".to_string(),
        ),
        Fate::InFlight => (
            run.end.time_us,
            y2full,
            0.0,
            " inflight",
            "still in flight at the end".to_string(),
        ),
    };
    let tip = format!(
        "n{} → n{} {}{}: {}; term {}, index {}, {} entries, {} bytes; sent {}; {}",
        m.from,
        m.to,
        m.kind.name(),
        if m.duplicate { " (DUPLICATE copy)" } else { "" },
        m.detail,
        m.term,
        m.index,
        m.entries,
        m.bytes,
        at_str(m.sent),
        fate_text
    );
    let dx_attr = if dx > 0.0 {
        format!(r#" data-dx="{}""#, px(dx))
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        r#"<line class="m k-{}{}{}" data-f="{}" data-t="{}" data-a="{}" data-b="{b}"{dx_attr} x1="{}" y1="{}" x2="{}" y2="{}" data-tip="{}"/>"#,
        m.kind.name(),
        fate_class,
        if m.duplicate { " dup" } else { "" },
        m.from,
        m.to,
        m.sent.time_us,
        px(x1),
        px(y1),
        px(sc.x(b) + dx),
        px(y2),
        esc(&tip)
    );
}

/// The page's data for the script: jump targets and every node's state over time.
fn data_json(run: &Run) -> String {
    let mut s = String::new();
    let _ = write!(s, r#"{{"end":{},"nodes":["#, run.end.time_us);
    let ids: Vec<String> = run.nodes.iter().map(|n| n.to_string()).collect();
    s.push_str(&ids.join(","));
    s.push_str(r#"],"elections":["#);
    let mut elections: Vec<u64> = Vec::new();
    let mut led: Vec<(NodeId, u64)> = Vec::new();
    for st in &run.states {
        if st.role == Role::Leader && !led.contains(&(st.node, st.term)) {
            led.push((st.node, st.term));
            elections.push(st.at.time_us);
        }
    }
    elections.sort_unstable();
    s.push_str(&join(&elections));
    s.push_str(r#"],"faults":["#);
    let mut faults: Vec<u64> = Vec::new();
    for c in &run.crashes {
        faults.push(c.start.time_us);
        if let Some(e) = c.end {
            faults.push(e.time_us);
        }
    }
    for p in &run.partitions {
        faults.push(p.start.time_us);
    }
    faults.sort_unstable();
    faults.dedup();
    s.push_str(&join(&faults));
    s.push_str("],\"violation\":");
    match &run.violation {
        Some(v) => {
            let _ = write!(s, "{}", v.at.time_us);
        }
        None => s.push_str("null"),
    }
    // Per node: [time, role (0 follower, 1 candidate, 2 leader, 3 down), term, commit, applied].
    s.push_str(",\"states\":[");
    for (i, node) in run.nodes.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let mut rows: Vec<(At, [u64; 4])> = run
            .states
            .iter()
            .filter(|st| st.node == *node)
            .map(|st| {
                let role = match st.role {
                    Role::Follower => 0,
                    Role::Candidate => 1,
                    Role::Leader => 2,
                };
                (st.at, [role, st.term, st.commit, st.applied])
            })
            .collect();
        for c in run.crashes.iter().filter(|c| c.node == *node) {
            rows.push((c.start, [3, 0, 0, 0]));
        }
        rows.sort_by_key(|(at, _)| *at);
        s.push('[');
        let cells: Vec<String> = rows
            .iter()
            .map(|(at, r)| format!("[{},{},{},{},{}]", at.time_us, r[0], r[1], r[2], r[3]))
            .collect();
        s.push_str(&cells.join(","));
        s.push(']');
    }
    // Per node: [time, reset, truncate_from, snapshot index, snapshot term, first, [terms]].
    s.push_str("],\"logs\":[");
    for (i, node) in run.nodes.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let ops: Vec<String> = run
            .logs
            .iter()
            .filter(|op| op.node == *node)
            .map(|op| {
                let (si, st) = op.snapshot.unwrap_or((0, 0));
                format!(
                    "[{},{},{},{si},{st},{},[{}]]",
                    op.at.time_us,
                    u8::from(op.reset),
                    op.truncate_from,
                    op.first,
                    join(&op.terms)
                )
            })
            .collect();
        s.push('[');
        s.push_str(&ops.join(","));
        s.push(']');
    }
    s.push_str("]}");
    s
}

fn join(v: &[u64]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The timeline itself, shared by the page and the static SVG: definitions, the axis
/// (`axis`: drawn by the page's script, or already drawn), the network row, the lanes,
/// the messages and the violation line.
pub(crate) fn svg_parts(out: &mut String, run: &Run, sc: &Scale, height: f64, axis: &str) {
    // Timed elements are clipped to the plot area, so that zooming does not draw them over
    // the lane names (the clip rectangle is tall enough for any lane's own coordinates).
    let _ = write!(
        out,
        "<defs><clipPath id=\"plot\"><rect x=\"{}\" y=\"-100\" width=\"{}\" height=\"{}\"/></clipPath>",
        px(LEFT),
        px(WIDTH),
        px(height + 200.0)
    );
    out.push_str("<pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#555\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#999\" stroke-width=\"3\"/></pattern></defs>\n");
    out.push_str(axis);
    out.push_str("<g id=\"net\"><g clip-path=\"url(#plot)\">\n");
    for p in &run.partitions {
        let end = p.end.unwrap_or(run.end);
        let (x0, x1) = (sc.x(p.start.time_us), sc.x(end.time_us));
        let tip = format!(
            "{} from {} to {}",
            p.label,
            at_str(p.start),
            p.end.map_or("the end".to_string(), at_str)
        );
        let _ = writeln!(
            out,
            r#"<rect class="part" data-a="{}" data-b="{}" x="{}" y="30" width="{}" height="14" data-tip="{}"/>"#,
            p.start.time_us,
            end.time_us,
            px(x0),
            px((x1 - x0).max(1.0)),
            esc(&tip)
        );
    }
    let _ = writeln!(
        out,
        "</g><text class=\"rowname\" x=\"8\" y=\"41\">network</text>\n</g>"
    );
    for (i, n) in run.nodes.iter().enumerate() {
        lane(out, run, sc, i, *n);
    }
    out.push_str("<g id=\"msgs\" clip-path=\"url(#plot)\">\n");
    for m in &run.messages {
        message(out, run, sc, m);
    }
    out.push_str("</g>\n");
    if let Some(v) = &run.violation {
        let x = sc.x(v.at.time_us);
        let _ = writeln!(
            out,
            r#"<g id="viol" clip-path="url(#plot)"><line class="viol" data-a="{}" x1="{}" x2="{}" y1="24" y2="{}" data-tip="{}"/></g>"#,
            v.at.time_us,
            px(x),
            px(x),
            px(height),
            esc(&format!(
                "{} violated at {}: {}",
                v.invariant,
                at_str(v.at),
                v.message
            ))
        );
    }
}

/// Draws `run` as one self-contained HTML page (no external resources). The same run
/// always gives the same bytes.
pub fn render_html(run: &Run) -> String {
    let sc = Scale {
        end: run.end.time_us.max(1),
    };
    let height = lane_y(run.nodes.len()) + 10.0;
    let mut out = String::with_capacity(256 + run.messages.len() * 320);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(out, "<title>{}</title>", esc(&run.title));
    let _ = writeln!(out, "<style>\n{PAGE_CSS}{SVG_CSS}</style>\n</head>\n<body>");
    let _ = writeln!(out, "<h1>{}</h1>", esc(&run.title));
    for n in &run.notes {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", esc(n));
    }
    if let Some(v) = &run.violation {
        let _ = writeln!(
            out,
            "<div class=\"violation\"><b>{} violated</b> at {}: <pre>{}</pre></div>",
            esc(&v.invariant),
            at_str(v.at),
            esc(&v.message)
        );
    }
    out.push_str("<div id=\"controls\">\n<button id=\"zin\" title=\"zoom in (or mouse wheel)\">+</button><button id=\"zout\" title=\"zoom out\">&minus;</button><button id=\"zall\">whole run</button>\n<button id=\"jelec\">next election</button><button id=\"jfault\">next fault</button>");
    if run.violation.is_some() {
        out.push_str("<button id=\"jviol\">violation</button>");
    }
    out.push_str("\n<span class=\"filters\">nodes:");
    for n in &run.nodes {
        let _ = write!(
            out,
            " <label><input type=\"checkbox\" class=\"fnode\" value=\"{n}\" checked>n{n}</label>"
        );
    }
    out.push_str("</span>\n<span class=\"filters\">messages:");
    for k in MsgKind::ALL {
        let count = run.messages.iter().filter(|m| m.kind == k).count();
        let _ = write!(
            out,
            " <label><input type=\"checkbox\" class=\"fkind\" value=\"{0}\" checked><span class=\"sw k-{0}\"></span>{0} ({count})</label>",
            k.name()
        );
    }
    out.push_str("</span>\n<span id=\"status\"></span>\n</div>\n");
    let _ = writeln!(
        out,
        "<div id=\"wrap\"><svg id=\"tl\" width=\"{}\" height=\"{}\" data-left=\"{}\" data-width=\"{}\">",
        px(LEFT + WIDTH + RIGHT),
        px(height),
        px(LEFT),
        px(WIDTH)
    );
    svg_parts(&mut out, run, &sc, height, "<g id=\"axis\"></g>\n");
    let _ = writeln!(
        out,
        "<line id=\"cursor\" x1=\"0\" x2=\"0\" y1=\"24\" y2=\"{}\"/>\n</svg></div>",
        px(height)
    );
    if !run.logs.is_empty() {
        out.push_str("<div id=\"logview\"><b>Logs</b>: click the timeline to see every node's log at that instant.</div>\n");
    }
    out.push_str("<div id=\"readout\">Move over the timeline to see every node's state at that instant; wheel to zoom, drag to pan.</div>\n<div id=\"tip\"></div>\n");
    // `</` cannot appear inside the JSON (numbers only), so it is safe in a script element.
    let _ = writeln!(
        out,
        "<script id=\"tl-data\" type=\"application/json\">{}</script>",
        data_json(run)
    );
    let _ = writeln!(out, "<script>\n{JS}</script>\n</body>\n</html>");
    out
}
