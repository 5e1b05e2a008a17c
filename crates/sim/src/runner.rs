//! Running seeds: one at a time with panics captured, many with a summary, and shrinking
//! a failing run to a simpler one.

use crate::config::{ConfigError, SimConfig};
use crate::invariant::Violation;
use crate::sim::{Counters, Outcome, RunStats, Simulator};
use crate::trace::{Trace, TraceMode};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;
use std::time::Duration;

/// Everything about one seed's run.
#[derive(Debug)]
pub struct SeedReport {
    /// The seed.
    pub seed: u64,
    /// The settings it ran with (resolved: running them again with the same seed
    /// replays the same run).
    pub config: SimConfig,
    /// What it did.
    pub stats: RunStats,
    /// How it ended.
    pub outcome: Result<Outcome, Violation>,
    /// The trace kept.
    pub trace: Trace,
    /// The cluster's state at the end, one line per node.
    pub cluster: String,
}

impl SeedReport {
    /// The violation, if the run found one.
    pub fn violation(&self) -> Option<&Violation> {
        self.outcome.as_ref().err()
    }

    /// A readable account of a failed run: seed, violation, settings, cluster state and
    /// the last `last` trace records (idle ticks left out).
    pub fn failure_report(&self, last: usize) -> String {
        let Some(v) = self.violation() else {
            return format!("seed {}: no violation", self.seed);
        };
        format!(
            "seed {seed}: {v}\n\nsettings:\n{cfg}\n\ncluster at the violation:\n{cluster}\nlast events (step, virtual time; idle ticks omitted):\n{trace}",
            seed = self.seed,
            cfg = self.config,
            cluster = self.cluster,
            trace = self.trace.render_compact(last),
        )
    }
}

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn install_quiet_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if QUIET.with(|q| q.get()) {
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(info.to_string()));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic into `Err(message)` without printing it.
fn catch_quiet<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_quiet_hook();
    QUIET.with(|q| q.set(true));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    r.map_err(|_| {
        LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| "panic without a message".to_string())
    })
}

/// Runs one seed to its end. A panic inside the core or the simulator is reported as a
/// violation of `no-panic`.
pub fn run_seed(seed: u64, cfg: &SimConfig, mode: TraceMode) -> Result<SeedReport, ConfigError> {
    run_seed_with(seed, cfg, mode, |_| {})
}

/// [`run_seed`], letting `setup` prepare the simulator first (e.g. add an observer of
/// its own to the checker; one that never objects leaves the run unchanged).
pub(crate) fn run_seed_with(
    seed: u64,
    cfg: &SimConfig,
    mode: TraceMode,
    setup: impl FnOnce(&mut Simulator),
) -> Result<SeedReport, ConfigError> {
    let mut sim = Simulator::new(seed, cfg, mode)?;
    setup(&mut sim);
    let outcome = match catch_quiet(|| sim.run()) {
        Ok(r) => r,
        Err(msg) => Err(Violation {
            invariant: "no-panic",
            detail: msg,
            step: sim.world().step,
            time_us: sim.world().now,
        }),
    };
    Ok(SeedReport {
        seed,
        config: sim.config().clone(),
        stats: sim.stats(),
        outcome,
        cluster: sim.world().describe(),
        trace: sim.trace().clone(),
    })
}

/// Totals over many seeds.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// Events, time, elections, commits, messages and faults, summed over the seeds.
    pub counts: Counters,
    /// Seeds that broke an invariant, with the invariant's name.
    pub failures: Vec<(u64, &'static str)>,
    /// How many seeds became live after how many ticks.
    pub liveness_ticks: BTreeMap<u64, u64>,
    /// How many seeds became live after how many ticks beyond their catch-up allowance
    /// (the part the base bound must cover).
    pub liveness_excess: BTreeMap<u64, u64>,
    /// Largest catch-up allowance granted.
    pub max_allowance: u64,
    /// Wall-clock time spent.
    pub wall: Duration,
}

impl Summary {
    /// Adds one seed's report.
    pub fn add(&mut self, r: &SeedReport) {
        self.seeds += 1;
        let s = &r.stats;
        self.counts.add(&s.counts);
        if let Some(t) = s.liveness_ticks {
            *self.liveness_ticks.entry(t).or_default() += 1;
            *self
                .liveness_excess
                .entry(t.saturating_sub(s.liveness_allowance))
                .or_default() += 1;
        }
        self.max_allowance = self.max_allowance.max(s.liveness_allowance);
        if let Some(v) = r.violation() {
            self.failures.push((r.seed, v.invariant));
        }
    }

    /// Adds another summary (of disjoint seeds) to this one.
    pub fn merge(&mut self, o: &Summary) {
        self.seeds += o.seeds;
        self.counts.add(&o.counts);
        self.failures.extend(o.failures.iter().copied());
        self.failures.sort();
        for (t, c) in &o.liveness_ticks {
            *self.liveness_ticks.entry(*t).or_default() += c;
        }
        for (t, c) in &o.liveness_excess {
            *self.liveness_excess.entry(*t).or_default() += c;
        }
        self.max_allowance = self.max_allowance.max(o.max_allowance);
    }

    /// Number of seeds that broke an invariant.
    pub fn violations(&self) -> u64 {
        self.failures.len() as u64
    }

    /// The smallest tick count within which a fraction `q` of the live seeds became live.
    pub fn liveness_quantile(&self, q: f64) -> Option<u64> {
        quantile(&self.liveness_ticks, q)
    }

    /// Like [`liveness_quantile`](Self::liveness_quantile), for the ticks beyond each
    /// seed's catch-up allowance.
    pub fn excess_quantile(&self, q: f64) -> Option<u64> {
        quantile(&self.liveness_excess, q)
    }

    /// Steps per wall-clock second.
    pub fn steps_per_sec(&self) -> f64 {
        self.counts.steps as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// Seeds per wall-clock minute.
    pub fn seeds_per_min(&self) -> f64 {
        self.seeds as f64 * 60.0 / self.wall.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seeds:           {}", self.seeds)?;
        writeln!(f, "steps:           {}", self.counts.steps)?;
        writeln!(
            f,
            "simulated time:  {:.1} s ({:.2} h)",
            self.counts.sim_time_us as f64 / 1e6,
            self.counts.sim_time_us as f64 / 3.6e9
        )?;
        writeln!(f, "elections:       {}", self.counts.elections)?;
        writeln!(
            f,
            "commits:         {} entries ({} proposals, {} acknowledged)",
            self.counts.commits, self.counts.proposals, self.counts.acked
        )?;
        writeln!(
            f,
            "reads:           {} asked, {} answered (each checked against the committed log)",
            self.counts.reads, self.counts.reads_answered
        )?;
        if self.counts.conf_changes + self.counts.transfers > 0 {
            writeln!(
                f,
                "membership:      {} configuration changes accepted, {} leadership transfers started",
                self.counts.conf_changes, self.counts.transfers
            )?;
        }
        if self.counts.reads_leased > 0 {
            writeln!(
                f,
                "                 {} taken under a leader's lease (no heartbeat round), {} inherited past a limbo range",
                self.counts.reads_leased, self.counts.reads_inherited
            )?;
        }
        writeln!(f, "messages:        {}", self.counts.messages)?;
        writeln!(f, "faults injected: {}", self.counts.faults)?;
        match (
            self.liveness_quantile(0.5),
            self.liveness_quantile(0.99),
            self.liveness_ticks.keys().next_back(),
        ) {
            (Some(p50), Some(p99), Some(max)) => {
                writeln!(
                    f,
                    "liveness:        ticks from heal to a commit on every node: p50 {p50}, p99 {p99}, max {max}"
                )?;
                writeln!(
                    f,
                    "                 beyond the catch-up allowance (max {}): p50 {}, p99 {}, max {}",
                    self.max_allowance,
                    self.excess_quantile(0.5).unwrap_or(0),
                    self.excess_quantile(0.99).unwrap_or(0),
                    self.liveness_excess.keys().next_back().copied().unwrap_or(0)
                )?;
            }
            _ => writeln!(f, "liveness:        not measured")?,
        }
        let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
        for (_, inv) in &self.failures {
            *by_kind.entry(inv).or_default() += 1;
        }
        let kinds: Vec<String> = by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
        if kinds.is_empty() {
            writeln!(f, "violations:      0")?;
        } else {
            writeln!(
                f,
                "violations:      {} ({})",
                self.violations(),
                kinds.join(", ")
            )?;
        }
        for (seed, inv) in self.failures.iter().take(20) {
            writeln!(f, "  seed {seed}: {inv}")?;
        }
        if self.failures.len() > 20 {
            writeln!(f, "  ... and {} more", self.failures.len() - 20)?;
        }
        write!(
            f,
            "wall time:       {:.1} s ({:.0} steps/s, {:.0} seeds/min)",
            self.wall.as_secs_f64(),
            self.steps_per_sec(),
            self.seeds_per_min()
        )
    }
}

fn quantile(hist: &BTreeMap<u64, u64>, q: f64) -> Option<u64> {
    let total: u64 = hist.values().sum();
    if total == 0 {
        return None;
    }
    let want = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut acc = 0;
    for (t, c) in hist {
        acc += c;
        if acc >= want {
            return Some(*t);
        }
    }
    hist.keys().next_back().copied()
}

/// Looks for a simpler failing run than `failed`: the same seed with fault kinds switched
/// off, fewer nodes or a shorter chaos phase, keeping each change under which the same
/// invariant still breaks, in no more steps. Returns the simplest failing run found
/// (`failed`'s own run, re-run, when nothing simpler fails), or `None` if `failed` did
/// not fail.
pub fn shrink(failed: &SeedReport, mode: TraceMode) -> Option<SeedReport> {
    let target = failed.violation()?.invariant;
    let seed = failed.seed;
    let mut best_cfg = failed.config.clone();
    let mut best = run_seed(seed, &best_cfg, mode).ok()?;
    let still_fails = |r: &SeedReport, best: &SeedReport| match (r.violation(), best.violation()) {
        (Some(v), Some(b)) => v.invariant == target && v.step <= b.step,
        _ => false,
    };
    type Edit = fn(&mut SimConfig) -> bool;
    let edits: [Edit; 13] = [
        |c| std::mem::replace(&mut c.faults.drop, 0.0) > 0.0,
        |c| std::mem::replace(&mut c.faults.duplicate, 0.0) > 0.0,
        |c| std::mem::replace(&mut c.faults.delay, 0.0) > 0.0,
        |c| std::mem::replace(&mut c.faults.reorder, 0.0) > 0.0,
        |c| std::mem::replace(&mut c.faults.partition, 0.0) > 0.0,
        |c| std::mem::replace(&mut c.faults.crash, 0.0) > 0.0,
        |c| std::mem::replace(&mut c.faults.sync_lag, 0.0) > 0.0,
        |c| std::mem::replace(&mut c.faults.lose_unsynced, 0.0) > 0.0,
        |c| std::mem::replace(&mut c.faults.heal, 0.0) > 0.0,
        |c| {
            let before = c.nodes;
            c.nodes = Some(3);
            before != c.nodes
        },
        |c| {
            let before = c.nodes;
            c.nodes = Some(5).min(before);
            before != c.nodes
        },
        |c| {
            let before = c.workload.max_batch;
            c.workload.max_batch = 1;
            before != 1
        },
        |c| {
            let before = c.core.max_inflight_msgs;
            c.core.max_inflight_msgs = 64;
            before != 64
        },
    ];
    let mut improved = true;
    while improved {
        improved = false;
        for edit in edits {
            let mut cfg = best_cfg.clone();
            if !edit(&mut cfg) {
                continue;
            }
            let Ok(r) = run_seed(seed, &cfg, mode) else {
                continue;
            };
            if still_fails(&r, &best) {
                best_cfg = cfg;
                best = r;
                improved = true;
            }
        }
    }
    // The chaos phase need not outlast the violation.
    if let Some(v) = best.violation() {
        if v.step <= best_cfg.chaos_steps {
            let mut cfg = best_cfg.clone();
            cfg.chaos_steps = v.step;
            if let Ok(r) = run_seed(seed, &cfg, mode) {
                if still_fails(&r, &best) {
                    best = r;
                }
            }
        }
    }
    Some(best)
}
