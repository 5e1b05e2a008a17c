//! A TCP proxy for one directed link between two nodes, which the test can cut (every
//! connection through it closed, new ones refused), slow down (each chunk of bytes held
//! for a delay, order kept) or make lossy (each chunk closes its connection with some
//! probability: over TCP a lost segment is invisible, so loss shows up to Raft as a
//! broken connection and the messages in flight on it lost), and heal.

use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How a link treats traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Mode {
    /// Closed: no connection gets through.
    pub cut: bool,
    /// Each chunk of bytes is forwarded after this long.
    pub delay: Duration,
    /// Each chunk closes its connection with this probability.
    pub loss: f64,
}

/// One link's proxy; dropping it stops it.
pub struct Link {
    pub addr: String,
    mode: Arc<watch::Sender<Mode>>,
    task: tokio::task::JoinHandle<()>,
}

/// Forwards one direction until either side closes, the link is cut, or a chunk is lost.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mode: watch::Receiver<Mode>,
    seed: u64,
) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let m = *mode.borrow();
        if m.cut || (m.loss > 0.0 && rng.gen_bool(m.loss.min(1.0))) {
            return;
        }
        if !m.delay.is_zero() {
            tokio::time::sleep(m.delay).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Link {
    /// A proxy on a free loopback port forwarding to `upstream`. Must be called inside a
    /// tokio runtime.
    pub fn start(upstream: String) -> Link {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("proxy port");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("proxy addr").to_string();
        let listener = TcpListener::from_std(std_listener).expect("tokio listener");
        let (tx, rx) = watch::channel(Mode::default());
        let seed = u64::from(std_listener_port(&addr));
        let task = tokio::spawn(async move {
            let mut conns = 0u64;
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                if rx.borrow().cut {
                    continue; // cut: close at once
                }
                conns += 1;
                let (upstream, mut cut) = (upstream.clone(), rx.clone());
                let (m1, m2) = (rx.clone(), rx.clone());
                let seed = seed.wrapping_mul(1_000_003).wrapping_add(conns);
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let (in_r, in_w) = inbound.into_split();
                    let (out_r, out_w) = outbound.into_split();
                    // Either direction ending (or a cut) closes both: dropping the halves
                    // closes the sockets.
                    tokio::select! {
                        _ = pump(in_r, out_w, m1, seed) => {}
                        _ = pump(out_r, in_w, m2, seed ^ 1) => {}
                        _ = async { let _ = cut.wait_for(|m| m.cut).await; } => {}
                    }
                });
            }
        });
        Link {
            addr,
            mode: Arc::new(tx),
            task,
        }
    }

    /// Cuts (`true`) or heals (`false`) the link, keeping its delay and loss.
    pub fn set_cut(&self, cut: bool) {
        self.mode.send_modify(|m| m.cut = cut);
    }

    /// Sets how the link treats traffic from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

fn std_listener_port(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}
