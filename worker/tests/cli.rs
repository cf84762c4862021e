//! The worker binary: starts with only NATS_URL and WORKER_TOKEN, refuses anything else.
//! (Also makes `cargo test --workspace` build the binary the api's crash tests run.)

use std::process::Command;

#[test]
fn help_names_the_only_two_settings_a_remote_worker_needs() {
    let out = Command::new(env!("CARGO_BIN_EXE_worker"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("WORKER_TOKEN") && text.contains("NATS_URL"),
        "{text}"
    );
}

#[test]
fn a_token_that_is_not_a_worker_token_is_refused_at_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_worker"))
        .env("WORKER_TOKEN", "not-a-token")
        .env("NATS_URL", "nats://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a worker token"));
}

#[test]
fn the_shipped_learned_check_is_exactly_what_training_on_the_declared_data_gives() {
    // `make train-model`: the tuning split of the audio corpus and the written development set;
    // never the held-out split.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::env::temp_dir().join(format!("model-{}.json", std::process::id()));
    let run = Command::new(env!("CARGO_BIN_EXE_worker"))
        .arg("train-model")
        .arg("--threshold")
        .arg("0.7")
        .arg("--out")
        .arg(&out)
        .arg(root.join("eval/calls/tuning.jsonl"))
        .arg(root.join("eval/dev/calls.jsonl"))
        .arg(root.join("eval/dev/calls2.jsonl"))
        .arg(root.join("eval/dev/calls3.jsonl"))
        .arg(root.join("eval/dev/calls4.jsonl"))
        .arg(root.join("eval/dev/calls5.jsonl"))
        .arg(root.join("eval/dev/calls6.jsonl"))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let trained = std::fs::read_to_string(&out).unwrap();
    let shipped = std::fs::read_to_string(root.join("worker/rules/en.model.json")).unwrap();
    std::fs::remove_file(&out).ok();
    assert_eq!(
        trained, shipped,
        "retrain with `make train-model` and commit the result"
    );
}
