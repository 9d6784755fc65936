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

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One entry of `sourceRevisions`, as `GetPipelineExecution` and `ListPipelineExecutions` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRevision {
    /// The source action the revision is for (the webhook's target action).
    pub action_name: String,
    /// The head commit id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_id: Option<String>,
    /// The head commit's message, or the pull request's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_summary: Option<String>,
    /// The head commit's, or the pull request's, URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

/// A delivery's payload as JSON: the body, or the `payload` field of a form-encoded body
/// (`application/x-www-form-urlencoded`, as GitHub may send it). `None` when it is neither.
pub fn payload_json(content_type: Option<&str>, body: &[u8]) -> Option<Value> {
    let form = content_type
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if !form {
        return serde_json::from_slice(body).ok();
    }
    let field = body.split(|&b| b == b'&').find_map(|pair| pair.strip_prefix(b"payload="))?;
    serde_json::from_slice(&percent_decode(field)).ok()
}

fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < input.len() => {
                let hex = std::str::from_utf8(&input[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// The environment an on-trigger program gets for what it runs: `CODEPIPELINE_TRIGGER_TYPE`
/// (`Webhook` or `StartPipelineExecution`), and with a revision `CODEPIPELINE_SOURCE_ACTION`,
/// `CODEPIPELINE_REVISION_ID`, `CODEPIPELINE_REVISION_SUMMARY`, `CODEPIPELINE_REVISION_URL`
/// (each only when known).
pub fn program_env(trigger_type: &str, revision: Option<&SourceRevision>) -> Vec<(&'static str, String)> {
    let mut env = vec![("CODEPIPELINE_TRIGGER_TYPE", trigger_type.to_owned())];
    if let Some(r) = revision {
        env.push(("CODEPIPELINE_SOURCE_ACTION", r.action_name.clone()));
        for (key, value) in [
            ("CODEPIPELINE_REVISION_ID", &r.revision_id),
            ("CODEPIPELINE_REVISION_SUMMARY", &r.revision_summary),
            ("CODEPIPELINE_REVISION_URL", &r.revision_url),
        ] {
            if let Some(v) = value {
                env.push((key, v.clone()));
            }
        }
    }
    env
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
    fn form_encoded_payloads_are_read_from_their_payload_field() {
        let body = b"x=1&payload=%7B%22after%22%3A%22abc%22%2C%22head_commit%22%3A%7B%22message%22%3A%22a+b%22%7D%7D";
        let payload = payload_json(Some("application/x-www-form-urlencoded"), body).unwrap();
        assert_eq!(payload, json!({"after": "abc", "head_commit": {"message": "a b"}}));
        assert_eq!(payload_json(Some("application/json"), b"{\"a\":1}"), Some(json!({"a": 1})));
        assert_eq!(payload_json(None, b"%7"), None);
        assert_eq!(percent_decode(b"%4"), b"%4");
        assert_eq!(percent_decode(b"%zz"), b"%zz");
    }

    #[test]
    fn the_program_gets_the_revision_in_its_environment() {
        let r = source_revision("Src", &json!({"after": "abc"})).unwrap();
        assert_eq!(
            program_env("Webhook", Some(&r)),
            [
                ("CODEPIPELINE_TRIGGER_TYPE", "Webhook".to_owned()),
                ("CODEPIPELINE_SOURCE_ACTION", "Src".to_owned()),
                ("CODEPIPELINE_REVISION_ID", "abc".to_owned())
            ]
        );
        assert_eq!(program_env("StartPipelineExecution", None).len(), 1);
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
