//! The `margo-gitops` binary: parse the command line, run it, map the outcome to an exit code.
//!
//! 0: done. 1: a check failed (the input is wrong). 2: usage or I/O (bad flags, missing
//! files, unreachable or refusing registries). A closed stdout (`| head`) is not an error.

mod args;
mod report;

use std::io::{IsTerminal as _, Read as _};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use margo_gitops::oci::credentials::{Explicit, Secret};
use margo_gitops::oci::store::Connect;
use margo_gitops::package::{image, prepare as package, publish, show};
use margo_gitops::signing::{mode, verify as sign_verify};

use args::{Cli, Command, DesiredState, Hook, Package, RegistryArgs, TemplateArgs};
use margo_gitops::desired::pipeline::{self, RenderRequest, Workspace};
use margo_gitops::desired::render::RenderOptions;
use margo_gitops::gitops::hook;

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

/// `margo-gitops ci`: runs the event's job, then writes outputs, summary and annotations.
async fn run_ci(a: args::CiArgs) -> anyhow::Result<()> {
    use margo_gitops::gitops::ci;
    let ws = Workspace::discover()?;
    let mut sign = sign_options(a.signing)?;
    sign.tokens.mask_in_actions = true;
    let actions = ci::Actions::from_env(a.token)?;
    let mut images = a.images;
    if let Ok(text) = std::env::var("MARGO_GITOPS_IMAGES") {
        images.extend(
            args::parse_image_lines(&text)
                .map_err(|e| margo_gitops::Error::Usage(format!("MARGO_GITOPS_IMAGES: {e}")))?,
        );
    }
    let opts = ci::CiOptions {
        sign,
        images,
        platform: a.platform.parse::<image::Platform>()?,
        cache_dir: a.cache_dir,
        connect: connect(&a.registry)?,
        package_repository: a.package_repository.filter(|s| !s.is_empty()),
        desired_repository: a.desired_repository.filter(|s| !s.is_empty()),
        registry: a.registry_namespace.filter(|s| !s.is_empty()),
    };
    let outcome = match ci::run(&actions, &ws, &opts).await {
        Ok(o) => o,
        Err(e) => {
            if let Some(summary) = &actions.summary {
                ci::write_summary(summary, &format!("## margo-gitops failed\n\n{e}\n"))?;
            }
            return Err(e.into());
        }
    };
    for line in outcome.log.iter().chain(&outcome.annotations) {
        println!("{line}");
    }
    if let Some(path) = &actions.output {
        ci::write_outputs(path, &outcome.outputs)?;
    }
    if let Some(path) = &actions.summary {
        ci::write_summary(path, &outcome.summary)?;
    }
    match outcome.failure {
        Some(reason) => Err(margo_gitops::Error::invalid(reason).into()),
        None => Ok(()),
    }
}

/// `--sign` and its companions; the mode defaults to keyless inside GitHub Actions.
fn sign_options(a: args::SigningArgs) -> margo_gitops::Result<mode::SignOptions> {
    let mode = match a.sign.as_deref() {
        Some(m) => m.parse()?,
        None => {
            mode::SignMode::default_for(std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true"))
        }
    };
    Ok(mode::SignOptions {
        mode,
        tokens: margo_gitops::signing::sigstore::client::TokenSource::from_env(a.identity_token),
        trust_config: a.trust_config,
    })
}

/// What `package verify` requires of a signature: a key, or an identity and its issuer.
fn verify_requirement(a: &args::VerifyArgs) -> margo_gitops::Result<sign_verify::Requirement> {
    use margo_gitops::signing::sigstore::verify::{Match, Policy};
    if let Some(key) = &a.key {
        return Ok(sign_verify::Requirement::Key(key.clone()));
    }
    if let Some(key) = &a.pgp_key {
        return Ok(sign_verify::Requirement::Pgp(key.clone()));
    }
    let pick =
        |exact: &Option<String>, regex: &Option<String>| -> margo_gitops::Result<Option<Match>> {
            match (exact, regex) {
                (Some(e), _) => Ok(Some(Match::Exact(e.clone()))),
                (None, Some(r)) => Match::regex(r)
                    .map(Some)
                    .map_err(margo_gitops::Error::Usage),
                (None, None) => Ok(None),
            }
        };
    let identity = pick(&a.certificate_identity, &a.certificate_identity_regexp)?;
    let issuer = pick(
        &a.certificate_oidc_issuer,
        &a.certificate_oidc_issuer_regexp,
    )?;
    match (identity, issuer) {
        (Some(identity), Some(issuer)) => Ok(sign_verify::Requirement::Identity {
            policy: Policy { identity, issuer },
            trust_config: a.trust_config.clone(),
        }),
        (Some(_), None) => Err(margo_gitops::Error::Usage(
            "name the OIDC issuer too: --certificate-oidc-issuer URL (or --certificate-oidc-issuer-regexp)".into(),
        )),
        _ => Err(margo_gitops::Error::Usage(
            "name who must have signed: --certificate-identity ID --certificate-oidc-issuer URL \
             (keyless), --key PUB, or --pgp-key PUB"
                .into(),
        )),
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
                sign: sign_options(a.signing)?,
            };
            let prepared = package::prepare(&opts)
                .await
                .with_context(|| format!("package prepare {}", opts.app_dir.display()))?;
            report::prepared(&prepared)?;
        }
        Command::Package(Package::Publish(a)) => {
            let config = Workspace::discover()?.config()?;
            let to = match a.to {
                Some(to) => to,
                None => config.package_repository.ok_or_else(|| {
                    margo_gitops::Error::Usage(
                        "name the repository with --to, or set packageRepository in .margo-gitops.yaml".into(),
                    )
                })?,
            };
            let mut connect = connect(&a.registry)?;
            connect.plain_http |= config.plain_http;
            let opts = publish::PublishOptions {
                to: margo_gitops::oci::reference::Target::parse_repository(&to)?,
                app_to: a
                    .app_to
                    .as_deref()
                    .map(margo_gitops::oci::reference::Target::parse_repository)
                    .transpose()?,
                input: a.input,
                version: a.version,
                format: match a.format {
                    args::FormatArg::Margo => margo_gitops::package::plan::Format::Margo,
                    args::FormatArg::Poc => margo_gitops::package::plan::Format::Poc,
                },
                extra_tags: a.tags,
                connect,
                sign: sign_options(a.signing)?,
                replace: a.replace,
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
        Command::Package(Package::Sign(a)) => {
            let opts = sign_options(a.signing)?;
            if opts.mode == margo_gitops::signing::mode::SignMode::None {
                return Err(margo_gitops::Error::Usage(
                    "name how to sign: --sign keyless or --sign key:PATH".into(),
                )
                .into());
            }
            let (digest, referrer) = margo_gitops::signing::signer::sign_reference(
                &a.reference,
                &opts,
                &connect(&a.registry)?,
            )
            .await
            .with_context(|| format!("package sign {}", a.reference))?;
            report::signed(&a.reference, &digest, referrer.as_ref())?;
        }
        Command::Package(Package::Verify(a)) => {
            let requirement = verify_requirement(&a)?;
            let verified = margo_gitops::signing::verify::verify(
                &a.reference,
                &requirement,
                &connect(&a.registry)?,
            )
            .await
            .with_context(|| format!("package verify {}", a.reference))?;
            report::verified(&verified, a.json)?;
        }
        Command::Ci(a) => return run_ci(a).await,
        Command::Key(args::Key::Generate { prefix }) => {
            let (key, public) = margo_gitops::signing::keys::generate(&prefix)?;
            println!(
                "wrote {} (private, keep it secret) and {}",
                key.display(),
                public.display()
            );
        }
        Command::Mirror(a) => {
            let ws = Workspace::discover()?;
            let repo = ws.repo.as_ref().ok_or_else(|| {
                margo_gitops::Error::Usage("mirror runs inside a git repository".into())
            })?;
            let req = margo_gitops::gitops::mirror::MirrorRequest {
                to: ws.desired_repository(a.to.as_deref())?,
                branch: a.branch,
                since: a.since,
                package_repository: a.package,
                skip_missing: a.skip_missing,
                allow_rewrite: a.allow_rewrite,
                options: RenderOptions::default(),
                connect: ws.connect(&connect(&a.registry)?)?,
                source_url: margo_gitops::git::discover(&ws.root).and_then(|g| g.source),
            };
            let mirrored = margo_gitops::gitops::mirror::mirror(repo, &req)
                .await
                .context("mirror")?;
            report::mirrored(&mirrored, a.json)?;
        }
        Command::DesiredState(DesiredState::Log(a)) => {
            let ws = Workspace::discover()?;
            let repo = ws.desired_repository(a.repository.as_deref())?;
            let entries = margo_gitops::gitops::log::log(
                ws.repo.as_ref(),
                &repo,
                &ws.connect(&connect(&a.registry)?)?,
                a.verify,
                a.branch.as_deref(),
            )
            .await
            .with_context(|| format!("desired-state log {repo}"))?;
            let breaks = report::logged(&entries, a.json)?;
            if breaks > 0 {
                return Err(margo_gitops::Error::invalid(format!(
                    "{breaks} break(s) in the version history"
                ))
                .into());
            }
        }
        Command::Hook(Hook::PrePush(a)) => {
            let ws = Workspace::discover()?;
            let repo = ws.repo.as_ref().ok_or_else(|| {
                margo_gitops::Error::Usage("hook pre-push runs inside a git repository".into())
            })?;
            let mut input = String::new();
            if !std::io::stdin().is_terminal() {
                std::io::stdin()
                    .read_to_string(&mut input)
                    .context("reading git's ref updates")?;
            }
            let updates = hook::updates(repo, &input)?;
            let remote = a
                .remote
                .or_else(|| std::env::var("PRE_COMMIT_REMOTE_NAME").ok())
                .unwrap_or_else(|| "origin".into());
            let findings = hook::pre_push(
                repo,
                &remote,
                &updates,
                a.check_registry,
                &connect(&a.registry)?,
            )
            .await?;
            report::findings(&findings, "push")?;
        }
        Command::Hook(Hook::PreCommit(a)) => {
            let ws = Workspace::discover()?;
            let findings =
                hook::pre_commit(&ws.root, &a.files, a.check_registry, &connect(&a.registry)?)
                    .await?;
            report::findings(&findings, "commit")?;
        }
        Command::Hook(Hook::Install(a)) => {
            let ws = Workspace::discover()?;
            let repo = ws.repo.as_ref().ok_or_else(|| {
                margo_gitops::Error::Usage("hook install runs inside a git repository".into())
            })?;
            report::hook_outcome(&hook::install(repo, a.force)?)?;
        }
        Command::Hook(Hook::Uninstall) => {
            let ws = Workspace::discover()?;
            let repo = ws.repo.as_ref().ok_or_else(|| {
                margo_gitops::Error::Usage("hook uninstall runs inside a git repository".into())
            })?;
            report::hook_outcome(&hook::uninstall(repo)?)?;
        }
        Command::DesiredState(DesiredState::Render(a)) => {
            let ws = Workspace::discover()?;
            let req = render_request(a.template, &a.registry)?;
            let state = pipeline::render_state(&ws, &req)
                .await
                .context("desired-state render")?;
            report::rendered(&state.docs, a.output.as_deref())?;
        }
        Command::DesiredState(DesiredState::Validate(a)) => {
            let reports = margo_gitops::margo::validate::validate_files(&a.files);
            let errors = report::validated(&reports, a.json)?;
            if errors > 0 {
                return Err(margo_gitops::Error::invalid(format!(
                    "{errors} problem{} in {} file(s)",
                    if errors == 1 { "" } else { "s" },
                    a.files.len()
                ))
                .into());
            }
        }
        Command::DesiredState(DesiredState::Commit(a)) => {
            let ws = Workspace::discover()?;
            let req = render_request(a.template, &a.registry)?;
            let (committed, warnings) = pipeline::commit(&ws, &req, a.to.as_deref())
                .await
                .context("desired-state commit")?;
            for w in &warnings {
                eprint!("{w}");
            }
            report::committed(&committed, a.json)?;
        }
        Command::DesiredState(DesiredState::Show(a)) => {
            let ws = Workspace::discover()?;
            let repo = ws.desired_repository(a.repository.as_deref())?;
            let shown =
                margo_gitops::desired::versions::show(&repo, &ws.connect(&connect(&a.registry)?)?)
                    .await
                    .with_context(|| format!("desired-state show {repo}"))?;
            report::desired_shown(&shown, a.json)?;
        }
        Command::DesiredState(DesiredState::Diff(a)) => {
            let ws = Workspace::discover()?;
            let req = render_request(a.template, &a.registry)?;
            let from = pipeline::diff_side(&ws, &a.from, &req)
                .await
                .with_context(|| format!("reading {}", a.from))?;
            let to = pipeline::diff_side(&ws, &a.to, &req)
                .await
                .with_context(|| format!("reading {}", a.to))?;
            let d = margo_gitops::desired::diff::diff(&from, &to)?;
            report::diffed(&d, a.json)?;
        }
    }
    Ok(())
}
