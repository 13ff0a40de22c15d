use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use shopbox::config::Config;

/// shopbox: a complete e-commerce backend in one executable.
#[derive(Parser)]
#[command(version, about, long_about = None, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no command, `shopbox [OPTIONS]` is `shopbox serve [OPTIONS]`.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the shop (the default when no command is given).
    Serve(ServeArgs),
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// Configuration file (default: config.toml in the working folder, if present).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data folder (database, media, secrets).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long)]
    address: Option<String>,
    /// Port to listen on.
    #[arg(long)]
    port: Option<u16>,
}

fn load_config(args: &ServeArgs) -> Result<Config, String> {
    let mut config = Config::load(args.config.as_deref()).map_err(|e| e.0)?;
    if let Some(data) = &args.data {
        config.data_dir = data.clone();
    }
    if let Some(address) = &args.address {
        config.address = address.clone();
    }
    if let Some(port) = args.port {
        config.port = port;
    }
    config.validate().map_err(|e| e.0)?;
    Ok(config)
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        Command::Serve(args) => {
            let config = load_config(&args)?;
            shopbox::init_logging(config.log.format);
            rocket::execute(shopbox::serve(config)).map_err(|e| e.0)
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("shopbox: {reason}");
            ExitCode::FAILURE
        }
    }
}
