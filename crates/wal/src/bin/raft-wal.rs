//! `raft-wal`: look inside a WAL data directory.
//!
//! - `raft-wal inspect DIR`: segments, records, terms and index ranges.
//! - `raft-wal verify DIR --cluster C --node N`: full recovery, read-only; exits non-zero
//!   and names the file and offset if the directory is damaged.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Inspect or verify a raft-wal data directory")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print segments, records, terms and index ranges.
    Inspect {
        /// The data directory.
        dir: PathBuf,
    },
    /// Check every record's CRC and the directory's consistency; change nothing.
    Verify {
        /// The data directory.
        dir: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let fs = raft_wal::fs::StdFs;
    match cli.cmd {
        Cmd::Inspect { dir } => {
            let report = raft_wal::inspect::inspect(&fs, &dir)
                .with_context(|| format!("inspecting {}", dir.display()))?;
            print!("{report}");
        }
        Cmd::Verify { dir } => {
            raft_wal::inspect::verify(&fs, &dir)
                .with_context(|| format!("verifying {}", dir.display()))?;
            println!("{}: OK", dir.display());
        }
    }
    Ok(())
}
