//! Following the services root with `zookeeper-client`.
//!
//! (Being written: until it lands, discovery reports that it is unavailable and `zklens serve`
//! follows its configured sources only.)

use tokio::sync::{mpsc, watch};

use super::{DiscoveryEvent, ZkConfig};

/// Follows `cfg.services_root` and reports to `tx` until `shutdown` turns true.
pub async fn run(cfg: ZkConfig, tx: mpsc::Sender<DiscoveryEvent>, shutdown: watch::Receiver<bool>) {
    let _ = (tx, shutdown);
    eprintln!(
        "zklens serve: ZooKeeper discovery is not available in this build; not connecting to {}",
        cfg.connect
    );
}
