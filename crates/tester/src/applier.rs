//! The tester's applier: reads a peer's apply channel, checks every message against what
//! the other peers applied and, in snapshot mode, snapshots every 10 entries.

use crate::cluster::Shared;
use bytes::Bytes;
use raft::{ApplyMsg, Index, Raft};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The blob the snapshotting applier hands to Raft: the index and every command through it.
#[derive(serde::Serialize, serde::Deserialize)]
struct SnapshotBlob {
    index: Index,
    commands: Vec<(Index, Bytes)>,
}

/// Reads peer `i`'s apply channel and checks every message against what the others
/// applied. In snapshot mode it also snapshots every 10 entries (the classic
/// `applierSnap`) and requires each command to follow the last one applied exactly.
pub(crate) async fn applier(
    i: usize,
    mut rx: mpsc::Receiver<ApplyMsg>,
    shared: Arc<Mutex<Shared>>,
    created: Instant,
    raft: Raft,
    snapshots: bool,
) {
    let mut last_applied: Index = 0;
    while let Some(msg) = rx.recv().await {
        let lock = || shared.lock().unwrap_or_else(|e| e.into_inner());
        // The leader's no-op (appended before serving reads) holds no command: it is
        // recorded as an empty one, so that indices stay contiguous in every check.
        let msg = match msg {
            ApplyMsg::NoOp { index, term } | ApplyMsg::Config { index, term, .. } => {
                ApplyMsg::Command {
                    index,
                    term,
                    command: Bytes::new(),
                }
            }
            other => other,
        };
        match msg {
            ApplyMsg::NoOp { .. } | ApplyMsg::Config { .. } => {}
            ApplyMsg::Command {
                index,
                term,
                command,
            } => {
                let blob = {
                    let mut s = lock();
                    let mut err = check_apply(&s, i, index, &command);
                    if snapshots && index != last_applied + 1 {
                        err = Some(format!(
                            "server {i} apply out of order: expected index {}, got {index}",
                            last_applied + 1
                        ));
                    }
                    if let Some(e) = err {
                        s.apply_err.get_or_insert(e);
                    }
                    s.logs[i].insert(index, command);
                    s.max_index = s.max_index.max(index);
                    let ms = created.elapsed().as_millis();
                    s.events
                        .push(format!("{ms:>8} apply p{i} index {index} term {term}"));
                    last_applied = index;
                    (snapshots && (index + 1) % 10 == 0).then(|| SnapshotBlob {
                        index,
                        commands: s.logs[i]
                            .range(..=index)
                            .map(|(k, v)| (*k, v.clone()))
                            .collect(),
                    })
                };
                if let Some(blob) = blob {
                    match postcard::to_stdvec(&blob) {
                        Ok(data) => {
                            // A killed peer refuses; that is fine.
                            let _ = raft.snapshot(index, Bytes::from(data)).await;
                        }
                        Err(e) => {
                            lock()
                                .apply_err
                                .get_or_insert(format!("cannot encode snapshot: {e}"));
                        }
                    }
                }
            }
            ApplyMsg::Snapshot { index, term, data } => {
                let mut s = lock();
                match postcard::from_bytes::<SnapshotBlob>(&data) {
                    Ok(blob) if blob.index == index => {
                        for (k, c) in &blob.commands {
                            if let Some(e) =
                                check_apply(&s, i, *k, c).filter(|e| !e.contains("order"))
                            {
                                s.apply_err.get_or_insert(e);
                            }
                        }
                        s.logs[i] = blob.commands.into_iter().collect();
                        s.snapshots_applied += 1;
                        s.max_index = s.max_index.max(index);
                        let ms = created.elapsed().as_millis();
                        s.events
                            .push(format!("{ms:>8} snapshot p{i} index {index} term {term}"));
                        last_applied = index;
                    }
                    Ok(blob) => {
                        s.apply_err.get_or_insert(format!(
                            "server {i} snapshot index {index} holds index {}",
                            blob.index
                        ));
                    }
                    Err(e) => {
                        s.apply_err.get_or_insert(format!(
                            "server {i} cannot decode snapshot {index}: {e}"
                        ));
                    }
                }
            }
        }
    }
}

/// What is wrong with peer `i` applying `command` at `index`, if anything.
fn check_apply(s: &Shared, i: usize, index: Index, command: &Bytes) -> Option<String> {
    for (j, log) in s.logs.iter().enumerate() {
        if let Some(other) = log.get(&index) {
            if other != command {
                return Some(format!(
                    "commit index={index} server={i} {:?} != server={j} {:?}",
                    String::from_utf8_lossy(command),
                    String::from_utf8_lossy(other)
                ));
            }
        }
    }
    if index > 1 && !s.logs[i].contains_key(&(index - 1)) {
        return Some(format!("server {i} apply out of order {index}"));
    }
    None
}
