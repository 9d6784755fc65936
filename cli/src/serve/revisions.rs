//! What an execution ran: the `sourceRevisions` entry of a webhook-started execution, read from the
//! delivery that started it. Pure: the service hands in the parsed payload and the target action.
//!
//! - `actionName`: the webhook's target action;
//! - `revisionId`: the head commit: a push's `after`, or a pull request's `pull_request.head.sha`;
//! - `revisionSummary`: the head commit's message (`head_commit.message`), or the pull request's
//!   title;
//! - `revisionUrl`: the head commit's URL (`head_commit.url`), or the pull request's `html_url`.
//!
//! Members are cut to the model's lengths (`Revision` 1500, `RevisionSummary` and `Url` 2048
//! characters) and left out when empty, as the model's minimum of 1 requires. A push that deletes
//! its branch (`after` all zeros) has no revision.

// Not wired yet: the service records these once its store rewrite lands.
#![allow(dead_code)]

use serde::Serialize;
use serde_json::Value;

/// One entry of `sourceRevisions`, as `GetPipelineExecution` and `ListPipelineExecutions` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRevision {
    /// The source action the revision is for (the webhook's target action).
    pub action_name: String,
    /// The head commit id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision_id: Option<String>,
    /// The head commit's message, or the pull request's title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision_summary: Option<String>,
    /// The head commit's, or the pull request's, URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision_url: Option<String>,
}

/// The model's length limits on the members.
const MAX_REVISION: usize = 1500;
const MAX_SUMMARY: usize = 2048;
const MAX_URL: usize = 2048;

fn text(value: Option<&Value>, max: usize) -> Option<String> {
    let s = value?.as_str()?;
    if s.is_empty() {
        return None;
    }
    Some(s.chars().take(max).collect())
}

/// The revision a delivery carries for `action`: from a pull request event's `pull_request`, else
/// from a push's `after` and `head_commit`. `None` when the payload names no commit (a ping, a
/// branch deletion, an issue event).
pub fn source_revision(action: &str, payload: &Value) -> Option<SourceRevision> {
    if let Some(pr) = payload.get("pull_request").filter(|p| p.is_object()) {
        let revision_id = text(pr.pointer("/head/sha"), MAX_REVISION)?;
        return Some(SourceRevision {
            action_name: action.to_owned(),
            revision_id: Some(revision_id),
            revision_summary: text(pr.get("title"), MAX_SUMMARY),
            revision_url: text(pr.get("html_url"), MAX_URL),
        });
    }
    let after = text(payload.get("after"), MAX_REVISION).filter(|a| !a.bytes().all(|b| b == b'0'))?;
    let head = payload.get("head_commit").filter(|h| h.is_object());
    Some(SourceRevision {
        action_name: action.to_owned(),
        revision_id: Some(after),
        revision_summary: text(head.and_then(|h| h.get("message")), MAX_SUMMARY),
        revision_url: text(head.and_then(|h| h.get("url")), MAX_URL),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(path: &str) -> Value {
        let path = format!("{}/../tests/fixtures/github/{path}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn a_push_gives_after_and_its_head_commit() {
        let revision = source_revision("Source", &fixture("push/with-new-branch.payload.json")).unwrap();
        assert_eq!(
            serde_json::to_value(&revision).unwrap(),
            json!({
                "actionName": "Source",
                "revisionId": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
                "revisionSummary": "Initial commit",
                "revisionUrl": "https://github.com/Codertocat/Hello-World/commit/6113728f27ae82c7b1a177c8d03f9e96e0adf246",
            })
        );
    }

    #[test]
    fn a_branch_deletion_has_no_revision() {
        // `after` is all zeros and `head_commit` null: nothing to build.
        assert_eq!(source_revision("Source", &fixture("push/payload.json")), None);
        assert_eq!(source_revision("Source", &fixture("ping/payload.json")), None);
    }

    #[test]
    fn a_pull_request_gives_its_head_sha_and_title() {
        for event in ["opened.payload.json", "synchronize.payload.json", "opened.with-null-body.json"] {
            let revision = source_revision("Src", &fixture(&format!("pull_request/{event}"))).unwrap();
            assert_eq!(revision.action_name, "Src");
            assert_eq!(revision.revision_id.as_deref(), Some("ec26c3e57ca3a959ca5aad62de7213c562f8c821"), "{event}");
            assert_eq!(revision.revision_summary.as_deref(), Some("Update the README with new information."));
            assert_eq!(revision.revision_url.as_deref(), Some("https://github.com/Codertocat/Hello-World/pull/2"));
        }
    }

    #[test]
    fn members_are_cut_to_the_model_s_lengths() {
        let long = "m".repeat(5000);
        let payload = json!({"after": "a".repeat(2000), "head_commit": {"message": long, "url": ""}});
        let revision = source_revision("Source", &payload).unwrap();
        assert_eq!(revision.revision_id.unwrap().len(), 1500);
        assert_eq!(revision.revision_summary.unwrap().chars().count(), 2048);
        assert_eq!(revision.revision_url, None);
        assert_eq!(source_revision("Source", &json!({"after": 7})), None);
    }
}
