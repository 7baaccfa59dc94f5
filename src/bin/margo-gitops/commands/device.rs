//! `device sync`, `device watch` and `device status`.

use anyhow::Context as _;
use margo_gitops::device::poll::Pacing;
use margo_gitops::device::sync::{self, SyncOptions};
use margo_gitops::device::unpack::Limits;

use super::connect;
use crate::args::{DeviceArgs, StatusArgs, WatchArgs};
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
            lock_timeout: a.lock_timeout,
            max_age: a.max_age,
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
    let pacing = Pacing {
        interval: a.interval,
        splay: a.splay,
        max_backoff: a.max_backoff,
    };
    sync::watch(&opts, pacing, |result| {
        report::device::pass(result, json);
    })
    .await
    .context("device watch")?;
    Ok(())
}

pub fn status(a: StatusArgs) -> anyhow::Result<()> {
    let status = margo_gitops::device::status::read(&a.state_dir).context("device status")?;
    report::device::status(&status, a.json)?;
    if status.failed() {
        return Err(margo_gitops::Error::invalid(
            "a deployment is failed (its error is above); the next pass tries again",
        ))
        .context("device status");
    }
    Ok(())
}
