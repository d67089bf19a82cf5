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
        let config = Config::load(config_file)?;
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
