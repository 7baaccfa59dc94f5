//! `package prepare|publish|show|sign|verify` and `key generate`.

use std::path::Path;

use anyhow::Context as _;
use margo_gitops::desired::pipeline::Workspace;
use margo_gitops::oci::reference::Target;
use margo_gitops::package::plan::Format;
use margo_gitops::package::prepare::{self, PrepareOptions};
use margo_gitops::package::publish::{self, PublishOptions};
use margo_gitops::package::show;
use margo_gitops::signing::mode::SignMode;
use margo_gitops::signing::verify;
use margo_gitops::signing::{keys, signer};
use margo_gitops::Error;

use super::{connect, sign_options};
use crate::args::{
    FormatArg, PackageDiffArgs, PrepareArgs, PublishArgs, ShowArgs, SignArgs, VerifyArgs,
};
use crate::report;

pub async fn prepare(a: PrepareArgs) -> anyhow::Result<()> {
    let opts = PrepareOptions {
        platform: a.platform,
        app_dir: a.app_dir,
        out_dir: a.out_dir,
        images: a.images,
        build: a.build,
        no_images: a.no_images,
        version: a.version,
        app_id: a.app_id,
        cache_dir: a.cache_dir,
        connect: connect(&a.registry)?,
        sign: sign_options(a.signing),
        git: None,
    };
    let prepared = prepare::prepare(&opts)
        .await
        .with_context(|| format!("package prepare {}", opts.app_dir.display()))?;
    report::package::prepared(&prepared)?;
    Ok(())
}

pub async fn publish(a: PublishArgs) -> anyhow::Result<()> {
    let config = Workspace::discover()?.config()?;
    let to = match a.to {
        Some(to) => to,
        None => config.package_repository.ok_or_else(|| {
            Error::Usage(
                "name the repository with --to, or set packageRepository in .margo-gitops.yaml"
                    .into(),
            )
        })?,
    };
    let mut connect = connect(&a.registry)?;
    connect.plain_http |= config.plain_http;
    let opts = PublishOptions {
        to: Target::parse_repository(&to)?,
        app_to: a
            .app_to
            .as_deref()
            .map(Target::parse_repository)
            .transpose()?,
        input: a.input,
        version: a.version,
        format: match a.format {
            FormatArg::Margo => Format::Margo,
            FormatArg::Poc => Format::Poc,
        },
        extra_tags: a.tags,
        connect,
        sign: sign_options(a.signing),
        replace: a.replace,
    };
    let published = publish::publish(&opts)
        .await
        .with_context(|| format!("package publish to {}", opts.to))?;
    report::package::published(&published, a.json)?;
    Ok(())
}

pub async fn show(a: ShowArgs) -> anyhow::Result<()> {
    let shown = show::show(&a.reference, &connect(&a.registry)?)
        .await
        .with_context(|| format!("package show {}", a.reference))?;
    report::package::shown(&shown, a.json)?;
    Ok(())
}

pub async fn diff(a: PackageDiffArgs) -> anyhow::Result<()> {
    use margo_gitops::package::{diff, pins};
    let ws = Workspace::discover()?;
    let connect = connect(&a.registry)?;
    let mut old = diff::read_side(&ws, &a.old, &connect)
        .await
        .context("package diff")?;
    let mut new = diff::read_side(&ws, &a.new, &connect)
        .await
        .context("package diff")?;
    let mut notes = Vec::new();
    if a.resolve {
        let none = Default::default();
        for side in [&mut old, &mut new] {
            notes.extend(pins::resolve(side, &a.platform, &connect, &none).await);
        }
    }
    let mut d = diff::diff(&old, &new);
    d.notes = notes;
    report::package::diffed(&d, a.json)?;
    Ok(())
}

pub async fn sign(a: SignArgs) -> anyhow::Result<()> {
    let opts = sign_options(a.signing);
    if opts.mode == SignMode::None {
        return Err(
            Error::Usage("name how to sign: --sign keyless or --sign key:PATH".into()).into(),
        );
    }
    let (digest, referrer) = signer::sign_reference(&a.reference, &opts, &connect(&a.registry)?)
        .await
        .with_context(|| format!("package sign {}", a.reference))?;
    report::package::signed(&a.reference, &digest, referrer.as_ref())?;
    Ok(())
}

pub async fn verify(a: VerifyArgs) -> anyhow::Result<()> {
    let requirement = a.signer.spec().requirement()?;
    let verified = verify::verify(&a.reference, &requirement, &connect(&a.registry)?)
        .await
        .with_context(|| format!("package verify {}", a.reference))?;
    report::package::verified(&verified, a.json)?;
    Ok(())
}

/// What `package verify` requires of a signature: a key, or an identity and its issuer.
pub fn generate_key(prefix: &Path) -> anyhow::Result<()> {
    let (key, public) = keys::generate(prefix)?;
    report::package::key_generated(&key, &public)?;
    Ok(())
}
