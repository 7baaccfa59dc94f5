//! The `margo-gitops` binary: parse the command line, run it, map the outcome to an exit code.
//!
//! 0: done. 1: a check failed (the input is wrong). 2: usage or I/O (bad flags, missing
//! files, unreachable or refusing registries). A closed stdout (`| head`) is not an error.

mod cli;
mod report;

use std::io::{IsTerminal as _, Read as _};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use margo_gitops::credentials::{Explicit, Secret};
use margo_gitops::store::Connect;
use margo_gitops::{image, package, publish, show};

use cli::{Cli, Command, Package, RegistryArgs};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    margo_gitops::progress::init(cli.quiet);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            let code = e
                .chain()
                .find_map(|c| c.downcast_ref::<margo_gitops::Error>())
                .map_or(2, margo_gitops::Error::exit_code);
            ExitCode::from(code)
        }
    }
}

fn connect(args: &RegistryArgs) -> anyhow::Result<Connect> {
    let password = if args.password_stdin {
        if std::io::stdin().is_terminal() {
            eprintln!("password (end with Enter and Ctrl-D):");
        }
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the password from standard input")?;
        let s = s.trim_end_matches(['\n', '\r']).to_string();
        anyhow::ensure!(
            !s.is_empty(),
            margo_gitops::Error::Usage("--password-stdin read an empty password".into())
        );
        Some(Secret::new(s))
    } else {
        None
    };
    Ok(Connect {
        plain_http: args.plain_http,
        ca_files: args.ca_files.clone(),
        explicit: Explicit {
            username: args.username.clone(),
            password,
        },
    })
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Package(Package::Prepare(a)) => {
            let opts = package::PrepareOptions {
                platform: a.platform.parse::<image::Platform>()?,
                app_dir: a.app_dir,
                out_dir: a.out_dir,
                images: a.images,
                no_images: a.no_images,
                version: a.version,
                app_id: a.app_id,
                cache_dir: a.cache_dir,
                connect: connect(&a.registry)?,
            };
            let prepared = package::prepare(&opts)
                .await
                .with_context(|| format!("package prepare {}", opts.app_dir.display()))?;
            report::prepared(&prepared)?;
        }
        Command::Package(Package::Publish(a)) => {
            let opts = publish::PublishOptions {
                to: margo_gitops::location::Target::parse_repository(&a.to)?,
                app_to: a
                    .app_to
                    .as_deref()
                    .map(margo_gitops::location::Target::parse_repository)
                    .transpose()?,
                input: a.input,
                version: a.version,
                format: match a.format {
                    cli::FormatArg::Margo => publish::Format::Margo,
                    cli::FormatArg::Poc => publish::Format::Poc,
                },
                extra_tags: a.tags,
                connect: connect(&a.registry)?,
            };
            let published = publish::publish(&opts)
                .await
                .with_context(|| format!("package publish to {}", opts.to))?;
            report::published(&published, a.json)?;
        }
        Command::Package(Package::Show(a)) => {
            let shown = show::show(&a.reference, &connect(&a.registry)?)
                .await
                .with_context(|| format!("package show {}", a.reference))?;
            report::shown(&shown, a.json)?;
        }
    }
    Ok(())
}
