//! The GitHub API, for the one thing `ci` asks of it: a pull request's review comment,
//! created once and updated in place afterwards, found by a hidden marker (octocrab).
//! Only a comment written by the token's own user, and opening with the marker, is ours:
//! anyone can paste the marker into a comment of their own (or into text another workflow
//! of the same bot quotes), and we must not edit (or be steered by) theirs. Who the token is
//! comes from GraphQL's `viewer`, which answers for the installation token Actions gives
//! (`GET /user` refuses it) as for a personal one.
//!
//! The API roots are `GITHUB_API_URL` and `GITHUB_GRAPHQL_URL`, so GitHub Enterprise Server
//! works; the token is a [`Secret`] that only goes into the `Authorization` header.

use octocrab::models::CommentId;
use octocrab::Octocrab;
use secrecy::ExposeSecret as _;

use crate::error::{Error, Result};
use crate::oci::credentials::Secret;

/// What [`GitHub::upsert_comment`] did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CommentOutcome {
    Created(u64),
    Updated(u64),
    Unchanged(u64),
    /// The token may not write the comment (a pull request from a fork gets a read-only
    /// token; the API answers 403 or 404), or there is no token: why.
    NotAllowed(String),
}

/// A refusal that means "this token may not comment here", not "something is broken".
fn not_allowed(e: &octocrab::Error) -> Option<String> {
    match e {
        octocrab::Error::GitHub { source, .. }
            if matches!(source.status_code.as_u16(), 403 | 404) =>
        {
            Some(format!(
                "the token may not comment on this pull request ({}: {})",
                source.status_code.as_u16(),
                source.message
            ))
        }
        _ => None,
    }
}

pub(crate) struct GitHub {
    client: Octocrab,
    owner: String,
    repo: String,
    api_url: String,
    graphql: Octocrab,
    graphql_path: String,
}

impl GitHub {
    /// A client for `repository` (`OWNER/REPO`) at `api_url` and `graphql_url`.
    pub(crate) fn new(
        api_url: &str,
        graphql_url: &str,
        token: &Secret,
        repository: &str,
    ) -> Result<GitHub> {
        let (owner, repo) = repository.split_once('/').ok_or_else(|| {
            Error::Usage(format!(
                "GITHUB_REPOSITORY `{repository}` is not OWNER/REPO"
            ))
        })?;
        let client = |base: &str, var: &str| {
            Octocrab::builder()
                .base_uri(base)
                .map_err(|e| Error::Usage(format!("{var} `{base}`: {e}")))?
                .personal_token(token.expose_secret().to_string())
                .build()
                .map_err(|e| Error::service("GitHub API", e.to_string()))
        };
        // octocrab joins every path onto its base's path; GraphQL's path is not under
        // REST's on GitHub Enterprise Server (/api/graphql, /api/v3), so it gets a client
        // rooted at the server.
        let url = reqwest::Url::parse(graphql_url)
            .map_err(|e| Error::Usage(format!("GITHUB_GRAPHQL_URL `{graphql_url}`: {e}")))?;
        let origin = url.origin().ascii_serialization();
        Ok(GitHub {
            client: client(api_url, "GITHUB_API_URL")?,
            graphql: client(&origin, "GITHUB_GRAPHQL_URL")?,
            graphql_path: url.path().to_string(),
            owner: owner.into(),
            repo: repo.into(),
            api_url: api_url.into(),
        })
    }

    /// The login the token acts as (`github-actions[bot]` for a workflow's own token).
    async fn viewer(&self) -> std::result::Result<String, octocrab::Error> {
        #[derive(serde::Deserialize)]
        struct Data {
            viewer: Viewer,
        }
        #[derive(serde::Deserialize)]
        struct Viewer {
            login: String,
        }
        let query = serde_json::json!({ "query": "query { viewer { login } }" });
        let response: octocrab::GraphqlResponse<Data> =
            self.graphql.post(&self.graphql_path, Some(&query)).await?;
        match response {
            octocrab::GraphqlResponse::Ok(ok) => Ok(ok.data.viewer.login),
            octocrab::GraphqlResponse::Err(err) => Err(octocrab::Error::Graphql {
                source: err.errors.into(),
                backtrace: std::backtrace::Backtrace::capture(),
            }),
        }
    }

    fn failed(&self, e: &octocrab::Error) -> Error {
        let detail = match e {
            octocrab::Error::GitHub { source, .. } => {
                format!("{} ({})", source.message, source.status_code)
            }
            _ => "the request failed".to_string(),
        };
        Error::service(
            format!("GitHub API {}", self.api_url),
            format!("cannot write the pull-request comment: {detail}"),
        )
        .with_hint("does the job have `permissions: pull-requests: write`?")
    }

    /// Puts `body` (which must open with `marker`) on pull request `number`: updates the
    /// token's own comment that opens with the marker, or creates it when there is none.
    /// A token that may not write (403/404) gives [`CommentOutcome::NotAllowed`]; any
    /// other failure is an error.
    pub(crate) async fn upsert_comment(
        &self,
        number: u64,
        marker: &str,
        body: &str,
    ) -> Result<CommentOutcome> {
        match self.upsert(number, marker, body).await {
            Err(e) => match not_allowed(&e) {
                Some(why) => Ok(CommentOutcome::NotAllowed(why)),
                None => Err(self.failed(&e)),
            },
            Ok(outcome) => Ok(outcome),
        }
    }

    async fn upsert(
        &self,
        number: u64,
        marker: &str,
        body: &str,
    ) -> std::result::Result<CommentOutcome, octocrab::Error> {
        let me = self.viewer().await?;
        let issues = self.client.issues(&self.owner, &self.repo);
        let mut page = issues.list_comments(number).per_page(100).send().await?;
        let existing = loop {
            if let Some(c) = page.items.iter().find(|c| {
                c.user.login == me && c.body.as_deref().is_some_and(|b| b.starts_with(marker))
            }) {
                break Some((c.id, c.body.clone().unwrap_or_default()));
            }
            match self
                .client
                .get_page::<octocrab::models::issues::Comment>(&page.next)
                .await?
            {
                Some(next) => page = next,
                None => break None,
            }
        };
        match existing {
            Some((id, old)) if old == body => Ok(CommentOutcome::Unchanged(id.0)),
            Some((id, _)) => {
                issues.update_comment(CommentId(id.0), body).await?;
                Ok(CommentOutcome::Updated(id.0))
            }
            None => {
                let c = issues.create_comment(number, body).await?;
                Ok(CommentOutcome::Created(c.id.0))
            }
        }
    }
}
