//! The API calls: `PutPipeline`, `PutWebhook`, `ListWebhooks`, `DeleteWebhook`, the third-party
//! registration calls, and deliveries (`trigger`).
//!
//! A put compiles with no lock held and takes the write lock only to insert, after checking that
//! what it compiled against is still in force; deliveries take the read lock only to find the
//! compiled webhook.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{
    DeleteWebhookInput, DeregisterWebhookWithThirdPartyInput, Entry, ListWebhookItem, ListWebhooksInput,
    ListWebhooksOutput, MAX_LIST_RESULTS, PipelineDeclaration, Previous, PutWebhookOutput,
    RegisterWebhookWithThirdPartyInput, Registry, State, check_pipeline, check_webhook_name, is_url_token, next_token,
    not_found, pipeline_not_found, unknown_url,
};
use crate::definition::{PutWebhookInput, WebhookDefinition};
use crate::error::{Error, ErrorCode};
use crate::request::Request;
use crate::verdict::Verdict;
use crate::webhook::Webhook;

/// How often a put compiles without the lock and finds, at insert time, that the pipeline or the
/// webhooks changed meanwhile, before it compiles under the write lock (so that a stream of
/// concurrent writes cannot starve it).
const UNLOCKED_TRIES: usize = 3;

impl Registry {
    /// Creates or replaces a pipeline. Webhooks that target it are recompiled against its new first
    /// stage; one that no longer compiles stays listed with `errorCode` and `errorMessage` and
    /// refuses deliveries until the pipeline or the webhook is fixed.
    ///
    /// The webhooks are compiled with no lock held (deliveries go on meanwhile); the write lock is
    /// taken only to insert, after checking that none of them changed in between.
    pub fn put_pipeline(&self, pipeline: PipelineDeclaration) -> Result<(), Error> {
        check_pipeline(&pipeline)?;
        let pipeline = Arc::new(pipeline);
        for attempt in 0..=UNLOCKED_TRIES {
            let locked = attempt == UNLOCKED_TRIES;
            let (mut state, compiled) = if locked {
                let state = self.write();
                let compiled = self.compile_targets(targets(&state, &pipeline.name), &pipeline);
                (state, compiled)
            } else {
                let targets = targets(&self.read(), &pipeline.name);
                let compiled = self.compile_targets(targets, &pipeline);
                let state = self.write();
                // The same webhooks, by name and revision, as when they were read.
                let current = state.webhooks.iter().filter(|(_, e)| e.definition.target_pipeline == pipeline.name);
                let unchanged = current.clone().count() == compiled.len()
                    && current.zip(&compiled).all(|((name, e), (n, revision, _))| name == n && e.revision == *revision);
                if !unchanged {
                    continue;
                }
                (state, compiled)
            };
            for (name, _, webhook) in compiled {
                if let Some(entry) = state.webhooks.get_mut(&name) {
                    entry.compiled = webhook;
                }
            }
            state.pipelines.insert(pipeline.name.clone(), pipeline);
            return Ok(());
        }
        unreachable!("the last attempt holds the write lock throughout")
    }

    /// `DeletePipeline`: removes a pipeline; its webhooks stay listed, with `errorCode`
    /// `PipelineNotFoundException`, and refuse deliveries until a pipeline of that name is put
    /// again (then they compile against it). Deleting a missing pipeline succeeds.
    pub fn delete_pipeline(&self, name: &str) -> Result<(), Error> {
        let mut state = self.write();
        state.pipeline_tags.remove(name);
        if state.pipelines.remove(name).is_some() {
            for entry in state.webhooks.values_mut().filter(|e| e.definition.target_pipeline == name) {
                entry.compiled = Err(pipeline_not_found(name));
                entry.revision = self.revisions.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// `PutWebhook`: validates, checks the target, compiles, and stores. Same name: the webhook is
    /// replaced and keeps its URL, ARN and `lastTriggered`.
    ///
    /// The webhook is compiled (JsonPath parsed, placeholders resolved) and a new URL token drawn
    /// with no lock held, so deliveries to other webhooks go on meanwhile; the write lock is taken
    /// only to insert, after checking that the pipeline is still the one compiled against.
    ///
    /// Errors: `ValidationException` (model; target action not in the first stage),
    /// `TooManyTagsException`, `InvalidTagsException`, `PipelineNotFoundException`,
    /// `InvalidWebhookAuthenticationParametersException`, `InvalidWebhookFilterPatternException`,
    /// `LimitExceededException` (quota).
    pub fn put_webhook(&self, input: PutWebhookInput) -> Result<PutWebhookOutput, Error> {
        input.validate()?;
        let PutWebhookInput { webhook: definition, tags } = input;
        let mut token: Option<String> = None;
        for attempt in 0..=UNLOCKED_TRIES {
            let locked = attempt == UNLOCKED_TRIES;
            let (mut state, compiled, previous) = if locked {
                let state = self.write();
                let pipeline = find_pipeline(&state, &definition)?;
                let previous = self.rotation(state.webhooks.get(&definition.name), &definition);
                let compiled = self.compile(&definition, pipeline, previous.as_ref())?;
                (state, compiled, previous)
            } else {
                let (pipeline, exists, previous, seen) = {
                    let state = self.read();
                    let existing = state.webhooks.get(&definition.name);
                    (
                        find_pipeline(&state, &definition)?.clone(),
                        existing.is_some(),
                        self.rotation(existing, &definition),
                        existing.map(|e| e.revision),
                    )
                };
                let compiled = self.compile(&definition, &pipeline, previous.as_ref())?;
                if !exists && token.is_none() {
                    token = Some(self.draw_token()?);
                }
                let state = self.write();
                if !state.pipelines.get(&definition.target_pipeline).is_some_and(|p| Arc::ptr_eq(p, &pipeline)) {
                    continue;
                }
                // The previous secret was taken from the webhook as it was read.
                if state.webhooks.get(&definition.name).map(|e| e.revision) != seen {
                    continue;
                }
                (state, compiled, previous)
            };
            let name = definition.name.clone();
            let revision = self.revisions.fetch_add(1, Ordering::Relaxed);
            if let Some(entry) = state.webhooks.get_mut(&name) {
                entry.revision = revision;
                entry.definition = definition;
                entry.tags = tags;
                entry.compiled = Ok(Arc::new(compiled));
                entry.previous = previous;
            } else {
                if state.webhooks.len() >= self.quota {
                    return Err(Error::new(
                        ErrorCode::LimitExceededException,
                        None,
                        format!("the number of webhooks is limited to {}", self.quota),
                    ));
                }
                let token = match token.take() {
                    Some(t) if !state.tokens.contains_key(&t) => t,
                    // Deleted meanwhile (so no token was drawn) or a token now taken: draw again,
                    // outside the lock unless this is the last try.
                    _ if !locked => continue,
                    _ => self.fresh_token(&state)?,
                };
                state.tokens.insert(token.clone(), name.clone());
                let entry = Entry {
                    revision,
                    definition,
                    tags,
                    token,
                    registered: false,
                    compiled: Ok(Arc::new(compiled)),
                    last_triggered: Arc::default(),
                    previous: None,
                };
                state.webhooks.insert(name.clone(), entry);
            }
            return Ok(PutWebhookOutput { webhook: self.item(&state.webhooks[&name]) });
        }
        unreachable!("the last attempt holds the write lock throughout")
    }

    /// A URL-safe token from the token source.
    fn draw_token(&self) -> Result<String, Error> {
        for _ in 0..8 {
            let token = (self.token_source)();
            if is_url_token(&token) {
                return Ok(token);
            }
        }
        Err(Error::validation(None, "the token source gave no URL-safe token in 8 tries"))
    }

    /// A URL-safe token that no webhook has.
    fn fresh_token(&self, state: &State) -> Result<String, Error> {
        for _ in 0..8 {
            let token = self.draw_token()?;
            if !state.tokens.contains_key(&token) {
                return Ok(token);
            }
        }
        Err(Error::validation(None, "the token source gave no fresh URL-safe token in 8 tries"))
    }

    /// `ListWebhooks`: one page, in name order. `MaxResults` 1 to 100 (default 100); `NextToken`
    /// from the previous page (`InvalidNextTokenException` when it was not issued here).
    pub fn list_webhooks(&self, input: ListWebhooksInput) -> Result<ListWebhooksOutput, Error> {
        let max = input.max_results.unwrap_or(MAX_LIST_RESULTS);
        if !(1..=MAX_LIST_RESULTS).contains(&max) {
            return Err(Error::validation(
                "MaxResults".to_owned(),
                format!(
                    "1 validation error detected: Value '{max}' at 'MaxResults' failed to satisfy constraint: Member must have value between 1 and {MAX_LIST_RESULTS}"
                ),
            ));
        }
        let state = self.read();
        let after = match &input.next_token {
            None => None,
            Some(token) => Some(next_token::verify(&state.next_token_key, token)?),
        };
        let mut page = match &after {
            None => state.webhooks.range::<String, _>(..),
            Some(after) => {
                state.webhooks.range::<String, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            }
        };
        let webhooks: Vec<ListWebhookItem> = page.by_ref().take(max as usize).map(|(_, e)| self.item(e)).collect();
        let next_token = match (page.next(), webhooks.last()) {
            (Some(_), Some(last)) => Some(next_token::issue(&state.next_token_key, &last.definition.name)),
            _ => None,
        };
        Ok(ListWebhooksOutput { webhooks, next_token })
    }

    /// `DeleteWebhook`: removes it and invalidates its URL. A missing name succeeds, as in AWS; a
    /// name that breaks the model constraints of a webhook name is `ValidationException`.
    pub fn delete_webhook(&self, input: DeleteWebhookInput) -> Result<(), Error> {
        check_webhook_name("name", &input.name)?;
        let mut state = self.write();
        if let Some(entry) = state.webhooks.remove(&input.name) {
            state.tokens.remove(&entry.token);
        }
        Ok(())
    }

    /// `RegisterWebhookWithThirdParty`: marks it registered (`WebhookNotFoundException` when missing,
    /// `ValidationException` when `webhookName` breaks the model constraints of a webhook name).
    pub fn register_webhook_with_third_party(&self, input: RegisterWebhookWithThirdPartyInput) -> Result<(), Error> {
        check_webhook_name("webhookName", &input.webhook_name)?;
        self.set_registered(&input.webhook_name, true)
    }

    /// `DeregisterWebhookWithThirdParty`: marks it not registered (`WebhookNotFoundException` when
    /// missing).
    pub fn deregister_webhook_with_third_party(
        &self,
        input: DeregisterWebhookWithThirdPartyInput,
    ) -> Result<(), Error> {
        check_webhook_name("webhookName", &input.webhook_name)?;
        self.set_registered(&input.webhook_name, false)
    }

    fn set_registered(&self, name: &str, registered: bool) -> Result<(), Error> {
        let mut state = self.write();
        state.webhooks.get_mut(name).ok_or_else(|| not_found(name))?.registered = registered;
        Ok(())
    }

    /// Whether the webhook is registered with its third party (`WebhookNotFoundException` when
    /// missing).
    pub fn is_registered_with_third_party(&self, name: &str) -> Result<bool, Error> {
        Ok(self.read().webhooks.get(name).ok_or_else(|| not_found(name))?.registered)
    }

    /// A delivery to a webhook URL: `https://{region}.webhooks.aws/trigger?t={token}&v=1`, or
    /// `{base}/trigger?t=…` with [`RegistryBuilder::base_url`](super::RegistryBuilder::base_url).
    /// The token alone names the webhook: whatever comes before the query is not compared (a
    /// whole URL, another origin, or a path-and-query as an HTTP server behind a proxy sees it,
    /// `/trigger?v=1&t=…` under a base of `https://hooks.example.com/cp`). The query's parameters
    /// may come in any order, percent-encoded or not; `v` may be absent but, when present, must be
    /// `1`; other parameters are ignored.
    ///
    /// `WebhookNotFoundException` when no webhook has that URL (no `t`, an empty or unknown one, or
    /// two); the webhook's own error when it cannot compile against its pipeline as it is now. A
    /// trigger stamps `lastTriggered`.
    pub fn trigger(&self, url: &str, request: &Request<'_>) -> Result<Verdict, Error> {
        let token = self.base_url.token_in(url).ok_or_else(unknown_url)?;
        self.trigger_token(&token, request)
    }

    /// The most body bytes the webhook that `url` names will read (as [`trigger`](Self::trigger)
    /// finds it), for a host to check before it reads a delivery's body: an unknown URL
    /// (`WebhookNotFoundException`) or a webhook that cannot compile (its error) is refused without
    /// reading a byte, and a body is read no further than this: the limit of the registry's
    /// [`webhook_options`](super::RegistryBuilder::webhook_options), by default
    /// [`DEFAULT_MAX_BODY_BYTES`](crate::limits::DEFAULT_MAX_BODY_BYTES).
    pub fn max_body_bytes(&self, url: &str) -> Result<usize, Error> {
        let token = self.base_url.token_in(url).ok_or_else(unknown_url)?;
        let state = self.read();
        let entry =
            state.tokens.get(token.as_ref()).and_then(|name| state.webhooks.get(name)).ok_or_else(unknown_url)?;
        Ok(entry.compiled.as_ref().map_err(Error::clone)?.max_body_bytes())
    }

    /// As [`trigger`](Self::trigger), for a host that routes by the URL's `t` parameter.
    pub fn trigger_token(&self, token: &str, request: &Request<'_>) -> Result<Verdict, Error> {
        self.trigger_by_token(token, request)
    }
}

fn find_pipeline<'s>(state: &'s State, definition: &WebhookDefinition) -> Result<&'s Arc<PipelineDeclaration>, Error> {
    state.pipelines.get(&definition.target_pipeline).ok_or_else(|| pipeline_not_found(&definition.target_pipeline))
}

/// A webhook to recompile: name, revision, definition, previous secret.
type Recompile = (String, u64, WebhookDefinition, Option<Previous>);

/// The webhooks that target `pipeline`, in name order.
fn targets(state: &State, pipeline: &str) -> Vec<Recompile> {
    state
        .webhooks
        .iter()
        .filter(|(_, e)| e.definition.target_pipeline == pipeline)
        .map(|(name, e)| (name.clone(), e.revision, e.definition.clone(), e.previous.clone()))
        .collect()
}

type Compiled = Result<Arc<Webhook>, Error>;

impl Registry {
    fn compile_targets(&self, targets: Vec<Recompile>, pipeline: &PipelineDeclaration) -> Vec<(String, u64, Compiled)> {
        targets
            .into_iter()
            .map(|(name, revision, d, previous)| {
                (name, revision, self.compile(&d, pipeline, previous.as_ref()).map(Arc::new))
            })
            .collect()
    }

    /// The previous secret a put of `definition` keeps valid: the one it replaces (when
    /// `rotation_grace` is set and the secret changes), or the one already in its grace period
    /// (when the secret stays).
    fn rotation(&self, existing: Option<&Entry>, definition: &WebhookDefinition) -> Option<Previous> {
        let existing = existing?;
        let old = existing.definition.authentication_configuration.secret_token.as_deref()?;
        let new = definition.authentication_configuration.secret_token.as_deref()?;
        let now = (self.clock)();
        if old == new {
            return existing.previous.clone().filter(|p| p.until > now);
        }
        if self.rotation_grace.is_zero() {
            return None;
        }
        Some(Previous { secret: old.to_owned(), until: now.checked_add(self.rotation_grace)? })
    }
}
