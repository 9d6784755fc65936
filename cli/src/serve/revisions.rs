//! What an execution ran: the `sourceRevisions` entry of a webhook-started execution, read from the
//! delivery that started it. Pure: the service hands in the payload's bytes and the target action.
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

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

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

// The members read, and nothing else: the payload is scanned once (serde skips the rest
// without building it), not parsed into a `Value` (a delivery's whole tree, every string
// and map allocated, on the triggering path). A member of another JSON type than expected
// reads as absent, as `Value::as_str` / `is_object` did.
#[derive(Default, Deserialize)]
#[serde(default)]
struct Payload {
    pull_request: Object<PullRequest>,
    after: Text,
    head_commit: Object<HeadCommit>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct PullRequest {
    head: Object<Head>,
    title: Text,
    html_url: Text,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Head {
    sha: Text,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct HeadCommit {
    message: Text,
    url: Text,
}

/// A JSON string, or `None` for a value of any other type (skipped).
#[derive(Default)]
struct Text(Option<String>);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Lenient(PhantomData::<Text>))
    }
}

/// A JSON object read as `T`, or `None` for a value of any other type (skipped).
struct Object<T>(Option<T>);

impl<T> Default for Object<T> {
    fn default() -> Self {
        Object(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Lenient(PhantomData::<Object<T>>))
    }
}

/// What [`Lenient`] builds from a string or an object; anything else is `Default`.
trait FromJson<'de>: Default {
    fn from_str<E: de::Error>(_: &str) -> Result<Self, E> {
        Ok(Self::default())
    }
    fn from_map<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Self::default())
    }
}

impl FromJson<'_> for Text {
    fn from_str<E: de::Error>(s: &str) -> Result<Self, E> {
        Ok(Text(Some(s.to_owned())))
    }
}

impl<'de, T: Deserialize<'de>> FromJson<'de> for Object<T> {
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|t| Object(Some(t)))
    }
}

struct Lenient<T>(PhantomData<T>);

impl<'de, T: FromJson<'de>> Visitor<'de> for Lenient<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        T::from_str(s)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::from_map(map)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(T::default())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }
}

fn cut(text: Text, max: usize) -> Option<String> {
    let s = text.0.filter(|s| !s.is_empty())?;
    Some(if s.len() <= max { s } else { s.chars().take(max).collect() })
}

/// The revision a delivery's JSON payload carries for `action`: from a pull request event's
/// `pull_request`, else from a push's `after` and `head_commit`. `None` when the payload names
/// no commit (a ping, a branch deletion, an issue event), or is not a JSON object (or repeats
/// one of the members read).
pub fn source_revision(action: &str, payload: &[u8]) -> Option<SourceRevision> {
    let payload: Payload = serde_json::from_slice(payload).ok()?;
    if let Some(pr) = payload.pull_request.0 {
        let revision_id = cut(pr.head.0?.sha, MAX_REVISION)?;
        return Some(SourceRevision {
            action_name: action.to_owned(),
            revision_id: Some(revision_id),
            revision_summary: cut(pr.title, MAX_SUMMARY),
            revision_url: cut(pr.html_url, MAX_URL),
        });
    }
    let after = cut(payload.after, MAX_REVISION).filter(|a| !a.bytes().all(|b| b == b'0'))?;
    let head = payload.head_commit.0.unwrap_or_default();
    Some(SourceRevision {
        action_name: action.to_owned(),
        revision_id: Some(after),
        revision_summary: cut(head.message, MAX_SUMMARY),
        revision_url: cut(head.url, MAX_URL),
    })
}

/// A delivery's JSON payload: the body, or the `payload` field of a form-encoded body
/// (`application/x-www-form-urlencoded`, as GitHub may send it), decoded. `None` for a form
/// without that field.
pub fn payload_json<'b>(content_type: Option<&str>, body: &'b [u8]) -> Option<Cow<'b, [u8]>> {
    let form = content_type
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Some(Cow::Borrowed(body));
    }
    let field = body.split(|&b| b == b'&').find_map(|pair| pair.strip_prefix(b"payload="))?;
    Some(Cow::Owned(percent_decode(field)))
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

    fn fixture(path: &str) -> Vec<u8> {
        let path = format!("{}/../tests/fixtures/github/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(path).unwrap()
    }

    fn bytes(v: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
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
        assert_eq!(&payload[..], br#"{"after":"abc","head_commit":{"message":"a b"}}"#);
        assert_eq!(source_revision("S", &payload).unwrap().revision_summary.as_deref(), Some("a b"));
        assert_eq!(payload_json(Some("application/json"), b"{\"a\":1}").as_deref(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(payload_json(Some("application/x-www-form-urlencoded"), b"x=1"), None);
        assert_eq!(source_revision("S", b"%7"), None);
        assert_eq!(percent_decode(b"%4"), b"%4");
        assert_eq!(percent_decode(b"%zz"), b"%zz");
    }

    #[test]
    fn the_program_gets_the_revision_in_its_environment() {
        let r = source_revision("Src", &bytes(json!({"after": "abc"}))).unwrap();
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
        let revision = source_revision("Source", &bytes(payload)).unwrap();
        assert_eq!(revision.revision_id.unwrap().len(), 1500);
        assert_eq!(revision.revision_summary.unwrap().chars().count(), 2048);
        assert_eq!(revision.revision_url, None);
        assert_eq!(source_revision("Source", &bytes(json!({"after": 7}))), None);
    }

    #[test]
    fn deep_or_large_members_are_skipped_without_recursion() {
        // 100,000 nested arrays where the message should be: serde_json skips an ignored value
        // without recursion, so there is no stack overflow; the message, of another type, reads
        // as absent and the rest of the revision stands.
        let deep =
            format!(r#"{{"after":"abc","head_commit":{{"message":{}{}}}}}"#, "[".repeat(100_000), "]".repeat(100_000));
        let r = source_revision("S", deep.as_bytes()).unwrap();
        assert_eq!((r.revision_id.as_deref(), r.revision_summary), (Some("abc"), None));
        // A megabyte of members that are not read is skipped, and what is read still is.
        let wide = format!(r#"{{"pad":[{}0],"after":"abc"}}"#, "0,".repeat(512 * 1024));
        assert_eq!(source_revision("S", wide.as_bytes()).unwrap().revision_id.as_deref(), Some("abc"));
    }

    #[test]
    fn members_of_another_type_read_as_absent() {
        // As `Value::as_str` and `is_object` read them: the rest of the payload still counts.
        let odd = json!({
            "pull_request": "not an object",
            "after": "abc",
            "head_commit": {"message": ["a", {"b": 1}], "url": 7, "extra": {"deep": [1, 2, {"x": null}]}},
            "other": {"after": "nested, not read"},
        });
        let r = source_revision("S", &bytes(odd)).unwrap();
        assert_eq!((r.revision_id.as_deref(), r.revision_summary, r.revision_url), (Some("abc"), None, None));
        let pr = json!({"pull_request": {"head": "x", "title": "t"}, "after": "abc"});
        assert_eq!(source_revision("S", &bytes(pr)), None, "a pull request without a head sha names no commit");
        let pr = json!({"pull_request": {"head": {"sha": "s"}, "title": 1, "html_url": null}});
        let r = source_revision("S", &bytes(pr)).unwrap();
        assert_eq!((r.revision_id.as_deref(), r.revision_summary, r.revision_url), (Some("s"), None, None));
        assert_eq!(source_revision("S", b"[1, 2]"), None);
        assert_eq!(source_revision("S", b"\"after\""), None);
        // Escapes are decoded.
        let r = source_revision("S", br#"{"after":"a\u0062c","head_commit":{"message":"l1\nl2"}}"#).unwrap();
        assert_eq!((r.revision_id.as_deref(), r.revision_summary.as_deref()), (Some("abc"), Some("l1\nl2")));
    }
}
