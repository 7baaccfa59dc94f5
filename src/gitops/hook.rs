//! Git hooks: a pre-push check of the desired state, a pre-commit check, and installing
//! the pre-push hook where git runs it.
//!
//! The checks read commits with gix, never the work tree (pre-commit excepted: there the
//! staged files are the work tree). They are offline by default: values only a registry
//! knows (the package digest) render as the all-zero placeholder digest, which validation
//! accepts; `--check-registry` resolves the package for real instead. A good push passes
//! quietly; a refused one names the commit, the file, the line and the reason.

use std::path::{Path, PathBuf};

use crate::desired::config::Config;
use crate::desired::package::{self, placeholder_package};
use crate::desired::pipeline;
use crate::desired::render::{self, RenderOptions};
use crate::desired::source::Source;
use crate::error::{Error, Result};
use crate::git::GitRepo;
use crate::margo::validate::{self, Problem};
use crate::oci::store::Connect;

/// The hook script `hook install` writes (`hooks/pre-push` in this repository).
pub(crate) const PRE_PUSH: &str = include_str!("../../hooks/pre-push");
/// How `hook install` and `uninstall` recognise a hook as theirs.
const MARKER: &str = "margo-gitops pre-push hook";

/// A problem found in a commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub commit: String,
    pub file: String,
    pub problem: Problem,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.problem;
        write!(
            f,
            "{} {}:{}: {}{}",
            &self.commit[..7.min(self.commit.len())],
            self.file,
            p.line,
            p.path_prefix(),
            p.message
        )
    }
}

/// True when `text` holds at least one Margo document: an ApplicationDeployment, or an
/// ApplicationDescription (an app's `margo.yaml`).
pub(crate) fn is_margo_document(text: &str) -> bool {
    let kinds = [validate::KIND, validate::DESCRIPTION_KIND];
    crate::margo::yamltree::parse(text)
        .map(|docs| {
            docs.iter().any(|d| {
                d.get("kind")
                    .and_then(|k| k.as_str())
                    .is_some_and(|k| kinds.contains(&k))
            })
        })
        // A file that does not even parse but names the kind is one a user meant as such.
        .unwrap_or_else(|_| kinds.iter().any(|k| text.contains(k)))
}

/// Where the package is when a commit's `.margo-gitops.yaml` does not say: for the `ci`
/// review, the action's `package-repository` input (which wins over the file, as in the
/// push job), else `REGISTRY/APP-ID` under its `registry` input. Empty for the hooks a user
/// runs, where the file says it or nothing renders.
#[derive(Clone, Debug, Default)]
pub struct PackageRepository {
    pub overriding: Option<String>,
    pub registry: Option<String>,
}

impl PackageRepository {
    /// Writes the package repository into `config` as described above.
    pub(crate) fn apply(&self, source: &Source, config: &mut Config) -> Result<()> {
        if let Some(r) = &self.overriding {
            config.package_repository = Some(r.clone());
        } else if config.package_repository.is_none() {
            if let Some(registry) = &self.registry {
                let id = pipeline::app_metadata(source, config, "id")?;
                config.package_repository =
                    Some(format!("{}/{id}", registry.trim_end_matches('/')));
            }
        }
        Ok(())
    }
}

/// Renders the configured desired state from `source` and validates it.
async fn check_rendering(
    source: &Source<'_>,
    commit: &str,
    check_registry: bool,
    connect: &Connect,
    packages: &PackageRepository,
) -> Result<Vec<Finding>> {
    let mut config = Config::load(source)?;
    if config.package_repository.is_none()
        && config.deployments.is_empty()
        && config.template.is_none()
    {
        return Ok(Vec::new()); // nothing configured to render
    }
    packages.apply(source, &mut config)?;
    let reference = pipeline::package_ref(source, &config, None)?;
    let mut connect = connect.clone();
    connect.plain_http |= config.plain_http;
    let package = if check_registry {
        package::resolve_package(&reference, &connect).await?
    } else {
        placeholder_package(&reference, connect.plain_http)?
    };
    let git = match source {
        Source::Commit { repo, commit } => repo.commit(commit).ok(),
        Source::WorkTree(_) => None,
    };
    let docs = match render::render(
        source,
        &config,
        &RenderOptions::default(),
        &package,
        git.as_ref(),
    ) {
        Ok(d) => d,
        Err(Error::Invalid {
            file,
            line,
            message,
            ..
        }) => {
            // Files read from a commit are named `abc1234:path`; the finding names the commit.
            let file = file.map(|f| f.display().to_string()).unwrap_or_default();
            let file = file
                .strip_prefix(&format!("{}:", &commit[..7.min(commit.len())]))
                .map(str::to_string)
                .unwrap_or(file);
            return Ok(vec![Finding {
                commit: commit.to_string(),
                file,
                problem: Problem {
                    line: line.unwrap_or(0),
                    path: String::new(),
                    message,
                    warning: false,
                },
            }]);
        }
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for d in docs {
        let label = format!("{} (deployment {})", d.template, d.name);
        for p in validate::validate_text(Path::new(&label), &d.text)
            .problems
            .into_iter()
            .filter(|p| !p.warning)
        {
            out.push(Finding {
                commit: commit.to_string(),
                file: label.clone(),
                problem: p,
            });
        }
    }
    Ok(out)
}

/// One ref update as git hands it to pre-push: `<local ref> <local sha> <remote ref> <remote sha>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    pub local_sha: String,
    pub remote_sha: String,
}

/// Parses git's pre-push standard input.
pub(crate) fn parse_updates(stdin: &str) -> Vec<Update> {
    stdin
        .lines()
        .filter_map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            (parts.len() == 4).then(|| Update {
                local_sha: parts[1].to_string(),
                remote_sha: parts[3].to_string(),
            })
        })
        .collect()
}

/// The ref updates of a push: git's standard input, or, when it is empty, the range the
/// pre-commit framework passes in `PRE_COMMIT_FROM_REF` and `PRE_COMMIT_TO_REF`.
pub fn updates(repo: &GitRepo, stdin: &str) -> Result<Vec<Update>> {
    let updates = parse_updates(stdin);
    if !updates.is_empty() {
        return Ok(updates);
    }
    let Ok(to) = std::env::var("PRE_COMMIT_TO_REF") else {
        return Ok(updates);
    };
    let from = std::env::var("PRE_COMMIT_FROM_REF").unwrap_or_default();
    Ok(vec![Update {
        local_sha: repo.resolve(&to)?,
        remote_sha: if from.is_empty() {
            "0".repeat(40)
        } else {
            repo.resolve(&from)?
        },
    }])
}

/// The pre-push check of `updates` to `remote`; every problem found, none when the push may go.
pub async fn pre_push(
    repo: &GitRepo,
    remote: &str,
    updates: &[Update],
    check_registry: bool,
    connect: &Connect,
    packages: &PackageRepository,
) -> Result<Vec<Finding>> {
    let mut findings = Vec::new();
    for u in updates {
        if u.local_sha.chars().all(|c| c == '0') {
            continue; // a deletion
        }
        let known = if u.remote_sha.chars().all(|c| c == '0') {
            repo.remote_tips(remote)
        } else {
            vec![u.remote_sha.clone()]
        };
        let commits = repo.new_commits(&u.local_sha, &known)?;
        if commits.is_empty() {
            continue;
        }
        // Deployment documents the new commits change, read as the pushed tip has them;
        // each reported under the newest commit that touched it.
        let mut touched: Vec<(PathBuf, String)> = Vec::new();
        for c in &commits {
            for path in repo.changed_yaml(c)? {
                if !touched.iter().any(|(p, _)| p == &path) {
                    touched.push((path, c.clone()));
                }
            }
        }
        for (path, commit) in touched {
            let Some(bytes) = repo.read(&u.local_sha, &path)? else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            if !is_margo_document(&text) {
                continue;
            }
            let report = validate::validate_text(&path, &text);
            for p in report.problems.into_iter().filter(|p| !p.warning) {
                findings.push(Finding {
                    commit: commit.clone(),
                    file: path.display().to_string(),
                    problem: p,
                });
            }
        }
        let tip = Source::Commit {
            repo,
            commit: u.local_sha.clone(),
        };
        findings
            .extend(check_rendering(&tip, &u.local_sha, check_registry, connect, packages).await?);
    }
    Ok(findings)
}

/// The pre-commit check: the named files that are deployments, and the rendering of the
/// work tree (which pre-commit has reduced to what is staged).
pub async fn pre_commit(
    root: &Path,
    files: &[PathBuf],
    check_registry: bool,
    connect: &Connect,
) -> Result<Vec<Finding>> {
    let mut findings = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        if !is_margo_document(&text) {
            continue;
        }
        for p in validate::validate_text(f, &text)
            .problems
            .into_iter()
            .filter(|p| !p.warning)
        {
            findings.push(Finding {
                commit: "staged".into(),
                file: f.display().to_string(),
                problem: p,
            });
        }
    }
    let source = Source::WorkTree(root.to_path_buf());
    let packages = PackageRepository::default();
    findings.extend(check_rendering(&source, "staged", check_registry, connect, &packages).await?);
    Ok(findings)
}

/// What `install` and `uninstall` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Installed(PathBuf),
    Replaced(PathBuf),
    AlreadyInstalled(PathBuf),
    Removed(PathBuf),
    NotInstalled(PathBuf),
}

fn is_ours(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.contains(MARKER))
}

/// Installs the pre-push hook where git runs it; a hook that is not ours stays unless `force`.
pub fn install(repo: &GitRepo, force: bool) -> Result<Outcome> {
    let dir = repo.hooks_dir();
    let path = dir.join("pre-push");
    if path.exists() {
        if std::fs::read_to_string(&path).is_ok_and(|t| t == PRE_PUSH) {
            return Ok(Outcome::AlreadyInstalled(path));
        }
        if !is_ours(&path) && !force {
            return Err(Error::invalid_file(
                &path,
                None,
                "a pre-push hook that is not margo-gitops's is installed here",
            )
            .with_hint("keep it, or pass --force to replace it"));
        }
    }
    let existed = path.exists();
    std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
    crate::oci::layout::write_atomic(&path, PRE_PUSH.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(Error::io("make executable", &path))?;
    }
    Ok(if existed {
        Outcome::Replaced(path)
    } else {
        Outcome::Installed(path)
    })
}

/// Removes the pre-push hook if it is ours.
pub fn uninstall(repo: &GitRepo) -> Result<Outcome> {
    let path = repo.hooks_dir().join("pre-push");
    if !path.exists() {
        return Ok(Outcome::NotInstalled(path));
    }
    if !is_ours(&path) {
        return Err(Error::invalid_file(
            &path,
            None,
            "this pre-push hook is not margo-gitops's; it stays",
        ));
    }
    std::fs::remove_file(&path).map_err(Error::io("remove", &path))?;
    Ok(Outcome::Removed(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZERO: &str = "0000000000000000000000000000000000000000";

    #[test]
    fn git_pre_push_input() {
        let u = parse_updates(&format!(
            "refs/heads/main {} refs/heads/main {ZERO}\n",
            "a".repeat(40)
        ));
        assert_eq!(
            u,
            vec![Update {
                local_sha: "a".repeat(40),
                remote_sha: ZERO.into()
            }]
        );
        assert!(parse_updates("").is_empty());
    }

    #[test]
    fn deployments_are_found_by_content() {
        assert!(is_margo_document(
            "a: 1\n---\nkind: ApplicationDeployment\n"
        ));
        assert!(!is_margo_document("kind: Deployment\n"));
        assert!(is_margo_document(
            "kind: ApplicationDeployment\nbroken: [\n"
        ));
        assert!(is_margo_document("kind: ApplicationDescription\n"));
    }

    #[test]
    fn the_installed_script_is_marked() {
        assert!(PRE_PUSH.contains(MARKER));
    }
}
