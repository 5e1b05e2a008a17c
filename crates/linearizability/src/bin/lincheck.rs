//! `lincheck FILE [--budget-ms N]`: checks a JSON-lines key/value history
//! for linearizability.
//!
//! Exit codes: 0 linearizable, 1 not linearizable, 2 unknown (time budget
//! exhausted), 3 bad input (unreadable or malformed file, bad arguments).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use linearizability::{check, CheckResult, History};

/// Checks a JSON-lines key/value history for linearizability.
#[derive(Debug, Parser)]
#[command(name = "lincheck", version, about)]
struct Cli {
    /// The history file: one JSON operation per line.
    file: PathBuf,
    /// Give up (verdict "unknown") after this many milliseconds of checking.
    #[arg(long, default_value_t = 60_000)]
    budget_ms: u64,
}

const EXIT_BAD_INPUT: u8 = 3;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let bad = e.use_stderr();
            // Printing help/usage can only fail if stdout/stderr is gone.
            let _ = e.print();
            return if bad {
                ExitCode::from(EXIT_BAD_INPUT)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lincheck: bad input: {e:#}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let history = History::read_jsonl(&cli.file)
        .with_context(|| format!("cannot load history {}", cli.file.display()))?;
    let start = Instant::now();
    let result = check(&history, Duration::from_millis(cli.budget_ms));
    let elapsed = start.elapsed();

    // Build the whole output first so a closed stdout (e.g. `| head`) cannot
    // cause a panic; a failed write is ignored, the exit code still tells.
    let mut out = String::new();
    let code = match &result {
        CheckResult::Linearizable => {
            out.push_str("linearizable\n");
            0
        }
        CheckResult::NotLinearizable { report, .. } => {
            out.push_str("NOT linearizable\n");
            out.push_str(&report.to_string());
            1
        }
        CheckResult::Unknown { undecided_keys } => {
            out.push_str("unknown\n");
            out.push_str(&format!(
                "time budget of {} ms exhausted; {} undecided key(s): {}\n",
                cli.budget_ms,
                undecided_keys.len(),
                undecided_keys.join(", ")
            ));
            2
        }
    };
    out.push_str(&format!(
        "operations: {}, keys: {}, time: {:.3} ms\n",
        history.len(),
        history.keys().len(),
        elapsed.as_secs_f64() * 1e3
    ));
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush());
    Ok(ExitCode::from(code))
}
