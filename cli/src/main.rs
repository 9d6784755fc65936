//! `codepipeline-webhooks`: check a delivery against a webhook definition, validate a definition,
//! or sign a payload as GitHub would.
//!
//! Exit codes: 0 the pipeline would start (or the definition is valid), 1 the delivery is rejected,
//! 2 the definition or the command line is invalid.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use codepipeline_webhooks::{ActionConfiguration, PutWebhookInput, Request, Webhook, WebhookDefinition, github};

/// mimalloc for the whole binary: `serve` allocates and frees body buffers, headers and log
/// entries on every delivery, from several threads, where glibc's malloc cost a tenth of the
/// data plane's CPU.
#[cfg(feature = "serve")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The environment variable `sign` reads the secret from when neither `--secret` nor
/// `--secret-file` is given.
const SECRET_ENV: &str = "CODEPIPELINE_WEBHOOK_SECRET";

const EXIT_CODES: &str = "Exit codes:
  0  the delivery would start the pipeline (check), the definition is valid (validate), signed (sign)
  1  the delivery is rejected (check); the verdict says which step refused it and why
  2  the definition, a file or the command line is invalid; stderr starts with the AWS exception
     name (ValidationException: ...) or 'error:'";

const EXAMPLES: &str = "Examples:
  codepipeline-webhooks check --webhook examples/webhook.json \\
      --action-config examples/action-configuration.json --payload examples/push.json \\
      --header 'X-Hub-Signature-256: sha256=0a52b69e17a2474bdd8ae791f3eaf7ad3770999a3070ae6152fbb5e136191f25'
  aws codepipeline get-pipeline --name app > pipeline.json
  codepipeline-webhooks validate --webhook webhook.json --action-config pipeline.json
  CODEPIPELINE_WEBHOOK_SECRET=s3cr3t codepipeline-webhooks sign --payload push.json";

#[derive(Parser)]
#[command(
    name = "codepipeline-webhooks",
    version,
    about = "AWS CodePipeline webhooks, evaluated locally",
    after_help = format!("{EXAMPLES}\n\n{EXIT_CODES}")
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decide whether a delivery would start the pipeline (exit 0), or why not (exit 1).
    #[command(after_help = "Examples:
  codepipeline-webhooks check --webhook webhook.json --action-config pipeline.json \\
      --payload push.json --header \"X-Hub-Signature-256: sha256=...\" --header 'X-GitHub-Event: push'
  codepipeline-webhooks check --json --webhook ip-webhook.json --payload - --source-ip 192.0.2.10 < push.json

Exit codes: 0 trigger, 1 reject, 2 invalid definition or command line.")]
    Check(CheckArgs),
    /// Validate a definition as PutWebhook would (exit 0 valid, 2 invalid).
    #[command(after_help = "Examples:
  codepipeline-webhooks validate --webhook webhook.json
  codepipeline-webhooks validate --webhook webhook.json --action-config pipeline.json

Exit codes: 0 valid, 2 invalid (stderr starts with the AWS exception name).")]
    Validate(DefinitionArgs),
    /// Print the signature headers GitHub would send for a payload.
    #[command(after_help = "Examples:
  codepipeline-webhooks sign --secret-file secret.txt --payload push.json
  CODEPIPELINE_WEBHOOK_SECRET=s3cr3t codepipeline-webhooks sign --payload - < push.json

Exit codes: 0 signed, 2 no secret or unreadable payload.")]
    Sign(SignArgs),
    /// Run the service: the PutWebhook API (AWS JSON 1.1, SigV4), the /trigger receiver, SQLite.
    #[cfg(feature = "serve")]
    Serve(Box<codepipeline_webhooks_cli::serve::ServeArgs>),
    /// List a webhook's recent deliveries, with why each did or did not start the pipeline (asks
    /// a running `serve`'s console).
    #[cfg(feature = "serve")]
    #[command(after_help = "Examples:
  codepipeline-webhooks deliveries --console-url http://127.0.0.1:8081 --webhook app-push
  codepipeline-webhooks deliveries --console-url http://127.0.0.1:8081 --webhook app-push --json --limit 5

Exit codes: 0 listed, 2 the console refused or cannot be reached.")]
    Deliveries(codepipeline_webhooks_cli::serve::console::client::DeliveriesArgs),
    /// Evaluate a recorded delivery against its webhook's current definition and deliver it again
    /// (or, with --dry-run, only show the verdict).
    #[cfg(feature = "serve")]
    #[command(after_help = "Examples:
  codepipeline-webhooks redeliver --console-url http://127.0.0.1:8081 42 --dry-run
  codepipeline-webhooks redeliver --console-url http://127.0.0.1:8081 42

Exit codes: 0 started (or would start), 1 did not start, 2 the console refused or cannot be reached.")]
    Redeliver(codepipeline_webhooks_cli::serve::console::client::RedeliverArgs),
}

#[derive(Args)]
struct DefinitionArgs {
    /// The put-webhook input document ({"webhook": ..., "tags": ...}) or a bare webhook definition.
    #[arg(long, value_name = "FILE")]
    webhook: PathBuf,
    /// The target action's configuration for {Key} placeholders: a JSON object of strings, or
    /// `aws codepipeline get-pipeline` output (the definition's targetAction in the first stage).
    #[arg(long, value_name = "FILE")]
    action_config: Option<PathBuf>,
    /// Treat compile warnings (placeholders left literal, filter traps, weak secrets) as errors:
    /// exit 2 with the exception they name.
    #[arg(long)]
    deny_warnings: bool,
    /// Compare what an indefinite JsonPath (wildcard, slice, filter, `..`, union) selects as AWS
    /// does: a list, which never equals a matchEquals string, so such a filter never passes.
    /// Without it, any selected element that equals passes (the crate's extension); either way
    /// compiling such a filter warns.
    #[arg(long)]
    aws_exact: bool,
    /// Print the outcome as one JSON object (check: the verdict; validate: the webhook and its
    /// warnings); on exit 2, {"error": {"code", "field", "message", "position"}}.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CheckArgs {
    #[command(flatten)]
    definition: DefinitionArgs,
    /// The delivery's body, read as exact bytes; `-` reads standard input.
    #[arg(long, value_name = "FILE|-")]
    payload: String,
    /// A request header, `Name: value`; repeat for more.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// The source address of the delivery (the TCP peer), for IP webhooks.
    #[arg(long, value_name = "ADDR")]
    source_ip: Option<String>,
    /// Refuse deliveries that carry only the legacy SHA-1 signature.
    #[arg(long)]
    require_sha256: bool,
}

#[derive(Args)]
struct SignArgs {
    /// The webhook's secret token. Visible to other users in the process list: prefer
    /// --secret-file or the CODEPIPELINE_WEBHOOK_SECRET environment variable.
    #[arg(long, conflicts_with = "secret_file")]
    secret: Option<String>,
    /// A file holding the secret token (one trailing newline is not part of it).
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// The payload, read as exact bytes; `-` reads standard input.
    #[arg(long, value_name = "FILE|-")]
    payload: String,
}

/// A failure before any verdict: exit 2, with this on stderr (and with `--json`, as
/// `{"error": {"code", "field", "message", "position"}}` on stdout).
struct Usage {
    /// The AWS exception name for a definition's fault; `UsageError` for the command line or a file.
    code: &'static str,
    field: Option<String>,
    message: String,
    position: Option<usize>,
    /// A line after the message, for people (not in the JSON form).
    hint: Option<&'static str>,
}

/// A fault of the command line or of reading a file (not of a definition).
#[allow(non_snake_case)]
fn Usage(message: String) -> Usage {
    Usage { code: "UsageError", field: None, message, position: None, hint: None }
}

impl From<codepipeline_webhooks::Error> for Usage {
    fn from(e: codepipeline_webhooks::Error) -> Self {
        Usage {
            code: e.code(),
            field: e.field().map(str::to_owned),
            message: e.message().to_owned(),
            position: e.position(),
            hint: None,
        }
    }
}

impl Usage {
    /// What stderr shows: `ValidationException: ... (at webhook.name)`, or `error: ...`.
    fn text(&self) -> String {
        let mut text = if self.code == "UsageError" {
            self.message.clone()
        } else {
            let field = self.field.as_ref().map(|f| format!(" (at {f})")).unwrap_or_default();
            format!("{}: {}{field}", self.code, self.message)
        };
        if let Some(hint) = self.hint {
            text.push('\n');
            text.push_str(hint);
        }
        text
    }

    fn json(&self) -> serde_json::Value {
        let message = self.message.strip_prefix("error: ").unwrap_or(&self.message);
        serde_json::json!({"error": {
            "code": self.code, "field": self.field, "message": message, "position": self.position,
        }})
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = match &cli.command {
        Command::Check(args) => args.definition.json,
        Command::Validate(args) => args.json,
        _ => false,
    };
    let result = match cli.command {
        Command::Check(args) => check(args),
        Command::Validate(args) => compile(&args, false).and_then(|w| {
            if args.json {
                let warnings: Vec<_> = w
                    .warnings()
                    .iter()
                    .map(|w| serde_json::json!({"field": w.field(), "message": w.message()}))
                    .collect();
                let out = serde_json::json!({
                    "valid": true, "webhook": w.name(), "pipeline": w.target_pipeline(),
                    "action": w.target_action(), "warnings": warnings,
                });
                print(&format!("{out}\n"))?;
            } else {
                print(&format!(
                    "valid: webhook '{}' targets pipeline '{}', action '{}'\n",
                    w.name(),
                    w.target_pipeline(),
                    w.target_action()
                ))?;
            }
            Ok(ExitCode::SUCCESS)
        }),
        Command::Sign(args) => sign(args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => Ok(codepipeline_webhooks_cli::serve::main(*args)),
        #[cfg(feature = "serve")]
        Command::Deliveries(args) => Ok(codepipeline_webhooks_cli::serve::console::client::deliveries(args)),
        #[cfg(feature = "serve")]
        Command::Redeliver(args) => Ok(codepipeline_webhooks_cli::serve::console::client::redeliver(args)),
    };
    result.unwrap_or_else(|usage| {
        if json {
            let _ = print(&format!("{}\n", usage.json()));
        }
        // Standard error closed too: nothing more can be said.
        let _ = writeln!(std::io::stderr(), "{}", usage.text());
        ExitCode::from(2)
    })
}

/// Writes to standard output. A reader that has gone (`sign ... | head -1`) is not an error: the
/// rest of the output is simply not wanted, so the command ends quietly with its own exit code.
fn print(text: &str) -> Result<(), Usage> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Usage(format!("error: cannot write to standard output: {e}"))),
    }
}

fn check(args: CheckArgs) -> Result<ExitCode, Usage> {
    let webhook = compile(&args.definition, args.require_sha256)?;
    let body = read_input(&args.payload)?;
    let headers = args.headers.iter().map(|h| parse_header(h)).collect::<Result<Vec<_>, _>>()?;
    let mut request = Request::new(&body);
    for (name, value) in &headers {
        request.add_header(name, value.as_bytes());
    }
    if let Some(addr) = &args.source_ip {
        request = request.source_ip(parse_addr(addr)?);
    }
    let verdict = webhook.evaluate(&request);
    if args.definition.json {
        let json = serde_json::to_string(&verdict).map_err(|e| Usage(format!("error: {e}")))?;
        print(&format!("{json}\n"))?;
    } else {
        print(&format!("{verdict}\n"))?;
    }
    Ok(if verdict.is_trigger() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn sign(args: SignArgs) -> Result<ExitCode, Usage> {
    let secret = match (args.secret, &args.secret_file) {
        (Some(secret), _) => secret,
        (None, Some(path)) => {
            let text = read_text(path)?;
            let text = text.strip_suffix('\n').map_or(text.as_str(), |t| t.strip_suffix('\r').unwrap_or(t));
            text.to_owned()
        }
        (None, None) => std::env::var(SECRET_ENV).map_err(|_| {
            Usage(format!(
                "error: sign needs the secret: --secret-file FILE, the {SECRET_ENV} environment variable, or --secret"
            ))
        })?,
    };
    if secret.is_empty() {
        // A webhook's SecretToken is 1 to 100 characters: an empty one is a mistake (an unset
        // variable, an empty file), not a secret.
        return Err(Usage("error: the secret is empty".to_owned()));
    }
    let body = read_input(&args.payload)?;
    print(&format!(
        "X-Hub-Signature-256: {}\nX-Hub-Signature: {}\n",
        github::signature_256(secret.as_bytes(), &body),
        github::signature_1(secret.as_bytes(), &body)
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn compile(args: &DefinitionArgs, require_sha256: bool) -> Result<Webhook, Usage> {
    let text = read_text(&args.webhook)?;
    let definition = parse_definition(&text)?;
    let config = match &args.action_config {
        None => ActionConfiguration::new(),
        Some(path) => action_configuration(path, &read_text(path)?, &definition.target_action)?,
    };
    const HINT: &str = "hint: pass the target action's configuration with --action-config FILE";
    // Only where a placeholder could have needed it: no configuration given, and the fault is a
    // matchEquals that holds brace text.
    let has_braces = definition.filters.iter().any(|f| f.match_equals.as_deref().is_some_and(|m| m.contains('{')));
    let placeholder = |field: Option<&str>| {
        args.action_config.is_none() && has_braces && field.is_some_and(|f| f.ends_with(".matchEquals"))
    };
    let webhook = Webhook::options()
        .require_sha256(require_sha256)
        .deny_warnings(args.deny_warnings)
        .aws_exact(args.aws_exact)
        .build(&definition, &config)
        .map_err(|e| {
            let hint = placeholder(e.field()).then_some(HINT);
            Usage { hint, ..Usage::from(e) }
        })?;
    // Warnings go to standard error, so that stdout stays the verdict (or `--json`).
    let mut stderr = std::io::stderr().lock();
    for warning in webhook.warnings() {
        let _ = writeln!(stderr, "warning: {warning}");
    }
    if webhook.warnings().iter().any(|w| placeholder(Some(w.field()))) {
        let _ = writeln!(stderr, "{HINT}");
    }
    Ok(webhook)
}

/// The `--action-config` file: `aws codepipeline get-pipeline` output (whole, or its `pipeline`
/// object), whose first stage's action named by the definition's `targetAction` gives the
/// configuration, as the registry takes it; or that configuration alone, a JSON object of strings.
fn action_configuration(path: &Path, text: &str, target_action: &str) -> Result<ActionConfiguration, Usage> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Usage(format!("error: {}: the action configuration is not JSON: {e}", path.display())))?;
    let is_pipeline = value.get("pipeline").is_some_and(serde_json::Value::is_object)
        || value.get("stages").is_some_and(serde_json::Value::is_array);
    if is_pipeline {
        return Ok(ActionConfiguration::from_pipeline_json(text, target_action)?);
    }
    serde_json::from_value(value).map_err(|_| {
        Usage(format!(
            "error: {}: the action configuration must be a JSON object of strings, such as {{\"Branch\": \"main\"}}, or aws codepipeline get-pipeline output",
            path.display()
        ))
    })
}

/// A put-webhook input document when it has a `webhook` member, a bare definition otherwise.
fn parse_definition(text: &str) -> Result<WebhookDefinition, Usage> {
    let is_input =
        serde_json::from_str::<serde_json::Value>(text).map(|v| v.get("webhook").is_some()).map_err(|e| Usage {
            code: "ValidationException",
            message: format!("the webhook file is not JSON: {e}"),
            ..Usage(String::new())
        })?;
    if is_input {
        let input = PutWebhookInput::from_json(text)?;
        input.validate()?;
        Ok(input.webhook)
    } else {
        Ok(WebhookDefinition::from_json(text)?)
    }
}

fn parse_header(header: &str) -> Result<(String, String), Usage> {
    let (name, value) = header
        .split_once(':')
        .filter(|(name, _)| !name.trim().is_empty())
        .ok_or_else(|| Usage(format!("error: --header '{header}' is not of the form 'Name: value'")))?;
    Ok((name.trim().to_owned(), value.trim_start_matches([' ', '\t']).to_owned()))
}

fn parse_addr(addr: &str) -> Result<IpAddr, Usage> {
    addr.parse::<IpAddr>()
        .or_else(|_| addr.parse::<SocketAddr>().map(|s| s.ip()))
        .map_err(|_| Usage(format!("error: --source-ip '{addr}' is not an IPv4 or IPv6 address")))
}

fn read_input(source: &str) -> Result<Vec<u8>, Usage> {
    if source == "-" {
        let mut body = Vec::new();
        std::io::stdin()
            .read_to_end(&mut body)
            .map_err(|e| Usage(format!("error: cannot read standard input: {e}")))?;
        Ok(body)
    } else {
        std::fs::read(source).map_err(|e| Usage(format!("error: cannot read {source}: {e}")))
    }
}

fn read_text(path: &Path) -> Result<String, Usage> {
    std::fs::read_to_string(path).map_err(|e| Usage(format!("error: cannot read {}: {e}", path.display())))
}
