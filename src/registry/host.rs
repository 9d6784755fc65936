//! What a host that keeps the registry's state in a database needs, one webhook or pipeline at a
//! time: export and import of one webhook, removal, lookup by URL token before a body is read,
//! pipeline versions, ARNs, and the rules of the API's other list calls (signed `NextToken`s,
//! `maxResults`) and of tags, so that a host keeps no copy of them.
//!
//! Still no I/O: the host reads its database and loads what changed; the registry holds the
//! compiled webhooks in front of it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Entry, PipelineDeclaration, Registry, WebhookState, last_triggered, next_token, unknown_url};
use crate::WebhookAuthenticationType;
use crate::error::{Error, ErrorCode};
use crate::request::Request;
use crate::verdict::Verdict;
use crate::webhook::Webhook;

/// A webhook found by its URL token ([`Registry::resolve_token`]): what a host needs before it
/// reads a delivery's body, and the compiled webhook to evaluate it with
/// ([`Registry::trigger_resolved`]), so that a delivery looks its token up once.
#[derive(Clone)]
pub struct Resolved {
    name: String,
    authentication: WebhookAuthenticationType,
    webhook: Result<Arc<Webhook>, Error>,
    last_triggered: Arc<Mutex<Option<SystemTime>>>,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("name", &self.name)
            .field("authentication", &self.authentication)
            .field("error", &self.webhook.as_ref().err())
            .finish_non_exhaustive()
    }
}

impl Resolved {
    /// The webhook's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How its deliveries authenticate.
    pub fn authentication(&self) -> WebhookAuthenticationType {
        self.authentication
    }

    /// Why it cannot trigger now (its target action left the first stage, its pipeline was
    /// deleted), if it cannot.
    pub fn error(&self) -> Option<&Error> {
        self.webhook.as_ref().err()
    }

    /// The most body bytes it reads, when it compiles.
    pub fn max_body_bytes(&self) -> Option<usize> {
        self.webhook.as_ref().ok().map(|w| w.max_body_bytes())
    }
}

/// The model's `maxResults` rule of a list call: 1 to `max`, reported as AWS reports it
/// (`ValidationException`). `member` is the member's name as the operation spells it
/// (`MaxResults` for `ListWebhooks`, `maxResults` for `ListPipelines`).
pub fn check_max_results(member: &str, value: i64, max: i64) -> Result<(), Error> {
    if (1..=max).contains(&value) {
        return Ok(());
    }
    Err(Error::validation(
        member.to_owned(),
        format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must have value between 1 and {max}"
        ),
    ))
}

/// `PipelineNotFoundException` for a pipeline name, worded as every operation words it.
pub fn no_such_pipeline(name: &str) -> Error {
    Error::new(
        ErrorCode::PipelineNotFoundException,
        None,
        format!("pipeline with name '{}' was not found", crate::error::escape(name)),
    )
}

/// `InvalidNextTokenException` for a token of `operation` that does not fit the call it came
/// with (a `ListPipelineExecutions` token given for another pipeline, say).
pub fn invalid_next_token(operation: &str) -> Error {
    Error::new(
        ErrorCode::InvalidNextTokenException,
        Some("nextToken".to_owned()),
        format!("The next token was not issued by {operation} for this call"),
    )
}

impl Registry {
    /// One webhook's state, secret, URL token and `lastTriggered` included (as in
    /// [`export_state`](Self::export_state)), for a host that writes one webhook at a time.
    pub fn export_webhook(&self, name: &str) -> Option<WebhookState> {
        self.read().webhooks.get(name).map(export_entry)
    }

    /// Loads one webhook, replacing the one of that name: the webhook a host's database holds,
    /// which decides. It is checked as [`import_state`](Self::import_state) checks a webhook, and
    /// compiled against its pipeline as the registry holds it now; one that does not compile
    /// (its pipeline deleted, its target action no longer in the first stage) loads in error,
    /// with the error the pipeline gives it, whatever the state recorded. Refused: a state
    /// `PutWebhook` would refuse, or a URL token another webhook has (`ValidationException`).
    pub fn import_webhook(&self, state: WebhookState) -> Result<(), Error> {
        let pipelines = self.read().pipelines.clone();
        let (name, entry) = self.load_entry(state, &pipelines, true)?;
        let mut state = self.write();
        if state.tokens.get(&entry.token).is_some_and(|other| *other != name) {
            return Err(Error::validation(
                "webhooks".to_owned(),
                format!("webhook '{}' reuses another's URL token", crate::error::escape(&name)),
            ));
        }
        // The pipeline may have changed since it was compiled against: compile again under the
        // lock (rare; a host loads changes one at a time).
        let entry = match (
            pipelines.get(&entry.definition.target_pipeline),
            state.pipelines.get(&entry.definition.target_pipeline),
        ) {
            (Some(a), Some(b)) if Arc::ptr_eq(a, b) => entry,
            (None, None) => entry,
            (_, now) => {
                let compiled = match now {
                    Some(p) => self.compile(&entry.definition, p, entry.previous.as_ref()).map(Arc::new),
                    None => Err(super::pipeline_not_found(&entry.definition.target_pipeline)),
                };
                Entry { compiled, ..entry }
            }
        };
        if let Some(old) = state.webhooks.remove(&name) {
            state.tokens.remove(&old.token);
        }
        state.tokens.insert(entry.token.clone(), name.clone());
        state.webhooks.insert(name, entry);
        Ok(())
    }

    /// Removes a webhook (its URL stops answering at once); whether it was there. As
    /// `DeleteWebhook`, for a host that learns of a deletion from its database.
    pub fn remove_webhook(&self, name: &str) -> bool {
        let mut state = self.write();
        match state.webhooks.remove(name) {
            Some(entry) => {
                state.tokens.remove(&entry.token);
                true
            }
            None => false,
        }
    }

    /// The names of the webhooks held, in order.
    pub fn webhook_names(&self) -> Vec<String> {
        self.read().webhooks.keys().cloned().collect()
    }

    /// The names of the pipelines held, in order.
    pub fn pipeline_names(&self) -> Vec<String> {
        self.read().pipelines.keys().cloned().collect()
    }

    /// A pipeline as held.
    pub fn pipeline(&self, name: &str) -> Option<PipelineDeclaration> {
        self.read().pipelines.get(name).map(|p| PipelineDeclaration::clone(p))
    }

    /// The version of a pipeline as held (its declaration's `version`; 1 when it has none).
    pub fn pipeline_version(&self, name: &str) -> Option<i64> {
        self.read().pipelines.get(name).map(|p| p.other.get("version").and_then(|v| v.as_i64()).unwrap_or(1))
    }

    /// The version `UpdatePipeline` gives a pipeline whose latest version is `current`
    /// (`CreatePipeline`: `None`, version 1).
    pub fn next_pipeline_version(current: Option<i64>) -> i64 {
        current.map_or(1, |v| v.saturating_add(1))
    }

    /// The number of webhooks the registry holds at most.
    pub fn webhook_quota(&self) -> usize {
        self.quota
    }

    /// `LimitExceededException` for the webhook quota, as `PutWebhook` reports it.
    pub fn quota_exceeded(&self) -> Error {
        Error::new(
            ErrorCode::LimitExceededException,
            None,
            format!("the number of webhooks is limited to {}", self.quota),
        )
    }

    /// A webhook's ARN: `arn:{partition}:codepipeline:{region}:{account}:webhook:{name}`.
    pub fn webhook_arn(&self, name: &str) -> String {
        self.arn(name)
    }

    /// A pipeline's ARN: `arn:{partition}:codepipeline:{region}:{account}:{name}`.
    pub fn pipeline_arn(&self, name: &str) -> String {
        format!("arn:{}:codepipeline:{}:{}:{name}", self.partition, self.region, self.account_id)
    }

    /// A webhook's URL for its token.
    pub fn webhook_url(&self, token: &str) -> String {
        self.url(token)
    }

    /// The `NextToken` that resumes `operation`'s listing after `position` (a name, or whatever
    /// the host pages by): signed with the registry's key (exported with its state, so every
    /// instance that shares the state accepts it), bound to the operation.
    pub fn issue_next_token(&self, operation: &str, position: &str) -> String {
        next_token::issue_for(&self.read().next_token_key, operation, position)
    }

    /// The position a `NextToken` of `operation` resumes after: `ValidationException` when its
    /// length breaks the model (1 to 2,048), `InvalidNextTokenException` when this registry's key
    /// did not issue it for `operation`.
    pub fn verify_next_token(&self, operation: &str, token: &str) -> Result<String, Error> {
        next_token::verify_for(&self.read().next_token_key, operation, token)
    }

    /// Finds a webhook by its URL token (the `t` of `/trigger?t=…&v=1`), before the body is read;
    /// `None` when no webhook has it.
    pub fn resolve_token(&self, token: &str) -> Option<Resolved> {
        let state = self.read();
        let entry = state.webhooks.get(state.tokens.get(token)?)?;
        Some(Resolved {
            name: entry.definition.name.clone(),
            authentication: entry.definition.authentication,
            webhook: entry.compiled.clone(),
            last_triggered: entry.last_triggered.clone(),
        })
    }

    /// As [`resolve_token`](Self::resolve_token), for the URL a delivery arrived at (or its
    /// path and query, as an HTTP server sees it), read as [`trigger`](Self::trigger) reads it:
    /// the `t` of its query, parameters in any order and percent-encoded or not, `v` absent or
    /// `1`. `None` when it names no webhook.
    pub fn resolve_url(&self, url: &str) -> Option<Resolved> {
        self.resolve_token(&self.base_url.token_in(url)?)
    }

    /// Evaluates a delivery to a webhook found by [`resolve_token`](Self::resolve_token), as
    /// [`trigger_token`](Self::trigger_token) does: the webhook's error when it cannot trigger;
    /// a trigger stamps `lastTriggered`.
    pub fn trigger_resolved(&self, resolved: &Resolved, request: &Request<'_>) -> Result<Verdict, Error> {
        let verdict = self.evaluate_resolved(resolved, request)?;
        if verdict.is_trigger() {
            *resolved.last_triggered.lock().unwrap_or_else(PoisonError::into_inner) = Some((self.clock)());
        }
        Ok(verdict)
    }

    /// As [`trigger_resolved`](Self::trigger_resolved), without stamping `lastTriggered`: for a
    /// host that decides after the verdict whether a trigger starts anything (a repeated
    /// delivery id, a full queue) and keeps `lastTriggered` itself (a database shared by many
    /// instances).
    pub fn evaluate_resolved(&self, resolved: &Resolved, request: &Request<'_>) -> Result<Verdict, Error> {
        let webhook = resolved.webhook.as_ref().map_err(Error::clone)?;
        // The registry's clock decides the grace period: a previous secret past its deadline is
        // not tried, so a delivery signed with it is a signature reject and never parsed.
        Ok(webhook.evaluate(&request.now((self.clock)())))
    }

    /// As [`trigger_token`](Self::trigger_token), through one lookup.
    pub(super) fn trigger_by_token(&self, token: &str, request: &Request<'_>) -> Result<Verdict, Error> {
        let resolved = self.resolve_token(token).ok_or_else(unknown_url)?;
        self.trigger_resolved(&resolved, request)
    }
}

/// One entry as exported state.
pub(super) fn export_entry(e: &Entry) -> WebhookState {
    WebhookState {
        definition: e.definition.clone(),
        tags: e.tags.clone(),
        token: e.token.clone(),
        registered_with_third_party: e.registered,
        last_triggered: last_triggered(e),
        error_code: e.compiled.as_ref().err().map(|e| e.code().to_owned()),
        error_message: e.compiled.as_ref().err().map(|e| e.message().to_owned()),
        previous_secret_token: e.previous.as_ref().map(|p| p.secret.clone()),
        previous_secret_valid_until: e
            .previous
            .as_ref()
            .map(|p| p.until.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::PutWebhookInput;

    fn pipeline(action: &str) -> PipelineDeclaration {
        PipelineDeclaration::from_json(&format!(
            r#"{{"name": "app", "roleArn": "arn:aws:iam::123456789012:role/cp", "version": 1,
                "stages": [{{"name": "Source", "actions": [{{"name": "{action}",
                "actionTypeId": {{"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"}},
                "configuration": {{"Owner": "o", "Repo": "r", "Branch": "main"}}}}]}}]}}"#
        ))
        .unwrap()
    }

    fn registry() -> Registry {
        let n = std::sync::atomic::AtomicU64::new(0);
        Registry::builder()
            .region("us-east-1")
            .account_id("123456789012")
            .token_source(move || format!("tok{}", n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)))
            .build()
            .unwrap()
    }

    const HOOK: &str = r#"{"webhook": {"name": "w", "targetPipeline": "app", "targetAction": "Source",
        "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}],
        "authentication": "UNAUTHENTICATED", "authenticationConfiguration": {}}}"#;

    #[test]
    fn one_webhook_moves_between_registries_and_loads_in_error_when_its_pipeline_says_so() {
        let a = registry();
        a.put_pipeline(pipeline("Source")).unwrap();
        a.put_webhook(PutWebhookInput::from_json(HOOK).unwrap()).unwrap();
        let state = a.export_webhook("w").unwrap();
        assert_eq!(state.token, "tok0");

        // Another instance whose pipeline renamed the action: the webhook loads, in error.
        let b = registry();
        b.put_pipeline(pipeline("Renamed")).unwrap();
        b.import_webhook(state.clone()).unwrap();
        let resolved = b.resolve_token("tok0").unwrap();
        assert_eq!(resolved.name(), "w");
        assert_eq!(resolved.error().map(Error::kind), Some(ErrorCode::ValidationException));
        // By URL, as `trigger` reads one: any path, any order, percent-encoded, `v` absent or 1.
        for url in
            ["/trigger?t=tok0&v=1", "https://other.example/cp/trigger?v=1&t=tok0", "/trigger?%74=tok%30", "/x?t=tok0"]
        {
            assert_eq!(b.resolve_url(url).map(|r| r.name().to_owned()).as_deref(), Some("w"), "{url}");
        }
        for url in ["/trigger?t=tok0&v=2", "/trigger?t=tok0&t=tok0", "/trigger?t=", "/trigger", "/trigger?t=tok9"] {
            assert!(b.resolve_url(url).is_none(), "{url}");
        }
        assert!(b.trigger_resolved(&resolved, &Request::new(r#"{"ref":"refs/heads/main"}"#)).is_err());
        // The pipeline fixed: compiled again, it triggers, and stamps lastTriggered.
        b.put_pipeline(pipeline("Source")).unwrap();
        let resolved = b.resolve_token("tok0").unwrap();
        assert_eq!(resolved.max_body_bytes(), Some(crate::DEFAULT_MAX_BODY_BYTES));
        let evaluated = b.evaluate_resolved(&resolved, &Request::new(r#"{"ref":"refs/heads/main"}"#)).unwrap();
        assert!(evaluated.is_trigger());
        assert!(b.export_webhook("w").unwrap().last_triggered.is_none(), "evaluate_resolved stamps nothing");
        let verdict = b.trigger_resolved(&resolved, &Request::new(r#"{"ref":"refs/heads/main"}"#)).unwrap();
        assert!(verdict.is_trigger());
        assert!(b.export_webhook("w").unwrap().last_triggered.is_some());
        // Imported again: replaced, not added; removed: its URL stops answering.
        b.import_webhook(state).unwrap();
        assert_eq!(b.webhook_names(), ["w"]);
        assert!(b.remove_webhook("w"));
        assert!(b.resolve_token("tok0").is_none());
        assert!(!b.remove_webhook("w"));
        assert_eq!(b.pipeline_version("app"), Some(1));
        assert_eq!(Registry::next_pipeline_version(Some(1)), 2);
        assert_eq!(b.pipeline_arn("app"), "arn:aws:codepipeline:us-east-1:123456789012:app");
        assert_eq!(b.webhook_arn("w"), "arn:aws:codepipeline:us-east-1:123456789012:webhook:w");
    }

    #[test]
    fn next_tokens_are_bound_to_their_operation_and_key() {
        let a = registry();
        let token = a.issue_next_token("ListPipelines", "b-app");
        assert_eq!(a.verify_next_token("ListPipelines", &token).unwrap(), "b-app");
        for other in ["ListPipelineExecutions", "ListWebhooks"] {
            assert_eq!(a.verify_next_token(other, &token).unwrap_err().kind(), ErrorCode::InvalidNextTokenException);
        }
        assert_eq!(
            registry().verify_next_token("ListPipelines", &token).unwrap_err().kind(),
            ErrorCode::InvalidNextTokenException,
            "another key"
        );
        assert_eq!(
            a.verify_next_token("ListPipelines", "-5").unwrap_err().kind(),
            ErrorCode::InvalidNextTokenException
        );
        // The key exported with the state: the other registry accepts the token.
        let b = Registry::builder()
            .region("us-east-1")
            .account_id("123456789012")
            .state(crate::registry::RegistryState {
                next_token_key: a.export_state().next_token_key,
                ..Default::default()
            })
            .build()
            .unwrap();
        assert_eq!(b.verify_next_token("ListPipelines", &token).unwrap(), "b-app");
    }

    #[test]
    fn tag_and_max_results_rules() {
        // The one tag checker (registry/tags.rs), as the service calls it.
        let check_tags = |tags: &[crate::Tag]| super::super::check_tags("tags", tags);
        let tag = |key: &str| crate::Tag { key: key.to_owned(), value: "v".to_owned() };
        assert!(check_tags(&[tag("team")]).is_ok());
        assert_eq!(check_tags(&[tag("AWS:x")]).unwrap_err().kind(), ErrorCode::InvalidTagsException);
        assert_eq!(check_tags(&[tag("a"), tag("a")]).unwrap_err().kind(), ErrorCode::InvalidTagsException);
        assert_eq!(check_tags(&[tag(&"k".repeat(129))]).unwrap_err().kind(), ErrorCode::ValidationException);
        let many: Vec<crate::Tag> = (0..51).map(|i| tag(&format!("k{i}"))).collect();
        assert_eq!(check_tags(&many).unwrap_err().kind(), ErrorCode::TooManyTagsException);
        assert!(check_max_results("maxResults", 1000, 1000).is_ok());
        let e = check_max_results("maxResults", 0, 1000).unwrap_err();
        assert_eq!(
            e.message(),
            "1 validation error detected: Value '0' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 1000"
        );
        assert_eq!(no_such_pipeline("x").kind(), ErrorCode::PipelineNotFoundException);
    }
}
