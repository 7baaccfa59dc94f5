//! What `margo-gitops ci` prints and writes for the runner: log lines, `::error`
//! annotations (escaped as the runner parses them), the step summary, and the
//! pull-request comment (markdown that carries the marker later runs find it by).

use std::fmt::Write as _;

use margo_gitops::desired::diff::{Diff, Status};
use margo_gitops::gitops::ci::push::{PackageOutcome, Pushed};
use margo_gitops::gitops::ci::resign::Resigned;
use margo_gitops::gitops::ci::review::{Comparison, Review, COMMENT_MARKER};
use margo_gitops::gitops::ci::{short, Actions};
use margo_gitops::gitops::github::CommentOutcome;
use margo_gitops::margo::validate::Report;

/// A workflow command's message, escaped as the Actions runner parses it.
fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// `::warning::MESSAGE`.
pub fn warning(message: &str) -> String {
    format!("::warning::{}", data(message))
}

/// `::error file=F,line=L::MESSAGE`, escaped as the Actions runner expects.
pub fn annotation(file: &str, line: usize, message: &str) -> String {
    let prop = |s: &str| data(s).replace(':', "%3A").replace(',', "%2C");
    if line > 0 {
        format!("::error file={},line={line}::{}", prop(file), data(message))
    } else {
        format!("::error file={}::{}", prop(file), data(message))
    }
}

/// The summary of a run that failed.
pub fn failed(e: &margo_gitops::Error) -> String {
    format!("## margo-gitops failed\n\n{e}\n")
}

/// A push to another branch: one log line; returns the summary.
pub fn skipped(event_name: &str, git_ref: &str, default_branch: &str) -> String {
    let what = match event_name {
        "workflow_dispatch" => "A dispatch on",
        _ => "A push to",
    };
    println!(
        "::notice title=margo-gitops::{what} {git_ref} publishes nothing: only the default branch ({default_branch}) moves `desired`"
    );
    format!(
        "## margo-gitops\n\n{what} `{git_ref}`: only the default branch `{default_branch}` publishes; nothing was pushed.\n"
    )
}

/// The log line of the schedule job.
pub fn resigned_log(r: &Resigned) {
    println!(
        "desired state {}:{} ({}, commit {}): signed again ({})",
        r.repository,
        r.version,
        r.digest,
        short(&r.revision),
        r.signature
    );
}

/// The step summary of the schedule job.
pub fn resigned_summary(r: &Resigned) -> String {
    format!(
        "## margo-gitops: desired state signed again

`desired` holds `{}` ({}), commit `{}`: \
         what that commit renders, so it was signed again ({}) for devices that require a \
         recent signature (`maxAge`). Nothing else changed.\n",
        r.version,
        r.digest,
        short(&r.revision),
        r.signature
    )
}

fn package_note(p: &Pushed) -> String {
    match &p.package {
        PackageOutcome::AlreadyPublished => "already published, app unchanged".into(),
        PackageOutcome::Published {
            signature: Some(sig),
        } => format!("published, signed ({sig})"),
        PackageOutcome::Published { signature: None } => "published, not signed".into(),
    }
}

/// The log lines of a push.
pub fn push_log(p: &Pushed) {
    println!(
        "package {} ({}): {}",
        p.package_ref,
        p.package_digest,
        package_note(p)
    );
    if let Some(c) = &p.committed {
        println!(
            "desired state {}:{} ({})",
            c.repository, c.version, c.digest
        );
    }
    if let Some(m) = &p.mirrored {
        println!(
            "desired state {}: {} version(s) published, {} present",
            p.desired_repository,
            m.published.len(),
            m.present
        );
    }
}

/// The step summary of a push: what was published, with links.
pub fn push_summary(actions: &Actions, p: &Pushed) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## margo-gitops: {} of [`{}`]({}) ({})\n",
        if p.backfill {
            "history backfill"
        } else {
            "publish"
        },
        p.head.short_commit,
        actions.commit_url(&p.head.commit),
        p.head.subject.replace('|', "\\|")
    );
    let _ = writeln!(
        s,
        "| artifact | reference | digest | |\n| --- | --- | --- | --- |"
    );
    let _ = writeln!(
        s,
        "| package | {} | `{}` | {} |",
        registry_link(actions, &p.package_ref),
        p.package_digest,
        package_note(p)
    );
    let desired_digest = p
        .desired_digest
        .as_ref()
        .map(|d| d.to_string())
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "| desired state | {} | `{desired_digest}` | version of this commit |",
        registry_link(
            actions,
            &format!("{}:{}", p.desired_repository, p.version_tag)
        )
    );
    if let Some(m) = &p.mirrored {
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
    }
    s
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

/// Every error of `reports` as a markdown list item `- file:line: message`.
fn problem_lines(reports: &[Report]) -> Vec<String> {
    reports
        .iter()
        .flat_map(|r| {
            r.errors()
                .map(|p| format!("- {}:{}: {}", r.file.display(), p.line, p.message))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The pull-request comment: the semantic diff and every problem, with the marker.
pub fn review_comment(r: &Review) -> String {
    let mut body = format!(
        "{COMMENT_MARKER}\n### Desired state: `{}` → `{}`\n\n",
        short(&r.base),
        short(&r.head)
    );
    if let Some(f) = &r.version_bump {
        let _ = writeln!(
            body,
            "**Bump the app version** (`{}:{}`): {}\n",
            f.file, f.problem.line, f.problem.message
        );
    }
    match &r.comparison {
        Comparison::Compared {
            diff,
            notes,
            base_problems,
            head_problems,
        } => compared(&mut body, diff, notes, base_problems, head_problems),
        Comparison::HeadFails(e) => {
            let _ = writeln!(
                body,
                "**The desired state at the head does not render:** {e}"
            );
        }
        Comparison::BaseFails(e) => {
            let _ = writeln!(
                body,
                "The desired state at the base does not render ({e}); no diff."
            );
        }
    }
    if let Some(d) = &r.app_diff {
        let _ = writeln!(
            body,
            "\n### On the devices\n\n```\n{}```",
            margo_gitops::package::diff::render_text(d)
        );
    }
    if !r.findings.is_empty() {
        let _ = writeln!(body, "\n**Problems:**");
        for f in &r.findings {
            let _ = writeln!(
                body,
                "- `{}:{}`: {}",
                f.file, f.problem.line, f.problem.message
            );
        }
    }
    let _ = writeln!(
        body,
        "\n<sub>margo-gitops {} · nothing was pushed for this pull request</sub>",
        env!("CARGO_PKG_VERSION")
    );
    body
}

/// The diff of the two sides, and the problems of each.
fn compared(
    body: &mut String,
    diff: &Diff,
    notes: &[String],
    base_problems: &[Report],
    head_problems: &[Report],
) {
    for note in notes {
        let _ = writeln!(body, "> {note}\n");
    }
    if diff.is_empty() {
        body.push_str("No change to any deployment.\n");
    } else {
        body.push_str("| deployment | change |\n| --- | --- |\n");
        for dep in diff
            .deployments
            .iter()
            .filter(|d| d.status != Status::Unchanged)
        {
            let change = match dep.status {
                Status::Added => "added".to_string(),
                Status::Removed => "removed".to_string(),
                _ => format!("{} field(s) changed", dep.changes.len()),
            };
            let _ = writeln!(body, "| `{}` | {change} |", dep.name);
        }
        let _ = write!(
            body,
            "\n<details open><summary>Changes</summary>\n\n```\n{diff}```\n</details>\n"
        );
    }
    let before = problem_lines(base_problems);
    if !before.is_empty() {
        let _ = writeln!(
            body,
            "\nThe desired state at the base is not valid either (not this pull request's doing):\n{}",
            before.join("\n")
        );
    }
    let invalid = problem_lines(head_problems);
    if !invalid.is_empty() {
        let _ = writeln!(
            body,
            "\n**The rendered desired state at the head is not valid:**\n{}",
            invalid.join("\n")
        );
    }
}

/// The log line of a review and its annotations, one per problem.
pub fn review_log(r: &Review, outcome: &CommentOutcome) {
    match outcome {
        CommentOutcome::NotAllowed(why) => println!(
            "{}",
            warning(&format!(
                "pull request #{}: no review comment, {why}; the review is in this job's summary",
                r.number
            ))
        ),
        done => println!("pull request #{}: review comment {done:?}", r.number),
    }
    for f in r.version_bump.iter().chain(&r.findings) {
        let path = if f.problem.path.is_empty() {
            String::new()
        } else {
            format!(" ({})", f.problem.path)
        };
        println!(
            "{}",
            annotation(
                &f.file,
                f.problem.line,
                &format!("{}{path}", f.problem.message)
            )
        );
    }
}

/// The step summary of a review: the comment, without its marker, and why it is not on
/// the pull request when it could not be written there.
pub fn review_summary(body: &str, outcome: &CommentOutcome) -> String {
    let mut summary = body.replace(COMMENT_MARKER, "");
    if let CommentOutcome::NotAllowed(why) = outcome {
        let _ = write!(summary, "\n_Not posted on the pull request: {why}._\n");
    }
    summary
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
