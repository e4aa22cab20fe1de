//! `unsplit-bridge`: plain IRC (and SOCKS5) in, RobustSession out. See
//! `unsplit_bridge::cli` for the flags.

use clap::Parser;
use unsplit_bridge::cli::{BridgeArgs, run};

#[derive(Debug, Parser)]
#[command(
    name = "unsplit-bridge",
    version,
    about = "Bridges plain IRC and SOCKS5 clients to an unsplit (RobustSession) network"
)]
struct Cli {
    #[command(flatten)]
    args: BridgeArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    run(Cli::parse().args).await
}
