//! The console in a real browser: headless Chromium driven through WebDriver (chromedriver,
//! fantoccini). Open the webhooks page, follow a webhook, see a rejected delivery's reason,
//! press "Test against the current definition" and see the verdict; a delivery whose `ref` and
//! headers carry `<script>` and `"><img onerror=…>` shows as text (no script ran, no element was
//! injected). A screenshot of each page is saved under `target/console-screenshots/`.
//!
//! Skipped, with a message, where `chromium` or `chromedriver` is not installed (Debian:
//! `apt-get install chromium chromium-driver`; `.ci/run` installs them).
//!
//! The browser is contained: as root (CI) chromedriver and Chromium run as `nobody`, so no
//! signal of theirs reaches anything else on the machine, and Chromium reaches nothing but
//! loopback (no name resolves, a closed local proxy for everything else, no QUIC, no discovery).
//! An earlier version ran them as root with only some of those flags, and some of its runs took
//! down every process of the development session; strace of the contained runs shows only
//! signals within chromedriver's own tree and connections to 127.0.0.1 alone.

#![cfg(unix)]

mod console_common;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_codepipeline::types::WebhookAuthenticationType;
use console_common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/lib/chromium")]) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// chromedriver on a free loopback port, in a process group of its own with the browsers it
/// starts: the whole group is killed when dropped (also when the test fails mid-way).
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether this test runs as root (`/proc/self` belongs to the effective user).
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The unprivileged user the browser runs as when the test is root (`nobody`), as `uid`.
const NOBODY: u32 = 65534;

/// A home for the browser: its profile, caches and crash dumps, owned by the user it runs as.
fn browser_home(dir: &Path) -> PathBuf {
    let home = std::env::temp_dir()
        .join(format!("cpw-browser-home-{}", dir.file_name().and_then(|n| n.to_str()).unwrap_or("x")));
    std::fs::create_dir_all(home.join("profile")).unwrap();
    if running_as_root() {
        for d in [home.clone(), home.join("profile")] {
            std::os::unix::fs::chown(&d, Some(NOBODY), Some(NOBODY)).unwrap();
        }
    }
    home
}

async fn start_driver(binary: &Path, home: &Path, log: &Path) -> Driver {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // As root (CI, the development machine) chromedriver and the browser run as `nobody`
    // (util-linux's setpriv): whatever either of them signals, it cannot reach the test, the
    // suite or anything else of the machine's. Runs of an earlier version of this test, as root,
    // took down every process of the session.
    let mut command = if running_as_root() {
        let mut c = Command::new("setpriv");
        c.args([format!("--reuid={NOBODY}"), format!("--regid={NOBODY}"), "--clear-groups".to_owned()]).arg(binary);
        c
    } else {
        Command::new(binary)
    };
    let child = std::os::unix::process::CommandExt::process_group(&mut command, 0)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("chromedriver starts (and setpriv, from util-linux, when the test runs as root)");
    let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    driver
}

async fn browser(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-quic", "--disable-extensions", "--disable-default-apps",
                "--disable-breakpad", "--disable-domain-reliability", "--mute-audio", "--password-store=basic",
                // Nothing but loopback: no name resolves, anything else goes to a closed local
                // port, and no discovery (DIAL, mDNS) is sent on the network.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--proxy-server=http://127.0.0.1:9",
                "--disable-features=MediaRouter,DialMediaRouteProvider,OptimizationHints,Translate,AutofillServerCommunication",
                "--window-size=1100,900", format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector).capabilities(caps).connect(&driver.url).await.expect("a WebDriver session")
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// No script ran (the payloads set `window.__xss`) and no element was injected.
async fn nothing_injected(client: &Client) {
    let marker = client.execute("return typeof window.__xss;", vec![]).await.unwrap();
    assert_eq!(marker, Value::from("undefined"), "a script from a delivery ran");
    let images = client.execute("return document.querySelectorAll('img').length;", vec![]).await.unwrap();
    assert_eq!(images, Value::from(0), "an element from a delivery was injected");
    let scripts = client.execute("return document.scripts.length;", vec![]).await.unwrap();
    assert_eq!(scripts, Value::from(0));
}

const SCRIPT_REF: &str = "refs/heads/<script>window.__xss=1</script>";
const IMG_DELIVERY: &str = "\"><img src=x onerror=\"window.__xss=2\">";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_headless_chromium() {
    let (Some(chromium), Some(chromedriver)) =
        (find(&["chromium", "chromium-browser", "google-chrome"]), find(&["chromedriver"]))
    else {
        eprintln!(
            "skipped: chromium and chromedriver are not installed (Debian: apt-get install -y chromium chromium-driver; \
             bash .ci/run installs them)"
        );
        return;
    };
    let dir = temp_dir("browser");
    let server = Server::start(&dir.join("data"), &[]);
    let c = server.client();
    c.create_pipeline().pipeline(pipeline("app")).send().await.unwrap();
    let token = put(&c, webhook("app-push", "app", WebhookAuthenticationType::GithubHmac, "refs/heads/{Branch}")).await;
    let addr = server.addr;
    let body = push();
    assert_eq!(
        deliver(addr, &token, &body, &signed_headers(&body, "push", "72d3162e-cc78-11e3-81ab-4c9367dc0958"))
            .await
            .status,
        202
    );
    let feature = push_to("refs/heads/feature/login");
    deliver(addr, &token, &feature, &signed_headers(&feature, "push", "9c1f5b2a-cc78-11e3-8a1b-4c9367dc0958")).await;
    let mut forged = signed_headers(&body, "push", "b2e6a8d0-cc78-11e3-9c4e-4c9367dc0958");
    forged[4].1 = codepipeline_webhooks::github::signature_256(b"an old secret", &body);
    assert_eq!(deliver(addr, &token, &body, &forged).await.status, 403);
    // Hostile values in the ref, a header and the delivery id, to a webhook of their own.
    let hostile_token =
        put(&c, webhook("hostile", "app", WebhookAuthenticationType::GithubHmac, "refs/heads/{Branch}")).await;
    let hostile = push_to(&format!("{SCRIPT_REF}\"><img src=x onerror=\"window.__xss=3\">"));
    let mut headers = signed_headers(&hostile, "push", IMG_DELIVERY);
    headers[1].1 = "<script>window.__xss=4</script>".into();
    deliver(addr, &hostile_token, &hostile, &headers).await;
    let hostile_id = deliveries(server.console(), "hostile", 1).await[0]["id"].as_i64().unwrap();
    let list = deliveries(server.console(), "app-push", 3).await;
    let rejected_id =
        list.iter().find(|d| d["deliveryId"].as_str().unwrap().starts_with("9c1f")).unwrap()["id"].as_i64().unwrap();

    let home = browser_home(&dir);
    let driver = start_driver(&chromedriver, &home, &dir.join("chromedriver.log")).await;
    let client = browser(&driver, &chromium, &home.join("profile")).await;
    let console = format!("http://{}", server.console());
    let run = async {
        client.goto(&format!("{console}/")).await.unwrap();
        assert_eq!(client.find(Locator::Css("h1")).await.unwrap().text().await.unwrap(), "Webhooks");
        let row = client.find(Locator::Css("tbody tr")).await.unwrap().text().await.unwrap();
        assert!(row.contains("GITHUB_HMAC") && row.contains("$.ref") && row.contains("t=…"), "{row}");
        assert!(!row.contains(&token), "the URL token is hidden");
        screenshot(&client, "webhooks").await;

        client.find(Locator::LinkText("app-push")).await.unwrap().click().await.unwrap();
        client.wait().for_element(Locator::Css("table.deliveries")).await.unwrap();
        let rows = client.find_all(Locator::Css("table.deliveries tbody tr")).await.unwrap();
        assert_eq!(rows.len(), 3);
        let started = client.find(Locator::Css("tr.started")).await.unwrap().text().await.unwrap();
        assert!(started.contains("72d3162e"), "{started}");
        let text = client.find(Locator::Css("table.deliveries")).await.unwrap().text().await.unwrap();
        assert!(
            text.contains("refs/heads/feature/login") && text.contains("refs/heads/master"),
            "the reason in words: {text}"
        );
        assert!(text.contains("signature"), "the refused delivery's reason: {text}");
        // The green row is green.
        let background = client
            .execute("return getComputedStyle(document.querySelector('tr.started td')).backgroundColor;", vec![])
            .await
            .unwrap();
        assert_eq!(background, Value::from("rgb(218, 251, 225)"));
        nothing_injected(&client).await;
        screenshot(&client, "deliveries").await;
        // The README's picture: the page's main part only.
        let main = client.find(Locator::Css("main")).await.unwrap().screenshot().await.unwrap();
        std::fs::write(screenshots().join("deliveries-main.png"), main).unwrap();

        client.goto(&format!("{console}/deliveries/{rejected_id}")).await.unwrap();
        let why = client.find(Locator::Css("dl.summary")).await.unwrap().text().await.unwrap();
        assert!(why.contains("refs/heads/feature/login"), "{why}");
        screenshot(&client, "delivery").await;
        client.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
        let result =
            match client.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("section.result")).await {
                Ok(section) => section.text().await.unwrap(),
                Err(e) => {
                    panic!("no verdict after the test button ({e}): {}", client.source().await.unwrap_or_default())
                }
            };
        assert!(
            result.contains("It would not start the pipeline") && result.contains("refs/heads/feature/login"),
            "{result}"
        );
        screenshot(&client, "delivery-tested").await;

        client.goto(&format!("{console}/webhooks/hostile")).await.unwrap();
        let text = client.find(Locator::Css("table.deliveries")).await.unwrap().text().await.unwrap();
        assert!(text.contains(SCRIPT_REF) && text.contains(IMG_DELIVERY), "hostile values shown as text: {text}");
        nothing_injected(&client).await;
        screenshot(&client, "deliveries-hostile").await;

        client.goto(&format!("{console}/deliveries/{hostile_id}")).await.unwrap();
        let page = client.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
        assert!(page.contains("<script>window.__xss=4</script>") && page.contains(IMG_DELIVERY), "{page}");
        nothing_injected(&client).await;
        screenshot(&client, "delivery-hostile").await;

        // On a phone's width the tables stack, still labelled.
        client.set_window_size(390, 844).await.unwrap();
        client.goto(&format!("{console}/webhooks/app-push")).await.unwrap();
        screenshot(&client, "deliveries-phone").await;
    };
    tokio::time::timeout(Duration::from_secs(120), run).await.expect("the browser test finishes in time");
    client.close().await.unwrap();
    drop(driver);
    let _ = std::fs::remove_dir_all(&home);
}
