use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use shopbox::commands;
use shopbox::config::Config;
use shopbox::control::{self, Request};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process. mimalloc asks the kernel for huge
/// pages on its arenas (and kernels set to `always` give them unasked): one small
/// allocation then makes 2 MiB resident, which nothing gives back while any byte of it is
/// in use. Measured with `cargo bench --bench soak`: 65 MiB resident at start on an
/// empty shop with them, 25 MiB without, and far less growth over 200,000 orders
/// (README, "Memory over a long run"). Done first thing, before the allocator has made
/// anything big resident.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_THP_DISABLE takes plain integers and touches no memory
    // of ours; a kernel without it answers an error, which leaves things as they were.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// shopbox: a complete e-commerce backend in one executable.
///
/// With no command, `shopbox [OPTIONS]` runs the shop (`shopbox serve`).
#[derive(Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Args, Default, Clone)]
struct Common {
    /// Configuration file (default: config.toml in the working folder, if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Data folder (database, media, secrets); overrides `data_dir`.
    #[arg(long, global = true)]
    data: Option<PathBuf>,
}

/// The PostgreSQL database of a shop served from one, for the commands that act on it.
#[derive(Args, Default, Clone)]
struct Served {
    /// Act on the shop served from this PostgreSQL database (postgres://...) instead of
    /// the data folder's; overrides `database.url`, as `serve --database` does.
    #[arg(long, global = true, value_name = "URL")]
    database: Option<String>,
}

#[derive(Args, Default)]
struct ServeArgs {
    #[command(flatten)]
    common: Common,
    /// Address to listen on.
    #[arg(long)]
    address: Option<String>,
    /// Port to listen on.
    #[arg(long)]
    port: Option<u16>,
    /// Serve from this PostgreSQL database (postgres://...) instead of the data folder;
    /// overrides `database.url`.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the shop (the default) and print its URLs.
    Serve(ServeArgs),
    /// Manage admins (of the data folder, or of the PostgreSQL database of `database.url`).
    Admin {
        #[command(subcommand)]
        action: AdminAction,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        served: Served,
    },
    /// List users (of the data folder, or of the PostgreSQL database of `database.url`).
    Users {
        #[command(subcommand)]
        action: UsersAction,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        served: Served,
    },
    /// Fill the shop with a demo catalog (categories, products with images) and a demo
    /// customer, with a progress bar.
    Seed {
        /// Required: says that demo data is what you want.
        #[arg(long)]
        demo: bool,
        /// How many products.
        #[arg(long, default_value_t = 200)]
        products: u64,
        /// Add the demo products to a shop that has products already (without it, such a
        /// shop is refused).
        #[arg(long)]
        add: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Verify every index against its records; --repair rebuilds them.
    Check {
        /// Rebuild every index that does not match from the records (the records
        /// themselves are never changed).
        #[arg(long)]
        repair: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Copy the whole shop into PostgreSQL tables, one per kind of record (users,
    /// categories, products, carts, addresses, orders, payments, shipping, reviews), in
    /// one transaction, with a progress bar per table.
    ExportPg {
        /// The target database, e.g. postgres://user:password@host:5432/shop
        #[arg(long, env = "SHOPBOX_PG_URL")]
        url: String,
        /// Replace the shop's tables when they already hold rows (dropped with CASCADE).
        #[arg(long)]
        drop_existing: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Read a shop from PostgreSQL: tables written by export-pg, or those of the FastAPI
    /// reference backend (recognised and mapped; every change is listed). Everything is
    /// checked before anything is written. Refused while a server runs on the folder.
    ImportPg {
        /// The source database, e.g. postgres://user:password@host:5432/shop
        #[arg(long, env = "SHOPBOX_PG_URL")]
        url: String,
        /// Replace the shop already in the data folder.
        #[arg(long)]
        force: bool,
        /// A folder holding the products' image files, copied into this shop's media
        /// folder: another shop's `media` folder, or the reference backend's `media/images`.
        #[arg(long)]
        media: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Write a backup of the whole shop (database and media, consistent to one instant) to
    /// FILE, a tar archive, gzipped when FILE ends in .gz or .tgz.
    Backup {
        /// The archive to write; it must not exist yet.
        file: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Fill an empty data folder (--data DIR) from a backup, after verifying its checksum,
    /// then check every index.
    Restore {
        /// The archive written by `shopbox backup`.
        file: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Send email through the configured SMTP server.
    Mail {
        #[command(subcommand)]
        action: MailAction,
        #[command(flatten)]
        common: Common,
    },
    /// Print the configuration in force (defaults, then the file, then SHOPBOX_* variables),
    /// secrets masked, with where each value came from.
    Config {
        #[command(flatten)]
        common: Common,
    },
    /// Show the latest emails the shop has written, with their links and delivery state
    /// (queued, sent with the server's answer, or failed with its error).
    Outbox {
        /// Only emails to this address.
        #[arg(long)]
        to: Option<String>,
        /// How many to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        served: Served,
    },
}

#[derive(Subcommand)]
enum AdminAction {
    /// Create an admin, or promote an existing user. The password comes from --password,
    /// SHOPBOX_ADMIN_PASSWORD or a prompt.
    Create {
        /// Email address of the admin; a user who has it already is made an admin.
        #[arg(long)]
        email: String,
        /// Name of a new admin (default: the part of the email before the @).
        #[arg(long)]
        name: Option<String>,
        /// Password of a new admin; given for an existing user, it replaces theirs and
        /// ends their sessions (else they keep it).
        #[arg(long)]
        password: Option<String>,
    },
    /// Make an existing user an admin.
    Promote {
        /// The user's email address.
        email: String,
    },
    /// Take admin rights away from a user.
    Demote {
        /// The user's email address.
        email: String,
    },
    /// Set a new password (from --password, SHOPBOX_ADMIN_PASSWORD or a prompt) and end
    /// all of the user's sessions.
    ResetPassword {
        /// The user's email address.
        email: String,
        /// The new password.
        #[arg(long)]
        password: Option<String>,
    },
}

#[derive(Subcommand)]
enum MailAction {
    /// Send one test message to EMAIL and print the SMTP server's answer.
    Test {
        /// Where to send it.
        email: String,
    },
}

#[derive(Subcommand)]
enum UsersAction {
    /// A table of all users.
    List,
}

fn load_config(common: &Common) -> Result<Config, String> {
    let mut config = Config::load(common.config.as_deref()).map_err(|e| e.0)?;
    if let Some(data) = &common.data {
        config.data_dir = data.clone();
    }
    Ok(config)
}

/// The password from the flag, else the environment; `None` lets the command ask.
fn password_given(flag: Option<String>) -> Option<String> {
    flag.or_else(|| std::env::var("SHOPBOX_ADMIN_PASSWORD").ok())
}

/// An admin command: on the PostgreSQL database of `database.url` (or `--database`) when
/// the shop is served from one, else carried out by the server that holds the data folder,
/// or on the folder itself when no server runs.
fn admin_command(request: Request, common: &Common) -> Result<String, String> {
    admin_command_on(request, common, &Served::default())
}

fn admin_command_on(request: Request, common: &Common, served: &Served) -> Result<String, String> {
    let mut config = load_config(common)?;
    if let Some(url) = &served.database {
        config.database.url = Some(url.clone());
        config.validate().map_err(|e| e.0)?;
    }
    control::run_cli(&request, &config, &commands::Terminal)
}

fn run(cli: Cli) -> Result<(), String> {
    let command = cli.command.unwrap_or(Command::Serve(cli.serve));
    let output = match command {
        Command::Serve(args) => {
            let mut config = load_config(&args.common)?;
            if let Some(address) = args.address {
                config.address = address;
            }
            if let Some(port) = args.port {
                config.port = port;
            }
            if let Some(url) = args.database {
                config.database.url = Some(url);
            }
            config.validate().map_err(|e| e.0)?;
            shopbox::init_logging(config.log.format);
            return rocket::execute(shopbox::serve(config)).map_err(|e| e.0);
        }
        Command::Admin {
            action,
            common,
            served,
        } => {
            let request = match action {
                AdminAction::Create {
                    email,
                    name,
                    password,
                } => Request::AdminCreate {
                    email,
                    name,
                    password: password_given(password),
                },
                AdminAction::Promote { email } => Request::AdminPromote { email },
                AdminAction::Demote { email } => Request::AdminDemote { email },
                AdminAction::ResetPassword { email, password } => Request::AdminResetPassword {
                    email,
                    password: password_given(password),
                },
            };
            admin_command_on(request, &common, &served)?
        }
        Command::Users {
            action: UsersAction::List,
            common,
            served,
        } => admin_command_on(Request::UsersList, &common, &served)?,
        Command::Seed {
            demo,
            products,
            add,
            common,
        } => {
            if !demo {
                return Err("only demo data can be seeded: add --demo".into());
            }
            admin_command(Request::Seed { products, add }, &common)?
        }
        Command::ExportPg {
            url,
            drop_existing,
            common,
        } => admin_command(Request::ExportPg { url, drop_existing }, &common)?,
        Command::ImportPg {
            url,
            force,
            media,
            common,
        } => {
            let config = load_config(&common)?;
            if control::server_running(&config.data_dir) {
                return Err(format!(
                    "a shopbox server is running on {}: import-pg replaces the whole shop, so stop the server first",
                    config.data_dir.display()
                ));
            }
            shopbox::pg::import(&config, &url, force, media.as_deref())?
        }
        Command::Check { repair, common } => admin_command(Request::Check { repair }, &common)?,
        Command::Backup { file, common } => {
            // The server's working folder is not this one.
            let file = std::path::absolute(&file)
                .map_err(|e| format!("cannot resolve {}: {e}", file.display()))?;
            admin_command(Request::Backup { file }, &common)?
        }
        Command::Restore { file, common } => {
            let config = load_config(&common)?;
            if control::server_running(&config.data_dir) {
                return Err(format!(
                    "{} is the data folder of a running shopbox server: restore fills an empty folder only; restore into a new one (--data NEW) and start the server on that",
                    config.data_dir.display()
                ));
            }
            shopbox::backup::restore(
                &file,
                &config.data_dir,
                config.cache_capacity_mb,
                &commands::Terminal,
            )?
        }
        Command::Mail {
            action: MailAction::Test { email },
            common,
        } => admin_command(Request::MailTest { email }, &common)?,
        Command::Config { common } => {
            shopbox::config::show(common.config.as_deref(), common.data.as_deref())?
        }
        Command::Outbox {
            to,
            limit,
            common,
            served,
        } => admin_command_on(Request::Outbox { to, limit }, &common, &served)?,
    };
    print_out(&output);
    Ok(())
}

/// Prints a command's output. A reader that went away (`shopbox users list | head -2`)
/// ends the command quietly, as it ends `cat`.
fn print_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            let _ = writeln!(std::io::stderr(), "shopbox: cannot write the output: {e}");
            std::process::exit(1);
        }
    }
}

fn main() -> ExitCode {
    no_huge_pages();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!("shopbox: {reason}\n"),
            );
            ExitCode::FAILURE
        }
    }
}
