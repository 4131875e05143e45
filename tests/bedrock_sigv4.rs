//! A Bedrock provider whose AWS credentials are wrong (the right access key id with a
//! wrong secret, from the environment): Bedrock refuses the signature, which is an
//! upstream credentials failure the operator must fix, not the client's mistake, and
//! no secret reaches the client. Its own test binary, since the AWS chain reads the
//! process environment (tests/bedrock.rs sets the right secret there).

mod common;

use common::bedrock::{FakeBedrock, ACCESS_KEY, REGION};
use common::*;

const WRONG_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYWRONGKEY";

#[tokio::test]
async fn a_signature_by_a_wrong_secret_is_an_upstream_credentials_failure() {
    std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", WRONG_SECRET);
    std::env::remove_var("AWS_SESSION_TOKEN");
    std::env::remove_var("AWS_PROFILE");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/aws/config");
    std::env::set_var(
        "AWS_SHARED_CREDENTIALS_FILE",
        "/nonexistent/aws/credentials",
    );
    let fake = FakeBedrock::start().await;
    let config = format!(
        r#"
[[keys]]
name = "demo"
hash = "{KEY_HASH}"

[[providers]]
id = "bedrock-eu"
kind = "bedrock"
base_url = "{}"
aws_region = "{REGION}"
region = "aws:{REGION}"
jurisdiction = "EU"
scope = "datazone"

[[models]]
name = "claude"
offers = [{{ provider = "bedrock-eu", upstream_model = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0", price = "anthropic/claude-sonnet-4-5" }}]
"#,
        fake.base_url
    );
    let mut gw = start_gateway(&config).await;
    let (status, body) = error_of(gw.chat(chat_body("claude")).await).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "upstream_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("credentials"), "{message}");
    assert!(!message.contains(WRONG_SECRET), "{message}");
    // The request was signed and sent; Bedrock refused the signature.
    let sent = fake.received();
    assert!(!sent.is_empty());
    assert!(sent[0].headers["authorization"]
        .to_str()
        .unwrap()
        .starts_with("AWS4-HMAC-SHA256"));
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    assert_eq!(rows.last().unwrap()["status"], 502);
    assert_eq!(rows.last().unwrap()["outcome"], "upstream_error");
}
