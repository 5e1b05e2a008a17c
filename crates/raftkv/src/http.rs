//! The HTTP port: `GET /metrics` (Prometheus text, rendered by the exporter) and
//! `GET /health` (200 while the node serves, 503 otherwise). Each connection gets one
//! answer and is closed: scrapers and probes need nothing more.

use crate::ServedNode;
use metrics_exporter_prometheus::PrometheusHandle;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Serves the HTTP port until `stop` turns true.
pub async fn serve<N: ServedNode>(
    listener: TcpListener,
    metrics: PrometheusHandle,
    kv: N,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            biased;
            _ = crate::until_stopped(&mut stop) => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let (metrics, kv) = (metrics.clone(), kv.clone());
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(5), answer(stream, metrics, kv)).await;
                });
            }
        }
    }
}

async fn answer<N: ServedNode>(
    mut stream: TcpStream,
    metrics: PrometheusHandle,
    kv: N,
) -> std::io::Result<()> {
    // The request line is all we read; 2 KiB is plenty for `GET /metrics HTTP/1.1`.
    let mut buf = vec![0u8; 2048];
    let n = stream.read(&mut buf).await?;
    let head = String::from_utf8_lossy(&buf[..n]);
    let path = head.split_whitespace().nth(1).unwrap_or("");
    let (status, kind, body) = match path {
        "/metrics" => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
        "/health" if !kv.killed() && !kv.raft().killed() => {
            let st = kv.raft().status();
            let body = format!(
                "ok id={} role={} term={} leader={}\n",
                st.id,
                crate::client_port::role_name(st.role),
                st.term,
                st.leader.map_or("none".to_owned(), |l| l.to_string())
            );
            ("200 OK", "text/plain", body)
        }
        "/health" => (
            "503 Service Unavailable",
            "text/plain",
            "stopping\n".to_owned(),
        ),
        _ => (
            "404 Not Found",
            "text/plain",
            "try /metrics or /health\n".to_owned(),
        ),
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}
