//! One function per command: it builds the library's options from the parsed arguments,
//! runs the library, and hands the result to [`crate::report`]. The option builders the
//! commands share (registry access, signing, rendering) are here.

mod desired;
mod device;
mod gitops;
mod package;

use std::io::{IsTerminal as _, Read as _};

use anyhow::Context as _;
use margo_gitops::desired::pipeline::RenderRequest;
use margo_gitops::desired::render::RenderOptions;
use margo_gitops::oci::credentials::{Explicit, Secret};
use margo_gitops::oci::retry::RetryPolicy;
use margo_gitops::oci::store::Connect;
use margo_gitops::signing::mode::{SignMode, SignOptions};
use margo_gitops::signing::sigstore::client::TokenSource;

use crate::args::{
    Command, DesiredState, Device, Hook, Key, Package, RegistryArgs, SigningArgs, TemplateArgs,
};

/// Runs the command the command line names.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Package(Package::Prepare(a)) => package::prepare(a).await,
        Command::Package(Package::Publish(a)) => package::publish(a).await,
        Command::Package(Package::Show(a)) => package::show(a).await,
        Command::Package(Package::Diff(a)) => package::diff(a).await,
        Command::Package(Package::Sign(a)) => package::sign(a).await,
        Command::Package(Package::Verify(a)) => package::verify(a).await,
        Command::DesiredState(DesiredState::Render(a)) => desired::render(a).await,
        Command::DesiredState(DesiredState::Validate(a)) => desired::validate(a),
        Command::DesiredState(DesiredState::Commit(a)) => desired::commit(a).await,
        Command::DesiredState(DesiredState::Show(a)) => desired::show(a).await,
        Command::DesiredState(DesiredState::Diff(a)) => desired::diff(a).await,
        Command::DesiredState(DesiredState::Log(a)) => desired::log(a).await,
        Command::DesiredState(DesiredState::Verify(a)) => desired::verify(a).await,
        Command::Mirror(a) => gitops::mirror(a).await,
        Command::Hook(Hook::PrePush(a)) => gitops::pre_push(a).await,
        Command::Hook(Hook::PreCommit(a)) => gitops::pre_commit(a).await,
        Command::Hook(Hook::Install(a)) => gitops::install(a),
        Command::Hook(Hook::Uninstall) => gitops::uninstall(),
        Command::Key(Key::Generate { prefix }) => package::generate_key(&prefix),
        Command::Ci(a) => gitops::ci(a).await,
        Command::Device(Device::Sync(a)) => device::sync(a).await,
        Command::Device(Device::Watch(a)) => device::watch(a).await,
        Command::Device(Device::Status(a)) => device::status(a),
    }
}

/// `--sign` and its companions; the mode defaults to keyless inside GitHub Actions.
fn sign_options(a: SigningArgs) -> SignOptions {
    let in_actions = std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true");
    SignOptions {
        mode: a.sign.unwrap_or_else(|| SignMode::default_for(in_actions)),
        tokens: TokenSource::from_env(a.identity_token),
        trust_config: crate::args::trust_config(a.trust_config),
    }
}

/// How to reach registries: TLS, plain HTTP, credentials (a password from stdin).
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
        Some(Secret::from(s))
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
        retry: RetryPolicy {
            retries: args.retries,
            ..RetryPolicy::default()
        },
        concurrency: args.concurrency.into(),
    })
}

fn render_request(t: TemplateArgs, registry: &RegistryArgs) -> anyhow::Result<RenderRequest> {
    Ok(RenderRequest {
        at: t.at,
        options: RenderOptions {
            template: t.template,
            values: t.values,
            name: t.name,
        },
        package: t.package,
        connect: connect(registry)?,
    })
}

/// `Err` (exit 1) saying how many problems there were, when there were any.
fn fail_on(problems: usize, what: impl FnOnce(usize) -> String) -> anyhow::Result<()> {
    if problems == 0 {
        return Ok(());
    }
    Err(margo_gitops::Error::invalid(what(problems)).into())
}
