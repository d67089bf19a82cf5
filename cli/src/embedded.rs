//! The gateway inside this process: `mvrec --config FILE` starts it on a free loopback port,
//! talks Flight to it like to any other gateway, and stops it when the command is done.

use std::path::Path;

use mover_gateway::config::Config;
use mover_gateway::server::{self, Running};

pub struct Embedded {
    running: Running,
}

impl Embedded {
    pub async fn start(config_file: &Path) -> anyhow::Result<Self> {
        let mut config = Config::load(config_file)?;
        // In-process, on an ephemeral loopback port for one command, with the config owner's
        // rights: the gateway's own TLS and users are for its network clients, not for this.
        // Its certificate still identifies it to the peers it pulls from.
        if let Some(tls) = &config.server.tls {
            for peer in config.peers.values_mut() {
                if peer.cert.is_none() {
                    peer.cert = Some(tls.cert.clone());
                    peer.key = Some(tls.key.clone());
                }
            }
        }
        config.server.tls = None;
        config.users.clear();
        config.access.clear();
        // The long-running gateway of this config serves metrics and sweeps; one command's
        // gateway does neither.
        config.server.metrics_listen = None;
        config.server.sweep_stale_parts = false;
        let running = server::start(&config, Some("127.0.0.1:0".parse()?)).await?;
        Ok(Self { running })
    }

    pub fn url(&self) -> String {
        format!("grpc://{}", self.running.addr)
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        Ok(self.running.stop().await?)
    }
}
