//! The command-line tool, run as a user runs it, including the README's first command verbatim.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_codepipeline-webhooks");
/// The repository root: the examples, fixtures and README the commands name.
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    run_env(args, stdin, None)
}

/// As `run`, with `CODEPIPELINE_WEBHOOK_SECRET` set to `secret` (and unset otherwise, whatever the
/// test's own environment holds).
fn run_env(args: &[&str], stdin: Option<&[u8]>, secret: Option<&str>) -> Output {
    let mut command = Command::new(BIN);
    match secret {
        Some(secret) => command.env("CODEPIPELINE_WEBHOOK_SECRET", secret),
        None => command.env_remove("CODEPIPELINE_WEBHOOK_SECRET"),
    };
    let mut child = command
        .args(args)
        .current_dir(ROOT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.unwrap_or_default()).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The arguments of the README's first `sh` block, after `cargo run --`.
fn readme_first_command() -> Vec<String> {
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    let block = readme.split("```sh\n").nth(1).unwrap().split("\n```").next().unwrap();
    let line = block.lines().next().unwrap();
    let rest = line.strip_prefix("cargo run -- ").expect("the README starts with the CLI command");
    // Split on spaces outside double quotes, as a shell would for this line.
    let mut args = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in rest.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => args.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    args.push(current);
    args
}

#[test]
fn readme_first_command_triggers() {
    let args = readme_first_command();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args, None);
    assert_eq!(out.status.code(), Some(0), "{} {}", stdout(&out), stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "trigger: webhook 'hello-world-master' starts pipeline 'hello-world-pipeline' (action 'Source')"
    );
}

#[test]
fn sign_prints_the_headers_github_sends() {
    let out = run(&["sign", "--secret", "It's a Secret to Everybody", "--payload", "-"], Some(b"Hello, World!"));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        "X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17\n\
         X-Hub-Signature: sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59\n"
    );
}

fn sign(payload: &str) -> String {
    let out = run(&["sign", "--secret", "example-secret-do-not-use", "--payload", payload], None);
    stdout(&out).lines().next().unwrap().to_owned()
}

#[test]
fn check_rejects_with_exit_1_and_json_names_the_step() {
    let header = sign("tests/fixtures/github/push/payload.json");
    let base = ["check", "--webhook", "examples/webhook.json", "--action-config", "examples/action-configuration.json"];
    let out = run(
        &[&base[..], &["--payload", "tests/fixtures/github/push/payload.json", "--header", &header, "--json"]].concat(),
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let verdict: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(verdict["decision"], "reject");
    assert_eq!(verdict["step"], "filter");
    assert_eq!(verdict["filter_index"], 0);
    assert_eq!(verdict["found"], "refs/tags/simple-tag");

    let out = run(&[&base[..], &["--payload", "examples/push.json", "--json"]].concat(), None);
    assert_eq!(out.status.code(), Some(1));
    let verdict: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(verdict["step"], "signature");

    // The payload from standard input, with the SHA-1 header only.
    let body = std::fs::read(format!("{ROOT}/examples/push.json")).unwrap();
    let sha1 =
        stdout(&run(&["sign", "--secret", "example-secret-do-not-use", "--payload", "examples/push.json"], None))
            .lines()
            .nth(1)
            .unwrap()
            .to_owned();
    let out = run(&[&base[..], &["--payload", "-", "--header", &sha1]].concat(), Some(&body));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = run(&[&base[..], &["--payload", "-", "--header", &sha1, "--require-sha256"]].concat(), Some(&body));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
}

#[test]
fn check_ip_webhook_with_source_ip() {
    let dir = std::env::temp_dir().join(format!("cpw-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let def = dir.join("ip.json");
    std::fs::write(
        &def,
        r#"{"name":"n","targetPipeline":"p","targetAction":"a","filters":[{"jsonPath":"$.action","matchEquals":"published"}],"authentication":"IP","authenticationConfiguration":{"AllowedIPRange":"192.0.2.0/24"}}"#,
    )
    .unwrap();
    let def = def.to_str().unwrap();
    let payload = "tests/fixtures/github/release/published.payload.json";
    let ok = run(&["check", "--webhook", def, "--payload", payload, "--source-ip", "192.0.2.55"], None);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    let no = run(
        &["check", "--webhook", def, "--payload", payload, "--source-ip", "[::ffff:198.51.100.1]:443", "--json"],
        None,
    );
    assert_eq!(no.status.code(), Some(1));
    assert!(stdout(&no).contains(r#""step":"source_ip""#), "{}", stdout(&no));
    let bad = run(&["check", "--webhook", def, "--payload", payload, "--source-ip", "nope"], None);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn invalid_definitions_exit_2_with_the_exception_name_first() {
    // Without the action's configuration, `{Branch}` stays literal: AWS accepts that, so it is a
    // warning (exit 0), and an error with --deny-warnings (exit 2).
    let out = run(&["validate", "--webhook", "examples/webhook.json"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("warning: webhook.filters[0].matchEquals: "), "{}", stderr(&out));
    assert!(stderr(&out).contains("`{Branch}` is not a key"), "{}", stderr(&out));
    assert!(stderr(&out).contains("hint: pass the target action's configuration with --action-config FILE"));
    let out = run(&["validate", "--webhook", "examples/webhook.json", "--deny-warnings"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("InvalidWebhookFilterPatternException: "), "{}", stderr(&out));
    assert!(stderr(&out).contains("hint: pass the target action's configuration with --action-config FILE"));
    let out = run(
        &["validate", "--webhook", "examples/webhook.json", "--action-config", "examples/action-configuration.json"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let dir = std::env::temp_dir().join(format!("cpw-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (doc, code) in [
        (
            r#"{"webhook":{"name":"bad name","targetPipeline":"p","targetAction":"a","filters":[],"authentication":"UNAUTHENTICATED","authenticationConfiguration":{}}}"#,
            "ValidationException",
        ),
        (
            r#"{"name":"n","targetPipeline":"p","targetAction":"a","filters":[],"authentication":"UNAUTHENTICATED","authenticationConfiguration":{},"extra":1}"#,
            "ValidationException",
        ),
        (
            r#"{"name":"n","targetPipeline":"p","targetAction":"a","filters":[],"authentication":"IP","authenticationConfiguration":{}}"#,
            "InvalidWebhookAuthenticationParametersException",
        ),
        (
            r#"{"name":"n","targetPipeline":"p","targetAction":"a","filters":[{"jsonPath":"$["}],"authentication":"UNAUTHENTICATED","authenticationConfiguration":{}}"#,
            "InvalidWebhookFilterPatternException",
        ),
        (
            r#"{"webhook":{"name":"n","targetPipeline":"p","targetAction":"a","filters":[],"authentication":"UNAUTHENTICATED","authenticationConfiguration":{}},"tags":[{"key":"aws:x","value":""}]}"#,
            "InvalidTagsException",
        ),
        ("not json", "ValidationException"),
    ] {
        let path = dir.join("def.json");
        std::fs::write(&path, doc).unwrap();
        let out = run(&["validate", "--webhook", path.to_str().unwrap()], None);
        assert_eq!(out.status.code(), Some(2), "{doc}");
        assert!(stderr(&out).starts_with(&format!("{code}: ")), "{doc}: {}", stderr(&out));
    }
    let out = run(
        &[
            "check",
            "--webhook",
            "examples/webhook.json",
            "--payload",
            "missing.json",
            "--action-config",
            "examples/action-configuration.json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let out = run(
        &["check", "--webhook", "examples/webhook.json", "--payload", "examples/push.json", "--header", "no colon"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["frobnicate"], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn json_says_why_on_exit_2_and_tells_nothing_selected_from_null() {
    let dir = std::env::temp_dir().join(format!("cpw-cli-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad-path.json");
    std::fs::write(
        &bad,
        r#"{"name":"n","targetPipeline":"p","targetAction":"a","filters":[{"jsonPath":"$.ref[","matchEquals":"x"}],"authentication":"UNAUTHENTICATED","authenticationConfiguration":{}}"#,
    )
    .unwrap();
    for command in ["check", "validate"] {
        let mut args = vec![command, "--json", "--webhook", bad.to_str().unwrap()];
        if command == "check" {
            args.extend(["--payload", "examples/push.json"]);
        }
        let out = run(&args, None);
        assert_eq!(out.status.code(), Some(2));
        let error: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON object on stdout");
        assert_eq!(error["error"]["code"], "InvalidWebhookFilterPatternException", "{error}");
        assert_eq!(error["error"]["field"], "webhook.filters[0].jsonPath");
        assert_eq!(error["error"]["position"], 5, "the character the caret points at");
        assert!(error["error"]["message"].as_str().unwrap().contains("does not parse"), "{error}");
    }
    // A file that cannot be read is a usage error, in the same form.
    let out = run(&["check", "--json", "--webhook", "missing.json", "--payload", "examples/push.json"], None);
    let error: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!((error["error"]["code"].as_str(), out.status.code()), (Some("UsageError"), Some(2)));

    // `found`: a JSON null that was selected is null; a path that selected nothing says so.
    let def = dir.join("b.json");
    std::fs::write(
        &def,
        r#"{"name":"n","targetPipeline":"p","targetAction":"a","filters":[{"jsonPath":"$.b","matchEquals":"x"}],"authentication":"UNAUTHENTICATED","authenticationConfiguration":{}}"#,
    )
    .unwrap();
    let found = |body: &[u8]| {
        let out = run(&["check", "--json", "--webhook", def.to_str().unwrap(), "--payload", "-"], Some(body));
        assert_eq!(out.status.code(), Some(1));
        serde_json::from_str::<serde_json::Value>(&stdout(&out)).unwrap()["found"].clone()
    };
    assert_eq!(found(br#"{"b":null}"#), serde_json::Value::Null);
    assert_eq!(found(br#"{"a":1}"#), serde_json::json!({"type": "nothing"}));
}

#[test]
fn the_action_config_hint_only_where_a_placeholder_needs_it() {
    let dir = std::env::temp_dir().join(format!("cpw-cli-hint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A wildcard in matchEquals on an indefinite path is a warning, but no placeholder is involved.
    let def = dir.join("no-placeholder.json");
    std::fs::write(
        &def,
        r#"{"name":"n","targetPipeline":"p","targetAction":"a","filters":[{"jsonPath":"$.commits[*].id","matchEquals":"abc*"}],"authentication":"UNAUTHENTICATED","authenticationConfiguration":{}}"#,
    )
    .unwrap();
    let out = run(&["validate", "--webhook", def.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("warning: webhook.filters[0].matchEquals"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("hint:"), "{}", stderr(&out));
    let out = run(&["validate", "--webhook", def.to_str().unwrap(), "--deny-warnings"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).contains("hint:"), "{}", stderr(&out));
}

#[test]
fn action_config_takes_get_pipeline_output() {
    let dir = std::env::temp_dir().join(format!("cpw-cli-pipeline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{ROOT}/examples/action-configuration.json")).unwrap())
            .unwrap();
    let declaration = serde_json::json!({
        "name": "hello-world-pipeline",
        "roleArn": "arn:aws:iam::111111111111:role/cp",
        "stages": [
            {"name": "Source", "actions": [
                {"name": "Other", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                 "configuration": {"Branch": "wrong"}},
                {"name": "Source", "actionTypeId": {"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"},
                 "configuration": config}
            ]},
            {"name": "Deploy", "actions": [{"name": "Deploy", "configuration": {"Branch": "wrong"}}]}
        ],
        "version": 3
    });
    let whole = serde_json::json!({"pipeline": declaration, "metadata": {"pipelineArn": "arn:aws:codepipeline:us-east-1:111111111111:hello-world-pipeline", "created": 1.5, "updated": 2.5}});
    let header = sign("examples/push.json");
    for (file, doc) in [("whole.json", &whole), ("bare.json", &declaration)] {
        let path = dir.join(file);
        std::fs::write(&path, doc.to_string()).unwrap();
        let path = path.to_str().unwrap();
        let out = run(
            &[
                "check",
                "--webhook",
                "examples/webhook.json",
                "--action-config",
                path,
                "--payload",
                "examples/push.json",
                "--header",
                &header,
            ],
            None,
        );
        assert_eq!(out.status.code(), Some(0), "{file}: {} {}", stdout(&out), stderr(&out));
        let out = run(&["validate", "--webhook", "examples/webhook.json", "--action-config", path], None);
        assert_eq!(out.status.code(), Some(0), "{file}: {}", stderr(&out));
    }
    // The target action only in a later stage: the registry's error.
    let mut later = declaration.clone();
    later["stages"][0]["actions"].as_array_mut().unwrap().remove(1);
    let path = dir.join("later.json");
    std::fs::write(&path, later.to_string()).unwrap();
    let out = run(&["validate", "--webhook", "examples/webhook.json", "--action-config", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with(
            "ValidationException: Action with name Source was not found in the first stage of the pipeline"
        ),
        "{}",
        stderr(&out)
    );
}

/// `sign ... | head -1`: the reader goes away before the output is written. That is a quiet exit
/// with the command's own code, not a panic ("failed printing to stdout: Broken pipe", exit 101).
#[test]
fn output_into_a_closed_pipe_is_a_quiet_exit() {
    for args in [
        &["sign", "--secret", "s", "--payload", "-"][..],
        &[
            "check",
            "--webhook",
            "examples/webhook.json",
            "--action-config",
            "examples/action-configuration.json",
            "--payload",
            "-",
        ][..],
    ] {
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(ROOT)
            .env_remove("CODEPIPELINE_WEBHOOK_SECRET")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end of the stdout pipe first: the child reads all of stdin before it
        // writes, so every write it makes meets a pipe with no reader.
        drop(child.stdout.take());
        child.stdin.take().unwrap().write_all(b"{}").unwrap();
        let out = child.wait_with_output().unwrap();
        let expected = if args[0] == "sign" { 0 } else { 1 };
        assert_eq!(out.status.code(), Some(expected), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}");
    }
}

#[test]
fn sign_takes_the_secret_from_a_file_or_the_environment() {
    let expected = stdout(&run(&["sign", "--secret", "file-secret", "--payload", "examples/push.json"], None));
    assert!(expected.starts_with("X-Hub-Signature-256: sha256="), "{expected}");
    let dir = std::env::temp_dir().join(format!("cpw-cli-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, content) in [("plain", "file-secret"), ("newline", "file-secret\n"), ("crlf", "file-secret\r\n")] {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        let out = run(&["sign", "--secret-file", path.to_str().unwrap(), "--payload", "examples/push.json"], None);
        assert_eq!((out.status.code(), stdout(&out)), (Some(0), expected.clone()), "{name}: {}", stderr(&out));
    }
    let out = run_env(&["sign", "--payload", "examples/push.json"], None, Some("file-secret"));
    assert_eq!((out.status.code(), stdout(&out)), (Some(0), expected.clone()), "{}", stderr(&out));
    // --secret wins over the environment.
    let out = run_env(&["sign", "--secret", "file-secret", "--payload", "examples/push.json"], None, Some("other"));
    assert_eq!(stdout(&out), expected);

    let out = run(&["sign", "--payload", "examples/push.json"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("CODEPIPELINE_WEBHOOK_SECRET"), "{}", stderr(&out));
    let out = run_env(&["sign", "--payload", "examples/push.json"], None, Some(""));
    assert_eq!(out.status.code(), Some(2), "an empty secret is a mistake");
    let path = dir.join("plain");
    let out = run(&["sign", "--secret", "a", "--secret-file", path.to_str().unwrap(), "--payload", "-"], None);
    assert_eq!(out.status.code(), Some(2), "--secret and --secret-file together");
    let out = run(&["sign", "--secret-file", "no-such-file", "--payload", "-"], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_has_examples_exit_codes_and_only_options_that_act() {
    let top = run(&["--help"], None);
    assert_eq!(top.status.code(), Some(0));
    let top = stdout(&top);
    assert!(top.contains("Examples:") && top.contains("codepipeline-webhooks check --webhook"), "{top}");
    for code in ["  0  ", "  1  ", "  2  "] {
        assert!(top.contains(code), "exit code {code:?} in: {top}");
    }
    let validate = stdout(&run(&["validate", "--help"], None));
    assert!(!validate.contains("--require-sha256"), "{validate}");
    assert!(validate.contains("Examples:"), "{validate}");
    assert!(stdout(&run(&["check", "--help"], None)).contains("--require-sha256"));
    let sign = stdout(&run(&["sign", "--help"], None));
    assert!(sign.contains("--secret-file") && sign.contains("CODEPIPELINE_WEBHOOK_SECRET"), "{sign}");
    let out = run(&["validate", "--webhook", "examples/webhook.json", "--require-sha256"], None);
    assert_eq!(out.status.code(), Some(2), "validate has no --require-sha256");
}
