//! The client commands: `put`, `get`, `append`, `del`, `status`.

use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use raftkv::client::{self, ClientConfig, RaftKvClient};
use raftkv::proto::NodeStatus;

/// What a client command does.
pub enum Action {
    Put(String, String),
    Get(String),
    Append(String, String),
    Del(String),
}

pub async fn run(endpoints: &[String], config: ClientConfig, action: Action) -> anyhow::Result<()> {
    let mut c = RaftKvClient::connect(endpoints, config).await?;
    match action {
        Action::Put(k, v) => c.put(&k, &v).await?,
        Action::Append(k, v) => c.append(&k, &v).await?,
        Action::Del(k) => c.delete(&k).await?,
        Action::Get(k) => println!("{}", c.get(&k).await?),
    }
    Ok(())
}

/// Prints every node's status: the endpoints', and every member they name.
pub async fn status(endpoints: &[String], config: ClientConfig) -> anyhow::Result<()> {
    let mut addrs: Vec<String> = endpoints.to_vec();
    let mut rows: Vec<(String, Result<NodeStatus, String>)> = Vec::new();
    let mut i = 0;
    while i < addrs.len() {
        let addr = addrs[i].clone();
        let st = client::status(&addr, &config)
            .await
            .map_err(|e| e.to_string());
        if let Ok(st) = &st {
            for m in &st.members {
                if let Some(a) = &m.client_addr {
                    if !addrs.contains(a) {
                        addrs.push(a.clone());
                    }
                }
            }
        }
        rows.push((addr, st));
        i += 1;
    }
    rows.sort_by_key(|(a, st)| (st.as_ref().map_or(u64::MAX, |s| s.id), a.clone()));
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "id",
        "address",
        "role",
        "term",
        "commit",
        "applied",
        "leader",
        "last index",
        "log bytes",
        "snapshot",
    ]);
    let mut leaders = 0;
    for (addr, st) in &rows {
        match st {
            Ok(s) => {
                if s.role == "leader" {
                    leaders += 1;
                }
                table.add_row([
                    s.id.to_string(),
                    addr.clone(),
                    s.role.clone(),
                    s.term.to_string(),
                    s.commit_index.to_string(),
                    s.applied_index.to_string(),
                    s.leader.map_or("-".into(), |l| l.to_string()),
                    s.last_log_index.to_string(),
                    s.log_bytes.to_string(),
                    s.snapshot_index.to_string(),
                ]);
            }
            Err(e) => {
                table.add_row(["?".into(), addr.clone(), format!("unreachable: {e}")]);
            }
        }
    }
    println!("{table}");
    let up = rows.iter().filter(|(_, s)| s.is_ok()).count();
    println!("{up} of {} nodes answered; {leaders} leader(s)", rows.len());
    if up == 0 {
        anyhow::bail!("no node answered");
    }
    Ok(())
}
