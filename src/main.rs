//! `codepipeline-webhooks`: check a delivery against a webhook definition, validate a definition,
//! or sign a payload as GitHub would.
//!
//! Exit codes: 0 the pipeline would start (or the definition is valid), 1 the delivery is rejected,
//! 2 the definition or the command line is invalid.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use codepipeline_webhooks::{ActionConfiguration, PutWebhookInput, Request, Webhook, WebhookDefinition, github};

#[derive(Parser)]
#[command(name = "codepipeline-webhooks", version, about = "AWS CodePipeline webhooks, evaluated locally")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decide whether a delivery would start the pipeline (exit 0), or why not (exit 1).
    Check(CheckArgs),
    /// Validate a definition as PutWebhook would (exit 0 valid, 2 invalid).
    Validate(DefinitionArgs),
    /// Print the signature headers GitHub would send for a payload.
    Sign(SignArgs),
    /// Run the service: the PutWebhook API (AWS JSON 1.1, SigV4), the /trigger receiver, SQLite.
    #[cfg(feature = "server")]
    Serve(codepipeline_webhooks::server::ServeArgs),
}

#[derive(Args)]
struct DefinitionArgs {
    /// The put-webhook input document ({"webhook": ..., "tags": ...}) or a bare webhook definition.
    #[arg(long, value_name = "FILE")]
    webhook: PathBuf,
    /// The target action's configuration, a JSON object of strings, for {Key} placeholders.
    #[arg(long, value_name = "FILE")]
    action_config: Option<PathBuf>,
    /// Refuse deliveries that carry only the legacy SHA-1 signature.
    #[arg(long)]
    require_sha256: bool,
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
    /// Print the verdict as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SignArgs {
    /// The webhook's secret token.
    #[arg(long)]
    secret: String,
    /// The payload, read as exact bytes; `-` reads standard input.
    #[arg(long, value_name = "FILE|-")]
    payload: String,
}

/// A failure before any verdict: exit 2 with this on stderr.
struct Usage(String);

impl From<codepipeline_webhooks::Error> for Usage {
    fn from(e: codepipeline_webhooks::Error) -> Self {
        let field = e.field().map(|f| format!(" (at {f})")).unwrap_or_default();
        Usage(format!("{}: {}{field}", e.code(), e.message()))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check(args),
        Command::Validate(args) => compile(&args).map(|w| {
            println!(
                "valid: webhook '{}' targets pipeline '{}', action '{}'",
                w.name(),
                w.target_pipeline(),
                w.target_action()
            );
            ExitCode::SUCCESS
        }),
        Command::Sign(args) => sign(args),
        #[cfg(feature = "server")]
        Command::Serve(args) => Ok(codepipeline_webhooks::server::main(args)),
    };
    result.unwrap_or_else(|Usage(message)| {
        eprintln!("{message}");
        ExitCode::from(2)
    })
}

fn check(args: CheckArgs) -> Result<ExitCode, Usage> {
    let webhook = compile(&args.definition)?;
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
    if args.json {
        println!("{}", serde_json::to_string(&verdict).expect("a verdict serialises"));
    } else {
        println!("{verdict}");
    }
    Ok(if verdict.is_trigger() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn sign(args: SignArgs) -> Result<ExitCode, Usage> {
    let body = read_input(&args.payload)?;
    println!("X-Hub-Signature-256: {}", github::signature_256(args.secret.as_bytes(), &body));
    println!("X-Hub-Signature: {}", github::signature_1(args.secret.as_bytes(), &body));
    Ok(ExitCode::SUCCESS)
}

fn compile(args: &DefinitionArgs) -> Result<Webhook, Usage> {
    let text = read_text(&args.webhook)?;
    let definition = parse_definition(&text)?;
    let config = match &args.action_config {
        None => ActionConfiguration::new(),
        Some(path) => serde_json::from_str(&read_text(path)?).map_err(|e| {
            Usage(format!(
                "error: {}: the action configuration must be a JSON object of strings, such as {{\"Branch\": \"main\"}}: {e}",
                path.display()
            ))
        })?,
    };
    Webhook::builder(&definition, &config).require_sha256(args.require_sha256).build().map_err(|e| {
        let no_config = args.action_config.is_none() && e.field().is_some_and(|f| f.ends_with(".matchEquals"));
        let Usage(mut message) = Usage::from(e);
        if no_config {
            message.push_str("\nhint: pass the target action's configuration with --action-config FILE");
        }
        Usage(message)
    })
}

/// A put-webhook input document when it has a `webhook` member, a bare definition otherwise.
fn parse_definition(text: &str) -> Result<WebhookDefinition, Usage> {
    let is_input = serde_json::from_str::<serde_json::Value>(text)
        .map(|v| v.get("webhook").is_some())
        .map_err(|e| Usage(format!("ValidationException: the webhook file is not JSON: {e}")))?;
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
