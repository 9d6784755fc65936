//! The console's client, for the terminal: `codepipeline-webhooks deliveries` and
//! `codepipeline-webhooks redeliver` ask a running console's JSON API the same questions its
//! pages answer.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::Value;

use super::rfc3339;

/// Where the console is and how to authenticate to it.
#[derive(Clone, Debug, clap::Args)]
pub struct ConsoleClientArgs {
    /// The console's URL, as `serve` printed it (`console on http://ADDR`).
    #[arg(long, env = "CODEPIPELINE_WEBHOOKS_CONSOLE_URL", value_name = "URL")]
    pub console_url: String,
    /// The console's token file (needed when the console was started with one).
    #[arg(long, value_name = "FILE")]
    pub console_token_file: Option<PathBuf>,
    /// Print the API's JSON instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// `deliveries`' options.
#[derive(Clone, Debug, clap::Args)]
pub struct DeliveriesArgs {
    /// The console.
    #[command(flatten)]
    pub console: ConsoleClientArgs,
    /// The webhook's name.
    #[arg(long, value_name = "NAME")]
    pub webhook: String,
    /// How many deliveries, newest first (1 to 500).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: usize,
    /// Continue after a page (the `nextCursor` it printed).
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
}

/// `redeliver`'s options.
#[derive(Clone, Debug, clap::Args)]
pub struct RedeliverArgs {
    /// The console.
    #[command(flatten)]
    pub console: ConsoleClientArgs,
    /// The delivery's id in the log (the `id` that `deliveries` prints first).
    #[arg(value_name = "DELIVERY_ID")]
    pub delivery_id: i64,
    /// Only evaluate it against the webhook's current definition: nothing starts.
    #[arg(long)]
    pub dry_run: bool,
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

async fn call(args: &ConsoleClientArgs, post: bool, path: &str) -> Result<Value, String> {
    let base = args.console_url.trim_end_matches('/');
    if !base.starts_with("http://") {
        return Err(format!("--console-url must start with http:// (the console speaks plain HTTP), not '{base}'"));
    }
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    let url = format!("{base}{path}");
    let mut request = if post { client.post(&url).header("x-console-request", "1") } else { client.get(&url) };
    if let Some(file) = &args.console_token_file {
        let token = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        request = request.bearer_auth(token.trim());
    }
    let response = request.send().await.map_err(|e| format!("cannot reach the console at {base}: {e}"))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| format!("the console's answer was cut off: {e}"))?;
    let value: Value = serde_json::from_str(&text).map_err(|_| {
        // Not the console's JSON: most likely serve's main listener (the data plane and the
        // control plane), which answers other paths with an empty 404.
        let shown = if text.trim().is_empty() { "(an empty body)" } else { text.trim() };
        format!(
            "{base} answered {status}: {shown}; is it the console? Give the URL of the 'console on http://…' \
             line that serve printed, not its 'listening on' one"
        )
    })?;
    if !status.is_success() {
        let message = value.get("error").and_then(Value::as_str).unwrap_or("no message");
        return Err(format!("the console answered {}: {message}", status.as_u16()));
    }
    Ok(value)
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())
}

fn field<'v>(v: &'v Value, name: &str) -> &'v str {
    v.get(name).and_then(Value::as_str).unwrap_or("-")
}

/// One delivery as one line: id, time, event, status, outcome, delivery id, execution or reason.
fn line(d: &Value) -> String {
    let at = d.get("receivedAt").and_then(Value::as_f64).map_or_else(|| "-".to_owned(), rfc3339);
    let why = match d.get("executionId").and_then(Value::as_str) {
        Some(e) => format!("execution {e}"),
        None => field(d, "reason").to_owned(),
    };
    format!(
        "{}\t{at}\t{}\t{}\t{}\t{}\t{why}",
        d.get("id").map(Value::to_string).unwrap_or_default(),
        field(d, "event"),
        d.get("status").map(Value::to_string).unwrap_or_default(),
        field(d, "outcome"),
        field(d, "deliveryId"),
    )
}

/// `codepipeline-webhooks deliveries`: exit 0 with the deliveries, 2 when the console refuses
/// or cannot be reached.
pub fn deliveries(args: DeliveriesArgs) -> ExitCode {
    let mut path =
        format!("/api/webhooks/{}/deliveries?limit={}", super::pages::path_segment(&args.webhook), args.limit);
    if let Some(cursor) = &args.cursor {
        path.push_str(&format!("&cursor={}", super::pages::path_segment(cursor)));
    }
    let result = runtime().and_then(|rt| rt.block_on(call(&args.console, false, &path)));
    match result {
        Ok(value) if args.console.json => {
            println!("{value}");
            ExitCode::SUCCESS
        }
        Ok(value) => {
            println!("ID\tRECEIVED\tEVENT\tSTATUS\tOUTCOME\tDELIVERY\tEXECUTION OR REASON");
            for d in value.get("deliveries").and_then(Value::as_array).into_iter().flatten() {
                println!("{}", line(d));
            }
            if let Some(next) = value.get("nextCursor").and_then(Value::as_str) {
                println!("(more: --cursor {next})");
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `codepipeline-webhooks redeliver`: exit 0 when it starts (or, with `--dry-run`, would start)
/// the pipeline, 1 when it does not, 2 when the console refuses or cannot be reached.
pub fn redeliver(args: RedeliverArgs) -> ExitCode {
    let path =
        format!("/api/deliveries/{}/redeliver{}", args.delivery_id, if args.dry_run { "?dryRun=true" } else { "" });
    let result = runtime().and_then(|rt| rt.block_on(call(&args.console, true, &path)));
    let value = match result {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    let started = if args.dry_run { value["verdict"]["decision"] == "trigger" } else { value["status"] == 202 };
    if args.console.json {
        println!("{value}");
    } else if args.dry_run {
        let verdict = &value["verdict"];
        match verdict.get("reason").and_then(Value::as_str) {
            Some(reason) => println!("would not start the pipeline: {reason}"),
            None => println!("would start pipeline '{}'", field(verdict, "pipeline")),
        }
    } else {
        let new = value.get("delivery").map(Value::to_string).unwrap_or_default();
        match value["answer"].get("pipelineExecutionId").and_then(Value::as_str) {
            Some(id) => println!("delivered again as {new}: started execution {id}"),
            None => println!(
                "delivered again as {new}: answered {}, {}",
                value["status"],
                value["recorded"].get("reason").and_then(Value::as_str).unwrap_or(field(&value["recorded"], "outcome"))
            ),
        }
    }
    if started { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
