//! The GitHub REST API, for the one thing `ci` asks of it: a pull request's review comment,
//! created once and updated in place afterwards, found by a hidden marker (octocrab).
//!
//! The API root is `GITHUB_API_URL`, so GitHub Enterprise Server works; the token is a
//! [`Secret`] that only goes into the `Authorization` header.

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
}

impl GitHub {
    /// A client for `repository` (`OWNER/REPO`) at `api_url`.
    pub(crate) fn new(api_url: &str, token: &Secret, repository: &str) -> Result<GitHub> {
        let (owner, repo) = repository.split_once('/').ok_or_else(|| {
            Error::Usage(format!(
                "GITHUB_REPOSITORY `{repository}` is not OWNER/REPO"
            ))
        })?;
        let client = Octocrab::builder()
            .base_uri(api_url)
            .map_err(|e| Error::Usage(format!("GITHUB_API_URL `{api_url}`: {e}")))?
            .personal_token(token.expose_secret().to_string())
            .build()
            .map_err(|e| Error::service("GitHub API", e.to_string()))?;
        Ok(GitHub {
            client,
            owner: owner.into(),
            repo: repo.into(),
            api_url: api_url.into(),
        })
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

    /// Puts `body` (which must contain `marker`) on pull request `number`: updates the
    /// comment that carries the marker, or creates it when there is none.
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
        let issues = self.client.issues(&self.owner, &self.repo);
        let mut page = issues.list_comments(number).per_page(100).send().await?;
        let existing = loop {
            if let Some(c) = page
                .items
                .iter()
                .find(|c| c.body.as_deref().is_some_and(|b| b.contains(marker)))
            {
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
