//! The `margo-gitops` binary: parse the command line, run it, map the outcome to an exit code.
//!
//! 0: done. 1: a check failed (the input is wrong). 2: usage or I/O (bad flags, missing
//! files, unreachable or refusing registries). 3: busy (a device's state folder stayed
//! locked by another pass past `--lock-timeout`). A closed stdout (`| head`) is not an error.
//! [`args`] is the command line, [`commands`] runs each command over the library, and
//! [`report`] prints what they did.

mod args;
mod commands;
mod report;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match args::parse() {
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
    match runtime.block_on(commands::run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit(&e),
    }
}

/// The exit code of a failure, after saying what failed; a closed stdout is success.
fn exit(e: &anyhow::Error) -> ExitCode {
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
