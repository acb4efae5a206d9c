//! The two batch APIs against the fake servers of `fake.rs`, which follow the documented
//! shapes: what is sent (upload, create), how a poll reads, and how results map to items.

use serde_json::json;

use super::fake::{ANTHROPIC_KEY, Ending, Fake, OPENAI_KEY};
use super::*;
use crate::providers::Message;
use crate::providers::http::ApiKey;
use crate::providers::http::tests::{request, spec};
use crate::suite::ProviderKind;

fn openai(fake: &Fake) -> OpenAiProvider {
    let spec = spec(ProviderKind::Openai, Some(&format!("{}/v1", fake.server.uri())));
    OpenAiProvider::with_key(&spec, Some(ApiKey::new("OPENAI_API_KEY", OPENAI_KEY))).unwrap()
}

fn anthropic(fake: &Fake) -> AnthropicProvider {
    let spec = spec(ProviderKind::Anthropic, Some(&fake.server.uri()));
    AnthropicProvider::with_key(&spec, Some(ApiKey::new("ANTHROPIC_API_KEY", ANTHROPIC_KEY))).unwrap()
}

/// A request whose user message is `said`.
fn asking(said: &str) -> Request {
    let mut r = request();
    let mut messages = r.messages.to_vec();
    messages.push(Message {
        role: crate::providers::Role::User,
        content: said.into(),
    });
    r.messages = messages.into();
    r
}

#[tokio::test]
async fn openai_uploads_jsonl_creates_a_24h_batch_polls_and_reads_both_files() {
    let fake = Fake::openai(Ending::Completed, 1).await;
    let api = openai(&fake);
    let requests = [asking("hello"), asking("a bad request")];
    let entries: Vec<Value> = requests
        .iter()
        .zip(["id-a", "id-b"])
        .map(|(r, id)| api.entry(id, r))
        .collect();
    assert_eq!(
        entries[0],
        json!({"custom_id": "id-a", "method": "POST", "url": "/v1/chat/completions", "body": api.body(&requests[0])})
    );
    let id = api.submit(&entries, "tag").await.unwrap();
    assert_eq!(id, "batch_1");
    {
        let state = fake.state();
        assert_eq!(
            state.upload_fields,
            vec![vec![("purpose".to_owned(), "batch".to_owned())]]
        );
        assert_eq!(
            state.create_bodies,
            vec![
                json!({"input_file_id": "file-in-0", "endpoint": "/v1/chat/completions", "completion_window": "24h",
                "metadata": {"promptgate_batch": "tag"}})
            ]
        );
    }

    let first = api.status(&id).await.unwrap().unwrap();
    assert_eq!(
        (first.status.as_str(), first.ended, first.total, first.done),
        ("in_progress", false, 2, 0)
    );
    let last = api.status(&id).await.unwrap().unwrap();
    assert_eq!(
        (last.status.as_str(), last.ended, last.done, last.failed_requests),
        ("completed", true, 2, 1)
    );
    assert_eq!(last.failed, None);

    let mut items = api.results(&last).await.unwrap();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(items.len(), 2);
    let Item::Answered(body) = &items[0].1 else {
        panic!("{:?}", items[0])
    };
    let response = BatchApi::response(&api, &requests[0], body.clone()).unwrap();
    assert_eq!(response.text, "answer to: hello");
    assert_eq!((response.usage.input, response.usage.output), (1000, 500));
    // A 400 inside the error file is classified like a normal call's 400, key redacted.
    match &items[1] {
        (custom_id, Item::Failed(ProviderError::Permanent { message })) => {
            assert_eq!(custom_id, "id-b");
            assert!(message.contains("HTTP 400"), "{message}");
            assert!(!message.contains(OPENAI_KEY), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn openai_failed_and_expired_batches_say_why_and_which_requests_did_not_run() {
    let fake = Fake::openai(Ending::Failed, 0).await;
    let api = openai(&fake);
    let id = api.submit(&[api.entry("id-a", &asking("hello"))], "tag").await.unwrap();
    let status = api.status(&id).await.unwrap().unwrap();
    assert!(status.ended);
    assert_eq!(
        status.failed.as_deref(),
        Some("line 1: The model `gpt-5-imaginary` does not exist")
    );
    assert!(api.results(&status).await.unwrap().is_empty());

    let fake = Fake::openai(Ending::Expired, 0).await;
    let api = openai(&fake);
    let entries = [
        api.entry("id-a", &asking("quick")),
        api.entry("id-b", &asking("slow one")),
    ];
    let id = api.submit(&entries, "tag").await.unwrap();
    let status = api.status(&id).await.unwrap().unwrap();
    assert_eq!((status.status.as_str(), status.ended), ("expired", true));
    let mut items = api.results(&status).await.unwrap();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(matches!(items[0].1, Item::Answered(_)));
    assert_eq!(items[1], ("id-b".to_owned(), Item::Expired));
}

/// What a run that lost the id of its batch tagged `tag` knows of it (no time: OpenAI finds by tag).
fn tagged(tag: &str) -> Sought<'_> {
    Sought {
        tag,
        calls: 1,
        since: None,
    }
}

/// A batch is found by the tag it was created with, a page of 100 at a time newest first; a
/// failed one is not resumed.
#[tokio::test]
async fn openai_finds_a_batch_by_its_tag_across_pages_and_not_a_failed_one() {
    let fake = Fake::openai(Ending::Completed, 5).await;
    let api = openai(&fake);
    let entries = [api.entry("id-a", &asking("hello"))];
    let wanted = api.submit(&entries, "wanted").await.unwrap();
    for _ in 0..100 {
        api.submit(&entries, "other").await.unwrap();
    }
    assert!(api.can_find(&tagged("wanted")));
    assert!(!api.can_find(&tagged("")));
    assert_eq!(api.find(&tagged("wanted")).await.unwrap(), Some(wanted));
    assert_eq!(fake.state().lists, 2, "the first page held only the 100 newer batches");
    assert_eq!(api.find(&tagged("never submitted")).await.unwrap(), None);

    let fake = Fake::openai(Ending::Failed, 0).await;
    let api = openai(&fake);
    let id = api.submit(&entries, "refused").await.unwrap();
    assert_eq!(
        api.find(&tagged("refused")).await.unwrap(),
        Some(id.clone()),
        "not failed yet"
    );
    assert!(api.status(&id).await.unwrap().unwrap().failed.is_some());
    assert_eq!(api.find(&tagged("refused")).await.unwrap(), None);
}

/// A Message Batch carries no label: the one batch of the sought size created since the
/// attempt (less ten minutes for the clocks' difference) is found, a page of 100 at a time
/// newest first, and the search stops at the first batch older than that. Two such batches
/// are an error naming both; a record without a time is not looked for.
#[tokio::test]
async fn anthropic_finds_a_lost_batch_by_its_size_and_time_and_refuses_to_guess() {
    let fake = Fake::anthropic(Ending::Completed, 5).await;
    let api = anthropic(&fake);
    let one = [api.entry("id-a", &asking("hello"))];
    let two = [api.entry("id-a", &asking("hello")), api.entry("id-b", &asking("again"))];
    let at = |s: &str| crate::providers::http::parse_rfc3339(s);
    // Before the window: an earlier run's batch of the same size.
    fake.state().created_at = "2026-12-02T07:40:00Z".to_owned();
    api.submit(&two, "").await.unwrap();
    // In it: the lost batch, then a hundred batches of another size.
    fake.state().created_at = "2026-12-02T08:00:00.123456Z".to_owned();
    let wanted = api.submit(&two, "").await.unwrap();
    for _ in 0..100 {
        api.submit(&one, "").await.unwrap();
    }
    // This machine's clock five minutes ahead of the provider's.
    let sought = Sought {
        tag: "",
        calls: 2,
        since: at("2026-12-02T08:05:00Z"),
    };
    assert!(api.can_find(&sought));
    assert_eq!(api.find(&sought).await.unwrap(), Some(wanted.clone()));
    assert_eq!(fake.state().lists, 2, "the first page held the 100 newer batches");
    assert_eq!(
        api.find(&Sought { calls: 3, ..sought }).await.unwrap(),
        None,
        "no batch of three"
    );
    // Ten minutes back from 08:15 is 08:05: the lost batch is older, and not taken.
    let later = Sought {
        since: at("2026-12-02T08:15:00Z"),
        ..sought
    };
    assert_eq!(api.find(&later).await.unwrap(), None);
    // Back to 07:45, the earlier batch of two is in the window too: which is this run's
    // cannot be told.
    let earlier = Sought {
        since: at("2026-12-02T07:45:00Z"),
        ..sought
    };
    match api.find(&earlier).await {
        Err(ProviderError::Permanent { message }) => {
            assert!(message.contains("2 batches of 2 requests"), "{message}");
            assert!(
                message.contains(&wanted) && message.contains("msgbatch_001"),
                "{message}"
            );
            assert!(!message.contains(ANTHROPIC_KEY), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!api.can_find(&Sought { since: None, ..sought }));
}

/// A cancelled batch, still `canceling` or ended with its requests `canceled`, is not the
/// lost one, whatever its size and time: the answers would not be in it.
#[tokio::test]
async fn anthropic_passes_over_a_cancelled_batch_when_finding_the_lost_one() {
    let fake = Fake::anthropic(Ending::Completed, 1).await;
    let api = anthropic(&fake);
    let two = [api.entry("id-a", &asking("hello")), api.entry("id-b", &asking("again"))];
    let wanted = api.submit(&two, "").await.unwrap();
    let cancelled = api.submit(&two, "").await.unwrap();
    let cancel = reqwest::Client::new()
        .post(format!("{}/v1/messages/batches/{cancelled}/cancel", fake.server.uri()))
        .header("x-api-key", ANTHROPIC_KEY)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    assert_eq!(
        cancel.json::<serde_json::Value>().await.unwrap()["processing_status"],
        "canceling"
    );
    let sought = Sought {
        tag: "",
        calls: 2,
        since: crate::providers::http::parse_rfc3339("2026-12-02T08:00:00Z"),
    };
    assert_eq!(api.find(&sought).await.unwrap(), Some(wanted.clone()), "canceling");
    api.status(&cancelled).await.unwrap().unwrap();
    let ended = api.status(&cancelled).await.unwrap().unwrap();
    assert!(ended.ended && ended.failed_requests == 2, "{ended:?}");
    assert_eq!(
        api.find(&sought).await.unwrap(),
        Some(wanted),
        "ended with its requests canceled"
    );
    let mut items = api.results(&ended).await.unwrap();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        items,
        [("id-a".to_owned(), Item::Canceled), ("id-b".to_owned(), Item::Canceled)]
    );
}

#[tokio::test]
async fn anthropic_creates_with_requests_polls_and_reads_results_url() {
    let fake = Fake::anthropic(Ending::Expired, 1).await;
    let api = anthropic(&fake);
    let requests = [asking("hello"), asking("a bad request"), asking("slow")];
    let entries: Vec<Value> = requests
        .iter()
        .zip(["id-a", "id-b", "id-c"])
        .map(|(r, id)| api.entry(id, r))
        .collect();
    assert_eq!(
        entries[0],
        json!({"custom_id": "id-a", "params": AnthropicProvider::body(&requests[0])})
    );
    let id = api.submit(&entries, "tag").await.unwrap();
    assert_eq!(id, "msgbatch_001");
    assert_eq!(fake.state().create_bodies, vec![json!({"requests": entries})]);

    let first = api.status(&id).await.unwrap().unwrap();
    assert_eq!(
        (first.status.as_str(), first.ended, first.total),
        ("in_progress", false, 3)
    );
    let last = api.status(&id).await.unwrap().unwrap();
    assert_eq!(
        (last.status.as_str(), last.ended, last.done, last.failed_requests),
        ("ended", true, 3, 2)
    );

    let mut items = api.results(&last).await.unwrap();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let Item::Answered(body) = &items[0].1 else {
        panic!("{:?}", items[0])
    };
    let response = BatchApi::response(&api, &requests[0], body.clone()).unwrap();
    assert_eq!(response.text, "answer to: hello");
    match &items[1].1 {
        Item::Failed(ProviderError::Permanent { message }) => {
            assert!(message.contains("invalid_request_error"), "{message}");
            assert!(!message.contains(ANTHROPIC_KEY), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(items[2].1, Item::Expired);
}

/// The key goes only to the API's own batch endpoints, whatever `results_url` a server names.
#[tokio::test]
async fn anthropic_refuses_a_results_url_elsewhere() {
    let fake = Fake::anthropic(Ending::Completed, 0).await;
    let api = anthropic(&fake);
    let status = Status {
        id: "msgbatch_001".to_owned(),
        status: "ended".to_owned(),
        ended: true,
        failed: None,
        total: 1,
        done: 1,
        failed_requests: 0,
        results: vec!["http://127.0.0.1:9/steal".to_owned()],
    };
    match api.results(&status).await {
        Err(ProviderError::Permanent { message }) => assert!(message.contains("not sending the key"), "{message}"),
        other => panic!("{other:?}"),
    }
}

/// Only `openai` and `anthropic` have a batch API: Azure's is another shape, compatible
/// servers have none.
#[test]
fn only_openai_and_anthropic_providers_batch() {
    let url = Some("http://127.0.0.1:9/v1");
    let build = |kind| {
        let mut s = spec(kind, url);
        if kind == ProviderKind::AzureOpenai {
            s.deployment = Some("d".to_owned());
            s.api_version = Some("2024-10-21".to_owned());
        }
        crate::providers::openai::OpenAiProvider::with_key(&s, Some(ApiKey::new("K", "sk-test-0123456789")))
    };
    use crate::providers::Provider;
    assert!(build(ProviderKind::Openai).unwrap().batch().is_some());
    assert!(build(ProviderKind::AzureOpenai).unwrap().batch().is_none());
    assert!(build(ProviderKind::OpenaiCompatible).unwrap().batch().is_none());
    assert!(crate::providers::mock::MockProvider::new().batch().is_none());
}
