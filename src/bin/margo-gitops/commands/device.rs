//! `device sync` and `device watch`.

use anyhow::Context as _;
use margo_gitops::device::sync::{self, SyncOptions};
use margo_gitops::device::unpack::Limits;

use super::connect;
use crate::args::{DeviceArgs, WatchArgs};
use crate::report;

fn options(a: DeviceArgs) -> anyhow::Result<(SyncOptions, bool)> {
    Ok((
        SyncOptions {
            policy: a.signer.spec(),
            connect: connect(&a.registry)?,
            from: a.from,
            tag: a.tag,
            state_dir: a.state_dir,
            only: a.deployments,
            allow_downgrade: a.allow_downgrade,
            limits: Limits::default(),
        },
        a.json,
    ))
}

pub async fn sync(a: DeviceArgs) -> anyhow::Result<()> {
    let (opts, json) = options(a)?;
    let done = sync::sync(&opts).await.context("device sync")?;
    report::device::synced(&done, json)?;
    if done.failed() {
        return Err(margo_gitops::Error::invalid(
            "some deployments failed; what ran before keeps running (see each status manifest)",
        ))
        .context("device sync");
    }
    Ok(())
}

pub async fn watch(a: WatchArgs) -> anyhow::Result<()> {
    let (opts, json) = options(a.device)?;
    sync::watch(&opts, a.interval, |result| {
        report::device::pass(result, json);
    })
    .await
    .context("device watch")?;
    Ok(())
}
