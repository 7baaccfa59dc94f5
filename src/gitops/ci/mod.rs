//! `margo-gitops ci`: the entry point of the GitHub Action. It reads the workflow event
//! (`GITHUB_EVENT_NAME`, `GITHUB_EVENT_PATH`, `GITHUB_SHA`, `GITHUB_REF`, …) and does what
//! the event calls for:
//! - push to the default branch: prepare, sign and publish the package when the app changed
//!   (or its version's package is missing), then publish a desired-state version for every
//!   pushed commit (a mirror since the push's `before`);
//! - pull request: render and validate the desired state at the base and at the head, and
//!   put the semantic diff in one review comment that later runs update; every problem
//!   becomes an `::error file=…,line=…::` annotation; nothing is pushed;
//! - `workflow_dispatch` with input `mirror: true`: backfill the whole history; without it,
//!   the same as a push.
//!
//! Results go to `GITHUB_OUTPUT` (package-ref, package-digest, desired-ref, desired-digest,
//! desired-tag) and a readable `GITHUB_STEP_SUMMARY`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::desired::diff::{Side, Status};
use crate::desired::pipeline::{self, RenderRequest, Workspace};
use crate::desired::render::{self, RenderOptions};
use crate::error::{Error, Result};
use crate::gitops::hook::{self, Finding, Update};
use crate::oci::credentials::Secret;
use crate::oci::reference::Target;
use crate::oci::store::{Connect, Store};
use crate::package::image::Platform;
use crate::signing::mode::SignOptions;

/// The hidden marker that finds our pull-request comment again.
pub const COMMENT_MARKER: &str = "<!-- margo-gitops:desired-state-diff -->";

const ZERO: &str = "0000000000000000000000000000000000000000";

/// The Actions environment of one job step.
pub struct Actions {
    pub event_name: String,
    pub event: Value,
    pub sha: String,
    pub git_ref: String,
    pub repository: String,
    pub api_url: String,
    pub server_url: String,
    pub output: Option<PathBuf>,
    pub summary: Option<PathBuf>,
    pub token: Option<Secret>,
}

impl Actions {
    /// From the process environment; `token` is the action's `token` input.
    pub fn from_env(token: Option<Secret>) -> Result<Actions> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let need = |k: &str| {
            var(k).ok_or_else(|| {
                Error::Usage(format!(
                    "{k} is not set: `margo-gitops ci` runs inside GitHub Actions (or a job that sets its variables)"
                ))
            })
        };
        let event_name = need("GITHUB_EVENT_NAME")?;
        let event_path = PathBuf::from(need("GITHUB_EVENT_PATH")?);
        let text = std::fs::read(&event_path).map_err(Error::io("read", &event_path))?;
        let event = serde_json::from_slice(&text)
            .map_err(|e| Error::invalid_file(&event_path, None, format!("not JSON: {e}")))?;
        Ok(Actions {
            event_name,
            event,
            sha: need("GITHUB_SHA")?,
            git_ref: var("GITHUB_REF").unwrap_or_default(),
            repository: need("GITHUB_REPOSITORY")?,
            api_url: var("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into()),
            server_url: var("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into()),
            output: var("GITHUB_OUTPUT").map(PathBuf::from),
            summary: var("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            token: token.or_else(|| var("GITHUB_TOKEN").map(Secret::new)),
        })
    }

    fn commit_url(&self, sha: &str) -> String {
        format!("{}/{}/commit/{sha}", self.server_url, self.repository)
    }
}

/// How the action was configured (its inputs, passed as flags or environment).
pub struct CiOptions {
    pub sign: SignOptions,
    pub images: Vec<(String, PathBuf)>,
    pub platform: Platform,
    pub cache_dir: Option<PathBuf>,
    pub connect: Connect,
    /// Overrides of `.margo-gitops.yaml`'s repositories.
    pub package_repository: Option<String>,
    pub desired_repository: Option<String>,
    /// The namespace for repositories nothing names: REGISTRY/APP-ID(-desired).
    pub registry: Option<String>,
}

/// What a run did, for outputs, summary and exit code.
#[derive(Default)]
pub struct CiOutcome {
    pub outputs: Vec<(String, String)>,
    pub summary: String,
    /// `::error …` annotations, already formatted.
    pub annotations: Vec<String>,
    /// Set when the run must fail (a one-line reason).
    pub failure: Option<String>,
    pub log: Vec<String>,
}

pub async fn run(actions: &Actions, ws: &Workspace, opts: &CiOptions) -> Result<CiOutcome> {
    match actions.event_name.as_str() {
        "push" => on_push(actions, ws, opts, false).await,
        "workflow_dispatch" => {
            let backfill = matches!(actions.event["inputs"]["mirror"], Value::Bool(true))
                || actions.event["inputs"]["mirror"] == "true";
            on_push(actions, ws, opts, backfill).await
        }
        "pull_request" | "pull_request_target" => on_pull_request(actions, ws, opts).await,
        other => Err(Error::Usage(format!(
            "event `{other}` is not handled: run on push, pull_request or workflow_dispatch"
        ))),
    }
}

/// `::error file=F,line=L::MESSAGE`, escaped as the Actions runner expects.
pub fn annotation(file: &str, line: usize, message: &str) -> String {
    let data = |s: &str| {
        s.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    };
    let prop = |s: &str| data(s).replace(':', "%3A").replace(',', "%2C");
    if line > 0 {
        format!("::error file={},line={line}::{}", prop(file), data(message))
    } else {
        format!("::error file={}::{}", prop(file), data(message))
    }
}

fn short(sha: &str) -> &str {
    &sha[..7.min(sha.len())]
}

/// The package and desired-state repositories: the action's inputs, else the config at
/// `source`, else `REGISTRY/APP-ID` and `REGISTRY/APP-ID-desired`.
fn repositories(
    opts: &CiOptions,
    config: &crate::desired::config::Config,
    source: &crate::desired::source::Source,
) -> Result<(String, String)> {
    let fallback = |suffix: &str, key: &str| -> Result<String> {
        match &opts.registry {
            Some(r) => Ok(format!(
                "{}/{}{suffix}",
                r.trim_end_matches('/'),
                pipeline::app_metadata(source, config, "id")?
            )),
            None => Err(Error::Usage(format!(
                "no repository: set `{key}` in .margo-gitops.yaml, or the action's input"
            ))),
        }
    };
    let package = match opts
        .package_repository
        .clone()
        .or(config.package_repository.clone())
    {
        Some(p) => p,
        None => fallback("", "packageRepository")?,
    };
    let desired = match opts
        .desired_repository
        .clone()
        .or(config.desired_state_repository.clone())
    {
        Some(d) => d,
        None => fallback("-desired", "desiredStateRepository")?,
    };
    Ok((package, desired))
}

async fn on_push(
    actions: &Actions,
    ws: &Workspace,
    opts: &CiOptions,
    backfill: bool,
) -> Result<CiOutcome> {
    let repo = ws.repo("margo-gitops ci")?;
    let mut out = CiOutcome::default();
    let default_branch = actions.event["repository"]["default_branch"]
        .as_str()
        .unwrap_or("main");
    if actions.event_name == "push" && actions.git_ref != format!("refs/heads/{default_branch}") {
        out.summary = format!(
            "## margo-gitops\n\nPush to `{}`: only the default branch `{default_branch}` publishes; nothing was pushed.\n",
            actions.git_ref
        );
        out.log.push(format!(
            "{} is not the default branch ({default_branch}): nothing published",
            actions.git_ref
        ));
        return Ok(out);
    }
    let head = repo.resolve(&actions.sha)?;
    let head_info = repo.commit(&head)?;
    let before = actions.event["before"]
        .as_str()
        .filter(|b| *b != ZERO)
        .and_then(|b| repo.resolve(b).ok())
        .filter(|b| repo.is_ancestor(b, &head) == Some(true));

    // The package of the version HEAD names.
    let head_source = crate::desired::source::Source::Commit {
        repo,
        commit: head.clone(),
    };
    let mut head_config = crate::desired::config::Config::load(&head_source)?;
    let mut connect = opts.connect.clone();
    connect.plain_http |= head_config.plain_http;
    let (package_repo, desired_repo) = repositories(opts, &head_config, &head_source)?;
    head_config.package_repository = Some(package_repo.clone());
    let package_ref = pipeline::package_ref(&head_source, &head_config, None)?;
    let target = Target::parse(&package_ref)?;
    let tag = target.tag.clone().unwrap_or_default();
    let store = Store::open(&target.repo, &connect).await?;
    let existing = store.resolve(&tag).await?;
    let app = PathBuf::from(head_config.app.clone().unwrap_or_else(|| ".".into()));
    let app_changed = match &before {
        Some(b) => repo.entry_id(b, &app)? != repo.entry_id(&head, &app)?,
        None => true,
    };
    let (package_digest, package_note) = match existing {
        Some(d) if !app_changed => (d, "already published, app unchanged".to_string()),
        _ => {
            let published = publish_package(ws, opts, &connect, &package_repo, &app).await?;
            let note = match published.signature {
                Some(sig) => format!("published, signed ({sig})"),
                None => "published, not signed".to_string(),
            };
            (published.digest, note)
        }
    };
    out.log.push(format!(
        "package {package_ref} ({package_digest}): {package_note}"
    ));
    out.outputs
        .push(("package-ref".into(), package_ref.clone()));
    out.outputs
        .push(("package-digest".into(), package_digest.to_string()));

    // Desired state: a version per pushed commit.
    let desired_target = Target::parse_repository(&desired_repo)?;
    let since = if backfill { None } else { before.clone() };
    let mirrored = if since.is_none() && !backfill {
        None
    } else {
        Some(
            crate::gitops::mirror::mirror(
                repo,
                &crate::gitops::mirror::MirrorRequest {
                    to: desired_target.clone(),
                    branch: Some(head.clone()),
                    since,
                    package_repository: Some(package_repo.clone()),
                    skip_missing: true,
                    allow_rewrite: false,
                    options: RenderOptions::default(),
                    connect: connect.clone(),
                    source_url: Some(format!("{}/{}", actions.server_url, actions.repository)),
                },
            )
            .await?,
        )
    };
    if mirrored.is_none() {
        let req = RenderRequest {
            at: Some(head.clone()),
            options: RenderOptions::default(),
            package: Some(package_ref.clone()),
            connect: connect.clone(),
        };
        let (committed, _) = pipeline::commit(ws, &req, Some(&desired_repo)).await?;
        out.log.push(format!(
            "desired state {}:{} ({})",
            committed.repository, committed.version, committed.digest
        ));
    }
    let version_tag = crate::desired::versions::version_tag(head_info.time);
    let desired_store = Store::open(&desired_target, &connect).await?;
    let desired_digest = desired_store
        .resolve(&version_tag)
        .await?
        .map(|d| d.to_string())
        .unwrap_or_default();
    out.outputs.push((
        "desired-ref".into(),
        format!("{desired_repo}:{version_tag}"),
    ));
    out.outputs
        .push(("desired-digest".into(), desired_digest.clone()));
    out.outputs
        .push(("desired-tag".into(), version_tag.clone()));

    // The summary.
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## margo-gitops: {} of [`{}`]({}) ({})\n",
        if backfill {
            "history backfill"
        } else {
            "publish"
        },
        head_info.short_commit,
        actions.commit_url(&head),
        head_info.subject.replace('|', "\\|")
    );
    let _ = writeln!(
        s,
        "| artifact | reference | digest | |\n| --- | --- | --- | --- |"
    );
    let _ = writeln!(
        s,
        "| package | {} | `{package_digest}` | {package_note} |",
        registry_link(actions, &package_ref)
    );
    let _ = writeln!(
        s,
        "| desired state | {} | `{desired_digest}` | version of this commit |",
        registry_link(actions, &format!("{desired_repo}:{version_tag}"))
    );
    if let Some(m) = &mirrored {
        let _ = writeln!(
            s,
            "\n{} version(s) published, {} already there{}.",
            m.published.len(),
            m.present,
            if m.desired_moved {
                "; `desired` moved"
            } else {
                ""
            }
        );
        for sk in &m.skipped {
            let _ = writeln!(
                s,
                "- skipped `{}` ({}): {}",
                short(&sk.commit),
                sk.subject,
                sk.reason
            );
        }
        out.log.push(format!(
            "desired state {desired_repo}: {} version(s) published, {} present",
            m.published.len(),
            m.present
        ));
    }
    out.summary = s;
    Ok(out)
}

/// A reference, linked to its package page when it lives on GHCR.
fn registry_link(actions: &Actions, reference: &str) -> String {
    let name = reference
        .strip_prefix("ghcr.io/")
        .and_then(|r| r.split_once('/'))
        .map(|(_, rest)| rest.split([':', '@']).next().unwrap_or(rest).to_string());
    match name {
        Some(n) => format!(
            "[`{reference}`]({}/{}/pkgs/container/{n})",
            actions.server_url, actions.repository
        ),
        None => format!("`{reference}`"),
    }
}

struct Published {
    digest: crate::oci::digest::Digest,
    signature: Option<crate::oci::digest::Digest>,
}

async fn publish_package(
    ws: &Workspace,
    opts: &CiOptions,
    connect: &Connect,
    package_repo: &str,
    app: &Path,
) -> Result<Published> {
    let out = tempfile::tempdir().map_err(Error::io("create", std::env::temp_dir()))?;
    let prepared = crate::package::prepare::prepare(&crate::package::prepare::PrepareOptions {
        app_dir: ws.root.join(app),
        out_dir: out.path().to_path_buf(),
        platform: opts.platform.clone(),
        images: opts.images.clone(),
        no_images: false,
        version: None,
        app_id: None,
        cache_dir: opts.cache_dir.clone(),
        connect: connect.clone(),
        sign: SignOptions::none(),
    })
    .await?;
    let published = crate::package::publish::publish(&crate::package::publish::PublishOptions {
        input: prepared.archive_path,
        to: Target::parse_repository(package_repo)?,
        app_to: None,
        version: None,
        format: crate::package::plan::Format::Margo,
        extra_tags: Vec::new(),
        connect: connect.clone(),
        sign: opts.sign.clone(),
        replace: false,
    })
    .await?;
    let first = published
        .artifacts
        .first()
        .ok_or_else(|| Error::invalid("publish wrote no artifact"))?;
    Ok(Published {
        digest: first.digest.clone(),
        signature: first.signature.clone(),
    })
}

/// Renders at `rev`; a package not published yet renders with placeholder digests.
async fn render_for_review(
    ws: &Workspace,
    rev: &str,
    opts: &CiOptions,
    connect: &Connect,
) -> Result<(Side, Vec<render::Rendered>, Option<String>)> {
    let source = ws.source(Some(rev))?;
    let mut config = crate::desired::config::Config::load(&source)?;
    let (package_repo, _) = repositories(opts, &config, &source)?;
    config.package_repository = Some(package_repo);
    let reference = pipeline::package_ref(&source, &config, None)?;
    let req = RenderRequest {
        at: Some(rev.to_string()),
        options: RenderOptions::default(),
        package: Some(reference.clone()),
        connect: connect.clone(),
    };
    let (docs, note) = match pipeline::render_state(ws, &req).await {
        Ok(state) => (state.docs, None),
        Err(Error::NotFound { .. }) => {
            let repo = ws.repo("margo-gitops ci")?;
            let package =
                hook::placeholder_package(&reference, connect.plain_http || config.plain_http)?;
            let git = repo.commit(rev).ok();
            let docs = render::render(
                &source,
                &config,
                &RenderOptions::default(),
                &package,
                git.as_ref(),
            )?;
            (
                docs,
                Some(format!(
                    "`{reference}` is not published yet: its digests are placeholders here"
                )),
            )
        }
        Err(e) => return Err(e),
    };
    Ok((
        Side {
            label: short(rev).to_string(),
            documents: docs.iter().map(|d| d.text.clone()).collect(),
        },
        docs,
        note,
    ))
}

async fn on_pull_request(actions: &Actions, ws: &Workspace, opts: &CiOptions) -> Result<CiOutcome> {
    let repo = ws.repo("margo-gitops ci")?;
    let pr = &actions.event["pull_request"];
    let number = pr["number"]
        .as_u64()
        .or(actions.event["number"].as_u64())
        .ok_or_else(|| Error::Usage("the pull_request event has no number".into()))?;
    let base = repo.resolve(pr["base"]["sha"].as_str().unwrap_or_default())?;
    let head = repo.resolve(pr["head"]["sha"].as_str().unwrap_or(&actions.sha))?;
    let mut out = CiOutcome::default();
    let connect = ws.connect(&opts.connect)?;

    // Problems in the commits of the pull request, as the pre-push hook finds them.
    let findings: Vec<Finding> = hook::pre_push(
        repo,
        "origin",
        &[Update {
            local_sha: head.clone(),
            remote_sha: base.clone(),
        }],
        false,
        &connect,
    )
    .await?;
    for f in &findings {
        out.annotations.push(annotation(
            &f.file,
            f.problem.line,
            &format!(
                "{}{}",
                f.problem.message,
                if f.problem.path.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", f.problem.path)
                }
            ),
        ));
    }

    // The desired state at the base and at the head.
    let base_side = render_for_review(ws, &base, opts, &connect).await;
    let head_side = render_for_review(ws, &head, opts, &connect).await;
    let mut body = format!(
        "{COMMENT_MARKER}\n### Desired state: `{}` → `{}`\n\n",
        short(&base),
        short(&head)
    );
    match (&base_side, &head_side) {
        (Ok((b, bdocs, bn)), Ok((h, hdocs, hn))) => {
            let d = crate::desired::diff::diff(b, h)?;
            for note in [bn, hn].into_iter().flatten() {
                let _ = writeln!(body, "> {note}\n");
            }
            if d.is_empty() {
                body.push_str("No change to any deployment.\n");
            } else {
                body.push_str("| deployment | change |\n| --- | --- |\n");
                for dep in d
                    .deployments
                    .iter()
                    .filter(|d| d.status != Status::Unchanged)
                {
                    let _ = writeln!(
                        body,
                        "| `{}` | {} |",
                        dep.name,
                        match dep.status {
                            Status::Added => "added".to_string(),
                            Status::Removed => "removed".to_string(),
                            _ => format!("{} field(s) changed", dep.changes.len()),
                        }
                    );
                }
                let _ = write!(
                    body,
                    "\n<details open><summary>Changes</summary>\n\n```\n{d}```\n</details>\n"
                );
            }
            let problems = |docs: &[render::Rendered]| -> Vec<String> {
                pipeline::validate_rendered(docs)
                    .iter()
                    .flat_map(|r| {
                        r.errors()
                            .map(|p| format!("- {}:{}: {}", r.file.display(), p.line, p.message))
                            .collect::<Vec<_>>()
                    })
                    .collect()
            };
            let before = problems(bdocs);
            if !before.is_empty() {
                let _ = writeln!(
                    body,
                    "\nThe desired state at the base is not valid either (not this pull request's doing):\n{}",
                    before.join("\n")
                );
            }
            let invalid = problems(hdocs);
            if !invalid.is_empty() {
                let _ = writeln!(
                    body,
                    "\n**The rendered desired state at the head is not valid:**\n{}",
                    invalid.join("\n")
                );
                out.failure
                    .get_or_insert_with(|| "the desired state at the head is not valid".into());
            }
        }
        (_, Err(e)) => {
            let _ = writeln!(
                body,
                "**The desired state at the head does not render:** {e}"
            );
            out.failure = Some(format!(
                "the desired state at the head does not render: {e}"
            ));
        }
        (Err(e), Ok(_)) => {
            let _ = writeln!(
                body,
                "The desired state at the base does not render ({e}); no diff."
            );
        }
    }
    if !findings.is_empty() {
        let _ = writeln!(body, "\n**Problems:**");
        for f in &findings {
            let _ = writeln!(
                body,
                "- `{}:{}`: {}",
                f.file, f.problem.line, f.problem.message
            );
        }
        out.failure
            .get_or_insert_with(|| format!("{} problem(s) in the pull request", findings.len()));
    }
    let _ = writeln!(
        body,
        "\n<sub>margo-gitops {} · nothing was pushed for this pull request</sub>",
        env!("CARGO_PKG_VERSION")
    );

    let token = actions.token.as_ref().ok_or_else(|| {
        Error::Usage("commenting on the pull request needs a token: the action's `token` input or GITHUB_TOKEN".into())
    })?;
    let gh = crate::gitops::github::GitHub::new(&actions.api_url, token, &actions.repository)?;
    let outcome = gh.upsert_comment(number, COMMENT_MARKER, &body).await?;
    out.log.push(format!(
        "pull request #{number}: review comment {outcome:?}"
    ));
    out.summary = body.replace(COMMENT_MARKER, "");
    Ok(out)
}

/// Appends `name=value` lines to the `GITHUB_OUTPUT` file.
pub fn write_outputs(path: &Path, outputs: &[(String, String)]) -> Result<()> {
    let mut text = String::new();
    for (k, v) in outputs {
        let _ = writeln!(text, "{k}={v}");
    }
    append(path, &text)
}

/// Appends markdown to the `GITHUB_STEP_SUMMARY` file.
pub fn write_summary(path: &Path, markdown: &str) -> Result<()> {
    append(path, markdown)
}

fn append(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(Error::io("open", path))?;
    f.write_all(text.as_bytes())
        .map_err(Error::io("write", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_escape_what_the_runner_parses() {
        assert_eq!(
            annotation("deploy/a,b.yaml", 7, "bad: 100%\nnext"),
            "::error file=deploy/a%2Cb.yaml,line=7::bad: 100%25%0Anext"
        );
        assert_eq!(annotation("t.j2", 0, "x"), "::error file=t.j2::x");
    }
}
