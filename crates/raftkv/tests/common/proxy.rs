//! A TCP proxy for one directed link between two nodes, which the test can cut (every
//! connection through it closed, new ones refused) and heal.

use std::sync::Arc;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// One link's proxy; dropping it stops it.
pub struct Link {
    pub addr: String,
    cut: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Link {
    /// A proxy on a free loopback port forwarding to `upstream`. Must be called inside a
    /// tokio runtime.
    pub fn start(upstream: String) -> Link {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("proxy port");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("proxy addr").to_string();
        let listener = TcpListener::from_std(std_listener).expect("tokio listener");
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                if *rx.borrow() {
                    continue; // cut: close at once
                }
                let (upstream, mut rx) = (upstream.clone(), rx.clone());
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let mut inbound = inbound;
                    tokio::select! {
                        _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = async { let _ = rx.wait_for(|c| *c).await; } => {}
                    }
                });
            }
        });
        Link {
            addr,
            cut: Arc::new(tx),
            task,
        }
    }

    /// Cuts (`true`) or heals (`false`) the link.
    pub fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}
